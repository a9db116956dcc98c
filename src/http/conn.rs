//! The connections themselves: a cap on how many are open at once, an idle timeout on
//! each, and a deadline for each request head, so that idle, abandoned or trickling
//! sockets can never hold what `/healthz` and live clients need. The open-file limit is
//! raised at start-up and the cap kept below it.

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
/// in the kernel's backlog), closes each one after `idle` without a byte either way, and
/// closes one whose request head is not complete `head` after it began (after the accept,
/// or after the first byte following an answer): a client trickling a header byte now and
/// then is not idle, but it is not sending a request either.
pub struct CappedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    timeouts: Timeouts,
}

/// The time limits of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Nothing read or written (and no request being answered) for this long: closed.
    pub idle: Duration,
    /// A request head not complete this long after it began: closed.
    pub head: Duration,
}

impl CappedListener {
    /// Wraps `listener`.
    pub fn new(listener: TcpListener, cap: usize, timeouts: Timeouts) -> Self {
        CappedListener {
            listener,
            slots: Arc::new(Semaphore::new(cap)),
            timeouts,
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
                    return (Connection::new(stream, slot, self.timeouts), address);
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
/// has been idle (nothing read or written, no request being answered) for the idle
/// timeout, or once a request head has been under way for the head timeout, which closes
/// it.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    timeouts: Timeouts,
    /// The last byte read or written: a plain store per read or write; the timer is moved
    /// only when it fires.
    last: Instant,
    /// When the request head being received began, and how many requests had started
    /// then; `None` between requests (an answer sent, nothing read since) and once the
    /// connection is a WebSocket.
    head: Option<(Instant, usize)>,
    deadline: Pin<Box<Sleep>>,
    busy: Activity,
}

/// What the requests of one connection are doing: how many are being answered (a slow
/// ingest is not idleness), how many have started (a head was complete), and whether the
/// connection became a WebSocket (no more request heads). Given to every request as
/// `ConnectInfo<Activity>`.
#[derive(Clone, Debug, Default)]
pub struct Activity(Arc<ActivityCounts>);

#[derive(Debug, Default)]
struct ActivityCounts {
    answering: AtomicUsize,
    started: AtomicUsize,
    upgraded: std::sync::atomic::AtomicBool,
}

impl Activity {
    /// The connection is now a WebSocket: no request head will follow.
    pub fn upgraded(&self) {
        self.0.upgraded.store(true, Ordering::SeqCst);
    }
}

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
    if let Some(counts) = &activity {
        counts.started.fetch_add(1, Ordering::SeqCst);
        counts.answering.fetch_add(1, Ordering::SeqCst);
    }
    // Decremented even when the request is dropped (its client left).
    struct Done(Option<Arc<ActivityCounts>>);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Some(counts) = &self.0 {
                counts.answering.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
    let _done = Done(activity);
    next.run(request).await
}

impl Connection {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Connection {
            stream,
            _slot: slot,
            timeouts,
            last: now,
            // The first head is under way from the accept.
            head: Some((now, 0)),
            deadline: Box::pin(tokio::time::sleep(timeouts.idle.min(timeouts.head))),
            busy: Activity::default(),
        }
    }

    fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Keeps `head` true to what the requests did: a head that led to a request is over;
    /// bytes read with no request under way begin the next one.
    fn follow_heads(&mut self, read_bytes: bool) {
        let (upgraded, started, answering) = {
            let counts = &self.busy.0;
            (
                counts.upgraded.load(Ordering::SeqCst),
                counts.started.load(Ordering::SeqCst),
                counts.answering.load(Ordering::SeqCst),
            )
        };
        if upgraded {
            self.head = None;
            return;
        }
        if let Some((_, seen)) = self.head {
            if started > seen {
                self.head = None;
            }
        }
        if self.head.is_none() && read_bytes && answering == 0 {
            let now = Instant::now();
            self.head = Some((now, started));
            // The timer may be set for the idle deadline, later than this head's.
            let due = now + self.timeouts.head;
            if due < self.deadline.deadline() {
                self.deadline.as_mut().reset(due);
            }
        }
    }

    /// When the connection must be looked at next: its idle deadline, or its head's.
    fn next_due(&self) -> Instant {
        let idle = self.last + self.timeouts.idle;
        match self.head {
            Some((began, _)) => idle.min(began + self.timeouts.head),
            None => idle,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(outcome) => {
                self.touch();
                let read_bytes = buf.filled().len() > before;
                self.follow_heads(read_bytes);
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                self.follow_heads(false);
                while self.deadline.as_mut().poll(cx).is_ready() {
                    let now = Instant::now();
                    self.follow_heads(false);
                    let answering = self.busy.0.answering.load(Ordering::SeqCst) > 0;
                    if let Some((began, _)) = self.head {
                        if !answering && began + self.timeouts.head <= now {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "request head not received in time",
                            )));
                        }
                    }
                    if self.last + self.timeouts.idle <= now {
                        if !answering {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "connection idle for too long",
                            )));
                        }
                        // A request is being answered: look again a timeout later.
                        self.last = now;
                    }
                    let next = self.next_due();
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
