//! `cockpit bench refresh`: P1, P2 (`--verify`), P8 — and P1's long-conversation clause
//! ([`super::refresh_touch`]).

use std::time::Instant;

use deadpool_postgres::Pool;

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
            let (differing, groups): (i64, i64) = (row.get(0), row.get(1));
            println!(
                "verify {}d: {differing} differing groups of {groups} against a full recompute ({:.0} s)",
                s.days,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
