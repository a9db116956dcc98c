//! Behind a transaction pooler (issue 23): Debian's PgBouncer in transaction mode in front
//! of the pool, the listener connected directly (`COCKPIT_LISTEN_DATABASE_URL`), and the
//! README's advice on the statement time limit (set it on the role) holding there.

use std::sync::Arc;

use cockpit::config::{Config, PoolMode};
use serde_json::{json, Value};
use tokio_postgres::SimpleQueryMessage;

use crate::busy::assert_busy;
use crate::common::pooler::{self, Pgbouncer};
use crate::common::{error_codes, minutes_ago, server, spawn_app_with, team, TestApp, TestDb};
use crate::live::{fresh, set_status, subscribed};

async fn bouncer(server_sessions: u32) -> Pgbouncer {
    tokio::task::spawn_blocking(move || pooler::start("pooler", &server(), server_sessions))
        .await
        .expect("join")
}

/// An app whose pool goes through `bouncer` to `db`, its listener straight to `db`.
async fn through(bouncer: &Pgbouncer, db: &Arc<TestDb>) -> TestApp {
    let pooled = bouncer.url(&db.name);
    spawn_app_with(db.clone(), Some(db.url.clone()), |c| Config {
        database_url: pooled,
        pool_mode: PoolMode::Transaction,
        ..c
    })
    .await
}

/// Transactions PgBouncer has carried to `dbname` (its admin console's `SHOW STATS`).
async fn carried(bouncer: &Pgbouncer, dbname: &str) -> i64 {
    let (client, connection) =
        tokio_postgres::connect(&bouncer.url("pgbouncer"), tokio_postgres::NoTls)
            .await
            .expect("PgBouncer's console");
    tokio::spawn(connection);
    let mut total = 0;
    for message in client.simple_query("SHOW STATS").await.expect("SHOW STATS") {
        if let SimpleQueryMessage::Row(row) = message {
            if row.get("database") == Some(dbname) {
                total += row
                    .get("total_xact_count")
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// `agent`'s row in a cockpit answer, from whichever of the four tables holds it.
fn row<'a>(answer: &'a Value, agent: &str) -> &'a Value {
    ["online", "onBreak", "invisible", "offline"]
        .iter()
        .filter_map(|table| answer["data"]["cockpit"][table].as_array())
        .flatten()
        .find(|r| r["agent"]["id"] == agent)
        .unwrap_or_else(|| panic!("{agent} in {answer}"))
}

#[tokio::test]
async fn ingest_queries_and_live_pushes_work_through_a_transaction_pooler() {
    // Two server sessions for two instances of four pooled connections each: their
    // transactions take turns on the same server sessions.
    let bouncer = bouncer(2).await;
    let db = Arc::new(TestDb::new().await);
    let a = through(&bouncer, &db).await;
    let b = through(&bouncer, &db).await;
    a.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;

    // A subscriber on b hears a status change made through a.
    let variables = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&b, variables.clone()).await;
    set_status(&a, "okan", "okan", "ONLINE").await;
    loop {
        if state == fresh(&b, &variables).await {
            break;
        }
        let update = ws.next_update().await.expect("an update");
        state.apply(&update);
    }
    assert_eq!(state, fresh(&a, &variables).await);

    // An ingest acknowledged by b is in a's next answer.
    b.ingest_ok(
        "acme",
        &json!([
            {"id": "o1", "type": "conversation_opened", "at": minutes_ago(5), "conversation": "c1", "product": "p1", "channel": "IN_APP"},
            {"id": "a1", "type": "assigned", "at": minutes_ago(4), "conversation": "c1", "agent": "okan"}
        ]),
    )
    .await;
    let query = "query($p: ID!) { cockpit(productId: $p) {
        online { agent { id status } activeConversations }
        onBreak { agent { id status } activeConversations }
        invisible { agent { id status } activeConversations }
        offline { agent { id status } activeConversations } } }";
    let answer = a
        .graphql(
            Some(&a.agent_token("acme", "sup")),
            query,
            variables.clone(),
        )
        .await;
    assert_eq!(row(&answer, "okan")["activeConversations"], 1, "{answer}");
    assert_eq!(
        row(&answer, "okan")["agent"]["status"],
        "ONLINE",
        "{answer}"
    );

    // A burst of queries on both instances, more than the server sessions.
    let mut burst = Vec::new();
    for i in 0..40 {
        let app = if i % 2 == 0 { &a } else { &b };
        let request = app
            .http
            .post(format!("{}/graphql", app.address))
            .bearer_auth(app.agent_token("acme", "sup"))
            .json(
                &json!({"query": query, "variables": {"p": if i % 3 == 0 { "p2" } else { "p1" }}}),
            );
        burst.push(tokio::spawn(async move {
            let response = request.send().await.expect("an answer");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
            )
        }));
    }
    for answer in burst {
        let (status, body) = answer.await.expect("join");
        assert_eq!(status, 200, "{body}");
        assert_eq!(error_codes(&body), Vec::<String>::new(), "{body}");
    }

    // The upkeep's session lock and VACUUM run on a direct session, not through the pooler.
    let pool =
        cockpit::db::pool_through_pooler(&bouncer.url(&db.name), &db.url, 2, None).expect("pool");
    assert!(pool.through_pooler());
    assert!(cockpit::live::refresher::upkeep(&pool)
        .await
        .expect("upkeep"));

    // And all of it really went through PgBouncer.
    assert!(carried(&bouncer, &db.name).await > 50);
}

#[tokio::test]
async fn the_statement_time_limit_holds_through_the_pooler_when_set_on_the_role() {
    let bouncer = bouncer(4).await;
    let db = Arc::new(TestDb::new().await);
    // The README's advice: PgBouncer ignores the pool's startup `options`, so the limit is
    // set on the role (here only in this test's database).
    server_client()
        .await
        .batch_execute(&format!(
            "ALTER ROLE postgres IN DATABASE {} SET statement_timeout = '1s'",
            cockpit::db::quote_ident(&db.name)
        ))
        .await
        .expect("the role's limit");
    let app = through(&bouncer, &db).await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;

    // Through the pooler, the session has the role's limit, not the startup option's 110 s.
    let pool =
        cockpit::db::pool_through_pooler(&bouncer.url(&db.name), &db.url, 1, None).expect("pool");
    let limit: String =
        cockpit::db::query_one(&pool, "SELECT current_setting('statement_timeout')", &[])
            .await
            .expect("the limit")
            .get(0);
    assert_eq!(limit, "1s");

    // A status change waiting on a row the test holds is cut at the limit: busy, 503.
    let held = db.client().await;
    held.batch_execute(
        "BEGIN; SELECT 1 FROM cockpit.agents WHERE org_id = 'acme' AND agent_id = 'okan' FOR UPDATE",
    )
    .await
    .expect("hold okan's row");
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.agent_token("acme", "okan"))
        .json(&json!({"query": "mutation { setAgentStatus(agentId: \"okan\", status: BREAK) { id } }"}))
        .send()
        .await
        .expect("an answer");
    assert_busy(response, true).await;
    held.batch_execute("COMMIT").await.expect("release okan");
    // Then it goes through.
    set_status(&app, "okan", "okan", "ONLINE").await;
}

async fn server_client() -> tokio_postgres::Client {
    crate::common::connect(&server()).await
}
