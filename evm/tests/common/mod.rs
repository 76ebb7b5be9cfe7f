//! The development chain of `ordo_evm::devchain`, started from the anvil
//! `scripts/setup.sh` installed in this repository.

#![allow(dead_code, unused_imports)]

pub use ordo_evm::devchain::{Anvil, CHAIN_ID, Miner};

/// Starts anvil with `args`.
pub fn anvil(args: &[&str]) -> Anvil {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Anvil::start(&ordo_evm::devchain::npm_anvil(&root), args)
}

/// A TCP proxy in front of a chain's endpoint that can go silent: while
/// silent it keeps every connection open and swallows what clients send,
/// answering nothing (an endpoint that takes calls and never replies).
pub struct SilentProxy {
    /// `http://` address of the proxy.
    pub url: String,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Requests relayed that ask for a transaction's receipt.
    pub receipt_calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Requests relayed that send a signed transaction.
    pub sent_transactions: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SilentProxy {
    /// Starts a proxy on loopback in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let silent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = silent.clone();
        let counters = Counters::default();
        let (receipt_calls, sent_transactions) =
            (counters.receipts.clone(), counters.sends.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, flag, counters) = (upstream.clone(), flag.clone(), counters.clone());
                tokio::spawn(async move { relay(client, &upstream, flag, counters).await });
            }
        });
        Self {
            url,
            silent,
            receipt_calls,
            sent_transactions,
            task,
        }
    }

    /// Goes silent (`true`) or answers again (`false`).
    pub fn set_silent(&self, silent: bool) {
        self.silent
            .store(silent, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the proxy counts in the requests it relays.
#[derive(Clone, Default)]
struct Counters {
    receipts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    sends: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How many times `method` is named in `bytes`.
fn named(bytes: &[u8], method: &[u8]) -> u64 {
    bytes.windows(method.len()).filter(|w| *w == method).count() as u64
}

/// Relays one connection, dropping what the client sends while `silent`.
async fn relay(
    client: tokio::net::TcpStream,
    upstream: &str,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
    counters: Counters,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = client_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if silent.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let bytes = &buffer[..read];
            let asked = named(bytes, b"eth_getTransactionReceipt");
            counters.receipts.fetch_add(asked, Relaxed);
            let sent = named(bytes, b"eth_sendRawTransaction");
            counters.sends.fetch_add(sent, Relaxed);
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    let answers = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::join!(requests, answers);
}
