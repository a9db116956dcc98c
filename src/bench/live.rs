//! `cockpit bench live`: P5 (the live path at 1,000 subscribers over two instances), P7's
//! smoke (RSS of each instance) and P10 (status changes while ingest runs).
//!
//! Two `cockpit serve` processes share the bench database. Subscribers (graphql-transport-ws,
//! as a screen) follow a mix of scopes of organization 1 — three products, all channels or
//! one, with or without a name search — spread over both instances. Agents then change
//! their status at a steady rate through either instance while the platform's reference
//! traffic is ingested; each subscriber records when it sees each change. A change's
//! instant is its `statusSince` (the database's clock at the change, same machine), so the
//! latency is from the change to the client. Afterwards every subscriber's state is
//! compared with the cockpit statement run for its scope.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use super::stats::Summary;
use super::*;

/// What `cockpit bench live` runs.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Subscribers, over both instances.
    pub subs: usize,
    /// Status changes (each agent of the organization changes at most once per 200).
    pub changes: usize,
    /// Status changes a second.
    pub rate: f64,
    /// Seconds of P10 (4 senders ingesting 1,000-event batches while statuses change).
    pub p10_seconds: u64,
    /// Conversations a day of the bench database (the reference rate unless smaller).
    pub per_day: i32,
    /// The `cockpit` binary to run as the two instances (default: this one).
    pub binary: Option<PathBuf>,
}

/// The subscription every subscriber runs (the screen's fields that a change moves).
const SUBSCRIPTION: &str = "subscription($p: ID!, $c: Channel, $s: String) {
  cockpit(productId: $p, channel: $c, search: $s) {
    serverNow removed
    rows { agent { id status statusSince } position activeConversations resolvedConversations
           firstResponseCount unansweredConversations }
  }
}";

/// A subscriber's WebSocket read buffer, in bytes (a delta message is ~1 KiB).
const READ_BUFFER: usize = 8 * 1024;

/// One `cockpit serve` process.
struct Instance {
    child: tokio::process::Child,
    port: u16,
}

impl Instance {
    async fn start(binary: &PathBuf, url: &str) -> Result<Instance, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = tokio::process::Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", url)
            .env("COCKPIT_BIND", format!("127.0.0.1:{port}"))
            .env("COCKPIT_JWT_SECRET", SECRET)
            // Every subscriber comes from 127.0.0.1: no per-address share.
            .env("COCKPIT_MAX_CONNECTIONS_PER_PEER", "0")
            .env("COCKPIT_MAX_CONNECTIONS", "30000")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let instance = Instance { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if ready(port).await {
                return Ok(instance);
            }
            if Instant::now() > deadline {
                return Err(format!("instance on port {port} not ready in 120 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

async fn ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut socket) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if socket.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.1 200")
}

/// A subscriber's scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SubScope {
    product: String,
    channel: Option<&'static str>,
    search: Option<&'static str>,
}

fn scope_of(i: usize) -> SubScope {
    SubScope {
        product: format!("p{}", 1 + i % 3),
        channel: match i % 7 {
            0 => Some("LIVE_CHAT"),
            1 => Some("WHATSAPP"),
            _ => None,
        },
        search: match i % 11 {
            0 => Some("a"),
            1 => Some("ze"),
            _ => None,
        },
    }
}

/// What a subscriber saw: its rows now, and each status change with its arrival.
#[derive(Default)]
struct Seen {
    rows: HashMap<String, SeenRow>,
    messages: u64,
}

/// A graphql-transport-ws message as the bench reads it: only what it checks is parsed
/// (the client shares the two cores with the instances it measures).
#[derive(serde::Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    payload: Option<FramePayload>,
}

#[derive(serde::Deserialize)]
struct FramePayload {
    data: Option<FrameData>,
}

#[derive(serde::Deserialize)]
struct FrameData {
    cockpit: SeenUpdate,
}

#[derive(serde::Deserialize)]
struct SeenUpdate {
    #[serde(default)]
    rows: Vec<SeenRow>,
    #[serde(default)]
    removed: Vec<String>,
}

/// A row as [`SUBSCRIPTION`] selects it.
#[derive(serde::Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct SeenRow {
    agent: SeenAgent,
    position: i32,
    active_conversations: i32,
    resolved_conversations: i32,
    first_response_count: i32,
    unanswered_conversations: i32,
}

#[derive(serde::Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct SeenAgent {
    id: String,
    status: String,
    status_since: String,
}

/// A change as a subscriber saw it: (agent, statusSince, when it arrived).
type Observation = (String, String, DateTime<Utc>);

/// A subscriber until its socket ends. `ready` hears of its first message, or of the error
/// that came before it; at most `opening` subscribers are between their connect and their
/// first message at once (a burst of thousands would only time out on the server's init
/// deadline, with the bench itself on the same two cores).
async fn subscriber(
    port: u16,
    token: String,
    scope: SubScope,
    seen: Arc<Mutex<Seen>>,
    observed: Arc<Mutex<Vec<Observation>>>,
    opening: Arc<tokio::sync::Semaphore>,
    ready: tokio::sync::oneshot::Sender<Result<(), String>>,
) -> Result<(), String> {
    let mut ready = Some(ready);
    let permit = opening.acquire_owned().await.ok();
    let outcome = subscribed(port, token, scope, seen, observed, &mut ready, permit).await;
    if let (Err(e), Some(ready)) = (&outcome, ready.take()) {
        let _ = ready.send(Err(e.clone()));
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn subscribed(
    port: u16,
    token: String,
    scope: SubScope,
    seen: Arc<Mutex<Seen>>,
    observed: Arc<Mutex<Vec<Observation>>>,
    ready: &mut Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    mut permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), String> {
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        axum::http::HeaderValue::from_static("graphql-transport-ws"),
    );
    // A small read buffer: tungstenite zeroes its whole read buffer (128 KiB by default)
    // before every read, which made the bench client the machine's busiest process.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    let send = |v: serde_json::Value| Message::Text(v.to_string().into());
    socket
        .send(send(serde_json::json!({"type": "connection_init",
            "payload": {"Authorization": format!("Bearer {token}")}})))
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send(send(
            serde_json::json!({"id": "1", "type": "subscribe", "payload": {
            "query": SUBSCRIPTION,
            "variables": {"p": scope.product, "c": scope.channel, "s": scope.search}}}),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let mut first = true;
    while let Some(message) = socket.next().await {
        let text = match message.map_err(|e| e.to_string())? {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let arrived = Utc::now();
        let frame: Frame = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        match frame.kind.as_str() {
            "next" => {}
            "connection_ack" | "ping" | "pong" => continue,
            _ => return Err(format!("unexpected message {text}")),
        }
        let update = frame
            .payload
            .and_then(|p| p.data)
            .ok_or_else(|| format!("a message without data: {text}"))?
            .cockpit;
        let changes = {
            let mut seen = seen.lock().map_err(|e| e.to_string())?;
            seen.messages += 1;
            let mut changes = Vec::new();
            for row in update.rows {
                // A change of a row the subscriber holds: a row entering the scope (again)
                // is no delivery of a change, however old its statusSince.
                let known = seen.rows.get(&row.agent.id).map(|r| &r.agent.status_since);
                if !first && known.is_some_and(|since| *since != row.agent.status_since) {
                    changes.push((
                        row.agent.id.clone(),
                        row.agent.status_since.clone(),
                        arrived,
                    ));
                }
                seen.rows.insert(row.agent.id.clone(), row);
            }
            for id in &update.removed {
                seen.rows.remove(id);
            }
            changes
        };
        if !changes.is_empty() {
            observed.lock().map_err(|e| e.to_string())?.extend(changes);
        }
        if first {
            first = false;
            permit.take();
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(()));
            }
        }
    }
    Ok(())
}

/// What the live benches share: the bench database, two instances, and subscribers over
/// both that have their first message.
struct Rig {
    pool: Pool,
    instances: [Instance; 2],
    keys: crate::auth::Keys,
    observed: Arc<Mutex<Vec<Observation>>>,
    subscribers: Vec<Subscriber>,
}

/// A subscriber: its scope, what it saw, its task.
type Subscriber = (
    SubScope,
    Arc<Mutex<Seen>>,
    tokio::task::JoinHandle<Result<(), String>>,
);

impl Rig {
    async fn start(
        base_url: &str,
        per_day: i32,
        binary: &Option<PathBuf>,
        subs: usize,
    ) -> Result<Rig, String> {
        let (pool, url) = prepare_copy(base_url, 1, per_day, ACTIVE.min(per_day / 10)).await?;
        let binary = match binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(|e| e.to_string())?,
        };
        let instances = [
            Instance::start(&binary, &url).await?,
            Instance::start(&binary, &url).await?,
        ];
        let keys = crate::auth::Keys::new(SECRET);
        let supervisor = keys.issue("org1", "a1", crate::auth::TokenRole::Supervisor, TOKEN_LIFE);
        // Subscribers, alternating between the instances.
        let observed: Arc<Mutex<Vec<Observation>>> = Arc::default();
        let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
        let mut readies = Vec::with_capacity(subs);
        let mut subscribers = Vec::new();
        let started = Instant::now();
        for i in 0..subs {
            let seen: Arc<Mutex<Seen>> = Arc::default();
            let scope = scope_of(i);
            let (ready, readied) = tokio::sync::oneshot::channel();
            readies.push(readied);
            let task = tokio::spawn(subscriber(
                instances[i % 2].port,
                supervisor.clone(),
                scope.clone(),
                seen.clone(),
                observed.clone(),
                opening.clone(),
                ready,
            ));
            subscribers.push((scope, seen, task));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut failed = Vec::new();
        for readied in readies {
            match tokio::time::timeout_at(deadline, readied).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => failed.push(e),
                Ok(Err(_)) => failed.push("ended before its first message".into()),
                Err(_) => {
                    return Err("subscribers did not all get their first message in 600 s".into())
                }
            }
        }
        if let Some(first) = failed.first() {
            return Err(format!(
                "{} of {subs} subscribers failed; the first: {first}",
                failed.len()
            ));
        }
        println!(
            "{subs} subscribers over 2 instances, first messages in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Rig {
            pool,
            instances,
            keys,
            observed,
            subscribers,
        })
    }
}

/// Subscribers between their connect and their first message at once.
const OPENING: usize = 200;

/// Life of the benches' tokens.
const TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);

/// `cockpit bench live`.
pub async fn live(base_url: &str, options: LiveOptions) -> Result<(), String> {
    let Rig {
        pool,
        instances,
        keys,
        observed,
        subscribers,
    } = Rig::start(base_url, options.per_day, &options.binary, options.subs).await?;
    let hour = TOKEN_LIFE;

    // The platform's reference traffic for organization 1 meanwhile, a minute's worth a
    // second (bench.minute), through either instance.
    let stop = tokio_util::sync::CancellationToken::new();
    let traffic = {
        let (pool, stop, ports) = (
            pool.clone(),
            stop.clone(),
            [instances[0].port, instances[1].port],
        );
        let token = keys.issue("org1", "bench", crate::auth::TokenRole::Service, hour);
        tokio::spawn(async move {
            let mut cycle = 1_000_000 + (Utc::now().timestamp() % 1_000_000) as i32;
            let mut posted = 0u64;
            while !stop.is_cancelled() {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                let batch: serde_json::Value = client
                    .query_one("SELECT bench.minute('org1', $1)", &[&cycle])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                drop(client);
                HttpClient::new(ports[cycle as usize % 2])
                    .post_events(&token, batch.to_string())
                    .await?;
                posted += 1;
                cycle += 1;
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Ok::<_, String>(posted)
        })
    };

    // Status changes: each agent changes itself, to a status other than its current one,
    // through either instance.
    let current: HashMap<String, String> = {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .query(
                "SELECT agent_id, status FROM cockpit.agents WHERE org_id = 'org1'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let mut changed: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut mutation_ms = Vec::new();
    let every = Duration::from_secs_f64(1.0 / options.rate.max(0.1));
    let clients = [
        HttpClient::new(instances[0].port),
        HttpClient::new(instances[1].port),
    ];
    let mut tick = tokio::time::interval(every);
    for k in 0..options.changes {
        tick.tick().await;
        let agent = format!("a{}", 1 + k % 200);
        let now_status = current.get(&agent).map(String::as_str).unwrap_or("OFFLINE");
        let status = ["ONLINE", "BREAK", "INVISIBLE"]
            .into_iter()
            .filter(|s| *s != now_status)
            .nth(k % 2)
            .unwrap_or("ONLINE");
        let token = keys.issue("org1", &agent, crate::auth::TokenRole::Agent, hour);
        let body = serde_json::json!({"query": format!(
            "mutation {{ setAgentStatus(agentId: \"{agent}\", status: {status}) {{ statusSince }} }}")})
        .to_string();
        let t0 = Instant::now();
        let answer = clients[k % 2].post("/graphql", &token, body).await?;
        mutation_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let answer: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
        let since = answer["data"]["setAgentStatus"]["statusSince"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .ok_or_else(|| format!("status change refused: {answer}"))?;
        changed.insert(agent, since.with_timezone(&Utc));
    }
    stop.cancel();
    let posted = traffic.await.map_err(|e| e.to_string())??;

    // Quiet: wait until no subscriber got anything for 2 s (at most 60 s).
    let messages = |subs: &[Subscriber]| -> u64 {
        subs.iter()
            .map(|(_, s, _)| s.lock().map(|s| s.messages).unwrap_or(0))
            .sum()
    };
    let quiet_deadline = Instant::now() + Duration::from_secs(60);
    let mut last = messages(&subscribers);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = messages(&subscribers);
        if now == last || Instant::now() > quiet_deadline {
            break;
        }
        last = now;
    }
    let rss: Vec<Option<f64>> = instances.iter().map(Instance::rss_mib).collect();

    // Latency of every delivery of a change; losses: a subscriber whose rows hold a
    // changed agent must have seen that agent's last change.
    let observed = observed.lock().map_err(|e| e.to_string())?.clone();
    let mut latencies = Vec::new();
    for (agent, since, arrived) in &observed {
        if let (Some(at), Ok(seen_since)) =
            (changed.get(agent), DateTime::parse_from_rfc3339(since))
        {
            if seen_since.with_timezone(&Utc) == *at {
                latencies.push((*arrived - *at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    let mut expected = 0u64;
    let mut lost = 0u64;
    for (_, seen, _) in &subscribers {
        let seen = seen.lock().map_err(|e| e.to_string())?;
        for (agent, at) in &changed {
            if let Some(row) = seen.rows.get(agent) {
                expected += 1;
                let since = DateTime::parse_from_rfc3339(&row.agent.status_since)
                    .ok()
                    .map(|s| s.with_timezone(&Utc));
                if since != Some(*at) {
                    lost += 1;
                }
            }
        }
    }

    // Final states against the statement, per distinct scope.
    let mut fresh: HashMap<SubScope, BTreeMap<String, serde_json::Value>> = HashMap::new();
    let mut mismatched = 0;
    for (scope, seen, _) in &subscribers {
        if !fresh.contains_key(scope) {
            let channel = scope.channel.and_then(crate::model::Channel::parse);
            let data = crate::store::cockpit(&pool, "org1", &scope.product, channel, scope.search)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("product missing")?;
            let rows = data
                .rows
                .iter()
                .map(|r| {
                    (
                        r.agent.id.clone(),
                        serde_json::json!([
                            r.agent.status.as_str(),
                            r.agent.status_since.timestamp_micros(),
                            r.position,
                            r.active_conversations,
                            r.resolved_conversations,
                            r.first_response_count,
                            r.unanswered_conversations
                        ]),
                    )
                })
                .collect();
            fresh.insert(scope.clone(), rows);
        }
        let seen = seen.lock().map_err(|e| e.to_string())?;
        let mine: BTreeMap<String, serde_json::Value> = seen
            .rows
            .iter()
            .map(|(id, r)| {
                let since = DateTime::parse_from_rfc3339(&r.agent.status_since)
                    .map_or(0, |s| s.timestamp_micros());
                (
                    id.clone(),
                    serde_json::json!([
                        r.agent.status.to_lowercase(),
                        since,
                        r.position,
                        r.active_conversations,
                        r.resolved_conversations,
                        r.first_response_count,
                        r.unanswered_conversations
                    ]),
                )
            })
            .collect();
        let theirs: BTreeMap<String, serde_json::Value> = fresh[scope]
            .iter()
            .map(|(id, v)| {
                let mut v = v.clone();
                v[0] = serde_json::json!(v[0].as_str().map(str::to_lowercase));
                (id.clone(), v)
            })
            .collect();
        if mine != theirs {
            mismatched += 1;
        }
    }
    for (_, _, task) in &subscribers {
        task.abort();
    }

    let lat = Summary::of(&latencies);
    let muts = Summary::of(&mutation_ms);
    println!(
        "\nP5: {} status changes at {}/s through 2 instances, {} subscribers, {} traffic batches ingested meanwhile",
        options.changes, options.rate, options.subs, posted
    );
    println!(
        "change -> client latency over {} deliveries: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p50 <= 15, p99 <= 150)",
        latencies.len(),
        lat.median,
        super::stats::percentile(&latencies, 0.9),
        lat.p99,
        lat.max
    );
    println!("deliveries expected {expected}, lost {lost}; subscribers whose final state differs from the statement: {mismatched} (targets 0 and 0)");
    println!(
        "setAgentStatus round trip: p50 {:.1} ms, p99 {:.1} ms",
        muts.median, muts.p99
    );
    for (i, rss) in rss.iter().enumerate() {
        match rss {
            Some(mib) => println!("instance {}: RSS {mib:.1} MiB", i + 1),
            None => println!("instance {}: RSS unknown", i + 1),
        }
    }

    // P10: statuses change while 4 senders ingest 1,000-event batches assigning the same
    // agents (every status change is one of them).
    if options.p10_seconds > 0 {
        let deadline = Instant::now() + Duration::from_secs(options.p10_seconds);
        let run = Utc::now().timestamp();
        let mut senders = Vec::new();
        for sender in 0..4 {
            let token = keys.issue("org1", "bench", crate::auth::TokenRole::Service, hour);
            let client = HttpClient::new(instances[sender % 2].port);
            senders.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    client
                        .post_events(&token, super::ingest::ingest_batch(sender, n, run))
                        .await?;
                    n += 1;
                }
                Ok::<_, String>(n)
            }));
        }
        let mut status_ms = Vec::new();
        let mut n = 0usize;
        while Instant::now() < deadline {
            let agent = format!("a{}", 1 + n % 20);
            let status = if (n / 20).is_multiple_of(2) {
                "BREAK"
            } else {
                "ONLINE"
            };
            let token = keys.issue("org1", &agent, crate::auth::TokenRole::Agent, hour);
            let body = serde_json::json!({"query": format!(
                "mutation {{ setAgentStatus(agentId: \"{agent}\", status: {status}) {{ status }} }}")})
            .to_string();
            let t0 = Instant::now();
            clients[n % 2].graphql(&token, &body).await?;
            status_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut batches = 0;
        for sender in senders {
            batches += sender.await.map_err(|e| e.to_string())??;
        }
        let s = Summary::of(&status_ms);
        println!(
            "\nP10: {} status changes while 4 senders ingested {batches} batches of 1,000 events in {} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 50)",
            status_ms.len(),
            options.p10_seconds,
            s.median,
            s.p99,
            s.max
        );
    }
    drop(instances);
    Ok(())
}

/// What `cockpit bench soak` runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Subscribers, over both instances.
    pub subs: usize,
    /// Minutes of reference traffic.
    pub minutes: f64,
    /// Conversations a day of the bench database (the reference rate unless smaller).
    pub per_day: i32,
    /// The `cockpit` binary to run as the two instances (default: this one).
    pub binary: Option<PathBuf>,
}

/// Seconds between two RSS samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// `cockpit bench soak`: P7. Two instances, `subs` subscribers, the reference traffic of
/// the ten organizations (a minute of each every minute, spread over the minute) and one
/// status change a second, for `minutes`; each instance's RSS sampled every 10 s; the
/// growth between minute 5 (or the middle of a shorter run) and the end.
pub async fn soak(base_url: &str, options: SoakOptions) -> Result<(), String> {
    let Rig {
        pool,
        instances,
        keys,
        observed,
        subscribers,
    } = Rig::start(base_url, options.per_day, &options.binary, options.subs).await?;
    let hours = TOKEN_LIFE;
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(options.minutes * 60.0);
    let clients = [
        HttpClient::new(instances[0].port),
        HttpClient::new(instances[1].port),
    ];
    let mut samples: Vec<(f64, [f64; 2])> = Vec::new();
    let mut next_sample = started;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut second = 0usize;
    let mut cycle = 2_000_000 + (Utc::now().timestamp() % 1_000_000) as i32;
    let mut posted = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        // Each second: a tenth of the organizations' minutes in turn (all ten every 10 s
        // would be 6x the rate: one organization every 6 s), and one status change.
        if second.is_multiple_of(6) {
            let org = format!("org{}", 1 + (second / 6) % 10);
            let token = keys.issue(&org, "bench", crate::auth::TokenRole::Service, hours);
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let batch: serde_json::Value = client
                .query_one("SELECT bench.minute($1, $2)", &[&org, &cycle])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            drop(client);
            clients[second % 2]
                .post_events(&token, batch.to_string())
                .await?;
            cycle += 1;
            posted += 1;
        }
        let agent = format!("a{}", 6 + second % 195);
        let status = ["ONLINE", "BREAK", "INVISIBLE"][(second / 195) % 3];
        let token = keys.issue("org1", &agent, crate::auth::TokenRole::Agent, hours);
        let body = serde_json::json!({"query": format!(
            "mutation {{ setAgentStatus(agentId: \"{agent}\", status: {status}) {{ status }} }}")})
        .to_string();
        clients[second % 2].post("/graphql", &token, body).await?;
        second += 1;
        if Instant::now() >= next_sample {
            let rss = [
                instances[0].rss_mib().unwrap_or(f64::NAN),
                instances[1].rss_mib().unwrap_or(f64::NAN),
            ];
            samples.push((started.elapsed().as_secs_f64() / 60.0, rss));
            next_sample += SAMPLE_EVERY;
        }
    }
    let rss = [
        instances[0].rss_mib().unwrap_or(f64::NAN),
        instances[1].rss_mib().unwrap_or(f64::NAN),
    ];
    samples.push((started.elapsed().as_secs_f64() / 60.0, rss));
    for (_, _, task) in &subscribers {
        task.abort();
    }
    let deliveries = observed.lock().map(|o| o.len()).unwrap_or(0);
    let from = if options.minutes >= 10.0 {
        5.0
    } else {
        options.minutes / 2.0
    };
    let base = samples
        .iter()
        .find(|(minute, _)| *minute >= from)
        .map(|(_, rss)| *rss)
        .unwrap_or(rss);
    println!(
        "\nP7: {} subscribers over 2 instances, {:.1} min of reference traffic ({posted} minutes of an organization, {second} status changes, {deliveries} deliveries)",
        options.subs, options.minutes
    );
    println!(
        "RSS every {} s (MiB): minute, instance 1, instance 2",
        SAMPLE_EVERY.as_secs()
    );
    for (minute, rss) in &samples {
        println!("  {minute:6.2} {:8.1} {:8.1}", rss[0], rss[1]);
    }
    for i in 0..2 {
        let peak = samples.iter().map(|(_, r)| r[i]).fold(f64::NAN, f64::max);
        println!(
            "instance {}: RSS at minute {from:.1} {:.1} MiB, at the end {:.1} MiB, growth {:+.1} % (target <= 5 %), peak {peak:.1} MiB (target <= 256)",
            i + 1,
            base[i],
            rss[i],
            100.0 * (rss[i] - base[i]) / base[i]
        );
    }
    drop(instances);
    Ok(())
}
