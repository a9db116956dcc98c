//! `cockpit bench refresh`: P1, P2 (`--verify`), P8 — and P1's long-conversation clause
//! ([`super::refresh_touch`]).

use std::time::Instant;

use crate::db::Pool;

use super::stats::{median, Summary};
use super::*;
use crate::db::{self, DbError};

/// One bench database.
struct Sized {
    days: u32,
    pool: Pool,
    /// SQL time of each steady-state refresh, ms.
    refresh_ms: Vec<f64>,
    /// Conversations each refresh recomputed.
    conversations: Vec<u64>,
}

/// One minute of reference traffic for every organization, generated in SQL.
async fn minute(pool: &Pool, cycle: i64) -> Result<Vec<(String, serde_json::Value)>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT o.org_id, bench.minute(o.org_id, $1::integer) FROM cockpit.organizations o",
            &[&(cycle as i32)],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Sends batches through `cockpit.ingest_events`: events accepted, duplicates, rejected.
async fn send(
    pool: &Pool,
    batches: &[(String, serde_json::Value)],
) -> Result<(i64, i64, i64), DbError> {
    let client = pool.get().await?;
    let mut totals = (0, 0, 0);
    for (org, events) in batches {
        let answer: serde_json::Value = client
            .query_one(
                "SELECT cockpit.ingest_events($1, $2::jsonb)",
                &[org, events],
            )
            .await?
            .get(0);
        totals.0 += answer["accepted"].as_i64().unwrap_or(0);
        totals.1 += answer["duplicates"].as_i64().unwrap_or(0);
        totals.2 += answer["rejected"].as_array().map_or(0, |r| r.len() as i64);
    }
    Ok(totals)
}

/// `cockpit bench refresh`: P1 (steady-state refresh, history ratio), P2 (`verify`), P8.
pub async fn refresh(
    base_url: &str,
    days: &[u32],
    cycles: usize,
    verify: bool,
) -> Result<(), String> {
    let mut sizes = Vec::new();
    for &d in days {
        sizes.push(Sized {
            days: d,
            pool: prepare(base_url, d).await?,
            refresh_ms: Vec::new(),
            conversations: Vec::new(),
        });
    }
    // Every database starts from a refreshed state.
    for s in &sizes {
        crate::live::refresher::refresh_once(&s.pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Ids unique to this run (ids of earlier runs stay in the bench databases).
    let run = chrono::Utc::now().timestamp() % 10_000 * 100;
    let mut previous: Vec<Vec<(String, serde_json::Value)>> = vec![Vec::new(); sizes.len()];
    for cycle in 0..cycles {
        // Sizes interleaved, so that the machine's noise falls on both alike.
        for (k, s) in sizes.iter_mut().enumerate() {
            let id = run + cycle as i64;
            let batches = minute(&s.pool, id).await.map_err(|e| e.to_string())?;
            let (accepted, _, rejected) =
                send(&s.pool, &batches).await.map_err(|e| e.to_string())?;
            if rejected > 0 {
                return Err(format!(
                    "{}d: the workload had {rejected} events rejected",
                    s.days
                ));
            }
            if verify && cycle % 3 == 2 {
                // The previous minute again: all duplicates.
                let (again, duplicates, _) = send(&s.pool, &previous[k])
                    .await
                    .map_err(|e| e.to_string())?;
                if again > 0 || duplicates == 0 {
                    return Err("a re-sent minute was not all duplicates".into());
                }
            }
            previous[k] = batches;
            let report = crate::live::refresher::refresh_once(&s.pool)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("another session holds the refresh lock")?;
            s.refresh_ms.push(report.duration_ms);
            s.conversations.push(report.conversations);
            if cycle == 0 {
                println!("{}d: {accepted} events a minute", s.days);
            }
        }
    }
    println!("\nrefresh of the daily columns, one minute of reference traffic per cycle, {cycles} cycles");
    println!(
        "{:>6} {:>12} {:>10} {:>10} {:>10} {:>14}",
        "days", "median ms", "min ms", "max ms", "p90 ms", "conversations"
    );
    for s in &sizes {
        let summary = Summary::of(&s.refresh_ms);
        println!(
            "{:>6} {:>12.2} {:>10.2} {:>10.2} {:>10.2} {:>14}",
            s.days,
            summary.median,
            summary.min,
            summary.max,
            summary.p90,
            s.conversations.iter().sum::<u64>() / s.conversations.len().max(1) as u64
        );
    }
    if sizes.len() >= 2 {
        let first = &sizes[0];
        let last = &sizes[sizes.len() - 1];
        println!(
            "ratio of medians {}d / {}d: {:.2}",
            last.days,
            first.days,
            median(&last.refresh_ms) / median(&first.refresh_ms)
        );
    }
    refresh_touch::touch_cost(&sizes[0].pool, run).await?;
    if verify {
        for s in &sizes {
            let started = Instant::now();
            let client = s.pool.get().await.map_err(|e| e.to_string())?;
            let row = client
                .query_one(db::SUMMARY_DRIFT_SQL, &[])
                .await
                .map_err(|e| e.to_string())?;
            let (differing, groups, kept): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            println!(
                "verify {}d: {differing} differing groups of {groups} against a full recompute, {kept} kept per-agent rows off what they sum ({:.0} s)",
                s.days,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (per_second > 0.0).then(|| ticks / per_second)
}

/// `cockpit bench refresh --interval N`: P11. For `cycles` intervals of `interval` seconds,
/// the reference traffic (830 events a minute over the ten organizations: each
/// organization's minute in turn, as many as the interval's share) is ingested, then the
/// daily columns are refreshed, as `serve` does with `COCKPIT_REFRESH_SECS=N`. Reports the
/// refresh's duration and the CPU its database session used, as a share of one core.
pub async fn refresh_interval(base_url: &str, interval: u64, cycles: usize) -> Result<(), String> {
    let pool = prepare(base_url, 1).await?;
    let url = url_with_db(base_url, &bench_db(1, PER_DAY))?;
    // One session refreshes, so that its CPU time is the refresh's.
    let refresher = db::pool_with(&url, 1, None).map_err(|e| e.to_string())?;
    let pid: i32 = refresher
        .get()
        .await
        .map_err(|e| e.to_string())?
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    crate::live::refresher::refresh_once(&refresher)
        .await
        .map_err(|e| e.to_string())?;
    let orgs: Vec<String> = pool
        .get()
        .await
        .map_err(|e| e.to_string())?
        .query(
            "SELECT org_id FROM cockpit.organizations ORDER BY org_id",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let run = chrono::Utc::now().timestamp() % 10_000 * 1000 + 500;
    let mut due = 0.0;
    let mut next_org = 0usize;
    let mut refresh_ms = Vec::new();
    let mut conversations = 0u64;
    let mut events = 0i64;
    let cpu_before = cpu_seconds(pid).ok_or("the refresh session's CPU time is not readable")?;
    let started = Instant::now();
    for cycle in 0..cycles {
        let cycle_start = Instant::now();
        // The interval's share of a minute of the ten organizations' traffic.
        due += orgs.len() as f64 * interval as f64 / 60.0;
        let mut batches = Vec::new();
        while due >= 1.0 {
            let org = &orgs[next_org % orgs.len()];
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let batch: serde_json::Value = client
                .query_one(
                    "SELECT bench.minute($1, $2::integer)",
                    &[org, &((run + next_org as i64) as i32)],
                )
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            batches.push((org.clone(), batch));
            next_org += 1;
            due -= 1.0;
        }
        let (accepted, _, rejected) = send(&pool, &batches).await.map_err(|e| e.to_string())?;
        if rejected > 0 {
            return Err(format!("cycle {cycle}: {rejected} events rejected"));
        }
        events += accepted;
        let rest = std::time::Duration::from_secs(interval).saturating_sub(cycle_start.elapsed());
        tokio::time::sleep(rest).await;
        let report = crate::live::refresher::refresh_once(&refresher)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("another session holds the refresh lock")?;
        refresh_ms.push(report.duration_ms);
        conversations += report.conversations;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu =
        cpu_seconds(pid).ok_or("the refresh session's CPU time is not readable")? - cpu_before;
    let s = Summary::of(&refresh_ms);
    println!(
        "\nP11: a refresh every {interval} s for {cycles} intervals at the reference traffic ({events} events, {conversations} conversations recomputed)"
    );
    println!(
        "refresh: median {:.2} ms, min {:.2}, p90 {:.2}, max {:.2}",
        s.median, s.min, s.p90, s.max
    );
    println!(
        "refresh time {:.2} % of the wall clock; its database session's CPU {:.2} s in {:.0} s: {:.2} % of one core (target <= 10 %)",
        100.0 * refresh_ms.iter().sum::<f64>() / 1000.0 / wall,
        cpu,
        wall,
        100.0 * cpu / wall
    );
    Ok(())
}
