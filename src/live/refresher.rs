//! The refresher: every interval, `cockpit.refresh_daily()` recomputes the conversations
//! touched since the last refresh, in chunks. Several instances may run it: a PostgreSQL
//! advisory lock lets one refresh at a time, and an instance whose tick comes soon after
//! another's refresh skips it, so there is one refresh per interval whatever the number of
//! instances. Every few minutes it also does the upkeep autovacuum would do.

use std::time::Duration;

use crate::db::Pool;
use serde::Deserialize;
use tokio::time::MissedTickBehavior;

use crate::db::{self, DbError};

const REFRESH_SQL: &str = include_str!("../../sql/queries/refresh_daily.sql");
const REFRESH_AGE_SQL: &str = include_str!("../../sql/queries/refresh_age.sql");
const UPKEEP_SQL: &str = include_str!("../../sql/queries/upkeep.sql");

/// Most conversations one refresh transaction recomputes (a minute of the reference
/// workload touches ~150; an outage's backlog is caught up chunk after chunk).
pub const CHUNK_CONVERSATIONS: i32 = 5_000;
/// A tick skips its refresh when another instance refreshed within this share of the
/// interval: two instances ticking out of phase refresh once per interval, not twice.
const SKIP_SHARE: f64 = 0.75;
/// How often the refresher vacuums and analyzes the tables it and ingest rewrite.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(300);
/// Session advisory lock of the upkeep: one instance at a time.
const UPKEEP_LOCK_KEY: i64 = 0x636f_636b_7069_7402; // "cockpit" + 2

/// What one refresh did.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RefreshReport {
    /// Conversations recomputed.
    pub conversations: u64,
    /// Summary groups changed.
    pub groups: u64,
    /// Time the SQL refresh took, in milliseconds.
    pub duration_ms: f64,
    /// Whether marked conversations remain for another chunk.
    #[serde(default)]
    pub more: bool,
}

/// Runs one refresh, to the end (chunk after chunk). `None` when another session is
/// refreshing right now.
pub async fn refresh_once(pool: &Pool) -> Result<Option<RefreshReport>, DbError> {
    let Some(mut report) = refresh_chunk(pool, None).await? else {
        return Ok(None);
    };
    while report.more {
        match refresh_chunk(pool, None).await? {
            Some(next) => {
                report.conversations += next.conversations;
                report.groups += next.groups;
                report.duration_ms += next.duration_ms;
                report.more = next.more;
            }
            // Another instance took over the rest.
            None => break,
        }
    }
    Ok(Some(report))
}

/// One chunk of a refresh; `None` when another session is refreshing, or when the last
/// refresh is younger than `skip_if_younger`.
async fn refresh_chunk(
    pool: &Pool,
    skip_if_younger: Option<Duration>,
) -> Result<Option<RefreshReport>, DbError> {
    let started = std::time::Instant::now();
    let skip = skip_if_younger.map(|d| d.as_secs_f64());
    let row = db::query_one(pool, REFRESH_SQL, &[&skip, &CHUNK_CONVERSATIONS]).await?;
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

/// Vacuums and analyzes the tables that ingest and the refresh rewrite, unless another
/// instance is doing it. `false` when it was left to the other instance.
pub async fn upkeep(pool: &Pool) -> Result<bool, DbError> {
    // A session lock, a session setting and VACUUM: on a session of its own (a direct one
    // when the pool goes through a transaction pooler).
    let direct = pool.direct()?;
    db::run(&direct, async |client| {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&UPKEEP_LOCK_KEY])
            .await?
            .get(0);
        if !locked {
            return Ok(false);
        }
        // VACUUM of a large table may outlast the service's statement limit.
        client.batch_execute("SET statement_timeout = 0").await?;
        let vacuumed = client.batch_execute(UPKEEP_SQL).await;
        client.batch_execute("RESET statement_timeout").await?;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&UPKEEP_LOCK_KEY])
            .await?;
        vacuumed?;
        Ok(true)
    })
    .await
}

/// Seconds since the last refresh by any instance; `None` when there was none.
pub async fn refresh_age(pool: &Pool) -> Result<RefreshClock, DbError> {
    let row = db::query_one(pool, REFRESH_AGE_SQL, &[]).await?;
    Ok(RefreshClock {
        refreshed_at: row.try_get(0)?,
        now: row.try_get(1)?,
    })
}

/// The last refresh of the daily columns, read with the database's clock.
#[derive(Debug, Clone, Copy)]
pub struct RefreshClock {
    /// When the daily columns were last refreshed; `None` when never.
    pub refreshed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The database's clock at the reading.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl RefreshClock {
    /// Seconds since the last refresh.
    pub fn age_seconds(&self) -> Option<f64> {
        self.refreshed_at
            .map(|at| (self.now - at).num_milliseconds() as f64 / 1000.0)
    }

    /// Whether the daily columns are stale with a refresh every `interval`
    /// ([`crate::model::stale_after`]); never refreshed is stale.
    pub fn is_stale(&self, interval: Duration) -> bool {
        self.refreshed_at
            .is_none_or(|at| self.now > crate::model::stale_after(at, interval))
    }
}

/// Refreshes every `interval` until `cancel` (a refresh under way finishes first). A
/// failed refresh is logged and retried at the next tick: the marks it did not consume
/// stay for it.
pub async fn run(pool: Pool, interval: Duration, cancel: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    // A slow refresh delays the next one rather than causing a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; start-up already refreshed
    let mut last_upkeep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match refresh_chunk(&pool, Some(interval.mul_f64(SKIP_SHARE))).await {
            Ok(Some(first)) => {
                let more = first.more;
                tracing::debug!(
                    conversations = first.conversations,
                    groups = first.groups,
                    duration_ms = first.duration_ms,
                    more,
                    "refreshed daily columns"
                );
                if more {
                    // A backlog: the rest now, chunk after chunk.
                    if let Err(e) = refresh_once(&pool).await {
                        tracing::warn!(error = %e, "refresh of the daily columns failed");
                    }
                }
            }
            Ok(None) => tracing::debug!("refreshed by another instance or session; skipped"),
            Err(e) => tracing::warn!(error = %e, "refresh of the daily columns failed"),
        }
        if last_upkeep.elapsed() >= UPKEEP_EVERY {
            last_upkeep = tokio::time::Instant::now();
            match upkeep(&pool).await {
                Ok(done) => tracing::debug!(done, "upkeep of the rewritten tables"),
                Err(e) => tracing::warn!(error = %e, "upkeep of the rewritten tables failed"),
            }
        }
    }
}
