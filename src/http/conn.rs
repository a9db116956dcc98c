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
///
/// The slots are shared fairly: one peer address holds at most its share, connections
/// that have not completed a request yet (or WebSockets before their `connection_ack`)
/// hold at most a quarter of the cap, and when every slot is taken the oldest of those is
/// closed to make room, so `/healthz`, `/readyz` and clients that authenticated keep being
/// served whatever one client opens.
pub struct CappedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    timeouts: Timeouts,
    registry: Arc<Registry>,
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
    /// Wraps `listener`: `cap` connections at most, `per_peer` of them from one address
    /// (0: no limit, e.g. behind a proxy whose address every client shares).
    pub fn new(listener: TcpListener, cap: usize, per_peer: usize, timeouts: Timeouts) -> Self {
        CappedListener {
            listener,
            slots: Arc::new(Semaphore::new(cap)),
            timeouts,
            registry: Arc::new(Registry {
                per_peer,
                pending_cap: (cap / 4).max(1),
                state: std::sync::Mutex::new(RegistryState::default()),
            }),
        }
    }
}

/// Who holds the slots: connections per peer address, and the pending ones (no request
/// completed yet, or a WebSocket before its acknowledgement) by age.
struct Registry {
    per_peer: usize,
    pending_cap: usize,
    state: std::sync::Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    peers: std::collections::HashMap<std::net::IpAddr, usize>,
    pending: std::collections::BTreeMap<u64, Arc<Standing>>,
    next: u64,
}

/// One connection's standing: pending until it is established; closed when evicted.
struct Standing {
    seq: u64,
    registry: Arc<Registry>,
    established: std::sync::atomic::AtomicBool,
    evicted: std::sync::atomic::AtomicBool,
    waker: futures_util::task::AtomicWaker,
}

impl Standing {
    /// The connection completed a request (or its WebSocket was acknowledged). The
    /// registry's lock is taken once, not at every request.
    fn establish(&self) {
        if !self.established.swap(true, Ordering::SeqCst) {
            self.registry.lock().pending.remove(&self.seq);
        }
    }

    /// Back to pending: a WebSocket until its acknowledgement.
    fn unestablish(self: &Arc<Self>) {
        if self.established.swap(false, Ordering::SeqCst) {
            self.registry.lock().pending.insert(self.seq, self.clone());
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// A connection's hold on the registry: its peer's count and its standing, released when
/// the connection is dropped.
struct Ticket {
    peer: std::net::IpAddr,
    standing: Arc<Standing>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.standing.registry.lock();
        state.pending.remove(&self.standing.seq);
        if let Some(held) = state.peers.get_mut(&self.peer) {
            *held -= 1;
            if *held == 0 {
                state.peers.remove(&self.peer);
            }
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        // A panic while holding this lock leaves counts that are still counts.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a connection from `peer`, pending; `None` when the peer holds its share.
    /// The pending connections' pool full, its oldest is closed to make room.
    fn admit(self: &Arc<Self>, peer: std::net::IpAddr) -> Option<Ticket> {
        let mut state = self.lock();
        let held = state.peers.entry(peer).or_default();
        if self.per_peer > 0 && *held >= self.per_peer {
            return None;
        }
        *held += 1;
        if state.pending.len() >= self.pending_cap {
            if let Some((_, oldest)) = state.pending.pop_first() {
                oldest.evict();
            }
        }
        let seq = state.next;
        state.next += 1;
        let standing = Arc::new(Standing {
            seq,
            registry: self.clone(),
            established: std::sync::atomic::AtomicBool::new(false),
            evicted: std::sync::atomic::AtomicBool::new(false),
            waker: futures_util::task::AtomicWaker::new(),
        });
        state.pending.insert(seq, standing.clone());
        Some(Ticket { peer, standing })
    }

    /// Closes the oldest pending connection other than `newcomer`'s, if there is one
    /// (every slot is taken and `newcomer` waits for one).
    fn evict_oldest(&self, newcomer: u64) -> bool {
        let mut state = self.lock();
        let oldest = state.pending.keys().copied().find(|seq| *seq != newcomer);
        match oldest.and_then(|seq| state.pending.remove(&seq)) {
            Some(standing) => {
                standing.evict();
                true
            }
            None => false,
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = Connection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: wait a little, as axum does.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(ticket) = self.registry.admit(address.ip()) else {
                // The peer holds its share: closed at once.
                tracing::debug!(peer = %address.ip(), "a peer over its share of connections");
                drop(stream);
                continue;
            };
            // Every slot taken: the oldest connection that has not completed a request
            // makes room for this one. (The semaphore is never closed.)
            let slot = match self.slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if self.registry.evict_oldest(ticket.standing.seq) {
                        tracing::debug!(
                            "every connection slot taken: closed the oldest pending one"
                        );
                    }
                    loop {
                        match self.slots.clone().acquire_owned().await {
                            Ok(slot) => break slot,
                            Err(_) => tokio::task::yield_now().await,
                        }
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            return (
                Connection::new(stream, slot, self.timeouts, ticket),
                address,
            );
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
    _ticket: Ticket,
}

/// What the requests of one connection are doing: how many are being answered (a slow
/// ingest is not idleness), how many have started (a head was complete), and whether the
/// connection became a WebSocket (no more request heads). Given to every request as
/// `ConnectInfo<Activity>`.
#[derive(Clone)]
pub struct Activity(Arc<ActivityCounts>);

struct ActivityCounts {
    answering: AtomicUsize,
    started: AtomicUsize,
    upgraded: std::sync::atomic::AtomicBool,
    standing: Arc<Standing>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity")
            .field("answering", &self.0.answering)
            .field("started", &self.0.started)
            .finish()
    }
}

impl Activity {
    /// The connection is now a WebSocket: no request head will follow, and it is pending
    /// again until its `connection_init` is acknowledged.
    pub fn upgraded(&self) {
        self.0.upgraded.store(true, Ordering::SeqCst);
        self.0.standing.unestablish();
    }

    /// The WebSocket's `connection_init` was acknowledged: an established connection.
    pub fn acknowledged(&self) {
        self.0.standing.establish();
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
        // A complete request: no longer a pending connection (a WebSocket upgrade makes
        // it pending again until its acknowledgement).
        counts.standing.establish();
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
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        timeouts: Timeouts,
        ticket: Ticket,
    ) -> Self {
        let now = Instant::now();
        let busy = Activity(Arc::new(ActivityCounts {
            answering: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            upgraded: std::sync::atomic::AtomicBool::new(false),
            standing: ticket.standing.clone(),
        }));
        Connection {
            stream,
            _slot: slot,
            timeouts,
            last: now,
            // The first head is under way from the accept.
            head: Some((now, 0)),
            deadline: Box::pin(tokio::time::sleep(timeouts.idle.min(timeouts.head))),
            busy,
            _ticket: ticket,
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

fn evicted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room: every connection slot was taken",
    )
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Closed to make room for others (it never completed a request).
        if self.busy.0.standing.evicted.load(Ordering::SeqCst) {
            return Poll::Ready(Err(evicted_error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(outcome) => {
                self.touch();
                let read_bytes = buf.filled().len() > before;
                self.follow_heads(read_bytes);
                Poll::Ready(outcome)
            }
            Poll::Pending => {
                // Woken if evicted while waiting (checked again: an eviction between the
                // first check and the registration would be missed otherwise).
                let standing = &self.busy.0.standing;
                standing.waker.register(cx.waker());
                if standing.evicted.load(Ordering::SeqCst) {
                    return Poll::Ready(Err(evicted_error()));
                }
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
