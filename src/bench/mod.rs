//! `cockpit bench`: the benchmarks of BENCHMARKS.md, run against databases of their own
//! (`cockpit_bench_<N>d`) on the configured server, loaded with the reference workload in
//! SQL (`sql/bench/workload.sql`).

use std::str::FromStr;
use std::time::Instant;

use deadpool_postgres::Pool;

use crate::db::{self, quote_ident, DbError};

mod ingest_long;
mod refresh_touch;
pub use ingest_long::ingest_long;

const WORKLOAD_SQL: &str = include_str!("../../sql/bench/workload.sql");
/// Reference rate: conversations a day, across the 10 organizations.
const PER_DAY: i32 = 200_000;
/// Conversations still active now.
const ACTIVE: i32 = 20_000;
/// Conversations recomputed per refresh while building the summary after a load.
const BUILD_CHUNK: i64 = 100_000;

/// Secret of the tokens the benches sign for their in-process service.
const SECRET: &str = "bench-secret-of-the-in-process-service";

/// The service, in process, on a free port of the loopback, serving `url`.
struct Service {
    port: u16,
    pool: Pool,
    keys: crate::auth::Keys,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    async fn start(url: String, pool_size: usize, refresh_secs: u64) -> Result<Service, String> {
        let config = crate::config::Config {
            bind: "127.0.0.1:0"
                .parse()
                .map_err(|e: std::net::AddrParseError| e.to_string())?,
            refresh_interval: std::time::Duration::from_secs(refresh_secs),
            pool_size,
            ..crate::config::Config::new(url, SECRET)
        };
        let app = crate::http::Application::build(&config)
            .await
            .map_err(|e| e.to_string())?;
        let (port, pool) = (app.port(), app.pool());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Service {
            port,
            pool,
            keys: crate::auth::Keys::new(SECRET),
            stop,
            server,
        })
    }

    /// A token of `sub` in `org` with `role`, for an hour.
    fn token(&self, org: &str, sub: &str, role: crate::auth::TokenRole) -> String {
        self.keys
            .issue(org, sub, role, std::time::Duration::from_secs(3600))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// One bench database.
struct Sized {
    days: u32,
    pool: Pool,
    /// SQL time of each steady-state refresh, ms.
    refresh_ms: Vec<f64>,
    /// Conversations each refresh recomputed.
    conversations: Vec<u64>,
}

fn url_with_db(base: &str, name: &str) -> Result<String, String> {
    let config = tokio_postgres::Config::from_str(base).map_err(|e| e.to_string())?;
    Ok(db::url_of(&config, name))
}

async fn loaded_days(pool: &Pool) -> Option<i32> {
    let client = pool.get().await.ok()?;
    let row = client
        .query_opt("SELECT days FROM bench.loaded LIMIT 1", &[])
        .await
        .ok()??;
    row.get(0)
}

/// The bench database at `url`, created when missing, migrated, with the current workload
/// functions installed (replaced in place, so that a newer bench reuses an older load).
async fn open(url: &str) -> Result<Pool, String> {
    db::ensure_database(url).await.map_err(|e| e.to_string())?;
    // Loading 14 days takes minutes: no statement limit for the bench's own work.
    let pool = db::pool_with(url, 4, None).map_err(|e| e.to_string())?;
    db::migrate(&pool).await.map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(WORKLOAD_SQL)
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    drop(client);
    Ok(pool)
}

/// A bench database with `days` of history, loaded unless already there.
async fn prepare(base: &str, days: u32) -> Result<Pool, String> {
    let name = format!("cockpit_bench_{days}d");
    let url = url_with_db(base, &name)?;
    let pool = open(&url).await?;
    if loaded_days(&pool).await == Some(days as i32) {
        // As `serve` keeps it: earlier benches' marks refreshed, their dead rows vacuumed
        // (autovacuum may be off).
        crate::live::refresher::refresh_once(&pool)
            .await
            .map_err(|e| e.to_string())?;
        crate::live::refresher::upkeep(&pool)
            .await
            .map_err(|e| e.to_string())?;
        println!("{name}: already loaded (refreshed, vacuumed)");
        return Ok(pool);
    }
    pool.close();
    // Start from an empty database: drop and create it again.
    let maintenance = url_with_db(base, "postgres")?;
    let (admin, connection) = tokio_postgres::connect(&maintenance, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        ))
        .await
        .map_err(|e| e.to_string())?;
    let pool = open(&url).await?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    println!("{name}: loading {days} day(s) of the reference workload…");
    client
        .execute(
            "SELECT bench.load($1, $2, $3)",
            &[&(days as i32), &PER_DAY, &ACTIVE],
        )
        .await
        .map_err(|e| e.to_string())?;
    let events: i64 = client
        .query_one("SELECT events FROM bench.loaded", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    println!(
        "{name}: {events} events loaded in {:.0} s; building the summary…",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let total: i64 = client
        .query_one("SELECT count(*) FROM cockpit.conversations", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let mut offset = 0;
    while offset < total {
        client
            .execute(
                "INSERT INTO cockpit.dirty_conversations (org_id, conversation_id)
                 SELECT org_id, conversation_id FROM cockpit.conversations
                  ORDER BY org_id, conversation_id OFFSET $1 LIMIT $2",
                &[&offset, &BUILD_CHUNK],
            )
            .await
            .map_err(|e| e.to_string())?;
        client
            .execute("SELECT cockpit.refresh_daily()", &[])
            .await
            .map_err(|e| e.to_string())?;
        offset += BUILD_CHUNK;
    }
    client
        .batch_execute("VACUUM ANALYZE")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{name}: summary built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(pool)
}

/// One minute of reference traffic for every organization, generated in SQL.
async fn minute(pool: &Pool, cycle: i64) -> Result<Vec<(String, serde_json::Value)>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT o.org_id, bench.minute(o.org_id, $1::integer) FROM cockpit.organizations o",
            &[&(cycle as i32)],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Sends batches through `cockpit.ingest_events`: events accepted, duplicates, rejected.
async fn send(
    pool: &Pool,
    batches: &[(String, serde_json::Value)],
) -> Result<(i64, i64, i64), DbError> {
    let client = pool.get().await?;
    let mut totals = (0, 0, 0);
    for (org, events) in batches {
        let answer: serde_json::Value = client
            .query_one(
                "SELECT cockpit.ingest_events($1, $2::jsonb)",
                &[org, events],
            )
            .await?
            .get(0);
        totals.0 += answer["accepted"].as_i64().unwrap_or(0);
        totals.1 += answer["duplicates"].as_i64().unwrap_or(0);
        totals.2 += answer["rejected"].as_array().map_or(0, |r| r.len() as i64);
    }
    Ok(totals)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `cockpit bench refresh`: P1 (steady-state refresh, history ratio), P2 (`verify`), P8.
pub async fn refresh(
    base_url: &str,
    days: &[u32],
    cycles: usize,
    verify: bool,
) -> Result<(), String> {
    let mut sizes = Vec::new();
    for &d in days {
        sizes.push(Sized {
            days: d,
            pool: prepare(base_url, d).await?,
            refresh_ms: Vec::new(),
            conversations: Vec::new(),
        });
    }
    // Every database starts from a refreshed state.
    for s in &sizes {
        crate::live::refresher::refresh_once(&s.pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Ids unique to this run (ids of earlier runs stay in the bench databases).
    let run = chrono::Utc::now().timestamp() % 10_000 * 100;
    let mut previous: Vec<Vec<(String, serde_json::Value)>> = vec![Vec::new(); sizes.len()];
    for cycle in 0..cycles {
        // Sizes interleaved, so that the machine's noise falls on both alike.
        for (k, s) in sizes.iter_mut().enumerate() {
            let id = run + cycle as i64;
            let batches = minute(&s.pool, id).await.map_err(|e| e.to_string())?;
            let (accepted, _, rejected) =
                send(&s.pool, &batches).await.map_err(|e| e.to_string())?;
            if rejected > 0 {
                return Err(format!(
                    "{}d: the workload had {rejected} events rejected",
                    s.days
                ));
            }
            if verify && cycle % 3 == 2 {
                // The previous minute again: all duplicates.
                let (again, duplicates, _) = send(&s.pool, &previous[k])
                    .await
                    .map_err(|e| e.to_string())?;
                if again > 0 || duplicates == 0 {
                    return Err("a re-sent minute was not all duplicates".into());
                }
            }
            previous[k] = batches;
            let report = crate::live::refresher::refresh_once(&s.pool)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("another session holds the refresh lock")?;
            s.refresh_ms.push(report.duration_ms);
            s.conversations.push(report.conversations);
            if cycle == 0 {
                println!("{}d: {accepted} events a minute", s.days);
            }
        }
    }
    println!("\nrefresh of the daily columns, one minute of reference traffic per cycle, {cycles} cycles");
    println!(
        "{:>6} {:>12} {:>10} {:>10} {:>10} {:>14}",
        "days", "median ms", "min ms", "max ms", "p90 ms", "conversations"
    );
    for s in &sizes {
        let mut sorted = s.refresh_ms.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let p90 = sorted[((sorted.len() as f64 * 0.9).ceil() as usize).saturating_sub(1)];
        println!(
            "{:>6} {:>12.2} {:>10.2} {:>10.2} {:>10.2} {:>14}",
            s.days,
            median(&s.refresh_ms),
            sorted[0],
            sorted[sorted.len() - 1],
            p90,
            s.conversations.iter().sum::<u64>() / s.conversations.len().max(1) as u64
        );
    }
    if sizes.len() >= 2 {
        let first = &sizes[0];
        let last = &sizes[sizes.len() - 1];
        println!(
            "ratio of medians {}d / {}d: {:.2}",
            last.days,
            first.days,
            median(&last.refresh_ms) / median(&first.refresh_ms)
        );
    }
    refresh_touch::touch_cost(&sizes[0].pool, run).await?;
    if verify {
        for s in &sizes {
            let started = Instant::now();
            let client = s.pool.get().await.map_err(|e| e.to_string())?;
            let row = client
                .query_one(db::SUMMARY_DRIFT_SQL, &[])
                .await
                .map_err(|e| e.to_string())?;
            let (differing, groups): (i64, i64) = (row.get(0), row.get(1));
            println!(
                "verify {}d: {differing} differing groups of {groups} against a full recompute ({:.0} s)",
                s.days,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Sender `sender`'s batch `n`: 200 new conversations, 5 events each (1,000 events),
/// as the platform would send them.
/// Batches prepared per sender and second of the ingest bench (more than a sender sends).
const PREPARED_PER_SECOND: usize = 30;

fn ingest_batch(sender: usize, n: usize, run: i64) -> String {
    let now = chrono::Utc::now() - chrono::Duration::minutes(10);
    let t = |s: i64| {
        (now + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut events = Vec::with_capacity(1000);
    for c in 0..200 {
        let conv = format!("i{run}-{sender}-{n}-{c}");
        let agent = format!("a{}", 1 + (c * 7 + n) % 200);
        let product = format!("p{}", 1 + c % 3);
        events.push(serde_json::json!({"id": format!("{conv}-o"), "type": "conversation_opened", "at": t(0), "conversation": conv, "product": product, "channel": "LIVE_CHAT"}));
        events.push(serde_json::json!({"id": format!("{conv}-a"), "type": "assigned", "at": t(1), "conversation": conv, "agent": agent}));
        events.push(serde_json::json!({"id": format!("{conv}-r"), "type": "agent_message", "at": t(30), "conversation": conv, "agent": agent}));
        events.push(serde_json::json!({"id": format!("{conv}-m"), "type": "customer_message", "at": t(40), "conversation": conv}));
        events.push(serde_json::json!({"id": format!("{conv}-s"), "type": "resolved", "at": t(90), "conversation": conv, "agent": agent}));
    }
    serde_json::Value::Array(events).to_string()
}

/// A prepared batch as the raw baseline sends it: one array per column of the event table.
struct RawBatch {
    ids: Vec<String>,
    types: Vec<String>,
    ats: Vec<String>,
    ranks: Vec<i16>,
    conversations: Vec<Option<String>>,
    agents: Vec<Option<String>>,
    payloads: Vec<String>,
}

impl RawBatch {
    fn of(body: &str) -> RawBatch {
        let events: Vec<serde_json::Value> = serde_json::from_str(body).unwrap_or_default();
        let text = |e: &serde_json::Value, k: &str| e[k].as_str().map(str::to_string);
        let mut b = RawBatch {
            ids: Vec::new(),
            types: Vec::new(),
            ats: Vec::new(),
            ranks: Vec::new(),
            conversations: Vec::new(),
            agents: Vec::new(),
            payloads: Vec::new(),
        };
        for e in &events {
            let kind = text(e, "type").unwrap_or_default();
            b.ranks.push(match kind.as_str() {
                "conversation_opened" => 0,
                "customer_message" => 1,
                "assigned" | "reactivated" => 2,
                "agent_message" => 3,
                _ => 4,
            });
            let mut payload = e.clone();
            if let Some(object) = payload.as_object_mut() {
                for key in ["id", "type", "at"] {
                    object.remove(key);
                }
            }
            b.ids.push(text(e, "id").unwrap_or_default());
            b.types.push(kind);
            b.ats.push(text(e, "at").unwrap_or_default());
            b.conversations.push(text(e, "conversation"));
            b.agents.push(text(e, "agent"));
            b.payloads.push(payload.to_string());
        }
        b
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// `cockpit bench ingest`: P6 on the `days`-day bench database. `senders` concurrent
/// senders post batches of 1,000 events to
/// `POST /v1/events` of an in-process service for `seconds`; then the same senders insert
/// 1,000-row batches straight into a copy of the event table, for the ratio.
pub async fn ingest(base_url: &str, days: u32, senders: usize, seconds: u64) -> Result<(), String> {
    let pool = prepare(base_url, days).await?;
    let url = url_with_db(base_url, &format!("cockpit_bench_{days}d"))?;
    let service = Service::start(url, senders * 2, 60).await?;
    let port = service.port;
    let run = chrono::Utc::now().timestamp() % 100_000;
    // The platform's batches are made before the clock starts: the bench measures the
    // service, not the making of JSON on the same two cores.
    let prepared: Vec<Vec<String>> = (0..senders)
        .map(|sender| {
            (0..PREPARED_PER_SECOND * seconds as usize)
                .map(|n| ingest_batch(sender, n, run))
                .collect()
        })
        .collect();
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (sender, bodies) in prepared.into_iter().enumerate() {
        let mut bodies = bodies.into_iter();
        // Each sender is one organization's platform.
        let org = format!("org{}", 1 + sender % 10);
        let token = service.token(&org, "bench", crate::auth::TokenRole::Service);
        tasks.push(tokio::spawn(async move {
            let client = HttpClient::new(port);
            let mut latencies = Vec::new();
            let mut accepted = 0u64;
            let mut n = 0;
            while Instant::now() < deadline {
                let body = bodies
                    .next()
                    .unwrap_or_else(|| ingest_batch(sender, n, run));
                let t0 = Instant::now();
                let answer = client.post_events(&token, body).await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                accepted += answer["accepted"].as_u64().unwrap_or(0);
                if answer["rejected"].as_array().is_some_and(|r| !r.is_empty()) {
                    return Err(format!("rejected: {}", answer["rejected"][0]));
                }
                n += 1;
            }
            Ok::<_, String>((accepted, latencies))
        }));
    }
    // P10: meanwhile, the agents these batches assign change their status, one change
    // every 20 ms (through GraphQL, as each agent would); none may wait for ingest.
    let statuses = {
        let tokens: Vec<(String, String)> = (1..=20)
            .map(|a| {
                let agent = format!("a{a}");
                let token = service.token("org1", &agent, crate::auth::TokenRole::Agent);
                (agent, token)
            })
            .collect();
        tokio::spawn(async move {
            let client = HttpClient::new(port);
            let mut latencies = Vec::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let (agent, token) = &tokens[n % tokens.len()];
                let status = if (n / tokens.len()).is_multiple_of(2) {
                    "BREAK"
                } else {
                    "ONLINE"
                };
                let body = serde_json::json!({"query": format!(
                    "mutation {{ setAgentStatus(agentId: \"{agent}\", status: {status}) {{ status }} }}")})
                .to_string();
                let t0 = Instant::now();
                client.graphql(token, &body).await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Ok::<_, String>(latencies)
        })
    };
    let mut accepted = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (a, l) = task.await.map_err(|e| e.to_string())??;
        accepted += a;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut status_ms = statuses.await.map_err(|e| e.to_string())??;
    service.stop().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    status_ms.sort_by(|a, b| a.total_cmp(b));
    let ours = accepted as f64 / elapsed;

    // The floors, into a copy of the event table (same indexes), with no judgement at all:
    // (1) the same batches' events, sent by the client as one batched INSERT each (one
    // array per column, made before the clock starts, as the JSON bodies were): what a
    // platform writing straight into the table would cost; (2) rows made inside the
    // server by generate_series (nothing sent, nothing parsed): PostgreSQL's own floor.
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS bench.raw_events;
             CREATE TABLE bench.raw_events (LIKE cockpit.events INCLUDING ALL);",
        )
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    drop(client);
    let raw_sent = {
        let batches: Vec<Vec<RawBatch>> = (0..senders)
            .map(|sender| {
                (0..PREPARED_PER_SECOND * seconds as usize)
                    .map(|n| RawBatch::of(&ingest_batch(sender, n, run + 1)))
                    .collect()
            })
            .collect();
        let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for batches in batches {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                let insert = client
                    .prepare(
                        "INSERT INTO bench.raw_events
                                (org_id, event_id, type, at, rank, conversation_id, agent_id, payload)
                         SELECT 'org1', e.id, e.type, e.at::timestamptz, e.rank, e.conversation, e.agent,
                                e.payload::jsonb
                           FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[],
                                       $6::text[], $7::text[])
                                AS e(id, type, at, rank, conversation, agent, payload)",
                    )
                    .await
                    .map_err(|e| DbError::from(e).to_string())?;
                let mut rows = 0u64;
                for b in batches {
                    if Instant::now() >= deadline {
                        break;
                    }
                    rows += client
                        .execute(
                            &insert,
                            &[&b.ids, &b.types, &b.ats, &b.ranks, &b.conversations, &b.agents, &b.payloads],
                        )
                        .await
                        .map_err(|e| DbError::from(e).to_string())?;
                }
                Ok::<_, String>(rows)
            }));
        }
        let mut rows = 0;
        for task in tasks {
            rows += task.await.map_err(|e| e.to_string())??;
        }
        rows as f64 / started.elapsed().as_secs_f64()
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let mut rows = 0u64;
            let mut n = 0i32;
            while Instant::now() < deadline {
                rows += client
                    .execute(
                        "INSERT INTO bench.raw_events (org_id, event_id, type, at, rank, conversation_id, agent_id, payload)
                         SELECT 'org1', 'raw-' || $1::integer || '-' || $2::integer || '-' || i, 'agent_message', now(), 3,
                                'c' || i, 'a' || (1 + i % 200), jsonb_build_object('conversation', 'c' || i, 'agent', 'a' || (1 + i % 200))
                           FROM generate_series(1, 1000) i",
                        &[&(sender as i32), &n],
                    )
                    .await
                    .map_err(|e| DbError::from(e).to_string())?;
                n += 1;
            }
            Ok::<_, String>(rows)
        }));
    }
    let mut raw_rows = 0;
    for task in tasks {
        raw_rows += task.await.map_err(|e| e.to_string())??;
    }
    let raw = raw_rows as f64 / started.elapsed().as_secs_f64();
    println!("\ningest, {senders} concurrent senders, batches of 1,000 events, {seconds} s each");
    println!("  POST /v1/events     {ours:>10.0} events/s   batch p50 {:.0} ms, p99 {:.0} ms ({} batches)",
        percentile(&latencies, 0.5), percentile(&latencies, 0.99), latencies.len());
    println!("  raw batched INSERT of the same events, sent by the client");
    println!(
        "                      {raw_sent:>10.0} events/s   ratio {:.3}",
        ours / raw_sent
    );
    println!("  raw INSERT of rows made in the server (generate_series, nothing sent)");
    println!(
        "                      {raw:>10.0} events/s   ratio {:.3}",
        ours / raw
    );
    println!(
        "  setAgentStatus during ingest (P10): p50 {:.1} ms, p99 {:.1} ms ({} changes of agents the batches assign)",
        percentile(&status_ms, 0.5),
        percentile(&status_ms, 0.99),
        status_ms.len()
    );
    Ok(())
}

/// A minimal HTTP/1.1 client over one TCP connection per request (no client crate in
/// the service's dependencies).
/// A keep-alive HTTP/1.1 client of the in-process service (one connection per client
/// reused across requests, as a platform's sender would).
struct HttpClient {
    port: u16,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<axum::body::Bytes>,
    >,
}

impl HttpClient {
    fn new(port: u16) -> Self {
        HttpClient {
            port,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }

    /// POSTs a JSON body with a bearer token; the body of a 200 answer, else an error.
    async fn post(&self, path: &str, token: &str, body: String) -> Result<String, String> {
        use http_body_util::BodyExt;
        let request = axum::http::Request::post(format!("http://127.0.0.1:{}{path}", self.port))
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(axum::body::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != axum::http::StatusCode::OK {
            return Err(format!("{status}: {text}"));
        }
        Ok(text)
    }

    async fn post_events(&self, token: &str, body: String) -> Result<serde_json::Value, String> {
        let answer = self.post("/v1/events", token, body).await?;
        serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer}"))
    }

    async fn graphql(&self, token: &str, body: &str) -> Result<(), String> {
        let answer = self.post("/graphql", token, body.to_string()).await?;
        if answer.contains("\"errors\"") {
            return Err(answer.chars().take(300).collect());
        }
        Ok(())
    }
}

/// Runs `clients` loops of `one` for `seconds`: requests per second and latencies (ms).
async fn hammer<F, Fut>(clients: usize, seconds: u64, one: F) -> Result<(f64, Vec<f64>), String>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                one().await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((rate, all))
}

/// `cockpit bench query`: P3 and P4. The `cockpit` GraphQL query of one product (all
/// channels) from `clients` concurrent clients, against the same SQL run directly on the
/// same pool at the same concurrency; then both again while refreshes run back to back.
pub async fn query(base_url: &str, clients: usize, seconds: u64) -> Result<(), String> {
    let pool = prepare(base_url, 1).await?;
    let url = url_with_db(base_url, "cockpit_bench_1d")?;
    let service = Service::start(url, clients, 3600).await?;
    let port = service.port;
    let app_pool = service.pool.clone();
    let token = service.token("org1", "a1", crate::auth::TokenRole::Supervisor);
    let body = serde_json::json!({"query": "{ cockpit(productId: \"p1\") { day refreshedAt online { ...R } onBreak { ...R } invisible { ...R } offline { ...R } } } fragment R on AgentRow { agent { id name role status statusSince } avgFirstResponseSeconds avgResolutionSeconds activeConversations resolvedConversations reactivatedConversations forwardedConversations firstResponseCount resolutionCount }"}).to_string();
    let rows: i64 = {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .query(
                "SELECT 1 FROM cockpit.agent_products WHERE org_id = 'org1' AND product_id = 'p1'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .len() as i64
    };
    let gql = {
        let token = token.clone();
        let body = body.clone();
        move || {
            let token = token.clone();
            let body = body.clone();
            async move { HttpClient::new(port).graphql(&token, &body).await }
        }
    };
    let direct = {
        let pool = app_pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                crate::store::cockpit(&pool, "org1", "p1", None, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    };
    let mut report = Vec::new();
    for during_refresh in [false, true] {
        let refreshing = during_refresh.then(|| {
            let pool = pool.clone();
            tokio::spawn(async move {
                loop {
                    let client = match pool.get().await {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    // Every conversation of the last hour recomputed, back to back.
                    let _ = client
                        .batch_execute(
                            "INSERT INTO cockpit.dirty_conversations (org_id, conversation_id)
                             SELECT org_id, conversation_id FROM cockpit.conversations
                              WHERE opened_at > now() - interval '1 hour' ON CONFLICT DO NOTHING;
                             SELECT cockpit.refresh_daily();",
                        )
                        .await;
                }
            })
        });
        let (sql_rate, sql_lat) = hammer(clients, seconds, direct.clone()).await?;
        let (gql_rate, gql_lat) = hammer(clients, seconds, gql.clone()).await?;
        if let Some(task) = refreshing {
            task.abort();
        }
        report.push((during_refresh, sql_rate, sql_lat, gql_rate, gql_lat));
    }
    service.stop().await;
    println!("\ncockpit query, product p1 of org1 ({rows} members), {clients} concurrent clients, {seconds} s each");
    println!(
        "{:<16} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7}",
        "", "SQL req/s", "p50 ms", "p99 ms", "GraphQL/s", "p50 ms", "p99 ms", "ratio"
    );
    for (during, sql_rate, sql_lat, gql_rate, gql_lat) in &report {
        println!(
            "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>12.0} {:>9.2} {:>9.2} {:>7.2}",
            if *during { "during refresh" } else { "quiet" },
            sql_rate,
            percentile(sql_lat, 0.5),
            percentile(sql_lat, 0.99),
            gql_rate,
            percentile(gql_lat, 0.5),
            percentile(gql_lat, 0.99),
            gql_rate / sql_rate
        );
    }
    if let [(_, _, _, _, quiet), (_, _, _, _, busy)] = report.as_slice() {
        println!(
            "GraphQL p99 during refresh / quiet: {:.2}",
            percentile(busy, 0.99) / percentile(quiet, 0.99)
        );
    }
    Ok(())
}
