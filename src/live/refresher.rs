//! The refresher: every interval, `cockpit.refresh_daily()` recomputes the conversations
//! touched since the last refresh. Several instances may run it; a PostgreSQL advisory lock
//! lets one refresh at a time, and the others skip that tick.

use std::time::Duration;

use deadpool_postgres::Pool;
use serde::Deserialize;
use tokio::time::MissedTickBehavior;

use crate::db::{self, DbError};

const REFRESH_SQL: &str = include_str!("../../sql/queries/refresh_daily.sql");
const REFRESH_AGE_SQL: &str = include_str!("../../sql/queries/refresh_age.sql");

/// What one refresh did.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RefreshReport {
    /// Conversations recomputed.
    pub conversations: u64,
    /// Summary groups changed.
    pub groups: u64,
    /// Time the SQL refresh took, in milliseconds.
    pub duration_ms: f64,
}

/// Runs one refresh. `None` when another session is refreshing right now.
pub async fn refresh_once(pool: &Pool) -> Result<Option<RefreshReport>, DbError> {
    let started = std::time::Instant::now();
    let row = db::query_one(pool, REFRESH_SQL, &[]).await?;
    let answer: Option<serde_json::Value> = row.get(0);
    if answer.is_some() {
        metrics::histogram!("cockpit_refresh_duration_seconds")
            .record(started.elapsed().as_secs_f64());
    }
    answer
        .map(|value| {
            serde_json::from_value(value)
                .map_err(|e| DbError::Unexpected(format!("refresh answer: {e}")))
        })
        .transpose()
}

/// Seconds since the last refresh by any instance; `None` when there was none.
pub async fn refresh_age(pool: &Pool) -> Result<Option<f64>, DbError> {
    Ok(db::query_one(pool, REFRESH_AGE_SQL, &[]).await?.get(0))
}

/// Refreshes every `interval` until the task is dropped. A failed refresh is logged and
/// retried at the next tick: the marks it did not consume stay for it.
pub async fn run(pool: Pool, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    // A slow refresh delays the next one rather than causing a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; start-up already refreshed
    loop {
        ticker.tick().await;
        match refresh_once(&pool).await {
            Ok(Some(report)) => {
                tracing::debug!(
                    conversations = report.conversations,
                    groups = report.groups,
                    duration_ms = report.duration_ms,
                    "refreshed daily columns"
                )
            }
            Ok(None) => tracing::debug!("another instance is refreshing; skipped"),
            Err(e) => tracing::warn!(error = %e, "refresh of the daily columns failed"),
        }
    }
}
