//! The `Sequencer` conformance suite against the EVM sequencer, on a
//! local anvil: a fresh `OrdoLog` contract for each check.

mod common;

use common::Anvil;
use ordo_evm::{EvmSequencer, EvmSettings};
use ordo_log::conformance::sequencers::{self, SequencerHarness};
use ordo_log::{EntryDescriptor, Sequencer};
use std::sync::Arc;

/// One check's contract on the shared anvil; an open sequencer appends as
/// dev account 0.
struct EvmHarness {
    anvil: Arc<Anvil>,
    settings: Option<EvmSettings>,
    open: Option<Arc<EvmSequencer>>,
}

#[async_trait::async_trait]
impl SequencerHarness for EvmHarness {
    async fn open(&mut self) -> Arc<dyn Sequencer> {
        if self.settings.is_none() {
            self.settings = Some(self.anvil.deploy().await);
        }
        let settings = self.settings.clone().expect("deployed");
        let sequencer = EvmSequencer::open(settings, Some(Anvil::signer(0)))
            .await
            .expect("opens");
        let sequencer = Arc::new(sequencer);
        self.open = Some(sequencer.clone());
        sequencer
    }

    async fn stop(&mut self, sequencer: Arc<dyn Sequencer>) {
        self.open = None;
        drop(sequencer);
    }

    /// A transaction cut short by a crash is in a block or is not: a chain
    /// has no torn tail to leave.
    fn tear_tail(&mut self) {}

    fn fail_next_write(&mut self) {
        self.open.as_ref().expect("open").write_fault().arm();
    }

    fn recorded(&self, entry: EntryDescriptor) -> EntryDescriptor {
        EntryDescriptor {
            submitter: Anvil::signer(0).address().into_array(),
            ..entry
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evm_sequencer_passes_the_conformance_suite_on_anvil() {
    let anvil = Arc::new(common::anvil(&[]));
    sequencers::sequencer(|| EvmHarness {
        anvil: anvil.clone(),
        settings: None,
        open: None,
    })
    .await;
}
