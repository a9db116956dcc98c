//! The broadcast hub of one instance: notifications from the listener come in; cockpit
//! groups (one per distinct subscription scope) re-read their cockpit when concerned and
//! publish the newest snapshot; each subscription diffs against what its client has.
//!
//! A group publishes through a `watch` channel, which keeps only the newest snapshot: a
//! slow client never blocks others and never builds a backlog, it simply gets the
//! difference to the newest state when it is ready.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use tokio::sync::{broadcast, watch};
use tokio::time::{Duration, Instant};

use crate::db::DbError;
use crate::model::{AgentRow, Channel, Queue};
use crate::store;

/// Capacity of the notification fan-out; a group that falls further behind re-reads.
const EVENT_CAPACITY: usize = 4096;
/// Wait before a group retries a failed read, doubled after each failure up to the cap.
const RETRY_DELAY: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// What the listener tells the groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// Something live changed in an organization (and product, when known).
    Changed {
        /// Organization id.
        org: Arc<str>,
        /// Product id, when the change concerns one product only.
        product: Option<Arc<str>>,
        /// Who belongs changed (an agent's name or role, an agent or membership added or
        /// removed): sessions of the organization re-check their caller's stored role.
        members: bool,
    },
    /// The daily columns were refreshed.
    Refreshed,
    /// The listener (re)connected: notifications may have been lost; everyone re-reads and
    /// every client gets a full snapshot.
    Resync,
}

/// The scope of a subscription: what its cockpit query reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Organization id.
    pub org: String,
    /// Product id.
    pub product: String,
    /// Channel, or all.
    pub channel: Option<Channel>,
    /// Name search, or none.
    pub search: Option<String>,
}

impl Scope {
    fn concerned_by(&self, event: &HubEvent) -> bool {
        match event {
            HubEvent::Changed { org, product, .. } => {
                **org == *self.org && product.as_deref().is_none_or(|p| p == self.product)
            }
            HubEvent::Refreshed | HubEvent::Resync => true,
        }
    }
}

/// A cockpit as last read for a scope.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The organization's local day.
    pub day: NaiveDate,
    /// When the next local day starts.
    pub next_day_at: DateTime<Utc>,
    /// Last refresh of the daily columns.
    pub refreshed_at: DateTime<Utc>,
    /// The database's clock at the reading.
    pub server_now: DateTime<Utc>,
    /// When the reading was made, on this process's monotonic clock.
    pub read_at: Instant,
    /// The organization's first-response target, seconds.
    pub service_level_seconds: i32,
    /// The scope's queue.
    pub queue: Queue,
    /// The next instant an assignment of the scope turns overdue, if nothing happens before.
    pub next_overdue_at: Option<DateTime<Utc>>,
    /// Rows in Turkish name order.
    pub rows: Vec<AgentRow>,
    /// Listener connection epoch the snapshot was read in; a new epoch means "send all".
    pub epoch: u64,
}

impl PartialEq for Snapshot {
    /// Equal content: when the reading was made does not count (nor, in the rows, the
    /// passage of time; see [`AgentRow`]).
    fn eq(&self, other: &Self) -> bool {
        self.day == other.day
            && self.next_day_at == other.next_day_at
            && self.refreshed_at == other.refreshed_at
            && self.service_level_seconds == other.service_level_seconds
            && self.queue == other.queue
            && self.next_overdue_at == other.next_overdue_at
            && self.rows == other.rows
            && self.epoch == other.epoch
    }
}

impl Snapshot {
    /// When the next assignment turns overdue, on the monotonic clock: measured on the
    /// database's clock from the reading, so that a skew between the two clocks moves
    /// nothing. A millisecond after the crossing (overdue is "more than N seconds").
    fn next_overdue_wake(&self) -> Option<Instant> {
        let after = (self.next_overdue_at? - self.server_now)
            .to_std()
            .unwrap_or_default();
        Some(self.read_at + after + Duration::from_millis(1))
    }
}

type Publisher = Arc<watch::Sender<Arc<Snapshot>>>;

/// The hub of one service instance.
pub struct Hub {
    pool: Pool,
    events: broadcast::Sender<HubEvent>,
    /// Only what may change who belongs (membership changes, resyncs): the sessions that
    /// re-check their caller's role listen here, not to every status change.
    members: broadcast::Sender<HubEvent>,
    groups: Mutex<HashMap<Scope, Publisher>>,
    epoch: AtomicU64,
    listener_connected: AtomicBool,
}

impl Hub {
    /// A hub reading cockpits from `pool`.
    pub fn new(pool: Pool) -> Arc<Hub> {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (members, _) = broadcast::channel(EVENT_CAPACITY);
        Arc::new(Hub {
            pool,
            events,
            members,
            groups: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            listener_connected: AtomicBool::new(false),
        })
    }

    /// Passes an event to the groups concerned.
    pub fn publish(&self, event: HubEvent) {
        if event == HubEvent::Resync {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        if matches!(
            event,
            HubEvent::Changed { members: true, .. } | HubEvent::Resync
        ) {
            let _ = self.members.send(event.clone());
        }
        // No group listening is fine: nobody subscribes.
        let _ = self.events.send(event);
    }

    /// Records whether the listener is connected (readiness).
    pub fn set_listener_connected(&self, connected: bool) {
        self.listener_connected.store(connected, Ordering::SeqCst);
    }

    /// Membership changes and resyncs from now on (sessions re-check their caller's role).
    pub fn membership_events(&self) -> broadcast::Receiver<HubEvent> {
        self.members.subscribe()
    }

    /// Whether the listener is connected.
    pub fn listener_connected(&self) -> bool {
        self.listener_connected.load(Ordering::SeqCst)
    }

    /// Number of live cockpit groups (distinct scopes subscribed to).
    pub fn groups(&self) -> usize {
        self.groups.lock().map(|g| g.len()).unwrap_or(0)
    }

    /// Subscribes to a scope: a receiver of its newest snapshot (already holding one);
    /// `None` when the product is not the organization's.
    pub async fn subscribe(
        self: &Arc<Self>,
        scope: Scope,
    ) -> Result<Option<watch::Receiver<Arc<Snapshot>>>, DbError> {
        if let Some(publisher) = self.lock_groups().get(&scope) {
            return Ok(Some(publisher.subscribe()));
        }
        // Listen before reading, so that no change between the read and the group's start
        // is missed.
        let events = self.events.subscribe();
        let Some(snapshot) = self.read(&scope).await? else {
            return Ok(None);
        };
        let mut groups = self.lock_groups();
        if let Some(publisher) = groups.get(&scope) {
            return Ok(Some(publisher.subscribe()));
        }
        let (sender, receiver) = watch::channel(Arc::new(snapshot));
        let publisher = Arc::new(sender);
        groups.insert(scope.clone(), publisher.clone());
        drop(groups);
        tokio::spawn(run_group(self.clone(), scope, publisher, events));
        Ok(Some(receiver))
    }

    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, Publisher>> {
        // A panic while holding this lock leaves a consistent map: keep going.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn read(&self, scope: &Scope) -> Result<Option<Snapshot>, DbError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let read_at = Instant::now();
        let data = store::cockpit(
            &self.pool,
            &scope.org,
            &scope.product,
            scope.channel,
            scope.search.as_deref(),
        )
        .await?;
        Ok(data.map(|d| Snapshot {
            day: d.day,
            next_day_at: d.next_day_at,
            refreshed_at: d.refreshed_at,
            server_now: d.server_now,
            read_at,
            service_level_seconds: d.service_level_seconds,
            queue: d.queue,
            next_overdue_at: d.next_overdue_at,
            rows: d.rows,
            epoch,
        }))
    }
}

/// Keeps one scope's snapshot fresh until its last subscriber leaves.
async fn run_group(
    hub: Arc<Hub>,
    scope: Scope,
    publisher: Publisher,
    mut events: broadcast::Receiver<HubEvent>,
) {
    // A failed read is retried even when no new event comes, with a growing wait.
    let mut retry = false;
    let mut retry_delay = RETRY_DELAY;
    loop {
        let (next_day_at, overdue_wake) = {
            let current = publisher.borrow();
            (current.next_day_at, current.next_overdue_wake())
        };
        let until_midnight = (next_day_at - Utc::now()).to_std().unwrap_or_default();
        // An assignment crossing the first-response target changes the cockpit with no
        // event: one timer per scope at the earliest pending crossing, re-armed after every
        // reading (spec 3.5, overdueFirstResponses).
        let overdue = async {
            match overdue_wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let mut dirty = retry
            || tokio::select! {
                _ = publisher.closed() => {
                    let mut groups = hub.lock_groups();
                    if publisher.receiver_count() == 0 {
                        groups.remove(&scope);
                        return;
                    }
                    false
                }
                event = events.recv() => match event {
                    Ok(event) => scope.concerned_by(&event),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                // Day rollover: the daily columns restart at the organization's midnight.
                _ = tokio::time::sleep(until_midnight) => true,
                _ = overdue => true,
            };
        retry = false;
        // Everything already queued is answered by the same read.
        loop {
            match events.try_recv() {
                Ok(event) => dirty |= scope.concerned_by(&event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                Err(_) => break,
            }
        }
        if !dirty {
            continue;
        }
        match hub.read(&scope).await {
            Ok(Some(snapshot)) => {
                retry_delay = RETRY_DELAY;
                // Kept even when equal (its reading time re-arms the overdue timer);
                // subscribers are woken only by a change.
                publisher.send_if_modified(|current| {
                    let changed = **current != snapshot;
                    *current = Arc::new(snapshot);
                    changed
                });
            }
            Ok(None) => {
                tracing::info!(org = %scope.org, product = %scope.product, "product gone; closing its subscriptions");
                hub.lock_groups().remove(&scope);
                return;
            }
            Err(e) => {
                tracing::warn!(org = %scope.org, product = %scope.product, error = %e, "cockpit read failed; retrying");
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(RETRY_CAP);
                retry = true;
            }
        }
    }
}
