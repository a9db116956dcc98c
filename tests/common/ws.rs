//! A GraphQL-over-WebSocket client for the tests (graphql-transport-ws or the legacy
//! graphql-ws protocol), and the client-side application of cockpit updates.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// How long a test waits for an expected message.
pub const WAIT: Duration = Duration::from_secs(15);

/// The subscription the tests use; its rows select the same fields as `COCKPIT_QUERY`.
pub const COCKPIT_SUBSCRIPTION: &str = "subscription($p: ID!, $c: Channel, $s: String) {
  cockpit(productId: $p, channel: $c, search: $s) {
    day refreshedAt staleAfter removed
    rows {
      agent { id name status } position
      avgFirstResponseSeconds avgResolutionSeconds activeConversations resolvedConversations
      reactivatedConversations forwardedConversations firstResponseCount resolutionCount
    }
  }
}";

/// One WebSocket connection to `/graphql/ws`.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
}

/// What ended a wait for a message.
#[derive(Debug)]
pub enum Received {
    /// A protocol message.
    Message(Value),
    /// The server closed the connection with this code.
    Closed(u16),
}

impl WsClient {
    /// Connects with `graphql-transport-ws`, or the legacy `graphql-ws` when `legacy`.
    pub async fn connect(app: &TestApp, legacy: bool) -> WsClient {
        let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port())
            .into_client_request()
            .expect("ws request");
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connect");
        WsClient { socket, legacy }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("ws send");
    }

    /// The next protocol message or the close, answering pings; panics after [`WAIT`].
    pub async fn receive(&mut self) -> Received {
        loop {
            let next = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a WebSocket message in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    match value["type"].as_str() {
                        Some("ping") => self.send(json!({"type": "pong"})).await,
                        Some("ka") | Some("pong") => {}
                        _ => return Received::Message(value),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Received::Closed(1006),
            }
        }
    }

    /// Sends `connection_init` with the token; `Ok` on ack, else the close code.
    pub async fn init(&mut self, token: Option<&str>) -> Result<(), u16> {
        let payload = match token {
            Some(t) => json!({"Authorization": format!("Bearer {t}")}),
            None => json!({}),
        };
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        match self.receive().await {
            Received::Message(m) if m["type"] == "connection_ack" => Ok(()),
            Received::Message(m) if m["type"] == "connection_error" => Err(0),
            Received::Message(m) => panic!("unexpected {m}"),
            Received::Closed(code) => Err(code),
        }
    }

    /// Starts the cockpit subscription `id`.
    pub async fn subscribe(&mut self, id: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({"id": id, "type": kind, "payload": {"query": COCKPIT_SUBSCRIPTION, "variables": variables}}))
            .await;
    }

    /// Runs one operation as `id` and returns its first result payload (`{"data"…}` or
    /// `{"errors"…}`), whether the server sends it as data or as an error message. When
    /// the operation ends there (a query, or a failure), its `complete` is awaited too.
    pub async fn execute(&mut self, id: &str, query: &str, variables: Value) -> Value {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(
            json!({"id": id, "type": kind, "payload": {"query": query, "variables": variables}}),
        )
        .await;
        let payload = match self.receive().await {
            Received::Message(m) if m["type"] == "next" || m["type"] == "data" => {
                m["payload"].clone()
            }
            // graphql-transport-ws may send request errors as an array of errors.
            Received::Message(m) if m["type"] == "error" => {
                return json!({"errors": m["payload"]});
            }
            other => panic!("unexpected {other:?}"),
        };
        if payload["errors"].is_array() || !query.trim_start().starts_with("subscription") {
            match self.receive().await {
                Received::Message(m) if m["type"] == "complete" && m["id"] == id => {}
                other => panic!("expected the end of {id}, got {other:?}"),
            }
        }
        payload
    }

    /// Sends a text frame as it is.
    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("ws send");
    }

    /// The next data payload of a subscription (`next`/`data`), or the error payload.
    pub async fn next_update(&mut self) -> Result<Value, Value> {
        match self.receive().await {
            Received::Message(m) if m["type"] == "next" || m["type"] == "data" => {
                if m["payload"]["errors"].is_array() {
                    Err(m["payload"]["errors"].clone())
                } else {
                    Ok(m["payload"]["data"]["cockpit"].clone())
                }
            }
            Received::Message(m) if m["type"] == "error" => Err(m["payload"].clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A cockpit as a client holds it after applying updates in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientCockpit {
    /// Local day.
    pub day: Value,
    /// Last refresh.
    pub refreshed_at: Value,
    /// When the daily columns turn stale, as the server says.
    pub stale_after: Value,
    /// Rows by agent id.
    pub rows: BTreeMap<String, Value>,
}

impl ClientCockpit {
    /// Applies one `CockpitUpdate`.
    pub fn apply(&mut self, update: &Value) {
        self.day = update["day"].clone();
        self.refreshed_at = update["refreshedAt"].clone();
        self.stale_after = update["staleAfter"].clone();
        for row in update["rows"].as_array().expect("rows") {
            self.rows.insert(
                row["agent"]["id"].as_str().expect("id").to_string(),
                row.clone(),
            );
        }
        for id in update["removed"].as_array().expect("removed") {
            self.rows.remove(id.as_str().expect("id"));
        }
    }

    /// The same shape from a fresh `cockpit` query answer (its four tables merged).
    pub fn from_query(cockpit: &Value) -> ClientCockpit {
        let mut rows = BTreeMap::new();
        for table in ["online", "onBreak", "invisible", "offline"] {
            for row in cockpit[table].as_array().expect("table") {
                rows.insert(
                    row["agent"]["id"].as_str().expect("id").to_string(),
                    row.clone(),
                );
            }
        }
        ClientCockpit {
            day: cockpit["day"].clone(),
            refreshed_at: cockpit["refreshedAt"].clone(),
            stale_after: cockpit["staleAfter"].clone(),
            rows,
        }
    }
}
