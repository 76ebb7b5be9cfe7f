//! `ordo replay`: replays a stopped node's log into MVCC state, offline,
//! and prints the state digest, so that replicas built apart can be
//! compared.

use crate::node::local_log::LocalLog;
use crate::node::replica::Replica;
use crate::node::run::state_dir;
use std::path::Path;

/// Replays the log of the (stopped) node in `data_dir` into `state` (default:
/// the node's own state), printing where it resumed, optionally each applied
/// entry, and the final position and digest on stdout.
pub async fn run_replay(
    data_dir: &Path,
    state: Option<&Path>,
    progress: bool,
) -> anyhow::Result<()> {
    let log = LocalLog::open(data_dir)?;
    let (sequencer, reader) = (log.sequencer(), log.reader());
    let state = state.map_or_else(|| state_dir(data_dir), Path::to_path_buf);
    let mut replica = Replica::open(&state, reader)?;
    let start = replica.applied();
    println!(
        "resume next_seq={} version={}",
        start.next_seq, start.version
    );
    replica
        .catch_up(sequencer.tail(), |entry| {
            let (seq, applied) = (entry.seq, &entry.applied);
            if progress {
                println!(
                    "applied seq={seq} version={} digest={}",
                    applied.version,
                    ordo_log::hex(&applied.digest)
                );
            }
        })
        .await?;
    let end = replica.applied();
    println!(
        "done next_seq={} version={} digest={}",
        end.next_seq,
        end.version,
        ordo_log::hex(&end.digest)
    );
    Ok(())
}
