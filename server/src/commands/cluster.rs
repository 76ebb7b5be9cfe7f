//! `ordo cluster ...`: forming a cluster, changing its members, and
//! showing what each member sees. Speaks `ordo.cluster.v1` to members'
//! peer addresses; membership changes go to the leader (a member that is
//! not the leader names it, and the command asks there once).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::{
    ChangeVotersRequest, InitializeRequest, Member, MembershipResponse, SeenMember, StatusRequest,
    VoterStatus,
};
use ordo_raft::PeerTls;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use tonic::transport::Channel;

/// How long the command waits for one member to answer.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);

/// The metadata key a non-leader names the leader in.
const LEADER_METADATA: &str = "ordo-leader";

/// Options of `ordo cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The subcommands of `ordo cluster`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Form a new cluster of sequencer voters (run once, against any of them).
    Init(InitArgs),
    /// Show every member's view: raft state, term, leader, log and header tail.
    Status(PeerArgs),
    /// Add a member as a learner: it catches up from the leader, without a vote.
    AddNode(AddNodeArgs),
    /// Make a learner a voter.
    Promote(MemberIdArgs),
    /// Remove a member from the cluster.
    RemoveNode(MemberIdArgs),
    /// Make the cluster's certificate authority and certificates for its
    /// members (`node-ID`) and operators (`admin`), or add more with --add.
    Certs(CertsArgs),
    /// Record the storage membership in the log (a transaction of the
    /// log's admin, committed through a gateway): gateways and replicas
    /// place shards by it from then on.
    Storage(StorageArgs),
    /// Grant or revoke the gateway role (a transaction of the log's admin,
    /// committed through a gateway). A gateway vouches for its clients'
    /// session transactions; on a log a chain orders, only gateways and
    /// admins have their entries read at all.
    Gateway(GatewayArgs),
}

/// Options of `ordo cluster gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// What to change.
    #[command(subcommand)]
    pub change: GatewayChange,
    /// A gateway's client address (`host:port` or `http://host:port`).
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// The log admin's key file (the founding gateway's `node.key`, or an
    /// account it made an admin of the system stream).
    #[arg(long = "key", env = "ORDO_KEY", global = true)]
    pub key_file: Option<std::path::PathBuf>,
}

/// A change of who holds the gateway role.
#[derive(Debug, Subcommand)]
pub enum GatewayChange {
    /// Make ACCOUNT a gateway (its node key's address, `0x` and 40 hex digits).
    Grant {
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Take the gateway role from ACCOUNT.
    Revoke {
        /// The account.
        #[arg(long)]
        account: String,
    },
}

/// Options of `ordo cluster storage`.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// What to record.
    #[command(subcommand)]
    pub change: StorageChange,
    /// A gateway's client address (`host:port` or `http://host:port`).
    #[arg(long, env = "ORDO_ENDPOINT", default_value = ordo_client::DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// The log admin's key file (the founding gateway's `node.key`, or an
    /// account it made an admin of the system stream).
    #[arg(long = "key", env = "ORDO_KEY", global = true)]
    pub key_file: Option<std::path::PathBuf>,
}

/// A change of the recorded storage membership.
#[derive(Debug, Subcommand)]
pub enum StorageChange {
    /// Record storage member ID at its peer address.
    Add {
        /// The member's id.
        #[arg(long)]
        id: u64,
        /// Its peer address, `host:port`.
        #[arg(long)]
        addr: String,
    },
    /// Remove storage member ID from the recorded membership.
    Remove {
        /// The member's id.
        #[arg(long)]
        id: u64,
    },
}

/// Options of `ordo cluster certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Where the certificates go (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// A member id to make `node-ID.pem`/`.key` for; repeatable.
    #[arg(long = "node")]
    pub nodes: Vec<u64>,
    /// Add to the authority already in DIR instead of making a new one
    /// (no `admin` certificate is made then).
    #[arg(long)]
    pub add: bool,
}

/// Which member to ask, and with which credentials.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// A member's peer address (`host:port`, its `peer_listen`).
    #[arg(long, env = "ORDO_PEER")]
    pub peer: String,
    /// The cluster's certificate directory; the command presents `admin.pem`.
    #[arg(long, env = "ORDO_CLUSTER_TLS")]
    pub tls_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `ordo cluster init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Ask this member.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// A founding voter, `ID=HOST:PORT`; repeat for each.
    #[arg(long = "voter", required = true)]
    pub voters: Vec<String>,
}

/// Options of `ordo cluster add-node`.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// Ask this member.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The new member's id.
    #[arg(long)]
    pub id: u64,
    /// The new member's peer address.
    #[arg(long)]
    pub addr: String,
}

/// Options of `promote` and `remove-node`.
#[derive(Debug, Args)]
pub struct MemberIdArgs {
    /// Ask this member.
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The member's id.
    #[arg(long)]
    pub id: u64,
}

/// Runs `ordo cluster`.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Init(args) => init(args).await,
        ClusterCommand::Status(args) => status(args).await,
        ClusterCommand::AddNode(args) => add_node(args).await,
        ClusterCommand::Promote(args) => change_voters(args, Change::Promote).await,
        ClusterCommand::RemoveNode(args) => change_voters(args, Change::Remove).await,
        ClusterCommand::Certs(args) => certs(args),
        ClusterCommand::Storage(args) => record_storage(args).await,
        ClusterCommand::Gateway(args) => change_gateway(args).await,
    }
}

/// The log admin's key, from `--key` (or `ORDO_KEY`).
fn admin_key(key_file: Option<&std::path::Path>) -> anyhow::Result<ordo_txn::SigningKey> {
    let key_file = key_file.context("--key (or ORDO_KEY): the log admin's key file")?;
    Ok(ordo_client::keyfile::load(key_file)?)
}

/// Commits the grant or revocation of a gateway as the log's admin.
async fn change_gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let key = admin_key(args.key_file.as_deref())?;
    let (op, verb) = match &args.change {
        GatewayChange::Grant { account } => {
            let account = crate::commands::stream::parse_account(account)?;
            (ordo_txn::AclOp::GrantGateway { account }, "granted")
        }
        GatewayChange::Revoke { account } => {
            let account = crate::commands::stream::parse_account(account)?;
            (ordo_txn::AclOp::RevokeGateway { account }, "revoked")
        }
    };
    let client = ordo_client::Client::connect(&args.endpoint).await?;
    let version = client.apply_op(&key, op).await?;
    println!("gateway role {verb} at version {version}");
    Ok(())
}

/// Commits the change of the storage membership as the log's admin.
async fn record_storage(args: StorageArgs) -> anyhow::Result<()> {
    use ordo_txn::attest::{SYSTEM_STREAM, storage_member_key};
    let key = admin_key(args.key_file.as_deref())?;
    let (id, addr) = match &args.change {
        StorageChange::Add { id, addr } => {
            addr.parse::<std::net::SocketAddr>()
                .with_context(|| format!("storage member address {addr:?}"))?;
            (*id, Some(addr.clone()))
        }
        StorageChange::Remove { id } => (*id, None),
    };
    let client = ordo_client::Client::connect(&args.endpoint).await?;
    let member_key = storage_member_key(id);
    let (_, version) = client
        .transact(&key, async |tx| {
            match &addr {
                Some(addr) => tx.put(SYSTEM_STREAM, &member_key, addr.as_bytes()),
                None => tx.delete(SYSTEM_STREAM, &member_key),
            }
            Ok(())
        })
        .await?;
    match addr {
        Some(addr) => println!("storage member {id} at {addr} recorded at version {version}"),
        None => println!("storage member {id} removed at version {version}"),
    }
    Ok(())
}

fn certs(args: CertsArgs) -> anyhow::Result<()> {
    let mut holders: Vec<String> = args.nodes.iter().map(|id| format!("node-{id}")).collect();
    if args.add {
        ordo_raft::tls::add_holders(&args.dir, &holders)?;
    } else {
        holders.push("admin".into());
        ordo_raft::tls::make_authority(&args.dir, &holders)?;
    }
    for holder in holders {
        println!("{}", args.dir.join(format!("{holder}.pem")).display());
    }
    Ok(())
}

/// A member's client, presenting the operator's certificate.
fn connect(addr: &str, tls: &PeerTls) -> anyhow::Result<SequencerClient<Channel>> {
    let endpoint = (tls.endpoint(addr))
        .with_context(|| format!("member address {addr}"))?
        .connect_timeout(MEMBER_TIMEOUT)
        .timeout(MEMBER_TIMEOUT);
    Ok(SequencerClient::new(endpoint.connect_lazy()))
}

fn operator(args: &PeerArgs) -> anyhow::Result<PeerTls> {
    PeerTls::load(&args.tls_dir, "admin")
        .with_context(|| format!("the admin certificate in {}", args.tls_dir.display()))
}

/// The leader a refusal names, if it is one that does.
fn leader_named(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::FailedPrecondition {
        return None;
    }
    let value = status.metadata().get(LEADER_METADATA)?;
    value.to_str().ok().map(str::to_string)
}

/// Calls `call` on `peer`, and once more on the leader it names if it is
/// not the leader.
async fn on_leader<T, F, Fut>(peer: &str, tls: &PeerTls, call: F) -> anyhow::Result<T>
where
    F: Fn(SequencerClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match call(connect(peer, tls)?).await {
        Ok(reply) => Ok(reply.into_inner()),
        Err(status) => match leader_named(&status) {
            Some(leader) => Ok(call(connect(&leader, tls)?)
                .await
                .with_context(|| format!("asking the leader at {leader}"))?
                .into_inner()),
            None => Err(status).with_context(|| format!("asking {peer}")),
        },
    }
}

fn parse_voter(text: &str) -> anyhow::Result<Member> {
    let Some((id, addr)) = text.split_once('=') else {
        bail!("voter {text:?}: expected ID=HOST:PORT");
    };
    let id: u64 = id.parse().with_context(|| format!("voter id {id:?}"))?;
    addr.parse::<std::net::SocketAddr>()
        .with_context(|| format!("voter address {addr:?}"))?;
    Ok(Member {
        id,
        addr: addr.to_string(),
    })
}

async fn init(args: InitArgs) -> anyhow::Result<()> {
    let voters = args
        .voters
        .iter()
        .map(|v| parse_voter(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tls = operator(&args.peer)?;
    let reply = connect(&args.peer.peer, &tls)?
        .initialize(InitializeRequest { voters })
        .await
        .with_context(|| format!("initializing the cluster at {}", args.peer.peer))?;
    print_membership(&reply.into_inner(), args.peer.json)
}

async fn add_node(args: AddNodeArgs) -> anyhow::Result<()> {
    let member = Member {
        id: args.id,
        addr: args.addr,
    };
    let tls = operator(&args.peer)?;
    let membership = on_leader(&args.peer.peer, &tls, |mut client| {
        let member = member.clone();
        async move { client.add_learner(member).await }
    })
    .await?;
    print_membership(&membership, args.peer.json)
}

enum Change {
    Promote,
    Remove,
}

async fn change_voters(args: MemberIdArgs, change: Change) -> anyhow::Result<()> {
    let tls = operator(&args.peer)?;
    let current = on_leader(&args.peer.peer, &tls, |mut client| async move {
        client.status(StatusRequest {}).await
    })
    .await?;
    let mut voters: Vec<u64> = current.voters.iter().map(|m| m.id).collect();
    let mut remove = Vec::new();
    match change {
        Change::Promote => {
            if !current.learners.iter().any(|m| m.id == args.id) {
                bail!(
                    "member {} is not a learner (add it with add-node first)",
                    args.id
                );
            }
            voters.push(args.id);
        }
        Change::Remove => {
            voters.retain(|&id| id != args.id);
            remove.push(args.id);
        }
    }
    let request = ChangeVotersRequest { voters, remove };
    let membership = on_leader(&args.peer.peer, &tls, |mut client| {
        let request = request.clone();
        async move { client.change_voters(request).await }
    })
    .await?;
    print_membership(&membership, args.peer.json)
}

/// One member in `--json` output.
#[derive(Debug, Serialize)]
struct MemberJson {
    id: u64,
    addr: String,
    /// "voter" or "learner".
    kind: &'static str,
    /// The member's own view, when it answered.
    view: Option<ViewJson>,
    /// The key a voter signs blob certificates with (0x address).
    signs_as: Option<String>,
    /// Why it did not answer.
    error: Option<String>,
}

/// What a member reported about itself.
#[derive(Debug, Serialize)]
struct ViewJson {
    state: String,
    term: u64,
    leader: Option<u64>,
    last_log_index: Option<u64>,
    last_applied_index: Option<u64>,
    header_tail: u64,
}

fn view_of(status: VoterStatus) -> ViewJson {
    ViewJson {
        state: status.state,
        term: status.term,
        leader: status.leader,
        last_log_index: status.last_log_index,
        last_applied_index: status.last_applied_index,
        header_tail: status.header_tail,
    }
}

/// A voter's own view, and the reports of the members that report to it.
async fn member_view(
    member: &Member,
    kind: &'static str,
    tls: &PeerTls,
) -> (MemberJson, Vec<SeenMember>) {
    let asked = async {
        connect(&member.addr, tls)?
            .status(StatusRequest {})
            .await
            .map_err(anyhow::Error::from)
    };
    let (view, error, reported) = match asked.await {
        Ok(reply) => {
            let mut status = reply.into_inner();
            let reported = std::mem::take(&mut status.reported);
            (Some(view_of(status)), None, reported)
        }
        Err(e) => (None, Some(format!("{e:#}")), Vec::new()),
    };
    let json = MemberJson {
        id: member.id,
        addr: member.addr.clone(),
        kind,
        view,
        error,
        signs_as: signing_key_of(member, tls).await,
    };
    (json, reported)
}

/// The address of the key `member` signs certificates with, if it is a
/// voter that answers.
async fn signing_key_of(member: &Member, tls: &PeerTls) -> Option<String> {
    use ordo_proto::cluster::v1::{SigningKeyRequest, attest_client::AttestClient};
    let channel = tls
        .endpoint(&member.addr)
        .ok()?
        .timeout(MEMBER_TIMEOUT)
        .connect()
        .await
        .ok()?;
    let answer = AttestClient::new(channel)
        .signing_key(SigningKeyRequest {})
        .await
        .ok()?;
    Some(format!(
        "0x{}",
        ordo_txn::ids::hex(&answer.into_inner().signer)
    ))
}

/// One member's latest report in `--json` output (and the text table).
#[derive(Debug, Serialize)]
struct ReportJson {
    id: u64,
    roles: Vec<String>,
    peer_addr: String,
    client_addr: Option<String>,
    /// Milliseconds since the freshest voter heard from it.
    age_ms: u64,
    applied_seq: Option<u64>,
    /// Committed entries its replica has not applied yet.
    replica_lag: Option<u64>,
    shards_held: Option<u64>,
    repair_passes: Option<u64>,
    under_replicated: Option<u64>,
}

/// The freshest report of each member among every voter's.
fn freshest_reports(seen: Vec<SeenMember>, tail: u64) -> Vec<ReportJson> {
    let mut freshest: std::collections::BTreeMap<u64, SeenMember> = Default::default();
    for member in seen {
        let Some(id) = member.report.as_ref().map(|r| r.id) else {
            continue;
        };
        let newer = freshest
            .get(&id)
            .is_none_or(|known| member.age_ms < known.age_ms);
        if newer {
            freshest.insert(id, member);
        }
    }
    freshest
        .into_values()
        .filter_map(|seen| {
            let r = seen.report?;
            Some(ReportJson {
                id: r.id,
                roles: r.roles,
                peer_addr: r.peer_addr,
                client_addr: (!r.client_addr.is_empty()).then_some(r.client_addr),
                age_ms: seen.age_ms,
                applied_seq: r.applied_seq,
                replica_lag: r.applied_seq.map(|a| tail.saturating_sub(a)),
                shards_held: r.shards_held,
                repair_passes: r.repair_passes,
                under_replicated: r.under_replicated,
            })
        })
        .collect()
}

fn shown(value: Option<u64>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

fn print_reports(reports: &[ReportJson]) {
    println!(
        "\n{:<4} {:<26} {:<22} {:<22} {:>6} {:>9} {:>5} {:>8} {:>8}",
        "id", "roles", "peer", "clients", "seen", "applied", "lag", "shards", "under-rep"
    );
    for r in reports {
        println!(
            "{:<4} {:<26} {:<22} {:<22} {:>5}s {:>9} {:>5} {:>8} {:>8}",
            r.id,
            r.roles.join(","),
            r.peer_addr,
            r.client_addr.as_deref().unwrap_or("-"),
            r.age_ms / 1000,
            shown(r.applied_seq),
            shown(r.replica_lag),
            shown(r.shards_held),
            shown(r.under_replicated),
        );
    }
}

async fn status(args: PeerArgs) -> anyhow::Result<()> {
    let tls = operator(&args)?;
    let first = connect(&args.peer, &tls)?
        .status(StatusRequest {})
        .await
        .with_context(|| format!("asking {}", args.peer))?
        .into_inner();
    let (mut members, mut seen) = (Vec::new(), Vec::new());
    let kinds = (first.voters.iter().map(|m| (m, "voter")))
        .chain(first.learners.iter().map(|m| (m, "learner")));
    for (member, kind) in kinds {
        let (view, reported) = member_view(member, kind, &tls).await;
        members.push(view);
        seen.extend(reported);
    }
    let tail = (members.iter())
        .filter_map(|m| m.view.as_ref().map(|v| v.header_tail))
        .max()
        .unwrap_or(0);
    let reports = freshest_reports(seen, tail);
    if args.json {
        return crate::commands::json::print(
            &serde_json::json!({ "members": members, "reported": reports }),
        );
    }
    println!(
        "{:<4} {:<22} {:<8} {:<10} {:>6} {:>7} {:>9} {:>9} {:>10}  signs certificates as",
        "id", "addr", "kind", "state", "term", "leader", "last log", "applied", "headers"
    );
    for m in &members {
        match &m.view {
            Some(v) => println!(
                "{:<4} {:<22} {:<8} {:<10} {:>6} {:>7} {:>9} {:>9} {:>10}  {}",
                m.id,
                m.addr,
                m.kind,
                v.state,
                v.term,
                v.leader.map_or("-".into(), |l| l.to_string()),
                v.last_log_index.map_or("-".into(), |i| i.to_string()),
                v.last_applied_index.map_or("-".into(), |i| i.to_string()),
                v.header_tail,
                m.signs_as.as_deref().unwrap_or("-")
            ),
            None => println!(
                "{:<4} {:<22} {:<8} unreachable: {}",
                m.id,
                m.addr,
                m.kind,
                m.error.as_deref().unwrap_or("")
            ),
        }
    }
    print_reports(&reports);
    Ok(())
}

fn print_membership(membership: &MembershipResponse, json: bool) -> anyhow::Result<()> {
    let list = |members: &[Member]| -> Vec<serde_json::Value> {
        members
            .iter()
            .map(|m| serde_json::json!({ "id": m.id, "addr": m.addr }))
            .collect()
    };
    if json {
        return crate::commands::json::print(&serde_json::json!({
            "voters": list(&membership.voters),
            "learners": list(&membership.learners),
        }));
    }
    for (kind, members) in [
        ("voter", &membership.voters),
        ("learner", &membership.learners),
    ] {
        for m in members {
            println!("{kind:<8} {:<4} {}", m.id, m.addr);
        }
    }
    Ok(())
}
