//! # ordo-raft: the replicated sequencer
//!
//! Entry headers ordered by an [openraft] cluster: every voter keeps raft's
//! log and the header log on RocksDB, and a header is acknowledged once a
//! quorum of voters has it on disk. This is the sequencer a cluster of
//! `ordo node`s runs; `ordo dev` keeps its local one.
//!
//! ## Layout
//!
//! - [`types`]: what raft agrees on ([`HeaderBatch`]) and what applying it
//!   answers ([`Assigned`]).
//! - [`store`]: raft's log and vote, and the header log as raft's state
//!   machine, in one RocksDB instance.
//! - [`network`]: raft's RPCs over gRPC (`ordo.cluster.v1.Sequencer`), both
//!   halves, and the voter's service around them.
//! - [`appends`]: how a voter takes appends: the `Append` RPC followers
//!   forward through, the `AppendMany` stream gateways send on, and raft's
//!   AppendEntries stream, each answered in order.
//! - [`leader_queue`]: the queue behind the `Append` RPC, so appends from
//!   many members share raft entries.
//! - [`remote`]: [`RemoteSequencer`], the voters' sequencer from a member
//!   that is not one (appends to the leader, the tail from a followed voter).
//! - [`tls`]: mutual TLS between members, and making the cluster's
//!   certificate authority and member certificates.
//! - [`sequencer`]: [`RaftSequencer`], a voter as ordo's `Sequencer`:
//!   batching, forwarding to the leader, waiting for the local apply.
//! - [`reports`]: what members report about themselves, kept by each
//!   voter for `ordo cluster status`.
//!
//! ## Invariants
//!
//! - Seqs are assigned when a batch is applied, so they are gap-free and the
//!   same on every voter, whatever raft indexes the batches took.
//! - Raft's writes are synced before openraft is told they are done; the
//!   header log is derived from the committed raft log and rebuilt from it.

pub mod appends;
pub mod leader_queue;
pub mod network;
pub mod remote;
pub mod reports;
pub mod sequencer;
pub mod store;
pub mod tls;
pub mod types;

pub use network::VoterServer;
pub use remote::RemoteSequencer;
pub use reports::{MAX_REPORTED_MEMBERS, MemberReports, ReportError};
pub use sequencer::{RaftSequencer, StartError, VoterConfig, raft_config};
pub use store::{HeaderMachine, HeaderReader, LogStore, OpenError, open_store};
pub use tls::{PeerTls, TlsError};
pub use types::{Assigned, HeaderBatch, MAX_BATCH_DESCRIPTORS, Node, NodeId, TypeConfig};
