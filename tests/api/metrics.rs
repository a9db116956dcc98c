//! The daily columns (spec 3.1): metric rules, local days, incremental refresh.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::{plus_minutes, spawn_app, team, TestApp, TestDb};
use crate::ordering::{conversation, shuffled_arrival};

/// An agent's figures over all products and channels (weighted), on one day or all days.
#[derive(Debug, PartialEq)]
struct Figures {
    first_responses: i64,
    avg_first_response: Option<f64>,
    timed_resolutions: i64,
    avg_resolution: Option<f64>,
    resolved: i64,
    reactivated: i64,
    forwarded: i64,
}

async fn figures(db: &TestDb, agent: &str, day: Option<&str>) -> Figures {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(first_response_count), 0)::bigint,
                    (sum(first_response_seconds_sum) / nullif(sum(first_response_count), 0))::float8,
                    coalesce(sum(resolution_count), 0)::bigint,
                    (sum(resolution_seconds_sum) / nullif(sum(resolution_count), 0))::float8,
                    coalesce(sum(resolved_count), 0)::bigint,
                    coalesce(sum(reactivated_count), 0)::bigint,
                    coalesce(sum(forwarded_count), 0)::bigint
               FROM reporting.agent_daily
              WHERE agent_id = $1 AND ($2::text IS NULL OR day = $2::text::date)",
            &[&agent, &day],
        )
        .await
        .unwrap();
    Figures {
        first_responses: row.get(0),
        avg_first_response: row.get(1),
        timed_resolutions: row.get(2),
        avg_resolution: row.get(3),
        resolved: row.get(4),
        reactivated: row.get(5),
        forwarded: row.get(6),
    }
}

fn none() -> Figures {
    Figures {
        first_responses: 0,
        avg_first_response: None,
        timed_resolutions: 0,
        avg_resolution: None,
        resolved: 0,
        reactivated: 0,
        forwarded: 0,
    }
}

fn ev(id: &str, typ: &str, at: &str, conv: &str, extra: Value) -> Value {
    let mut e = json!({"id": id, "type": typ, "at": at, "conversation": conv});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn open(conv: &str, at: &str, product: &str, channel: &str) -> Value {
    ev(
        &format!("{conv}-open"),
        "conversation_opened",
        at,
        conv,
        json!({"product": product, "channel": channel}),
    )
}

async fn active_of(app: &TestApp, agent: &str) -> i64 {
    app.db
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(active_conversations), 0)::bigint FROM reporting.agent_live WHERE agent_id = $1",
            &[&agent],
        )
        .await
        .unwrap()
        .get(0)
}

const T0: &str = "2026-11-20T10:00:00+03:00";

#[tokio::test]
async fn the_seeds_worked_example_okan_averages_180_seconds() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    app.ingest_ok(
        "acme",
        &json!([
            open("ozge", T0, "p1", "LIVE_CHAT"),
            ev("ozge-as", "assigned", T0, "ozge", json!({"agent": "okan"})),
            ev(
                "ozge-rep",
                "agent_message",
                &plus_minutes(T0, 2),
                "ozge",
                json!({"agent": "okan"})
            ),
            ev(
                "ozge-rep2",
                "agent_message",
                &plus_minutes(T0, 30),
                "ozge",
                json!({"agent": "okan"})
            ),
            open("ipek-c", &plus_minutes(T0, 10), "p1", "LIVE_CHAT"),
            ev(
                "ipek-as",
                "assigned",
                &plus_minutes(T0, 10),
                "ipek-c",
                json!({"agent": "okan"})
            ),
            ev(
                "ipek-rep",
                "agent_message",
                &plus_minutes(T0, 14),
                "ipek-c",
                json!({"agent": "okan"})
            )
        ]),
    )
    .await;
    app.db.refresh().await;
    let okan = figures(&app.db, "okan", Some("2026-11-20")).await;
    assert_eq!(
        (okan.first_responses, okan.avg_first_response),
        (2, Some(180.0))
    );
    assert_eq!(okan.avg_resolution, None, "no resolution: null, never 0");
}

#[tokio::test]
async fn resolving_one_of_100_active_shows_99_at_once_and_resolved_plus_one_after_the_refresh() {
    let app = spawn_app().await;
    let t0 = crate::common::minutes_ago(120);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    let events: Vec<Value> = (0..100)
        .flat_map(|i| {
            let c = format!("c{i}");
            [
                open(&c, &t0, "p1", "WHATSAPP"),
                ev(
                    &format!("{c}-as"),
                    "assigned",
                    &t0,
                    &c,
                    json!({"agent": "okan"}),
                ),
            ]
        })
        .collect();
    app.ingest_ok("acme", &json!(events)).await;
    app.db.refresh().await;
    assert_eq!(active_of(&app, "okan").await, 100);
    let resolved_before = figures(&app.db, "okan", None).await.resolved;
    assert_eq!(resolved_before, 0);

    app.ingest_ok(
        "acme",
        &json!([ev(
            "c7-res",
            "resolved",
            &plus_minutes(&t0, 5),
            "c7",
            json!({"agent": "okan"})
        )]),
    )
    .await;
    assert_eq!(active_of(&app, "okan").await, 99, "active drops at once");
    assert_eq!(
        figures(&app.db, "okan", None).await.resolved,
        0,
        "resolved waits for the refresh"
    );
    app.db.refresh().await;
    let okan = figures(&app.db, "okan", None).await;
    assert_eq!(
        (okan.resolved, okan.timed_resolutions, okan.avg_resolution),
        (1, 1, Some(300.0))
    );
}

#[tokio::test]
async fn averages_over_channels_and_products_are_weighted() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    let mut events = Vec::new();
    // ipek: 60 s and 120 s on WhatsApp in p1, 600 s on live chat in p2.
    for (c, product, channel, reply) in [
        ("a", "p1", "WHATSAPP", 1),
        ("b", "p1", "WHATSAPP", 2),
        ("c", "p2", "LIVE_CHAT", 10),
    ] {
        events.push(open(c, T0, product, channel));
        events.push(ev(
            &format!("{c}-as"),
            "assigned",
            T0,
            c,
            json!({"agent": "ipek"}),
        ));
        events.push(ev(
            &format!("{c}-rep"),
            "agent_message",
            &plus_minutes(T0, reply),
            c,
            json!({"agent": "ipek"}),
        ));
    }
    app.ingest_ok("acme", &json!(events)).await;
    app.db.refresh().await;
    let ipek = figures(&app.db, "ipek", Some("2026-11-20")).await;
    // (60 + 120 + 600) / 3 = 260, not the average of the channel averages (90 + 600) / 2.
    assert_eq!(
        (ipek.first_responses, ipek.avg_first_response),
        (3, Some(260.0))
    );
    let rows = app.db.agent_daily().await;
    assert_eq!(
        rows.len(),
        2,
        "one row per (day, agent, product, channel): {rows:?}"
    );
}

#[tokio::test]
async fn a_forward_counts_for_the_forwarder_and_restarts_the_first_response() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    app.ingest_ok(
        "acme",
        &json!([
            open("c", T0, "p1", "LIVE_CHAT"),
            ev("as", "assigned", T0, "c", json!({"agent": "okan"})),
            ev(
                "okan-rep",
                "agent_message",
                &plus_minutes(T0, 1),
                "c",
                json!({"agent": "okan"})
            ),
            ev(
                "fwd",
                "assigned",
                &plus_minutes(T0, 3),
                "c",
                json!({"agent": "ipek", "by": "okan"})
            ),
            ev(
                "okan-late",
                "agent_message",
                &plus_minutes(T0, 4),
                "c",
                json!({"agent": "okan"})
            ),
            ev(
                "ipek-rep",
                "agent_message",
                &plus_minutes(T0, 8),
                "c",
                json!({"agent": "ipek"})
            ),
            ev(
                "fwd2",
                "assigned",
                &plus_minutes(T0, 9),
                "c",
                json!({"agent": "okan", "by": "ipek"})
            ),
            ev(
                "fwd3",
                "assigned",
                &plus_minutes(T0, 10),
                "c",
                json!({"agent": "ipek", "by": "okan"})
            ),
            ev(
                "self",
                "assigned",
                &plus_minutes(T0, 11),
                "c",
                json!({"agent": "ipek", "by": "ipek"})
            ),
            ev(
                "res",
                "resolved",
                &plus_minutes(T0, 13),
                "c",
                json!({"agent": "ipek"})
            )
        ]),
    )
    .await;
    app.db.refresh().await;
    let okan = figures(&app.db, "okan", None).await;
    assert_eq!(
        (
            okan.first_responses,
            okan.avg_first_response,
            okan.forwarded
        ),
        (1, Some(60.0), 2)
    );
    let ipek = figures(&app.db, "ipek", None).await;
    // ipek's first response is timed from the forward (5 min); assigning to oneself is no
    // forward, and the resolution is timed from that last assignment (2 min).
    assert_eq!(
        ipek,
        Figures {
            first_responses: 1,
            avg_first_response: Some(300.0),
            timed_resolutions: 1,
            avg_resolution: Some(120.0),
            resolved: 1,
            reactivated: 0,
            forwarded: 1,
        }
    );
}

#[tokio::test]
async fn a_reply_or_resolution_by_someone_else_gives_no_duration_to_anyone() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    app.ingest_ok(
        "acme",
        &json!([
            open("c", T0, "p1", "LIVE_CHAT"),
            ev("as", "assigned", T0, "c", json!({"agent": "okan"})),
            ev(
                "sup-rep",
                "agent_message",
                &plus_minutes(T0, 1),
                "c",
                json!({"agent": "sup"})
            ),
            ev(
                "okan-rep",
                "agent_message",
                &plus_minutes(T0, 5),
                "c",
                json!({"agent": "okan"})
            ),
            ev(
                "sup-res",
                "resolved",
                &plus_minutes(T0, 6),
                "c",
                json!({"agent": "sup"})
            ),
            open("u", T0, "p1", "LIVE_CHAT"),
            ev(
                "u-rep",
                "agent_message",
                &plus_minutes(T0, 1),
                "u",
                json!({"agent": "ipek"})
            ),
            ev(
                "u-res",
                "resolved",
                &plus_minutes(T0, 2),
                "u",
                json!({"agent": "ipek"})
            )
        ]),
    )
    .await;
    app.db.refresh().await;
    let sup = figures(&app.db, "sup", None).await;
    assert_eq!(
        Figures {
            resolved: 1,
            ..none()
        },
        sup
    );
    let okan = figures(&app.db, "okan", None).await;
    assert_eq!(
        Figures {
            first_responses: 1,
            avg_first_response: Some(300.0),
            ..none()
        },
        okan
    );
    let ipek = figures(&app.db, "ipek", None).await;
    assert_eq!(
        Figures {
            resolved: 1,
            ..none()
        },
        ipek,
        "unassigned chat: counted, not timed"
    );
}

#[tokio::test]
async fn a_reactivation_starts_a_new_assignment_and_a_second_resolution_counts_again() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    app.ingest_ok(
        "acme",
        &json!([
            open("w", T0, "p1", "WHATSAPP"),
            ev("as", "assigned", T0, "w", json!({"agent": "okan"})),
            ev(
                "rep",
                "agent_message",
                &plus_minutes(T0, 1),
                "w",
                json!({"agent": "okan"})
            ),
            ev(
                "res",
                "resolved",
                &plus_minutes(T0, 2),
                "w",
                json!({"agent": "okan"})
            ),
            ev(
                "msg",
                "customer_message",
                &plus_minutes(T0, 60),
                "w",
                json!({})
            ),
            ev(
                "react",
                "reactivated",
                &plus_minutes(T0, 70),
                "w",
                json!({"agent": "ipek"})
            ),
            ev(
                "rep2",
                "agent_message",
                &plus_minutes(T0, 75),
                "w",
                json!({"agent": "ipek"})
            ),
            ev(
                "res2",
                "resolved",
                &plus_minutes(T0, 80),
                "w",
                json!({"agent": "ipek"})
            )
        ]),
    )
    .await;
    app.db.refresh().await;
    let okan = figures(&app.db, "okan", None).await;
    assert_eq!(
        (
            okan.first_responses,
            okan.avg_first_response,
            okan.resolved,
            okan.avg_resolution
        ),
        (1, Some(60.0), 1, Some(120.0))
    );
    let ipek = figures(&app.db, "ipek", None).await;
    assert_eq!(
        ipek,
        Figures {
            first_responses: 1,
            avg_first_response: Some(300.0),
            timed_resolutions: 1,
            avg_resolution: Some(600.0),
            resolved: 1,
            reactivated: 1,
            forwarded: 0,
        }
    );
}

async fn days_of(db: &TestDb, agent: &str) -> Vec<(String, i64)> {
    db.client()
        .await
        .query(
            "SELECT day::text, sum(first_response_count)::bigint FROM reporting.agent_daily
              WHERE agent_id = $1 GROUP BY day ORDER BY day",
            &[&agent],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// One conversation per instant, each answered at that instant plus one second.
fn replies_at(prefix: &str, instants: &[&str]) -> Vec<Value> {
    instants
        .iter()
        .enumerate()
        .flat_map(|(i, at)| {
            let c = format!("{prefix}{i}");
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            let t = |s: i64| (at + chrono::Duration::seconds(s)).to_rfc3339();
            [
                open(&c, &t(-1), "p1", "LIVE_CHAT"),
                ev(
                    &format!("{c}-as"),
                    "assigned",
                    &t(-1),
                    &c,
                    json!({"agent": "okan"}),
                ),
                ev(
                    &format!("{c}-rep"),
                    "agent_message",
                    &t(0),
                    &c,
                    json!({"agent": "okan"}),
                ),
            ]
        })
        .collect()
}

#[tokio::test]
async fn days_split_at_the_organizations_local_midnight() {
    let app = spawn_app().await;
    app.ingest_ok(
        "acme",
        &json!(crate::common::team_members("2026-01-01T00:00:00Z")),
    )
    .await;
    app.ingest_ok(
        "acme",
        &json!(replies_at(
            "ist",
            &["2026-11-20T23:59:00+03:00", "2026-11-21T00:01:00+03:00",]
        )),
    )
    .await;
    app.db.refresh().await;
    assert_eq!(
        days_of(&app.db, "okan").await,
        vec![("2026-11-20".into(), 1), ("2026-11-21".into(), 1)]
    );

    // The same instants in an organization of New York: 16:59 and 17:01 of the 20th.
    let ny = spawn_app().await;
    let mut setup = vec![
        json!({"id": "tz", "type": "organization_upserted", "at": "2026-01-01T00:00:00Z", "name": "NY", "timezone": "America/New_York"}),
    ];
    setup.extend(crate::common::team_members("2026-01-01T00:00:00Z"));
    ny.ingest_ok("acme", &json!(setup)).await;
    ny.ingest_ok(
        "acme",
        &json!(replies_at(
            "ny",
            &[
                "2026-11-20T23:59:00+03:00",
                "2026-11-21T00:01:00+03:00",
                "2026-11-20T23:59:00-05:00",
                "2026-11-21T00:01:00-05:00",
            ]
        )),
    )
    .await;
    ny.db.refresh().await;
    assert_eq!(
        days_of(&ny.db, "okan").await,
        vec![("2026-11-20".into(), 3), ("2026-11-21".into(), 1)]
    );
}

#[tokio::test]
async fn dst_days_are_23_and_25_hours_long() {
    let app = spawn_app().await;
    let mut setup = vec![
        json!({"id": "tz", "type": "organization_upserted", "at": "2026-01-01T00:00:00Z", "name": "NY", "timezone": "America/New_York"}),
    ];
    setup.extend(crate::common::team_members("2026-01-01T00:00:00Z"));
    app.ingest_ok("acme", &json!(setup)).await;
    app.ingest_ok(
        "acme",
        &json!(replies_at(
            "d",
            &[
                // 8 March 2026: clocks spring forward, the day has 23 hours.
                "2026-03-08T00:00:30-05:00",
                "2026-03-08T23:59:30-04:00",
                "2026-03-09T00:00:30-04:00",
                // 1 November 2026: clocks fall back, the day has 25 hours.
                "2026-11-01T00:00:30-04:00",
                "2026-11-01T23:59:30-05:00",
                "2026-11-02T00:00:30-05:00",
            ]
        )),
    )
    .await;
    app.db.refresh().await;
    assert_eq!(
        days_of(&app.db, "okan").await,
        vec![
            ("2026-03-08".into(), 2),
            ("2026-03-09".into(), 1),
            ("2026-11-01".into(), 2),
            ("2026-11-02".into(), 1),
        ]
    );
}

#[tokio::test]
async fn a_new_time_zone_moves_the_days_at_the_next_refresh() {
    let app = spawn_app().await;
    app.ingest_ok(
        "acme",
        &json!(crate::common::team_members("2026-01-01T00:00:00Z")),
    )
    .await;
    app.ingest_ok(
        "acme",
        &json!(replies_at("c", &["2026-11-20T23:30:00+03:00"])),
    )
    .await;
    app.db.refresh().await;
    assert_eq!(
        days_of(&app.db, "okan").await,
        vec![("2026-11-20".into(), 1)]
    );
    app.ingest_ok("acme", &json!([{"id": "tz", "type": "organization_upserted", "at": "2026-11-25T00:00:00Z", "name": "Acme", "timezone": "Asia/Tokyo"}])).await;
    app.db.refresh().await;
    assert_eq!(
        days_of(&app.db, "okan").await,
        vec![("2026-11-21".into(), 1)]
    );
}

async fn assert_summary_equals_reference(db: &TestDb) {
    let client = db.client().await;
    let drift = client
        .query_one(cockpit::db::SUMMARY_DRIFT_SQL, &[])
        .await
        .unwrap();
    let (differing, groups): (i64, i64) = (drift.get(0), drift.get(1));
    assert_eq!(
        differing, 0,
        "summary and reference differ ({groups} groups)"
    );
    assert!(groups > 0);
    assert_eq!(
        drift.get::<_, i64>("kept_differing"),
        0,
        "the kept per-agent totals and active rows equal what they sum"
    );
    let zero_rows: i64 = client
        .query_one(
            "SELECT count(*) FROM cockpit.daily_stats WHERE first_response_count = 0 AND resolution_count = 0
               AND resolved_count = 0 AND reactivated_count = 0 AND forwarded_count = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(zero_rows, 0, "no zero rows");
}

#[tokio::test]
async fn random_streams_refreshed_incrementally_equal_the_reference_exactly() {
    let mut rng = StdRng::seed_from_u64(7);
    let t0 = "2026-11-18T20:00:00+03:00"; // streams cross local midnights
    let conversations: Vec<_> = (0..150).map(|n| conversation(&mut rng, n, t0)).collect();

    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(crate::common::team_members(t0)))
        .await;
    let arrival = shuffled_arrival(&mut rng, &conversations);
    let mut rest = arrival.as_slice();
    while !rest.is_empty() {
        let size = rng.gen_range(1..=rest.len().min(60));
        let (batch, tail) = rest.split_at(size);
        app.ingest_ok("acme", &json!(batch)).await;
        if rng.gen_bool(0.25) {
            app.ingest_ok("acme", &json!(batch)).await; // duplicates
        }
        if rng.gen_bool(0.4) {
            app.db.refresh().await; // refreshes between late events
        }
        rest = tail;
    }
    app.db.refresh().await;
    assert_summary_equals_reference(&app.db).await;

    // The same events, shuffled and split differently, give the same agent_daily.
    let other = spawn_app().await;
    other
        .ingest_ok("acme", &json!(crate::common::team_members(t0)))
        .await;
    let arrival = shuffled_arrival(&mut rng, &conversations);
    for batch in arrival.chunks(97) {
        other.ingest_ok("acme", &json!(batch)).await;
    }
    other.db.refresh().await;
    assert_eq!(other.db.agent_daily().await, app.db.agent_daily().await);
}

#[tokio::test]
async fn only_one_refresher_runs_at_a_time() {
    let db = TestDb::new().await;
    let mut first = db.client().await;
    let second = db.client().await;
    let tx = first.transaction().await.unwrap();
    let running: Option<Value> = tx
        .query_one("SELECT cockpit.refresh_daily()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(running.is_some(), "the first one refreshes");
    let skipped: Option<Value> = second
        .query_one("SELECT cockpit.refresh_daily()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        skipped, None,
        "the second one skips while the first holds the lock"
    );
    tx.commit().await.unwrap();
    let after: Option<Value> = second
        .query_one("SELECT cockpit.refresh_daily()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(after.is_some(), "and refreshes once the first is done");
}

#[tokio::test]
async fn serve_refreshes_on_its_own_and_notifies_when_done() {
    use futures_util::StreamExt;
    let app = spawn_app().await;
    let config: tokio_postgres::Config = app.db.url.parse().unwrap();
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute("LISTEN cockpit_refresh")
        .await
        .unwrap();
    app.ingest_ok("acme", &json!(crate::common::team_members(T0)))
        .await;
    app.ingest_ok(
        "acme",
        &json!([
            open("c", T0, "p1", "LIVE_CHAT"),
            ev("as", "assigned", T0, "c", json!({"agent": "okan"})),
            ev(
                "rep",
                "agent_message",
                &plus_minutes(T0, 1),
                "c",
                json!({"agent": "okan"})
            )
        ]),
    )
    .await;
    // The app refreshes every second; wait for the refresh that took the conversation.
    let deadline = tokio::time::Duration::from_secs(20);
    tokio::time::timeout(deadline, async {
        while let Some(payload) = notifications.recv().await {
            let report: Value = serde_json::from_str(&payload).unwrap();
            if report["conversations"].as_u64().unwrap() > 0 {
                return;
            }
        }
    })
    .await
    .expect("a refresh notification within 20 s");
    assert_eq!(figures(&app.db, "okan", None).await.first_responses, 1);
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, 200);
}
