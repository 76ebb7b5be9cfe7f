//! Local sequencer appends per second with fsync on, at 1, 16 and 128
//! concurrent appenders: the gain is group commit sharing one fsync.
//!
//! The log lives under Cargo's target tmp dir, on the same disk as the build,
//! never on tmpfs (where fsync would cost nothing and prove nothing).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ordo_log::{EntryDescriptor, Geometry, LocalSequencer, LocalSequencerOptions, Sequencer};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn descriptor(i: u64) -> EntryDescriptor {
    EntryDescriptor {
        commitment: *blake3::hash(&i.to_le_bytes()).as_bytes(),
        geometry: Geometry {
            payload_len: 4096,
            chunk_size: 4096,
            data_shards: 4,
            parity_shards: 2,
        },
        tags: vec![[7; 32]],
        submitter: [9; 20],
    }
}

async fn run(sequencer: Arc<LocalSequencer>, appenders: u64, total: u64) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let sequencer = sequencer.clone();
            let share = total / appenders + u64::from(a < total % appenders);
            tokio::spawn(async move {
                for i in 0..share {
                    sequencer
                        .append(descriptor(a << 32 | i))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("appender task");
    }
    start.elapsed()
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("sequencer_append_fsync");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for appenders in [1u64, 16, 128] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let sequencer = Arc::new(
            LocalSequencer::open(dir.path(), LocalSequencerOptions::default()).expect("opens"),
        );
        group.bench_function(BenchmarkId::from_parameter(appenders), |b| {
            b.iter_custom(|iters| runtime.block_on(run(sequencer.clone(), appenders, iters)))
        });
        sequencer.close();
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
