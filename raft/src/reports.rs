//! What members report about themselves, kept by each voter for `ordo
//! cluster status`: the last report of every member, with its age.
//!
//! Soft state on purpose: nothing is decided on a report (placement and
//! membership never read it), it is not replicated, and a restarted voter
//! knows a member again at its next report, about a second later.

use ordo_proto::cluster::v1::{MemberReport, SeenMember};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most members a voter keeps reports of; reports from more are refused,
/// so a misbehaving member cannot grow a voter's memory without bound.
pub const MAX_REPORTED_MEMBERS: usize = 4096;

/// Longest list of roles a report may carry, and longest address.
const MAX_REPORT_ROLES: usize = 16;
const MAX_REPORT_TEXT: usize = 256;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// [`MAX_REPORTED_MEMBERS`] members already report here.
    #[error("{MAX_REPORTED_MEMBERS} members already report to this voter")]
    TooManyMembers,
    /// A field breaks its bound.
    #[error("the report's {0} is too long")]
    TooLong(&'static str),
}

/// The last report of each member.
#[derive(Debug, Default)]
pub struct MemberReports {
    last: Mutex<BTreeMap<u64, (MemberReport, Instant)>>,
}

impl MemberReports {
    /// Keeps `report` as its member's latest.
    pub fn record(&self, report: MemberReport) -> Result<(), ReportError> {
        if report.roles.len() > MAX_REPORT_ROLES
            || report.roles.iter().any(|r| r.len() > MAX_REPORT_TEXT)
        {
            return Err(ReportError::TooLong("roles"));
        }
        if report.peer_addr.len() > MAX_REPORT_TEXT || report.client_addr.len() > MAX_REPORT_TEXT {
            return Err(ReportError::TooLong("address"));
        }
        // Repair places on at most as many members as placement considers.
        if report.repair_homes.len() > ordo_log::placement::MAX_STORAGE_MEMBERS {
            return Err(ReportError::TooLong("repair_homes"));
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if !last.contains_key(&report.id) && last.len() >= MAX_REPORTED_MEMBERS {
            return Err(ReportError::TooManyMembers);
        }
        last.insert(report.id, (report, Instant::now()));
        Ok(())
    }

    /// Every member's last report, by id, with how long ago it came.
    pub fn seen(&self) -> Vec<SeenMember> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.values()
            .map(|(report, at)| SeenMember {
                report: Some(report.clone()),
                age_ms: u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: u64) -> MemberReport {
        MemberReport {
            id,
            roles: vec!["storage".into()],
            peer_addr: "127.0.0.1:1".into(),
            ..MemberReport::default()
        }
    }

    #[test]
    fn the_last_report_of_each_member_is_kept_and_oversized_ones_refused() {
        let reports = MemberReports::default();
        reports.record(report(2)).unwrap();
        let mut newer = report(2);
        newer.shards_held = Some(9);
        reports.record(newer).unwrap();
        reports.record(report(1)).unwrap();
        let seen = reports.seen();
        let ids: Vec<u64> = seen.iter().map(|s| s.report.as_ref().unwrap().id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(seen[1].report.as_ref().unwrap().shards_held, Some(9));
        let mut long = report(3);
        long.peer_addr = "x".repeat(MAX_REPORT_TEXT + 1);
        assert_eq!(reports.record(long), Err(ReportError::TooLong("address")));
        let mut homes = report(4);
        homes.repair_homes = vec![1; ordo_log::placement::MAX_STORAGE_MEMBERS + 1];
        assert_eq!(
            reports.record(homes),
            Err(ReportError::TooLong("repair_homes"))
        );
    }
}
