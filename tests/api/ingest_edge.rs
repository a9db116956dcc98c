//! Ingest at its edges: input PostgreSQL cannot store stays one event's `INVALID`, long
//! conversations, zone names as PostgreSQL matches them, and status changes that never
//! wait for an open ingest batch.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{minutes_ago, rejected_codes, spawn_app, team, TestApp};

/// A batch body with `bad` (raw JSON text) between two valid neighbours.
fn sandwich(bad: &str, t0: &str) -> String {
    format!(
        r#"[{{"id":"p-before","type":"product_upserted","at":"{t0}","product":"p1","name":"Mağaza"}},
{bad},
{{"id":"p-after","type":"product_upserted","at":"{t0}","product":"p2","name":"Uygulama"}}]"#
    )
}

#[tokio::test]
async fn text_and_numbers_postgresql_cannot_store_are_that_events_invalid_and_neighbours_are_kept()
{
    let app = spawn_app().await;
    let t0 = minutes_ago(5);
    let token = app.service_token("acme");
    for (n, bad) in [
        r#"{"id":"nul","type":"product_upserted","at":"T","product":"p9","name":"a\u0000b"}"#,
        r#"{"id":"surrogate","type":"product_upserted","at":"T","product":"p9","name":"a\ud800b"}"#,
        r#"{"id":"huge","type":"product_upserted","at":"T","product":"p9","name":"x","extra":1e1000000}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let bad = bad.replace("\"T\"", &format!("\"{t0}\""));
        for (content_type, body) in [
            ("application/json", sandwich(&bad, &t0)),
            (
                "application/x-ndjson",
                sandwich(&bad, &t0)
                    .trim_matches(['[', ']'])
                    .replace(",\n", "\n"),
            ),
        ] {
            let (status, answer) = app
                .post_raw(Some(&token), content_type, body.into_bytes())
                .await;
            assert_eq!(status, 200, "{content_type} {answer}");
            assert_eq!(
                rejected_codes(&answer),
                vec![(1, "INVALID".to_string())],
                "{content_type} {answer}"
            );
            let rejected = &answer["rejected"][0];
            assert!(
                rejected["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("surrogate")
                        || m.contains("u0000")
                        || m.contains("out of range")),
                "{rejected}"
            );
            assert_eq!(rejected["id"], ["nul", "surrogate", "huge"][n]);
            // The neighbours: stored the first time, duplicates after.
            assert_eq!(
                answer["accepted"].as_u64().unwrap_or(0) + answer["duplicates"].as_u64().unwrap_or(0),
                2,
                "{answer}"
            );
        }
    }
    let products = app
        .db
        .client()
        .await
        .query("SELECT product_id FROM cockpit.products ORDER BY 1", &[])
        .await
        .expect("products");
    let ids: Vec<String> = products.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["p1", "p2"]);
}

#[tokio::test]
async fn an_absurd_year_is_invalid_over_http_and_sql() {
    let app = spawn_app().await;
    let t0 = minutes_ago(5);
    let batch = json!([
        team(&t0)[0].clone(),
        {"id": "old", "type": "product_upserted", "at": "0001-01-01T00:00:00Z", "product": "p9", "name": "x"},
        team(&t0)[1].clone(),
    ]);
    let (_, answer) = app.post_events(&app.service_token("acme"), &batch).await;
    assert_eq!(rejected_codes(&answer), vec![(1, "INVALID".to_string())]);
    assert_eq!(answer["accepted"], 2);
    let sql: Value = app
        .db
        .client()
        .await
        .query_one(
            "SELECT cockpit.ingest_events('acme', $1::jsonb)",
            &[&json!([{"id": "old2", "type": "product_upserted", "at": "1999-12-31T23:59:59Z", "product": "p9", "name": "x"}])],
        )
        .await
        .expect("sql ingest")
        .get(0);
    assert_eq!(rejected_codes(&sql), vec![(0, "INVALID".to_string())]);
}

#[tokio::test]
async fn a_zone_name_matches_case_insensitively_and_is_stored_as_iana_spells_it() {
    let app = spawn_app().await;
    let t0 = minutes_ago(5);
    let answer = app
        .post_events(
            &app.service_token("acme"),
            &json!([
                {"id": "o1", "type": "organization_upserted", "at": t0, "name": "Acme", "timezone": "europe/ISTANBUL"},
                {"id": "o2", "type": "organization_upserted", "at": t0, "name": "Acme", "timezone": "Mars/Olympus"},
            ]),
        )
        .await
        .1;
    assert_eq!(rejected_codes(&answer), vec![(1, "INVALID".to_string())]);
    let zone: String = app
        .db
        .client()
        .await
        .query_one(
            "SELECT timezone FROM cockpit.organizations WHERE org_id = 'acme'",
            &[],
        )
        .await
        .expect("org")
        .get(0);
    assert_eq!(zone, "Europe/Istanbul");
}

async fn dirty(app: &TestApp) -> Vec<String> {
    app.db
        .client()
        .await
        .query(
            "SELECT conversation_id FROM cockpit.dirty_conversations ORDER BY 1",
            &[],
        )
        .await
        .expect("dirty")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_customer_message_alone_marks_nothing_for_the_refresh() {
    let app = spawn_app().await;
    let t0 = minutes_ago(10);
    let mut events = team(&t0);
    events.push(json!({"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "LIVE_CHAT"}));
    app.ingest_ok("acme", &json!(events)).await;
    app.db.refresh().await;
    assert_eq!(dirty(&app).await, Vec::<String>::new());
    app.ingest_ok(
        "acme",
        &json!([{"id": "m", "type": "customer_message", "at": minutes_ago(5), "conversation": "c"}]),
    )
    .await;
    assert_eq!(dirty(&app).await, Vec::<String>::new());
    app.ingest_ok(
        "acme",
        &json!([{"id": "a", "type": "assigned", "at": minutes_ago(4), "conversation": "c", "agent": "okan"}]),
    )
    .await;
    assert_eq!(dirty(&app).await, vec!["c".to_string()]);
}

#[tokio::test]
async fn fifty_thousand_messages_of_one_conversation_are_one_accepted_batch() {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    let mut events = team(&t0);
    events.push(json!({"id": "o", "type": "conversation_opened", "at": t0, "conversation": "long", "product": "p1", "channel": "WHATSAPP"}));
    app.ingest_ok("acme", &json!(events)).await;
    let base = chrono::Utc::now() - chrono::Duration::minutes(50);
    let messages: Vec<Value> = (0..cockpit::ingest::MAX_EVENTS)
        .map(|i| {
            let at = (base + chrono::Duration::milliseconds(i as i64 * 50))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            json!({"id": format!("m{i}"), "type": "customer_message", "at": at, "conversation": "long"})
        })
        .collect();
    let answer = app.ingest_ok("acme", &json!(messages)).await;
    assert_eq!(answer["accepted"], cockpit::ingest::MAX_EVENTS);
    // One more event into the long conversation is judged against it (assigned, then a
    // reply) like into a fresh one.
    app.ingest_ok(
        "acme",
        &json!([
            {"id": "a", "type": "assigned", "at": minutes_ago(2), "conversation": "long", "agent": "okan"},
            {"id": "r", "type": "agent_message", "at": minutes_ago(1), "conversation": "long", "agent": "okan"},
        ]),
    )
    .await;
}

#[tokio::test]
async fn a_status_change_does_not_wait_for_an_open_ingest_batch_that_assigned_the_agent() {
    let app = spawn_app().await;
    let t0 = minutes_ago(10);
    let mut events = team(&t0);
    events.push(json!({"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "LIVE_CHAT"}));
    app.ingest_ok("acme", &json!(events)).await;
    let online = app
        .graphql(
            Some(&app.agent_token("acme", "okan")),
            "mutation { setAgentStatus(agentId: \"okan\", status: ONLINE) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(online["data"]["setAgentStatus"]["status"], "ONLINE");

    // A batch that assigns Okan, left open (its row locks held).
    let mut platform = app.db.client().await;
    let batch = platform.transaction().await.expect("begin");
    let answer: Value = batch
        .query_one(
            "SELECT cockpit.ingest_events('acme', $1::jsonb)",
            &[&json!([{"id": "a", "type": "assigned", "at": minutes_ago(5), "conversation": "c", "agent": "okan"}])],
        )
        .await
        .expect("ingest in the open transaction")
        .get(0);
    assert_eq!(answer["accepted"], 1, "{answer}");

    // The supervisor's change goes through while the batch is still open. (The bound only
    // turns a lock wait into a failure instead of a hang; it measures nothing.)
    let supervisor = app.agent_token("acme", "sup");
    let change = app.graphql(
        Some(&supervisor),
        "mutation { setAgentStatus(agentId: \"okan\", status: BREAK) { status } }",
        json!({}),
    );
    let changed = tokio::time::timeout(Duration::from_secs(30), change)
        .await
        .expect("setAgentStatus waited for the open ingest batch");
    assert_eq!(
        changed["data"]["setAgentStatus"]["status"], "BREAK",
        "{changed}"
    );
    batch.commit().await.expect("commit the batch");
    let active = app
        .db
        .client()
        .await
        .query_one(
            "SELECT assignee_id FROM cockpit.conversations WHERE conversation_id = 'c'",
            &[],
        )
        .await
        .expect("conversation")
        .get::<_, Option<String>>(0);
    assert_eq!(active.as_deref(), Some("okan"));
}
