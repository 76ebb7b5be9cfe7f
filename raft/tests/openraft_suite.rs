//! openraft's own storage suite against the RocksDB log store and header
//! machine.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use ordo_raft::{HeaderMachine, LogStore, NodeId, TypeConfig, open_store};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, HeaderMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, HeaderMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temporary directory");
        let (log, machine) = open_store(dir.path(), None).expect("opens");
        Ok((dir, log, machine))
    }
}

#[test]
fn the_raft_store_passes_openrafts_storage_suite() {
    if let Err(failed) = Suite::test_all(Builder) {
        panic!("openraft's storage suite: {failed}");
    }
}
