//! `ordo-log-stress DIR TASKS CYCLE`: appends to a local sequencer from TASKS
//! concurrent tasks until killed, printing `ack SEQ CYCLE TASK I` for every
//! acknowledged append.
//!
//! The crash tests kill it with SIGKILL at random moments and then check that
//! every printed seq survived. It is also a quick way to see what group
//! commit does on a given disk.

use ordo_log::stress::descriptor;
use ordo_log::{LocalSequencer, LocalSequencerOptions, Sequencer};
use std::io::Write;
use std::sync::Arc;

fn arg(args: &[String], at: usize, name: &str) -> Result<u64, String> {
    args.get(at)
        .ok_or(format!("missing {name}"))?
        .parse()
        .map_err(|e| format!("bad {name}: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: ordo-log-stress DIR TASKS CYCLE")?
        .clone();
    let (tasks, cycle) = (arg(&args, 2, "TASKS")?, arg(&args, 3, "CYCLE")?);
    let sequencer = Arc::new(
        LocalSequencer::open(&dir, LocalSequencerOptions::default()).map_err(|e| e.to_string())?,
    );
    println!("ready {}", sequencer.tail());
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let sequencer = sequencer.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let header = sequencer
                        .append(descriptor(cycle, task, i))
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {cycle} {task} {i}", header.seq)
                        .map_err(|e| e.to_string())?;
                    out.flush().map_err(|e| e.to_string())?;
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
