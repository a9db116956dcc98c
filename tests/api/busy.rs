//! One "busy" answer everywhere (spec 4 and 5.2): the pool exhausted, a statement past its
//! time limit and the request time limit all answer HTTP 503 `SERVICE_UNAVAILABLE` with
//! `Retry-After` and the JSON error body of their route, and the code over WebSocket;
//! never 500, `INTERNAL_SERVER_ERROR` or an empty body.

use std::sync::Arc;
use std::time::Duration;

use cockpit::auth::TokenRole;
use serde_json::{json, Value};

use crate::common::ws::WsClient;
use crate::common::{error_codes, minutes_ago, spawn_app_with, team, TestApp, TestDb};

/// Bound on waits that would otherwise hang forever (a hang guard, not a measurement).
const HANG_GUARD: Duration = Duration::from_secs(20);

/// An app of `adjust`'s configuration with the team ingested.
async fn app_with(
    adjust: impl FnOnce(cockpit::config::Config) -> cockpit::config::Config,
) -> TestApp {
    let db = Arc::new(TestDb::new().await);
    let app = spawn_app_with(db, None, adjust).await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    app
}

/// A transaction of the test holding okan's agent row: a status change of okan waits.
async fn hold_okan(app: &TestApp) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client
        .batch_execute(
            "BEGIN; SELECT 1 FROM cockpit.agents WHERE org_id = 'acme' AND agent_id = 'okan' FOR UPDATE",
        )
        .await
        .expect("hold okan's row");
    client
}

/// Waits until a statement of the app waits for a lock.
async fn wait_for_a_lock_waiter(app: &TestApp) {
    let client = app.db.client().await;
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statement waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// okan's own status change, sent in the background (it waits while his row is held).
fn change_okans_status(app: &TestApp) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.agent_token("acme", "okan"))
        .json(&json!({"query": "mutation { setAgentStatus(agentId: \"okan\", status: BREAK) { id } }"}));
    tokio::spawn(async move { request.send().await.expect("the mutation's answer") })
}

/// Asserts a busy answer: 503, `Retry-After`, and the code in the route's body format.
pub async fn assert_busy(response: reqwest::Response, graphql: bool) {
    assert_eq!(response.status().as_u16(), 503);
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| s > 0), "Retry-After: {retry:?}");
    let body: Value = response.json().await.expect("a JSON body");
    if graphql {
        assert_eq!(error_codes(&body), vec!["SERVICE_UNAVAILABLE"], "{body}");
    } else {
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    }
}

async fn products(app: &TestApp) -> reqwest::Response {
    app.http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.agent_token("acme", "sup"))
        .json(&json!({"query": "{ products { id } }"}))
        .send()
        .await
        .expect("an answer")
}

async fn ingest(app: &TestApp) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/events", app.address))
        .bearer_auth(app.token("acme", "platform", TokenRole::Service))
        .json(&json!([{"id": "busy-1", "type": "customer_message", "at": minutes_ago(1), "conversation": "nowhere"}]))
        .send()
        .await
        .expect("an answer")
}

#[tokio::test]
async fn an_exhausted_pool_is_busy_on_graphql_ingest_and_websocket() {
    let app = app_with(|c| cockpit::config::Config { pool_size: 1, ..c }).await;
    // A session opened before the pool runs dry.
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");

    let held = hold_okan(&app).await;
    let waiting = change_okans_status(&app); // takes the pool's one connection, and waits
    wait_for_a_lock_waiter(&app).await;

    assert_busy(products(&app).await, true).await;
    assert_busy(ingest(&app).await, false).await;
    let answer = ws.execute("1", "{ products { id } }", json!({})).await;
    assert_eq!(
        error_codes(&answer),
        vec!["SERVICE_UNAVAILABLE"],
        "{answer}"
    );

    held.batch_execute("COMMIT").await.expect("release okan");
    let done = waiting.await.expect("the mutation");
    assert_eq!(done.status().as_u16(), 200);
    assert_eq!(products(&app).await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_statement_past_its_time_limit_is_busy_on_graphql_and_ingest() {
    let app = app_with(|c| cockpit::config::Config {
        statement_timeout: Duration::from_secs(1),
        ..c
    })
    .await;
    let held = hold_okan(&app).await;
    let waiting = change_okans_status(&app);
    assert_busy(waiting.await.expect("the mutation"), true).await;
    // The same over WebSocket: the error carries the code.
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "okan")))
        .await
        .expect("ack");
    let answer = ws
        .execute(
            "1",
            "mutation { setAgentStatus(agentId: \"okan\", status: BREAK) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_codes(&answer),
        vec!["SERVICE_UNAVAILABLE"],
        "{answer}"
    );
    held.batch_execute("COMMIT").await.expect("release okan");

    // Ingest waiting on its organization's lock, held by the test, past the limit.
    let lock = app.db.client().await;
    lock.execute(
        "SELECT pg_advisory_lock(hashtextextended('cockpit.ingest/acme', 0))",
        &[],
    )
    .await
    .expect("hold the ingest lock");
    assert_busy(ingest(&app).await, false).await;
    lock.execute(
        "SELECT pg_advisory_unlock(hashtextextended('cockpit.ingest/acme', 0))",
        &[],
    )
    .await
    .expect("release the ingest lock");
    assert_eq!(ingest(&app).await.status().as_u16(), 200);
}

#[tokio::test]
async fn the_request_time_limit_is_busy_with_a_body() {
    let app = app_with(|c| cockpit::config::Config {
        request_timeout: Duration::from_secs(1),
        ..c
    })
    .await;
    let held = hold_okan(&app).await;
    let waiting = change_okans_status(&app);
    assert_busy(waiting.await.expect("the mutation"), true).await;
    held.batch_execute("COMMIT").await.expect("release okan");
    // The service goes on: the next request is answered.
    assert_eq!(products(&app).await.status().as_u16(), 200);
}
