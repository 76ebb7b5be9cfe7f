//! # ordo-evm: the log's order on an EVM chain
//!
//! Entry headers ordered by a contract (`evm/contracts/OrdoLog.sol`), so
//! that parties who do not trust each other, or ordo's operators, share one
//! log. [`EvmSequencer`] is ordo's [`ordo_log::Sequencer`] over it: an
//! append is a chain transaction, acknowledged once its block is
//! `confirmations` deep; the tail follows the contract's `Appended` events
//! up to the confirmed block.
//!
//! ## Layout
//!
//! - [`contract`]: the contract's bindings (from the compiled artifact in
//!   `evm/artifacts/`, checked against the source by
//!   `scripts/evm-contract.sh check`) and the mapping between its headers
//!   and ordo's.
//! - [`devchain`]: a local chain for tests and scripts (anvil from npm)
//!   and deploying the contract.
//! - [`http`]: clients for the endpoint, http or https (rustls on ring).
//! - [`inclusion`]: where a header was ordered (its event) and checking
//!   that against an endpoint, for blob certificates.
//! - [`saved`]: the followed headers kept on disk, so a restart reads
//!   only the blocks after the last one scanned.
//! - [`sequencer`]: [`EvmSequencer`]: batching appends into transactions,
//!   following confirmed events, refusing to go on past a reorg deeper
//!   than the confirmations.
//!
//! ## Invariants
//!
//! - Seqs are the contract's: gap-free from 0, assigned in the order the
//!   chain executed the appends. A reader checks each event's first seq
//!   against the headers it holds and stops on a gap.
//! - A header's submitter is the account the chain authenticated as the
//!   transaction's sender, never what the appender claims.
//! - Only headers in blocks at least `confirmations` deep are used. A block
//!   a header was read from that stops being canonical is a reorg deeper
//!   than that: the sequencer stops with [`ordo_log::SequencerError::Poisoned`]
//!   instead of diverging.

pub mod contract;
pub mod devchain;
pub mod http;
pub mod inclusion;
pub mod saved;
pub mod sequencer;

pub use sequencer::{EvmError, EvmSequencer, EvmSettings, EvmStats, MAX_CONFIRMATIONS};
