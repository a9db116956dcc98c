//! A TCP proxy between the app and PostgreSQL that a test cuts and restores, to test
//! outages for real.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct State {
    open: AtomicBool,
    /// While true, nothing is forwarded: connections stay open and silent (a frozen
    /// network path), new ones are accepted and held the same way.
    frozen: tokio::sync::watch::Sender<bool>,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// The proxy; dropping it stops it.
pub struct Proxy {
    /// Local port to connect to instead of the server's.
    pub port: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target`, open.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            open: AtomicBool::new(true),
            frozen: tokio::sync::watch::channel(false).0,
            connections: Mutex::new(Vec::new()),
        });
        let accepting = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.open.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let mut frozen = accepting.frozen.subscribe();
                let pipe = tokio::spawn(async move {
                    let frozen_now = *frozen.borrow();
                    let froze = frozen_now
                        || tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                            changed = frozen.wait_for(|f| *f) => changed.is_ok(),
                        };
                    if froze {
                        // Keep both sockets open and say nothing, forever.
                        std::future::pending::<()>().await;
                    }
                });
                accepting.connections.lock().expect("proxy lock").push(pipe);
            }
        });
        Proxy {
            port,
            state,
            accept,
        }
    }

    /// Cuts every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.open.store(false, Ordering::SeqCst);
        for pipe in self.state.connections.lock().expect("proxy lock").drain(..) {
            pipe.abort();
        }
    }

    /// Freezes every connection: open, silent, nothing forwarded either way.
    pub fn freeze(&self) {
        self.state.frozen.send_replace(true);
    }

    /// New connections flow again (frozen ones stay frozen, as after a network partition).
    pub fn thaw(&self) {
        self.state.frozen.send_replace(false);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for pipe in self.state.connections.lock().expect("proxy lock").drain(..) {
            pipe.abort();
        }
    }
}
