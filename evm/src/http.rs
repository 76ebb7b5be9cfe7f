//! HTTP(S) clients for a chain's JSON-RPC endpoint.
//!
//! Every client is built here, with TLS configured explicitly: rustls on
//! the *ring* provider, the same one the node's gRPC (tonic) uses, and
//! never a process-wide default. (Letting the HTTP stack pick its own
//! provider brought in a second one, aws-lc-rs, and rustls then refused to
//! guess between them at the first TLS connection.) Trusted roots are the
//! system's, plus the certificates of an optional PEM file, for endpoints
//! behind a private authority.

use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::transports::http::{Http, reqwest};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest one JSON-RPC call may take unless the settings say otherwise
/// (`EvmSettings::rpc_timeout`). Calls are small (a block number, a
/// receipt, a range of at most 1,000 blocks of logs); one that takes
/// longer is failed and tried again.
pub const RPC_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest call timeout the settings may ask for: past it a silent
/// endpoint would hold an append for most of the sequencer's two-minute
/// send deadline.
pub const MAX_RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a client for an endpoint could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse, or is neither `http` nor `https`.
    #[error("endpoint {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The trusted roots could not be read.
    #[error("trusted certificates {file}: {reason}")]
    Roots {
        /// Where they were read from.
        file: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// How to reach an endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    /// `http://` or `https://` URL.
    pub url: &'a str,
    /// Longest one call may take.
    pub timeout: Duration,
    /// A PEM file of extra certificates to trust (https only).
    pub ca_file: Option<&'a Path>,
}

impl Endpoint<'_> {
    /// An endpoint with the default call timeout and the system's roots.
    pub fn plain(url: &str) -> Endpoint<'_> {
        Endpoint {
            url,
            timeout: RPC_CALL_TIMEOUT,
            ca_file: None,
        }
    }

    fn parsed(&self) -> Result<reqwest::Url, HttpError> {
        let invalid = |reason: String| HttpError::Url {
            url: self.url.to_string(),
            reason,
        };
        let url: reqwest::Url = self.url.parse().map_err(|e| invalid(format!("{e}")))?;
        match url.scheme() {
            "http" | "https" => Ok(url),
            other => Err(invalid(format!("scheme {other:?}: http or https only"))),
        }
    }

    /// A provider with no fillers (the caller fills and signs).
    pub fn provider(&self) -> Result<DynProvider, HttpError> {
        let url = self.parsed()?;
        let local = url
            .host_str()
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        let http = Http::with_client(self.client()?, url);
        let rpc = alloy::rpc::client::RpcClient::new(http, local);
        let builder = ProviderBuilder::new().disable_recommended_fillers();
        Ok(builder.connect_client(rpc).erased())
    }

    /// A provider that fills and signs with `wallet` (tools and tests).
    pub fn signing_provider(&self, wallet: EthereumWallet) -> Result<DynProvider, HttpError> {
        let url = self.parsed()?;
        let http = Http::with_client(self.client()?, url);
        let rpc = alloy::rpc::client::RpcClient::new(http, false);
        Ok(ProviderBuilder::new()
            .wallet(wallet)
            .connect_client(rpc)
            .erased())
    }

    fn client(&self) -> Result<reqwest::Client, HttpError> {
        let tls = tls_config(self.ca_file)?;
        reqwest::Client::builder()
            .timeout(self.timeout)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))
    }
}

/// rustls on ring, trusting the system's roots and `ca_file`'s.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    // A system root that does not parse is skipped, not fatal: the others
    // still serve, and an endpoint that needs it fails with a clear error.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(file) = ca_file {
        let failed = |reason: String| HttpError::Roots {
            file: file.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(file).map_err(|e| failed(e.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|e| failed(e.to_string()))?;
            roots.add(cert).map_err(|e| failed(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
