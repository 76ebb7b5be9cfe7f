//! How the suite gets engines, and how it runs a property.

use crate::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Random cases each property runs.
pub const CASES: u32 = 48;

/// How the suite gets engines.
pub trait EngineHarness {
    /// The engine under test.
    type Engine: Engine;

    /// A new, empty engine.
    fn fresh(&mut self) -> Self::Engine;

    /// `engine` closed and opened again over the same files; `None` for an
    /// engine that keeps nothing across that (an in-memory one).
    fn reopen(&mut self, engine: Self::Engine) -> Option<Self::Engine>;
}

/// The harness of [`crate::MemEngine`]: nothing survives a reopen.
#[derive(Debug, Default)]
pub struct MemHarness;

impl EngineHarness for MemHarness {
    type Engine = crate::MemEngine;

    fn fresh(&mut self) -> crate::MemEngine {
        crate::MemEngine::new()
    }

    fn reopen(&mut self, _engine: crate::MemEngine) -> Option<crate::MemEngine> {
        None
    }
}

pub(super) fn small_key() -> impl Strategy<Value = Vec<u8>> {
    // Few distinct keys, so that overwrites and deletes hit existing ones;
    // zero bytes and prefixes included.
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
        0..4,
    )
}

pub(super) fn run<V: std::fmt::Debug>(
    name: &str,
    strategy: impl Strategy<Value = V>,
    test: impl Fn(V) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("engine conformance: {name}: {failure}");
    }
}
