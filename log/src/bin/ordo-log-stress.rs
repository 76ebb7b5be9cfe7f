//! `ordo-log-stress DIR TASKS CYCLE [joint|split]`: appends to a log from
//! TASKS concurrent tasks until killed, printing `ack SEQ CYCLE TASK I` for
//! every acknowledged append. The log is a local sequencer (headers only);
//! with `joint` a `RocksLog` with the smallest journal segments; with
//! `split` a `RocksShardStore` with the smallest journal segments (in
//! `DIR/shards`, as a storage member keeps them) beside a local sequencer
//! (`DIR/headers`). Both of the last two are written through an
//! `EntryWriter` (coded entries, so every append carries shards and
//! rotations come often).
//!
//! The crash tests kill it with SIGKILL at random moments and then check that
//! every printed seq survived. It is also a quick way to see what group
//! commit does on a given disk.

use ordo_log::limits::MIN_JOURNAL_SEGMENT_BYTES;
use ordo_log::stress::{descriptor, payload};
use ordo_log::{
    CodingParams, EntryWriter, LocalSequencer, LocalSequencerOptions, RocksLog, RocksLogOptions,
    RocksShardStore, Sequencer,
};
use std::io::Write;
use std::sync::Arc;

fn arg(args: &[String], at: usize, name: &str) -> Result<u64, String> {
    args.get(at)
        .ok_or(format!("missing {name}"))?
        .parse()
        .map_err(|e| format!("bad {name}: {e}"))
}

fn local_sequencer(dir: &str) -> Result<LocalSequencer, String> {
    LocalSequencer::open(dir, LocalSequencerOptions::default()).map_err(|e| e.to_string())
}

fn print_ack(seq: u64, cycle: u64, task: u64, i: u64) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ack {seq} {cycle} {task} {i}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

/// How one task appends its `i`-th item; returns the seq it was given.
#[derive(Clone)]
enum Target {
    Headers(Arc<LocalSequencer>),
    Entries(Arc<EntryWriter>),
}

/// Which log the tool appends to.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Headers,
    Joint,
    Split,
}

impl Target {
    fn open(dir: &str, mode: Mode) -> Result<(Self, u64), String> {
        match mode {
            Mode::Headers => {
                let sequencer = local_sequencer(dir)?;
                let tail = sequencer.tail();
                Ok((Self::Headers(Arc::new(sequencer)), tail))
            }
            Mode::Joint => Self::open_joint(dir),
            Mode::Split => {
                let dir = std::path::Path::new(dir);
                let shards =
                    RocksShardStore::open_with(dir.join("shards"), MIN_JOURNAL_SEGMENT_BYTES)
                        .map_err(|e| e.to_string())?;
                let sequencer = local_sequencer(&dir.join("headers").to_string_lossy())?;
                let tail = sequencer.tail();
                let writer = EntryWriter::new(
                    Arc::new(shards),
                    Arc::new(sequencer),
                    CodingParams::default(),
                )
                .map_err(|e| e.to_string())?;
                Ok((Self::Entries(Arc::new(writer)), tail))
            }
        }
    }

    fn open_joint(dir: &str) -> Result<(Self, u64), String> {
        let options = RocksLogOptions {
            journal_segment_bytes: MIN_JOURNAL_SEGMENT_BYTES,
            ..RocksLogOptions::default()
        };
        let log = Arc::new(RocksLog::open(dir, options).map_err(|e| e.to_string())?);
        let tail = log.tail();
        let writer = EntryWriter::joint(log, CodingParams::default()).map_err(|e| e.to_string())?;
        Ok((Self::Entries(Arc::new(writer)), tail))
    }

    async fn append(&self, cycle: u64, task: u64, i: u64) -> Result<u64, String> {
        let header = match self {
            Self::Headers(sequencer) => sequencer
                .append(descriptor(cycle, task, i))
                .await
                .map_err(|e| e.to_string()),
            Self::Entries(writer) => {
                let tags = vec![[task as u8; 32]];
                let appended = writer.append(payload(cycle, task, i), tags, [cycle as u8; 20]);
                appended.await.map_err(|e| e.to_string())
            }
        };
        header.map(|h| h.seq)
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ordo-log-stress DIR TASKS CYCLE [joint|split]";
    let dir = args.get(1).ok_or(usage)?.clone();
    let (tasks, cycle) = (arg(&args, 2, "TASKS")?, arg(&args, 3, "CYCLE")?);
    let mode = match args.get(4).map(String::as_str) {
        None => Mode::Headers,
        Some("joint") => Mode::Joint,
        Some("split") => Mode::Split,
        Some(other) => return Err(format!("unknown mode {other:?}; {usage}")),
    };
    let (target, tail) = Target::open(&dir, mode)?;
    println!("ready {tail}");
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let target = target.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let seq = target.append(cycle, task, i).await?;
                    print_ack(seq, cycle, task, i)?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
