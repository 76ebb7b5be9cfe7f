//! # ordo-client: talking to an ordo node
//!
//! The Rust client of ordo. It depends only on the wire protocol
//! ([`ordo_proto`]), never on server internals, so anything it can do a
//! client in another language can do with the same `.proto` files.
//!
//! ## Layout
//!
//! - [`Client`]: a connection to one node, with typed calls.
//! - [`ClientError`]: what can go wrong, as a typed error.
//! - [`normalize_endpoint`]: turns `host:port` into a URI tonic accepts.
//! - [`txn`]: reads, commits and [`Client::transact`] with retries.
//! - [`keyfile`]: reading and creating key files.
//! - [`acl`]: questions about roles ([`Client::ask_acl`]).
//! - [`sql`]: SQL sessions.
//! - [`da`]: blobs: disperse, follow, retrieve, certificates.
//! - [`hex`]: bytes as lowercase hex, the way ids are printed.
//! - `dev`: starting `ordo dev` as a child process (feature `launch`).

use ordo_proto::v1::{GetStatusRequest, GetStatusResponse, status_client::StatusClient};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub mod acl;
pub mod da;
#[cfg(feature = "launch")]
pub mod dev;
pub mod keyfile;
pub mod session;
pub mod sql;
pub mod txn;

pub use session::{CommitMode, Session};
pub use txn::TxContext;

/// The address `ordo dev` listens on when not told otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7420";

/// The stream `ordo dev` creates for its CLI user on first start, and the
/// stream the command-line client uses when not told otherwise.
pub const DEFAULT_STREAM: &str = "default";

/// How long to wait for a TCP connection before giving up.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a valid URI or `host:port`.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// Where we tried to connect.
        endpoint: String,
        /// The transport's explanation.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("server refused the call: {}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    /// The version asked for is below the log's retention horizon: that
    /// history is no longer kept. Read (or resume a watch) at `oldest` or
    /// later.
    #[error("compacted: {message}")]
    Compacted {
        /// The oldest version the node still reads at.
        oldest: u64,
        /// The node's explanation.
        message: String,
    },
    /// The transaction could not be signed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The node answered outside the protocol (a field missing or of the
    /// wrong length).
    #[error("the node answered outside the protocol: {0}")]
    Protocol(String),
    /// The log decided against the transaction for a reason retrying cannot fix.
    #[error("transaction aborted ({outcome}): {message}")]
    Aborted {
        /// The outcome kind, e.g. `permission_denied`.
        outcome: String,
        /// The server's explanation.
        message: String,
    },
    /// The transaction body gave up (nothing was committed).
    #[error("transaction cancelled: {0}")]
    Cancelled(String),
    /// Every attempt lost a conflict.
    #[error("transaction still conflicting after {attempts} attempts")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
    },
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let oldest = status
            .metadata()
            .get(ordo_proto::OLDEST_VERSION_METADATA)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        match (status.code(), oldest) {
            (tonic::Code::OutOfRange, Some(oldest)) => ClientError::Compacted {
                oldest,
                message: status.message().to_string(),
            },
            _ => ClientError::Status(status),
        }
    }
}

/// Accepts `host:port` or a full `http://` URI and returns a URI.
pub fn normalize_endpoint(endpoint: &str) -> Result<String, ClientError> {
    let trimmed = endpoint.trim();
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.into(),
    };
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let uri = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    if !uri.starts_with("http://") && !uri.starts_with("https://") {
        return Err(invalid("only http:// and https:// are supported"));
    }
    let parsed: tonic::codegen::http::Uri = uri
        .parse()
        .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(&e.to_string()))?;
    if parsed.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

/// A connection to one ordo node. Cheap to clone; clones share the
/// connection and the open sessions.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    sessions: std::sync::Arc<session::Sessions>,
}

impl Client {
    /// Connects to `endpoint` (`host:port` or `http://host:port`).
    pub async fn connect(endpoint: &str) -> Result<Self, ClientError> {
        let uri = normalize_endpoint(endpoint)?;
        let channel = Endpoint::from_shared(uri.clone())
            .map_err(|e| ClientError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|e| ClientError::Connect {
                endpoint: uri,
                reason: error_chain(&e),
            })?;
        Ok(Self {
            channel,
            sessions: Default::default(),
        })
    }

    /// This client, committing as `mode` says (by default
    /// [`CommitMode::Session`]).
    pub fn with_commit_mode(self, mode: CommitMode) -> Self {
        Self {
            sessions: std::sync::Arc::new(session::Sessions::new(mode)),
            ..self
        }
    }

    /// The connection, for calling services this client has no method for.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The node's role and progress.
    pub async fn status(&self) -> Result<GetStatusResponse, ClientError> {
        let response = StatusClient::new(self.channel.clone())
            .get_status(GetStatusRequest {})
            .await?;
        Ok(response.into_inner())
    }

    /// Whether the node reports itself SERVING on the standard gRPC health check.
    pub async fn is_serving(&self) -> Result<bool, ClientError> {
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let response = HealthClient::new(self.channel.clone())
            .check(request)
            .await?;
        Ok(response.into_inner().status() == ServingStatus::Serving)
    }
}

/// Bytes as lowercase hex, the way stream ids and digests are printed.
pub use ordo_txn::ids::hex;

/// The error and its sources, joined: transport errors hide the useful part
/// ("connection refused") in their source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_becomes_http_uri() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:7420").ok().as_deref(),
            Some("http://127.0.0.1:7420")
        );
        assert_eq!(
            normalize_endpoint(" http://localhost:1 ").ok().as_deref(),
            Some("http://localhost:1")
        );
    }

    #[test]
    fn bad_endpoints_are_typed_errors() {
        for bad in ["", "   ", "ftp://host:1", "http://", "a b:1"] {
            assert!(
                matches!(
                    normalize_endpoint(bad),
                    Err(ClientError::InvalidEndpoint { .. })
                ),
                "{bad:?} should be refused"
            );
        }
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port());
        let port = port.expect("a free port");
        let error = Client::connect(&format!("127.0.0.1:{port}"))
            .await
            .expect_err("nothing listens there");
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
    }
}
