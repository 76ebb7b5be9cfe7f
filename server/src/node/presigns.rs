//! Nonces for the node's entry signatures, prepared ahead on a thread of
//! their own (see `ordo_txn::presign`): the batcher then finishes each
//! attested entry's signature in about a microsecond, where signing from
//! scratch put about 30 µs on the path of every commit in the entry.

use ordo_txn::presign::Presignature;
use ordo_txn::sign::SigningKey;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, TryLockError};

/// Prepared nonces kept ready (about 100 bytes each): far more than the
/// entries appended while one is prepared (about 30 µs), so the batcher
/// finds one ready unless entries come faster than a core can prepare them,
/// and then it signs the usual way.
pub const PRESIGNATURES_READY: usize = 64;

/// The ready nonces, and the thread that makes them.
///
/// The batcher never waits for that thread. It runs under `SCHED_IDLE`,
/// so it can be stopped anywhere for as long as every core is busy, even
/// in the middle of handing a nonce over; a channel whose receiver spins
/// until a half-made hand-over completes (as std's bounded channel does)
/// could then hold the batcher, and every commit behind it, until a core
/// went idle. Here the batcher only tries the lock, which the preparer
/// holds for a push, and signs the usual way when it is taken.
pub struct Presigns {
    shared: Arc<Shared>,
}

/// What the batcher and the preparing thread share.
#[derive(Default)]
struct Shared {
    ready: Mutex<VecDeque<Presignature>>,
    /// Signalled when a nonce is taken or the preparer should stop.
    room: Condvar,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Presigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigns")
    }
}

impl Presigns {
    /// Starts preparing nonces for `key` on a thread of their own. The
    /// thread stops once these `Presigns` are dropped.
    pub fn start(key: SigningKey) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let preparing = shared.clone();
        std::thread::Builder::new()
            .name("ordo-presign".into())
            .spawn(move || prepare_until_stopped(&key, &preparing))?;
        Ok(Self { shared })
    }

    /// A prepared nonce, if one is ready and the preparer is not handing
    /// one over this instant; each is handed out once.
    pub fn take(&self) -> Option<Presignature> {
        let mut ready = match self.shared.ready.try_lock() {
            Ok(ready) => ready,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        // The preparer waits for room only while the queue is full (it
        // checks under this lock), so only then is there anyone to wake:
        // no wake-up system call on the batcher's path otherwise.
        let was_full = ready.len() >= PRESIGNATURES_READY;
        let taken = ready.pop_front();
        drop(ready);
        if was_full {
            self.shared.room.notify_one();
        }
        taken
    }
}

impl Drop for Presigns {
    fn drop(&mut self) {
        // Under the lock, so that the preparer cannot check the flag, miss
        // the signal and then wait for room forever.
        let ready = self.shared.ready.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.stopped.store(true, Ordering::Release);
        drop(ready);
        self.shared.room.notify_one();
    }
}

/// Runs the preparing thread under `SCHED_IDLE`: it gets a core only when
/// no other thread wants it, and a thread that wakes takes the core from
/// it at once. A lone commit's sync leaves the core idle for about 0.1 ms,
/// which is when the next nonce is made, even when the process has one
/// core. At the lowest nice value instead, a woken thread could wait for
/// the preparer's turn to end: on one core that made a lone commit about
/// 15 µs slower than signing on the path, so the node did not prepare
/// nonces there; under `SCHED_IDLE` it is about 15 µs faster
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

fn prepare_until_stopped(key: &SigningKey, shared: &Shared) {
    run_only_when_idle();
    while !shared.stopped.load(Ordering::Acquire) {
        let prepared = Presignature::prepare(key);
        let ready = shared.ready.lock().unwrap_or_else(|p| p.into_inner());
        let mut ready = shared
            .room
            .wait_while(ready, |ready| {
                ready.len() >= PRESIGNATURES_READY && !shared.stopped.load(Ordering::Acquire)
            })
            .unwrap_or_else(|p| p.into_inner());
        ready.push_back(prepared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy (field 41 of its `stat`).
    fn policy_of_this_thread() -> Option<u32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // Fields after the command, which is in parentheses and may hold spaces.
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(38)?.parse().ok()
    }

    #[test]
    fn taking_a_nonce_never_waits_for_the_preparer() {
        let key = SigningKey::random();
        let presigns = Presigns::start(key.clone()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while presigns.shared.ready.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "a nonce comes");
            std::thread::yield_now();
        }
        // As if the preparer were stopped in the middle of a hand-over.
        let held = presigns.shared.ready.lock().unwrap();
        assert!(presigns.take().is_none(), "the batcher signs the usual way");
        drop(held);
        let signature = presigns.take().expect("ready again").sign([3; 32], &key);
        let signer = ordo_txn::sign::recover_canonical(&signature.unwrap(), [3; 32]).unwrap();
        assert_eq!(signer, ordo_txn::address_of(&key));
    }

    #[test]
    fn the_preparing_thread_ends_once_its_presigns_are_dropped() {
        let presigns = Presigns::start(SigningKey::random()).unwrap();
        let shared = Arc::downgrade(&presigns.shared);
        drop(presigns);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The thread holds the last reference until it returns.
        while shared.upgrade().is_some() {
            assert!(std::time::Instant::now() < deadline, "the thread ends");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn the_preparing_thread_runs_only_when_a_core_would_idle() {
        const SCHED_IDLE: u32 = 5;
        // On a thread of its own, as the preparer calls it first thing.
        let policy = std::thread::spawn(|| {
            run_only_when_idle();
            policy_of_this_thread()
        });
        assert_eq!(policy.join().unwrap(), Some(SCHED_IDLE));
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
