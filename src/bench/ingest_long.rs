//! `cockpit bench ingest --long`: P9, ingest cost against conversation length. One batch of
//! 50,000 customer messages of one conversation (time of the batch), then single events
//! into that 50,000-event conversation against the same events into a fresh one.

use std::time::Instant;

use super::stats::median;
use super::{prepare_copy, HttpClient, Service, ACTIVE, PER_DAY};

/// Events of the long conversation's batch (the batch limit).
const LONG: usize = crate::ingest::MAX_EVENTS;
/// Single-event batches timed into each conversation.
const PROBES: usize = 40;

fn at(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs the P9 measurements on the 1-day bench database.
pub async fn ingest_long(base_url: &str) -> Result<(), String> {
    // A fresh copy of the loaded database, which this bench's long conversation must not grow.
    let (loaded, url) = prepare_copy(base_url, 1, PER_DAY, ACTIVE).await?;
    loaded.close();
    let service = Service::start(url, 4, 60).await?;
    let token = service.token("org1", "bench", crate::auth::TokenRole::Service);
    let port = service.port;
    let client = HttpClient::new(port);
    let run = chrono::Utc::now().timestamp();
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    let open = |conversation: &str| {
        serde_json::json!([{"id": format!("{conversation}-o"), "type": "conversation_opened",
            "at": at(start), "conversation": conversation, "product": "p1", "channel": "WHATSAPP"}])
        .to_string()
    };
    let long = format!("long{run}");
    let fresh = format!("fresh{run}");
    for conversation in [&long, &fresh] {
        client.post_events(&token, open(conversation)).await?;
    }

    // One batch of 50,000 messages of one conversation.
    let messages: Vec<serde_json::Value> = (0..LONG)
        .map(|i| {
            serde_json::json!({"id": format!("{long}-m{i}"), "type": "customer_message",
                "at": at(start + chrono::Duration::milliseconds(i as i64 * 100)), "conversation": long})
        })
        .collect();
    let started = Instant::now();
    let answer = client
        .post_events(&token, serde_json::Value::Array(messages).to_string())
        .await?;
    let long_batch = started.elapsed().as_secs_f64();
    if answer["accepted"].as_u64() != Some(LONG as u64) {
        return Err(format!("the long batch was not accepted whole: {answer}"));
    }

    // Then one event at a time (assignments alternating between two agents: each is judged
    // against the conversation's state) into the long and the fresh conversation, in turn.
    let mut long_ms = Vec::new();
    let mut fresh_ms = Vec::new();
    let probe_start = start + chrono::Duration::minutes(100);
    for i in 0..PROBES {
        for (conversation, times) in [(&long, &mut long_ms), (&fresh, &mut fresh_ms)] {
            let body =
                serde_json::json!([{"id": format!("{conversation}-p{i}"), "type": "assigned",
                "at": at(probe_start + chrono::Duration::seconds(i as i64)),
                "conversation": conversation, "agent": format!("a{}", 1 + i % 2)}])
                .to_string();
            let t0 = Instant::now();
            let answer = client.post_events(&token, body).await?;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            if answer["accepted"].as_u64() != Some(1) {
                return Err(format!("a probe was not accepted: {answer}"));
            }
        }
    }
    service.stop().await;
    let (long_median, fresh_median) = (median(&long_ms), median(&fresh_ms));
    println!("ingest against conversation length (P9), POST /v1/events");
    println!("  one batch of {LONG} events of one conversation   {long_batch:>8.2} s");
    println!(
        "  one event into a {LONG}-event conversation       {long_median:>8.2} ms (median of {PROBES})"
    );
    println!("  one event into a fresh conversation             {fresh_median:>8.2} ms (median of {PROBES})");
    println!(
        "  ratio long / fresh                              {:>8.2}",
        long_median / fresh_median
    );
    Ok(())
}
