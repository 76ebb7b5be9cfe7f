//! The node's SQL store (over its replica and commit path, in process)
//! against the conformance suite every `ordo_sql::Store` must pass; the
//! in-process `LocalStore` runs it in ordo-sql's own tests.

use ordo_server::node::commits::BatchLimits;
use ordo_server::node::run::{DevConfig, LocalNode};
use ordo_server::node::sql::NodeSqlStore;
use std::sync::Arc;

#[test]
fn the_node_sql_store_passes_the_store_suite() {
    let data = tempfile::tempdir().expect("temporary directory");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = DevConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        metrics_listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data.path().to_path_buf(),
        cli_key: false,
        log_appenders: vec![],
        batch: BatchLimits::default(),
        mining: None,
        da: Default::default(),
        serving_threads: 0,
    };
    let node = runtime
        .block_on(LocalNode::start(&config))
        .expect("node starts");
    let parts = &node.parts;
    let made = parts
        .sql
        .ensure_stream(&parts.snapshots, &parts.commits, &*parts.sequencer);
    runtime.block_on(made).expect("the SQL stream exists");
    // `Store::commit` blocks this (non-runtime) thread until the log
    // decides; the SQL service awaits the same commits on the runtime.
    let store = Arc::new(NodeSqlStore::new(
        parts.snapshots.clone(),
        parts.commits.clone(),
        parts.sql.clone(),
        runtime.handle().clone(),
    ));
    ordo_sql::conformance::store(|| store.clone());
    runtime.block_on(async { node.stop() });
}
