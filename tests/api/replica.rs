//! BI on a streaming replica (issue 23): a hot standby made with `pg_basebackup` from a
//! primary running the product; `cockpit_reader` reads every `reporting` view there, and
//! after a refresh on the primary the replica shows the same rows.

use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

use crate::common::{minutes_ago, plus_minutes, team};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Every row of a reporting view as `cockpit_reader` reads it, as text, sorted.
async fn rows(client: &Client, view: &str) -> Vec<String> {
    client
        .query(
            &format!("SELECT v::text FROM reporting.{view} v ORDER BY 1"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("reporting.{view}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The rows of `view` on the replica, once they are bracketed by two equal reads of the
/// primary: the figures derived from the clock (today's time in status, today) are then
/// those of one instant on both servers.
async fn same_on_both(primary: &Client, replica: &Client, view: &str) -> Vec<String> {
    for _ in 0..100 {
        let before = rows(primary, view).await;
        let theirs = rows(replica, view).await;
        let after = rows(primary, view).await;
        if before == after {
            assert_eq!(theirs, before, "reporting.{view} on the replica");
            return theirs;
        }
    }
    panic!("reporting.{view} changed on the primary between every two reads");
}

async fn ingest(client: &Client, events: Value) {
    let answer: Value = client
        .query_one(
            "SELECT cockpit.ingest_events('acme', $1::jsonb)",
            &[&events],
        )
        .await
        .expect("ingest")
        .get(0);
    assert_eq!(answer["rejected"], json!([]), "{answer}");
}

#[tokio::test]
async fn bi_reads_every_reporting_view_on_a_streaming_replica_as_on_the_primary() {
    let (primary, standby) = tokio::task::spawn_blocking(|| {
        let primary = cockpit::pgcluster::start_throwaway("replica-primary")?;
        let standby = cockpit::pgcluster::start_standby("replica-standby", &primary)?;
        Ok::<_, String>((primary, standby))
    })
    .await
    .expect("join")
    .expect("a primary and its hot standby");

    // Every commit on the primary returns once the standby has applied it: what a test
    // then reads there is what the primary committed, without waiting on a clock.
    let admin = connect(&primary.url).await;
    for statement in [
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
        "ALTER SYSTEM SET synchronous_commit = 'remote_apply'",
        "SELECT pg_reload_conf()",
        "CREATE DATABASE cockpit",
    ] {
        admin.batch_execute(statement).await.expect(statement);
    }
    let cockpit_db = |url: &str| match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/cockpit"),
        None => panic!("no database in {url}"),
    };
    let (primary_url, replica_url) = (cockpit_db(&primary.url), cockpit_db(&standby.url));
    let pool = cockpit::db::pool(&primary_url, 2).expect("pool");
    cockpit::db::migrate(&pool)
        .await
        .expect("migrate the primary");
    pool.close();

    let writer = connect(&primary_url).await;
    let base = minutes_ago(90);
    ingest(&writer, json!(team(&base))).await;
    let at = |minutes| plus_minutes(&base, minutes);
    ingest(
        &writer,
        json!([
            {"id": "o1", "type": "conversation_opened", "at": at(10), "conversation": "c1", "product": "p1", "channel": "IN_APP"},
            {"id": "a1", "type": "assigned", "at": at(11), "conversation": "c1", "agent": "okan"},
            {"id": "m1", "type": "agent_message", "at": at(12), "conversation": "c1", "agent": "okan"},
            {"id": "r1", "type": "resolved", "at": at(20), "conversation": "c1", "agent": "okan"},
            {"id": "o2", "type": "conversation_opened", "at": at(30), "conversation": "c2", "product": "p2", "channel": "WHATSAPP"},
            {"id": "a2", "type": "assigned", "at": at(31), "conversation": "c2", "agent": "ipek"},
            {"id": "q2", "type": "customer_message", "at": at(32), "conversation": "c2"}
        ]),
    )
    .await;
    // Okan comes online, then the supervisor sends him on a break.
    for (actor, status) in [("okan", "ONLINE"), ("sup", "BREAK")] {
        let outcome: String = writer
            .query_one(
                "SELECT outcome FROM cockpit.set_agent_status('acme', $1, 'okan', $2)",
                &[&actor, &status],
            )
            .await
            .expect("status change")
            .get(0);
        assert_eq!(outcome, "CHANGED", "{actor}: {status}");
    }

    let replica = connect(&replica_url).await;
    let in_recovery: bool = replica
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .expect("recovery")
        .get(0);
    assert!(in_recovery, "the replica is a hot standby");
    let reader = connect(&primary_url).await;
    for client in [&reader, &replica] {
        client
            .batch_execute("SET ROLE cockpit_reader")
            .await
            .expect("BI role");
    }
    // Nothing refreshed yet: no daily figures on the replica either.
    assert_eq!(rows(&replica, "agent_daily").await, Vec::<String>::new());

    let refreshed: Value = writer
        .query_one("SELECT cockpit.refresh_daily()", &[])
        .await
        .expect("refresh on the primary")
        .get(0);
    assert_eq!(refreshed["conversations"], json!(2), "{refreshed}");

    let views: Vec<String> = writer
        .query(
            "SELECT table_name::text FROM information_schema.views
              WHERE table_schema = 'reporting' ORDER BY 1",
            &[],
        )
        .await
        .expect("views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for view in [
        "agent_daily",
        "agent_live",
        "agent_status_changes",
        "agent_status_daily",
        "open_conversations",
        "organizations",
    ] {
        assert!(views.iter().any(|v| v == view), "{view}: {views:?}");
    }
    for view in &views {
        let seen = same_on_both(&reader, &replica, view).await;
        assert!(!seen.is_empty(), "reporting.{view} has rows");
    }
    // The refresh's figures are there: okan's resolution, ipek's open conversation.
    let daily = rows(&replica, "agent_daily").await;
    assert!(
        daily.iter().any(|r| r.contains("okan")),
        "the refreshed daily row of okan: {daily:?}"
    );
    let open = rows(&replica, "open_conversations").await;
    assert!(open.iter().any(|r| r.contains("c2")), "{open:?}");

    // The replica is read-only: BI cannot write there, even as the superuser.
    let err = replica
        .batch_execute("RESET ROLE; SELECT cockpit.refresh_daily()")
        .await
        .expect_err("a refresh on the standby");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err}"
    );
}
