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
    /// The row's place in the cockpit's one order: by name in Turkish collation (ICU
    /// `tr-TR`), then by id, numbered from 0 over the whole scope (all four tables). List
    /// each table by ascending `position`; no client-side collation needed. A rename, or an
    /// agent entering or leaving the scope, re-sends the rows whose position moved.
    pub position: i32,
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
    /// Seconds in each status today (the organization's local day), as of the `serverNow`
    /// of the answer or message that carried this row: a client adds the time elapsed
    /// since then to the current status (a row is not re-sent as the clock moves).
    pub seconds_in_status_today: StatusDurations,
    /// Active conversations of the agent (in scope) in which a customer waits for an
    /// answer: a message not yet answered by any agent reply or resolution.
    pub unanswered_conversations: i32,
    /// Since when the longest-waiting of those customers waits; null when none.
    pub oldest_unanswered_since: Option<DateTime>,
    /// Active assignments of the agent (in scope) without a first response, started more
    /// than `serviceLevelSeconds` ago. Live: it rises within a second of the crossing.
    pub overdue_first_responses: i32,
    /// First responses today whose duration is at most `serviceLevelSeconds`.
    pub first_responses_within_target: i32,
    /// Service level, 0..1: `firstResponsesWithinTarget` ÷ (`firstResponseCount` +
    /// `overdueFirstResponses`); null when both are 0.
    pub service_level: Option<f64>,
}

/// Seconds spent in each status.
#[derive(SimpleObject, Clone, Copy, Debug, PartialEq)]
pub struct StatusDurations {
    /// Seconds ONLINE.
    pub online: i32,
    /// Seconds on BREAK.
    pub on_break: i32,
    /// Seconds INVISIBLE.
    pub invisible: i32,
    /// Seconds OFFLINE.
    pub offline: i32,
}

/// The queue of a cockpit's scope: active conversations not assigned to anyone.
#[derive(SimpleObject, Clone, Copy, Debug, PartialEq)]
pub struct Queue {
    /// How many conversations wait in the queue.
    pub queued: i32,
    /// When the longest-waiting of them was opened; null when the queue is empty.
    pub oldest_queued_since: Option<DateTime>,
}

/// An active conversation, as the drill-down of an agent shows it.
#[derive(SimpleObject, Clone, Debug, PartialEq)]
pub struct ConversationRow {
    /// Conversation id (the platform's).
    pub id: async_graphql::ID,
    /// Its product.
    pub product: Product,
    /// Its channel.
    pub channel: Channel,
    /// When the customer opened it.
    pub opened_at: DateTime,
    /// Start of the current assignment.
    pub assigned_at: Option<DateTime>,
    /// The first customer message not yet answered by an agent; null when none.
    pub waiting_since: Option<DateTime>,
    /// The assignee's first reply in the current assignment; null if none yet.
    pub first_response_at: Option<DateTime>,
    /// The customer's latest message (opening the conversation counts).
    pub last_customer_message_at: Option<DateTime>,
    /// The latest reply of any agent; null if none.
    pub last_agent_message_at: Option<DateTime>,
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
    /// Seconds between refreshes of the daily columns.
    pub refresh_interval_seconds: i32,
    /// After this instant the daily columns are stale unless refreshed again
    /// (`refreshedAt` + 3 × `refreshIntervalSeconds`, the server's one rule): `/readyz`
    /// reports not ready then and a screen warns. Compare it with the server's clock
    /// (`serverNow` plus the time elapsed since the message).
    pub stale_after: DateTime,
    /// The server's clock when this answer was made, so that a client with a skewed clock
    /// still shows true durations.
    pub server_now: DateTime,
    /// The organization's first-response target, seconds.
    pub service_level_seconds: i32,
    /// The queue of this product (and channel).
    pub queue: Queue,
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
            position: row.position,
            avg_first_response_seconds: row.avg_first_response_seconds,
            avg_resolution_seconds: row.avg_resolution_seconds,
            active_conversations: row.active_conversations,
            resolved_conversations: row.resolved_conversations,
            reactivated_conversations: row.reactivated_conversations,
            forwarded_conversations: row.forwarded_conversations,
            first_response_count: row.first_response_count,
            resolution_count: row.resolution_count,
            seconds_in_status_today: row.seconds_in_status_today.into(),
            unanswered_conversations: row.unanswered_conversations,
            oldest_unanswered_since: row.oldest_unanswered_since.map(DateTime),
            overdue_first_responses: row.overdue_first_responses,
            first_responses_within_target: row.first_responses_within_target,
            service_level: row.service_level,
        }
    }
}

impl From<model::StatusDurations> for StatusDurations {
    fn from(d: model::StatusDurations) -> Self {
        StatusDurations {
            online: d.online,
            on_break: d.on_break,
            invisible: d.invisible,
            offline: d.offline,
        }
    }
}

impl From<model::Queue> for Queue {
    fn from(q: model::Queue) -> Self {
        Queue {
            queued: q.queued,
            oldest_queued_since: q.oldest_queued_since.map(DateTime),
        }
    }
}

impl From<model::ConversationRow> for ConversationRow {
    fn from(c: model::ConversationRow) -> Self {
        ConversationRow {
            id: c.id.into(),
            product: Product {
                id: c.product.0.into(),
                name: c.product.1,
            },
            channel: c.channel.into(),
            opened_at: DateTime(c.opened_at),
            assigned_at: c.assigned_at.map(DateTime),
            waiting_since: c.waiting_since.map(DateTime),
            first_response_at: c.first_response_at.map(DateTime),
            last_customer_message_at: c.last_customer_message_at.map(DateTime),
            last_agent_message_at: c.last_agent_message_at.map(DateTime),
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
    /// After this instant the daily columns are stale unless refreshed again
    /// (`refreshedAt` + 3 × `refreshIntervalSeconds`, the server's one rule): `/readyz`
    /// reports not ready then and a screen warns. Compare it with the server's clock
    /// (`serverNow` plus the time elapsed since the message).
    pub stale_after: DateTime,
    /// The server's clock at the reading this message comes from: the live figures of its
    /// rows are as of this instant.
    pub server_now: DateTime,
    /// The organization's first-response target, seconds.
    pub service_level_seconds: i32,
    /// The queue of the subscribed product (and channel), now.
    pub queue: Queue,
    /// Rows that changed (all rows in the first message); each row's status says its table.
    pub rows: Vec<AgentRow>,
    /// Agents that left the scope.
    pub removed: Vec<async_graphql::ID>,
}
