//! The domain: what the cockpit is about, in plain types that storage, live push and
//! ingest use and the API layers (GraphQL, HTTP) mirror. Nothing here knows of GraphQL or
//! HTTP.

use chrono::{DateTime, NaiveDate, Utc};

/// An agent's availability.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
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

impl AgentStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "ONLINE",
            AgentStatus::Offline => "OFFLINE",
            AgentStatus::Break => "BREAK",
            AgentStatus::Invisible => "INVISIBLE",
        }
    }

    /// From the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ONLINE" => Some(AgentStatus::Online),
            "OFFLINE" => Some(AgentStatus::Offline),
            "BREAK" => Some(AgentStatus::Break),
            "INVISIBLE" => Some(AgentStatus::Invisible),
            _ => None,
        }
    }
}

/// What an agent may do: the stored role decides, not a token's claim.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads everything of the organization; changes others' status unless OFFLINE.
    Admin,
    /// Same powers as an admin in the cockpit.
    Supervisor,
    /// Reads `me`, changes their own status.
    Agent,
}

impl Role {
    /// Whether this role reads the whole organization (ADMIN, SUPERVISOR).
    pub fn is_supervising(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }

    /// From the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ADMIN" => Some(Role::Admin),
            "SUPERVISOR" => Some(Role::Supervisor),
            "AGENT" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// A conversation channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
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

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 6] = [
        Channel::LiveChat,
        Channel::InApp,
        Channel::Whatsapp,
        Channel::Facebook,
        Channel::Instagram,
        Channel::Twitter,
    ];

    /// From the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::LiveChat => "LIVE_CHAT",
            Channel::InApp => "IN_APP",
            Channel::Whatsapp => "WHATSAPP",
            Channel::Facebook => "FACEBOOK",
            Channel::Instagram => "INSTAGRAM",
            Channel::Twitter => "TWITTER",
        }
    }
}

/// A support agent as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// Agent id (the platform's).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Stored role.
    pub role: Role,
    /// Current status.
    pub status: AgentStatus,
    /// When the agent entered the current status.
    pub status_since: DateTime<Utc>,
}

/// Seconds an agent spent in each status during a local day (spec 3.5, time in status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

impl StatusDurations {
    /// The same durations `seconds` of the clock later, spent in `status`: what the SQL
    /// reading (whole seconds of the clock, spec 3.5) gives at a later instant of the same
    /// local day when the status did not change. A live cockpit that re-read only the rows
    /// a change touched brings the other rows to the new reading's instant with it.
    pub fn advanced(mut self, status: AgentStatus, seconds: i64) -> StatusDurations {
        let seconds = i32::try_from(seconds.max(0)).unwrap_or(i32::MAX);
        let field = match status {
            AgentStatus::Online => &mut self.online,
            AgentStatus::Break => &mut self.on_break,
            AgentStatus::Invisible => &mut self.invisible,
            AgentStatus::Offline => &mut self.offline,
        };
        *field = field.saturating_add(seconds);
        self
    }
}

/// One agent's line in a cockpit: live status and counts, today's daily columns.
///
/// Two readings of a row are equal when they differ only by the passage of time:
/// `seconds_in_status_today` grows with the clock in the current status, and is otherwise
/// fixed by the status, `status_since` and the day, which are compared. So a live cockpit
/// re-sends a row when something happened to it, not every time it is read; a client adds
/// the time elapsed since the message's `serverNow` to the current status.
#[derive(Clone, Debug)]
pub struct AgentRow {
    /// The agent.
    pub agent: Agent,
    /// The row's place in the cockpit's one order (by name in Turkish collation, then id;
    /// 0 first), over the whole scope: a table lists its rows by it. The cockpit statement
    /// owns the order; this number carries it to clients.
    pub position: i32,
    /// Mean first response today, seconds; `None` without a first response today.
    pub avg_first_response_seconds: Option<f64>,
    /// Mean resolution time today, seconds; `None` without a timed resolution today.
    pub avg_resolution_seconds: Option<f64>,
    /// Conversations active on the agent now (in the cockpit's product and channel).
    pub active_conversations: i32,
    /// Resolutions the agent marked today.
    pub resolved_conversations: i32,
    /// Archived conversations the agent re-activated today.
    pub reactivated_conversations: i32,
    /// Manual assignments by the agent to someone else today.
    pub forwarded_conversations: i32,
    /// First responses behind the first-response average.
    pub first_response_count: i32,
    /// Timed resolutions behind the resolution average.
    pub resolution_count: i32,
    /// Active conversations of the agent in which a customer waits for an answer.
    pub unanswered_conversations: i32,
    /// The earliest `waiting_since` of those; `None` when none.
    pub oldest_unanswered_since: Option<DateTime<Utc>>,
    /// Active assignments without a first response, started longer ago than the target.
    pub overdue_first_responses: i32,
    /// First responses today within the organization's target.
    pub first_responses_within_target: i32,
    /// Within ÷ (first responses today + overdue now); `None` when both are 0.
    pub service_level: Option<f64>,
    /// Time in each status today, up to the moment of the reading.
    pub seconds_in_status_today: StatusDurations,
    /// The next instant one of the agent's assignments turns overdue if nothing happens
    /// before (the live cockpit re-reads then); not shown, not compared.
    pub next_overdue_at: Option<DateTime<Utc>>,
}

impl PartialEq for AgentRow {
    fn eq(&self, other: &Self) -> bool {
        // Every field but the clock-driven `seconds_in_status_today` (see the type's doc).
        let AgentRow {
            agent,
            position,
            avg_first_response_seconds,
            avg_resolution_seconds,
            active_conversations,
            resolved_conversations,
            reactivated_conversations,
            forwarded_conversations,
            first_response_count,
            resolution_count,
            unanswered_conversations,
            oldest_unanswered_since,
            overdue_first_responses,
            first_responses_within_target,
            service_level,
            seconds_in_status_today: _,
            next_overdue_at: _,
        } = self;
        *agent == other.agent
            && *position == other.position
            && *avg_first_response_seconds == other.avg_first_response_seconds
            && *avg_resolution_seconds == other.avg_resolution_seconds
            && *active_conversations == other.active_conversations
            && *resolved_conversations == other.resolved_conversations
            && *reactivated_conversations == other.reactivated_conversations
            && *forwarded_conversations == other.forwarded_conversations
            && *first_response_count == other.first_response_count
            && *resolution_count == other.resolution_count
            && *unanswered_conversations == other.unanswered_conversations
            && *oldest_unanswered_since == other.oldest_unanswered_since
            && *overdue_first_responses == other.overdue_first_responses
            && *first_responses_within_target == other.first_responses_within_target
            && *service_level == other.service_level
    }
}

/// How many refresh intervals the daily columns may age before they count as stale.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// The instant after which daily columns refreshed at `refreshed_at` are stale, with a
/// refresh every `interval`: the one rule for `/readyz`, the API's `staleAfter` and the
/// screen's warning.
pub fn stale_after(refreshed_at: DateTime<Utc>, interval: std::time::Duration) -> DateTime<Utc> {
    let limit = interval.saturating_mul(STALE_AFTER_INTERVALS);
    refreshed_at + chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX)
}

/// The queue of a cockpit scope: active conversations never assigned (spec 3.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// How many.
    pub queued: i32,
    /// When the longest-waiting of them was opened; `None` when the queue is empty.
    pub oldest_queued_since: Option<DateTime<Utc>>,
}

/// A product's cockpit as read: its day, refresh time, name and rows.
#[derive(Clone, Debug, PartialEq)]
pub struct CockpitData {
    /// The organization's local today.
    pub day: NaiveDate,
    /// When the organization's next local day starts (the daily columns reset).
    pub next_day_at: DateTime<Utc>,
    /// Last refresh of the daily columns.
    pub refreshed_at: DateTime<Utc>,
    /// The database's clock at the reading: what every live figure is as of.
    pub server_now: DateTime<Utc>,
    /// Product name.
    pub product_name: String,
    /// The organization's first-response target, seconds.
    pub service_level_seconds: i32,
    /// The scope's queue.
    pub queue: Queue,
    /// The next instant an assignment of the scope turns overdue if nothing happens
    /// before (the live cockpit re-reads then); `None` when none is pending.
    pub next_overdue_at: Option<DateTime<Utc>>,
    /// Rows in the cockpit's order (their `position`).
    pub rows: Vec<AgentRow>,
}

/// An active conversation of an agent, as the drill-down shows it (spec 3.5).
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationRow {
    /// Conversation id.
    pub id: String,
    /// Product id and name.
    pub product: (String, String),
    /// Channel.
    pub channel: Channel,
    /// When the customer opened it.
    pub opened_at: DateTime<Utc>,
    /// Start of the current assignment.
    pub assigned_at: Option<DateTime<Utc>>,
    /// The first customer message not yet answered.
    pub waiting_since: Option<DateTime<Utc>>,
    /// The assignee's first reply in the current assignment.
    pub first_response_at: Option<DateTime<Utc>>,
    /// The customer's latest message.
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// The latest reply of any agent.
    pub last_agent_message_at: Option<DateTime<Utc>>,
}

/// One recorded status change.
#[derive(Clone, Debug, PartialEq)]
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
    pub at: DateTime<Utc>,
}

/// What a status change decided (spec 3.3, enforced in one SQL statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    /// Changed and recorded.
    Changed,
    /// Already in that status: nothing recorded.
    Unchanged,
    /// The actor is no agent of the organization.
    Unauthenticated,
    /// The target is no agent of the organization.
    NotFound,
    /// An AGENT acting on someone else.
    Forbidden,
    /// Someone else is OFFLINE.
    AgentOffline,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_advance_in_the_running_status_only() {
        let d = StatusDurations {
            online: 10,
            on_break: 20,
            invisible: 0,
            offline: 5,
        };
        assert_eq!(
            d.advanced(AgentStatus::Break, 7),
            StatusDurations { on_break: 27, ..d }
        );
        assert_eq!(d.advanced(AgentStatus::Online, -3), d, "never backwards");
        assert_eq!(d.advanced(AgentStatus::Offline, 0), d);
    }
}
