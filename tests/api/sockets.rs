//! The WebSocket edge: every way the server ends a session, each with its close code
//! (4400, 4403, 4408, 1009, 1011; 1001 at shutdown is in `live`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::common::ws::{Received, WsClient};
use crate::common::{minutes_ago, spawn_app, team, TestApp, JWT_SECRET, WS_INIT_TIMEOUT};

async fn app_with_team() -> TestApp {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    app
}

/// The close code that ends the session, after any other messages.
async fn closed(ws: &mut WsClient) -> u16 {
    loop {
        match ws.receive().await {
            Received::Closed(code) => return code,
            Received::Message(_) => {}
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[tokio::test]
async fn a_socket_that_never_sends_connection_init_is_closed_with_4408() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, false).await;
    let started = tokio::time::Instant::now();
    assert_eq!(closed(&mut ws).await, 4408);
    // Not before the configured wait (an early close would be another fault).
    assert!(started.elapsed() >= WS_INIT_TIMEOUT - Duration::from_millis(100));
    // A socket that does send it in time is served past that wait.
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    tokio::time::sleep(WS_INIT_TIMEOUT + Duration::from_millis(500)).await;
    let answer = ws.execute("me", "{ me { id } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["id"], "sup", "{answer}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_closed_with_1009_and_an_unreadable_one_with_4400() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let huge =
        json!({"id": "x", "type": "subscribe", "payload": {"query": "x".repeat(2 * 1024 * 1024)}});
    ws.send_text(huge.to_string()).await;
    assert_eq!(closed(&mut ws).await, 1009);

    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    ws.send_text("{ not json".into()).await;
    assert_eq!(closed(&mut ws).await, 4400);
}

#[tokio::test]
async fn a_subscription_ends_with_4403_when_its_token_expires() {
    let app = app_with_team().await;
    let exp = now() + 3;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "sup", "org": "acme", "role": "supervisor", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token");
    let issued = tokio::time::Instant::now();
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&token)).await.expect("ack");
    ws.subscribe("c", json!({"p": "p1"})).await;
    ws.next_update().await.expect("the first snapshot");
    assert_eq!(closed(&mut ws).await, 4403);
    // By 4 s after a token of at most 3 s was made (its `exp` is whole seconds).
    assert!(
        issued.elapsed() <= Duration::from_secs(4),
        "{:?}",
        issued.elapsed()
    );
}

#[tokio::test]
async fn a_subscribed_supervisor_demoted_to_agent_is_closed_with_4403_at_once() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    ws.subscribe("c", json!({"p": "p1"})).await;
    ws.next_update().await.expect("the first snapshot");
    // Another supervisor's session stays open.
    let mut other = WsClient::connect(&app, false).await;
    other
        .init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");

    app.ingest_ok(
        "acme",
        &json!([{"id": "demote", "type": "agent_upserted", "at": minutes_ago(1), "agent": "sup",
                 "name": "Sup", "role": "AGENT", "products": ["p1"]}]),
    )
    .await;
    let demoted = tokio::time::Instant::now();
    assert_eq!(closed(&mut ws).await, 4403);
    assert!(
        demoted.elapsed() <= Duration::from_secs(1),
        "{:?}",
        demoted.elapsed()
    );
    // The same token now opens a session of an AGENT, which may not read the cockpit.
    let mut again = WsClient::connect(&app, false).await;
    again
        .init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let answer = again
        .execute("c", r#"{ cockpit(productId: "p1") { day } }"#, json!({}))
        .await;
    assert_eq!(
        crate::common::error_codes(&answer),
        vec!["FORBIDDEN"],
        "{answer}"
    );
    drop(other);
}

#[tokio::test]
async fn a_database_failure_while_authenticating_closes_with_1011_not_4403() {
    let app = app_with_team().await;
    app.db
        .client()
        .await
        .batch_execute("ALTER TABLE cockpit.agents RENAME TO agents_gone")
        .await
        .expect("break the database");
    let mut ws = WsClient::connect(&app, false).await;
    assert_eq!(
        ws.init(Some(&app.agent_token("acme", "sup"))).await,
        Err(1011)
    );
    // A refusal is still 4403.
    let mut ws = WsClient::connect(&app, false).await;
    assert_eq!(ws.init(Some("not-a-token")).await, Err(4403));
}

#[tokio::test]
async fn a_subscription_before_the_acknowledgement_is_closed_with_4401() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.subscribe("c", json!({"p": "p1"})).await;
    assert_eq!(closed(&mut ws).await, 4401);
}

/// R10: 2,000 sockets that never send `connection_init` are all closed (4408) by the
/// timeout, while queries go on being answered.
#[tokio::test]
async fn two_thousand_silent_sockets_are_closed_while_queries_are_answered() {
    let app = app_with_team().await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let batch =
            futures_util::future::join_all((0..100).map(|_| WsClient::connect(&app, false)));
        sockets.extend(batch.await);
    }
    let token = app.agent_token("acme", "sup");
    let answer = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["id"], "sup", "{answer}");
    let codes = futures_util::future::join_all(sockets.iter_mut().map(closed)).await;
    assert!(codes.iter().all(|&code| code == 4408), "{:?}", &codes[..10]);
    let answer = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["id"], "sup", "{answer}");
}
