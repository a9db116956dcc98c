//! A TCP proxy between the app and PostgreSQL that a test cuts and restores, to test
//! outages for real.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

struct State {
    open: AtomicBool,
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
                let pipe = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
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
