//! `cockpit bench ingest`: P6 (and P10 measured during it).

use std::time::Instant;

use super::stats::percentile;
use super::*;
use crate::db::DbError;

/// Sender `sender`'s batch `n`: 200 new conversations, 5 events each (1,000 events),
/// as the platform would send them.
/// Batches prepared per sender and second of the ingest bench (more than a sender sends).
const PREPARED_PER_SECOND: usize = 30;

pub(super) fn ingest_batch(sender: usize, n: usize, run: i64) -> String {
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

/// What one phase of posting measured.
struct Posted {
    events_per_second: f64,
    batch_ms: Vec<f64>,
    status_ms: Vec<f64>,
}

/// The state every phase starts from: what earlier phases ingested refreshed, their dead
/// rows vacuumed (as `serve`'s upkeep does) and the write-ahead log checkpointed.
async fn settle(pool: &Pool) -> Result<(), String> {
    keep(pool).await?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    // CHECKPOINT needs a superuser or pg_checkpoint; without it the phases still run.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        println!("  (no checkpoint between phases: {})", DbError::from(e));
    }
    Ok(())
}

/// `senders` senders post prepared batches of run `run` for `seconds`, while (P10) the
/// agents these batches assign change their status.
async fn post_phase(
    service: &Service,
    senders: usize,
    seconds: u64,
    run: i64,
) -> Result<Posted, String> {
    let port = service.port;
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
    let mut batch_ms = Vec::new();
    for task in tasks {
        let (a, l) = task.await.map_err(|e| e.to_string())??;
        accepted += a;
        batch_ms.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status_ms = statuses.await.map_err(|e| e.to_string())??;
    Ok(Posted {
        events_per_second: accepted as f64 / elapsed,
        batch_ms,
        status_ms,
    })
}

/// `cockpit bench ingest`: P6 on the `days`-day bench database. `senders` concurrent
/// senders post batches of 1,000 events to `POST /v1/events` of an in-process service for
/// `seconds`, twice. (Until issue 23 the insights' work at ingest was a trigger, switched off
/// in two more phases for a with/without ratio; it is now part of the ingest functions.)
/// Every phase starts from the same state: the previous phase's conversations refreshed,
/// their dead rows vacuumed and a checkpoint taken, outside the clock, with no refresh due
/// during a phase. Then the same senders insert 1,000-row batches straight into a copy of
/// the event table, for the ratio.
pub async fn ingest(base_url: &str, days: u32, senders: usize, seconds: u64) -> Result<(), String> {
    // A fresh copy of the loaded database: what this bench ingests must not grow the one
    // the other benches copy.
    let (pool, url) = prepare_copy(base_url, days, PER_DAY, ACTIVE).await?;
    // The phases settle the summary themselves: no refresher tick inside a phase.
    let service = Service::start(url, senders * 2, 3600).await?;
    let run = chrono::Utc::now().timestamp() % 100_000;
    let mut with = Vec::new();
    for phase in 0..2 {
        settle(&pool).await?;
        let posted = post_phase(&service, senders, seconds, run * 10 + phase as i64).await?;
        println!(
            "  phase {}: {:>10.0} events/s",
            phase + 1,
            posted.events_per_second
        );
        with.push(posted);
    }
    service.stop().await;
    let ours = with.iter().map(|p| p.events_per_second).sum::<f64>() / with.len() as f64;
    let latencies: Vec<f64> = with.iter().flat_map(|p| p.batch_ms.clone()).collect();
    let status_ms: Vec<f64> = with.iter().flat_map(|p| p.status_ms.clone()).collect();

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
    println!("  POST /v1/events (phases 1 and 2)\n                      {ours:>10.0} events/s   batch p50 {:.0} ms, p99 {:.0} ms ({} batches)",
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
