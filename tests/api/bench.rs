//! The bench workload (`sql/bench/workload.sql`), small: a valid stream whose incremental
//! summary equals the full recompute.

use serde_json::Value;

use crate::common::TestDb;

#[tokio::test]
async fn the_bench_workload_and_its_minutes_are_valid_and_summarised_exactly() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(include_str!("../../sql/bench/workload.sql"))
        .await
        .unwrap();
    client
        .execute("SELECT bench.load(2, 3000, 300)", &[])
        .await
        .unwrap();
    let active: i64 = client
        .query_one(
            "SELECT count(*) FROM cockpit.conversations WHERE state = 'ACTIVE'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(active, 300);
    client
        .execute("INSERT INTO cockpit.dirty_conversations (org_id, conversation_id) SELECT org_id, conversation_id FROM cockpit.conversations", &[])
        .await
        .unwrap();
    db.refresh().await;
    for cycle in 1..=3 {
        let answers: Vec<Value> = client
            .query("SELECT cockpit.ingest_events(o.org_id, bench.minute(o.org_id, $1)) FROM cockpit.organizations o", &[&cycle])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for answer in answers {
            assert_eq!(answer["rejected"], serde_json::json!([]), "{answer}");
            assert!(answer["accepted"].as_i64().unwrap() > 50, "{answer}");
        }
        db.refresh().await;
    }
    let drift = client
        .query_one(cockpit::db::SUMMARY_DRIFT_SQL, &[])
        .await
        .unwrap();
    assert_eq!(drift.get::<_, i64>("differing"), 0);
    assert!(drift.get::<_, i64>("groups") > 0);
}
