//! Nonces for the node's entry signatures, prepared ahead on a thread of
//! their own (see `ordo_txn::presign`): the batcher then finishes each
//! attested entry's signature in about a microsecond, where signing from
//! scratch put about 30 µs on the path of every commit in the entry.

use ordo_txn::presign::Presignature;
use ordo_txn::sign::SigningKey;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Prepared nonces kept ready (about 100 bytes each): far more than the
/// entries appended while one is prepared (about 30 µs), so the batcher
/// finds one ready unless entries come faster than a core can prepare them,
/// and then it signs the usual way.
pub const PRESIGNATURES_READY: usize = 64;

/// The ready nonces, and (through the channel) the thread that makes them.
pub struct Presigns {
    ready: Mutex<Receiver<Presignature>>,
}

impl std::fmt::Debug for Presigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigns")
    }
}

impl Presigns {
    /// Starts preparing nonces for `key` on a thread of their own. The
    /// thread stops once these `Presigns` are dropped (its next hand-over
    /// fails).
    pub fn start(key: SigningKey) -> std::io::Result<Self> {
        let (made, ready) = sync_channel(PRESIGNATURES_READY);
        std::thread::Builder::new()
            .name("ordo-presign".into())
            .spawn(move || prepare_until_dropped(&key, &made))?;
        Ok(Self {
            ready: Mutex::new(ready),
        })
    }

    /// A prepared nonce, if one is ready; each is handed out once.
    pub fn take(&self) -> Option<Presignature> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.try_recv().ok()
    }
}

/// Runs the preparing thread under `SCHED_IDLE`: it gets a core only when
/// no other thread wants it, and a thread that wakes takes the core from
/// it at once. A lone commit's sync leaves the core idle for about 0.1 ms,
/// which is when the next nonce is made, even when the process has one
/// core. At the lowest nice value instead, a woken thread could wait for
/// the preparer's turn to end: on one core that made a lone commit about
/// 15 µs slower than signing on the path, so the node did not prepare
/// nonces there; under `SCHED_IDLE` it is 8-16 µs faster
/// (`docs/BENCHMARKS.md`, "Nonces prepared on one core too"). Under load
/// the thread gets little time, the ready nonces run out, and the batcher
/// signs the usual way.
fn run_only_when_idle() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(error) =
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
    {
        tracing::warn!(%error, "cannot run the nonce-preparing thread under SCHED_IDLE; lowering its nice value instead");
        let this_thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(this_thread), FALLBACK_NICE) {
            tracing::warn!(%error, "cannot lower the priority of the nonce-preparing thread");
        }
    }
}

/// The preparer's nice value where `SCHED_IDLE` is refused: the lowest.
const FALLBACK_NICE: i32 = 19;

fn prepare_until_dropped(key: &SigningKey, made: &SyncSender<Presignature>) {
    run_only_when_idle();
    loop {
        // Blocks while PRESIGNATURES_READY wait; fails once nobody takes.
        if made.send(Presignature::prepare(key)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy of this process's thread named `name` (field
    /// 41 of its `stat`), once it has one.
    fn policy_of_thread(name: &str) -> Option<u32> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the command, which is in parentheses and may hold spaces.
            let after = stat.rsplit_once(')')?.1;
            return after.split_whitespace().nth(38)?.parse().ok();
        }
        None
    }

    #[test]
    fn the_preparing_thread_runs_only_when_a_core_would_idle() {
        const SCHED_IDLE: u32 = 5;
        let presigns = Presigns::start(SigningKey::random()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The thread sets its policy before its first nonce.
        while presigns.take().is_none() {
            assert!(std::time::Instant::now() < deadline, "a nonce comes");
            std::thread::yield_now();
        }
        assert_eq!(policy_of_thread("ordo-presign"), Some(SCHED_IDLE));
    }

    #[test]
    fn prepared_nonces_sign_for_the_node_and_each_is_handed_out_once() {
        let key = SigningKey::random();
        let presigns = Presigns::start(key.clone()).unwrap();
        let mut signatures = std::collections::HashSet::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while signatures.len() < 2 * PRESIGNATURES_READY {
            assert!(std::time::Instant::now() < deadline, "nonces keep coming");
            let Some(presignature) = presigns.take() else {
                std::thread::yield_now();
                continue;
            };
            let signature = presignature.sign([9; 32], &key).unwrap();
            let signer = ordo_txn::sign::recover_canonical(&signature, [9; 32]).unwrap();
            assert_eq!(signer, ordo_txn::address_of(&key));
            assert!(
                signatures.insert(signature[..32].to_vec()),
                "a nonce came twice"
            );
        }
    }
}
