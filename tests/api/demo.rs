//! `cockpit demo`: its seed and simulated traffic are valid streams.

use serde_json::json;

use crate::common::{spawn_app, COCKPIT_QUERY};

#[tokio::test]
async fn the_demo_seed_and_its_traffic_are_accepted_whole_and_show_figures() {
    let app = spawn_app().await;
    let pool = cockpit::db::pool(&app.db.url, 2).unwrap();
    cockpit::demo::seed(&pool).await.unwrap();
    cockpit::demo::seed(&pool)
        .await
        .expect("a second run re-sends duplicates");
    let now = chrono::Utc::now();
    // The demo organization moved to a zone where it is about noon: its last two hours are
    // today whatever the hour the test runs at.
    let zone = json!([{"id": "test-zone", "type": "organization_upserted",
                       "at": now.to_rfc3339(), "name": "Demo", "timezone": crate::common::noon_zone()}]);
    let report = cockpit::ingest::store_json(&pool, cockpit::demo::ORG, &zone)
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
    let mut traffic = cockpit::demo::Traffic::new();
    let history = traffic.history(now - chrono::Duration::minutes(10), 120);
    assert!(history.len() > 100, "{} events", history.len());
    let report = cockpit::ingest::store_json(&pool, cockpit::demo::ORG, &json!(history))
        .await
        .unwrap();
    assert_eq!(report.rejected, vec![], "history");
    for second in 0..120 {
        let events = traffic.tick(now - chrono::Duration::seconds(600 - 5 * second));
        let report = cockpit::ingest::store_json(&pool, cockpit::demo::ORG, &json!(events))
            .await
            .unwrap();
        assert_eq!(report.rejected, vec![], "tick {second}");
    }
    app.db.refresh().await;
    let token = app.agent_token(cockpit::demo::ORG, cockpit::demo::SUPERVISOR);
    let answer = app
        .graphql(Some(&token), COCKPIT_QUERY, json!({"p": "mobil"}))
        .await;
    let online = answer["data"]["cockpit"]["online"]
        .as_array()
        .expect("rows");
    assert!(
        online
            .iter()
            .any(|r| r["resolvedConversations"].as_i64() > Some(0)),
        "{answer}"
    );
    // The traffic moves the insights too: first responses inside and past the 60 s target,
    // customers who write again after an answer (waiting again), conversations that sat
    // in the queue for minutes. (Hundreds of random conversations: each holds for certain
    // in practice.)
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT sum(first_responses_within_target) FROM reporting.agent_daily
                      WHERE org_id = $1)::bigint,
                    (SELECT sum(first_response_count - first_responses_within_target)
                       FROM reporting.agent_daily WHERE org_id = $1)::bigint,
                    (SELECT count(*) FROM cockpit.events m
                      WHERE m.org_id = $1 AND m.type = 'customer_message'
                        AND EXISTS (SELECT 1 FROM cockpit.events r
                                     WHERE r.org_id = m.org_id AND r.conversation_id = m.conversation_id
                                       AND r.type = 'agent_message' AND r.at < m.at)),
                    (SELECT count(*) FROM cockpit.conversations c
                      WHERE c.org_id = $1 AND c.assigned_at > c.opened_at + interval '1 minute')",
            &[&cockpit::demo::ORG],
        )
        .await
        .expect("insights of the demo");
    let figures: [i64; 4] = [row.get(0), row.get(1), row.get(2), row.get(3)];
    assert!(figures.iter().all(|n| *n > 0), "{figures:?}");
}

#[tokio::test]
async fn the_demo_starts_a_throwaway_cluster_when_nothing_answers_at_the_default() {
    // A loopback port that nothing listens on stands for an absent local server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let absent = format!("postgres://postgres@127.0.0.1:{port}/cockpit");
    assert!(cockpit::startup::server_answers(&absent).await.is_err());

    let database = cockpit::startup::demo_database(None, &absent)
        .await
        .expect("a throwaway cluster from this machine's PostgreSQL binaries");
    let cluster = database.throwaway.expect("the demo says it started one");
    assert!(cluster.dir.exists(), "{}", cluster.dir.display());
    assert!(database.url.ends_with("/cockpit"), "{}", database.url);
    assert_ne!(database.url, absent);
    cockpit::db::ensure_database(&database.url)
        .await
        .expect("the demo's database is created there");
    let pool = cockpit::db::pool(&database.url, 1).expect("pool");
    cockpit::db::migrate(&pool).await.expect("migrated");
    assert!(cockpit::db::is_ready(&pool).await.expect("readiness"));

    // An explicit DATABASE_URL is used as it is, nothing started.
    let explicit = cockpit::startup::demo_database(Some(absent.clone()), "unused")
        .await
        .expect("explicit");
    assert_eq!((explicit.url, explicit.throwaway.is_none()), (absent, true));
}
