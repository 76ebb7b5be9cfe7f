//! Each account's dispersal allowance: a bucket of bytes that refills at
//! the configured hourly rate, up to one hour's worth.

use ordo_txn::Address;
use std::collections::HashMap;
use std::time::Instant;

/// Most accounts the quota tracks; past it, buckets that have refilled
/// completely are forgotten (a full bucket and no bucket mean the same).
pub const MAX_TRACKED_ACCOUNTS: usize = 65_536;

/// Byte buckets by account.
#[derive(Debug)]
pub struct Quota {
    bytes_per_hour: u64,
    buckets: HashMap<Address, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Bytes left at `at`.
    left: f64,
    at: Instant,
}

impl Quota {
    /// Allows each account `bytes_per_hour`.
    pub fn new(bytes_per_hour: u64) -> Self {
        Self {
            bytes_per_hour,
            buckets: HashMap::new(),
        }
    }

    /// Takes `bytes` from `account`'s bucket at `now`, or says how many
    /// it holds now.
    pub fn take(&mut self, account: Address, bytes: u64, now: Instant) -> Result<(), u64> {
        let capacity = self.bytes_per_hour as f64;
        let bucket = self.refilled(account, now);
        if bucket.left < bytes as f64 {
            return Err(bucket.left as u64);
        }
        if self.buckets.len() >= MAX_TRACKED_ACCOUNTS {
            self.forget_full(now);
        }
        self.buckets.insert(
            account,
            Bucket {
                left: (bucket.left - bytes as f64).min(capacity),
                at: now,
            },
        );
        Ok(())
    }

    /// Gives `bytes` back to `account` (a dispersal that failed before it
    /// stored anything).
    pub fn refund(&mut self, account: Address, bytes: u64, now: Instant) {
        let capacity = self.bytes_per_hour as f64;
        let bucket = self.refilled(account, now);
        self.buckets.insert(
            account,
            Bucket {
                left: (bucket.left + bytes as f64).min(capacity),
                at: now,
            },
        );
    }

    fn refilled(&self, account: Address, now: Instant) -> Bucket {
        let capacity = self.bytes_per_hour as f64;
        let Some(bucket) = self.buckets.get(&account) else {
            return Bucket {
                left: capacity,
                at: now,
            };
        };
        let hours = now.saturating_duration_since(bucket.at).as_secs_f64() / 3600.0;
        Bucket {
            left: (bucket.left + hours * capacity).min(capacity),
            at: now,
        }
    }

    fn forget_full(&mut self, now: Instant) {
        let capacity = self.bytes_per_hour as f64;
        let full: Vec<Address> = self
            .buckets
            .keys()
            .filter(|a| self.refilled(**a, now).left >= capacity)
            .copied()
            .collect();
        for account in full {
            self.buckets.remove(&account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_account_gets_its_hourly_bytes_then_waits_for_the_refill() {
        let mut quota = Quota::new(3600);
        let start = Instant::now();
        assert_eq!(quota.take([1; 20], 3000, start), Ok(()));
        assert_eq!(quota.take([1; 20], 1000, start), Err(600));
        assert_eq!(
            quota.take([2; 20], 1000, start),
            Ok(()),
            "others are not charged"
        );
        let later = start + Duration::from_secs(400);
        assert_eq!(
            quota.take([1; 20], 1000, later),
            Ok(()),
            "400 s refill 400 bytes"
        );
        quota.refund([1; 20], 5000, later);
        assert_eq!(
            quota.take([1; 20], 3600, later),
            Ok(()),
            "a refund tops up to the cap"
        );
        assert!(quota.take([1; 20], 1, later).is_err());
    }
}
