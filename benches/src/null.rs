//! The null target: ordo's commit and read APIs served by a process-local
//! gRPC server that answers every call at once, without signature checks,
//! a log or a store. Driven by the same load generator and client code as
//! ordo, its throughput is the ceiling that the load generator and gRPC
//! allow on this machine; every ordo figure is reported as a fraction of it.
//!
//! It serves only what the load generator calls (`Txn.Begin`,
//! `Txn.Commit`, `Txn.Session`, `Kv.Get`); the other Kv calls answer
//! UNIMPLEMENTED, saying so.

use ordo_proto::v1::kv_server::{Kv, KvServer};
use ordo_proto::v1::txn_server::{Txn, TxnServer};
use ordo_proto::v1::{
    BatchGetRequest, BatchGetResponse, BeginRequest, BeginResponse, CommitRequest, CommitResponse,
    GetRequest, GetResponse, ScanRequest, ScanResponse, SessionChallenge, SessionCommitted,
    SessionOpened, SessionRequest, SessionResponse, WatchEvent, WatchRequest, session_request,
    session_response,
};
use tonic::{Request, Response, Status, Streaming};

/// The answer every commit gets: committed at version 1.
fn committed() -> CommitResponse {
    CommitResponse {
        outcome: "committed".into(),
        version: 1,
        ..CommitResponse::default()
    }
}

/// Answers at once; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullServer;

type Answers = tokio_stream::wrappers::ReceiverStream<Result<SessionResponse, Status>>;

fn message(response: session_response::Response) -> Result<SessionResponse, Status> {
    Ok(SessionResponse {
        response: Some(response),
    })
}

#[tonic::async_trait]
impl Txn for NullServer {
    type SessionStream = Answers;

    async fn begin(&self, _: Request<BeginRequest>) -> Result<Response<BeginResponse>, Status> {
        Ok(Response::new(BeginResponse { version: 1 }))
    }

    async fn commit(&self, _: Request<CommitRequest>) -> Result<Response<CommitResponse>, Status> {
        Ok(Response::new(committed()))
    }

    async fn session(
        &self,
        request: Request<Streaming<SessionRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let mut inbound = request.into_inner();
        let (answers, stream) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let challenge = SessionChallenge {
                node: vec![0; 20],
                nonce: vec![0; 32],
                expires_unix_ms: u64::MAX,
            };
            let _ = answers
                .send(message(session_response::Response::Challenge(challenge)))
                .await;
            while let Ok(Some(request)) = inbound.message().await {
                let answer = match request.request {
                    Some(session_request::Request::Open(open)) => {
                        session_response::Response::Opened(SessionOpened {
                            account: open.account,
                        })
                    }
                    Some(session_request::Request::Commit(commit)) => {
                        session_response::Response::Committed(SessionCommitted {
                            request_id: commit.request_id,
                            response: Some(committed()),
                            ..SessionCommitted::default()
                        })
                    }
                    None => continue,
                };
                if answers.send(message(answer)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Answers::new(stream)))
    }
}

#[tonic::async_trait]
impl Kv for NullServer {
    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<WatchEvent, Status>>;

    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Ok(Response::new(GetResponse {
            found: true,
            value: vec![0; 8],
            value_version: 1,
            read_version: 1,
        }))
    }

    async fn batch_get(
        &self,
        _: Request<BatchGetRequest>,
    ) -> Result<Response<BatchGetResponse>, Status> {
        Err(Status::unimplemented("the null target serves Get only"))
    }

    async fn scan(&self, _: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        Err(Status::unimplemented("the null target serves Get only"))
    }

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("the null target serves Get only"))
    }
}

/// Serves the null target on a loopback port from its own thread and
/// runtime (`worker_threads` of them, each pinned to `cpu` when given), so
/// that it can be held to one core like the servers it stands in for.
/// Returns the endpoint; the server lives as long as the process.
pub fn start(worker_threads: usize, cpu: Option<usize>) -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(worker_threads.max(1)).enable_all();
    if let Some(cpu) = cpu {
        runtime.on_thread_start(move || crate::pin::current_thread_to(cpu));
    }
    let runtime = runtime.build()?;
    std::thread::Builder::new()
        .name("null-target".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                let _ = tonic::transport::Server::builder()
                    .add_service(TxnServer::new(NullServer))
                    .add_service(KvServer::new(NullServer))
                    .serve_with_incoming(incoming)
                    .await;
            });
        })?;
    Ok(format!("http://{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{KvTarget, OrdoTarget};
    use ordo_client::{Client, CommitMode};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_null_target_answers_ordo_s_client_on_both_commit_paths() {
        let endpoint = start(1, None).unwrap();
        let key = ordo_txn::testkit::signing_key(1);
        for mode in [CommitMode::Session, CommitMode::Signed] {
            let client = Client::connect(&endpoint)
                .await
                .unwrap()
                .with_commit_mode(mode);
            let mut target = OrdoTarget::new(client, key.clone(), [0; 32]).await.unwrap();
            target.put(b"k", b"v").await.unwrap();
            target.get(b"k").await.unwrap();
            assert_eq!(target.read_modify_write(b"k").await.unwrap(), 1);
        }
    }
}
