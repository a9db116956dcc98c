//! The listener: one dedicated PostgreSQL connection per instance (outside the pool) that
//! LISTENs for `cockpit_live` and `cockpit_refresh` and feeds the hub. When the connection
//! drops it reconnects with capped exponential backoff, and after every (re)connection the
//! hub resyncs everyone: notifications sent while disconnected are lost.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio_postgres::{AsyncMessage, NoTls};

use super::hub::{Hub, HubEvent};

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// A connection that does not answer a ping this often is considered dead (a cut network
/// does not always close the socket).
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
struct LivePayload {
    org: String,
    product: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    agents: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RefreshPayload {
    at: Option<chrono::DateTime<chrono::Utc>>,
    changed: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize)]
struct SyncPayload {
    instance: u64,
    n: u64,
}

#[derive(Deserialize)]
struct Sent {
    sent: Option<f64>,
}

/// Records how long ago the notified change happened (clocks of one machine or close).
fn record_lag(payload: &str) {
    let Ok(Sent { sent: Some(sent) }) = serde_json::from_str::<Sent>(payload) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(sent);
    metrics::histogram!("cockpit_notify_lag_seconds").record((now - sent).max(0.0));
}

/// Turns a notification into a hub event; `None` for what this version does not know.
pub fn event_of(channel: &str, payload: &str) -> Option<HubEvent> {
    match channel {
        "cockpit_refresh" => {
            // An unreadable payload still says "refreshed": everything is re-read.
            let p: Option<RefreshPayload> = serde_json::from_str(payload).ok();
            let (at, changed) = p.map_or((None, None), |p| (p.at, p.changed));
            Some(HubEvent::Refreshed {
                at,
                changed: changed.map(|c| {
                    Arc::new(
                        c.into_iter()
                            .map(|(org, agents)| (org, agents.into_iter().map(Arc::from).collect()))
                            .collect(),
                    )
                }),
            })
        }
        "cockpit_sync" => {
            let p: SyncPayload = serde_json::from_str(payload).ok()?;
            Some(HubEvent::Sync {
                instance: p.instance,
                n: p.n,
            })
        }
        "cockpit_live" => {
            let p: LivePayload = serde_json::from_str(payload).ok()?;
            Some(HubEvent::Changed {
                org: p.org.into(),
                product: p.product.map(Into::into),
                members: p.kind.as_deref() == Some("members"),
                agents: p
                    .agents
                    .map(|a| a.into_iter().map(Arc::<str>::from).collect()),
            })
        }
        _ => None,
    }
}

/// Listens until the task is dropped, reconnecting as needed.
pub async fn run(url: String, hub: Arc<Hub>, cancel: tokio_util::sync::CancellationToken) {
    metrics::counter!("cockpit_listener_reconnects_total").increment(0);
    let mut backoff = BACKOFF_START;
    loop {
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            outcome = listen(&url, &hub) => outcome,
        };
        // A session that got connected was good, however it ended (a failed ping
        // included): the next attempt starts from the shortest wait.
        if hub.listener_connected() {
            backoff = BACKOFF_START;
        }
        match outcome {
            Ok(()) => backoff = BACKOFF_START,
            Err(e) => tracing::warn!(error = %e, "listener connection failed"),
        }
        hub.set_listener_connected(false);
        metrics::counter!("cockpit_listener_reconnects_total").increment(1);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

async fn listen(url: &str, hub: &Arc<Hub>) -> Result<(), tokio_postgres::Error> {
    let config: tokio_postgres::Config = url.parse()?;
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx
                        .send((n.channel().to_string(), n.payload().to_string()))
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listener connection lost");
                    break;
                }
            }
        }
    });
    let outcome = async {
        client
            .batch_execute("LISTEN cockpit_live; LISTEN cockpit_refresh; LISTEN cockpit_sync")
            .await?;
        hub.set_listener_connected(true);
        hub.publish(HubEvent::Resync);
        tracing::info!("listener connected");
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                received = notifications.recv() => match received {
                    Some((channel, payload)) => {
                        if let Some(event) = event_of(&channel, &payload) {
                            hub.publish(event);
                            record_lag(&payload);
                        }
                    }
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(PING_TIMEOUT, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_) => {
                            tracing::warn!("listener connection does not answer");
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_become_hub_events() {
        assert_eq!(
            event_of(
                "cockpit_live",
                r#"{"org":"acme","product":"p1","kind":"active"}"#
            ),
            Some(HubEvent::Changed {
                org: "acme".into(),
                product: Some("p1".into()),
                members: false,
                agents: None
            })
        );
        assert_eq!(
            event_of(
                "cockpit_live",
                r#"{"org":"acme","product":"p1","kind":"active","agents":["okan","ipek"]}"#
            ),
            Some(HubEvent::Changed {
                org: "acme".into(),
                product: Some("p1".into()),
                members: false,
                agents: Some(vec![Arc::from("okan"), Arc::from("ipek")].into())
            })
        );
        assert_eq!(
            event_of(
                "cockpit_live",
                r#"{"org":"acme","product":null,"kind":"status","agents":null}"#
            ),
            Some(HubEvent::Changed {
                org: "acme".into(),
                product: None,
                members: false,
                agents: None
            })
        );
        assert_eq!(
            event_of(
                "cockpit_live",
                r#"{"org":"acme","product":null,"kind":"members"}"#
            ),
            Some(HubEvent::Changed {
                org: "acme".into(),
                product: None,
                members: true,
                agents: None
            })
        );
        assert_eq!(
            event_of("cockpit_refresh", "{}"),
            Some(HubEvent::Refreshed {
                at: None,
                changed: None
            })
        );
        let Some(HubEvent::Refreshed {
            at: Some(at),
            changed: Some(changed),
        }) = event_of(
            "cockpit_refresh",
            r#"{"at":"2026-12-07T22:50:00.123456+03:00","changed":{"acme":["okan"]},"groups":1}"#,
        )
        else {
            panic!("a refresh with its changes");
        };
        assert_eq!(at.to_rfc3339(), "2026-12-07T19:50:00.123456+00:00");
        assert_eq!(changed["acme"], vec![Arc::<str>::from("okan")]);
        assert_eq!(
            event_of("cockpit_sync", r#"{"instance":18446744073709551615,"n":7}"#),
            Some(HubEvent::Sync {
                instance: u64::MAX,
                n: 7
            })
        );
        assert_eq!(event_of("cockpit_live", "garbage"), None);
        assert_eq!(event_of("elsewhere", "{}"), None);
    }
}
