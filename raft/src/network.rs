//! Raft between voters over gRPC (`ordo.cluster.v1.Sequencer`): the client
//! half openraft sends through, and the service that hands what arrives to
//! the local [`Raft`].
//!
//! AppendEntries, which the leader sends each follower at least twice per
//! ordered batch (the entries, then the commit that follows them), travels
//! on one long-lived stream per follower ([`ordo_proto::pipe`]): a message
//! each way instead of a gRPC call's headers and trailers. Votes and
//! snapshots are rare and stay unary calls.
//!
//! Raft's messages travel as postcard-encoded bodies of openraft's own
//! types: the voters of one cluster run one build, and restating raft's
//! messages in protobuf would only add a translation to keep right.

pub use crate::appends::LEADER_METADATA;
use crate::appends::{
    AppendAnswerStream, RaftAppendStream, encode_message, group_of, ordered, serve_append_many,
    serve_raft_appends, status_of, stopped,
};
use crate::leader_queue::{Group, Refusal};
use crate::reports::{MemberReports, ReportError};
use crate::store::{HeaderReader, WeakHeaderReader};
use crate::tls::PeerTls;
use crate::types::{Node, NodeId, TypeConfig};
use openraft::ChangeMembers;
use openraft::Raft;
use openraft::error::InitializeError;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use ordo_log::EntryHeader;
use ordo_log::limits::MAX_READ_BATCH;
use ordo_proto::cluster::v1::sequencer_client::SequencerClient;
use ordo_proto::cluster::v1::sequencer_server::Sequencer as SequencerRpc;
use ordo_proto::cluster::v1::{
    AppendRequest, AppendResponse, ChangeVotersRequest, FollowRequest, HeadersRequest,
    HeadersResponse, InitializeRequest, Member, MemberReport, MembershipResponse, RaftMessage,
    ReportResponse, StatusRequest, VoterStatus,
};
use ordo_proto::pipe::Pipe;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// How long a voter waits to connect to a peer before calling it
/// unreachable (openraft then backs off and retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A gRPC client to a voter over mutual TLS, connected on first use.
pub fn peer_client(
    addr: &str,
    tls: &PeerTls,
) -> Result<SequencerClient<Channel>, tonic::transport::Error> {
    let endpoint = tls.endpoint(addr)?.connect_timeout(CONNECT_TIMEOUT);
    Ok(SequencerClient::new(endpoint.connect_lazy()))
}

/// Makes a [`Peer`] per voter for openraft.
#[derive(Debug, Clone)]
pub struct Network {
    tls: Arc<PeerTls>,
}

impl Network {
    /// Peers reached with the member credentials `tls`.
    pub fn new(tls: Arc<PeerTls>) -> Self {
        Self { tls }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            client: None,
            appends: None,
        }
    }
}

/// One voter as openraft's sender sees it.
pub struct Peer {
    target: NodeId,
    addr: String,
    tls: Arc<PeerTls>,
    client: Option<SequencerClient<Channel>>,
    /// The AppendEntries stream, opened on the first append.
    appends: Option<Pipe<RaftMessage, RaftMessage>>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>;

fn network_error<E: std::error::Error>(
    e: impl std::error::Error + 'static,
) -> RPCError<NodeId, Node, E> {
    RPCError::Network(NetworkError::new(&e))
}

impl Peer {
    fn client(&mut self) -> Result<SequencerClient<Channel>, Unreachable> {
        if self.client.is_none() {
            let client = peer_client(&self.addr, &self.tls).map_err(|e| Unreachable::new(&e))?;
            self.client = Some(client);
        }
        Ok(self.client.clone().expect("set above"))
    }

    fn appends(&mut self) -> Result<&Pipe<RaftMessage, RaftMessage>, Unreachable> {
        if self.appends.is_none() {
            let client = self.client()?;
            self.appends = Some(Pipe::new(move |requests| {
                let mut client = client.clone();
                async move { Ok(client.append_entries_many(requests).await?.into_inner()) }
            }));
        }
        Ok(self.appends.as_ref().expect("set above"))
    }

    // The error type is openraft's, fixed by the trait these serve.
    #[allow(clippy::result_large_err)]
    fn request<T: Serialize, E: std::error::Error>(
        request: &T,
        option: &RPCOption,
    ) -> Result<Request<RaftMessage>, RPCError<NodeId, Node, E>> {
        let body = postcard::to_allocvec(request).map_err(network_error)?;
        let mut request = Request::new(RaftMessage { body });
        request.set_timeout(option.hard_ttl());
        Ok(request)
    }

    #[allow(clippy::result_large_err)]
    fn reply<T: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        reply: Result<Response<RaftMessage>, Status>,
    ) -> RpcResult<T, E> {
        let reply = reply.map_err(|status| RPCError::Unreachable(Unreachable::new(&status)))?;
        self.answer(&reply.into_inner())
    }

    /// The remote result a reply's body carries.
    #[allow(clippy::result_large_err)]
    fn answer<T: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        reply: &RaftMessage,
    ) -> RpcResult<T, E> {
        let result: Result<T, RaftError<NodeId, E>> =
            postcard::from_bytes(&reply.body).map_err(network_error)?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let body = postcard::to_allocvec(&rpc).map_err(network_error)?;
        let reply = self
            .appends()?
            .call(RaftMessage { body }, option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        self.answer(&reply)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let request = Self::request(&rpc, &option)?;
        let reply = self.client()?.install_snapshot(request).await;
        self.reply(reply)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let request = Self::request(&rpc, &option)?;
        let reply = self.client()?.vote(request).await;
        self.reply(reply)
    }
}

/// The voter's gRPC service: raft's RPCs into the local [`Raft`], appends
/// forwarded by followers, headers for readers, and membership changes.
pub struct RaftService {
    raft: Raft<TypeConfig>,
    headers: HeaderReader,
    appends: tokio::sync::mpsc::Sender<Group>,
    reports: Arc<MemberReports>,
    /// Turns true when the voter stops: long-lived streams end then, so
    /// that they do not hold the voter's server open.
    stopping: watch::Receiver<bool>,
}

impl RaftService {
    /// The service of `raft`, whose applied header log `headers` reads and
    /// whose `Append` RPC feeds `appends` (see [`crate::leader_queue`]),
    /// and whose streams end when `stopping` turns true.
    pub fn new(
        raft: Raft<TypeConfig>,
        headers: HeaderReader,
        appends: tokio::sync::mpsc::Sender<Group>,
        reports: Arc<MemberReports>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            raft,
            headers,
            appends,
            reports,
            stopping,
        }
    }

    fn membership(&self) -> MembershipResponse {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        membership_of(metrics.membership_config.membership())
    }
}

fn member(id: NodeId, node: Option<&Node>) -> Member {
    Member {
        id,
        addr: node.map(|n| n.addr.clone()).unwrap_or_default(),
    }
}

fn membership_of(membership: &openraft::Membership<NodeId, Node>) -> MembershipResponse {
    let of = |ids: Vec<NodeId>| {
        ids.into_iter()
            .map(|id| member(id, membership.get_node(&id)))
            .collect()
    };
    MembershipResponse {
        voters: of(membership.voter_ids().collect()),
        learners: of(membership.learner_ids().collect()),
    }
}

/// The status of a membership change raft refused.
fn refused<E>(e: &RaftError<NodeId, E>) -> Status
where
    E: std::error::Error + openraft::TryAsRef<openraft::error::ForwardToLeader<NodeId, Node>>,
{
    status_of(Refusal::of(e, None))
}

fn decode<T: DeserializeOwned>(request: Request<RaftMessage>) -> Result<T, Status> {
    postcard::from_bytes(&request.into_inner().body)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn encode<T: Serialize>(result: &T) -> Result<Response<RaftMessage>, Status> {
    encode_message(result).map(Response::new)
}

#[tonic::async_trait]
impl SequencerRpc for RaftService {
    type AppendEntriesManyStream = RaftAppendStream;

    async fn append_entries_many(
        &self,
        request: Request<tonic::Streaming<RaftMessage>>,
    ) -> Result<Response<Self::AppendEntriesManyStream>, Status> {
        let (raft, stopping) = (self.raft.clone(), self.stopping.clone());
        let answers = serve_raft_appends(raft, request.into_inner(), stopping);
        Ok(Response::new(answers))
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc: VoteRequest<NodeId> = decode(request)?;
        encode(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        encode(&self.raft.install_snapshot(rpc).await)
    }

    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let (group, answer) = group_of(request.into_inner())?;
        self.appends.send(group).await.map_err(|_| stopped())?;
        let first_seq = ordered(answer).await?;
        Ok(Response::new(AppendResponse { first_seq }))
    }

    type AppendManyStream = AppendAnswerStream;

    async fn append_many(
        &self,
        request: Request<tonic::Streaming<AppendRequest>>,
    ) -> Result<Response<Self::AppendManyStream>, Status> {
        let (appends, stopping) = (self.appends.clone(), self.stopping.clone());
        let answers = serve_append_many(appends, request.into_inner(), stopping);
        Ok(Response::new(answers))
    }

    async fn headers(
        &self,
        request: Request<HeadersRequest>,
    ) -> Result<Response<HeadersResponse>, Status> {
        let request = request.into_inner();
        let max = (request.max as usize).min(MAX_READ_BATCH);
        let headers = self
            .headers
            .read(request.from_seq, max)
            .map_err(Status::internal)?;
        Ok(Response::new(HeadersResponse {
            headers: headers.iter().map(EntryHeader::encode).collect(),
            tail: self.headers.tail(),
        }))
    }

    type FollowStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HeadersResponse, Status>> + Send>>;

    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let from = request.into_inner().from_seq;
        let (sender, receiver) = tokio::sync::mpsc::channel(FOLLOW_BUFFER);
        let tail = self.headers.watch();
        tokio::spawn(feed_follower(self.headers.downgrade(), tail, from, sender));
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn initialize(
        &self,
        request: Request<InitializeRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let voters: BTreeMap<NodeId, Node> = request
            .into_inner()
            .voters
            .into_iter()
            .map(|m| (m.id, Node::new(m.addr)))
            .collect();
        match self.raft.initialize(voters).await {
            Ok(()) => Ok(Response::new(self.membership())),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                Err(Status::already_exists(e.to_string()))
            }
            Err(e) => Err(Status::invalid_argument(e.to_string())),
        }
    }

    async fn add_learner(
        &self,
        request: Request<Member>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let Member { id, addr } = request.into_inner();
        match self.raft.add_learner(id, Node::new(addr), true).await {
            Ok(written) => Ok(Response::new(
                written
                    .membership
                    .map(|m| membership_of(&m))
                    .unwrap_or_else(|| self.membership()),
            )),
            Err(e) => Err(refused(&e)),
        }
    }

    async fn change_voters(
        &self,
        request: Request<ChangeVotersRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let request = request.into_inner();
        let voters: BTreeSet<NodeId> = request.voters.into_iter().collect();
        if voters.is_empty() {
            return Err(Status::invalid_argument(
                "a cluster needs at least one voter",
            ));
        }
        self.raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await
            .map_err(|e| refused(&e))?;
        let remove: BTreeSet<NodeId> = request.remove.into_iter().collect();
        if !remove.is_empty() {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(remove), false)
                .await
                .map_err(|e| refused(&e))?;
        }
        Ok(Response::new(self.membership()))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<VoterStatus>, Status> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow().clone();
        let MembershipResponse { voters, learners } =
            membership_of(metrics.membership_config.membership());
        Ok(Response::new(VoterStatus {
            id: metrics.id,
            state: state_name(&metrics).into(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index,
            last_applied_index: metrics.last_applied.map(|id| id.index),
            header_tail: self.headers.tail(),
            voters,
            learners,
            reported: self.reports.seen(),
        }))
    }

    async fn report(
        &self,
        request: Request<MemberReport>,
    ) -> Result<Response<ReportResponse>, Status> {
        match self.reports.record(request.into_inner()) {
            Ok(()) => Ok(Response::new(ReportResponse {})),
            Err(e @ ReportError::TooManyMembers) => Err(Status::resource_exhausted(e.to_string())),
            Err(e @ ReportError::TooLong(_)) => Err(Status::invalid_argument(e.to_string())),
        }
    }
}

/// Batches a follower may have in flight before the feed waits for it.
pub const FOLLOW_BUFFER: usize = 16;

/// Sends the headers from `from` on, a batch each time `tail` moves,
/// until the receiver goes away or the voter stops. Holds the store only
/// while reading a batch, so a stopping voter's store closes.
async fn feed_follower(
    headers: WeakHeaderReader,
    mut tail: tokio::sync::watch::Receiver<u64>,
    mut from: u64,
    sender: tokio::sync::mpsc::Sender<Result<HeadersResponse, Status>>,
) {
    loop {
        let Some(message) = next_batch(&headers, &mut from) else {
            return;
        };
        if sender.send(message).await.is_err() {
            return;
        }
        if *tail.borrow() > from {
            continue;
        }
        let moved = tail.wait_for(|&now| now > from);
        tokio::select! {
            changed = moved => if changed.is_err() { return },
            () = sender.closed() => return,
        }
    }
}

/// The next batch from `from` (advanced past it), or None once the store
/// is closed.
fn next_batch(
    headers: &WeakHeaderReader,
    from: &mut u64,
) -> Option<Result<HeadersResponse, Status>> {
    let headers = headers.upgrade()?;
    let batch = match headers.read(*from, MAX_READ_BATCH) {
        Ok(batch) => batch,
        Err(e) => return Some(Err(Status::internal(e))),
    };
    *from += batch.len() as u64;
    Some(Ok(HeadersResponse {
        headers: batch.iter().map(EntryHeader::encode).collect(),
        tail: headers.tail(),
    }))
}

fn state_name(metrics: &openraft::RaftMetrics<NodeId, Node>) -> &'static str {
    use openraft::ServerState;
    if metrics.running_state.is_err() {
        return "shutdown";
    }
    match metrics.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// A voter's gRPC server running on a task: stop it with
/// [`VoterServer::stop`].
pub struct VoterServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// The connections a member's peer services accept, without Nagle's
/// algorithm. Peer replies (a shard stored, a header ordered, a frame of
/// the follow stream) are small and every one is on a commit's path: with
/// Nagle, a reply written in pieces waits for the peer's delayed ACK, about
/// 40 ms, which put a 40 ms step in a cluster's commit latency.
pub fn peer_incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

impl VoterServer {
    /// Serves `service` on `listener` over mutual TLS until stopped.
    pub fn spawn(
        service: ordo_proto::cluster::v1::sequencer_server::SequencerServer<RaftService>,
        listener: tokio::net::TcpListener,
        tls: &PeerTls,
    ) -> Result<Self, tonic::transport::Error> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .tls_config(tls.server())?
            .add_service(service)
            .serve_with_incoming_shutdown(peer_incoming(listener), async {
                let _ = stopped.await;
            });
        Ok(Self {
            stop,
            task: tokio::spawn(server),
        })
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(self) -> Result<(), tonic::transport::Error> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            // The task panicked or was cancelled: nothing left to stop.
            Err(_) => Ok(()),
        }
    }
}
