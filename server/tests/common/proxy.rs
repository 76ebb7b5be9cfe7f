//! A TCP proxy in front of one cluster member, for partition tests: every
//! connection is forwarded to the member unless the proxy is told to cut
//! it off, either from everyone or from given source addresses. Cutting
//! also ends the connections already open from them. Members dial from
//! their own listen address (`PeerTls::dialing_from`), so a member given a
//! loopback address of its own is recognised by source.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy refuses.
#[derive(Default)]
struct Cuts {
    everyone: bool,
    sources: HashSet<IpAddr>,
    /// Open connections by source, ended when their source is cut.
    open: Vec<(IpAddr, JoinHandle<()>)>,
}

impl Cuts {
    fn refuses(&self, source: IpAddr) -> bool {
        self.everyone || self.sources.contains(&source)
    }

    fn end_refused(&mut self) {
        let (everyone, sources) = (self.everyone, self.sources.clone());
        self.open.retain(|(source, task)| {
            let cut = everyone || sources.contains(source);
            if cut {
                task.abort();
            }
            !cut && !task.is_finished()
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
        for (_, task) in self.cuts.lock().unwrap().open.drain(..) {
            task.abort();
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

    /// Forwards everything again.
    pub fn heal(&self) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.everyone = false;
        cuts.sources.clear();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, cuts: Arc<Mutex<Cuts>>) {
    while let Ok((inbound, from)) = listener.accept().await {
        let mut cuts_now = cuts.lock().unwrap();
        if cuts_now.refuses(from.ip()) {
            continue; // dropped: the dialer sees the connection close
        }
        let task = tokio::spawn(forward(inbound, target));
        cuts_now.open.push((from.ip(), task));
    }
}

async fn forward(mut inbound: TcpStream, target: SocketAddr) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}
