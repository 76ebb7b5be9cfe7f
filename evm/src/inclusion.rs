//! Where in the chain a header was ordered, and checking it there.
//!
//! A header's **origin** is the `Appended` event that carries it: the
//! block (number and hash), the transaction and the event's index in the
//! block. A blob certificate on a log a chain orders carries each part's
//! origin (and the first header's, which names the log), and [`check`]
//! verifies them against an endpoint of the verifier's choosing: the
//! receipt holds that event, emitted by the contract the verifier names,
//! carrying exactly that header; the block is still the canonical one at
//! its height, at least `confirmations` deep.

use crate::contract::{OrdoLog, ordo_header};
use alloy::primitives::{Address as ChainAddress, B256};
use alloy::providers::{DynProvider, Provider};
use ordo_log::EntryHeader;

/// The event that carried a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOrigin {
    /// The block's number.
    pub block_number: u64,
    /// The block's hash.
    pub block_hash: [u8; 32],
    /// The transaction's hash.
    pub tx_hash: [u8; 32],
    /// The event's index in the block.
    pub log_index: u64,
}

/// One event as the follower saw it: its origin and the seqs it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowedEvent {
    /// Its first seq.
    pub first: u64,
    /// How many headers it carried.
    pub count: u64,
    /// Where it is.
    pub origin: EventOrigin,
}

impl FollowedEvent {
    /// The event `log` is, if it has every field a mined event has.
    pub fn of(log: &alloy::rpc::types::Log, first: u64, count: u64) -> Option<Self> {
        Some(Self {
            first,
            count,
            origin: EventOrigin {
                block_number: log.block_number?,
                block_hash: log.block_hash?.0,
                tx_hash: log.transaction_hash?.0,
                log_index: log.log_index?,
            },
        })
    }

    /// Whether it carried `seq`.
    pub fn holds(&self, seq: u64) -> bool {
        (self.first..self.first + self.count).contains(&seq)
    }
}

/// What a verifier expects of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The chain's id.
    pub chain_id: u64,
    /// The log's contract.
    pub contract: ChainAddress,
    /// How deep each block must be.
    pub confirmations: u64,
}

/// Why an origin did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The endpoint failed.
    #[error("the chain's endpoint: {0}")]
    Rpc(String),
    /// The endpoint serves another chain.
    #[error("the endpoint serves chain {served}, not chain {expected}")]
    WrongChain {
        /// Expected.
        expected: u64,
        /// Served.
        served: u64,
    },
    /// A header is not where its origin says.
    #[error("entry {seq}: {reason}")]
    NotThere {
        /// The header's seq.
        seq: u64,
        /// What did not match.
        reason: String,
    },
}

/// Checks that each header was ordered at its origin (see the module's
/// documentation), through `provider`.
pub async fn check(
    provider: &DynProvider,
    expected: Expected,
    items: &[(EntryHeader, EventOrigin)],
) -> Result<(), InclusionError> {
    let rpc = |e: alloy::transports::TransportError| InclusionError::Rpc(e.to_string());
    let served = provider.get_chain_id().await.map_err(rpc)?;
    if served != expected.chain_id {
        return Err(InclusionError::WrongChain {
            expected: expected.chain_id,
            served,
        });
    }
    let head = provider.get_block_number().await.map_err(rpc)?;
    for (header, origin) in items {
        check_one(provider, expected, head, header, origin).await?;
    }
    Ok(())
}

async fn check_one(
    provider: &DynProvider,
    expected: Expected,
    head: u64,
    header: &EntryHeader,
    origin: &EventOrigin,
) -> Result<(), InclusionError> {
    let seq = header.seq;
    let not = |reason: String| Err(InclusionError::NotThere { seq, reason });
    let rpc = |e: alloy::transports::TransportError| InclusionError::Rpc(e.to_string());
    let Some(receipt) = (provider
        .get_transaction_receipt(B256::from(origin.tx_hash))
        .await)
        .map_err(rpc)?
    else {
        return not("no such transaction on this chain".into());
    };
    if receipt.block_hash.map(|h| h.0) != Some(origin.block_hash)
        || receipt.block_number != Some(origin.block_number)
    {
        return not("the transaction is in another block".into());
    }
    let canonical = (provider
        .get_block_by_number(origin.block_number.into())
        .await)
        .map_err(rpc)?;
    if canonical.map(|b| b.header.hash.0) != Some(origin.block_hash) {
        return not(format!(
            "block {} is no longer canonical",
            origin.block_number
        ));
    }
    if head + 1 < origin.block_number + expected.confirmations {
        return not(format!(
            "block {} is not {} blocks deep yet",
            origin.block_number, expected.confirmations
        ));
    }
    let log = receipt
        .inner
        .logs()
        .iter()
        .find(|l| l.log_index == Some(origin.log_index));
    let Some(log) = log.filter(|l| l.address() == expected.contract) else {
        return not("the transaction holds no event of the contract at that index".into());
    };
    let Ok(event) = log.log_decode::<OrdoLog::Appended>() else {
        return not("the event is not an Appended event".into());
    };
    let event = &event.inner.data;
    let carried =
        (seq.checked_sub(event.first)).and_then(|i| event.headers.get(usize::try_from(i).ok()?));
    let Some(carried) = carried else {
        return not("the event does not carry this seq".into());
    };
    match ordo_header(seq, carried, event.submitter) {
        Ok(found) if found == *header => Ok(()),
        Ok(_) => not("the event carries another header at this seq".into()),
        Err(e) => not(format!("the event's header does not decode: {e}")),
    }
}
