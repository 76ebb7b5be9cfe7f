//! A member's reports to the voters: what it is and how far it has got,
//! about once a second, for `ordo cluster status` (see
//! `ordo_raft::reports`). A voter member records its own report directly;
//! every member also sends it to each voter its file names.

use crate::node::repair::RepairCounters;
use ordo_log::RocksShardStore;
use ordo_proto::cluster::v1::MemberReport;
use ordo_raft::{PeerTls, RaftSequencer};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a member reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A replica's applied position and the tail it knows of.
pub type Position = Arc<dyn Fn() -> (u64, u64) + Send + Sync>;

/// Who the member is and where its figures come from.
pub struct ReportSources {
    /// Its id.
    pub id: u64,
    /// Its roles, as its file names them.
    pub roles: Vec<String>,
    /// Its peer address.
    pub peer_addr: String,
    /// Where it serves clients, if it does.
    pub client_addr: Option<String>,
    /// Its own voter, if it is one.
    pub voter: Option<Arc<RaftSequencer>>,
    /// Its shard store, if it stores.
    pub shards: Option<Arc<RocksShardStore>>,
    /// Its repair counters, if it repairs.
    pub repair: Option<Arc<RepairCounters>>,
    /// Its replica's position, if it runs one.
    pub replica: Option<Position>,
}

impl ReportSources {
    fn report(&self) -> MemberReport {
        let (applied_seq, known_tail) = match &self.replica {
            Some(position) => {
                let (applied, tail) = position();
                (Some(applied), Some(tail))
            }
            None => (None, None),
        };
        let repair = self.repair.as_ref();
        let settled = repair.map(|r| r.settled.lock().unwrap_or_else(|p| p.into_inner()).clone());
        MemberReport {
            id: self.id,
            roles: self.roles.clone(),
            peer_addr: self.peer_addr.clone(),
            client_addr: self.client_addr.clone().unwrap_or_default(),
            applied_seq,
            known_tail,
            shards_held: self.shards.as_ref().map(|s| s.estimated_shards()),
            repair_passes: repair.map(|r| r.passes.load(Ordering::Relaxed)),
            under_replicated: repair.map(|r| r.under_replicated.load(Ordering::Relaxed)),
            repair_homes: settled
                .as_ref()
                .map(|s| s.homes.clone())
                .unwrap_or_default(),
            repair_settled_below: settled.map(|s| s.below),
        }
    }
}

/// Reports to `voters` (peer addresses) and to the member's own voter
/// every [`REPORT_INTERVAL`], until aborted. A voter that does not answer
/// is skipped until the next round.
pub async fn run(sources: ReportSources, voters: Vec<String>, tls: Arc<PeerTls>) {
    let clients: Vec<_> = voters
        .iter()
        .filter(|addr| **addr != sources.peer_addr)
        .filter_map(|addr| ordo_raft::network::peer_client(addr, &tls).ok())
        .collect();
    loop {
        let report = sources.report();
        if let Some(voter) = &sources.voter
            && let Err(e) = voter.reports().record(report.clone())
        {
            tracing::warn!(error = %e, "this member's own report was refused");
        }
        for client in &clients {
            let mut client = client.clone();
            let sent = client.report(report.clone());
            let _ = tokio::time::timeout(REPORT_INTERVAL, sent).await;
        }
        tokio::time::sleep(REPORT_INTERVAL).await;
    }
}
