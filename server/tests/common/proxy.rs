//! A TCP proxy in front of one cluster member, for partition tests: every
//! connection is forwarded to the member unless the proxy is told to cut
//! it off, either from everyone or from given source addresses. Cutting
//! also ends the connections already open from them; a silent cut instead
//! keeps them open and drops every byte both ways, as a network that loses
//! packets does to connections already made (no reset, nothing the ends
//! notice but silence). New connections are refused either way: the dialer
//! sees a failed connect, as it would when its SYNs went unanswered (its
//! connect timeout) and sooner. Members dial from their own
//! listen address (`PeerTls::dialing_from`), so a member given a loopback
//! address of its own is recognised by source.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy refuses.
#[derive(Default)]
struct Cuts {
    everyone: bool,
    sources: HashSet<IpAddr>,
    /// Whether cut connections are kept open and silenced, not ended.
    silent: bool,
    /// Open connections by source, ended or silenced when it is cut.
    open: Vec<Open>,
}

/// One forwarded connection.
struct Open {
    source: IpAddr,
    task: JoinHandle<()>,
    /// Set: its bytes are dropped both ways, for good.
    silenced: Arc<AtomicBool>,
}

impl Cuts {
    fn refuses(&self, source: IpAddr) -> bool {
        self.everyone || self.sources.contains(&source)
    }

    fn end_refused(&mut self) {
        let (everyone, sources) = (self.everyone, self.sources.clone());
        let silent = self.silent;
        self.open.retain(|open| {
            let cut = everyone || sources.contains(&open.source);
            match (cut, silent) {
                (true, true) => open.silenced.store(true, Ordering::SeqCst),
                (true, false) => open.task.abort(),
                (false, _) => {}
            }
            (silent || !cut) && !open.task.is_finished()
        });
    }
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// The address to dial instead of the member's.
    pub addr: SocketAddr,
    cuts: Arc<Mutex<Cuts>>,
    accepting: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        for open in self.cuts.lock().unwrap().open.drain(..) {
            open.task.abort();
        }
    }
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cuts = Arc::new(Mutex::new(Cuts::default()));
        let accepting = tokio::spawn(accept(listener, target, cuts.clone()));
        Self {
            addr,
            cuts,
            accepting,
        }
    }

    /// Refuses everyone, ending open connections.
    pub fn cut_everyone(&self) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.everyone = true;
        cuts.end_refused();
    }

    /// Refuses connections from `source`, ending open ones.
    pub fn cut_from(&self, source: IpAddr) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.sources.insert(source);
        cuts.end_refused();
    }

    /// Drops every byte from and to everyone, open connections kept open.
    pub fn silence_everyone(&self) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.silent = true;
        cuts.everyone = true;
        cuts.end_refused();
    }

    /// Drops every byte from and to `source`, its connections kept open.
    pub fn silence_from(&self, source: IpAddr) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.silent = true;
        cuts.sources.insert(source);
        cuts.end_refused();
    }

    /// Forwards new connections again. Silenced ones stay silent: what
    /// they lost cannot be given back, so their ends must notice and
    /// connect again.
    pub fn heal(&self) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.everyone = false;
        cuts.silent = false;
        cuts.sources.clear();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, cuts: Arc<Mutex<Cuts>>) {
    while let Ok((inbound, from)) = listener.accept().await {
        let mut cuts_now = cuts.lock().unwrap();
        if cuts_now.refuses(from.ip()) {
            continue; // dropped: the dialer sees the connection close
        }
        let silenced = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(forward(inbound, target, silenced.clone()));
        cuts_now.open.push(Open {
            source: from.ip(),
            task,
            silenced,
        });
    }
}

async fn forward(inbound: TcpStream, target: SocketAddr, silenced: Arc<AtomicBool>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (from_dialer, to_dialer) = inbound.into_split();
    let (from_member, to_member) = outbound.into_split();
    tokio::join!(
        pump(from_dialer, to_member, silenced.clone()),
        pump(from_member, to_dialer, silenced),
    );
}

/// Copies `from` to `to` until either ends, dropping what it reads while
/// `silenced` is set.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silenced: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if !silenced.load(Ordering::SeqCst) && to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
