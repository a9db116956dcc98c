//! A NUL character (`\u0000`) wherever a client can put one: PostgreSQL's text cannot hold
//! it, so it is the client's error (BAD_USER_INPUT, or UNAUTHENTICATED for a token), never
//! an internal one, and the valid data beside it is kept.

use cockpit::auth::TokenRole;
use serde_json::json;

use crate::common::ws::WsClient;
use crate::common::{error_codes, minutes_ago, spawn_app, team};

#[tokio::test]
async fn nul_in_a_variable_or_a_literal_is_bad_user_input_on_both_transports() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    let token = app.agent_token("acme", "sup");
    let by_variable = (
        "query($p: ID!) { cockpit(productId: $p) { day } }",
        json!({"p": "p\u{0}1"}),
    );
    let by_literal = (r#"{ cockpit(productId: "p\u00001") { day } }"#, json!({}));
    let in_a_search = (
        r#"query($s: String) { cockpit(productId: "p1", search: $s) { day } }"#,
        json!({"s": "a\u{0}"}),
    );
    for (query, variables) in [&by_variable, &by_literal, &in_a_search] {
        let answer = app.graphql(Some(&token), query, variables.clone()).await;
        assert_eq!(error_codes(&answer), vec!["BAD_USER_INPUT"], "{answer}");
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("NUL")),
            "{answer}"
        );
    }
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&token)).await.expect("ack");
    for (n, (query, variables)) in [&by_variable, &by_literal].into_iter().enumerate() {
        let answer = ws.execute(&n.to_string(), query, variables.clone()).await;
        assert_eq!(error_codes(&answer), vec!["BAD_USER_INPUT"], "{answer}");
    }
    // The same query without the NUL works: the check refuses only what it names.
    let fine = app
        .graphql(Some(&token), by_variable.0, json!({"p": "p1"}))
        .await;
    assert_eq!(error_codes(&fine), Vec::<String>::new(), "{fine}");
}

#[tokio::test]
async fn a_token_whose_claims_hold_nul_is_unauthenticated_for_graphql_and_ingest() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    for (org, sub) in [("ac\u{0}me", "sup"), ("acme", "s\u{0}up")] {
        let token = app.token(org, sub, TokenRole::Service);
        let answer = app.graphql(Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(error_codes(&answer), vec!["UNAUTHENTICATED"], "{answer}");
        let (status, body) = app
            .post_events(
                &token,
                &json!([{"id": "x", "type": "customer_message", "at": minutes_ago(1), "conversation": "c1"}]),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");
    }
}

#[tokio::test]
async fn nul_in_an_ingest_field_rejects_that_event_and_keeps_its_neighbours() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    let token = app.token("acme", "platform", TokenRole::Service);
    let at = minutes_ago(5);
    let (status, body) = app
        .post_events(
            &token,
            &json!([
                {"id": "ok-1", "type": "conversation_opened", "at": at, "conversation": "n1", "product": "p1", "channel": "LIVE_CHAT"},
                {"id": "bad", "type": "conversation_opened", "at": at, "conversation": "n\u{0}2", "product": "p1", "channel": "LIVE_CHAT"},
                {"id": "ok-2", "type": "conversation_opened", "at": at, "conversation": "n3", "product": "p1", "channel": "LIVE_CHAT"}
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(body["rejected"][0]["index"], 1, "{body}");
    assert_eq!(body["rejected"][0]["code"], "INVALID", "{body}");
}
