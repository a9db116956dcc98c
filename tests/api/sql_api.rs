//! `cockpit.ingest_events` for platforms sharing the database, and its grants.

use serde_json::{json, Value};

use crate::common::{minutes_ago, spawn_app, team};

#[tokio::test]
async fn the_sql_function_answers_like_the_http_endpoint() {
    let app = spawn_app().await;
    let t0 = minutes_ago(5);
    let batch = json!([
        team(&t0)[0].clone(),
        {"id": "bad", "type": "assigned", "at": t0, "conversation": "c1", "agent": "okan"}
    ]);
    let (_, http_answer) = app.post_events(&app.service_token("acme"), &batch).await;

    let other = crate::common::TestDb::new().await;
    let client = other.client().await;
    client
        .batch_execute("SET ROLE cockpit_ingest")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT cockpit.ingest_events($1, $2::jsonb)",
            &[&"acme", &batch],
        )
        .await
        .unwrap();
    let sql_answer: Value = row.get(0);
    assert_eq!(sql_answer, http_answer);
    // cockpit_ingest may call the function but read nothing.
    let denied = client
        .query("SELECT * FROM cockpit.events", &[])
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
}

#[tokio::test]
async fn roles_other_than_cockpit_ingest_cannot_call_the_function() {
    let db = crate::common::TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute("SET ROLE cockpit_reader")
        .await
        .unwrap();
    let err = client
        .query_one("SELECT cockpit.ingest_events('acme', '[]'::jsonb)", &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
}

#[tokio::test]
async fn the_sql_function_refuses_a_body_that_is_not_events() {
    let db = crate::common::TestDb::new().await;
    let client = db.client().await;
    for (org, events) in [("acme", json!(42)), ("", json!([]))] {
        let err = client
            .query_one(
                "SELECT cockpit.ingest_events($1, $2::jsonb)",
                &[&org, &events],
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE)
        );
    }
}
