//! Arrival order does not matter: a valid stream, shuffled (keeping the sender's ordering
//! duties), split into other batches and partly re-sent, ends in the same state.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::{minutes_ago, plus_minutes, spawn_app, team, TestApp};

const AGENTS: [&str; 3] = ["okan", "ipek", "sup"];

/// One conversation's events in `at` order, cut where the sender's duties fall: the opening
/// first, then the events before a re-activation, the re-activation, the events after.
pub(crate) fn conversation(rng: &mut StdRng, n: usize, t0: &str) -> Vec<Vec<Value>> {
    let conv = format!("c{n}");
    let channels = cockpit::model::Channel::ALL;
    let channel = channels[rng.gen_range(0..channels.len())].as_str();
    let mut t = rng.gen_range(0..600);
    // Equal instants happen (rank and id order them); `min_step` 1 forces a later one.
    let mut step = |rng: &mut StdRng, min_step: i64| {
        t += rng.gen_range(min_step..4);
        plus_minutes(t0, t)
    };
    let ev = |i: usize, typ: &str, at: String, extra: Value| {
        let mut e =
            json!({"id": format!("{conv}-{i}"), "type": typ, "at": at, "conversation": conv});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let agent = |rng: &mut StdRng| AGENTS[rng.gen_range(0..AGENTS.len())];
    let mut phases = vec![vec![ev(
        0,
        "conversation_opened",
        step(rng, 0),
        json!({"product": "p1", "channel": channel}),
    )]];
    let mut before = Vec::new();
    let mut i = 1;
    let mut assignee = agent(rng);
    before.push(ev(i, "assigned", step(rng, 0), json!({"agent": assignee})));
    i += 1;
    for _ in 0..rng.gen_range(0..4) {
        let e = match rng.gen_range(0..4) {
            0 => ev(i, "customer_message", step(rng, 0), json!({})),
            1 => ev(i, "agent_message", step(rng, 0), json!({"agent": assignee})),
            2 => ev(
                i,
                "agent_message",
                step(rng, 0),
                json!({"agent": agent(rng)}),
            ),
            _ => {
                let by = assignee;
                assignee = agent(rng);
                ev(
                    i,
                    "assigned",
                    step(rng, 0),
                    json!({"agent": assignee, "by": by}),
                )
            }
        };
        before.push(e);
        i += 1;
    }
    if rng.gen_bool(0.7) {
        before.push(ev(i, "resolved", step(rng, 0), json!({"agent": assignee})));
        i += 1;
        let reactivatable = matches!(channel, "WHATSAPP" | "FACEBOOK" | "INSTAGRAM");
        if reactivatable && rng.gen_bool(0.6) {
            before.push(ev(i, "customer_message", step(rng, 0), json!({})));
            i += 1;
            phases.push(before);
            let by = agent(rng);
            // A re-activation must be later than the resolution it follows.
            phases.push(vec![ev(
                i,
                "reactivated",
                step(rng, 1),
                json!({"agent": by}),
            )]);
            i += 1;
            let mut after = vec![ev(i, "agent_message", step(rng, 0), json!({"agent": by}))];
            i += 1;
            if rng.gen_bool(0.5) {
                after.push(ev(i, "resolved", step(rng, 0), json!({"agent": by})));
            }
            phases.push(after);
            return phases;
        }
    }
    phases.push(before);
    phases
}

/// Arrival order: conversations interleaved at random, each phase shuffled inside.
pub(crate) fn shuffled_arrival(rng: &mut StdRng, conversations: &[Vec<Vec<Value>>]) -> Vec<Value> {
    let mut queues: Vec<Vec<Value>> = conversations
        .iter()
        .map(|phases| {
            let mut q = Vec::new();
            for phase in phases {
                let mut p = phase.clone();
                p.shuffle(rng);
                q.extend(p);
            }
            q.reverse(); // pop from the end
            q
        })
        .collect();
    let mut out = Vec::new();
    while !queues.is_empty() {
        let k = rng.gen_range(0..queues.len());
        out.push(queues[k].pop().unwrap());
        if queues[k].is_empty() {
            queues.swap_remove(k);
        }
    }
    out
}

async fn dump(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let client = app.db.client().await;
    let conversations = client
        .query("SELECT concat_ws('|', conversation_id, product_id, channel, state, assignee_id, opened_at) FROM cockpit.conversations ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let events = client
        .query("SELECT concat_ws('|', event_id, type, at, rank, conversation_id, agent_id, by_id, payload) FROM cockpit.events ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (conversations, events)
}

#[tokio::test]
async fn a_shuffled_split_and_resent_stream_ends_in_the_state_of_the_in_order_one() {
    let mut rng = StdRng::seed_from_u64(20261126);
    let t0 = minutes_ago(2 * 24 * 60);
    let conversations: Vec<_> = (0..80).map(|n| conversation(&mut rng, n, &t0)).collect();
    let mut in_order: Vec<Value> = conversations.iter().flatten().flatten().cloned().collect();
    in_order.sort_by_key(|e| e["at"].as_str().unwrap().to_string());

    let reference = spawn_app().await;
    reference.ingest_ok("acme", &json!(team(&t0))).await;
    let answer = reference.ingest_ok("acme", &json!(in_order)).await;
    assert_eq!(
        answer["accepted"].as_u64().unwrap() as usize,
        in_order.len()
    );
    let expected = dump(&reference).await;
    assert!(expected.0.iter().any(|c| c.contains("|RESOLVED|")));
    assert!(expected.0.iter().any(|c| c.contains("|ACTIVE|")));

    for round in 0..3 {
        let app = spawn_app().await;
        app.ingest_ok("acme", &json!(team(&t0))).await;
        let arrival = shuffled_arrival(&mut rng, &conversations);
        let mut rest = arrival.as_slice();
        let mut accepted = 0;
        while !rest.is_empty() {
            let size = rng.gen_range(1..=rest.len().min(40));
            let (batch, tail) = rest.split_at(size);
            let answer = app.ingest_ok("acme", &json!(batch)).await;
            accepted += answer["accepted"].as_u64().unwrap() as usize;
            if rng.gen_bool(0.3) {
                let again = app.ingest_ok("acme", &json!(batch)).await;
                assert_eq!(again["duplicates"].as_u64().unwrap() as usize, batch.len());
            }
            rest = tail;
        }
        assert_eq!(accepted, in_order.len(), "round {round}");
        assert_eq!(dump(&app).await, expected, "round {round}");
    }
}
