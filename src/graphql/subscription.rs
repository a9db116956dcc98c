//! `Subscription.cockpit`: the full snapshot first, then the rows that changed, at most one
//! message per [`MIN_GAP`] per subscription (the first change after a quiet spell goes out
//! at once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Subscription as SubscriptionObject, ID};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::{Coded, GqlError};
use super::query::normalized_search;
use super::types::{AgentRow, Channel, CockpitUpdate, Date, DateTime};
use super::viewer;
use crate::live::hub::{Hub, Scope, Snapshot};
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
    ) -> async_graphql::Result<impl Stream<Item = CockpitUpdate>> {
        subscribe(ctx, product_id, channel, search).await.coded()
    }
}

async fn subscribe(
    ctx: &Context<'_>,
    product_id: ID,
    channel: Option<Channel>,
    search: Option<String>,
) -> Result<impl Stream<Item = CockpitUpdate>, GqlError> {
    let viewer = viewer(ctx)?;
    viewer.require_supervising()?;
    let search = normalized_search(search)?;
    let hub = ctx
        .data::<Arc<Hub>>()
        .map_err(|_| GqlError::Internal(crate::db::DbError::Unexpected("no hub".into())))?;
    let receiver = hub
        .subscribe(Scope {
            org: viewer.org.clone(),
            product: product_id.to_string(),
            channel,
            search,
        })
        .await?;
    Ok(updates(receiver))
}

struct Subscriber {
    _counted: SubscriberGuard,
    receiver: watch::Receiver<Arc<Snapshot>>,
    /// What the client has.
    last: Option<Arc<Snapshot>>,
    last_sent: Option<Instant>,
}

/// The messages of one subscription.
fn updates(receiver: watch::Receiver<Arc<Snapshot>>) -> impl Stream<Item = CockpitUpdate> {
    let subscriber = Subscriber {
        _counted: SubscriberGuard::new(),
        receiver,
        last: None,
        last_sent: None,
    };
    futures_util::stream::unfold(subscriber, |mut s| async move {
        loop {
            if s.last.is_some() {
                // Closed: the product is gone or the service is stopping.
                s.receiver.changed().await.ok()?;
                if let Some(sent) = s.last_sent {
                    tokio::time::sleep_until(sent + MIN_GAP).await;
                }
            }
            let snapshot = s.receiver.borrow_and_update().clone();
            let update = diff(s.last.as_deref(), &snapshot);
            s.last = Some(snapshot);
            if let Some(update) = update {
                s.last_sent = Some(Instant::now());
                return Some((update, s));
            }
        }
    })
}

/// What turns `before` (what the client has) into `after`; `None` when nothing changed.
/// All rows when the client has nothing yet or the listener reconnected (new epoch).
pub fn diff(before: Option<&Snapshot>, after: &Snapshot) -> Option<CockpitUpdate> {
    let full = before.is_none_or(|b| b.epoch != after.epoch);
    let previous: HashMap<&str, &AgentRow> = before
        .map(|b| b.rows.iter().map(|r| (r.agent.id.as_str(), r)).collect())
        .unwrap_or_default();
    let rows: Vec<AgentRow> = after
        .rows
        .iter()
        .filter(|row| full || previous.get(row.agent.id.as_str()) != Some(row))
        .cloned()
        .collect();
    let current: std::collections::HashSet<&str> =
        after.rows.iter().map(|r| r.agent.id.as_str()).collect();
    let removed: Vec<ID> = before
        .map(|b| {
            b.rows
                .iter()
                .filter(|r| !current.contains(r.agent.id.as_str()))
                .map(|r| r.agent.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let same_header =
        before.is_some_and(|b| b.day == after.day && b.refreshed_at == after.refreshed_at);
    if !full && rows.is_empty() && removed.is_empty() && same_header {
        return None;
    }
    Some(CockpitUpdate {
        day: Date(after.day),
        refreshed_at: DateTime(after.refreshed_at),
        rows,
        removed,
    })
}
