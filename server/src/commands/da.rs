//! `ordo da`: disperse a file as a blob, follow it, fetch it back, and
//! verify its certificate with no trust in the node (docs/DA.md).

use crate::commands::target::DEFAULT_KEY_FILE;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ordo_client::{Client, keyfile};
use ordo_da::certificate::{Certificate, Trust, verify};
use ordo_proto::v1::{BlobState, BlobStatus};
use ordo_txn::Address;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long `ordo da put` waits for the record after the upload.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(600);

/// Options of `ordo da`.
#[derive(Debug, Args)]
pub struct DaArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DaCommand,
    /// The node: `host:port` or `http://host:port`.
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// Print JSON instead of text (and no progress bars).
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands of `ordo da`.
#[derive(Debug, Subcommand)]
pub enum DaCommand {
    /// Disperse FILE as a blob owned by the key's account; wait for its
    /// record and save its certificate.
    Put {
        /// The file.
        file: PathBuf,
        /// The owner's key file.
        #[arg(long = "key", env = "ORDO_KEY", default_value = DEFAULT_KEY_FILE)]
        key_file: PathBuf,
        /// Seconds to keep the blob (default: the node's).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
        /// Where to save the certificate (default: FILE.ordo-cert).
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Where a blob's dispersal stands.
    Status {
        /// The blob id (64 hex digits).
        id: String,
        /// Whose record (default: any owner's).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Fetch a blob into a file (checked by the node against its KZG
    /// commitment; with --cert, checked here too).
    Get {
        /// The blob id (64 hex digits).
        id: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// Whose record (default: any owner's).
        #[arg(long)]
        owner: Option<String>,
        /// A certificate to check the bytes against, here.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Verify a certificate trusting only the keys named here, or, on a log
    /// a chain orders, only the chain endpoint and contract named here.
    Verify {
        /// The certificate file.
        cert: PathBuf,
        /// A key (0x address) trusted to sign for the log's order:
        /// `ordo status` on a node you trust shows its address; `ordo
        /// cluster status` lists a cluster's voters. Repeat for each.
        #[arg(long = "signer")]
        signers: Vec<String>,
        /// How many of them must have signed.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// On a log a chain orders: the chain endpoint to check the events
        /// against (one you trust).
        #[arg(long)]
        rpc: Option<String>,
        /// On a log a chain orders: the log's contract (0x address).
        #[arg(long)]
        contract: Option<String>,
        /// On a log a chain orders: how deep each event's block must be.
        #[arg(long, default_value_t = 1)]
        confirmations: u64,
        /// The log the certificate must be of (64 hex digits; `ordo status`
        /// shows it).
        #[arg(long)]
        log: Option<String>,
        /// The blob's bytes, to check against the certificate too.
        #[arg(long)]
        blob: Option<PathBuf>,
    },
}

/// Runs `ordo da`.
pub async fn run(args: DaArgs) -> anyhow::Result<()> {
    let json = args.json;
    match args.command {
        DaCommand::Verify {
            cert,
            signers,
            threshold,
            rpc,
            contract,
            confirmations,
            log,
            blob,
        } => {
            let trusted = match rpc {
                Some(rpc) => Trusted::Chain {
                    rpc,
                    contract: contract.context("--rpc needs --contract, the log's contract")?,
                    confirmations,
                },
                None => Trusted::Keys { signers, threshold },
            };
            verify_file(&cert, trusted, log.as_deref(), blob.as_deref(), json).await
        }
        DaCommand::Put {
            file,
            key_file,
            ttl,
            cert,
        } => {
            let client = Client::connect(&args.endpoint).await?;
            put(&client, &file, &key_file, ttl, cert, json).await
        }
        DaCommand::Status { id, owner } => {
            let client = Client::connect(&args.endpoint).await?;
            let status = client
                .blob_status(parse_id(&id)?, parse_owner(owner)?)
                .await?;
            print_status(&status, json);
            Ok(())
        }
        DaCommand::Get {
            id,
            output,
            owner,
            cert,
        } => {
            let client = Client::connect(&args.endpoint).await?;
            get(
                &client,
                parse_id(&id)?,
                parse_owner(owner)?,
                &output,
                cert,
                json,
            )
            .await
        }
    }
}

fn parse_id(text: &str) -> anyhow::Result<[u8; 32]> {
    keyfile::parse_hex::<32>(text).context("a blob id is 64 hex digits")
}

fn parse_owner(text: Option<String>) -> anyhow::Result<Option<Address>> {
    text.map(|t| keyfile::parse_hex::<20>(&t).context("an owner is a 0x address of 40 hex digits"))
        .transpose()
}

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", ordo_client::hex(bytes))
}

/// A bar for `total` bytes on stderr, hidden for JSON output (and by
/// indicatif itself when stderr is no terminal).
fn bytes_bar(total: u64, what: &'static str, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}

async fn put(
    client: &Client,
    file: &Path,
    key_file: &Path,
    ttl: u64,
    cert: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let key = keyfile::load(key_file)?;
    let max = ordo_da::limits::MAX_BLOB_BYTES as u64;
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size == 0 || size > max {
        bail!(
            "{} holds {size} bytes; a blob holds 1 to {max}",
            file.display()
        );
    }
    let blob =
        Arc::new(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
    let bar = bytes_bar(blob.len() as u64, "uploading", json);
    let sent = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (bar, sent) = (bar.clone(), sent.clone());
        tokio::spawn(async move {
            loop {
                bar.set_position(sent.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let accepted = client.disperse(&key, blob.clone(), ttl, sent).await;
    ticker.abort();
    bar.finish_and_clear();
    let accepted = accepted?;
    let blob_id: [u8; 32] =
        accepted.blob_id.clone().try_into().map_err(|_| {
            anyhow::anyhow!("the node answered with a blob id that is not 32 bytes")
        })?;
    let owner = Some(ordo_txn::address_of(&key));
    let status = wait_for_record(client, blob_id, owner, json).await?;
    if status.state() != BlobState::Finalized {
        bail!(
            "dispersal of blob {} failed: {}",
            hex(&blob_id),
            status.reason
        );
    }
    let (certificate, _) = client.certificate(blob_id, owner).await?;
    let cert = cert.unwrap_or_else(|| with_extension(file, "ordo-cert"));
    std::fs::write(&cert, &certificate).with_context(|| format!("writing {}", cert.display()))?;
    print_status(&status, json);
    if !json {
        println!("certificate {}", cert.display());
    }
    Ok(())
}

fn with_extension(file: &Path, extension: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// Follows the dispersal with a spinner until it is finalized or failed.
async fn wait_for_record(
    client: &Client,
    blob: [u8; 32],
    owner: Option<Address>,
    json: bool,
) -> anyhow::Result<BlobStatus> {
    let spinner = match json {
        true => ProgressBar::hidden(),
        false => ProgressBar::new_spinner(),
    };
    spinner.enable_steady_tick(Duration::from_millis(120));
    let status = client
        .wait_for_blob(blob, owner, RECORD_TIMEOUT, |status| {
            spinner.set_message(stage_text(status));
        })
        .await;
    spinner.finish_and_clear();
    Ok(status?)
}

fn stage_text(status: &BlobStatus) -> String {
    match status.state() {
        BlobState::Queued => "committing to the blob (KZG), waiting to store it".into(),
        BlobState::Stored => format!(
            "storing parts: {} of {} done",
            status.parts_done, status.parts
        ),
        BlobState::Ordered => "every part stored and ordered; recording the blob".into(),
        BlobState::Finalized => "recorded".into(),
        BlobState::Failed => format!("failed: {}", status.reason),
        BlobState::Unspecified => "unknown".into(),
    }
}

/// A blob's status as `--json` prints it.
#[derive(Debug, Serialize)]
struct StatusJson {
    blob_id: String,
    owner: String,
    state: &'static str,
    reason: String,
    size: u64,
    parts: u32,
    parts_done: u32,
    part_seqs: Vec<u64>,
    recorded_in: u64,
    expires_at: u64,
}

fn state_name(state: BlobState) -> &'static str {
    match state {
        BlobState::Queued => "queued",
        BlobState::Stored => "stored",
        BlobState::Ordered => "ordered",
        BlobState::Finalized => "finalized",
        BlobState::Failed => "failed",
        BlobState::Unspecified => "unknown",
    }
}

fn print_status(status: &BlobStatus, json: bool) {
    let shown = StatusJson {
        blob_id: hex(&status.blob_id),
        owner: hex(&status.owner),
        state: state_name(status.state()),
        reason: status.reason.clone(),
        size: status.size,
        parts: status.parts,
        parts_done: status.parts_done,
        part_seqs: status.part_seqs.clone(),
        recorded_in: status.recorded_in,
        expires_at: status.expires_at,
    };
    if json {
        println!("{}", serde_json::to_string(&shown).unwrap_or_default());
        return;
    }
    println!("blob {}", shown.blob_id);
    println!("owner {}", shown.owner);
    println!("state {}", shown.state);
    if !shown.reason.is_empty() {
        println!("reason {}", shown.reason);
    }
    println!("size {} bytes in {} parts", shown.size, shown.parts);
    if status.state() == BlobState::Finalized {
        let seqs: Vec<String> = shown.part_seqs.iter().map(u64::to_string).collect();
        println!("parts at seqs {}", seqs.join(", "));
        println!("recorded in entry {}", shown.recorded_in);
        println!("expires at {} (Unix seconds)", shown.expires_at);
    }
}

async fn get(
    client: &Client,
    blob: [u8; 32],
    owner: Option<Address>,
    output: &Path,
    cert: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let bar = bytes_bar(0, "fetching", json);
    let bytes = client
        .retrieve(blob, owner, |got, size| {
            bar.set_length(size);
            bar.set_position(got);
        })
        .await;
    bar.finish_and_clear();
    let bytes = bytes?;
    if let Some(cert) = cert {
        let certificate = read_certificate(&cert)?;
        if certificate.blob != blob {
            bail!("{} is the certificate of another blob", cert.display());
        }
        certificate.check_blob(&bytes)?;
    }
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    match json {
        true => println!(
            "{}",
            serde_json::json!({ "blob_id": hex(&blob), "size": bytes.len(), "output": output })
        ),
        false => println!(
            "{} bytes of blob {} in {}",
            bytes.len(),
            hex(&blob),
            output.display()
        ),
    }
    Ok(())
}

fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Certificate::decode(&bytes)?)
}

/// What `ordo da verify --json` prints of a certificate that verified.
#[derive(Debug, Serialize)]
struct VerifiedJson {
    valid: bool,
    blob_id: String,
    owner: String,
    size: u64,
    log: String,
    part_seqs: Vec<u64>,
    recorded_in: u64,
    expires_at: u64,
    signed_by: Vec<String>,
    blob_checked: bool,
}

/// Whom `ordo da verify` trusts.
enum Trusted {
    /// These keys, this many of them.
    Keys {
        signers: Vec<String>,
        threshold: usize,
    },
    /// This chain endpoint and contract.
    Chain {
        rpc: String,
        contract: String,
        confirmations: u64,
    },
}

async fn verify_file(
    cert: &Path,
    trusted: Trusted,
    log: Option<&str>,
    blob: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let certificate = read_certificate(cert)?;
    let log = log
        .map(|l| keyfile::parse_hex::<32>(l).context("a log id is 64 hex digits"))
        .transpose()?;
    let verified = match trusted {
        Trusted::Keys { signers, threshold } => {
            verify_signed(&certificate, &signers, threshold, log)?
        }
        Trusted::Chain {
            rpc,
            contract,
            confirmations,
        } => verify_on_chain(&certificate, &rpc, &contract, confirmations, log).await?,
    };
    if let Some(blob) = blob {
        let bytes = std::fs::read(blob).with_context(|| format!("reading {}", blob.display()))?;
        certificate.check_blob(&bytes)?;
    }
    print_verified(&certificate, &verified, blob.is_some(), json)
}

/// Checks the signatures of `certificate` against the keys trusted.
fn verify_signed(
    certificate: &Certificate,
    signers: &[String],
    threshold: usize,
    log: Option<[u8; 32]>,
) -> anyhow::Result<ordo_da::Verified> {
    if certificate.chain.is_some() {
        bail!("this certificate is of a log a chain orders: check it with --rpc and --contract");
    }
    if signers.is_empty() {
        bail!(
            "name the keys you trust with --signer (or, for a log a chain orders, --rpc and --contract)"
        );
    }
    let signers = signers
        .iter()
        .map(|s| keyfile::parse_hex::<20>(s).with_context(|| format!("{s} is not a 0x address")))
        .collect::<anyhow::Result<Vec<Address>>>()?;
    let trust = Trust {
        signers,
        threshold,
        log,
    };
    Ok(verify(certificate, &trust)?)
}

/// Checks each header's event on the chain at `rpc`.
async fn verify_on_chain(
    certificate: &Certificate,
    rpc: &str,
    contract: &str,
    confirmations: u64,
    log: Option<[u8; 32]>,
) -> anyhow::Result<ordo_da::Verified> {
    let contract = keyfile::parse_hex::<20>(contract).context("--contract is a 0x address")?;
    let chain = (certificate.chain.as_ref())
        .context("this certificate carries signatures, not chain events: check it with --signer")?;
    if chain.contract != contract {
        bail!(
            "the certificate is of contract 0x{}, not the one named",
            ordo_client::hex(&chain.contract)
        );
    }
    if log.is_some_and(|log| log != certificate.log) {
        bail!("the certificate is of another log than the one named");
    }
    certificate.blob_commitment()?;
    let items = certificate.chain_items()?;
    let provider = ordo_evm::http::Endpoint::plain(rpc).provider()?;
    let expected = ordo_evm::inclusion::Expected {
        chain_id: chain.chain_id,
        contract: contract.into(),
        confirmations,
    };
    let origins: Vec<_> = (items.iter())
        .map(|(header, event)| {
            let origin = ordo_evm::inclusion::EventOrigin {
                block_number: event.block_number,
                block_hash: event.block_hash,
                tx_hash: event.tx_hash,
                log_index: event.log_index,
            };
            (header.clone(), origin)
        })
        .collect();
    ordo_evm::inclusion::check(&provider, expected, &origins).await?;
    Ok(ordo_da::Verified {
        parts: items
            .into_iter()
            .skip(1)
            .map(|(header, _)| header)
            .collect(),
        signed_by: Vec::new(),
    })
}

fn print_verified(
    certificate: &Certificate,
    verified: &ordo_da::Verified,
    blob_checked: bool,
    json: bool,
) -> anyhow::Result<()> {
    let shown = VerifiedJson {
        valid: true,
        blob_id: hex(&certificate.blob),
        owner: hex(&certificate.owner),
        size: certificate.size,
        log: hex(&certificate.log),
        part_seqs: verified.parts.iter().map(|p| p.seq).collect(),
        recorded_in: certificate.recorded_in,
        expires_at: certificate.expires_at,
        signed_by: verified.signed_by.iter().map(|s| hex(s)).collect(),
        blob_checked,
    };
    if json {
        println!("{}", serde_json::to_string(&shown)?);
    } else {
        let ordered = match shown.signed_by.is_empty() {
            true => "its events checked on the chain".to_string(),
            false => format!("signed by {}", shown.signed_by.join(", ")),
        };
        let checked = match shown.blob_checked {
            true => "; the bytes are the certified blob",
            false => "",
        };
        println!(
            "certificate verified: blob {} ({} bytes) in log {}, parts at seqs {:?}, {ordered}{checked}",
            shown.blob_id, shown.size, shown.log, shown.part_seqs,
        );
        println!(
            "recorded for {} in entry {}, expiring at {} (as the issuing node says; not signed)",
            shown.owner, shown.recorded_in, shown.expires_at
        );
    }
    Ok(())
}
