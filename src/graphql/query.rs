//! `Query`: me, products, cockpit, agentConversations, statusHistory.

use async_graphql::{Context, Object, ID};

use super::errors::{ApiError, Coded};
use super::types::{
    Agent, AgentRow, AgentStatus, Channel, Cockpit, ConversationRow, Date, DateTime, Product,
    StatusChange,
};
use super::{pool, refresh_interval, viewer};
use std::sync::Arc;

use crate::live::hub::{Hub, Scope};
use crate::store;

/// Longest accepted search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Default and bounds of `statusHistory(limit)`.
const HISTORY_DEFAULT: i64 = 50;
const HISTORY_MAX: i64 = 1000;

/// The root query type.
pub struct Query;

#[Object]
impl Query {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Agent> {
        me(ctx).await.coded()
    }

    /// The organization's products, by name.
    async fn products(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Product>> {
        products(ctx).await.coded()
    }

    /// Today's cockpit of a product: all channels, or one; optionally a name search.
    async fn cockpit(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        channel: Option<Channel>,
        search: Option<String>,
    ) -> async_graphql::Result<Cockpit> {
        cockpit(ctx, product_id, channel, search).await.coded()
    }

    /// One agent's active conversations, the customer kept waiting longest first (then by
    /// the start of their assignment); within a product and a channel when given. An
    /// AGENT may ask for their own only.
    async fn agent_conversations(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        product_id: Option<ID>,
        channel: Option<Channel>,
    ) -> async_graphql::Result<Vec<ConversationRow>> {
        agent_conversations(ctx, agent_id, product_id, channel)
            .await
            .coded()
    }

    /// An agent's status changes, newest first (`limit` 1 to 1,000; null: 50).
    async fn status_history(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        #[graphql(default_with = "Some(HISTORY_DEFAULT)")] limit: Option<i64>,
    ) -> async_graphql::Result<Vec<StatusChange>> {
        status_history(ctx, agent_id, limit).await.coded()
    }
}

async fn me(ctx: &Context<'_>) -> Result<Agent, ApiError> {
    let viewer = viewer(ctx)?;
    store::agent(pool(ctx)?, &viewer.org, &viewer.agent_id)
        .await?
        .map(Agent::from)
        .ok_or_else(|| ApiError::Unauthenticated("the caller is no longer an agent".into()))
}

async fn products(ctx: &Context<'_>) -> Result<Vec<Product>, ApiError> {
    let viewer = viewer(ctx)?;
    viewer.require_supervising()?;
    Ok(store::products(pool(ctx)?, &viewer.org)
        .await?
        .into_iter()
        .map(|(id, name)| Product {
            id: id.into(),
            name,
        })
        .collect())
}

async fn cockpit(
    ctx: &Context<'_>,
    product_id: ID,
    channel: Option<Channel>,
    search: Option<String>,
) -> Result<Cockpit, ApiError> {
    let viewer = viewer(ctx)?;
    viewer.require_supervising()?;
    let search = normalized_search(search)?;
    let hub = ctx
        .data::<Arc<Hub>>()
        .map_err(|_| ApiError::Internal(crate::db::DbError::Unexpected("no hub".into())))?;
    let scope = Scope {
        org: viewer.org.clone(),
        product: product_id.to_string(),
        channel: channel.map(Into::into),
        search: search.clone(),
    };
    let (data, from) = hub.cockpit_from(&scope).await?;
    if let Some(note) = ctx.data_opt::<Arc<super::AnswerNote>>() {
        note.record(scope, from);
    }
    let data = data
        .ok_or_else(|| ApiError::NotFound(format!("product {} not found", product_id.as_str())))?;
    let mut cockpit = Cockpit {
        product: Product {
            id: product_id,
            name: data.product_name,
        },
        channel,
        day: Date(data.day),
        refreshed_at: DateTime(data.refreshed_at),
        refresh_interval_seconds: refresh_interval(ctx).seconds(),
        stale_after: refresh_interval(ctx).stale_after(data.refreshed_at),
        server_now: DateTime(data.server_now),
        service_level_seconds: data.service_level_seconds,
        queue: data.queue.into(),
        online: Vec::new(),
        on_break: Vec::new(),
        invisible: Vec::new(),
        offline: Vec::new(),
    };
    for row in data.rows {
        table_of(&mut cockpit, row.agent.status.into()).push(row.into());
    }
    Ok(cockpit)
}

async fn status_history(
    ctx: &Context<'_>,
    agent_id: ID,
    limit: Option<i64>,
) -> Result<Vec<StatusChange>, ApiError> {
    let viewer = viewer(ctx)?;
    viewer.require_supervising()?;
    let limit = limit.unwrap_or(HISTORY_DEFAULT);
    if !(1..=HISTORY_MAX).contains(&limit) {
        return Err(ApiError::BadUserInput(format!(
            "limit must be between 1 and {HISTORY_MAX}"
        )));
    }
    let pool = pool(ctx)?;
    if store::agent(pool, &viewer.org, agent_id.as_str())
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "agent {} not found",
            agent_id.as_str()
        )));
    }
    Ok(
        store::status_history(pool, &viewer.org, agent_id.as_str(), limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    )
}

async fn agent_conversations(
    ctx: &Context<'_>,
    agent_id: ID,
    product_id: Option<ID>,
    channel: Option<Channel>,
) -> Result<Vec<ConversationRow>, ApiError> {
    let viewer = viewer(ctx)?;
    if agent_id.as_str() != viewer.agent_id {
        viewer.require_supervising()?;
    }
    match store::agent_conversations(
        pool(ctx)?,
        &viewer.org,
        agent_id.as_str(),
        product_id.as_ref().map(|p| p.as_str()),
        channel.map(Into::into),
    )
    .await?
    {
        store::AgentConversations::AgentNotFound => Err(ApiError::NotFound(format!(
            "agent {} not found",
            agent_id.as_str()
        ))),
        store::AgentConversations::ProductNotFound => Err(ApiError::NotFound(format!(
            "product {} not found",
            product_id.as_ref().map(|p| p.as_str()).unwrap_or_default()
        ))),
        store::AgentConversations::Found(rows) => Ok(rows.into_iter().map(Into::into).collect()),
    }
}

/// The cockpit table of a status.
fn table_of(cockpit: &mut Cockpit, status: AgentStatus) -> &mut Vec<AgentRow> {
    match status {
        AgentStatus::Online => &mut cockpit.online,
        AgentStatus::Break => &mut cockpit.on_break,
        AgentStatus::Invisible => &mut cockpit.invisible,
        AgentStatus::Offline => &mut cockpit.offline,
    }
}

/// The search text to apply: `None` for absent or empty; too long is `BAD_USER_INPUT`.
pub fn normalized_search(search: Option<String>) -> Result<Option<String>, ApiError> {
    match search {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > MAX_SEARCH_CHARS => Err(ApiError::BadUserInput(format!(
            "search is longer than {MAX_SEARCH_CHARS} characters"
        ))),
        Some(s) => Ok(Some(s)),
    }
}
