//! `cockpit demo`: a demo organization with Turkish names, several products and channels,
//! a morning of history and live traffic, served with ready tokens.

use std::time::Duration;

use crate::db::Pool;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ingest::store_json;
use crate::model::{AgentStatus, Channel};
use crate::store;

/// The demo organization's id.
pub const ORG: &str = "demo";
/// The supervisor whose token the demo prints.
pub const SUPERVISOR: &str = "ayse";
/// The admin whose token the demo prints.
pub const ADMIN: &str = "mehmet";

const PRODUCTS: [(&str, &str); 3] = [
    ("mobil", "Mobil Uygulama"),
    ("web", "Web Mağaza"),
    ("kargo", "Kargo Takip"),
];
const AGENTS: [(&str, &str, &[&str]); 12] = [
    ("okan", "Okan Yılmaz", &["mobil", "web"]),
    ("ipek", "İpek Demir", &["mobil"]),
    ("ozge", "Özge Kaya", &["mobil", "kargo"]),
    ("cagri", "Çağrı Şahin", &["web"]),
    ("isil", "Işıl Aydın", &["web", "kargo"]),
    ("cem", "Cem Arslan", &["mobil"]),
    ("deniz", "Deniz Çelik", &["kargo"]),
    ("oguz", "Oğuz Koç", &["web"]),
    ("sule", "Şule Yıldız", &["mobil", "web", "kargo"]),
    ("gulsen", "Gülşen Öztürk", &["kargo"]),
    ("umit", "Ümit Aksoy", &["mobil"]),
    ("zeynep", "Zeynep Polat", &["web"]),
];
/// Entity events carry a fixed instant, so that a second demo run re-sends duplicates.
const SEEDED_AT: &str = "2025-01-01T00:00:00Z";

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Creates (or re-creates, idempotently) the demo organization, its team and statuses.
pub async fn seed(pool: &Pool) -> Result<(), ApiError> {
    let mut events = vec![
        json!({"id": "demo-org", "type": "organization_upserted", "at": SEEDED_AT,
                                 "name": "Demo Destek A.Ş.", "timezone": "Europe/Istanbul"}),
    ];
    for (id, name) in PRODUCTS {
        events.push(
            json!({"id": format!("demo-product-{id}"), "type": "product_upserted",
                           "at": SEEDED_AT, "product": id, "name": name}),
        );
    }
    for (id, name, products) in AGENTS {
        events.push(
            json!({"id": format!("demo-agent-{id}"), "type": "agent_upserted", "at": SEEDED_AT,
                           "agent": id, "name": name, "role": "AGENT", "products": products}),
        );
    }
    let all: Vec<&str> = PRODUCTS.iter().map(|p| p.0).collect();
    events.push(json!({"id": "demo-agent-ayse", "type": "agent_upserted", "at": SEEDED_AT,
                       "agent": SUPERVISOR, "name": "Ayşe Erdoğan", "role": "SUPERVISOR", "products": all}));
    events.push(
        json!({"id": "demo-agent-mehmet", "type": "agent_upserted", "at": SEEDED_AT,
                       "agent": ADMIN, "name": "Mehmet Doğan", "role": "ADMIN", "products": []}),
    );
    let report = store_json(pool, ORG, &json!(events)).await?;
    if let Some(r) = report.rejected.first() {
        tracing::warn!(code = %r.code, message = %r.message, "demo seed event rejected");
    }
    let statuses = [
        AgentStatus::Online,
        AgentStatus::Online,
        AgentStatus::Online,
        AgentStatus::Break,
        AgentStatus::Online,
        AgentStatus::Invisible,
        AgentStatus::Online,
        AgentStatus::Offline,
        AgentStatus::Online,
        AgentStatus::Break,
        AgentStatus::Online,
        AgentStatus::Online,
    ];
    for ((id, _, _), status) in AGENTS.iter().zip(statuses) {
        store::set_agent_status(pool, ORG, id, id, status).await?;
    }
    store::set_agent_status(pool, ORG, SUPERVISOR, SUPERVISOR, AgentStatus::Online).await?;
    Ok(())
}

/// A conversation of the simulation.
struct Conversation {
    id: String,
    product: &'static str,
    channel: &'static str,
    assignee: Option<&'static str>,
    stage: Stage,
    due: DateTime<Utc>,
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Assign,
    Reply,
    Work,
    /// The customer wrote again; the assignee's answer is due.
    Answer,
    Reactivate,
    Done,
}

/// Simulated traffic: conversations opened, queued, assigned, answered (some past the
/// first-response target), written to again and answered (some after long waits),
/// forwarded, resolved and re-activated, and agents taking breaks, in real time.
pub struct Traffic {
    rng: StdRng,
    run: String,
    serial: u64,
    open: Vec<Conversation>,
}

/// A delay of `usual` seconds, or with probability `rarely` one of `rare` seconds.
fn mostly(
    rng: &mut StdRng,
    usual: std::ops::Range<i64>,
    rarely: f64,
    rare: std::ops::Range<i64>,
) -> chrono::Duration {
    let seconds = if rng.gen_bool(rarely) {
        rng.gen_range(rare)
    } else {
        rng.gen_range(usual)
    };
    chrono::Duration::seconds(seconds)
}

impl Traffic {
    /// A fresh simulation (ids unique to this run).
    pub fn new() -> Self {
        Traffic {
            rng: StdRng::from_entropy(),
            run: Utc::now().format("%Y%m%d%H%M%S").to_string(),
            serial: 0,
            open: Vec::new(),
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("demo-{}-{prefix}{}", self.run, self.serial)
    }

    fn agent_for(&mut self, product: &str) -> &'static str {
        let members: Vec<&'static str> = AGENTS
            .iter()
            .filter(|a| a.2.contains(&product))
            .map(|a| a.0)
            .collect();
        members.choose(&mut self.rng).copied().unwrap_or("okan")
    }

    fn start(&mut self, now: DateTime<Utc>, events: &mut Vec<Value>) {
        let product = PRODUCTS
            .choose(&mut self.rng)
            .map(|p| p.0)
            .unwrap_or("mobil");
        let channel = Channel::ALL
            .choose(&mut self.rng)
            .map_or("LIVE_CHAT", |c| c.as_str());
        let id = self.next_id("c");
        events.push(
            json!({"id": self.next_id("e"), "type": "conversation_opened", "at": at(now),
                           "conversation": id, "product": product, "channel": channel}),
        );
        // Most are taken within seconds; some sit in the queue for minutes.
        let due = now + mostly(&mut self.rng, 2..20, 0.1, 60..300);
        self.open.push(Conversation {
            id,
            product,
            channel,
            assignee: None,
            stage: Stage::Assign,
            due,
        });
    }

    /// Advances every conversation due at `now`; the events it produced.
    fn step(&mut self, now: DateTime<Utc>) -> Vec<Value> {
        let mut events = Vec::new();
        let mut open = std::mem::take(&mut self.open);
        for c in open.iter_mut().filter(|c| c.due <= now) {
            let e = self.next_id("e");
            match c.stage {
                Stage::Assign => {
                    let agent = self.agent_for(c.product);
                    events.push(json!({"id": e, "type": "assigned", "at": at(now), "conversation": c.id, "agent": agent}));
                    c.assignee = Some(agent);
                    c.stage = Stage::Reply;
                    // First responses around the 60 s target, some far past it.
                    c.due = now + mostly(&mut self.rng, 15..150, 0.15, 240..900);
                }
                Stage::Reply => {
                    events.push(json!({"id": e, "type": "agent_message", "at": at(now), "conversation": c.id, "agent": c.assignee}));
                    c.stage = Stage::Work;
                    c.due = now + chrono::Duration::seconds(self.rng.gen_range(60..900));
                }
                Stage::Work if self.rng.gen_bool(0.08) => {
                    let to = self.agent_for(c.product);
                    if Some(to) != c.assignee {
                        events.push(json!({"id": e, "type": "assigned", "at": at(now), "conversation": c.id, "agent": to, "by": c.assignee}));
                        c.assignee = Some(to);
                        c.stage = Stage::Reply;
                    }
                    c.due = now + chrono::Duration::seconds(self.rng.gen_range(15..120));
                }
                Stage::Work if self.rng.gen_bool(0.4) => {
                    // The customer writes again and waits for an answer.
                    events.push(json!({"id": e, "type": "customer_message", "at": at(now), "conversation": c.id}));
                    c.stage = Stage::Answer;
                    c.due = now + mostly(&mut self.rng, 10..180, 0.15, 300..1200);
                }
                Stage::Answer => {
                    events.push(json!({"id": e, "type": "agent_message", "at": at(now), "conversation": c.id, "agent": c.assignee}));
                    c.stage = Stage::Work;
                    c.due = now + chrono::Duration::seconds(self.rng.gen_range(60..600));
                }
                Stage::Work => {
                    events.push(json!({"id": e, "type": "resolved", "at": at(now), "conversation": c.id, "agent": c.assignee}));
                    let reopenable = matches!(c.channel, "WHATSAPP" | "FACEBOOK" | "INSTAGRAM");
                    if reopenable && self.rng.gen_bool(0.1) {
                        c.stage = Stage::Reactivate;
                        c.due = now + chrono::Duration::seconds(self.rng.gen_range(60..600));
                    } else {
                        c.stage = Stage::Done;
                    }
                }
                Stage::Reactivate => {
                    let agent = self.agent_for(c.product);
                    events.push(json!({"id": e, "type": "customer_message", "at": at(now), "conversation": c.id}));
                    let later = now + chrono::Duration::milliseconds(500);
                    events.push(json!({"id": self.next_id("e"), "type": "reactivated", "at": at(later), "conversation": c.id, "agent": agent}));
                    c.assignee = Some(agent);
                    c.stage = Stage::Reply;
                    c.due = later + chrono::Duration::seconds(self.rng.gen_range(15..180));
                }
                Stage::Done => {}
            }
        }
        open.retain(|c| c.stage != Stage::Done);
        self.open = open;
        events
    }

    /// A morning's worth of conversations that began before `now`, simulated minute by
    /// minute up to `now`.
    pub fn history(&mut self, now: DateTime<Utc>, minutes: i64) -> Vec<Value> {
        let mut events = Vec::new();
        let mut t = now - chrono::Duration::minutes(minutes);
        while t < now {
            if self.rng.gen_bool(0.7) {
                self.start(t, &mut events);
            }
            events.extend(self.step(t));
            t += chrono::Duration::seconds(30);
        }
        events
    }

    /// One tick of live traffic at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Value> {
        let mut events = Vec::new();
        if self.rng.gen_bool(0.5) {
            self.start(now, &mut events);
        }
        events.extend(self.step(now));
        events
    }

    /// Sometimes an agent goes on a break or comes back.
    pub fn status_change(&mut self) -> Option<(&'static str, AgentStatus)> {
        if !self.rng.gen_bool(0.1) {
            return None;
        }
        let agent = AGENTS.choose(&mut self.rng)?.0;
        let status = if self.rng.gen_bool(0.6) {
            AgentStatus::Online
        } else {
            AgentStatus::Break
        };
        Some((agent, status))
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

/// Seeds history, then plays live traffic every second until the task is dropped.
pub async fn run_traffic(pool: Pool) {
    let mut traffic = Traffic::new();
    let history = traffic.history(Utc::now(), 90);
    for chunk in history.chunks(500) {
        if let Err(e) = store_json(&pool, ORG, &json!(chunk)).await {
            tracing::warn!(error = %e, "demo history batch failed");
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let events = traffic.tick(Utc::now());
        if !events.is_empty() {
            match store_json(&pool, ORG, &json!(events)).await {
                Ok(report) => {
                    for r in report.rejected {
                        tracing::debug!(code = %r.code, message = %r.message, "demo event rejected");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "demo traffic batch failed"),
            }
        }
        if let Some((agent, status)) = traffic.status_change() {
            if let Err(e) = store::set_agent_status(&pool, ORG, agent, agent, status).await {
                tracing::warn!(error = %e, "demo status change failed");
            }
        }
    }
}
