//! The refresh of the daily columns as it runs in production: in bounded chunks, once per
//! interval across instances, and with its own upkeep where autovacuum is off.

use serde_json::{json, Value};

use crate::common::{minutes_ago, spawn_app, team, TestApp};

/// `n` conversations opened, assigned and answered: each marked for the refresh.
async fn conversations(app: &TestApp, n: usize) {
    let t0 = minutes_ago(30);
    let mut events = team(&t0);
    for i in 0..n {
        events.push(json!({"id": format!("o{i}"), "type": "conversation_opened", "at": minutes_ago(20), "conversation": format!("c{i}"), "product": "p1", "channel": "LIVE_CHAT"}));
        events.push(json!({"id": format!("a{i}"), "type": "assigned", "at": minutes_ago(19), "conversation": format!("c{i}"), "agent": "okan"}));
        events.push(json!({"id": format!("r{i}"), "type": "agent_message", "at": minutes_ago(18), "conversation": format!("c{i}"), "agent": "okan"}));
    }
    app.ingest_ok("acme", &json!(events)).await;
}

/// A session that holds the refresh lock: the app's own refresher skips every tick while
/// it lives, and refreshes run through [`refresh_with`] on it.
async fn refresh_holder(app: &TestApp) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('cockpit.refresh_daily', 0))",
            &[],
        )
        .await
        .expect("hold the refresh lock");
    client
}

/// Runs the refresh function with its arguments on the holder's session.
async fn refresh_with(
    holder: &mut tokio_postgres::Client,
    skip_seconds: Option<f64>,
    chunk: i32,
) -> Option<Value> {
    holder
        .query_one(
            "SELECT cockpit.refresh_daily($1::double precision * interval '1 second', $2)",
            &[&skip_seconds, &chunk],
        )
        .await
        .expect("refresh")
        .get(0)
}

#[tokio::test]
async fn a_backlog_is_refreshed_in_bounded_chunks_and_ends_exactly_right() {
    let app = spawn_app().await;
    let mut holder = refresh_holder(&app).await;
    conversations(&app, 12).await;
    let mut chunks = Vec::new();
    loop {
        let answer = refresh_with(&mut holder, None, 5).await.expect("a refresh");
        chunks.push((answer["conversations"].clone(), answer["more"].clone()));
        if answer["more"] == json!(false) || chunks.len() > 5 {
            break;
        }
    }
    assert_eq!(
        chunks,
        vec![
            (json!(5), json!(true)),
            (json!(5), json!(true)),
            (json!(2), json!(false))
        ]
    );
    let drift = app
        .db
        .client()
        .await
        .query_one(cockpit::db::SUMMARY_DRIFT_SQL, &[])
        .await
        .expect("drift");
    assert_eq!(
        drift.get::<_, i64>("differing"),
        0,
        "the summary equals a full recompute"
    );
    assert_eq!(
        drift.get::<_, i64>("kept_differing"),
        0,
        "the kept per-agent rows equal what they sum"
    );
    let daily = app.db.agent_daily().await;
    assert!(daily.iter().any(|row| row.contains("okan")), "{daily:?}");
}

#[tokio::test]
async fn a_refresh_soon_after_another_is_skipped_and_an_unconditional_one_is_not() {
    let app = spawn_app().await;
    let mut holder = refresh_holder(&app).await;
    conversations(&app, 1).await;
    assert!(refresh_with(&mut holder, None, 100).await.is_some());
    // Another instance's tick a moment later: the last refresh is younger than an hour.
    assert_eq!(refresh_with(&mut holder, Some(3600.0), 100).await, None);
    // Past the given age it refreshes.
    assert!(refresh_with(&mut holder, Some(0.0), 100).await.is_some());
}

#[tokio::test]
async fn the_upkeep_vacuums_the_rewritten_tables_once_across_instances() {
    let app = spawn_app().await;
    conversations(&app, 3).await;
    app.db.refresh().await;
    let pool = cockpit::db::pool(&app.db.url, 1).expect("pool");

    // Another instance is at it: this one leaves it.
    let other = app.db.client().await;
    other
        .execute("SELECT pg_advisory_lock(x'636f636b70697402'::bigint)", &[])
        .await
        .expect("hold the upkeep lock");
    assert!(!cockpit::live::refresher::upkeep(&pool)
        .await
        .expect("upkeep"));
    // Released before the next attempt (dropping the client would release it later, when
    // the server notices the closed connection).
    other
        .execute(
            "SELECT pg_advisory_unlock(x'636f636b70697402'::bigint)",
            &[],
        )
        .await
        .expect("release the upkeep lock");

    assert!(cockpit::live::refresher::upkeep(&pool)
        .await
        .expect("upkeep"));
    let vacuumed: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT relname::text FROM pg_stat_user_tables \
              WHERE schemaname = 'cockpit' AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL \
              ORDER BY 1",
            &[],
        )
        .await
        .expect("stats")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "conversation_daily",
        "conversations",
        "daily_stats",
        "dirty_conversations",
        "refresh_state",
        // Rewritten by every status change (its kept time in status, issue 22).
        "status_time",
        // Rewritten by the refresh and by ingest (per-agent rows of the cockpit).
        "daily_agent_totals",
        "agent_active",
    ] {
        assert!(vacuumed.iter().any(|t| t == table), "{table}: {vacuumed:?}");
    }
}

/// The refresh's statement of the rules (`cockpit.conversation_facts_indexed`: lifecycle
/// events plus one index descent per assignment) against their plain statement over every
/// event (`cockpit.conversation_facts`, the oracle's), on random event logs written straight
/// into the table: ties of `at` between every kind of event, replies by others and by the
/// assignee after a hand-over, resolutions by anyone, hand-overs with and without `by`,
/// replies before any assignment and after the resolution.
#[tokio::test]
async fn the_refresh_states_the_metric_rules_exactly_as_the_oracle_does() {
    let db = crate::common::TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO cockpit.organizations (org_id, name, timezone) VALUES ('acme', 'Acme', 'Europe/Istanbul');
             SELECT setseed(0.42);
             INSERT INTO cockpit.conversations (org_id, conversation_id, product_id, channel, opened_at)
             SELECT 'acme', 'c' || i, 'p1', 'LIVE_CHAT', timestamptz '2026-03-28 20:00:00Z'
               FROM generate_series(0, 299) i;
             INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
             SELECT 'acme', 'e' || i, x.type,
                    timestamptz '2026-03-28 20:00:00Z' + (floor(random() * 40) * interval '3 hours'),
                    cockpit.event_rank(x.type), 'c' || (i % 300),
                    CASE WHEN x.type <> 'customer_message' THEN (ARRAY['okan', 'ipek', 'cem'])[1 + floor(random() * 3)::int] END,
                    CASE WHEN x.type = 'assigned' AND random() < 0.5 THEN (ARRAY['okan', 'ipek', 'cem'])[1 + floor(random() * 3)::int] END,
                    '{}'
               FROM generate_series(1, 6000) i
              -- (`i * 0`: a subquery of each row, not one value for all.)
              CROSS JOIN LATERAL (
                    SELECT (ARRAY['assigned', 'reactivated', 'resolved', 'agent_message', 'agent_message',
                                  'agent_message', 'customer_message'])[1 + floor(random() * 7 + i * 0)::int] AS type) x;",
        )
        .await
        .expect("random event logs");
    let row = client
        .query_one(
            "WITH convs AS MATERIALIZED (
                      SELECT array_agg(DISTINCT conversation_id) AS ids FROM cockpit.events),
                  plain AS (SELECT f.conversation_id, f.day, f.agent_id, f.product_id, f.channel,
                                   f.first_response_count, f.first_response_seconds_sum,
                                   f.resolution_count, f.resolution_seconds_sum, f.resolved_count,
                                   f.reactivated_count, f.forwarded_count,
                                   f.first_responses_within_target
                              FROM cockpit.conversation_facts('acme') f),
                  indexed AS (SELECT f.conversation_id::text, f.day, f.agent_id::text,
                                     f.product_id::text, f.channel,
                                     f.first_response_count, f.first_response_seconds_sum,
                                     f.resolution_count, f.resolution_seconds_sum, f.resolved_count,
                                     f.reactivated_count, f.forwarded_count,
                                     f.first_responses_within_target
                                FROM convs c, cockpit.conversation_facts_indexed('acme', c.ids) f)
             SELECT (SELECT count(*) FROM (SELECT * FROM plain EXCEPT ALL SELECT * FROM indexed) d)
                  + (SELECT count(*) FROM (SELECT * FROM indexed EXCEPT ALL SELECT * FROM plain) d),
                    (SELECT count(*) FROM plain),
                    (SELECT coalesce(sum(first_response_count), 0) FROM plain),
                    (SELECT coalesce(sum(resolution_count), 0) FROM plain),
                    (SELECT count(DISTINCT day) FROM plain)",
            &[],
        )
        .await
        .expect("both statements");
    let (differing, rows, first_responses, resolutions, days): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(differing, 0, "rows that differ, of {rows}");
    // The logs exercise the rules: answers, resolutions, several local days.
    assert!(
        rows > 500 && first_responses > 100 && resolutions > 50 && days > 3,
        "{rows} rows, {first_responses} first responses, {resolutions} resolutions, {days} days"
    );
}
