//! Streams a node makes for itself: the CLI user's default stream on first
//! start, and the SQL stream on first SQL use.

use crate::node::handles::{Commits, Snapshots};
use anyhow::Context;
use ordo_log::Sequencer;
use std::path::Path;
use std::sync::Arc;

/// Creates stream `name` of `key` once the replica has caught up with the
/// log as it was when called, unless the stream exists by then.
pub async fn ensure_stream(
    snapshots: &Snapshots,
    commits: &Commits,
    sequencer: &dyn Sequencer,
    key: &ordo_txn::SigningKey,
    name: &str,
) -> anyhow::Result<()> {
    let at = snapshots
        .applied_through(sequencer.tail())
        .await
        .context("the replica stopped while catching up")?
        .version;
    let name = name.as_bytes().to_vec();
    let stream = ordo_txn::stream_id(&ordo_txn::address_of(key), &name);
    if ordo_txn::replay::fact_holds(&snapshots.state, &stream, &ordo_txn::Fact::Exists, at)? {
        return Ok(());
    }
    let id = ordo_client::txn::fresh_id();
    let create = ordo_txn::Transaction::create_stream(id, at, name.clone());
    let decided = commits.commit_signed(create, key).await?;
    tracing::info!(
        outcome = decided.outcome.kind(),
        stream = %String::from_utf8_lossy(&name),
        "created a stream"
    );
    Ok(())
}

/// First start: a key for the CLI user (`DATA_DIR/cli.key`) and a stream
/// named [`ordo_client::DEFAULT_STREAM`] owned by it, so `ordo kv` works
/// with no set-up. Later starts find both and do nothing (a start that died
/// in between finishes the job).
///
/// On a first start the stream is made before serving, so clients find it
/// at once; later starts must not wait for replay before serving, so the
/// check runs aside.
pub async fn ensure_cli_identity(
    snapshots: Snapshots,
    commits: Commits,
    sequencer: Arc<dyn Sequencer>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let path = data_dir.join("cli.key");
    let first_start = !path.exists();
    let key = match first_start {
        false => ordo_client::keyfile::load(&path)?,
        true => ordo_client::keyfile::create(&path)?,
    };
    let address = ordo_client::keyfile::address_hex(&key);
    tracing::info!(key = %path.display(), %address, "CLI identity");
    let name = ordo_client::DEFAULT_STREAM;
    if first_start {
        return ensure_stream(&snapshots, &commits, &*sequencer, &key, name).await;
    }
    tokio::spawn(async move {
        if let Err(error) = ensure_stream(&snapshots, &commits, &*sequencer, &key, name).await {
            tracing::warn!(%error, stream = name, "could not check a stream");
        }
    });
    Ok(())
}
