//! The set-based judgement against the exact one: random valid and invalid streams —
//! shuffled, split, duplicated, late, long conversations, agents created mid-stream — give
//! the same answers, the same stored events and conversations, and the same
//! `reporting.agent_daily` through `cockpit.ingest_events` (set-based on JSON, with its
//! fallback), through the service's own path (`ingest::store`: well-formed batches as
//! columns to `cockpit.ingest_well_formed`, the rest as JSON) and through
//! `cockpit.ingest_events_sequential` (one event at a time).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::TestDb;

const ORG: &str = "acme";
const AGENTS: [&str; 4] = ["okan", "ipek", "ozge", "cem"];
const CHANNELS: [&str; 4] = ["WHATSAPP", "LIVE_CHAT", "INSTAGRAM", "FACEBOOK"];

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The team, sent first (entity events: the exact path on both sides).
fn team(t: DateTime<Utc>) -> Value {
    let mut events = vec![
        json!({"id": "org", "type": "organization_upserted", "at": at(t), "name": "Acme", "timezone": "Europe/Istanbul"}),
        json!({"id": "p1", "type": "product_upserted", "at": at(t), "product": "p1", "name": "P1"}),
        json!({"id": "p2", "type": "product_upserted", "at": at(t), "product": "p2", "name": "P2"}),
    ];
    for a in AGENTS {
        events.push(
            json!({"id": format!("agent-{a}"), "type": "agent_upserted", "at": at(t),
                           "agent": a, "name": a, "role": "AGENT", "products": ["p1"]}),
        );
    }
    Value::Array(events)
}

/// One conversation's life, valid in `at` order, with some noise.
fn conversation(rng: &mut StdRng, n: usize, start: DateTime<Utc>, out: &mut Vec<Value>) {
    let c = format!("c{n}");
    let channel = CHANNELS[rng.gen_range(0..CHANNELS.len())];
    let product = if rng.gen_bool(0.8) { "p1" } else { "p2" };
    let mut t = start;
    let mut k = 0;
    let id = |k: &mut i32| {
        *k += 1;
        format!("{c}-{k}")
    };
    let step = |t: &mut DateTime<Utc>, rng: &mut StdRng| {
        *t += Duration::seconds(rng.gen_range(0..300));
        at(*t)
    };
    out.push(json!({"id": id(&mut k), "type": "conversation_opened", "at": at(t), "conversation": c, "product": product, "channel": channel}));
    let mut agent = AGENTS[rng.gen_range(0..AGENTS.len())];
    for round in 0..rng.gen_range(1..3) {
        if round > 0 {
            // The customer writes again, then someone re-activates (in or out of window).
            let late = rng.gen_bool(0.2);
            out.push(json!({"id": id(&mut k), "type": "customer_message", "at": step(&mut t, rng), "conversation": c}));
            if late {
                t += Duration::hours(30);
            }
            agent = AGENTS[rng.gen_range(0..AGENTS.len())];
            out.push(json!({"id": id(&mut k), "type": "reactivated", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
        } else {
            out.push(json!({"id": id(&mut k), "type": "assigned", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
        }
        for _ in 0..rng.gen_range(0..4) {
            out.push(json!({"id": id(&mut k), "type": "customer_message", "at": step(&mut t, rng), "conversation": c}));
        }
        out.push(json!({"id": id(&mut k), "type": "agent_message", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
        // The customer writes again after the reply (waiting again), sometimes answered.
        if rng.gen_bool(0.5) {
            out.push(json!({"id": id(&mut k), "type": "customer_message", "at": step(&mut t, rng), "conversation": c}));
            if rng.gen_bool(0.5) {
                out.push(json!({"id": id(&mut k), "type": "agent_message", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
            }
        }
        if rng.gen_bool(0.3) {
            let to = AGENTS[rng.gen_range(0..AGENTS.len())];
            out.push(json!({"id": id(&mut k), "type": "assigned", "at": step(&mut t, rng), "conversation": c, "agent": to, "by": agent}));
            agent = to;
            out.push(json!({"id": id(&mut k), "type": "agent_message", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
        }
        if rng.gen_bool(0.85) {
            let by = if rng.gen_bool(0.9) { agent } else { "cem" };
            out.push(json!({"id": id(&mut k), "type": "resolved", "at": step(&mut t, rng), "conversation": c, "agent": by}));
        } else {
            break;
        }
    }
    // Noise: a reply after the resolution, an unknown agent, a malformed event, a naive time.
    if rng.gen_bool(0.3) {
        out.push(json!({"id": id(&mut k), "type": "agent_message", "at": step(&mut t, rng), "conversation": c, "agent": agent}));
    }
    if rng.gen_bool(0.15) {
        out.push(json!({"id": id(&mut k), "type": "assigned", "at": step(&mut t, rng), "conversation": c, "agent": "ghost"}));
    }
    if rng.gen_bool(0.1) {
        out.push(
            json!({"id": id(&mut k), "type": "agent_message", "conversation": c, "agent": agent}),
        );
    }
    if rng.gen_bool(0.1) {
        out.push(json!({"id": id(&mut k), "type": "customer_message", "at": "2026-01-01T10:00:00", "conversation": c}));
    }
}

/// A random stream cut into batches.
fn stream(seed: u64) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let base = Utc::now() - Duration::hours(60);
    let mut events = Vec::new();
    for n in 0..rng.gen_range(5..25) {
        let start = base + Duration::minutes(rng.gen_range(0..600));
        conversation(&mut rng, n, start, &mut events);
    }
    if seed.is_multiple_of(4) {
        // A long conversation: hundreds of customer messages.
        events.push(json!({"id": "long-o", "type": "conversation_opened", "at": at(base), "conversation": "long", "product": "p1", "channel": "WHATSAPP"}));
        for i in 0..400 {
            events.push(
                json!({"id": format!("long-m{i}"), "type": "customer_message",
                               "at": at(base + Duration::seconds(i * 7)), "conversation": "long"}),
            );
        }
        events.push(json!({"id": "long-a", "type": "assigned", "at": at(base + Duration::hours(1)), "conversation": "long", "agent": "okan"}));
    }
    // How the platform sends it: in order, shuffled within conversations' duties or not at
    // all, re-sent, with conflicting re-uses of ids.
    match seed % 3 {
        0 => {}
        1 => {
            // Late arrivals: some events move later in the stream.
            for _ in 0..events.len() / 5 {
                let from = rng.gen_range(0..events.len());
                let to = rng.gen_range(from..events.len());
                let e = events.remove(from);
                events.insert(to, e);
            }
        }
        _ => events.shuffle(&mut rng),
    }
    for _ in 0..events.len() / 10 {
        let i = rng.gen_range(0..events.len());
        let mut again = events[i].clone();
        if rng.gen_bool(0.3) {
            again["at"] = json!(at(Utc::now() - Duration::minutes(1)));
        }
        let j = rng.gen_range(i..events.len());
        events.insert(j, again);
    }
    if rng.gen_bool(0.5) {
        // A new agent mid-stream, and work for them after.
        let i = rng.gen_range(0..events.len());
        events.insert(i, json!({"id": "agent-new", "type": "agent_upserted", "at": at(base), "agent": "new", "name": "New", "role": "AGENT", "products": ["p1"]}));
        events.push(json!({"id": "new-o", "type": "conversation_opened", "at": at(base + Duration::hours(2)), "conversation": "cn", "product": "p1", "channel": "LIVE_CHAT"}));
        events.push(json!({"id": "new-a", "type": "assigned", "at": at(base + Duration::hours(3)), "conversation": "cn", "agent": "new"}));
    }
    events
}

fn batches(seed: u64, events: Vec<Value>) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut out = Vec::new();
    let mut rest = events.as_slice();
    while !rest.is_empty() {
        let n = rng.gen_range(1..=rest.len().min(120));
        out.push(Value::Array(rest[..n].to_vec()));
        rest = &rest[n..];
    }
    out
}

/// What a database ends with: events, conversations, dirty marks, and the daily summary.
async fn state(db: &TestDb) -> Vec<Vec<String>> {
    let client = db.client().await;
    client
        .query_one("SELECT cockpit.refresh_daily()", &[])
        .await
        .expect("refresh");
    let mut out = Vec::new();
    for sql in [
        "SELECT concat_ws('|', event_id, type, at, rank, conversation_id, agent_id, by_id, payload::text) FROM cockpit.events ORDER BY event_id",
        "SELECT concat_ws('|', conversation_id, product_id, channel, state, assignee_id, opened_at,
                assigned_at, assignment_event, first_response_at, waiting_since,
                last_customer_message_at, last_agent_message_at, last_clear_at)
           FROM cockpit.conversations ORDER BY conversation_id",
        "SELECT d::text FROM reporting.agent_daily d ORDER BY org_id, day, agent_id, product_id, channel",
    ] {
        out.push(
            client
                .query(sql, &[])
                .await
                .expect(sql)
                .iter()
                .map(|r| r.get(0))
                .collect(),
        );
    }
    out
}

/// Conversations whose live facts (spec 3.5), as ingest maintains them, differ from their
/// plain statement over the whole event log (cockpit.conversation_live_reference).
async fn live_facts_off_the_reference(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT format('%s: kept %s, reference %s', c.conversation_id,
                           row(c.state, c.assignee_id, c.assigned_at, c.assignment_event,
                               c.first_response_at, c.waiting_since,
                               c.last_customer_message_at, c.last_agent_message_at),
                           row(r.state, r.assignee_id, r.assigned_at, r.assignment_event,
                               r.first_response_at, r.waiting_since,
                               r.last_customer_message_at, r.last_agent_message_at))
               FROM cockpit.conversations c
               JOIN cockpit.conversation_live_reference r USING (org_id, conversation_id)
              WHERE (c.state, c.assignee_id, c.assigned_at, c.assignment_event,
                     c.first_response_at, c.waiting_since,
                     c.last_customer_message_at, c.last_agent_message_at)
                    IS DISTINCT FROM
                    (r.state, r.assignee_id, r.assigned_at, r.assignment_event,
                     r.first_response_at, r.waiting_since,
                     r.last_customer_message_at, r.last_agent_message_at)",
            &[],
        )
        .await
        .expect("live facts against the reference")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn the_set_based_judgement_answers_and_stores_exactly_what_the_per_event_one_does() {
    let mut fast_batches = 0;
    let mut columnar_batches = 0;
    let mut all_batches = 0;
    for seed in 0..24u64 {
        let fast = TestDb::new().await;
        let exact = TestDb::new().await;
        let service = TestDb::new().await;
        let service_pool = cockpit::db::pool(&service.url, 1).expect("pool");
        let mut fast_client = fast.client().await;
        let exact_client = exact.client().await;
        let service_client = service.client().await;
        let setup = team(Utc::now() - Duration::hours(70));
        for (client, function) in [
            (&fast_client, "cockpit.ingest_events"),
            (&exact_client, "cockpit.ingest_events_sequential"),
            (&service_client, "cockpit.ingest_events"),
        ] {
            client
                .query_one(
                    &format!("SELECT {function}($1, $2::jsonb)"),
                    &[&ORG, &setup],
                )
                .await
                .expect("team");
        }
        fast_client
            .batch_execute("SET track_functions = 'pl'")
            .await
            .expect("function stats on");
        let tx = fast_client.transaction().await.expect("begin");
        for (n, batch) in batches(seed, stream(seed)).into_iter().enumerate() {
            let ours: Value = tx
                .query_one(
                    "SELECT cockpit.ingest_events($1, $2::jsonb)",
                    &[&ORG, &batch],
                )
                .await
                .expect("set-based ingest")
                .get(0);
            let theirs: Value = exact_client
                .query_one(
                    "SELECT cockpit.ingest_events_sequential($1, $2::jsonb)",
                    &[&ORG, &batch],
                )
                .await
                .expect("per-event ingest")
                .get(0);
            assert_eq!(ours, theirs, "seed {seed}, batch {n}: {batch}");
            let read = cockpit::ingest::read_body(batch.to_string().as_bytes(), false)
                .expect("a readable batch");
            columnar_batches += i64::from(read.is_columnar());
            let report = cockpit::ingest::store(
                &service_pool,
                &cockpit::ingest::OrgGate::default(),
                ORG,
                read,
            )
            .await
            .expect("the service's ingest");
            let served = serde_json::to_value(report).expect("report as JSON");
            assert_eq!(
                served, theirs,
                "seed {seed}, batch {n} (service path): {batch}"
            );
            all_batches += 1;
        }
        // How many batches needed the exact path at all (calls in this transaction).
        let exact_calls: i64 = tx
            .query_one(
                "SELECT coalesce(pg_stat_get_xact_function_calls('cockpit.ingest_events_sequential'::regproc), 0)",
                &[],
            )
            .await
            .expect("function stats")
            .get(0);
        tx.commit().await.expect("commit");
        fast_batches += batches(seed, stream(seed)).len() as i64 - exact_calls;
        for db in [&fast, &exact, &service] {
            assert_eq!(
                live_facts_off_the_reference(db).await,
                Vec::<String>::new(),
                "seed {seed}"
            );
        }
        let exact_state = state(&exact).await;
        assert_eq!(state(&fast).await, exact_state, "seed {seed}");
        assert_eq!(
            state(&service).await,
            exact_state,
            "seed {seed} (service path)"
        );
        // The per-agent rows kept for the cockpit of all channels equal what they sum, on
        // every path (state() above refreshed each database).
        for db in [&fast, &exact, &service] {
            let drift = db
                .client()
                .await
                .query_one(cockpit::db::SUMMARY_DRIFT_SQL, &[])
                .await
                .expect("drift");
            assert_eq!(drift.get::<_, i64>("differing"), 0, "seed {seed}");
            assert_eq!(drift.get::<_, i64>("kept_differing"), 0, "seed {seed}");
        }
    }
    // The fast path really ran (and the comparison above was not of one path with itself).
    assert!(
        fast_batches > all_batches / 4,
        "{fast_batches} of {all_batches} batches without the exact path"
    );
    assert!(
        columnar_batches > all_batches / 10,
        "{columnar_batches} of {all_batches} batches as columns"
    );
}
