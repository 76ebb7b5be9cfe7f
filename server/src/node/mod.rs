//! The node runtime: everything a running `ordo` node does. It imports
//! nothing from the client-side commands ([`crate::commands`]).
//!
//! ## Layout
//!
//! - [`run`]: opening a node's stores, starting its roles, serving gRPC,
//!   stopping cleanly on SIGINT/SIGTERM.
//! - [`local_log`]: the log of a node on its own disk (shards and headers
//!   in one RocksDB, or the two-file layout of older data directories).
//! - [`gateway`]: the node's key, the genesis record of a log it founds,
//!   and whether it holds the gateway role.
//! - [`handles`]: what the parts of a node hand each other ([`handles::Snapshots`]
//!   for readers, [`handles::Commits`] for writers).
//! - [`commits`]: the commit path: batching commits into log entries and
//!   waiting for their decisions.
//! - [`gather`]: how long the batcher of a local log waits for the commits
//!   it expects.
//! - [`replica`]: following the log into MVCC state.
//! - [`heads_keeper`]: keeps the state's column of each key's newest
//!   version current, so scans skip history.
//! - [`own_thread`]: a loop on a thread of its own (the batcher), so the
//!   log's writer wakes it without a queue.
//! - [`presigns`]: nonces for the node's entry signatures, prepared ahead
//!   on a thread of their own.
//! - [`verified`]: signatures already checked here, which the replica need
//!   not recover again.
//! - [`own_entries`]: entries attested here, which the replica takes
//!   already decoded.
//! - [`services`]: the gRPC services.
//! - [`sql`]: the SQL store over the node, and the key SQL signs with.
//! - [`streams`]: streams the node makes for itself (the CLI user's default
//!   stream, the SQL stream).
//! - [`appenders`]: who may append raw entries, and their nonces.
//! - [`metrics`]: Prometheus metrics over HTTP.
//! - [`config`]: `ordo dev`'s TOML file and its defaults.
//! - [`da`]: data availability: dispersing blobs into the log, their
//!   records, retrieval and certificates, and the expirer.
//! - [`storage_members`]: the storage membership recorded in the log (keys
//!   of the system stream), which gateways and replicas follow.
//! - [`storage_set`]: the cluster's storage members as one shard store
//!   (placement, write quorum, reads from any `k` verified shards).
//! - [`put_pipe`]: one long-lived put stream per storage member, which
//!   `storage_set` sends every shard put through.
//! - [`repair`]: the repair role, restoring shards missing from their homes.
//! - [`miner`]: storage mining: sealing the shards this node stores,
//!   searching each epoch's attempts, submitting hits.
//! - [`reporter`]: a cluster member's reports to the voters, for `ordo
//!   cluster status`.
//! - [`cluster_node`]: `ordo node`, one member of a cluster, and its file.
//! - [`cluster_client`]: a member's gateway and replica roles: `ordo dev`'s
//!   client-facing roles over the cluster's log.

pub mod appenders;
pub mod cluster_client;
pub mod cluster_node;
pub mod commits;
pub mod compactor;
pub mod config;
pub mod da;
pub mod gateway;
pub mod gather;
pub mod handles;
pub mod heads_keeper;
pub mod local_log;
pub mod metrics;
pub mod miner;
pub mod own_entries;
pub mod own_thread;
pub mod presigns;
pub mod put_pipe;
pub mod repair;
pub mod replica;
pub mod reporter;
pub mod run;
pub mod services;
pub mod serving;
pub mod sql;
pub mod storage_members;
pub mod storage_set;
pub mod streams;
pub mod verified;
