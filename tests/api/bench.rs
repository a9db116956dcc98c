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
    assert_eq!(drift.get::<_, i64>("kept_differing"), 0);
}

/// Runs `cockpit bench <args>` against the test server; its standard output.
async fn bench(args: &[&str]) -> String {
    let url = crate::common::url_of(&crate::common::server(), "postgres");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .arg("bench")
        .args(args)
        .args(["--database-url", &url])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("cockpit bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The number after `label` in `text`.
fn figure(text: &str, label: &str) -> f64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` in:\n{text}"))
        + label.len();
    text[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure after `{label}` in:\n{text}"))
}

#[tokio::test]
async fn bench_query_live_and_soak_run_on_a_tiny_workload() {
    // A database of its own per test process (two copies of the tests may run at once).
    let per_day = 3000 + (std::process::id() % 997) as i32;
    let per_day_arg = per_day.to_string();
    let query = bench(&[
        "query",
        "--clients",
        "2",
        "--seconds",
        "1",
        "--per-day",
        &per_day_arg,
    ])
    .await;
    assert!(query.contains("whole scope"), "{query}");
    assert!(figure(&query, "one agent's row") > 0.0, "{query}");
    assert!(
        query.contains("memory 100%"),
        "a followed scope is answered from memory: {query}"
    );

    let live = bench(&[
        "live",
        "--subs",
        "24",
        "--changes",
        "12",
        "--rate",
        "20",
        "--p10-seconds",
        "1",
        "--per-day",
        &per_day_arg,
    ])
    .await;
    assert!(figure(&live, "deliveries expected") > 0.0, "{live}");
    assert_eq!(figure(&live, ", lost"), 0.0, "{live}");
    assert_eq!(figure(&live, "differs from the statement:"), 0.0, "{live}");
    assert!(figure(&live, "instance 2: RSS") > 0.0, "{live}");
    assert!(live.contains("P10:"), "{live}");

    let soak = bench(&[
        "soak",
        "--subs",
        "10",
        "--minutes",
        "0.2",
        "--per-day",
        &per_day_arg,
    ])
    .await;
    assert!(figure(&soak, "instance 1: RSS at minute") > 0.0, "{soak}");
    assert!(soak.contains("growth"), "{soak}");

    let mut maintenance = crate::common::server();
    maintenance.dbname("postgres");
    let admin = crate::common::connect(&maintenance).await;
    // The loaded database and the copy each run works on.
    for name in [
        format!("cockpit_bench_1d_{per_day}"),
        format!("cockpit_bench_1d_{per_day}_run"),
    ] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("drop a bench database");
    }
}
