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

/// One agent's line in a cockpit: live status and count, today's daily columns.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentRow {
    /// The agent.
    pub agent: Agent,
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
    /// Product name.
    pub product_name: String,
    /// Rows in Turkish name order.
    pub rows: Vec<AgentRow>,
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
