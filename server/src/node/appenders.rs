//! Who may append raw entries to the log (`Log.Append`), and the nonces
//! that keep a captured append from being sent twice.
//!
//! Raw entries bypass the transaction path, so only accounts the operator
//! names (`log_appenders`) may write them. Each append is signed over a
//! nonce that must exceed the last one its appender used; the last nonces
//! live in `DATA_DIR/append-nonces`, written (and synced) before the append
//! is accepted, so a restart does not reopen the door to a replay.

use ordo_txn::Address;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most accounts a node lets append raw entries: a short list of
/// operators' and gateways' keys, read in full on every start.
pub const MAX_LOG_APPENDERS: usize = 64;

/// Why a raw append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendRefusal {
    /// The signer is not one of the node's appenders.
    #[error("account 0x{} may not append raw entries to this node's log (see `log_appenders`)", ordo_txn::ids::hex(.0))]
    NotAnAppender(Address),
    /// The nonce is not above the appender's last one.
    #[error(
        "nonce {nonce} is not above the last one this appender used ({last}): a replayed or reordered append"
    )]
    StaleNonce {
        /// The nonce given.
        nonce: u64,
        /// The last nonce accepted from the appender.
        last: u64,
    },
    /// The nonce file could not be written: the append is refused rather
    /// than accepted without replay protection.
    #[error("recording the append's nonce: {0}")]
    Io(#[from] std::io::Error),
}

/// The node's appenders and their last nonces.
#[derive(Debug)]
pub struct Appenders {
    allowed: BTreeSet<Address>,
    path: PathBuf,
    last: Mutex<BTreeMap<Address, u64>>,
}

impl Appenders {
    /// `allowed` may append; their last nonces are read from `data_dir`.
    pub fn open(data_dir: &Path, allowed: &[Address]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            allowed.len() <= MAX_LOG_APPENDERS,
            "{} log appenders configured; the limit is {MAX_LOG_APPENDERS}",
            allowed.len()
        );
        let path = data_dir.join("append-nonces");
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => parse_nonces(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        Ok(Self {
            allowed: allowed.iter().copied().collect(),
            path,
            last: Mutex::new(last),
        })
    }

    /// Accepts an append by `signer` with `nonce`, recording the nonce
    /// durably first; refuses strangers and stale nonces.
    pub fn admit(&self, signer: Address, nonce: u64) -> Result<(), AppendRefusal> {
        if !self.allowed.contains(&signer) {
            return Err(AppendRefusal::NotAnAppender(signer));
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let previous = last.get(&signer).copied();
        if let Some(previous) = previous.filter(|&p| nonce <= p) {
            return Err(AppendRefusal::StaleNonce {
                nonce,
                last: previous,
            });
        }
        last.insert(signer, nonce);
        if let Err(e) = write_nonces(&self.path, &last) {
            match previous {
                Some(previous) => last.insert(signer, previous),
                None => last.remove(&signer),
            };
            return Err(e.into());
        }
        Ok(())
    }
}

/// `0x<address> <nonce>` per line.
fn parse_nonces(text: &str) -> anyhow::Result<BTreeMap<Address, u64>> {
    let mut last = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (address, nonce) = line
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("append-nonces: malformed line {line:?}"))?;
        let address = ordo_client::keyfile::parse_hex::<20>(address)
            .ok_or_else(|| anyhow::anyhow!("append-nonces: bad address in {line:?}"))?;
        last.insert(address, nonce.trim().parse()?);
    }
    Ok(last)
}

/// Replaces the nonce file atomically (write, sync, rename, sync the directory).
fn write_nonces(path: &Path, last: &BTreeMap<Address, u64>) -> std::io::Result<()> {
    use std::io::Write as _;
    let text: String = last
        .iter()
        .map(|(address, nonce)| format!("0x{} {nonce}\n", ordo_txn::ids::hex(address)))
        .collect();
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_and_stale_nonces_are_refused_and_nonces_survive_a_restart() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (appender, stranger) = ([1; 20], [2; 20]);
        let appenders = Appenders::open(dir.path(), &[appender]).expect("opens");
        assert!(matches!(
            appenders.admit(stranger, 1),
            Err(AppendRefusal::NotAnAppender(_))
        ));
        appenders.admit(appender, 5).expect("a first nonce");
        assert!(matches!(
            appenders.admit(appender, 5),
            Err(AppendRefusal::StaleNonce { nonce: 5, last: 5 })
        ));
        drop(appenders);
        let reopened = Appenders::open(dir.path(), &[appender]).expect("reopens");
        assert!(
            reopened.admit(appender, 4).is_err(),
            "a replay after a restart"
        );
        reopened.admit(appender, 6).expect("a higher nonce");
    }
}
