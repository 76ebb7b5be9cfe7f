//! The file-backed sequencer against the conformance suite every sequencer
//! must pass (the in-memory one runs it in the suite's own tests).

use ordo_log::conformance::{SequencerHarness, sequencer};
use ordo_log::{LocalSequencer, LocalSequencerOptions, Sequencer, WriteFault};
use std::io::Write;
use std::sync::Arc;

/// A log directory, the sequencer open over it, and its fault switch.
struct LocalHarness {
    dir: tempfile::TempDir,
    fault: Arc<WriteFault>,
    open: Option<Arc<LocalSequencer>>,
}

impl LocalHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            fault: Arc::new(WriteFault::default()),
            open: None,
        }
    }
}

#[async_trait::async_trait]
impl SequencerHarness for LocalHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        let options = LocalSequencerOptions {
            write_fault: Some(self.fault.clone()),
            ..LocalSequencerOptions::default()
        };
        let sequencer = Arc::new(LocalSequencer::open(self.dir.path(), options).expect("opens"));
        self.open = Some(sequencer.clone());
        sequencer
    }

    async fn stop(&mut self, _sequencer: Arc<dyn Sequencer>) {
        if let Some(sequencer) = self.open.take() {
            sequencer.close();
        }
    }

    /// Half a frame header, as a crash in the middle of a write leaves it.
    fn tear_tail(&mut self) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("sequencer.log"))
            .expect("the log file exists");
        file.write_all(b"OSQ1\xff\xff\x00\x00partial")
            .expect("appending garbage");
    }

    fn fail_next_write(&mut self) {
        self.fault.arm();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_sequencer_passes_the_sequencer_suite() {
    sequencer(LocalHarness::new).await;
}
