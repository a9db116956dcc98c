//! P1's clause on conversation length: the refresh after one new reply into a conversation
//! of 10,000 events against the same into a conversation of 10 (`cockpit bench refresh`).

use crate::db::Pool;

use super::stats::median;
use crate::db::DbError;

/// Events of the long and of the short conversation.
const LONG: i32 = 10_000;
const SHORT: i32 = 10;
/// Refreshes timed for each.
const TOUCHES: usize = 15;

/// Ingests, in SQL, a conversation of `n` events: opened, assigned, then the customer and
/// the agent in turn, one second apart.
const CONVERSATION_SQL: &str = "
    SELECT cockpit.ingest_events($1, jsonb_build_array(
               jsonb_build_object('id', $2 || '-o', 'type', 'conversation_opened', 'at', now() - interval '4 hours',
                                  'conversation', $2, 'product', 'p1', 'channel', 'WHATSAPP'),
               jsonb_build_object('id', $2 || '-a', 'type', 'assigned', 'at', now() - interval '4 hours',
                                  'conversation', $2, 'agent', 'a1'))
           || (SELECT jsonb_agg(CASE WHEN i % 2 = 0
                   THEN jsonb_build_object('id', $2 || '-' || i, 'type', 'customer_message',
                                           'at', now() - interval '4 hours' + i * interval '1 second', 'conversation', $2)
                   ELSE jsonb_build_object('id', $2 || '-' || i, 'type', 'agent_message',
                                           'at', now() - interval '4 hours' + i * interval '1 second', 'conversation', $2,
                                           'agent', 'a1') END ORDER BY i)
                 FROM generate_series(1, $3::integer - 2) i))";

/// One more reply into `conversation`: its `k`-th touch.
const TOUCH_SQL: &str = "
    SELECT cockpit.ingest_events($1, jsonb_build_array(jsonb_build_object(
               'id', $2 || '-t' || $3::integer, 'type', 'agent_message',
               'at', now() - interval '1 hour' + $3::integer * interval '1 second',
               'conversation', $2, 'agent', 'a1')))";

/// Times the refresh after a touch of a 10,000-event and of a 10-event conversation, in
/// turn; prints the medians and their ratio.
pub async fn touch_cost(pool: &Pool, run: i64) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let long = format!("touch-long-{run}");
    let short = format!("touch-short-{run}");
    for (conversation, n) in [(&long, LONG), (&short, SHORT)] {
        let answer: serde_json::Value = client
            .query_one(CONVERSATION_SQL, &[&"org1", conversation, &n])
            .await
            .map_err(|e| DbError::from(e).to_string())?
            .get(0);
        if answer["accepted"].as_i64() != Some(n as i64) {
            return Err(format!(
                "the {n}-event conversation was not accepted: {answer}"
            ));
        }
    }
    drop(client);
    crate::live::refresher::refresh_once(pool)
        .await
        .map_err(|e| e.to_string())?;
    let (mut long_ms, mut short_ms) = (Vec::new(), Vec::new());
    for k in 0..TOUCHES as i32 {
        for (conversation, times) in [(&long, &mut long_ms), (&short, &mut short_ms)] {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            client
                .query_one(TOUCH_SQL, &[&"org1", conversation, &k])
                .await
                .map_err(|e| DbError::from(e).to_string())?;
            drop(client);
            let report = crate::live::refresher::refresh_once(pool)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("another session holds the refresh lock")?;
            if report.conversations != 1 {
                return Err(format!(
                    "a touch refreshed {} conversations, not 1 (is a service running on the bench database?)",
                    report.conversations
                ));
            }
            times.push(report.duration_ms);
        }
    }
    let (long_median, short_median) = (median(&long_ms), median(&short_ms));
    println!(
        "\nrefresh after one new reply, by conversation length ({TOUCHES} touches each, in turn)"
    );
    println!("  {LONG}-event conversation  {long_median:>8.2} ms (median)");
    println!("  {SHORT}-event conversation     {short_median:>8.2} ms (median)");
    println!(
        "  ratio                      {:>8.2}",
        long_median / short_median
    );
    Ok(())
}
