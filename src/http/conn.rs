//! The connections themselves: a cap on how many are open at once and an idle timeout on
//! each, so that idle or abandoned sockets can never hold what `/healthz` and live clients
//! need. The open-file limit is raised at start-up and the cap kept below it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// File descriptors kept for everything but client connections (the database pool, the
/// listener's connection, files, the throwaway cluster's pipes).
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard one; the connection cap that fits under it.
pub fn connection_cap(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            open_files = limit,
            cap = fits,
            wanted,
            "the open-file limit caps client connections lower than configured"
        );
    }
    wanted.min(fits).max(1)
}

/// A TCP listener that accepts at most `cap` connections at a time (further clients wait
/// in the kernel's backlog) and closes each one after `idle` without a byte either way.
pub struct CappedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl CappedListener {
    /// Wraps `listener`.
    pub fn new(listener: TcpListener, cap: usize, idle: Duration) -> Self {
        CappedListener {
            listener,
            slots: Arc::new(Semaphore::new(cap)),
            idle,
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Connection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed.
        let slot = loop {
            match self.slots.clone().acquire_owned().await {
                Ok(slot) => break slot,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, address)) => {
                    let _ = stream.set_nodelay(true);
                    return (Connection::new(stream, slot, self.idle), address);
                }
                // Out of descriptors and the like: wait a little, as axum does.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection: holds its slot until dropped; fails its pending read once it
/// has been idle (nothing read or written, no request being answered) for the timeout,
/// which closes it.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    /// The last byte read or written: a plain store per read or write; the timer is moved
    /// only when it fires.
    last: Instant,
    deadline: Pin<Box<Sleep>>,
    busy: Activity,
}

/// Requests being answered on one connection (a slow ingest is not idleness); given to
/// every request as `ConnectInfo<Activity>`.
#[derive(Clone, Debug, Default)]
pub struct Activity(Arc<AtomicUsize>);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, CappedListener>>
    for Activity
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> Self {
        stream.io().busy.clone()
    }
}

/// Counts the request as in progress on its connection until it is answered.
pub async fn mark_busy(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let activity = request
        .extensions()
        .get::<axum::extract::ConnectInfo<Activity>>()
        .map(|info| info.0 .0.clone());
    if let Some(busy) = &activity {
        busy.fetch_add(1, Ordering::SeqCst);
    }
    // Decremented even when the request is dropped (its client left).
    struct Done(Option<Arc<AtomicUsize>>);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Some(busy) = &self.0 {
                busy.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    let _done = Done(activity);
    next.run(request).await
}

impl Connection {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, idle: Duration) -> Self {
        Connection {
            stream,
            _slot: slot,
            idle,
            last: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
            busy: Activity::default(),
        }
    }

    fn touch(&mut self) {
        self.last = Instant::now();
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(outcome) => {
                self.touch();
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                while self.deadline.as_mut().poll(cx).is_ready() {
                    let now = Instant::now();
                    let due = self.last + self.idle;
                    if due <= now {
                        if self.busy.0.load(Ordering::SeqCst) == 0 {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "connection idle for too long",
                            )));
                        }
                        // A request is being answered: look again a timeout later.
                        self.last = now;
                    }
                    let next = self.last + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.stream).poll_write(cx, buf);
        if outcome.is_ready() {
            self.touch();
        }
        outcome
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if outcome.is_ready() {
            self.touch();
        }
        outcome
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
