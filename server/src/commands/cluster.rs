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
    /// A voter's peer address: `remove` reads the members' reports there.
    #[arg(long, env = "ORDO_PEER", global = true)]
    pub peer: Option<String>,
    /// The cluster's certificate directory (`admin.pem`), for `--peer`.
    #[arg(long, env = "ORDO_CLUSTER_TLS", global = true)]
    pub tls_dir: Option<PathBuf>,
}

/// A change of the recorded storage membership.
#[derive(Debug, Subcommand)]
pub enum StorageChange {
    /// Record storage member ID at its peer address (a draining member
    /// takes shards again).
    Add {
        /// The member's id.
        #[arg(long)]
        id: u64,
        /// Its peer address, `host:port`.
        #[arg(long)]
        addr: String,
    },
    /// Start emptying storage member ID: placement leaves it out, repair
    /// stores its shards at their new homes, reads still ask it. Remove it
    /// once repair is done.
    Drain {
        /// The member's id.
        #[arg(long)]
        id: u64,
        /// Drain it even if fewer members than the default write quorum
        /// (k+m-1 of the gateway's coding) would be left to place on
        /// (members then keep the present membership until more are
        /// recorded).
        #[arg(long)]
        force: bool,
    },
    /// Remove drained storage member ID, once a repair role reports every
    /// entry at home without it (read from the voters: `--peer`,
    /// `--tls-dir`). Nobody asks the member for shards afterwards.
    Remove {
        /// The member's id.
        #[arg(long)]
        id: u64,
        /// Remove it without the check, even if it still holds the only
        /// copies of some shards.
        #[arg(long)]
        force: bool,
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
    let key = admin_key(args.key_file.as_deref())?;
    let client = ordo_client::Client::connect(&args.endpoint).await?;
    match &args.change {
        StorageChange::Add { id, addr } => {
            addr.parse::<std::net::SocketAddr>()
                .with_context(|| format!("storage member address {addr:?}"))?;
            let value = ordo_txn::attest::storage_member_value(addr, false);
            let version = write_member(&client, &key, *id, Expect::Any, Some(value)).await?;
            println!("storage member {id} at {addr} recorded at version {version}");
        }
        StorageChange::Drain { id, force } => {
            let addr = recorded_address(&client, *id).await?.0;
            if !force {
                check_enough_left(&client, *id).await?;
            }
            let value = ordo_txn::attest::storage_member_value(&addr, true);
            let version = write_member(&client, &key, *id, Expect::Recorded, Some(value)).await?;
            println!(
                "storage member {id} draining from version {version}: repair moves its shards; remove it once `ordo cluster storage remove --id {id}` agrees"
            );
        }
        StorageChange::Remove { id, force } => {
            let draining = recorded_address(&client, *id).await?.1;
            if !draining {
                bail!(
                    "storage member {id} still takes shards: drain it first (`ordo cluster storage drain --id {id}`), then remove it once repair has moved its shards"
                );
            }
            if !force {
                check_drained(&args, *id).await?;
            }
            let version = write_member(&client, &key, *id, Expect::Draining, None).await?;
            println!("storage member {id} removed at version {version}");
        }
    }
    Ok(())
}

/// Most storage member records `drain` reads (placement's own limit).
const MAX_STORAGE_RECORDS: u32 = 1024;

/// Refuses a drain of `id` that would leave fewer members to place on
/// than the write quorum: members would not take the record, and `remove`
/// would wait for a repair that never moves the member's shards.
async fn check_enough_left(client: &ordo_client::Client, id: u64) -> anyhow::Result<()> {
    use ordo_txn::attest::{STORAGE_MEMBER_PREFIX, SYSTEM_STREAM, parse_storage_member_value};
    let status = client.status().await?;
    let (k, m) = (status.data_shards as usize, status.parity_shards as usize);
    let quorum = quorum_to_keep(&status);
    let records =
        (client.scan_prefix(SYSTEM_STREAM, STORAGE_MEMBER_PREFIX, MAX_STORAGE_RECORDS)).await?;
    let mine = ordo_txn::attest::storage_member_key(id);
    let left = (records.iter())
        .filter(|row| row.key != mine)
        .filter_map(|row| parse_storage_member_value(&String::from_utf8_lossy(&row.value)))
        .filter(|(_, draining)| !draining)
        .count();
    if left < quorum {
        bail!(
            "draining storage member {id} leaves {left} members to place shards on, fewer than the write quorum of {quorum} for {k}+{m} coding: members would keep the present membership; record another member first, or --force"
        );
    }
    Ok(())
}

/// The write quorum a drain must leave members for: the one the gateway
/// answering reports, or, from a node that takes no commits, the gateways'
/// default (`storage_set::write_quorum`, which this client-side command
/// may not import): every shard but one, never below k+1 nor above k+m.
fn quorum_to_keep(status: &ordo_proto::v1::GetStatusResponse) -> usize {
    if status.write_quorum > 0 {
        return status.write_quorum as usize;
    }
    let (k, m) = (status.data_shards as usize, status.parity_shards as usize);
    (k + m).saturating_sub(1).max(k + 1).min(k + m)
}

/// What a membership change expects to find recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Any,
    Recorded,
    Draining,
}

/// The address storage member `id` is recorded at, and whether it drains.
async fn recorded_address(client: &ordo_client::Client, id: u64) -> anyhow::Result<(String, bool)> {
    let key = ordo_txn::attest::storage_member_key(id);
    let value = client.get(ordo_txn::attest::SYSTEM_STREAM, &key).await?;
    let Some(value) = value else {
        bail!("storage member {id} is not recorded in the log");
    };
    let text = String::from_utf8_lossy(&value);
    ordo_txn::attest::parse_storage_member_value(&text)
        .with_context(|| format!("storage member {id}'s record {text:?} names no address"))
}

/// Writes member `id`'s record (`None` deletes it) in a transaction that
/// also reads it, so a change made meanwhile is seen: the record must still
/// be as `expect` says.
async fn write_member(
    client: &ordo_client::Client,
    key: &ordo_txn::SigningKey,
    id: u64,
    expect: Expect,
    value: Option<String>,
) -> anyhow::Result<u64> {
    use ordo_client::ClientError;
    use ordo_txn::attest::SYSTEM_STREAM;
    let member_key = ordo_txn::attest::storage_member_key(id);
    let (_, version) = client
        .transact(key, async |tx| {
            let now = tx.get(SYSTEM_STREAM, &member_key).await?;
            let draining = now
                .as_deref()
                .and_then(|v| {
                    ordo_txn::attest::parse_storage_member_value(&String::from_utf8_lossy(v))
                })
                .map(|(_, draining)| draining);
            let expected = match expect {
                Expect::Any => true,
                Expect::Recorded => draining.is_some(),
                Expect::Draining => draining == Some(true),
            };
            if !expected {
                return Err(ClientError::Cancelled(format!(
                    "storage member {id}'s record changed meanwhile"
                )));
            }
            match &value {
                Some(value) => tx.put(SYSTEM_STREAM, &member_key, value.as_bytes()),
                None => tx.delete(SYSTEM_STREAM, &member_key),
            }
            Ok(())
        })
        .await?;
    Ok(version)
}

/// Most a repair role's report may have aged and still vouch for a
/// removal: a few report rounds.
pub const REPAIR_REPORT_FRESHNESS: Duration = Duration::from_secs(10);

/// Refuses unless a repair role's fresh report says every entry below the
/// voters' tail is at home without member `id`.
async fn check_drained(args: &StorageArgs, id: u64) -> anyhow::Result<()> {
    let (Some(peer), Some(tls_dir)) = (&args.peer, &args.tls_dir) else {
        bail!(
            "removing storage member {id} checks the repair role's reports on the voters: give --peer and --tls-dir (or ORDO_PEER and ORDO_CLUSTER_TLS), or --force"
        );
    };
    let peer = PeerArgs {
        peer: peer.clone(),
        tls_dir: tls_dir.clone(),
        json: false,
    };
    let seen = gather(&peer).await?;
    let tail = seen.tail();
    let reports = freshest_reports(seen.reported, tail);
    drained(&reports, id, tail).map_err(|why| {
        anyhow::anyhow!("storage member {id} may still hold shards no other member has: {why}; try again once repair is done, or --force")
    })
}

/// Whether some repair role's report shows member `id` drained: fresh,
/// placing on other members only, nothing under-replicated, every entry
/// below `tail` at home. Otherwise what the closest report lacks.
fn drained(reports: &[ReportJson], id: u64, tail: u64) -> Result<(), String> {
    let fresh = REPAIR_REPORT_FRESHNESS.as_millis() as u64;
    let repairers: Vec<&ReportJson> = (reports.iter())
        .filter(|r| r.repair_passes.is_some())
        .collect();
    if repairers.is_empty() {
        return Err("no repair role reports to the voters".into());
    }
    let mut lacks = Vec::new();
    for r in repairers {
        let settled = r.repair_settled_below.unwrap_or(0);
        let lack = if r.age_ms > fresh {
            format!("member {}'s repair last reported {} ms ago", r.id, r.age_ms)
        } else if r.repair_homes.contains(&id) {
            format!("member {}'s repair still places shards on {id}", r.id)
        } else if r.under_replicated != Some(0) {
            let count = r.under_replicated.unwrap_or(0);
            format!(
                "member {}'s repair counts {count} entries not at home",
                r.id
            )
        } else if settled < tail {
            format!(
                "member {}'s repair has settled entries below {settled} of {tail}",
                r.id
            )
        } else {
            return Ok(());
        };
        lacks.push(lack);
    }
    Err(lacks.join("; "))
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
#[derive(Debug, Clone, Serialize)]
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
    /// The storage members its repair's last pass placed shards on.
    repair_homes: Vec<u64>,
    /// Every entry below this seq was at home in that pass.
    repair_settled_below: Option<u64>,
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
                repair_homes: r.repair_homes,
                repair_settled_below: r.repair_settled_below,
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
    for r in reports.iter().filter(|r| r.repair_passes.is_some()) {
        let homes: Vec<String> = r.repair_homes.iter().map(u64::to_string).collect();
        println!(
            "repair on member {}: places shards on {}; every entry below {} at home",
            r.id,
            homes.join(","),
            shown(r.repair_settled_below)
        );
    }
}

/// Every raft member's view, and the reports they hold.
struct Gathered {
    members: Vec<MemberJson>,
    reported: Vec<SeenMember>,
}

impl Gathered {
    /// The furthest header tail any member answered with.
    fn tail(&self) -> u64 {
        (self.members.iter())
            .filter_map(|m| m.view.as_ref().map(|v| v.header_tail))
            .max()
            .unwrap_or(0)
    }
}

/// Asks `args.peer` for the raft members, then each of them for its view.
async fn gather(args: &PeerArgs) -> anyhow::Result<Gathered> {
    let tls = operator(args)?;
    let first = connect(&args.peer, &tls)?
        .status(StatusRequest {})
        .await
        .with_context(|| format!("asking {}", args.peer))?
        .into_inner();
    let (mut members, mut reported) = (Vec::new(), Vec::new());
    let kinds = (first.voters.iter().map(|m| (m, "voter")))
        .chain(first.learners.iter().map(|m| (m, "learner")));
    for (member, kind) in kinds {
        let (view, seen) = member_view(member, kind, &tls).await;
        members.push(view);
        reported.extend(seen);
    }
    Ok(Gathered { members, reported })
}

async fn status(args: PeerArgs) -> anyhow::Result<()> {
    let gathered = gather(&args).await?;
    let tail = gathered.tail();
    let (members, reports) = (gathered.members, freshest_reports(gathered.reported, tail));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_keeps_members_for_the_quorum_the_gateway_reports_else_for_the_default() {
        let status = |k, m, write_quorum| ordo_proto::v1::GetStatusResponse {
            data_shards: k,
            parity_shards: m,
            write_quorum,
            ..Default::default()
        };
        assert_eq!(
            quorum_to_keep(&status(4, 2, 6)),
            6,
            "a gateway asked for all"
        );
        assert_eq!(quorum_to_keep(&status(4, 2, 5)), 5);
        assert_eq!(quorum_to_keep(&status(4, 2, 0)), 5, "a replica: k+m-1");
        assert_eq!(quorum_to_keep(&status(4, 0, 0)), 4, "no parity: all k");
        assert_eq!(quorum_to_keep(&status(1, 1, 0)), 2, "never below k+1");
    }

    fn repairer(id: u64, homes: &[u64], under: u64, settled: u64) -> ReportJson {
        ReportJson {
            id,
            roles: vec!["gateway".into(), "replica".into(), "repair".into()],
            peer_addr: format!("127.0.0.1:{id}"),
            client_addr: None,
            age_ms: 900,
            applied_seq: Some(settled),
            replica_lag: Some(0),
            shards_held: None,
            repair_passes: Some(3),
            under_replicated: Some(under),
            repair_homes: homes.to_vec(),
            repair_settled_below: Some(settled),
        }
    }

    #[test]
    fn a_member_counts_as_drained_only_when_a_fresh_repair_report_settled_the_tail_without_it() {
        let done = repairer(8, &[1, 2, 3, 4, 5, 6], 0, 40);
        assert_eq!(drained(std::slice::from_ref(&done), 7, 40), Ok(()));
        let said = |reports: &[ReportJson]| drained(reports, 7, 40).unwrap_err();
        let mut storage = repairer(4, &[], 0, 0);
        storage.repair_passes = None;
        assert!(said(&[storage]).contains("no repair role"));
        assert!(said(&[repairer(8, &[1, 2, 7], 0, 40)]).contains("still places shards on 7"));
        assert!(said(&[repairer(8, &[1, 2, 3], 2, 40)]).contains("2 entries not at home"));
        assert!(said(&[repairer(8, &[1, 2, 3], 0, 39)]).contains("below 39 of 40"));
        let mut stale = done;
        stale.age_ms = REPAIR_REPORT_FRESHNESS.as_millis() as u64 + 1;
        assert!(said(&[stale.clone()]).contains("ms ago"));
        assert_eq!(
            drained(&[stale, repairer(9, &[1, 2], 0, 41)], 7, 40),
            Ok(())
        );
    }
}
