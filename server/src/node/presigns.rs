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
    /// Starts preparing nonces for `key`, if this process may run on more
    /// than one core; `None` (sign as usual) on one. The thread stops once
    /// these `Presigns` are dropped (its next hand-over fails).
    ///
    /// On one core, preparing ahead only moves the work to the moment the
    /// core is wanted: pinned to one core, a lone commit took 15 µs longer
    /// with it, where on two it took 15-20 µs less (`docs/BENCHMARKS.md`).
    pub fn start(key: SigningKey) -> std::io::Result<Option<Self>> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return Ok(None);
        }
        Self::start_on_any_cores(key).map(Some)
    }

    fn start_on_any_cores(key: SigningKey) -> std::io::Result<Self> {
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

/// The nice value of the preparing thread: the lowest. It runs when a core
/// would otherwise idle (a lone commit's sync leaves one idle for about
/// 0.1 ms); at normal priority it took its turn right when a nonce was
/// taken, in the middle of that commit, and on one core made it slower
/// (`docs/BENCHMARKS.md`). Under load it gets little time, the ready
/// nonces run out, and the batcher signs the usual way.
const PREPARER_NICE: i32 = 19;

fn prepare_until_dropped(key: &SigningKey, made: &SyncSender<Presignature>) {
    let this_thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(this_thread), PREPARER_NICE) {
        tracing::warn!(%error, "cannot lower the priority of the nonce-preparing thread");
    }
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

    #[test]
    fn prepared_nonces_sign_for_the_node_and_each_is_handed_out_once() {
        let key = SigningKey::random();
        let presigns = Presigns::start_on_any_cores(key.clone()).unwrap();
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
