//! The development chain of `ordo_evm::devchain`, started from the anvil
//! `scripts/setup.sh` installed in this repository.

#![allow(dead_code, unused_imports)]

pub use ordo_evm::devchain::{Anvil, CHAIN_ID, Miner};

/// Starts anvil with `args`.
pub fn anvil(args: &[&str]) -> Anvil {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Anvil::start(&ordo_evm::devchain::npm_anvil(&root), args)
}
