//! The BI contract (spec 6): views readable by cockpit_reader, documented, and nothing else.

use serde_json::{json, Value};

use crate::common::{minutes_ago, spawn_app, team};

#[tokio::test]
async fn cockpit_reader_reads_the_reporting_views_and_nothing_else() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(5)))).await;
    let client = app.db.client().await;
    client
        .batch_execute("SET ROLE cockpit_reader")
        .await
        .unwrap();
    for view in [
        "agent_daily",
        "agent_live",
        "agent_status_changes",
        "organizations",
    ] {
        client
            .query(&format!("SELECT * FROM reporting.{view}"), &[])
            .await
            .unwrap_or_else(|e| panic!("reporting.{view}: {e}"));
    }
    let live = client
        .query("SELECT * FROM reporting.agent_live", &[])
        .await
        .unwrap();
    assert_eq!(
        live.len(),
        (1 + 2 + 1) * 6,
        "every membership, all six channels"
    );
    for table in [
        "cockpit.events",
        "cockpit.daily_stats",
        "cockpit.agents",
        "refinery_schema_history",
    ] {
        let err = client
            .query(&format!("SELECT * FROM {table}"), &[])
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{table}"
        );
    }
}

#[tokio::test]
async fn every_reporting_view_and_column_is_documented() {
    let db = crate::common::TestDb::new().await;
    let undocumented: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT c.relname || coalesce('.' || a.attname, '')
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'reporting'
               LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind = 'v'
                AND (obj_description(c.oid, 'pg_class') IS NULL
                     OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(undocumented.is_empty(), "undocumented: {undocumented:?}");
}

#[tokio::test]
async fn the_bi_examples_run_as_cockpit_reader_and_weigh_channels() {
    let app = spawn_app().await;
    let t0 = minutes_ago(30);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let mut events = Vec::new();
    for (c, channel, reply) in [
        ("a", "WHATSAPP", 1),
        ("b", "WHATSAPP", 2),
        ("c", "LIVE_CHAT", 10),
    ] {
        events.push(json!({"id": format!("{c}-o"), "type": "conversation_opened", "at": t0, "conversation": c, "product": "p1", "channel": channel}));
        events.push(json!({"id": format!("{c}-a"), "type": "assigned", "at": t0, "conversation": c, "agent": "ipek"}));
        events.push(json!({"id": format!("{c}-r"), "type": "agent_message", "at": crate::common::plus_minutes(&t0, reply), "conversation": c, "agent": "ipek"}));
    }
    app.ingest_ok("acme", &json!(events)).await;
    app.db.refresh().await;
    let client = app.db.client().await;
    client
        .batch_execute("SET ROLE cockpit_reader")
        .await
        .unwrap();

    let cockpit = bi(
        &client,
        include_str!("../../sql/bi/today_cockpit.sql"),
        &[&"acme", &"p1"],
    )
    .await;
    let ipek = cockpit
        .iter()
        .find(|r| r["agent_id"] == "ipek")
        .expect("ipek in p1's cockpit");
    // (60 + 120 + 600) / 3, not the average of the channel averages.
    assert_eq!(ipek["avg_first_response_seconds"], json!(260.0));
    assert_eq!(ipek["status"], "OFFLINE");
    assert_eq!(cockpit.len(), 3, "okan, ipek and sup are members of p1");

    let trend = bi(
        &client,
        include_str!("../../sql/bi/week_trend.sql"),
        &[&"acme"],
    )
    .await;
    assert_eq!(trend.len(), 1, "{trend:?}");
    assert_eq!(trend[0]["first_responses"], json!(3));

    let today: chrono::NaiveDate = client
        .query_one(
            "SELECT today FROM reporting.organizations WHERE org_id = 'acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let split = bi(
        &client,
        include_str!("../../sql/bi/channel_split.sql"),
        &[&"acme", &"p1", &today],
    )
    .await;
    let by_channel: Vec<(String, Value)> = split
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap().to_string(),
                r["avg_first_response_seconds"].clone(),
            )
        })
        .collect();
    // (The organization's zone puts it near noon: the events are today at any hour.)
    assert_eq!(
        by_channel,
        vec![
            ("LIVE_CHAT".into(), json!(600.0)),
            ("WHATSAPP".into(), json!(90.0))
        ]
    );
}

/// Runs a BI example with its parameters; rows as JSON objects.
async fn bi(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<Value> {
    let wrapped = format!(
        "SELECT to_jsonb(q)::text FROM ({}) q",
        sql.trim().trim_end_matches(';')
    );
    client
        .query(&wrapped, params)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"))
        .iter()
        .map(|r| serde_json::from_str(&r.get::<_, String>(0)).unwrap())
        .collect()
}
