//! SQL on a node: the [`ordo_sql::Store`] over the node's replica and commit
//! path, and the principal SQL writes as.
//!
//! SQL data lives in one stream, `sql`, owned by the node's SQL key
//! (`DATA_DIR/sql.key`, made on first start; the stream on first SQL use).
//! Every SQL commit is sent as that key's: attested by the node when it is
//! a gateway (no per-transaction signature), else signed with the key. The
//! SQL surface is one principal as far as ordo's
//! access control goes: whoever can reach the node's gRPC port can run SQL.
//! (Per-user SQL identities, with clients signing their own SQL commits,
//! are not built yet.)

use crate::node::handles::{Commits, Snapshots};

use ordo_log::Sequencer;
use ordo_sql::store::{mvcc_get, mvcc_scan};
use ordo_sql::{Commit, ScanPage, Space, SqlError, Store};
use ordo_txn::attest::{CanonicalItem, Item, ItemError};
use ordo_txn::{Address, Outcome, SigningKey, StreamId};
use std::path::Path;
use std::sync::Arc;

/// The name of the stream SQL data lives in.
pub const SQL_STREAM_NAME: &str = "sql";

/// Who SQL commits are signed by, and the stream they write.
#[derive(Clone)]
pub struct SqlPrincipal {
    /// The signing key.
    pub key: SigningKey,
    /// The key's account (derived once: it costs a curve multiplication).
    pub address: Address,
    /// The SQL stream, owned by `key`.
    pub stream: StreamId,
    /// Set once the stream is known to exist.
    ready: Arc<tokio::sync::OnceCell<()>>,
}

impl std::fmt::Debug for SqlPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("SqlPrincipal")
            .field("stream", &ordo_log::hex(&self.stream))
            .finish()
    }
}

impl SqlPrincipal {
    /// Loads `DATA_DIR/sql.key`, creating it on first start. The stream is
    /// made on first SQL use ([`SqlPrincipal::ensure_stream`]), so a node
    /// that never runs SQL leaves no trace of it in the log.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("sql.key");
        let key = ordo_client::keyfile::load_or_create(&path)?;
        let address = ordo_txn::address_of(&key);
        let stream = ordo_txn::stream_id(&address, SQL_STREAM_NAME.as_bytes());
        Ok(Self {
            key,
            address,
            stream,
            ready: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Creates the SQL stream unless it exists; after the first success this
    /// returns at once.
    pub async fn ensure_stream(
        &self,
        snapshots: &Snapshots,
        commits: &Commits,
        sequencer: &dyn Sequencer,
    ) -> Result<(), String> {
        self.ready
            .get_or_try_init(|| async {
                let name = SQL_STREAM_NAME;
                crate::node::streams::ensure_stream(snapshots, commits, sequencer, &self.key, name)
                    .await
                    .map_err(|e| format!("creating the SQL stream: {e:#}"))
            })
            .await
            .map(|_| ())
    }
}

/// The node's state seen as a SQL store. Its reads are point reads and
/// scans of the replica's state; its commits wait for the log's decision,
/// either on the runtime ([`NodeSqlStore::commit_async`]) or, through
/// [`Store::commit`], by blocking the calling thread.
pub struct NodeSqlStore {
    snapshots: Snapshots,
    commits: Commits,
    principal: SqlPrincipal,
    runtime: tokio::runtime::Handle,
}

impl NodeSqlStore {
    /// A store reading `snapshots` and committing through `commits` as
    /// `principal`, whose commits wait on `runtime`.
    pub fn new(
        snapshots: Snapshots,
        commits: Commits,
        principal: SqlPrincipal,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            snapshots,
            commits,
            principal,
            runtime,
        }
    }

    fn stream(&self) -> StreamId {
        self.principal.stream
    }
}

fn store_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::Store(e.to_string())
}

impl Store for NodeSqlStore {
    fn latest_version(&self) -> Result<u64, SqlError> {
        Ok(self.snapshots.latest_version())
    }

    fn get(&self, key: &[u8], at: u64) -> Result<Option<Vec<u8>>, SqlError> {
        mvcc_get(&self.snapshots.state, &self.stream(), key, at)
    }

    fn scan(
        &self,
        space: Space,
        range: (&[u8], Option<&[u8]>),
        at: u64,
        limit: usize,
    ) -> Result<ScanPage, SqlError> {
        let stream = space.stream(self.stream());
        mvcc_scan(&self.snapshots.state, &stream, range, at, limit)
    }

    /// Waits for the log's decision on the runtime; call it only from a
    /// thread that may block (a server session uses
    /// [`NodeSqlStore::commit_async`]).
    fn commit(&self, commit: Commit) -> Result<Outcome, SqlError> {
        self.runtime.block_on(self.commit_async(commit))
    }
}

impl NodeSqlStore {
    /// Commits `commit` as the SQL principal and waits for the log's
    /// decision without holding a thread.
    pub async fn commit_async(&self, commit: Commit) -> Result<Outcome, SqlError> {
        let item = self.item_for(commit)?;
        let decided = self
            .commits
            .committer
            .commit(item)
            .await
            .map_err(|e| SqlError::Store(format!("commit: {e}")))?;
        Ok(decided.outcome)
    }

    /// The log item that carries `commit`, with its encoding (within
    /// [`ordo_txn::limits::MAX_TXN_BYTES`] and the log's other limits).
    fn item_for(&self, commit: Commit) -> Result<CanonicalItem, SqlError> {
        let tx = commit.into_transaction(
            ordo_client::txn::fresh_id(),
            self.principal.address,
            self.stream(),
        );
        CanonicalItem::new(self.vouch(tx)?).map_err(|e| match e {
            ItemError::Decode(e) => {
                SqlError::LimitExceeded(format!("the transaction is over a limit of the log: {e}"))
            }
            e @ ItemError::NotCanonical => SqlError::Store(e.to_string()),
        })
    }

    /// How the node stands behind a SQL transaction: as a gateway it
    /// attests it (one signature per entry); otherwise it signs it with the
    /// SQL key, as any client would.
    fn vouch(&self, tx: ordo_txn::Transaction) -> Result<Item, SqlError> {
        if self
            .commits
            .node
            .is_gateway(&self.snapshots.state, self.snapshots.latest_version())
            .map_err(store_error)?
        {
            return Ok(Item::Attested(tx));
        }
        let signed = ordo_txn::sign(tx, &self.principal.key).map_err(store_error)?;
        // Signed here: the replica need not recover it again.
        self.commits
            .verified
            .remember(&signed, ordo_txn::sign::signing_hash(&signed.tx));
        Ok(Item::Signed(signed))
    }
}
