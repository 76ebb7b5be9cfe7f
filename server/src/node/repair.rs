//! The repair role: keeps every committed entry's shards at their
//! placement homes.
//!
//! Checking every shard of every entry on every pass costs the cluster a
//! read of everything it stores, all the time (it did: an idle cluster of
//! six storage members spent more than half a core on it, and commits
//! waited behind it). A shard goes missing from its home in few ways, and
//! repair looks where each one can have happened:
//!
//! - **New entries**: a put that met the write quorum but not every home.
//!   Each pass checks the entries ordered since the last, presence only (a
//!   member verified every shard it took).
//! - **A member that restarted** (a new boot id), **came back** after not
//!   answering, or **found damage** (its count of damaged shards grew): it
//!   may hold less than before, so every shard homed on it is checked,
//!   read and verified.
//! - **The membership changed**: homes moved, every shard is checked.
//! - **Damage no read has met**: every shard, verified, when repair starts
//!   and every [`AUDIT_INTERVAL`] after.
//!
//! Checks ask each member about many shards in one call
//! ([`StorageSet::check_homes`]); what is missing or damaged is rebuilt
//! from any `k` verified shards and stored at home
//! ([`StorageSet::restore`]). Entries with a shard still not at home (its
//! member down, too few shards to rebuild) are the under-replicated count.
//! Passes are [`REPAIR_PAUSE`] apart.

use crate::node::storage_set::{HomeCheck, MemberLook, StorageSet};
use ordo_log::limits::MAX_READ_BATCH;
use ordo_log::placement::{MemberId, place};
use ordo_log::{EntryHeader, Sequencer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Pause between repair passes.
pub const REPAIR_PAUSE: Duration = Duration::from_secs(2);

/// How often every shard is read and verified at its home, to find damage
/// no read has met. Each audit reads everything the cluster stores once.
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(3600);

/// Entries with shards not at home that repair keeps track of (about 100
/// bytes each); past it the count stops growing, and the entries are
/// found again by the next check of their members.
pub const MAX_TRACKED_UNDER_REPLICATED: usize = 1_000_000;

/// What repair counts, for the metrics page.
#[derive(Debug, Default)]
pub struct RepairCounters {
    /// Passes completed.
    pub passes: AtomicU64,
    /// Shards rebuilt and stored at their homes.
    pub restored: AtomicU64,
    /// Entries with a shard not at home (missing, damaged, its member not
    /// answering) that repair has not restored.
    pub under_replicated: AtomicU64,
    /// Entries whose restore failed in the last pass (too few shards left,
    /// the home not answering).
    pub failed: AtomicU64,
    /// What the last pass settled: the members it placed shards on, and
    /// the seq below which it found every entry at home among them.
    pub settled: std::sync::Mutex<Settled>,
}

/// What a repair pass found at home, for `ordo cluster storage remove`:
/// a draining member may go once a pass that left it out of `homes` has
/// settled every entry below the log's tail.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The members the pass placed shards on.
    pub homes: Vec<MemberId>,
    /// Every entry below this seq had its shards at those homes.
    pub below: u64,
}

impl RepairCounters {
    /// The counters in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        use crate::node::metrics::{counter, gauge};
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            out,
            "ordo_repair_passes_total",
            "Repair passes (new entries, and members that need a second look).",
            read(&self.passes),
        );
        counter(
            out,
            "ordo_repair_shards_restored_total",
            "Shards rebuilt and stored at their homes.",
            read(&self.restored),
        );
        gauge(
            out,
            "ordo_repair_under_replicated_entries",
            "Entries with a shard not at its home that repair has not restored.",
            read(&self.under_replicated),
        );
        gauge(
            out,
            "ordo_repair_failed_entries",
            "Entries whose restore failed in the last pass.",
            read(&self.failed),
        );
    }
}

/// Runs repair passes until the task is dropped.
pub async fn run(
    sequencer: Arc<dyn Sequencer>,
    storage: StorageSet,
    counters: Arc<RepairCounters>,
) {
    let mut repair = Repair {
        sequencer,
        storage,
        counters,
        checked: 0,
        looks: BTreeMap::new(),
        missing: BTreeMap::new(),
        last_audit: None,
    };
    loop {
        repair.pass().await;
        tokio::time::sleep(REPAIR_PAUSE).await;
    }
}

/// Repair's memory between passes (soft: a restarted repair audits).
struct Repair {
    sequencer: Arc<dyn Sequencer>,
    storage: StorageSet,
    counters: Arc<RepairCounters>,
    /// Entries below this seq have been checked at every home at least once.
    checked: u64,
    /// What each member said at the last pass; `None` for one that did not
    /// answer (or whose check must be done again).
    looks: BTreeMap<MemberId, Option<MemberLook>>,
    /// Entries by seq with shards not at home: indices of those shards.
    missing: BTreeMap<u64, BTreeSet<u16>>,
    /// When every shard was last checked, verified.
    last_audit: Option<Instant>,
}

/// What one pass checks: entries, members to ask, whether to verify.
struct Sweep<'a> {
    from: u64,
    to: u64,
    asked: &'a BTreeSet<MemberId>,
    verify: bool,
}

impl Repair {
    /// One pass: an audit when one is due, else the members that need a
    /// second look over the entries checked before, then the new entries.
    async fn pass(&mut self) {
        let looks = self.storage.identify().await;
        let answering: BTreeSet<MemberId> = (looks.iter())
            .filter(|(_, look)| look.is_some())
            .map(|(&id, _)| id)
            .collect();
        let moved = !looks.keys().eq(self.looks.keys());
        let suspects = self.suspects(&looks);
        let audit_due = self
            .last_audit
            .is_none_or(|last| last.elapsed() >= AUDIT_INTERVAL);
        self.looks = looks;
        self.counters.failed.store(0, Ordering::Relaxed);
        let tail = self.sequencer.tail();
        if audit_due || moved {
            self.missing.clear();
            let sweep = Sweep {
                from: 0,
                to: tail,
                asked: &answering,
                verify: true,
            };
            self.checked = self.sweep(&sweep).await;
            self.last_audit = (self.checked == tail).then(Instant::now);
        } else {
            if !suspects.is_empty() {
                let sweep = Sweep {
                    from: 0,
                    to: self.checked,
                    asked: &suspects,
                    verify: true,
                };
                if self.sweep(&sweep).await < self.checked {
                    suspects.iter().for_each(|&m| self.forget(m));
                }
            }
            let sweep = Sweep {
                from: self.checked,
                to: tail,
                asked: &answering,
                verify: false,
            };
            self.checked = self.sweep(&sweep).await;
        }
        let tracked = self.missing.len() as u64;
        self.counters
            .under_replicated
            .store(tracked, Ordering::Relaxed);
        self.record_settled();
        self.counters.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// Records what this pass settled. A pass during which the membership
    /// changed settled nothing under the new one (the next pass sweeps
    /// again), and neither did one that left a member's state unknown (it
    /// did not answer, or a second look at it failed).
    fn record_settled(&self) {
        let homes: BTreeSet<MemberId> = self.looks.keys().copied().collect();
        let unchanged = self.storage.active_ids() == homes;
        let all_known = self.looks.values().all(Option::is_some);
        let first_missing = self.missing.keys().next().copied();
        let below = match unchanged && all_known {
            true => first_missing.map_or(self.checked, |seq| seq.min(self.checked)),
            false => 0,
        };
        let settled = Settled {
            homes: homes.into_iter().collect(),
            below,
        };
        *self
            .counters
            .settled
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = settled;
    }

    /// Members answering now that restarted, came back, or found damage
    /// since the last pass.
    fn suspects(&self, looks: &BTreeMap<MemberId, Option<MemberLook>>) -> BTreeSet<MemberId> {
        (looks.iter())
            .filter(|(id, look)| look.is_some() && self.looks.get(id) != Some(look))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Makes `member` a suspect again at the next pass it answers.
    fn forget(&mut self, member: MemberId) {
        self.looks.insert(member, None);
    }

    /// Checks `sweep`'s entries and restores what is broken; returns the
    /// seq it got to (`sweep.to` unless the headers or a check failed).
    async fn sweep(&mut self, sweep: &Sweep<'_>) -> u64 {
        let mut at = sweep.from;
        while at < sweep.to {
            let max = MAX_READ_BATCH.min((sweep.to - at) as usize);
            let headers = match self.sequencer.read(at, max).await {
                Ok(headers) if !headers.is_empty() => headers,
                Ok(_) => return at,
                Err(e) => {
                    tracing::warn!(error = %e, at, "repair could not read headers");
                    return at;
                }
            };
            let found = match (self.storage)
                .check_homes(&headers, sweep.asked, sweep.verify)
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, at, "repair could not check shards");
                    return at;
                }
            };
            found.unanswered.iter().for_each(|&m| self.forget(m));
            self.settle(&headers, sweep.asked, &found).await;
            at += headers.len() as u64;
        }
        at
    }

    /// Restores the broken shards `found` in `headers`, and keeps count of
    /// the shards still not at home.
    async fn settle(
        &mut self,
        headers: &[EntryHeader],
        asked: &BTreeSet<MemberId>,
        found: &HomeCheck,
    ) {
        let unknown: BTreeSet<MemberId> = (self.looks.iter())
            .filter(|(_, look)| look.is_none())
            .map(|(&id, _)| id)
            .collect();
        let members: BTreeSet<MemberId> = self.looks.keys().copied().collect();
        for (position, header) in headers.iter().enumerate() {
            let entry = &header.entry;
            let Ok(homes) = place(&entry.commitment, entry.geometry.total_shards(), &members)
            else {
                continue;
            };
            let mut still = self.missing.remove(&header.seq).unwrap_or_default();
            still.retain(|&i| !asked.contains(&homes[usize::from(i)]));
            still.extend(
                (0..homes.len() as u16).filter(|&i| unknown.contains(&homes[usize::from(i)])),
            );
            if let Some(broken) = found.broken.get(&position) {
                still.extend(self.restore(header, broken).await);
            }
            if !still.is_empty() && self.missing.len() < MAX_TRACKED_UNDER_REPLICATED {
                self.missing.insert(header.seq, still);
            }
        }
    }

    /// Restores `broken` shards of `header`'s entry; returns those that
    /// are still not at home.
    async fn restore(&self, header: &EntryHeader, broken: &[u16]) -> Vec<u16> {
        let entry = &header.entry;
        match (self.storage)
            .restore(&entry.commitment, &entry.geometry, broken)
            .await
        {
            Ok(()) => {
                let restored = broken.len() as u64;
                self.counters
                    .restored
                    .fetch_add(restored, Ordering::Relaxed);
                tracing::info!(seq = header.seq, shards = ?broken, "repaired");
                Vec::new()
            }
            Err(e) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(seq = header.seq, error = %e, "entry not repaired");
                broken.to_vec()
            }
        }
    }
}
