//! Mutual TLS between cluster members: how a voter knows a request comes
//! from a member, and a member knows it talks to a voter.
//!
//! Every member, and every operator running `ordo cluster`, holds a
//! certificate signed by the cluster's own certificate authority, made once
//! by `ordo cluster certs`. A voter's server demands a client certificate
//! and accepts only ones that chain to that authority; a member's client
//! accepts only a server whose certificate chains to it and names
//! [`CLUSTER_NAME`]. So a stranger (no certificate), a forger (a
//! certificate from any other authority) and a replayer (recorded traffic
//! is bound to a handshake's fresh keys) are refused before raft sees a
//! byte.
//!
//! Why TLS rather than node keys signing each request: TLS authenticates
//! once per connection instead of per message (raft sends thousands of
//! messages a second), rules out replay without a nonce store, and keeps
//! headers and shards confidential on the wire, all with a library every
//! operator's tooling understands. The trust it asks for: whoever holds the
//! authority's key (`ca.key`) can make members; keep it off the nodes.
//!
//! Files in a certificate directory: `ca.pem` (the authority), `ca.key`
//! (its key, needed only to make more certificates), and `NAME.pem` /
//! `NAME.key` per holder (`node-ID` for members, `admin` for the CLI).

use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The DNS name every member certificate carries and every member client
/// expects of a server: members share one identity, "a member of this
/// cluster", since any of them may be asked anything.
pub const CLUSTER_NAME: &str = "ordo-cluster";

/// How long certificates made by `ordo cluster certs` stay valid, in days.
pub const CERT_VALIDITY_DAYS: i64 = 3650;

/// Why certificates could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Making or parsing a certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The holder's name cannot name files.
    #[error("certificate holder name {0:?}: use letters, digits, '-' and '_'")]
    BadName(String),
    /// The certificate directory already holds an authority.
    #[error("{0} already holds a certificate authority; add holders with --add")]
    Exists(PathBuf),
}

fn read(path: PathBuf) -> Result<String, TlsError> {
    std::fs::read_to_string(&path).map_err(|source| TlsError::File { path, source })
}

fn write(path: PathBuf, text: &str) -> Result<(), TlsError> {
    std::fs::write(&path, text).map_err(|source| TlsError::File { path, source })
}

/// Writes a private key readable by its owner only.
fn write_secret(path: PathBuf, text: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    file.and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| TlsError::File { path, source })
}

fn checked_name(name: &str) -> Result<&str, TlsError> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    fine.then_some(name)
        .ok_or_else(|| TlsError::BadName(name.to_string()))
}

/// One holder's credentials: the authority it trusts and its own identity.
#[derive(Clone)]
pub struct PeerTls {
    authority: Certificate,
    identity: Identity,
    /// The address this member's connections to other members come from
    /// (`None`: the system picks).
    source: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls { .. }")
    }
}

impl PeerTls {
    /// Reads `DIR/ca.pem`, `DIR/NAME.pem` and `DIR/NAME.key`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, TlsError> {
        let name = checked_name(name)?;
        let authority = Certificate::from_pem(read(dir.join("ca.pem"))?);
        let cert = read(dir.join(format!("{name}.pem")))?;
        let key = read(dir.join(format!("{name}.key")))?;
        Ok(Self {
            authority,
            identity: Identity::from_pem(cert, key),
            source: None,
        })
    }

    /// These credentials, dialing other members from `ip` (the address the
    /// member listens on): peers and firewalls then see one address per
    /// member, whatever route the system would pick. An unspecified
    /// address (`0.0.0.0`, `::`) leaves the choice to the system.
    pub fn dialing_from(self, ip: std::net::IpAddr) -> Self {
        Self {
            source: (!ip.is_unspecified()).then_some(ip),
            ..self
        }
    }

    /// The address connections to other members come from, if fixed.
    pub fn source(&self) -> Option<std::net::IpAddr> {
        self.source
    }

    /// A voter's server side: its identity, and client certificates required.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.authority.clone())
    }

    /// A client side: its identity, and servers must be members.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .domain_name(CLUSTER_NAME)
            .ca_certificate(self.authority.clone())
            .identity(self.identity.clone())
    }

    /// An endpoint for the member at `addr` (`host:port`) with these
    /// credentials, dialing from [`PeerTls::source`], without Nagle (peer
    /// calls are small and latency-bound). Every client of a member's peer
    /// services starts here; callers add their timeouts.
    pub fn endpoint(
        &self,
        addr: &str,
    ) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(self.client())?
                .local_address(self.source)
                .tcp_nodelay(true),
        )
    }
}

fn valid_from_now(params: &mut rcgen::CertificateParams) {
    // A day of slack before now, for members whose clocks lag.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CERT_VALIDITY_DAYS);
}

fn key_pair() -> Result<rcgen::KeyPair, TlsError> {
    Ok(rcgen::KeyPair::generate()?)
}

/// Makes a new authority in `dir` (`ca.pem`, `ca.key`) and a certificate
/// for each of `holders`. Refuses a directory that already has one.
pub fn make_authority(dir: &Path, holders: &[String]) -> Result<(), TlsError> {
    let ca_path = dir.join("ca.pem");
    if ca_path.exists() {
        return Err(TlsError::Exists(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::File {
        path: dir.to_path_buf(),
        source,
    })?;
    let key = key_pair()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ordo cluster authority");
    valid_from_now(&mut params);
    let cert = params.self_signed(&key)?;
    write_secret(dir.join("ca.key"), &key.serialize_pem())?;
    write(ca_path, &cert.pem())?;
    add_holders(dir, holders)
}

/// Makes a certificate for each of `holders`, signed by the authority in
/// `dir` (which must hold `ca.key`).
pub fn add_holders(dir: &Path, holders: &[String]) -> Result<(), TlsError> {
    let ca_key = rcgen::KeyPair::from_pem(&read(dir.join("ca.key"))?)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&read(dir.join("ca.pem"))?, ca_key)?;
    for holder in holders {
        let name = checked_name(holder)?;
        let key = key_pair()?;
        let mut params = rcgen::CertificateParams::new(vec![CLUSTER_NAME.to_string()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        valid_from_now(&mut params);
        let cert = params.signed_by(&key, &issuer)?;
        write_secret(dir.join(format!("{name}.key")), &key.serialize_pem())?;
        write(dir.join(format!("{name}.pem")), &cert.pem())?;
    }
    Ok(())
}
