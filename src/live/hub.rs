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

use crate::db::Pool;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{broadcast, watch};
use tokio::time::{Duration, Instant};

use crate::db::DbError;
use crate::model::{AgentRow, Channel, CockpitData, Queue};
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
        /// The agents whose rows the change touched (the scope's header, the queue, is
        /// re-read with them; an empty list touches the header only); `None`: any row.
        agents: Option<Arc<[Arc<str>]>>,
    },
    /// The daily columns were refreshed.
    Refreshed {
        /// The refresh's instant (its `refreshedAt`), when known.
        at: Option<DateTime<Utc>>,
        /// Per organization, the agents whose daily rows it changed (an organization not
        /// named: none); `None`: any row.
        changed: Option<Arc<std::collections::BTreeMap<String, Vec<Arc<str>>>>>,
    },
    /// The listener (re)connected: notifications may have been lost; everyone re-reads and
    /// every client gets a full snapshot.
    Resync,
    /// A read-your-writes barrier of an instance came back through the listener: every
    /// change committed before it has been received (see `sql/queries/live_sync.sql`).
    Sync {
        /// The instance that sent it.
        instance: u64,
        /// Its barrier number.
        n: u64,
    },
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
            HubEvent::Refreshed { .. } | HubEvent::Resync => true,
            HubEvent::Sync { .. } => false,
        }
    }
}

/// What a group has to re-read.
#[derive(Debug, Default)]
enum Dirty {
    /// Nothing.
    #[default]
    Clean,
    /// The header and the rows of these agents; `refresh`: the newest refresh among the
    /// events (its other rows' daily columns did not change).
    Rows {
        agents: std::collections::BTreeSet<Arc<str>>,
        refresh: Option<DateTime<Utc>>,
    },
    /// Everything.
    All,
}

impl Dirty {
    fn add(&mut self, scope: &Scope, event: &HubEvent) {
        if !scope.concerned_by(event) {
            return;
        }
        let (agents, refresh): (&[Arc<str>], Option<DateTime<Utc>>) = match event {
            HubEvent::Changed {
                agents: Some(agents),
                ..
            } => (agents, None),
            HubEvent::Refreshed {
                at: Some(at),
                changed: Some(changed),
            } => (
                changed.get(&scope.org).map_or(&[][..], |a| a.as_slice()),
                Some(*at),
            ),
            _ => {
                *self = Dirty::All;
                return;
            }
        };
        match self {
            Dirty::All => {}
            Dirty::Clean => {
                *self = Dirty::Rows {
                    agents: agents.iter().cloned().collect(),
                    refresh,
                }
            }
            Dirty::Rows {
                agents: set,
                refresh: newest,
            } => {
                set.extend(agents.iter().cloned());
                *newest = (*newest).max(refresh);
            }
        }
    }
}

/// How many cockpit reads an instance's live groups made: whole scopes, and re-reads of
/// the rows a change touched with the rows they read (issue 22: a push re-reads only what
/// changed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    /// Reads of a whole scope.
    pub scopes: u64,
    /// Re-reads of some agents' rows (and the header).
    pub partial: u64,
    /// Rows those partial re-reads read.
    pub partial_rows: u64,
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
    /// The product's name.
    pub product_name: String,
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
    /// The group's publication number: one more for every snapshot that differs.
    pub version: u64,
    /// What changed from the previous publication, worked out once for the group; a
    /// subscriber that holds that version sends just this (not compared).
    pub delta: Option<Arc<Delta>>,
    /// What the API layer works out once for this publication and shares among the
    /// subscribers that receive it (their message from the version they hold, its
    /// rendering per subscription document).
    pub shared: Arc<Shared>,
}

/// Says which shared work: the version a subscriber holds (`None`: nothing yet), and
/// the API layer's number of the subscription document it renders for (0: the message
/// itself).
pub type SharedKey = (Option<u64>, u64);

/// Work shared by the subscribers of one publication, kept by the live layer without
/// knowing its types (the API layer stores what it renders there), dropped with the
/// publication.
#[derive(Default)]
pub struct Shared(Mutex<HashMap<SharedKey, Arc<dyn std::any::Any + Send + Sync>>>);

impl Shared {
    /// What is stored under `key`, if it is a `T`.
    pub fn get<T: std::any::Any + Send + Sync>(&self, key: &SharedKey) -> Option<Arc<T>> {
        let entries = self.0.lock().ok()?;
        entries.get(key).cloned()?.downcast::<T>().ok()
    }

    /// Stores `value` under `key` unless something is already there; what is kept.
    pub fn insert<T: std::any::Any + Send + Sync>(&self, key: SharedKey, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let Ok(mut entries) = self.0.lock() else {
            return value;
        };
        let kept = entries.entry(key).or_insert_with(|| value.clone()).clone();
        kept.downcast::<T>().unwrap_or(value)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.0.lock().map(|e| e.len()).unwrap_or(0);
        write!(f, "Shared({entries} entries)")
    }
}

/// The rows that changed between two publications of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The version this delta starts from.
    pub from: u64,
    /// Indices (into the newer snapshot's rows) of the rows that are new or differ.
    pub rows: Vec<usize>,
    /// Agents no longer in the scope.
    pub removed: Vec<String>,
}

impl Delta {
    /// What turns `before`'s rows into `after`'s.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Delta {
        let previous: HashMap<&str, &AgentRow> = before
            .rows
            .iter()
            .map(|r| (r.agent.id.as_str(), r))
            .collect();
        let rows = after
            .rows
            .iter()
            .enumerate()
            .filter(|(_, row)| previous.get(row.agent.id.as_str()) != Some(row))
            .map(|(at, _)| at)
            .collect();
        let current: std::collections::HashSet<&str> =
            after.rows.iter().map(|r| r.agent.id.as_str()).collect();
        let removed = before
            .rows
            .iter()
            .filter(|r| !current.contains(r.agent.id.as_str()))
            .map(|r| r.agent.id.clone())
            .collect();
        Delta {
            from: before.version,
            rows,
            removed,
        }
    }
}

impl PartialEq for Snapshot {
    /// Equal content: when the reading was made does not count (nor, in the rows, the
    /// passage of time; see [`AgentRow`]).
    fn eq(&self, other: &Self) -> bool {
        self.day == other.day
            && self.product_name == other.product_name
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

/// A live group as the hub holds it: its newest snapshot, and the last barrier it has
/// handled (every event before it applied to the snapshot).
#[derive(Clone)]
struct Group {
    /// Unique within the hub (a scope's group ends with its last subscriber; the next
    /// one is another group, whose versions start again).
    id: u64,
    publisher: Publisher,
    synced: Arc<watch::Sender<u64>>,
}

/// Which publication of which group a query was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Publication {
    /// The group.
    pub group: u64,
    /// Its version.
    pub version: u64,
}

/// A re-read of some agents' rows of an organization's product and channel, shared by the
/// groups of that scope's searches (and by groups that ask for the same rows again before
/// anything newer happened).
type RowsRead = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, Result<Arc<RowsAnswer>, Arc<DbError>>>,
>;

/// Organization, product, channel, agents (sorted).
type RowsKey = (String, String, Option<Channel>, Vec<String>);

/// What a shared re-read gives: the header and the rows with their search keys (`None`:
/// the product is gone), and when it was made.
struct RowsAnswer {
    data: Option<(CockpitData, Vec<String>)>,
    read_at: Instant,
}

struct RowsEntry {
    /// Events published before the read started (it reflects every change they announce).
    after: u64,
    started: Instant,
    read: RowsRead,
}

/// Shared re-reads kept for groups that are this many events behind the newest read,
/// once there are [`ROWS_PRUNE_AT`] of them (not swept at every read).
const ROWS_KEPT_EVENTS: u64 = 256;
const ROWS_PRUNE_AT: usize = 512;
/// Search keys kept (distinct search texts followed).
const SEARCH_KEYS_KEPT: usize = 1024;

/// How long a query waits for its barrier before it reads the database instead.
const SYNC_WAIT: Duration = Duration::from_secs(1);

/// How `cockpit` queries were answered by an instance.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCounts {
    /// From a live group's snapshot.
    pub memory: u64,
    /// By the cockpit statement.
    pub statement: u64,
    /// Of those from memory, given as an earlier answer's rendering (the HTTP layer's
    /// reuse of rendered answers).
    pub reused: u64,
}

/// The hub of one service instance.
pub struct Hub {
    pool: Pool,
    events: broadcast::Sender<HubEvent>,
    /// Only what may change who belongs (membership changes, resyncs): the sessions that
    /// re-check their caller's role listen here, not to every status change.
    members: broadcast::Sender<HubEvent>,
    groups: Mutex<HashMap<Scope, Group>>,
    /// This instance's id in barrier notifications.
    instance: u64,
    /// The last barrier number handed out, the last one sent, and a wake-up of the task
    /// that sends them (one NOTIFY answers every query waiting at that moment).
    sync_next: AtomicU64,
    sync_wake: tokio::sync::Notify,
    sync_driver: std::sync::OnceLock<()>,
    memory_answers: AtomicU64,
    statement_answers: AtomicU64,
    reused_answers: AtomicU64,
    next_group: AtomicU64,
    /// Events published so far.
    published: AtomicU64,
    row_reads: Mutex<HashMap<RowsKey, RowsEntry>>,
    search_keys: Mutex<HashMap<String, Arc<str>>>,
    epoch: AtomicU64,
    listener_connected: AtomicBool,
    scope_reads: AtomicU64,
    partial_reads: AtomicU64,
    partial_rows: AtomicU64,
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
            instance: rand::random(),
            sync_next: AtomicU64::new(0),
            sync_wake: tokio::sync::Notify::new(),
            sync_driver: std::sync::OnceLock::new(),
            memory_answers: AtomicU64::new(0),
            statement_answers: AtomicU64::new(0),
            reused_answers: AtomicU64::new(0),
            next_group: AtomicU64::new(0),
            published: AtomicU64::new(0),
            row_reads: Mutex::new(HashMap::new()),
            search_keys: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            listener_connected: AtomicBool::new(false),
            scope_reads: AtomicU64::new(0),
            partial_reads: AtomicU64::new(0),
            partial_rows: AtomicU64::new(0),
        })
    }

    /// Passes an event to the groups concerned.
    pub fn publish(&self, event: HubEvent) {
        if let HubEvent::Sync { instance, .. } = event {
            if instance != self.instance {
                return; // another instance's barrier
            }
        }
        if event == HubEvent::Resync {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        if matches!(
            event,
            HubEvent::Changed { members: true, .. } | HubEvent::Resync
        ) {
            let _ = self.members.send(event.clone());
        }
        // Counted before it is sent: a group that has received it reads no older rows.
        self.published.fetch_add(1, Ordering::SeqCst);
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

    /// How this instance answered `cockpit` queries so far.
    pub fn answers(&self) -> AnswerCounts {
        AnswerCounts {
            memory: self.memory_answers.load(Ordering::SeqCst),
            statement: self.statement_answers.load(Ordering::SeqCst),
            reused: self.reused_answers.load(Ordering::SeqCst),
        }
    }

    /// The cockpit of `scope` for a query (spec 4, `cockpit`). When this instance follows
    /// the scope (a live group holds its snapshot), from that snapshot, once it is proven
    /// current: a barrier notification sent after the query arrived has come back through
    /// the listener and the group has applied everything received before it, so every
    /// write acknowledged before the query (through any instance) is in it. Otherwise, or
    /// when that takes longer than [`SYNC_WAIT`], or the snapshot is about to be outlived
    /// (midnight, an overdue crossing not yet re-read), by the cockpit statement.
    pub async fn cockpit(self: &Arc<Self>, scope: &Scope) -> Result<Option<CockpitData>, DbError> {
        Ok(self.cockpit_from(scope).await?.0)
    }

    /// [`Hub::cockpit`], and the publication it was answered from (`None`: by the
    /// statement).
    pub async fn cockpit_from(
        self: &Arc<Self>,
        scope: &Scope,
    ) -> Result<(Option<CockpitData>, Option<Publication>), DbError> {
        if let Some((snapshot, publication, now)) = self.current(scope).await {
            if let Some(data) = snapshot.answer_at(now) {
                self.count_memory_answer();
                return Ok((Some(data), Some(publication)));
            }
        }
        self.statement_answers.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("cockpit_queries_total", "answer" => "statement").increment(1);
        let data = store::cockpit(
            &self.pool,
            &scope.org,
            &scope.product,
            scope.channel,
            scope.search.as_deref(),
        )
        .await?;
        Ok((data, None))
    }

    /// Whether an answer made from `publication` still stands for `scope` now: proven as
    /// [`Hub::cockpit`] proves a snapshot current, the group still at that publication,
    /// and no midnight or overdue crossing since. Counted as an answer from memory.
    pub async fn still_current(self: &Arc<Self>, scope: &Scope, publication: Publication) -> bool {
        let Some((snapshot, current, now)) = self.current(scope).await else {
            return false;
        };
        let stands = current == publication && snapshot.answers_at(now);
        if stands {
            self.count_memory_answer();
        }
        stands
    }

    /// Counts an answer given as an earlier answer's rendering (see [`AnswerCounts`]).
    pub fn count_reused_answer(&self) {
        self.reused_answers.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("cockpit_queries_total", "answer" => "reused").increment(1);
    }

    fn count_memory_answer(&self) {
        self.memory_answers.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("cockpit_queries_total", "answer" => "memory").increment(1);
    }

    /// Whether `group` has applied every change committed before this call (a barrier
    /// sent now came back and was handled), within [`SYNC_WAIT`].
    async fn barrier(self: &Arc<Self>, group: &Group) -> bool {
        let ticket = self.sync_next.fetch_add(1, Ordering::SeqCst) + 1;
        self.sync_driver.get_or_init(|| {
            tokio::spawn(send_barriers(self.clone()));
        });
        self.sync_wake.notify_one();
        let mut synced = group.synced.subscribe();
        let handled = tokio::time::timeout(SYNC_WAIT, synced.wait_for(|n| *n >= ticket))
            .await
            .is_ok_and(|waited| waited.is_ok());
        handled
    }

    /// The scope's snapshot once proven current, its publication, and the database's
    /// clock now; `None` when this instance does not follow the scope or cannot prove it.
    async fn current(
        self: &Arc<Self>,
        scope: &Scope,
    ) -> Option<(Arc<Snapshot>, Publication, DateTime<Utc>)> {
        if !self.listener_connected() {
            return None;
        }
        let group = self.lock_groups().get(scope).cloned()?;
        if !self.barrier(&group).await {
            return None;
        }
        let snapshot = group.publisher.borrow().clone();
        if snapshot.epoch != self.epoch.load(Ordering::SeqCst) {
            return None;
        }
        // The database's clock now, measured from the reading on the monotonic clock.
        let now =
            snapshot.server_now + chrono::Duration::from_std(snapshot.read_at.elapsed()).ok()?;
        let publication = Publication {
            group: group.id,
            version: snapshot.version,
        };
        Some((snapshot, publication, now))
    }

    /// The reads this hub's groups made so far.
    pub fn reads(&self) -> ReadCounts {
        ReadCounts {
            scopes: self.scope_reads.load(Ordering::SeqCst),
            partial: self.partial_reads.load(Ordering::SeqCst),
            partial_rows: self.partial_rows.load(Ordering::SeqCst),
        }
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
        let existing = self.lock_groups().get(&scope).cloned();
        if let Some(group) = existing {
            // The first message is a snapshot like a query's answer: current for every
            // write acknowledged before (a slow barrier only delays the first message; the
            // push of what it missed follows anyway).
            self.barrier(&group).await;
            return Ok(Some(group.publisher.subscribe()));
        }
        // Listen before reading, so that no change between the read and the group's start
        // is missed.
        let events = self.events.subscribe();
        let Some(snapshot) = self.read(&scope).await? else {
            return Ok(None);
        };
        let mut groups = self.lock_groups();
        if let Some(group) = groups.get(&scope) {
            return Ok(Some(group.publisher.subscribe()));
        }
        let (sender, receiver) = watch::channel(Arc::new(snapshot));
        let group = Group {
            id: self.next_group.fetch_add(1, Ordering::SeqCst),
            publisher: Arc::new(sender),
            synced: Arc::new(watch::channel(0).0),
        };
        groups.insert(scope.clone(), group.clone());
        drop(groups);
        tokio::spawn(run_group(self.clone(), scope, group, events));
        Ok(Some(receiver))
    }

    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashMap<Scope, Group>> {
        // A panic while holding this lock leaves a consistent map: keep going.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rows of `ids` in `scope`'s product and channel (any name), read after the
    /// `seen` events and after `not_before`: a read of the same rows already made or under
    /// way that satisfies both, or a new one.
    async fn rows_of(
        self: &Arc<Self>,
        scope: &Scope,
        ids: Vec<String>,
        seen: u64,
        not_before: Instant,
    ) -> Result<Arc<RowsAnswer>, Arc<DbError>> {
        use futures_util::FutureExt;
        let key: RowsKey = (scope.org.clone(), scope.product.clone(), scope.channel, ids);
        let read = {
            let mut reads = self
                .row_reads
                .lock()
                .map_err(|_| Arc::new(DbError::Unexpected("row reads poisoned".into())))?;
            match reads.get(&key) {
                Some(entry) if entry.after >= seen && entry.started >= not_before => {
                    entry.read.clone()
                }
                _ => {
                    let after = self.published.load(Ordering::SeqCst);
                    let started = Instant::now();
                    let hub = self.clone();
                    let (org, product, channel, ids) = key.clone();
                    let read = async move {
                        let data = store::cockpit_agents(&hub.pool, &org, &product, channel, &ids)
                            .await
                            .map_err(Arc::new)?;
                        hub.partial_reads.fetch_add(1, Ordering::SeqCst);
                        metrics::counter!("cockpit_live_reads_total", "read" => "rows")
                            .increment(1);
                        let rows = data.as_ref().map_or(0, |(d, _)| d.rows.len());
                        hub.partial_rows.fetch_add(rows as u64, Ordering::SeqCst);
                        Ok(Arc::new(RowsAnswer {
                            data,
                            read_at: started,
                        }))
                    }
                    .boxed()
                    .shared();
                    if reads.len() >= ROWS_PRUNE_AT {
                        reads.retain(|_, e| e.after + ROWS_KEPT_EVENTS >= after);
                    }
                    reads.insert(
                        key,
                        RowsEntry {
                            after,
                            started,
                            read: read.clone(),
                        },
                    );
                    read
                }
            }
        };
        read.await
    }

    /// The search key of `search` (see [`store::search_key`]), kept once asked.
    async fn search_key(&self, search: &str) -> Result<Arc<str>, DbError> {
        if let Some(key) = self
            .search_keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(search).cloned())
        {
            return Ok(key);
        }
        let key: Arc<str> = store::search_key(&self.pool, search).await?.into();
        if let Ok(mut keys) = self.search_keys.lock() {
            if keys.len() >= SEARCH_KEYS_KEPT {
                keys.clear();
            }
            keys.insert(search.to_owned(), key.clone());
        }
        Ok(key)
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
        self.scope_reads.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("cockpit_live_reads_total", "read" => "scope").increment(1);
        Ok(data.map(|d| Snapshot::of(d, read_at, epoch)))
    }

    /// `current` with the rows of `agents` re-read (and the header): `None` when that
    /// cannot stand for a whole read (the product is gone, the day or the refresh moved,
    /// an agent entered or left the scope, the listener reconnected): then the caller
    /// reads the whole scope.
    /// `seen`: the events published when the group took its last ones (the rows must be
    /// read after them).
    async fn reread(
        self: &Arc<Self>,
        scope: &Scope,
        current: &Snapshot,
        agents: &std::collections::BTreeSet<Arc<str>>,
        refresh: Option<DateTime<Utc>>,
        seen: u64,
    ) -> Result<Option<Snapshot>, DbError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let ids: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
        let answer = self
            .rows_of(scope, ids, seen, current.read_at)
            .await
            .map_err(|e| DbError::Unexpected(e.to_string()))?;
        let read_at = answer.read_at;
        let Some((data, keys)) = &answer.data else {
            return Ok(None);
        };
        let mut data = data.clone();
        if let Some(search) = &scope.search {
            // The statement's filter: the search's key within the name's.
            let key = self.search_key(search).await?;
            let mut matches = keys.iter().map(|k| k.contains(&*key));
            data.rows.retain(|_| matches.next().unwrap_or(false));
        }
        // A refresh the events did not announce may have changed any row.
        if epoch != current.epoch
            || data.day != current.day
            || (data.refreshed_at != current.refreshed_at && Some(data.refreshed_at) != refresh)
        {
            return Ok(None);
        }
        let mut fresh: HashMap<&str, &AgentRow> =
            data.rows.iter().map(|r| (r.agent.id.as_str(), r)).collect();
        let was_in: usize = current
            .rows
            .iter()
            .filter(|r| agents.contains(r.agent.id.as_str()))
            .count();
        if was_in != fresh.len() {
            return Ok(None); // an agent entered or left the scope: the order moves
        }
        // Rows not re-read are brought to the new reading's instant (their status did not
        // change, or they would have been re-read).
        let elapsed = data.server_now.timestamp() - current.server_now.timestamp();
        let mut rows = Vec::with_capacity(current.rows.len());
        for row in &current.rows {
            match fresh.remove(row.agent.id.as_str()) {
                Some(new) => rows.push(AgentRow {
                    position: row.position,
                    ..new.clone()
                }),
                None if agents.contains(row.agent.id.as_str()) => return Ok(None),
                None => rows.push(AgentRow {
                    seconds_in_status_today: row
                        .seconds_in_status_today
                        .advanced(row.agent.status, elapsed),
                    ..row.clone()
                }),
            }
        }
        let next_overdue_at = rows.iter().filter_map(|r| r.next_overdue_at).min();
        Ok(Some(Snapshot::of(
            CockpitData {
                rows,
                next_overdue_at,
                ..data
            },
            read_at,
            epoch,
        )))
    }
}

impl Snapshot {
    /// The cockpit this snapshot gives at `now` (the database's clock): every row's time in
    /// status brought to `now` in its status. `None` when the snapshot cannot stand for a
    /// reading at `now`: the local day ended, or an assignment turned overdue since (the
    /// group re-reads then, but a query may come first).
    fn answer_at(&self, now: DateTime<Utc>) -> Option<CockpitData> {
        if !self.answers_at(now) {
            return None;
        }
        let elapsed = now.timestamp() - self.server_now.timestamp();
        Some(CockpitData {
            day: self.day,
            next_day_at: self.next_day_at,
            refreshed_at: self.refreshed_at,
            server_now: now,
            product_name: self.product_name.clone(),
            service_level_seconds: self.service_level_seconds,
            queue: self.queue,
            next_overdue_at: self.next_overdue_at,
            rows: self
                .rows
                .iter()
                .map(|row| AgentRow {
                    seconds_in_status_today: row
                        .seconds_in_status_today
                        .advanced(row.agent.status, elapsed),
                    ..row.clone()
                })
                .collect(),
        })
    }

    /// Whether the snapshot can stand for a reading at `now` (see [`Snapshot::answer_at`]).
    fn answers_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.server_now
            && now < self.next_day_at
            && self.next_overdue_at.is_none_or(|at| at > now)
    }

    fn of(d: CockpitData, read_at: Instant, epoch: u64) -> Snapshot {
        Snapshot {
            day: d.day,
            next_day_at: d.next_day_at,
            refreshed_at: d.refreshed_at,
            server_now: d.server_now,
            read_at,
            product_name: d.product_name,
            service_level_seconds: d.service_level_seconds,
            queue: d.queue,
            next_overdue_at: d.next_overdue_at,
            rows: d.rows,
            epoch,
            version: 0,
            delta: None,
            shared: Arc::default(),
        }
    }
}

/// Keeps one scope's snapshot fresh until its last subscriber leaves.
async fn run_group(
    hub: Arc<Hub>,
    scope: Scope,
    group: Group,
    mut events: broadcast::Receiver<HubEvent>,
) {
    let Group {
        publisher, synced, ..
    } = group;
    // The newest barrier received; handled once the reads it asks for are done.
    let mut barrier = 0;
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
        let mut dirty = Dirty::Clean;
        let woken = retry
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
                    Ok(event) => {
                        note(&mut barrier, &event);
                        dirty.add(&scope, &event);
                        false
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                // Day rollover: the daily columns restart at the organization's midnight.
                _ = tokio::time::sleep(until_midnight) => true,
                _ = overdue => true,
            };
        if woken {
            dirty = Dirty::All; // a retry, a lag, midnight, an overdue crossing
        }
        retry = false;
        // Everything already queued is answered by the same read.
        loop {
            match events.try_recv() {
                Ok(event) => {
                    note(&mut barrier, &event);
                    dirty.add(&scope, &event);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = Dirty::All,
                Err(_) => break,
            }
        }
        // Every event taken so far was published by now: the rows are read after it.
        let seen = hub.published.load(Ordering::SeqCst);
        let read = match dirty {
            Dirty::Clean => {
                synced.send_if_modified(|n| std::mem::replace(n, barrier) != barrier);
                continue;
            }
            Dirty::Rows { agents, refresh } => {
                let current = publisher.borrow().clone();
                match hub.reread(&scope, &current, &agents, refresh, seen).await {
                    Ok(Some(snapshot)) => Ok(Some(snapshot)),
                    Ok(None) => hub.read(&scope).await,
                    Err(e) => Err(e),
                }
            }
            Dirty::All => hub.read(&scope).await,
        };
        match read {
            Ok(Some(snapshot)) => {
                retry_delay = RETRY_DELAY;
                // Kept even when equal (its reading time re-arms the overdue timer);
                // subscribers are woken only by a change.
                publisher.send_if_modified(|current| {
                    let mut snapshot = snapshot;
                    let changed = **current != snapshot;
                    if changed {
                        snapshot.version = current.version + 1;
                        snapshot.delta = Some(Arc::new(Delta::between(current, &snapshot)));
                    } else {
                        snapshot.version = current.version;
                        snapshot.delta = current.delta.clone();
                    }
                    *current = Arc::new(snapshot);
                    changed
                });
                synced.send_if_modified(|n| std::mem::replace(n, barrier) != barrier);
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

/// Remembers the newest barrier among the events a group receives.
fn note(barrier: &mut u64, event: &HubEvent) {
    if let HubEvent::Sync { n, .. } = event {
        *barrier = (*barrier).max(*n);
    }
}

/// Sends this instance's barriers: after each wake-up, one notification numbered with the
/// last barrier handed out, so that one round trip answers every query waiting then.
async fn send_barriers(hub: Arc<Hub>) {
    let mut sent = 0;
    loop {
        hub.sync_wake.notified().await;
        let target = hub.sync_next.load(Ordering::SeqCst);
        if target <= sent {
            continue;
        }
        let payload = serde_json::json!({"instance": hub.instance, "n": target}).to_string();
        match store::live_sync(&hub.pool, &payload).await {
            Ok(()) => sent = target,
            Err(e) => tracing::warn!(error = %e, "read-your-writes barrier not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{Agent, AgentStatus, Role, StatusDurations};

    fn snapshot(next_overdue_at: Option<DateTime<Utc>>) -> Snapshot {
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 26, h, m, s).unwrap();
        let row = |id: &str, status| AgentRow {
            agent: Agent {
                id: id.into(),
                name: id.into(),
                role: Role::Agent,
                status,
                status_since: at(8, 0, 0),
            },
            position: 0,
            avg_first_response_seconds: None,
            avg_resolution_seconds: None,
            active_conversations: 0,
            resolved_conversations: 0,
            reactivated_conversations: 0,
            forwarded_conversations: 0,
            first_response_count: 0,
            resolution_count: 0,
            unanswered_conversations: 0,
            oldest_unanswered_since: None,
            overdue_first_responses: 0,
            first_responses_within_target: 0,
            service_level: None,
            seconds_in_status_today: StatusDurations {
                online: 100,
                on_break: 10,
                invisible: 0,
                offline: 1000,
            },
            next_overdue_at,
        };
        Snapshot {
            day: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            next_day_at: at(21, 0, 0),
            refreshed_at: at(8, 29, 0),
            server_now: at(8, 30, 0),
            read_at: Instant::now(),
            product_name: "Mağaza".into(),
            service_level_seconds: 60,
            queue: Queue::default(),
            next_overdue_at,
            rows: vec![row("a", AgentStatus::Online), row("b", AgentStatus::Break)],
            epoch: 0,
            version: 0,
            delta: None,
            shared: Arc::default(),
        }
    }

    #[test]
    fn a_snapshot_answers_later_with_time_in_status_brought_forward_until_midnight() {
        let s = snapshot(None);
        let later = s.server_now + chrono::Duration::milliseconds(7_400);
        let answer = s.answer_at(later).expect("an answer");
        assert_eq!(answer.server_now, later);
        assert_eq!(answer.rows[0].seconds_in_status_today.online, 107);
        assert_eq!(answer.rows[1].seconds_in_status_today.on_break, 17);
        assert_eq!(answer.rows[1].seconds_in_status_today.online, 100);
        // The local day ends: the snapshot no longer answers (a statement does).
        assert!(s.answer_at(s.next_day_at).is_none());
        assert!(s
            .answer_at(s.next_day_at - chrono::Duration::milliseconds(1))
            .is_some());
        // Never an instant before the reading.
        assert!(s
            .answer_at(s.server_now - chrono::Duration::seconds(1))
            .is_none());
    }

    #[test]
    fn a_snapshot_does_not_answer_past_an_overdue_crossing_it_has_not_re_read() {
        let crossing = Utc.with_ymd_and_hms(2026, 11, 26, 8, 31, 0).unwrap();
        let s = snapshot(Some(crossing));
        assert!(s
            .answer_at(crossing - chrono::Duration::milliseconds(1))
            .is_some());
        assert!(s.answer_at(crossing).is_none());
    }
}
