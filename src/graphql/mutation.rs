//! `Mutation`: setAgentStatus with the rules of spec 3.3 (enforced in SQL, atomically).

use async_graphql::{Context, Object, ID};

use super::errors::{ApiError, Coded};
use super::types::{Agent, AgentStatus};
use super::{pool, viewer};
use crate::store::{self, StatusOutcome};

/// The root mutation type.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Sets an agent's status. Anyone may set their own; admins and supervisors may set
    /// anyone's who is not OFFLINE.
    async fn set_agent_status(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        status: AgentStatus,
    ) -> async_graphql::Result<Agent> {
        set_agent_status(ctx, agent_id, status).await.coded()
    }
}

async fn set_agent_status(
    ctx: &Context<'_>,
    agent_id: ID,
    status: AgentStatus,
) -> Result<Agent, ApiError> {
    let viewer = viewer(ctx)?;
    let (outcome, agent) = store::set_agent_status(
        pool(ctx)?,
        &viewer.org,
        &viewer.agent_id,
        agent_id.as_str(),
        status.into(),
    )
    .await?;
    let id = agent_id.as_str();
    match (outcome, agent) {
        (StatusOutcome::Changed | StatusOutcome::Unchanged, Some(agent)) => Ok(agent.into()),
        (StatusOutcome::Unauthenticated, _) => Err(ApiError::Unauthenticated(
            "the caller is no longer an agent".into(),
        )),
        (StatusOutcome::NotFound, _) => Err(ApiError::NotFound(format!("agent {id} not found"))),
        (StatusOutcome::Forbidden, _) => Err(ApiError::Forbidden(
            "an agent may change only their own status".into(),
        )),
        (StatusOutcome::AgentOffline, _) => Err(ApiError::AgentOffline(format!(
            "agent {id} is OFFLINE: only they can change their status"
        ))),
        (_, None) => Err(ApiError::Internal(crate::db::DbError::Unexpected(
            "status change without an agent".into(),
        ))),
    }
}
