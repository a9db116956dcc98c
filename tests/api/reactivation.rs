//! Re-activation rule (spec 3.2) and the state rules at ingest.

use serde_json::{json, Value};

use crate::common::{minutes_ago, plus_minutes, rejected_codes, spawn_app, team, TestApp};

const HOUR: i64 = 60;
const DAY: i64 = 24 * HOUR;

/// Opens `conv` on `channel` at `t0` (customer's message), assigns and resolves it.
async fn resolved_conversation(app: &TestApp, conv: &str, channel: &str, t0: &str) {
    app.ingest_ok("acme", &json!([
        {"id": format!("{conv}-open"), "type": "conversation_opened", "at": t0, "conversation": conv, "product": "p1", "channel": channel},
        {"id": format!("{conv}-as"), "type": "assigned", "at": plus_minutes(t0, 1), "conversation": conv, "agent": "okan"},
        {"id": format!("{conv}-res"), "type": "resolved", "at": plus_minutes(t0, 2), "conversation": conv, "agent": "okan"}
    ]))
    .await;
}

async fn reactivate(app: &TestApp, id: &str, conv: &str, at: &str) -> Value {
    let (status, answer) = app
        .post_events(
            &app.service_token("acme"),
            &json!([{"id": id, "type": "reactivated", "at": at, "conversation": conv, "agent": "ipek"}]),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn state_of(app: &TestApp, conv: &str) -> (String, Option<String>) {
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT state, assignee_id FROM cockpit.conversations WHERE conversation_id = $1",
            &[&conv],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn whatsapp_reactivates_within_24_hours_of_the_customers_last_message() {
    let app = spawn_app().await;
    let t0 = minutes_ago(10 * DAY);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    for conv in ["wa-23", "wa-24", "wa-25"] {
        resolved_conversation(&app, conv, "WHATSAPP", &t0).await;
    }
    assert_eq!(
        rejected_codes(&reactivate(&app, "r23", "wa-23", &plus_minutes(&t0, 23 * HOUR)).await),
        vec![]
    );
    assert_eq!(
        rejected_codes(&reactivate(&app, "r24", "wa-24", &plus_minutes(&t0, 24 * HOUR)).await),
        vec![]
    );
    assert_eq!(
        rejected_codes(&reactivate(&app, "r25", "wa-25", &plus_minutes(&t0, 25 * HOUR)).await),
        vec![(0, "OUT_OF_WINDOW".into())]
    );
    assert_eq!(
        state_of(&app, "wa-23").await,
        ("ACTIVE".into(), Some("ipek".into()))
    );
    assert_eq!(
        state_of(&app, "wa-25").await,
        ("RESOLVED".into(), Some("okan".into()))
    );
}

#[tokio::test]
async fn a_later_customer_message_reopens_the_window() {
    let app = spawn_app().await;
    let t0 = minutes_ago(10 * DAY);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    resolved_conversation(&app, "wa", "WHATSAPP", &t0).await;
    app.ingest_ok("acme", &json!([
        {"id": "late-msg", "type": "customer_message", "at": plus_minutes(&t0, 3 * DAY), "conversation": "wa"}
    ]))
    .await;
    // 25 h after the last message: out; 23 h after it (3 days after opening): in.
    assert_eq!(
        rejected_codes(&reactivate(&app, "r1", "wa", &plus_minutes(&t0, 4 * DAY + HOUR)).await),
        vec![(0, "OUT_OF_WINDOW".into())]
    );
    assert_eq!(
        rejected_codes(
            &reactivate(&app, "r2", "wa", &plus_minutes(&t0, 3 * DAY + 23 * HOUR)).await
        ),
        vec![]
    );
}

#[tokio::test]
async fn instagram_and_facebook_reactivate_within_7_days() {
    let app = spawn_app().await;
    let t0 = minutes_ago(20 * DAY);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    for (conv, channel) in [
        ("ig-6", "INSTAGRAM"),
        ("ig-8", "INSTAGRAM"),
        ("fb-7", "FACEBOOK"),
        ("fb-8", "FACEBOOK"),
    ] {
        resolved_conversation(&app, conv, channel, &t0).await;
    }
    assert_eq!(
        rejected_codes(&reactivate(&app, "a", "ig-6", &plus_minutes(&t0, 6 * DAY)).await),
        vec![]
    );
    assert_eq!(
        rejected_codes(&reactivate(&app, "b", "fb-7", &plus_minutes(&t0, 7 * DAY)).await),
        vec![]
    );
    assert_eq!(
        rejected_codes(&reactivate(&app, "c", "ig-8", &plus_minutes(&t0, 8 * DAY)).await),
        vec![(0, "OUT_OF_WINDOW".into())]
    );
    assert_eq!(
        rejected_codes(&reactivate(&app, "d", "fb-8", &plus_minutes(&t0, 7 * DAY + 1)).await),
        vec![(0, "OUT_OF_WINDOW".into())]
    );
}

#[tokio::test]
async fn other_channels_and_active_conversations_cannot_be_reactivated() {
    let app = spawn_app().await;
    let t0 = minutes_ago(DAY);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    for channel in ["LIVE_CHAT", "IN_APP", "TWITTER"] {
        resolved_conversation(&app, channel, channel, &t0).await;
        assert_eq!(
            rejected_codes(
                &reactivate(
                    &app,
                    &format!("r-{channel}"),
                    channel,
                    &plus_minutes(&t0, 10)
                )
                .await
            ),
            vec![(0, "INVALID_STATE".into())],
            "{channel}"
        );
    }
    app.ingest_ok("acme", &json!([
        {"id": "act-open", "type": "conversation_opened", "at": t0, "conversation": "act", "product": "p1", "channel": "WHATSAPP"}
    ]))
    .await;
    assert_eq!(
        rejected_codes(&reactivate(&app, "r-act", "act", &plus_minutes(&t0, 10)).await),
        vec![(0, "INVALID_STATE".into())]
    );
    // At the very instant of the resolution, the conversation is still active.
    resolved_conversation(&app, "wa", "WHATSAPP", &t0).await;
    assert_eq!(
        rejected_codes(&reactivate(&app, "r-same", "wa", &plus_minutes(&t0, 2)).await),
        vec![(0, "INVALID_STATE".into())]
    );
}

#[tokio::test]
async fn a_resolved_conversation_takes_customer_messages_but_no_agent_work_until_reactivated() {
    let app = spawn_app().await;
    let t0 = minutes_ago(DAY);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    resolved_conversation(&app, "wa", "WHATSAPP", &t0).await;
    let (_, answer) = app
        .post_events(&app.service_token("acme"), &json!([
            {"id": "m", "type": "customer_message", "at": plus_minutes(&t0, 5), "conversation": "wa"},
            {"id": "x1", "type": "agent_message", "at": plus_minutes(&t0, 6), "conversation": "wa", "agent": "okan"},
            {"id": "x2", "type": "assigned", "at": plus_minutes(&t0, 6), "conversation": "wa", "agent": "okan"},
            {"id": "x3", "type": "resolved", "at": plus_minutes(&t0, 6), "conversation": "wa", "agent": "okan"},
            // A late reply, before the resolution in time, is judged where it belongs.
            {"id": "late", "type": "agent_message", "at": plus_minutes(&t0, 1), "conversation": "wa", "agent": "okan"},
            {"id": "r", "type": "reactivated", "at": plus_minutes(&t0, 7), "conversation": "wa", "agent": "ipek"},
            {"id": "y1", "type": "agent_message", "at": plus_minutes(&t0, 8), "conversation": "wa", "agent": "ipek"},
            {"id": "y2", "type": "resolved", "at": plus_minutes(&t0, 9), "conversation": "wa", "agent": "ipek"}
        ]))
        .await;
    assert_eq!(
        rejected_codes(&answer),
        vec![
            (1, "INVALID_STATE".into()),
            (2, "INVALID_STATE".into()),
            (3, "INVALID_STATE".into())
        ]
    );
    assert_eq!(answer["accepted"], 5);
    assert_eq!(
        state_of(&app, "wa").await,
        ("RESOLVED".into(), Some("ipek".into()))
    );
}
