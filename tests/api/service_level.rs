//! Service level (spec 3.5): the organization's first-response target, the first responses
//! within it (a daily column), the overdue assignments (live) and their ratio; the same on
//! GraphQL, in BI and in the recompute from the event log.

use serde_json::{json, Value};

use crate::common::{
    error_codes, minutes_ago, plus_minutes, rejected_codes, spawn_app, team, TestApp,
};

const QUERY: &str = "query($p: ID!) {
  cockpit(productId: $p) {
    serviceLevelSeconds
    online { ...R } onBreak { ...R } invisible { ...R } offline { ...R }
  }
}
fragment R on AgentRow {
  agent { id } firstResponseCount firstResponsesWithinTarget overdueFirstResponses serviceLevel
}";

/// `base` plus `seconds`, RFC 3339 UTC.
fn plus_seconds(base: &str, seconds: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(base).expect("RFC 3339")
        + chrono::Duration::seconds(seconds))
    .with_timezone(&chrono::Utc)
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn target(id: &str, at: &str, seconds: Value) -> Value {
    json!({"id": id, "type": "organization_upserted", "at": at, "name": "Acme",
           "serviceLevelSeconds": seconds})
}

/// Okan's day, as a timeline (seconds from `start`): first responses after 60 s (c1),
/// 180 s (c2) and 120 s (c3); c4 assigned with no reply (overdue at any target up to 40
/// minutes); c5 answered by İpek, not its assignee (no first response). İpek holds c6,
/// resolved unanswered: no sample.
fn floor(start: &str) -> Vec<Value> {
    let at = |s: i64| plus_seconds(start, s);
    let mut events = Vec::new();
    for (i, (assigned, reply)) in [
        (0, Some(60)),
        (300, Some(480)),
        (600, Some(720)),
        (1200, None),
    ]
    .into_iter()
    .enumerate()
    {
        let c = format!("c{}", i + 1);
        events.push(
            json!({"id": format!("{c}-o"), "type": "conversation_opened", "at": at(assigned - 10),
                           "conversation": c, "product": "p1", "channel": "WHATSAPP"}),
        );
        events.push(
            json!({"id": format!("{c}-a"), "type": "assigned", "at": at(assigned),
                           "conversation": c, "agent": "okan"}),
        );
        if let Some(reply) = reply {
            events.push(
                json!({"id": format!("{c}-r"), "type": "agent_message", "at": at(reply),
                               "conversation": c, "agent": "okan"}),
            );
        }
    }
    events.extend([
        json!({"id": "c5-o", "type": "conversation_opened", "at": at(0), "conversation": "c5", "product": "p1", "channel": "LIVE_CHAT"}),
        json!({"id": "c5-a", "type": "assigned", "at": at(1), "conversation": "c5", "agent": "okan"}),
        json!({"id": "c5-r", "type": "agent_message", "at": at(30), "conversation": "c5", "agent": "ipek"}),
        json!({"id": "c5-x", "type": "resolved", "at": at(40), "conversation": "c5", "agent": "ipek"}),
        json!({"id": "c6-o", "type": "conversation_opened", "at": at(0), "conversation": "c6", "product": "p1", "channel": "LIVE_CHAT"}),
        json!({"id": "c6-a", "type": "assigned", "at": at(5), "conversation": "c6", "agent": "ipek"}),
        json!({"id": "c6-x", "type": "resolved", "at": at(50), "conversation": "c6", "agent": "ipek"}),
    ]);
    events
}

/// (firstResponseCount, firstResponsesWithinTarget, overdueFirstResponses, serviceLevel)
/// of an agent, and the cockpit's target.
async fn figures(app: &TestApp, agent: &str) -> (Value, Value) {
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            QUERY,
            json!({"p": "p1"}),
        )
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    let c = &answer["data"]["cockpit"];
    let row = ["online", "onBreak", "invisible", "offline"]
        .iter()
        .flat_map(|t| c[*t].as_array().expect("table"))
        .find(|r| r["agent"]["id"] == agent)
        .unwrap_or_else(|| panic!("no row of {agent}: {c}"))
        .clone();
    (
        json!([
            row["firstResponseCount"],
            row["firstResponsesWithinTarget"],
            row["overdueFirstResponses"],
            row["serviceLevel"]
        ]),
        c["serviceLevelSeconds"].clone(),
    )
}

/// Okan's first responses within target today in BI, and how many groups of the summary
/// differ from the recompute over the event log.
async fn bi(app: &TestApp) -> (i64, i64, i32) {
    let client = app.db.client().await;
    client
        .batch_execute("SET ROLE cockpit_reader")
        .await
        .expect("reader");
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(d.first_responses_within_target), 0)::bigint
                       FROM reporting.agent_daily d JOIN reporting.organizations o USING (org_id)
                      WHERE d.org_id = 'acme' AND d.agent_id = 'okan' AND d.day = o.today),
                    (SELECT service_level_seconds FROM reporting.organizations WHERE org_id = 'acme')",
            &[],
        )
        .await
        .expect("BI as cockpit_reader");
    client.batch_execute("RESET ROLE").await.expect("reset");
    let drift: i64 = client
        .query_one(include_str!("../../sql/queries/summary_drift.sql"), &[])
        .await
        .expect("drift")
        .get(0);
    (row.get(0), drift, row.get(1))
}

#[tokio::test]
async fn service_level_is_first_responses_within_the_target_over_first_responses_and_overdue() {
    let app = spawn_app().await;
    let start = minutes_ago(60);
    app.ingest_ok("acme", &json!(team(&plus_minutes(&start, -30))))
        .await;
    app.ingest_ok("acme", &json!(floor(&start))).await;
    app.db.refresh().await;

    // The default target, 60 s: c1 (60 s) is within, c2 (180 s) and c3 (120 s) are not;
    // c4 is overdue. 1 / (3 + 1).
    let (okan, target) = figures(&app, "okan").await;
    assert_eq!(target, 60);
    assert_eq!(okan, json!([3, 1, 1, 0.25]));
    // No first response and nothing overdue: no sample, null.
    let (ipek, _) = figures(&app, "ipek").await;
    assert_eq!(ipek, json!([0, 0, 0, null]));
    assert_eq!(bi(&app).await, (1, 0, 60));

    // A target of 120 s re-judges the day: c3 is within now.
    app.ingest_ok(
        "acme",
        &json!([target_event("t-120", &plus_minutes(&start, 1), 120)]),
    )
    .await;
    app.db.refresh().await;
    let (okan, target) = figures(&app, "okan").await;
    assert_eq!(target, 120);
    assert_eq!(okan, json!([3, 2, 1, 0.5]));
    assert_eq!(bi(&app).await, (2, 0, 120));

    // An older word on the target changes nothing (the latest `at` wins), and an
    // organization_upserted without the field leaves it alone.
    app.ingest_ok(
        "acme",
        &json!([
            target_event("t-30", &plus_minutes(&start, -5), 30),
            {"id": "t-name", "type": "organization_upserted", "at": plus_minutes(&start, 2), "name": "Acme A.Ş."},
        ]),
    )
    .await;
    app.db.refresh().await;
    assert_eq!(figures(&app, "okan").await.1, 120);
    assert_eq!(bi(&app).await, (2, 0, 120));

    // A target above 40 minutes: c4 is no longer overdue, at once (no refresh needed).
    app.ingest_ok(
        "acme",
        &json!([target_event("t-3600", &plus_minutes(&start, 3), 3600)]),
    )
    .await;
    let (okan, target) = figures(&app, "okan").await;
    assert_eq!(target, 3600);
    assert_eq!(okan[2], 0);
    app.db.refresh().await;
    assert_eq!(figures(&app, "okan").await.0, json!([3, 3, 0, 1.0]));
    assert_eq!(bi(&app).await, (3, 0, 3600));

    // The BI example: p1 today, 3 of 3 first responses within 3600 s (c5's reply was not
    // its assignee's first response).
    let client = app.db.client().await;
    client
        .batch_execute("SET ROLE cockpit_reader")
        .await
        .expect("reader");
    let today: chrono::NaiveDate = client
        .query_one(
            "SELECT today FROM reporting.organizations WHERE org_id = 'acme'",
            &[],
        )
        .await
        .expect("today")
        .get(0);
    // (numeric as text: the example's own columns, unchanged.)
    let example = include_str!("../../sql/bi/service_level_per_product.sql")
        .trim()
        .trim_end_matches(';');
    let rows = client
        .query(
            &format!(
                "SELECT product_id, service_level_seconds, first_responses::text,
                        within_target::text, service_level::text FROM ({example}) x"
            ),
            &[&"acme", &today, &today],
        )
        .await
        .expect("sql/bi/service_level_per_product.sql as cockpit_reader");
    let got: Vec<(String, i32, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        [(
            "p1".to_string(),
            3600,
            "3".to_string(),
            "3".to_string(),
            "1.0000".to_string()
        )]
    );
}

fn target_event(id: &str, at: &str, seconds: i64) -> Value {
    target(id, at, json!(seconds))
}

#[tokio::test]
async fn a_target_that_is_not_whole_seconds_from_1_to_86400_is_invalid_and_loses_nothing_else() {
    let app = spawn_app().await;
    let t0 = minutes_ago(30);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let at = minutes_ago(20);
    let batch = json!([
        target("s0", &at, json!(0)),
        target("s1", &at, json!(86401)),
        target("s2", &at, json!(1.5)),
        target("s3", &at, json!("60")),
        target("s4", &at, json!(true)),
        target("s5", &at, json!(-60)),
        target("s6", &at, json!(86400)),
        {"id": "p3", "type": "product_upserted", "at": at, "product": "p3", "name": "Üçüncü"},
    ]);
    let (status, answer) = app.post_events(&app.service_token("acme"), &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        rejected_codes(&answer),
        (0..6)
            .map(|i| (i, "INVALID".to_string()))
            .collect::<Vec<_>>(),
        "{answer}"
    );
    for rejection in answer["rejected"].as_array().expect("rejected") {
        assert_eq!(
            rejection["message"],
            "`serviceLevelSeconds` must be a whole number of seconds from 1 to 86400"
        );
    }
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(figures(&app, "okan").await.1, 86400);
    // 1 is the least, a whole 60.0 is 60, null is "not given"; each sent again is a
    // duplicate of itself.
    let more = json!([
        target("s7", &minutes_ago(19), json!(1)),
        target("s8", &minutes_ago(18), json!(60.0)),
        target("s9", &minutes_ago(17), Value::Null),
    ]);
    let answer = app.ingest_ok("acme", &more).await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(figures(&app, "okan").await.1, 60);
    let again = app.ingest_ok("acme", &more).await;
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(3))
    );
}
