//! Retention in replay: how much history the log keeps, decided by the log.
//!
//! The *horizon* is the oldest version the state still answers reads at
//! (see `ordo_kv::retention` for what collection then removes). It is
//! replay state like any other: raised only by a committed
//! [`RetentionOp::Compact`], so every replica of a log has the same
//! horizon at the same position, refuses the same reads and the same old
//! snapshots (`too_old`), and reports the same digest however much it has
//! physically collected.
//!
//! The *policy* says how much history is kept at least:
//!
//! - `keep_versions`: the newest versions are never compacted; replay
//!   refuses a compaction past `applied - keep_versions` whoever sends it.
//! - `keep_secs`: the seconds of history the automatic compactor keeps.
//!   Replay cannot read a clock, so this half is kept by whoever proposes
//!   compactions: a node's compactor compacts only to a version it saw
//!   applied at least `keep_secs` ago (see `docs/RETENTION.md`).
//!
//! Until the log's admin sets a policy, [`Policy::default`] holds. The
//! state is one row of the `Meta` column, written in the batch of the
//! entry that changed it and folded into that entry's digest.

use crate::Outcome;
use crate::attest::SYSTEM_STREAM;
use crate::codec::{Reader, Writer};
use crate::record::RetentionOp;
use ordo_kv::{Column, Engine, MvccError, WriteBatch};

/// Versions kept at least when no policy was set: a day of commits at a
/// dozen per second, and ten times the conflict window.
pub const DEFAULT_KEEP_VERSIONS: u64 = 1_000_000;

/// Seconds of history kept at least when no policy was set: an hour, the
/// retention operators of etcd most often configure.
pub const DEFAULT_KEEP_SECS: u64 = 3_600;

/// Longest time a policy may keep: a year. The compactor remembers when it
/// saw versions applied for this long (in a bounded number of samples).
pub const MAX_KEEP_SECS: u64 = 366 * 24 * 3_600;

/// `keep_versions` that keeps everything: no compaction is ever allowed.
pub const KEEP_ALL_VERSIONS: u64 = u64::MAX;

const STATE_KEY: &[u8] = b"retention/state";

/// Folded into the digest before the state of an entry that changed it.
const DIGEST_MARK: &[u8] = b"retention";

/// How much history the log keeps at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The newest versions never compacted ([`KEEP_ALL_VERSIONS`]: all).
    pub keep_versions: u64,
    /// Seconds of history the automatic compactor keeps.
    pub keep_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            keep_versions: DEFAULT_KEEP_VERSIONS,
            keep_secs: DEFAULT_KEEP_SECS,
        }
    }
}

impl Policy {
    /// The highest horizon this policy allows once `version` is applied.
    pub fn floor(&self, version: u64) -> u64 {
        version.saturating_sub(self.keep_versions)
    }
}

/// The retention state: the policy and the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// How much is kept at least.
    pub policy: Policy,
    /// The oldest version reads are answered at (0: everything is kept).
    pub horizon: u64,
}

/// What the sender of a retention operation may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rights {
    /// Admin of the log (of the system stream).
    pub log_admin: bool,
    /// Holds the gateway role.
    pub gateway: bool,
}

impl Retention {
    /// The state stored in `engine` (the default for a log that never
    /// changed it).
    pub fn load<E: Engine>(engine: &E) -> Result<Self, MvccError> {
        match engine.get(Column::Meta, STATE_KEY)? {
            Some(bytes) => Self::decode(&bytes),
            None => Ok(Self::default()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.policy.keep_versions)
            .u64(self.policy.keep_secs)
            .u64(self.horizon);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, MvccError> {
        let corrupt = |e: crate::codec::DecodeError| MvccError::Corrupt(format!("retention: {e}"));
        let mut r = Reader::new(bytes);
        let state = Self {
            policy: Policy {
                keep_versions: r.u64("keep versions").map_err(corrupt)?,
                keep_secs: r.u64("keep seconds").map_err(corrupt)?,
            },
            horizon: r.u64("horizon").map_err(corrupt)?,
        };
        r.finish().map_err(corrupt)?;
        Ok(state)
    }

    /// Stages the state's row and folds it into the entry's digest.
    pub(crate) fn stage(&self, batch: &mut WriteBatch, digest: &mut blake3::Hasher) {
        let row = self.encode();
        digest.update(DIGEST_MARK).update(&row);
        batch.put(Column::Meta, STATE_KEY.to_vec(), row);
    }

    /// The oldest read version a transaction that read something may have
    /// once `version` is applied: the conflict window's reach, and never
    /// below the horizon (the change records below it may be collected).
    pub fn oldest_checkable(&self, version: u64, conflict_window: u64) -> u64 {
        version.saturating_sub(conflict_window).max(self.horizon)
    }

    /// Decides `op` from a sender with `rights`, with `version` the newest
    /// applied: the new state, or the refusal.
    pub(crate) fn decide(&self, op: &RetentionOp, rights: Rights, version: u64) -> Decision {
        match *op {
            RetentionOp::SetPolicy {
                keep_versions,
                keep_secs,
            } => {
                if !rights.log_admin {
                    return denied("set_retention_policy");
                }
                if keep_secs > MAX_KEEP_SECS {
                    return refused(format!(
                        "a policy keeps at most {MAX_KEEP_SECS} seconds of history, not {keep_secs}"
                    ));
                }
                let policy = Policy {
                    keep_versions,
                    keep_secs,
                };
                Ok(Self { policy, ..*self })
            }
            RetentionOp::Compact { to } => {
                if !rights.log_admin && !rights.gateway {
                    return denied("compact");
                }
                self.compact(to, version)
            }
        }
    }

    fn compact(&self, to: u64, version: u64) -> Decision {
        let floor = self.policy.floor(version);
        if to > version {
            return refused(format!(
                "version {to} is not committed yet (the newest is {version})"
            ));
        }
        if to > floor {
            return refused(format!(
                "the policy keeps the newest {} versions: at version {version} the horizon may rise to {floor}, not {to}",
                self.policy.keep_versions
            ));
        }
        if to <= self.horizon {
            return refused(format!(
                "already compacted to version {}; nothing below it is kept",
                self.horizon
            ));
        }
        Ok(Self {
            horizon: to,
            ..*self
        })
    }
}

/// A retention decision: the new state, or the outcome refusing it.
pub(crate) type Decision = Result<Retention, Outcome>;

fn denied(op: &str) -> Decision {
    Err(Outcome::PermissionDenied {
        op: op.into(),
        stream: SYSTEM_STREAM,
        key: None,
    })
}

fn refused(reason: String) -> Decision {
    Err(Outcome::RetentionRefused { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Rights = Rights {
        log_admin: true,
        gateway: false,
    };

    fn compact(state: &Retention, to: u64, version: u64) -> Decision {
        state.decide(&RetentionOp::Compact { to }, ADMIN, version)
    }

    #[test]
    fn the_state_round_trips_and_refuses_trailing_bytes() {
        let state = Retention {
            policy: Policy {
                keep_versions: 7,
                keep_secs: 9,
            },
            horizon: 11,
        };
        assert_eq!(Retention::decode(&state.encode()), Ok(state));
        let mut longer = state.encode();
        longer.push(0);
        assert!(Retention::decode(&longer).is_err());
    }

    #[test]
    fn a_compaction_stays_within_the_policy_and_only_rises() {
        let state = Retention {
            policy: Policy {
                keep_versions: 10,
                keep_secs: 0,
            },
            horizon: 5,
        };
        assert_eq!(compact(&state, 90, 100).map(|s| s.horizon), Ok(90));
        assert!(compact(&state, 91, 100).is_err(), "past the floor");
        assert!(compact(&state, 5, 100).is_err(), "not above the horizon");
        let all = Retention {
            policy: Policy {
                keep_versions: KEEP_ALL_VERSIONS,
                keep_secs: 0,
            },
            horizon: 0,
        };
        assert!(compact(&all, 1, u64::MAX).is_err(), "keep everything");
    }

    #[test]
    fn the_oldest_checkable_snapshot_is_never_below_the_horizon() {
        let state = Retention {
            horizon: 500,
            ..Retention::default()
        };
        assert_eq!(state.oldest_checkable(1_000, 100), 900);
        assert_eq!(state.oldest_checkable(1_000, 1_000), 500);
    }
}
