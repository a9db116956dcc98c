//! Typed calls of the SQL the API runs (`sql/queries/*.sql`). One statement per call;
//! rows become domain types ([`crate::model`]) here and nowhere else.

use crate::db::Pool;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::db::{self, DbError};
use crate::model::{
    Agent, AgentRow, AgentStatus, Channel, ConversationRow, Queue, Role, StatusChange,
    StatusDurations,
};
pub use crate::model::{CockpitData, StatusOutcome};

const VIEWER_SQL: &str = include_str!("../sql/queries/viewer.sql");
const PRODUCTS_SQL: &str = include_str!("../sql/queries/products.sql");
/// The cockpit statement (for the whole scope; see [`cockpit`]).
pub const COCKPIT_SQL: &str = include_str!("../sql/queries/cockpit.sql");
const LIVE_SYNC_SQL: &str = include_str!("../sql/queries/live_sync.sql");
const SEARCH_KEY_SQL: &str = include_str!("../sql/queries/search_key.sql");
const SET_STATUS_SQL: &str = include_str!("../sql/queries/set_agent_status.sql");
const HISTORY_SQL: &str = include_str!("../sql/queries/status_history.sql");
const AGENT_CONVERSATIONS_SQL: &str = include_str!("../sql/queries/agent_conversations.sql");

fn unexpected(what: &str, value: &str) -> DbError {
    DbError::Unexpected(format!("stored {what} `{value}`"))
}

/// An [`Agent`] from the five columns agent_id, name, role, status, status_since at `at`.
fn agent_at(row: &Row, at: usize) -> Result<Agent, DbError> {
    let role: String = row.try_get(at + 2)?;
    let status: String = row.try_get(at + 3)?;
    Ok(Agent {
        id: row.try_get(at)?,
        name: row.try_get(at + 1)?,
        role: Role::parse(&role).ok_or_else(|| unexpected("role", &role))?,
        status: AgentStatus::parse(&status).ok_or_else(|| unexpected("status", &status))?,
        status_since: row.try_get(at + 4)?,
    })
}

/// The agent `id` of `org`, if any.
pub async fn agent(pool: &Pool, org: &str, id: &str) -> Result<Option<Agent>, DbError> {
    db::query(pool, VIEWER_SQL, &[&org, &id])
        .await?
        .first()
        .map(|row| agent_at(row, 0))
        .transpose()
}

/// The products of `org`: (id, name), by name.
pub async fn products(pool: &Pool, org: &str) -> Result<Vec<(String, String)>, DbError> {
    let rows = db::query(pool, PRODUCTS_SQL, &[&org]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Position of agent_id in the cockpit query's columns (after its eight header columns).
const AGENT_COLUMN: usize = 8;

/// The cockpit statement for given agents only: the same text with its agent filter made
/// mandatory, so that it is a prepared statement with a plan of its own (see the file's
/// header).
pub static COCKPIT_AGENTS_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| COCKPIT_SQL.replace("$5::text[] IS NULL OR ", ""));

/// The cockpit of `product` in `org`; `None` when the product is not the organization's.
pub async fn cockpit(
    pool: &Pool,
    org: &str,
    product: &str,
    channel: Option<Channel>,
    search: Option<&str>,
) -> Result<Option<CockpitData>, DbError> {
    let channel = channel.map(Channel::as_str);
    let none: Option<Vec<String>> = None;
    let rows = db::query(
        pool,
        COCKPIT_SQL,
        &[&org, &product, &channel, &search, &none],
    )
    .await?;
    cockpit_of(&rows)
}

/// The cockpit's header and the rows of `agents` only (those of them in scope, whatever
/// their name), as [`cockpit`] reads them with no search, and each row's search key (see
/// [`search_key`]); the rows' positions are not known: the caller places them.
pub async fn cockpit_agents(
    pool: &Pool,
    org: &str,
    product: &str,
    channel: Option<Channel>,
    agents: &[String],
) -> Result<Option<(CockpitData, Vec<String>)>, DbError> {
    let channel = channel.map(Channel::as_str);
    let search: Option<&str> = None;
    let rows = db::query_generic(
        pool,
        &COCKPIT_AGENTS_SQL,
        &[&org, &product, &channel, &search, &agents],
    )
    .await?;
    let Some(data) = cockpit_of(&rows)? else {
        return Ok(None);
    };
    let keys = rows
        .iter()
        .map(|row| row.try_get::<_, Option<String>>("search_key"))
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.len() != data.rows.len() {
        return Err(DbError::Unexpected(
            "a re-read row without its search key".into(),
        ));
    }
    Ok(Some((data, keys)))
}

/// The search key of a search text (`cockpit.search_key`): a name matches the search when
/// its key contains this one.
pub async fn search_key(pool: &Pool, search: &str) -> Result<String, DbError> {
    Ok(db::query_one(pool, SEARCH_KEY_SQL, &[&search])
        .await?
        .try_get("key")?)
}

fn cockpit_of(rows: &[Row]) -> Result<Option<CockpitData>, DbError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let refreshed_at: Option<DateTime<Utc>> = first.try_get("refreshed_at")?;
    let mut data = CockpitData {
        day: first.try_get("today")?,
        next_day_at: first.try_get("next_day_at")?,
        refreshed_at: refreshed_at
            .ok_or_else(|| DbError::Unexpected("the daily columns were never refreshed".into()))?,
        server_now: first.try_get("server_now")?,
        product_name: first.try_get("product_name")?,
        service_level_seconds: first.try_get("service_level_seconds")?,
        queue: Queue {
            queued: first.try_get("queued")?,
            oldest_queued_since: first.try_get("oldest_queued_since")?,
        },
        next_overdue_at: None,
        rows: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        if row.try_get::<_, Option<String>>("agent_id")?.is_none() {
            continue; // the product has no agent in scope
        }
        // The statement's ORDER BY is the order: its rows are numbered as they come.
        let position = i32::try_from(data.rows.len())
            .map_err(|_| DbError::Unexpected("more rows than positions".into()))?;
        data.rows.push(AgentRow {
            agent: agent_at(row, AGENT_COLUMN)?,
            position,
            avg_first_response_seconds: row.try_get("avg_first_response_seconds")?,
            avg_resolution_seconds: row.try_get("avg_resolution_seconds")?,
            active_conversations: row.try_get("active")?,
            resolved_conversations: row.try_get("resolved")?,
            reactivated_conversations: row.try_get("reactivated")?,
            forwarded_conversations: row.try_get("forwarded")?,
            first_response_count: row.try_get("first_response_count")?,
            resolution_count: row.try_get("resolution_count")?,
            unanswered_conversations: row.try_get("unanswered")?,
            oldest_unanswered_since: row.try_get("oldest_unanswered_since")?,
            overdue_first_responses: row.try_get("overdue")?,
            first_responses_within_target: row.try_get("within_target")?,
            service_level: row.try_get("service_level")?,
            seconds_in_status_today: StatusDurations {
                online: row.try_get("online_seconds")?,
                on_break: row.try_get("break_seconds")?,
                invisible: row.try_get("invisible_seconds")?,
                offline: row.try_get("offline_seconds")?,
            },
            next_overdue_at: row.try_get("next_overdue_at")?,
        });
    }
    data.next_overdue_at = data.rows.iter().filter_map(|r| r.next_overdue_at).min();
    Ok(Some(data))
}

/// Sends a read-your-writes barrier notification with `payload` (see the statement).
pub async fn live_sync(pool: &Pool, payload: &str) -> Result<(), DbError> {
    db::query(pool, LIVE_SYNC_SQL, &[&payload])
        .await
        .map(|_| ())
}

/// Changes `target`'s status as `actor`, in one atomic statement (spec 3.3).
pub async fn set_agent_status(
    pool: &Pool,
    org: &str,
    actor: &str,
    target: &str,
    status: AgentStatus,
) -> Result<(StatusOutcome, Option<Agent>), DbError> {
    let row = db::query_one(
        pool,
        SET_STATUS_SQL,
        &[&org, &actor, &target, &status.as_str()],
    )
    .await?;
    let outcome: String = row.try_get(0)?;
    let outcome = match outcome.as_str() {
        "CHANGED" => StatusOutcome::Changed,
        "UNCHANGED" => StatusOutcome::Unchanged,
        "UNAUTHENTICATED" => StatusOutcome::Unauthenticated,
        "NOT_FOUND" => StatusOutcome::NotFound,
        "FORBIDDEN" => StatusOutcome::Forbidden,
        "AGENT_OFFLINE" => StatusOutcome::AgentOffline,
        other => return Err(unexpected("status outcome", other)),
    };
    let agent = match row.try_get::<_, Option<String>>(1)? {
        Some(_) => Some(agent_at(&row, 1)?),
        None => None,
    };
    Ok((outcome, agent))
}

/// The last `limit` status changes of `agent`, newest first.
pub async fn status_history(
    pool: &Pool,
    org: &str,
    agent: &str,
    limit: i64,
) -> Result<Vec<StatusChange>, DbError> {
    let rows = db::query(pool, HISTORY_SQL, &[&org, &agent, &limit]).await?;
    rows.iter()
        .map(|row| {
            let from: String = row.try_get(0)?;
            let to: String = row.try_get(1)?;
            Ok(StatusChange {
                from: AgentStatus::parse(&from).ok_or_else(|| unexpected("status", &from))?,
                to: AgentStatus::parse(&to).ok_or_else(|| unexpected("status", &to))?,
                at: row.try_get(2)?,
                agent: agent_at(row, 3)?,
                changed_by: agent_at(row, 8)?,
            })
        })
        .collect()
}

/// What the drill-down found.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentConversations {
    /// The agent is not the organization's.
    AgentNotFound,
    /// The product asked for is not the organization's.
    ProductNotFound,
    /// The agent's active conversations in scope, oldest waiting first.
    Found(Vec<ConversationRow>),
}

/// `agent`'s active conversations in `org`, within `product` and `channel` when given
/// (spec 3.5, drill-down).
pub async fn agent_conversations(
    pool: &Pool,
    org: &str,
    agent: &str,
    product: Option<&str>,
    channel: Option<Channel>,
) -> Result<AgentConversations, DbError> {
    let channel = channel.map(Channel::as_str);
    let rows = db::query(
        pool,
        AGENT_CONVERSATIONS_SQL,
        &[&org, &agent, &product, &channel],
    )
    .await?;
    let first = rows
        .first()
        .ok_or_else(|| DbError::Unexpected("the drill-down returned no row".into()))?;
    if !first.try_get::<_, bool>("agent_found")? {
        return Ok(AgentConversations::AgentNotFound);
    }
    if !first.try_get::<_, bool>("product_found")? {
        return Ok(AgentConversations::ProductNotFound);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(id) = row.try_get::<_, Option<String>>("conversation_id")? else {
            continue;
        };
        let channel: String = row.try_get("channel")?;
        out.push(ConversationRow {
            id,
            product: (row.try_get("product_id")?, row.try_get("product_name")?),
            channel: Channel::parse(&channel).ok_or_else(|| unexpected("channel", &channel))?,
            opened_at: row.try_get("opened_at")?,
            assigned_at: row.try_get("assigned_at")?,
            waiting_since: row.try_get("waiting_since")?,
            first_response_at: row.try_get("first_response_at")?,
            last_customer_message_at: row.try_get("last_customer_message_at")?,
            last_agent_message_at: row.try_get("last_agent_message_at")?,
        });
    }
    Ok(AgentConversations::Found(out))
}
