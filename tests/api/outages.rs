//! Requests that must not hold what others need: one tenant's queued batches, a client that
//! goes away mid-batch, a database connection that freezes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::busy::assert_busy;
use crate::common::proxy::Proxy;
use crate::common::{minutes_ago, server, spawn_app, team, url_of, TestApp, TestDb, JWT_SECRET};
use cockpit::config::Config;
use cockpit::http::Application;

/// Bound on waits that would otherwise hang forever (a hang guard, not a measurement).
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Takes `org`'s ingest lock in a session of the test, as a long batch would.
async fn hold_ingest_lock(app: &TestApp, org: &str) -> tokio_postgres::Client {
    let client = app.db.client().await;
    client
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('cockpit.ingest/' || $1::text, 0))",
            &[&org],
        )
        .await
        .expect("hold the ingest lock");
    client
}

/// Ingest statements of this database, waiting for a lock or running.
async fn ingest_statements(app: &TestApp) -> i64 {
    app.db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND pid <> pg_backend_pid() \
                AND state = 'active' AND query LIKE '%ingest_events%'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

async fn wait_for_ingest_statements(app: &TestApp, wanted: i64) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let now = ingest_statements(app).await;
        if now == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now} ingest statements, expected {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn batch(prefix: &str, t0: &str) -> Value {
    json!([{"id": format!("{prefix}-p"), "type": "product_upserted", "at": t0, "product": prefix, "name": prefix}])
}

#[tokio::test]
async fn one_tenants_queued_batches_leave_the_pool_to_the_others() {
    let app = Arc::new(spawn_app().await); // a pool of 4 connections
    let t0 = minutes_ago(5);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    app.ingest_ok("globex", &json!(team(&t0))).await;
    let lock = hold_ingest_lock(&app, "acme").await;

    // Eight batches of acme queue behind its lock: twice the pool.
    let queued: Vec<_> = (0..8)
        .map(|i| {
            let app = app.clone();
            let t0 = t0.clone();
            tokio::spawn(async move {
                app.post_events(&app.service_token("acme"), &batch(&format!("q{i}"), &t0))
                    .await
            })
        })
        .collect();
    wait_for_ingest_statements(&app, 1).await;

    // Another organization is served, and the instance stays ready.
    let token = app.agent_token("globex", "sup");
    let answer = tokio::time::timeout(
        HANG_GUARD,
        app.graphql(Some(&token), "{ products { id } }", json!({})),
    )
    .await
    .expect("globex's query waited for acme's batches");
    assert_eq!(
        answer["data"]["products"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    let (status, body) = tokio::time::timeout(HANG_GUARD, app.get("/readyz"))
        .await
        .expect("/readyz waited for acme's batches");
    assert_eq!(status, 200, "{body}");
    // Only one of acme's batches holds a connection; the others wait outside the pool.
    assert_eq!(ingest_statements(&app).await, 1);

    drop(lock);
    for task in queued {
        let (status, answer) = task.await.expect("batch task");
        assert_eq!(
            (status, answer["accepted"].clone()),
            (200, json!(1)),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_client_that_goes_away_mid_batch_leaves_no_statement_and_no_lock_behind() {
    let app = Arc::new(spawn_app().await);
    let t0 = minutes_ago(5);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let lock = hold_ingest_lock(&app, "acme").await;

    let sender = {
        let app = app.clone();
        let t0 = t0.clone();
        tokio::spawn(async move {
            app.post_events(&app.service_token("acme"), &batch("gone", &t0))
                .await
        })
    };
    wait_for_ingest_statements(&app, 1).await;
    sender.abort(); // the client hangs up
    let _ = sender.await;
    // The server notices, cancels the statement and lets go of the connection.
    wait_for_ingest_statements(&app, 0).await;

    drop(lock);
    let (status, answer) = tokio::time::timeout(
        HANG_GUARD,
        app.post_events(&app.service_token("acme"), &batch("next", &t0)),
    )
    .await
    .expect("the next batch waited");
    assert_eq!(
        (status, answer["accepted"].clone()),
        (200, json!(1)),
        "{answer}"
    );
    let abandoned: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM cockpit.events WHERE event_id = 'gone-p'",
            &[],
        )
        .await
        .expect("events")
        .get(0);
    assert_eq!(
        abandoned, 0,
        "the abandoned batch was never acknowledged nor stored"
    );
}

#[tokio::test]
async fn a_frozen_database_connection_turns_into_a_timely_503_and_the_service_recovers() {
    let db = Arc::new(TestDb::new().await);
    let config = server();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    let mut through = tokio_postgres::Config::new();
    through
        .host("127.0.0.1")
        .port(proxy.port)
        .user(config.get_user().unwrap_or("postgres"));
    let app = Application::build(&Config {
        listen_url: Some(db.url.clone()),
        bind: "127.0.0.1:0".parse().expect("address"),
        refresh_interval: Duration::from_secs(1),
        pool_size: 2,
        request_timeout: Duration::from_secs(2),
        ..Config::new(url_of(&through, &db.name), JWT_SECRET)
    })
    .await
    .expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let keys = cockpit::auth::Keys::new(JWT_SECRET);
    let service = keys.issue(
        "acme",
        "p",
        cockpit::auth::TokenRole::Service,
        Duration::from_secs(600),
    );
    let http = reqwest::Client::new();
    let ingested = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(&service)
        .json(&json!(team(&minutes_ago(5))))
        .send()
        .await
        .expect("ingest");
    assert_eq!(ingested.status().as_u16(), 200);
    let token = keys.issue(
        "acme",
        "sup",
        cockpit::auth::TokenRole::Supervisor,
        Duration::from_secs(600),
    );
    let products = || {
        http.post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({"query": "{ products { id } }"}))
            .send()
    };
    assert_eq!(products().await.expect("query").status().as_u16(), 200);

    proxy.freeze();
    let answer = tokio::time::timeout(HANG_GUARD, products())
        .await
        .expect("the request hung on the frozen connection")
        .expect("an answer");
    // Busy, in words a retrying client reads: 503, Retry-After, the code in the body.
    assert_busy(answer, true).await;
    // /readyz turns red within 1 s whatever the database does (bounded here at 3 s: a
    // probe with a short timeout sees a red light, not a hang).
    let ready = tokio::time::timeout(
        Duration::from_secs(3),
        http.get(format!("{base}/readyz")).send(),
    )
    .await
    .expect("/readyz answers during a stall")
    .expect("an answer");
    assert_eq!(ready.status().as_u16(), 503);
    let reason: Value = ready.json().await.expect("a JSON body");
    assert_eq!(reason["status"], "not ready", "{reason}");

    // Once the path is back, fresh connections replace the frozen ones.
    proxy.thaw();
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let status = products().await.expect("query").status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
    }

    // The database lost (connections cut, new ones refused): busy too, never a 500, on
    // GraphQL and ingest alike.
    proxy.cut();
    let answer = tokio::time::timeout(HANG_GUARD, products())
        .await
        .expect("no hang when the database is lost")
        .expect("an answer");
    assert_busy(answer, true).await;
    let ingest = tokio::time::timeout(
        HANG_GUARD,
        http.post(format!("{base}/v1/events"))
            .bearer_auth(&service)
            .json(&json!([{"id": "lost-1", "type": "customer_message", "at": minutes_ago(1), "conversation": "c"}]))
            .send(),
    )
    .await
    .expect("no hang when the database is lost")
    .expect("an answer");
    assert_busy(ingest, false).await;
    proxy.restore();
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while products().await.expect("query").status().as_u16() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
    }
    server.abort();
}
