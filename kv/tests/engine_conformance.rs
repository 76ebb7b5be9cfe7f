//! Both engines against the conformance suite every `Engine` must pass
//! (`ordo_kv::conformance`): RocksDB also across a reopen, so that what it
//! returns came from disk.

use ordo_kv::RocksEngine;
use ordo_kv::conformance::{EngineHarness, MemHarness, engine};
use std::path::PathBuf;

/// RocksDB engines, each in a temporary directory kept until the end.
#[derive(Default)]
struct Rocks {
    dirs: Vec<tempfile::TempDir>,
}

impl Rocks {
    fn newest_dir(&self) -> PathBuf {
        self.dirs
            .last()
            .expect("an engine was made")
            .path()
            .to_path_buf()
    }
}

impl EngineHarness for Rocks {
    type Engine = RocksEngine;

    fn fresh(&mut self) -> RocksEngine {
        self.dirs
            .push(tempfile::tempdir().expect("temporary directory"));
        RocksEngine::open(self.newest_dir()).expect("opens")
    }

    fn reopen(&mut self, engine: RocksEngine) -> Option<RocksEngine> {
        drop(engine);
        Some(RocksEngine::open(self.newest_dir()).expect("reopens"))
    }
}

#[test]
fn the_in_memory_engine_passes_the_engine_suite() {
    engine(MemHarness);
}

#[test]
fn the_rocksdb_engine_passes_the_engine_suite() {
    engine(Rocks::default());
}
