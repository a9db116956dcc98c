//! The GraphQL object types, enums and scalars of spec 4: mirrors of the domain
//! ([`crate::model`]) with the API's names, converted from it.

use async_graphql::{
    Enum, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value,
};
use chrono::{NaiveDate, Utc};

use crate::model;

/// `Date`: a calendar day, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

/// A calendar day, `YYYY-MM-DD`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// `DateTime`: an instant, RFC 3339 with offset (UTC, `Z`, on output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant as RFC 3339 with an offset, e.g. `2026-11-26T09:30:00Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 instant with offset")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }
}

/// An agent's availability.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::model::AgentStatus")]
pub enum AgentStatus {
    /// Çevrimiçi.
    Online,
    /// Çevrimdışı.
    Offline,
    /// Mola.
    Break,
    /// Görünmez.
    Invisible,
}

/// What an agent may do: the stored role decides, not the token's claim.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::model::Role")]
pub enum Role {
    /// Reads everything of the organization; changes others' status unless OFFLINE.
    Admin,
    /// Same powers as an admin in the cockpit.
    Supervisor,
    /// Reads `me`, changes their own status.
    Agent,
}

/// A conversation channel.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[graphql(remote = "crate::model::Channel")]
pub enum Channel {
    /// Web live chat.
    LiveChat,
    /// In-app messaging.
    InApp,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Facebook,
    /// Instagram DM.
    Instagram,
    /// Twitter.
    Twitter,
}

/// A brand or app whose conversations the team handles.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Product {
    /// Product id (the platform's).
    pub id: async_graphql::ID,
    /// Display name.
    pub name: String,
}

/// A support agent (a user of the platform).
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Agent {
    /// Agent id (the platform's).
    pub id: async_graphql::ID,
    /// Display name.
    pub name: String,
    /// Stored role.
    pub role: Role,
    /// Current status.
    pub status: AgentStatus,
    /// When the agent entered the current status.
    pub status_since: DateTime,
}

/// One agent's line in the cockpit.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct AgentRow {
    /// The agent.
    pub agent: Agent,
    /// Mean first response today, seconds; null when no first response today.
    pub avg_first_response_seconds: Option<f64>,
    /// Mean resolution time today, seconds; null when no timed resolution today.
    pub avg_resolution_seconds: Option<f64>,
    /// Conversations active on the agent now (in the cockpit's product and channel).
    pub active_conversations: i32,
    /// Resolutions the agent marked today.
    pub resolved_conversations: i32,
    /// Archived conversations the agent re-activated today.
    pub reactivated_conversations: i32,
    /// Manual assignments by the agent to someone else today.
    pub forwarded_conversations: i32,
    /// First responses behind `avgFirstResponseSeconds`.
    pub first_response_count: i32,
    /// Timed resolutions behind `avgResolutionSeconds`.
    pub resolution_count: i32,
}

/// The supervisor's screen: one product (and channel), today, split by status.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct Cockpit {
    /// The product shown.
    pub product: Product,
    /// The channel shown; null: all channels.
    pub channel: Option<Channel>,
    /// The organization's local day of the daily columns.
    pub day: Date,
    /// When the daily columns were last refreshed.
    pub refreshed_at: DateTime,
    /// Seconds between refreshes of the daily columns (a screen warns when `refreshedAt`
    /// is older than three of them).
    pub refresh_interval_seconds: i32,
    /// The server's clock when this answer was made, so that a client with a skewed clock
    /// still shows true durations.
    pub server_now: DateTime,
    /// ONLINE agents.
    pub online: Vec<AgentRow>,
    /// Agents on BREAK.
    pub on_break: Vec<AgentRow>,
    /// INVISIBLE agents.
    pub invisible: Vec<AgentRow>,
    /// OFFLINE agents.
    pub offline: Vec<AgentRow>,
}

impl From<model::Agent> for Agent {
    fn from(agent: model::Agent) -> Self {
        Agent {
            id: agent.id.into(),
            name: agent.name,
            role: agent.role.into(),
            status: agent.status.into(),
            status_since: DateTime(agent.status_since),
        }
    }
}

impl From<model::AgentRow> for AgentRow {
    fn from(row: model::AgentRow) -> Self {
        AgentRow {
            agent: row.agent.into(),
            avg_first_response_seconds: row.avg_first_response_seconds,
            avg_resolution_seconds: row.avg_resolution_seconds,
            active_conversations: row.active_conversations,
            resolved_conversations: row.resolved_conversations,
            reactivated_conversations: row.reactivated_conversations,
            forwarded_conversations: row.forwarded_conversations,
            first_response_count: row.first_response_count,
            resolution_count: row.resolution_count,
        }
    }
}

impl From<model::StatusChange> for StatusChange {
    fn from(change: model::StatusChange) -> Self {
        StatusChange {
            agent: change.agent.into(),
            from: change.from.into(),
            to: change.to.into(),
            changed_by: change.changed_by.into(),
            at: DateTime(change.at),
        }
    }
}

/// One recorded status change.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct StatusChange {
    /// Whose status changed.
    pub agent: Agent,
    /// Status before.
    pub from: AgentStatus,
    /// Status after.
    pub to: AgentStatus,
    /// Who changed it.
    pub changed_by: Agent,
    /// When.
    pub at: DateTime,
}

/// A change of a subscribed cockpit: applied in order, messages always end equal to a fresh
/// `cockpit` query.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct CockpitUpdate {
    /// The organization's local day of the daily columns.
    pub day: Date,
    /// When the daily columns were last refreshed.
    pub refreshed_at: DateTime,
    /// Seconds between refreshes of the daily columns.
    pub refresh_interval_seconds: i32,
    /// The server's clock when this message was sent.
    pub server_now: DateTime,
    /// Rows that changed (all rows in the first message); each row's status says its table.
    pub rows: Vec<AgentRow>,
    /// Agents that left the scope.
    pub removed: Vec<async_graphql::ID>,
}
