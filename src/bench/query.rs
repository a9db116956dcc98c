//! `cockpit bench query`: P3 and P4.

use std::time::Instant;

use super::stats::{percentile, Summary};
use super::*;

/// Runs of the statement timed by EXPLAIN ANALYZE (after as many warm-up runs).
const EXPLAIN_RUNS: usize = 60;

/// P13: the execution time PostgreSQL reports (EXPLAIN ANALYZE, timing of nodes off) of
/// `sql` prepared with its five parameters, over [`EXPLAIN_RUNS`] runs in one session.
async fn execution_ms(pool: &Pool, sql: &str, arguments: &str) -> Result<Summary, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!(
            "DEALLOCATE ALL; PREPARE p13(text, text, text, text, text[]) AS {sql}"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let explain = format!("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE p13({arguments})");
    let mut times = Vec::new();
    for run in 0..2 * EXPLAIN_RUNS {
        let row = client
            .query_one(explain.as_str(), &[])
            .await
            .map_err(|e| e.to_string())?;
        let plan: serde_json::Value = row.try_get(0).map_err(|e| e.to_string())?;
        let ms = plan[0]["Execution Time"]
            .as_f64()
            .ok_or("EXPLAIN gave no execution time")?;
        if run >= EXPLAIN_RUNS {
            times.push(ms);
        }
    }
    client
        .batch_execute("DEALLOCATE p13")
        .await
        .map_err(|e| e.to_string())?;
    Ok(Summary::of(&times))
}

/// Runs `clients` loops of `one` for `seconds`: requests per second and latencies (ms).
async fn hammer<F, Fut>(clients: usize, seconds: u64, one: F) -> Result<(f64, Vec<f64>), String>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let one = one.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                one().await?;
                latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((rate, all))
}

/// `cockpit bench query`: P3 and P4. The `cockpit` GraphQL query of one product (all
/// channels) from `clients` concurrent clients over kept-alive connections, against the
/// same SQL run directly on the same pool at the same concurrency (a prepared statement,
/// as the service runs it); then both again while refreshes run back to back.
pub async fn query(
    base_url: &str,
    clients: usize,
    seconds: u64,
    per_day: i32,
) -> Result<(), String> {
    let (pool, url) = prepare_copy(base_url, 1, per_day, ACTIVE.min(per_day / 10)).await?;
    let service = Service::start(url, clients, 3600).await?;
    let port = service.port;
    let app_pool = service.pool.clone();
    let token = service.token("org1", "a1", crate::auth::TokenRole::Supervisor);
    let body = serde_json::json!({"query": "{ cockpit(productId: \"p1\") { day refreshedAt serverNow serviceLevelSeconds queue { queued oldestQueuedSince } online { ...R } onBreak { ...R } invisible { ...R } offline { ...R } } } fragment R on AgentRow { agent { id name role status statusSince } avgFirstResponseSeconds avgResolutionSeconds activeConversations resolvedConversations reactivatedConversations forwardedConversations firstResponseCount resolutionCount unansweredConversations oldestUnansweredSince overdueFirstResponses firstResponsesWithinTarget serviceLevel secondsInStatusToday { online onBreak invisible offline } }"}).to_string();
    let rows: i64 = {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .query(
                "SELECT 1 FROM cockpit.agent_products WHERE org_id = 'org1' AND product_id = 'p1'",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .len() as i64
    };
    // One client whose pool keeps a connection alive per concurrent caller, as a frontend
    // does: what is measured is the query, not a TCP handshake per request.
    let http = HttpClient::new(port);
    let gql = {
        let token = token.clone();
        let body = body.clone();
        move || {
            let (http, token, body) = (http.clone(), token.clone(), body.clone());
            async move { http.graphql(&token, &body).await }
        }
    };
    let direct = {
        let pool = app_pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                crate::store::cockpit(&pool, "org1", "p1", None, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    };
    let scope = crate::live::hub::Scope {
        org: "org1".into(),
        product: "p1".into(),
        channel: None,
        search: None,
    };
    let mut report = Vec::new();
    for during_refresh in [false, true] {
        let refreshing = during_refresh.then(|| {
            let pool = pool.clone();
            tokio::spawn(async move {
                loop {
                    let client = match pool.get().await {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    // Every conversation of the workload's last hour (before its newest
                    // conversation, not before now: the loaded database ages) recomputed,
                    // back to back.
                    let _ = client
                        .batch_execute(
                            "INSERT INTO cockpit.dirty_conversations (org_id, conversation_id)
                             SELECT org_id, conversation_id FROM cockpit.conversations
                              WHERE opened_at > (SELECT max(opened_at) FROM cockpit.conversations)
                                                - interval '1 hour'
                             ON CONFLICT DO NOTHING;
                             SELECT cockpit.refresh_daily();",
                        )
                        .await;
                }
            })
        });
        let (sql_rate, sql_lat) = hammer(clients, seconds, direct.clone()).await?;
        // Nobody follows the scope: every query runs the statement.
        let (gql_rate, gql_lat) = hammer(clients, seconds, gql.clone()).await?;
        // A live subscriber follows it: queries are answered from its snapshot.
        let follower = service
            .hub
            .subscribe(scope.clone())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("product p1 of org1 is missing")?;
        let memory_before = service.hub.answers().memory;
        let (mem_rate, mem_lat) = hammer(clients, seconds, gql.clone()).await?;
        let from_memory = service.hub.answers().memory - memory_before;
        drop(follower);
        if let Some(task) = refreshing {
            task.abort();
        }
        report.push((
            during_refresh,
            sql_rate,
            sql_lat,
            [
                (gql_rate, gql_lat, None),
                (mem_rate, mem_lat, Some(from_memory)),
            ],
        ));
    }
    service.stop().await;
    let in_scope = crate::store::cockpit(&pool, "org1", "p1", None, None)
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |c| c.rows.len());
    let whole = execution_ms(
        &pool,
        crate::store::COCKPIT_SQL,
        "'org1', 'p1', NULL, NULL, NULL",
    )
    .await?;
    let one = execution_ms(
        &pool,
        &crate::store::COCKPIT_AGENTS_SQL,
        "'org1', 'p1', NULL, NULL, ARRAY['a7']",
    )
    .await?;
    println!("\ncockpit statement, product p1 of org1 ({in_scope} agents in scope), execution time by EXPLAIN ANALYZE, {EXPLAIN_RUNS} runs after as many warm-up runs (P13: whole scope median <= 2 ms)");
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "min", "p90", "max"
    );
    for (name, s) in [("whole scope", whole), ("one agent's row", one)] {
        println!(
            "{:<16} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name, s.median, s.min, s.p90, s.max
        );
    }
    println!("\ncockpit query, product p1 of org1 ({rows} members, {in_scope} agents in scope), {clients} concurrent clients, {seconds} s each (P3: GraphQL/SQL >= 1.0, GraphQL p99 <= 25 ms)");
    println!(
        "{:<16} {:<10} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7}",
        "", "GraphQL", "SQL/s", "p50 ms", "p99 ms", "GraphQL/s", "p50 ms", "p99 ms", "ratio"
    );
    for (during, sql_rate, sql_lat, graphql) in &report {
        for (gql_rate, gql_lat, from_memory) in graphql {
            let how = match from_memory {
                None => "statement".to_string(),
                Some(n) => format!(
                    "memory {:.0}%",
                    100.0 * *n as f64 / gql_lat.len().max(1) as f64
                ),
            };
            println!(
                "{:<16} {:<10} {:>9.0} {:>9.2} {:>9.2} {:>12.0} {:>9.2} {:>9.2} {:>7.2}",
                if *during { "during refresh" } else { "quiet" },
                how,
                sql_rate,
                percentile(sql_lat, 0.5),
                percentile(sql_lat, 0.99),
                gql_rate,
                percentile(gql_lat, 0.5),
                percentile(gql_lat, 0.99),
                gql_rate / sql_rate
            );
        }
    }
    if let [(_, _, _, [_, (_, quiet, _)]), (_, _, _, [_, (_, busy, _)])] = report.as_slice() {
        println!(
            "GraphQL from memory, p99 during refresh / quiet: {:.2}",
            percentile(busy, 0.99) / percentile(quiet, 0.99)
        );
    }
    Ok(())
}
