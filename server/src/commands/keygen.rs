//! `ordo keygen`: a new signing key file.

use clap::Args;
use ordo_client::keyfile;
use std::path::PathBuf;

/// Options of `ordo keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (never overwritten).
    #[arg(long, default_value = "./ordo.key")]
    pub out: PathBuf,
}

/// Writes a new key file and prints its address.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let key = keyfile::create(&args.out)?;
    println!("{} {}", keyfile::address_hex(&key), args.out.display());
    Ok(())
}
