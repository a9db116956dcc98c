//! `POST /v1/events`: every event type, every rejection code, idempotency.

use serde_json::{json, Value};

use crate::common::{minutes_ago, plus_minutes, rejected_codes, spawn_app, team, TestApp};

async fn table(app: &TestApp, sql: &str) -> Vec<Vec<Option<String>>> {
    let client = app.db.client().await;
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn every_event_type_is_accepted_and_lands_in_the_tables() {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    let mut events = vec![
        json!({"id": "o1", "type": "organization_upserted", "at": t0,
                                 "name": "Acme Destek", "timezone": "America/New_York"}),
    ];
    events.extend(crate::common::team_members(&t0));
    events.extend([
        json!({"id": "c1-open", "type": "conversation_opened", "at": plus_minutes(&t0, 1), "conversation": "c1", "product": "p1", "channel": "whatsapp"}),
        json!({"id": "c1-msg", "type": "customer_message", "at": plus_minutes(&t0, 2), "conversation": "c1"}),
        json!({"id": "c1-as", "type": "assigned", "at": plus_minutes(&t0, 3), "conversation": "c1", "agent": "okan"}),
        json!({"id": "c1-rep", "type": "agent_message", "at": plus_minutes(&t0, 4), "conversation": "c1", "agent": "okan"}),
        json!({"id": "c1-fwd", "type": "assigned", "at": plus_minutes(&t0, 5), "conversation": "c1", "agent": "ipek", "by": "okan"}),
        json!({"id": "c1-res", "type": "resolved", "at": plus_minutes(&t0, 6), "conversation": "c1", "agent": "ipek"}),
        json!({"id": "c1-msg2", "type": "customer_message", "at": plus_minutes(&t0, 7), "conversation": "c1"}),
        json!({"id": "c1-react", "type": "reactivated", "at": plus_minutes(&t0, 8), "conversation": "c1", "agent": "okan"}),
    ]);
    let answer = app.ingest_ok("acme", &json!(events)).await;
    assert_eq!(answer["accepted"], 14);
    assert_eq!(answer["duplicates"], 0);

    assert_eq!(
        table(
            &app,
            "SELECT org_id, name, timezone FROM cockpit.organizations"
        )
        .await,
        vec![vec![s("acme"), s("Acme Destek"), s("America/New_York")]]
    );
    assert_eq!(
        table(
            &app,
            "SELECT product_id, name FROM cockpit.products ORDER BY 1"
        )
        .await,
        vec![vec![s("p1"), s("Mağaza")], vec![s("p2"), s("Uygulama")]]
    );
    assert_eq!(
        table(
            &app,
            "SELECT agent_id, name, role, status FROM cockpit.agents ORDER BY 1"
        )
        .await,
        vec![
            vec![s("ipek"), s("İpek"), s("AGENT"), s("OFFLINE")],
            vec![s("okan"), s("Okan"), s("AGENT"), s("OFFLINE")],
            vec![s("sup"), s("Özge"), s("SUPERVISOR"), s("OFFLINE")],
        ]
    );
    assert_eq!(
        table(
            &app,
            "SELECT agent_id, product_id FROM cockpit.agent_products ORDER BY 1, 2"
        )
        .await,
        vec![
            vec![s("ipek"), s("p1")],
            vec![s("ipek"), s("p2")],
            vec![s("okan"), s("p1")],
            vec![s("sup"), s("p1")],
        ]
    );
    // Re-activated by Okan: active again, on him.
    assert_eq!(
        table(&app, "SELECT conversation_id, product_id, channel, state, assignee_id FROM cockpit.conversations").await,
        vec![vec![s("c1"), s("p1"), s("WHATSAPP"), s("ACTIVE"), s("okan")]]
    );
    assert_eq!(
        table(
            &app,
            "SELECT type, count(*)::text FROM cockpit.events GROUP BY 1 ORDER BY 1"
        )
        .await,
        vec![
            vec![s("agent_message"), s("1")],
            vec![s("agent_upserted"), s("3")],
            vec![s("assigned"), s("2")],
            vec![s("conversation_opened"), s("1")],
            vec![s("customer_message"), s("2")],
            vec![s("organization_upserted"), s("1")],
            vec![s("product_upserted"), s("2")],
            vec![s("reactivated"), s("1")],
            vec![s("resolved"), s("1")],
        ]
    );
    assert_eq!(
        table(
            &app,
            "SELECT by_id FROM cockpit.events WHERE event_id = 'c1-fwd'"
        )
        .await,
        vec![vec![s("okan")]]
    );
}

#[tokio::test]
async fn each_rejection_code_comes_from_its_crafted_event_and_neighbours_are_kept() {
    let app = spawn_app().await;
    let t0 = minutes_ago(3 * 24 * 60);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let batch = json!([
        {"id": "ok-1", "type": "conversation_opened", "at": plus_minutes(&t0, 1), "conversation": "c1", "product": "p1", "channel": "WHATSAPP"},
        {"id": "bad-type", "type": "conversation_teleported", "at": plus_minutes(&t0, 1), "conversation": "c1"},
        {"id": "bad-agent", "type": "assigned", "at": plus_minutes(&t0, 2), "conversation": "c1", "agent": "nobody"},
        {"id": "bad-product", "type": "conversation_opened", "at": plus_minutes(&t0, 2), "conversation": "c2", "product": "p9", "channel": "LIVE_CHAT"},
        {"id": "bad-conv", "type": "customer_message", "at": plus_minutes(&t0, 2), "conversation": "c404"},
        {"id": "bad-reopen", "type": "conversation_opened", "at": plus_minutes(&t0, 3), "conversation": "c1", "product": "p1", "channel": "WHATSAPP"},
        {"id": "ok-2", "type": "assigned", "at": plus_minutes(&t0, 3), "conversation": "c1", "agent": "okan"},
        {"id": "bad-state", "type": "reactivated", "at": plus_minutes(&t0, 4), "conversation": "c1", "agent": "okan"},
        {"id": "ok-3", "type": "resolved", "at": plus_minutes(&t0, 5), "conversation": "c1", "agent": "okan"},
        {"id": "bad-window", "type": "reactivated", "at": plus_minutes(&t0, 2 * 24 * 60), "conversation": "c1", "agent": "okan"},
        {"id": "ok-1", "type": "customer_message", "at": plus_minutes(&t0, 6), "conversation": "c1"},
        {"id": "bad-by", "type": "assigned", "at": plus_minutes(&t0, 4), "conversation": "c1", "agent": "okan", "by": "ghost"},
        {"id": "ok-4", "type": "customer_message", "at": plus_minutes(&t0, 6), "conversation": "c1"}
    ]);
    let (status, answer) = app.post_events(&app.service_token("acme"), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        rejected_codes(&answer),
        vec![
            (1, "INVALID".to_string()),
            (2, "UNKNOWN_AGENT".to_string()),
            (3, "UNKNOWN_PRODUCT".to_string()),
            (4, "UNKNOWN_CONVERSATION".to_string()),
            (5, "CONFLICT".to_string()),
            (7, "INVALID_STATE".to_string()),
            (9, "OUT_OF_WINDOW".to_string()),
            (10, "CONFLICT".to_string()),
            (11, "UNKNOWN_AGENT".to_string()),
        ],
        "{answer}"
    );
    assert_eq!(answer["accepted"], 4, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected[0]["id"], "bad-type");
    assert!(rejected[0]["message"]
        .as_str()
        .unwrap()
        .contains("conversation_teleported"));
    assert!(rejected[1]["message"].as_str().unwrap().contains("nobody"));
    let client = app.db.client().await;
    let stored: Vec<String> = client
        .query("SELECT event_id FROM cockpit.events WHERE event_id LIKE 'ok-%' OR event_id LIKE 'bad-%' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, vec!["ok-1", "ok-2", "ok-3", "ok-4"]);
}

#[tokio::test]
async fn malformed_fields_are_invalid_with_a_message_naming_the_field() {
    let app = spawn_app().await;
    let t0 = minutes_ago(30);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let huge = "x".repeat(100_000);
    let future = plus_minutes(&minutes_ago(0), 10);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"type": "customer_message", "at": t0, "conversation": "c1"}),
            "`id`",
        ),
        (
            json!({"id": 7, "type": "customer_message", "at": t0, "conversation": "c1"}),
            "`id`",
        ),
        (
            json!({"id": "n1", "type": "customer_message", "at": "2026-11-26T09:30:00", "conversation": "c1"}),
            "`at`",
        ),
        (
            json!({"id": "n2", "type": "customer_message", "at": "2026-11-26", "conversation": "c1"}),
            "`at`",
        ),
        (
            json!({"id": "n3", "type": "customer_message", "at": 1764150000, "conversation": "c1"}),
            "`at`",
        ),
        (
            json!({"id": "n4", "type": "customer_message", "at": "2026-02-30T09:30:00Z", "conversation": "c1"}),
            "`at`",
        ),
        (
            json!({"id": "n5", "type": "customer_message", "at": future, "conversation": "c1"}),
            "future",
        ),
        (
            json!({"id": "n6", "type": "customer_message", "at": t0}),
            "`conversation`",
        ),
        (
            json!({"id": "n7", "type": "customer_message", "at": t0, "conversation": huge}),
            "longer",
        ),
        (
            json!({"id": huge, "type": "customer_message", "at": t0, "conversation": "c1"}),
            "longer",
        ),
        (
            json!({"id": "n8", "type": "agent_upserted", "at": t0, "agent": "a", "name": "A", "role": "boss", "products": []}),
            "`role`",
        ),
        (
            json!({"id": "n9", "type": "agent_upserted", "at": t0, "agent": "a", "name": "A", "role": "AGENT", "products": "p1"}),
            "`products`",
        ),
        (
            json!({"id": "n10", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "PIGEON"}),
            "`channel`",
        ),
        (
            json!({"id": "n11", "type": "organization_upserted", "at": t0, "name": "X", "timezone": "Mars/Olympus"}),
            "time zone",
        ),
        (
            json!({"id": "n12", "type": "product_upserted", "at": t0, "product": "p3", "name": ""}),
            "`name`",
        ),
        (
            json!({"id": "n13", "type": "assigned", "at": t0, "conversation": "c1", "agent": "okan", "by": 5}),
            "`by`",
        ),
        (json!(["not", "an", "object"]), "object"),
    ];
    let batch: Vec<Value> = cases.iter().map(|(e, _)| e.clone()).collect();
    let (status, answer) = app
        .post_events(&app.service_token("acme"), &json!(batch))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["accepted"], 0, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), cases.len(), "{answer}");
    for (rejection, (_, needle)) in rejected.iter().zip(&cases) {
        assert_eq!(rejection["code"], "INVALID", "{rejection}");
        let message = rejection["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
        assert!(
            message.len() < 300,
            "messages stay short: {}",
            message.len()
        );
    }
}

#[tokio::test]
async fn sending_the_same_batch_twice_changes_nothing_the_second_time() {
    let app = spawn_app().await;
    let t0 = minutes_ago(30);
    let mut batch = crate::common::team_members(&t0);
    batch.extend([
        json!({"id": "c1-open", "type": "conversation_opened", "at": plus_minutes(&t0, 1), "conversation": "c1", "product": "p1", "channel": "LIVE_CHAT"}),
        json!({"id": "c1-as", "type": "assigned", "at": plus_minutes(&t0, 2), "conversation": "c1", "agent": "okan"}),
        json!({"id": "c1-res", "type": "resolved", "at": plus_minutes(&t0, 3), "conversation": "c1", "agent": "okan"}),
    ]);
    let first = app.ingest_ok("acme", &json!(batch)).await;
    assert_eq!(first["accepted"], 8);
    let snapshot = "SELECT event_id, received_at::text FROM cockpit.events ORDER BY event_id";
    let conversations = "SELECT conversation_id, state, assignee_id FROM cockpit.conversations";
    let before = (
        table(&app, snapshot).await,
        table(&app, conversations).await,
    );

    let second = app.ingest_ok("acme", &json!(batch)).await;
    assert_eq!(
        (second["accepted"].clone(), second["duplicates"].clone()),
        (json!(0), json!(8))
    );
    assert_eq!(
        (
            table(&app, snapshot).await,
            table(&app, conversations).await
        ),
        before
    );
}

#[tokio::test]
async fn same_id_is_a_duplicate_by_meaning_and_a_conflict_by_content() {
    let app = spawn_app().await;
    let t0 = "2026-11-20T09:00:00+03:00";
    app.ingest_ok("acme", &json!(crate::common::team_members(t0)))
        .await;
    let same_meaning = json!([
        // Same instant in another offset, keys reordered, an unknown extra field, role case.
        {"role": "agent", "products": ["p1"], "name": "Okan", "agent": "okan", "at": "2026-11-20T06:00:00Z", "type": "agent_upserted", "id": "t-okan", "extra": 1},
        {"id": "t-p1", "type": "product_upserted", "at": "2026-11-20T06:00:00.000Z", "product": "p1", "name": "Mağaza"}
    ]);
    let answer = app.ingest_ok("acme", &same_meaning).await;
    assert_eq!(answer["duplicates"], 2, "{answer}");

    let different = json!([
        {"id": "t-p1", "type": "product_upserted", "at": t0, "product": "p1", "name": "Başka"},
        {"id": "t-p2", "type": "product_upserted", "at": "2026-11-20T09:00:01+03:00", "product": "p2", "name": "Uygulama"},
        {"id": "t-okan", "type": "agent_upserted", "at": t0, "agent": "okan", "name": "Okan", "role": "AGENT", "products": ["p1", "p2"]}
    ]);
    let (_, answer) = app
        .post_events(&app.service_token("acme"), &different)
        .await;
    assert_eq!(
        rejected_codes(&answer),
        vec![
            (0, "CONFLICT".into()),
            (1, "CONFLICT".into()),
            (2, "CONFLICT".into())
        ]
    );
    assert_eq!(
        table(
            &app,
            "SELECT name FROM cockpit.products WHERE product_id = 'p1'"
        )
        .await,
        vec![vec![s("Mağaza")]]
    );
}

#[tokio::test]
async fn an_older_upsert_arriving_late_never_overwrites_a_newer_one() {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    app.ingest_ok("acme", &json!([
        {"id": "p-new", "type": "product_upserted", "at": plus_minutes(&t0, 10), "product": "p1", "name": "Yeni"},
        {"id": "a-new", "type": "agent_upserted", "at": plus_minutes(&t0, 10), "agent": "okan", "name": "Okan Y.", "role": "SUPERVISOR", "products": ["p1"]},
        {"id": "o-new", "type": "organization_upserted", "at": plus_minutes(&t0, 10), "name": "Acme 2", "timezone": "UTC"}
    ])).await;
    app.ingest_ok("acme", &json!([
        {"id": "p-old", "type": "product_upserted", "at": t0, "product": "p1", "name": "Eski"},
        {"id": "a-old", "type": "agent_upserted", "at": t0, "agent": "okan", "name": "Okan", "role": "AGENT", "products": []},
        {"id": "o-old", "type": "organization_upserted", "at": t0, "name": "Acme 1", "timezone": "Europe/Istanbul"}
    ])).await;
    assert_eq!(
        table(&app, "SELECT name FROM cockpit.products").await,
        vec![vec![s("Yeni")]]
    );
    assert_eq!(
        table(&app, "SELECT name, role FROM cockpit.agents").await,
        vec![vec![s("Okan Y."), s("SUPERVISOR")]]
    );
    assert_eq!(
        table(&app, "SELECT product_id FROM cockpit.agent_products").await,
        vec![vec![s("p1")]]
    );
    assert_eq!(
        table(&app, "SELECT name, timezone FROM cockpit.organizations").await,
        vec![vec![s("Acme 2"), s("UTC")]]
    );
}

#[tokio::test]
async fn an_agent_upsert_replaces_the_membership_and_an_org_starts_in_istanbul() {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    app.ingest_ok("acme", &json!(crate::common::team_members(&t0)))
        .await;
    app.ingest_ok("acme", &json!([
        {"id": "ipek-2", "type": "agent_upserted", "at": plus_minutes(&t0, 1), "agent": "ipek", "name": "İpek", "role": "ADMIN", "products": ["p2"]}
    ])).await;
    assert_eq!(
        table(
            &app,
            "SELECT product_id FROM cockpit.agent_products WHERE agent_id = 'ipek'"
        )
        .await,
        vec![vec![s("p2")]]
    );
    assert_eq!(
        table(&app, "SELECT name, timezone FROM cockpit.organizations").await,
        vec![vec![s("acme"), s("Europe/Istanbul")]]
    );
}

#[tokio::test]
async fn events_that_depend_on_earlier_events_of_the_same_batch_are_accepted() {
    let app = spawn_app().await;
    let t0 = minutes_ago(10);
    let answer = app.ingest_ok("neworg", &json!([
        {"id": "1", "type": "product_upserted", "at": t0, "product": "p", "name": "P"},
        {"id": "2", "type": "agent_upserted", "at": t0, "agent": "a", "name": "A", "role": "AGENT", "products": ["p"]},
        {"id": "3", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p", "channel": "IN_APP"},
        {"id": "4", "type": "assigned", "at": t0, "conversation": "c", "agent": "a"}
    ])).await;
    assert_eq!(answer["accepted"], 4);
    assert_eq!(
        table(&app, "SELECT state, assignee_id FROM cockpit.conversations").await,
        vec![vec![s("ACTIVE"), s("a")]]
    );
}

#[tokio::test]
async fn a_batch_whose_events_are_all_bad_creates_no_organization() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post_events(
            &app.service_token("ghost-org"),
            &json!([{"id": "x", "type": "nope", "at": minutes_ago(1)}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rejected_codes(&answer), vec![(0, "INVALID".into())]);
    assert!(table(&app, "SELECT org_id FROM cockpit.organizations")
        .await
        .is_empty());
}
