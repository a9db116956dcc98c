//! Supervisor insights (spec 3.5), one definition per figure, written as timelines.

use crate::common::TestDb;

/// An organization in `zone` with the agent `a`, and `a`'s status changes at the given
/// instants (recorded in this order).
async fn timeline(db: &TestDb, zone: &str, changes: &[(&str, &str)]) {
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO cockpit.organizations (org_id, name, timezone) VALUES ('acme', 'Acme', $1)",
            &[&zone],
        )
        .await
        .expect("organization");
    client
        .execute(
            "INSERT INTO cockpit.agents (org_id, agent_id, name, role, version_at, version_event)
             VALUES ('acme', 'a', 'A', 'AGENT', '2026-01-01T00:00:00Z', 'v')",
            &[],
        )
        .await
        .expect("agent");
    let mut from = "OFFLINE".to_string();
    for (at, to) in changes {
        client
            .execute(
                "INSERT INTO cockpit.status_changes (org_id, agent_id, from_status, to_status, changed_by_id, changed_at)
                 VALUES ('acme', 'a', $1, $2, 'a', $3::text::timestamptz)",
                &[&from, to, at],
            )
            .await
            .expect("change");
        from = to.to_string();
    }
    client
        .execute("SELECT cockpit.keep_status_time('acme', 'a')", &[])
        .await
        .expect("kept time in status");
}

/// Seconds (ONLINE, BREAK, INVISIBLE, OFFLINE) of `a` on local `day`, as of `now`.
async fn seconds(db: &TestDb, day: &str, now: &str) -> [i32; 4] {
    let rows = db
        .client()
        .await
        .query(
            "SELECT status, seconds FROM cockpit.status_seconds('acme', 'a', $1::text::date, $2::text::timestamptz)",
            &[&day, &now],
        )
        .await
        .expect("status_seconds");
    let of = |status: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == status)
            .map(|r| r.get::<_, i32>(1))
            .expect("every status")
    };
    [of("ONLINE"), of("BREAK"), of("INVISIBLE"), of("OFFLINE")]
}

#[tokio::test]
async fn time_in_status_is_clipped_to_the_local_day_and_counts_the_status_held_at_its_start() {
    let db = TestDb::new().await;
    timeline(
        &db,
        "Europe/Istanbul",
        &[
            ("2026-11-19T22:00:00+03:00", "ONLINE"), // before the day: held at its start
            ("2026-11-20T10:00:00+03:00", "BREAK"),
            ("2026-11-20T10:30:00+03:00", "ONLINE"),
            ("2026-11-21T01:00:00+03:00", "OFFLINE"), // after the day
        ],
    )
    .await;
    // The whole day: 10 h + 13.5 h online, 30 min on break.
    assert_eq!(
        seconds(&db, "2026-11-20", "2026-11-25T00:00:00Z").await,
        [84_600, 1_800, 0, 0]
    );
    // The day so far, at 12:00 local.
    assert_eq!(
        seconds(&db, "2026-11-20", "2026-11-20T12:00:00+03:00").await,
        [41_400, 1_800, 0, 0]
    );
    // The next day: online until 01:00, offline since.
    assert_eq!(
        seconds(&db, "2026-11-21", "2026-11-25T00:00:00Z").await,
        [3_600, 0, 0, 82_800]
    );
    // A day not begun yet counts nothing.
    assert_eq!(
        seconds(&db, "2026-11-30", "2026-11-25T00:00:00Z").await,
        [0, 0, 0, 0]
    );
}

#[tokio::test]
async fn an_agent_offline_all_day_and_dst_days_of_23_and_25_hours() {
    let db = TestDb::new().await;
    timeline(
        &db,
        "America/New_York",
        &[
            // 1 November 2026: clocks fall back, the day has 25 hours.
            ("2026-11-01T12:00:00-05:00", "ONLINE"),
            // Two changes recorded at one instant: the first lasts no time.
            ("2026-11-02T09:00:00-05:00", "BREAK"),
            ("2026-11-02T09:00:00-05:00", "INVISIBLE"),
        ],
    )
    .await;
    // Never changed before: OFFLINE (the status an agent is created with) all day; 8 March
    // 2026 has 23 hours.
    assert_eq!(
        seconds(&db, "2026-03-08", "2026-12-01T00:00:00Z").await,
        [0, 0, 0, 82_800]
    );
    // The 25-hour day: OFFLINE until noon (13 h, the repeated hour included), then ONLINE.
    assert_eq!(
        seconds(&db, "2026-11-01", "2026-12-01T00:00:00Z").await,
        [43_200, 0, 0, 46_800]
    );
    // The next day: ONLINE until 09:00, then INVISIBLE.
    assert_eq!(
        seconds(&db, "2026-11-02", "2026-12-01T00:00:00Z").await,
        [32_400, 0, 54_000, 0]
    );
    // An agent OFFLINE all day so far: the elapsed part of the day (5 h).
    assert_eq!(
        seconds(&db, "2026-10-15", "2026-10-15T05:00:00-04:00").await,
        [0, 0, 0, 18_000]
    );
}

#[tokio::test]
async fn the_bi_view_of_time_in_status_equals_the_definition_and_is_readable_as_cockpit_reader() {
    let db = TestDb::new().await;
    let now = chrono::Utc::now();
    let at = |hours_ago: i64| (now - chrono::Duration::hours(hours_ago)).to_rfc3339();
    timeline(
        &db,
        "UTC",
        &[(&at(60), "ONLINE"), (&at(30), "BREAK"), (&at(1), "ONLINE")],
    )
    .await;
    // One transaction: the view (as the BI role) and the definition (as the owner) see
    // the same `now()`.
    let mut client = db.client().await;
    let tx = client.transaction().await.expect("transaction");
    tx.batch_execute("SET LOCAL ROLE cockpit_reader")
        .await
        .expect("reader");
    let view: Vec<(String, Vec<i32>)> = tx
        .query(
            "SELECT d.day::text,
                    array_agg(coalesce(v.seconds, 0) ORDER BY s.ord)
               FROM (SELECT DISTINCT day FROM reporting.agent_status_daily
                      WHERE org_id = 'acme' AND agent_id = 'a') d
              CROSS JOIN unnest(ARRAY['ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE'])
                         WITH ORDINALITY AS s(status, ord)
               LEFT JOIN reporting.agent_status_daily v
                      ON v.org_id = 'acme' AND v.agent_id = 'a' AND v.day = d.day
                     AND v.status = s.status
              GROUP BY d.day
              ORDER BY d.day",
            &[],
        )
        .await
        .expect("the view, as cockpit_reader")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Only statuses held on a day are listed (seconds > 0).
    let zero_rows: i64 = tx
        .query_one(
            "SELECT count(*) FROM reporting.agent_status_daily WHERE seconds <= 0",
            &[],
        )
        .await
        .expect("zero rows")
        .get(0);
    assert_eq!(zero_rows, 0);
    // The BI example built on it, as the BI role: its weeks add up the view's days.
    let weeks = tx
        .query(include_str!("../../sql/bi/break_per_week.sql"), &[&"acme"])
        .await
        .expect("sql/bi/break_per_week.sql as cockpit_reader");
    let weekly_break: i64 = weeks.iter().map(|r| r.get::<_, i64>("break_seconds")).sum();
    tx.batch_execute("RESET ROLE").await.expect("owner");
    let mut definition = Vec::new();
    for (day, _) in &view {
        let row = tx
            .query_one(
                "SELECT array_agg(s.seconds ORDER BY array_position(ARRAY['ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE'], s.status))
                   FROM cockpit.status_seconds('acme', 'a', $1::text::date) s",
                &[day],
            )
            .await
            .expect("the definition");
        definition.push((day.clone(), row.get::<_, Vec<i32>>(0)));
    }
    tx.commit().await.expect("commit");
    assert_eq!(view, definition);
    // From the day of the first change (60 hours ago) to today: three or four UTC days,
    // all whole but today.
    assert!((3..=4).contains(&view.len()), "{view:?}");
    for (day, seconds) in &view[..view.len() - 1] {
        assert_eq!(seconds.iter().sum::<i32>(), 86_400, "{day}: {seconds:?}");
    }
    assert_eq!(
        view[0].1[3],
        86_400 - view[0].1[0],
        "offline until the first change"
    );
    let daily_break: i64 = view.iter().map(|(_, s)| i64::from(s[1])).sum();
    assert_eq!(weekly_break, daily_break);
    assert_eq!(daily_break, 29 * 3600, "on break from 30 to 1 hours ago");
}

/// Mismatches between the kept time in status (cockpit.status_time read by
/// cockpit.status_seconds_now, as the cockpit statement reads it) and the definition
/// (cockpit.status_seconds) for agent `a`, at instants at and after its last change: the
/// change itself, 1.7 s and 3 h later, the next local midnight, the second before it, and
/// the midnight after (the local day of each instant, as the cockpit's "today").
async fn kept_mismatches(client: &tokio_postgres::Client) -> Vec<String> {
    // Two statements: the probes and the kept row first, then the comparison on their
    // values alone (on a Citus cluster a function that reads distributed tables, as
    // cockpit.status_seconds does, runs only in a statement that reads none).
    let probes = client
        .query_one(
            "WITH o AS (SELECT timezone FROM cockpit.organizations WHERE org_id = 'acme'),
                  last AS (SELECT coalesce(max(changed_at), '2026-10-30T00:00:00Z') AS at
                             FROM cockpit.status_changes WHERE org_id = 'acme' AND agent_id = 'a'),
                  midnight AS (SELECT ((((l.at AT TIME ZONE o.timezone)::date + 1)::timestamp)
                                       AT TIME ZONE o.timezone) AS m1,
                                      ((((l.at AT TIME ZONE o.timezone)::date + 2)::timestamp)
                                       AT TIME ZONE o.timezone) AS m2
                                 FROM last l, o),
                  probes AS (SELECT p FROM last l, midnight m,
                                    unnest(ARRAY[l.at, l.at + interval '1.7 seconds', l.at + interval '3 hours',
                                                 m.m1 - interval '1 second', m.m1, m.m1 + interval '0.4 seconds',
                                                 m.m2]) p),
                  days AS (SELECT p, (p AT TIME ZONE o.timezone)::date AS day,
                                  (((p AT TIME ZONE o.timezone)::date)::timestamp AT TIME ZONE o.timezone) AS day_start
                             FROM probes, o)
             SELECT (SELECT array_agg(p::text ORDER BY p) FROM days),
                    (SELECT array_agg(day::text ORDER BY p) FROM days),
                    (SELECT array_agg(day_start::text ORDER BY p) FROM days),
                    (SELECT to_jsonb(k)::text FROM cockpit.status_time k
                      WHERE k.org_id = 'acme' AND k.agent_id = 'a')",
            &[],
        )
        .await
        .expect("probes and the kept row");
    let (instants, days, starts, kept): (Vec<String>, Vec<String>, Vec<String>, Option<String>) =
        (probes.get(0), probes.get(1), probes.get(2), probes.get(3));
    client
        .query(
            "WITH k AS (SELECT * FROM jsonb_populate_record(NULL::cockpit.status_time, $4::text::jsonb)),
                  d AS (SELECT p::timestamptz AS p, day::date AS day, day_start::timestamptz AS day_start
                          FROM unnest($1::text[], $2::text[], $3::text[]) AS x(p, day, day_start))
             SELECT format('at %s, %s: defined %s, kept %s', d.p, s.status, s.seconds,
                           cockpit.status_seconds_now(k.status, k.since, k.day,
                                                      CASE s.status WHEN 'ONLINE' THEN k.online_seconds
                                                                    WHEN 'BREAK' THEN k.break_seconds
                                                                    WHEN 'INVISIBLE' THEN k.invisible_seconds
                                                                    ELSE k.offline_seconds END,
                                                      s.status, d.day, d.day_start, d.p))
               FROM d
              CROSS JOIN LATERAL cockpit.status_seconds('acme', 'a', d.day, d.p) s
               -- No kept row: all NULL (no change ever recorded).
               LEFT JOIN k ON true
              WHERE s.seconds IS DISTINCT FROM
                    cockpit.status_seconds_now(k.status, k.since, k.day,
                                               CASE s.status WHEN 'ONLINE' THEN k.online_seconds
                                                             WHEN 'BREAK' THEN k.break_seconds
                                                             WHEN 'INVISIBLE' THEN k.invisible_seconds
                                                             ELSE k.offline_seconds END,
                                               s.status, d.day, d.day_start, d.p)",
            &[&instants, &days, &starts, &kept],
        )
        .await
        .expect("kept against defined")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn the_kept_time_in_status_equals_the_definition_on_random_histories_across_midnights_and_dst(
) {
    // New York, around 1 November 2026 (25 hours): random changes, some at a local
    // midnight, two at one instant, recorded out of order; after each change the kept row
    // must equal the definition at every probe instant.
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO cockpit.organizations (org_id, name, timezone) VALUES ('acme', 'Acme', 'America/New_York');
             INSERT INTO cockpit.agents (org_id, agent_id, name, role, version_at, version_event)
             VALUES ('acme', 'a', 'A', 'AGENT', '2026-01-01T00:00:00Z', 'v');",
        )
        .await
        .expect("organization and agent");
    assert_eq!(
        kept_mismatches(&client).await,
        Vec::<String>::new(),
        "no change yet"
    );
    let statuses = ["ONLINE", "BREAK", "INVISIBLE", "OFFLINE"];
    let mut seed: u64 = 0x5eed_2026;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    // 30 Oct 00:00 EDT .. 3 Nov 00:00 EST: 97 hours.
    let start = chrono::DateTime::parse_from_rfc3339("2026-10-30T04:00:00Z").expect("instant");
    let mut instants: Vec<chrono::DateTime<chrono::FixedOffset>> = (0..40)
        .map(|_| {
            start + chrono::Duration::milliseconds((next(97 * 3600) * 1000 + next(1000)) as i64)
        })
        .collect();
    for midnight in [
        "2026-10-31T04:00:00Z",
        "2026-11-01T04:00:00Z",
        "2026-11-02T05:00:00Z",
    ] {
        instants.push(chrono::DateTime::parse_from_rfc3339(midnight).expect("midnight"));
    }
    let twice = instants[7];
    instants.push(twice);
    for (i, at) in instants.iter().enumerate() {
        let to = statuses[next(4) as usize];
        client
            .execute(
                "INSERT INTO cockpit.status_changes (org_id, agent_id, from_status, to_status, changed_by_id, changed_at)
                 VALUES ('acme', 'a', 'OFFLINE', $1, 'a', $2)",
                &[&to, at],
            )
            .await
            .expect("change");
        client
            .execute("SELECT cockpit.keep_status_time('acme', 'a')", &[])
            .await
            .expect("keep");
        assert_eq!(
            kept_mismatches(&client).await,
            Vec::<String>::new(),
            "after change {i} at {at}"
        );
    }
    // The kept rows exist, and a new time zone moves every day boundary: kept again.
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM cockpit.status_time WHERE org_id = 'acme'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(kept, 1);
    // Through ingest, which recomputes what a new zone moves in the same transaction.
    let answer: serde_json::Value = client
        .query_one(
            "SELECT cockpit.ingest_events('acme', $1::jsonb)",
            &[
                &serde_json::json!([{"id": "tz", "type": "organization_upserted",
                                   "at": "2026-11-03T00:00:00Z", "name": "Acme",
                                   "timezone": "Asia/Kolkata"}]),
            ],
        )
        .await
        .expect("time zone")
        .get(0);
    assert_eq!(answer["accepted"], 1, "{answer}");
    let zone: String = client
        .query_one(
            "SELECT timezone FROM cockpit.organizations WHERE org_id = 'acme'",
            &[],
        )
        .await
        .expect("zone")
        .get(0);
    assert_eq!(zone, "Asia/Kolkata");
    assert_eq!(
        kept_mismatches(&client).await,
        Vec::<String>::new(),
        "after the time zone changed"
    );
}
