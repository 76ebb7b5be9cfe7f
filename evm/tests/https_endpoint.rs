//! An endpoint behind TLS: anvil behind a TLS-terminating proxy whose
//! certificate a private authority signed. With the authority trusted
//! (`ca_file`) the sequencer appends and follows over https; without it,
//! opening fails with a typed error naming the certificate.

mod common;

use common::Anvil;
use ordo_evm::{EvmError, EvmSequencer, EvmSettings};
use ordo_log::{Sequencer, stress};
use std::sync::Arc;
use std::time::Duration;

/// Longest anything promised here may take.
const BOUND: Duration = Duration::from_secs(30);

/// A private authority and a certificate it signed for 127.0.0.1.
struct Authority {
    ca_pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    leaf_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn authority() -> Authority {
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("the authority");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).expect("issuer");
    let leaf_key = rcgen::KeyPair::generate().expect("a key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let leaf = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("the endpoint's certificate");
    Authority {
        ca_pem: ca_cert.pem(),
        leaf: leaf.der().clone(),
        leaf_key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// Serves TLS on loopback and relays each connection to `upstream`.
async fn tls_proxy(upstream: String, authority: &Authority) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![authority.leaf.clone()], authority.leaf_key.clone_key())
        .expect("the certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("address"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    url
}

async fn https_settings(anvil: &Anvil, authority: &Authority) -> EvmSettings {
    let mut settings = anvil.deploy().await;
    settings.rpc_url = tls_proxy(anvil.url.clone(), authority).await;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencer_appends_and_follows_over_https_when_it_trusts_the_authority() {
    let anvil = common::anvil(&[]);
    let authority = authority();
    let dir = tempfile::tempdir().expect("a directory");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &authority.ca_pem).expect("writes");
    let mut settings = https_settings(&anvil, &authority).await;
    settings.ca_file = Some(ca_file);
    let sequencer = EvmSequencer::open(settings, Some(Anvil::signer(0)))
        .await
        .expect("opens over https");
    for i in 0..2 {
        let appended = tokio::time::timeout(BOUND, sequencer.append(stress::descriptor(3, 0, i)));
        let header = appended.await.expect("returns").expect("appends");
        assert_eq!(header.seq, i);
    }
    let read = sequencer.read(0, 10).await.expect("reads");
    assert_eq!(read.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_whose_certificate_is_not_trusted_is_a_typed_error() {
    let anvil = common::anvil(&[]);
    let authority = authority();
    let settings = https_settings(&anvil, &authority).await;
    let refused = EvmSequencer::open(settings.clone(), None).await;
    assert!(
        matches!(&refused, Err(EvmError::Rpc { .. })),
        "{:?}",
        refused.err()
    );
    let missing = EvmSettings {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..settings
    };
    let refused = EvmSequencer::open(missing, None).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("/nonexistent/ca.pem"), "{message}");
}
