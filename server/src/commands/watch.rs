//! `ordo watch`: committed changes under a prefix, as they happen.

use crate::commands::json::{self, JsonBytes};
use crate::commands::target::Target;
use clap::Args;
use serde::Serialize;

/// Options of `ordo watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Node, key and stream.
    #[command(flatten)]
    pub target: Target,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Start after this version (the last one you saw); 0: from the beginning.
    #[arg(long, default_value_t = 0)]
    pub after_version: u64,
}

/// One change, as `--json` prints it.
#[derive(Debug, Serialize)]
struct ChangeJson {
    version: u64,
    change: &'static str,
    key: JsonBytes,
    value: JsonBytes,
}

/// Prints committed changes as they happen, one line each, until stopped.
pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let (_, stream, client) = args.target.connect().await?;
    let mut events = client
        .watch(stream, args.prefix.as_bytes(), args.after_version)
        .await?;
    while let Some(event) = events.message().await? {
        let change = if event.deleted { "del" } else { "put" };
        if args.target.json {
            json::print(&ChangeJson {
                version: event.version,
                change,
                key: JsonBytes::of(&event.key),
                value: JsonBytes::of(&event.value),
            })?;
        } else {
            let key = String::from_utf8_lossy(&event.key);
            let value = String::from_utf8_lossy(&event.value);
            println!("{}\t{change}\t{key}\t{value}", event.version);
        }
    }
    Ok(())
}
