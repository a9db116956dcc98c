//! `Subscription.cockpit`: the full snapshot first, then the rows that changed, at most one
//! message per [`MIN_GAP`] per subscription (the first change after a quiet spell goes out
//! at once).

use std::sync::Arc;
use std::time::Duration;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use async_graphql::parser::types::Field;
use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, ServerResult,
    Subscription as SubscriptionObject, Value, ID,
};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::{ApiError, Coded};
use super::query::normalized_search;
use super::types::{AgentRow, Channel, CockpitUpdate, Date, DateTime};
use super::{refresh_interval, viewer, RefreshInterval};
use crate::live::hub::{Delta, Hub, Scope, Snapshot};
use crate::telemetry::SubscriberGuard;

/// Smallest gap between two messages of one subscription.
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// The root subscription type.
pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// A product's cockpit, live: first the full snapshot, then every change in scope.
    async fn cockpit(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        channel: Option<Channel>,
        search: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = SharedUpdate>> {
        subscribe(ctx, product_id, channel, search).await.coded()
    }
}

/// A message of `Subscription.cockpit` (a `CockpitUpdate` in the schema), shared: the
/// publication's change from the version a subscriber holds is worked out once, and
/// rendered once per subscription document, for every subscriber that receives it. A
/// change seen by ~900 subscribers of a few scopes costs a few diffs and renderings, not
/// ~900 (issue 22, P5).
pub struct SharedUpdate {
    update: Arc<CockpitUpdate>,
    snapshot: Arc<Snapshot>,
    from: Option<u64>,
    document: u64,
}

impl OutputType for SharedUpdate {
    fn type_name() -> Cow<'static, str> {
        <CockpitUpdate as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <CockpitUpdate as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let key = (self.from, self.document);
        if let Some(value) = self.snapshot.shared.get::<Value>(&key) {
            return Ok(Value::clone(&value));
        }
        // CockpitUpdate's fields are plain data: resolving cannot fail or depend on the
        // caller, so one rendering serves every subscription with the same document.
        let value = OutputType::resolve(&*self.update, ctx, field).await?;
        Ok(Value::clone(&self.snapshot.shared.insert(key, value)))
    }
}

/// Documents numbered so far, and the last number given (numbers are never reused).
type Documents = (HashMap<String, u64>, u64);

/// Most documents remembered; past it the memory starts again (new numbers only, so a
/// number never names two documents).
const DOCUMENTS_KEPT: usize = 10_000;

static DOCUMENTS: LazyLock<Mutex<Documents>> = LazyLock::new(Mutex::default);

/// The number of what a subscription's messages are rendered from besides their data:
/// its field's selection (with arguments, aliases and directives), the fragments and the
/// variables. Subscriptions with the same number render a message identically; 0 is never
/// given (it names the message itself in [`Snapshot::shared`]).
fn document_number(ctx: &Context<'_>) -> Option<u64> {
    let mut fragments: Vec<_> = ctx.query_env.fragments.iter().collect();
    fragments.sort_by(|a, b| a.0.cmp(b.0));
    let text = format!(
        "{:?}|{:?}|{:?}",
        ctx.item.node, fragments, ctx.query_env.variables
    );
    let mut documents = DOCUMENTS.lock().ok()?;
    let (numbers, last) = &mut *documents;
    if let Some(number) = numbers.get(&text) {
        return Some(*number);
    }
    *last += 1;
    let number = *last;
    if numbers.len() >= DOCUMENTS_KEPT {
        numbers.clear();
    }
    numbers.insert(text, number);
    Some(number)
}

async fn subscribe(
    ctx: &Context<'_>,
    product_id: ID,
    channel: Option<Channel>,
    search: Option<String>,
) -> Result<impl Stream<Item = SharedUpdate>, ApiError> {
    let viewer = viewer(ctx)?;
    viewer.require_supervising()?;
    let search = normalized_search(search)?;
    let hub = ctx
        .data::<Arc<Hub>>()
        .map_err(|_| ApiError::Internal(crate::db::DbError::Unexpected("no hub".into())))?;
    let receiver = hub
        .subscribe(Scope {
            org: viewer.org.clone(),
            product: product_id.to_string(),
            channel: channel.map(Into::into),
            search,
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("product {} not found", product_id.as_str())))?;
    let document = document_number(ctx).ok_or_else(|| {
        ApiError::Internal(crate::db::DbError::Unexpected(
            "subscription documents poisoned".into(),
        ))
    })?;

    Ok(updates(receiver, refresh_interval(ctx), document))
}

struct Subscriber {
    _counted: SubscriberGuard,
    receiver: watch::Receiver<Arc<Snapshot>>,
    /// What the client has.
    last: Option<Arc<Snapshot>>,
    last_sent: Option<Instant>,
}

/// The messages of one subscription.
fn updates(
    receiver: watch::Receiver<Arc<Snapshot>>,
    refresh_interval: RefreshInterval,
    document: u64,
) -> impl Stream<Item = SharedUpdate> {
    let subscriber = Subscriber {
        _counted: SubscriberGuard::new(),
        receiver,
        last: None,
        last_sent: None,
    };
    futures_util::stream::unfold(subscriber, move |mut s| async move {
        loop {
            if s.last.is_some() {
                // Closed: the product is gone or the service is stopping.
                s.receiver.changed().await.ok()?;
                if let Some(sent) = s.last_sent {
                    tokio::time::sleep_until(sent + MIN_GAP).await;
                }
            }
            let snapshot = s.receiver.borrow_and_update().clone();
            // Every subscriber holding the same version gets the same message: the first
            // one works it out (a version names one content within a group).
            let from = s.last.as_ref().map(|last| last.version);
            let key = (from, 0);
            let update = match snapshot.shared.get::<Option<Arc<CockpitUpdate>>>(&key) {
                Some(update) => Option::clone(&update),
                None => {
                    let update = diff(s.last.as_deref(), &snapshot).map(|mut update| {
                        update.refresh_interval_seconds = refresh_interval.seconds();
                        update.stale_after = refresh_interval.stale_after(update.refreshed_at.0);
                        Arc::new(update)
                    });
                    Option::clone(&snapshot.shared.insert(key, update))
                }
            };
            s.last = Some(snapshot.clone());
            if let Some(update) = update {
                s.last_sent = Some(Instant::now());
                let message = SharedUpdate {
                    update,
                    snapshot,
                    from,
                    document,
                };
                return Some((message, s));
            }
        }
    })
}

/// What turns `before` (what the client has) into `after`; `None` when nothing changed.
/// `serverNow` is the moment of `after`'s reading; `refreshIntervalSeconds` and `staleAfter`
/// are left for the caller (0 and `refreshedAt`).
/// All rows when the client has nothing yet, the listener reconnected (new epoch) or a new
/// day began (every row's time in status today starts again, with or without a change).
pub fn diff(before: Option<&Snapshot>, after: &Snapshot) -> Option<CockpitUpdate> {
    let full = before.is_none_or(|b| b.epoch != after.epoch || b.day != after.day);
    let changes = |delta: &Delta| -> (Vec<AgentRow>, Vec<ID>) {
        (
            delta
                .rows
                .iter()
                .filter_map(|at| after.rows.get(*at))
                .cloned()
                .map(AgentRow::from)
                .collect(),
            delta.removed.iter().cloned().map(ID::from).collect(),
        )
    };
    let every_row = || after.rows.iter().cloned().map(AgentRow::from).collect();
    let (rows, removed): (Vec<AgentRow>, Vec<ID>) = match (before, &after.delta) {
        (None, _) => (every_row(), Vec::new()),
        (Some(b), _) if full => (every_row(), changes(&Delta::between(b, after)).1),
        // The subscriber holds the version the group's delta starts from (the usual case):
        // the group worked it out once for all of them.
        (Some(b), Some(delta)) if delta.from == b.version && b.version + 1 == after.version => {
            changes(delta)
        }
        (Some(b), _) => changes(&Delta::between(b, after)),
    };
    let same_header = before.is_some_and(|b| {
        b.day == after.day
            && b.refreshed_at == after.refreshed_at
            && b.queue == after.queue
            && b.service_level_seconds == after.service_level_seconds
    });
    if !full && rows.is_empty() && removed.is_empty() && same_header {
        return None;
    }
    Some(CockpitUpdate {
        day: Date(after.day),
        refreshed_at: DateTime(after.refreshed_at),
        refresh_interval_seconds: 0,
        stale_after: DateTime(after.refreshed_at),
        server_now: DateTime(after.server_now),
        service_level_seconds: after.service_level_seconds,
        queue: after.queue.into(),
        rows,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{self, Agent, AgentRow, AgentStatus, Role};
    use chrono::{NaiveDate, TimeZone, Utc};

    fn row(id: &str, active: i32) -> AgentRow {
        AgentRow {
            agent: Agent {
                id: id.into(),
                name: id.to_uppercase(),
                role: Role::Agent,
                status: AgentStatus::Online,
                status_since: Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap(),
            },
            position: 0,
            avg_first_response_seconds: None,
            avg_resolution_seconds: None,
            active_conversations: active,
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
            seconds_in_status_today: model::StatusDurations::default(),
            next_overdue_at: None,
        }
    }

    fn snapshot(day: u32, refreshed_minute: u32, mut rows: Vec<AgentRow>, epoch: u64) -> Snapshot {
        for (at, row) in rows.iter_mut().enumerate() {
            row.position = at as i32;
        }
        Snapshot {
            day: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            next_day_at: Utc.with_ymd_and_hms(2026, 11, day, 21, 0, 0).unwrap(),
            refreshed_at: Utc
                .with_ymd_and_hms(2026, 11, 26, 8, refreshed_minute, 0)
                .unwrap(),
            server_now: Utc.with_ymd_and_hms(2026, 11, 26, 8, 30, 0).unwrap(),
            read_at: tokio::time::Instant::now(),
            product_name: "Mağaza".into(),
            service_level_seconds: 60,
            queue: model::Queue::default(),
            next_overdue_at: None,
            rows,
            epoch,
            version: 0,
            delta: None,
            shared: Arc::default(),
        }
    }

    fn ids(update: &CockpitUpdate) -> Vec<&str> {
        update.rows.iter().map(|r| r.agent.id.as_str()).collect()
    }

    #[test]
    fn the_first_message_carries_every_row() {
        let now = snapshot(26, 1, vec![row("a", 1), row("b", 0)], 0);
        let update = diff(None, &now).unwrap();
        assert_eq!((ids(&update), update.removed.len()), (vec!["a", "b"], 0));
    }

    #[test]
    fn nothing_changed_sends_nothing_and_a_change_sends_only_its_row() {
        let before = snapshot(26, 1, vec![row("a", 1), row("b", 0)], 0);
        assert_eq!(diff(Some(&before), &before.clone()), None);
        let after = snapshot(26, 1, vec![row("a", 2), row("b", 0)], 0);
        assert_eq!(ids(&diff(Some(&before), &after).unwrap()), vec!["a"]);
    }

    #[test]
    fn a_subscriber_at_the_previous_version_sends_the_groups_delta() {
        let before = snapshot(26, 1, vec![row("a", 1), row("b", 0), row("c", 0)], 0);
        let mut after = snapshot(26, 1, vec![row("a", 1), row("c", 3)], 0);
        after.version = 1;
        after.delta = Some(Arc::new(Delta::between(&before, &after)));
        let update = diff(Some(&before), &after).unwrap();
        // c changed and moved up; b left.
        assert_eq!(ids(&update), vec!["c"]);
        assert_eq!(update.removed, vec![ID::from("b")]);
        // A delta from another version is not used: the rows are compared instead.
        let mut stale = after.clone();
        stale.delta = Some(Arc::new(Delta {
            from: 7,
            rows: vec![0],
            removed: Vec::new(),
        }));
        assert_eq!(diff(Some(&before), &stale), diff(Some(&before), &after));
    }

    #[test]
    fn a_row_whose_place_moved_is_sent_with_its_new_position() {
        // "c" joins the scope between "a" and "b": b's position moves, a's does not.
        let before = snapshot(26, 1, vec![row("a", 1), row("b", 0)], 0);
        let after = snapshot(26, 1, vec![row("a", 1), row("c", 0), row("b", 0)], 0);
        let update = diff(Some(&before), &after).unwrap();
        assert_eq!(ids(&update), vec!["c", "b"]);
        assert_eq!(
            update.rows.iter().map(|r| r.position).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn agents_that_leave_the_scope_are_removed() {
        let before = snapshot(26, 1, vec![row("a", 1), row("b", 0)], 0);
        let after = snapshot(26, 1, vec![row("b", 0)], 0);
        let update = diff(Some(&before), &after).unwrap();
        assert_eq!(update.removed, vec![ID::from("a")]);
        // b is now first: only its position changed.
        assert_eq!(ids(&update), vec!["b"]);
        assert_eq!(update.rows[0].position, 0);
    }

    #[test]
    fn a_refresh_or_a_new_day_is_sent_even_without_row_changes() {
        let before = snapshot(26, 1, vec![row("a", 1)], 0);
        let refreshed = diff(Some(&before), &snapshot(26, 2, vec![row("a", 1)], 0)).unwrap();
        assert!(refreshed.rows.is_empty());
        assert_eq!(refreshed.refreshed_at.0.format("%M").to_string(), "02");
        let next_day = diff(Some(&before), &snapshot(27, 1, vec![row("a", 1)], 0)).unwrap();
        assert_eq!(
            next_day.day,
            Date(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap())
        );
        // Every row again: their time in status today restarts at the new day.
        assert_eq!(ids(&next_day), vec!["a"]);
    }

    #[test]
    fn the_clock_alone_sends_nothing_and_a_queue_change_is_sent_without_rows() {
        let before = snapshot(26, 1, vec![row("a", 1)], 0);
        let mut later = before.clone();
        later.server_now += chrono::Duration::seconds(30);
        later.rows[0].seconds_in_status_today.online += 30;
        assert_eq!(diff(Some(&before), &later), None);
        let mut queued = later.clone();
        queued.queue.queued = 1;
        let update = diff(Some(&before), &queued).unwrap();
        assert!(update.rows.is_empty());
        assert_eq!(update.queue.queued, 1);
        assert_eq!(update.server_now, DateTime(queued.server_now));
    }

    #[test]
    fn after_a_listener_reconnect_every_row_is_sent_again() {
        let before = snapshot(26, 1, vec![row("a", 1), row("b", 0)], 0);
        let update = diff(
            Some(&before),
            &snapshot(26, 1, vec![row("a", 1), row("b", 0)], 1),
        )
        .unwrap();
        assert_eq!(ids(&update), vec!["a", "b"]);
    }
}
