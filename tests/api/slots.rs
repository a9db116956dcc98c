//! Fair connection slots: one peer address holds at most its share, connections that have
//! not completed a request share a quarter of the cap, and when every slot is taken the
//! oldest of those makes room, so that other clients keep being served.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::ws::WAIT;
use crate::common::{minutes_ago, spawn_app_with, team, TestApp, TestDb};

/// Loopback addresses other than the harness's 127.0.0.1 (whose client keeps connections
/// of its own): two peers.
const FLOODING_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn app(max: usize, per_peer: usize) -> TestApp {
    let db = Arc::new(TestDb::new().await);
    let app = spawn_app_with(db, None, |c| cockpit::config::Config {
        max_connections: max,
        max_connections_per_peer: per_peer,
        idle_timeout: Duration::from_secs(60),
        header_timeout: Duration::from_secs(60),
        ..c
    })
    .await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    app
}

/// A TCP connection to the app from `local` (any port).
async fn connect_from(app: &TestApp, local: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(local, 0))
        .expect("bind a loopback address");
    socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), app.port()))
        .await
        .expect("connect")
}

/// Sends `GET /healthz` on a kept-alive connection: whether it was answered (false: the
/// server closed the connection instead).
async fn healthz_on(socket: &mut TcpStream) -> bool {
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if socket.write_all(request).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(WAIT, socket.read(&mut buffer))
            .await
            .expect("an answer or a close, not a hang");
        match read {
            Ok(0) | Err(_) => return false,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
        if String::from_utf8_lossy(&answer).contains(r#"{"status":"ok"}"#) {
            return true;
        }
    }
}

/// A client whose connections come from `local`.
fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .build()
        .expect("client")
}

#[tokio::test]
async fn one_peer_holds_its_share_and_another_peer_is_served_during_its_flood() {
    let app = app(100, 10).await;
    // 30 connections from one peer, each asking a request: only its share is served.
    let mut flood = Vec::new();
    for _ in 0..30 {
        flood.push(connect_from(&app, FLOODING_PEER).await);
    }
    let mut answered = 0;
    for socket in &mut flood {
        if healthz_on(socket).await {
            answered += 1;
        }
    }
    assert_eq!(answered, 10, "the peer's share is 10 connections");
    // Another peer is served meanwhile: the health check and an authenticated query.
    let other = client_from(OTHER_PEER);
    let health = tokio::time::timeout(WAIT, other.get(format!("{}/healthz", app.address)).send())
        .await
        .expect("another peer is served during the flood")
        .expect("GET /healthz from another peer");
    assert_eq!(health.status().as_u16(), 200);
    let answer = other
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.agent_token("acme", "sup"))
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .expect("GraphQL from another peer");
    assert_eq!(answer.status().as_u16(), 200);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["id"], "sup", "{body}");
}

#[tokio::test]
async fn when_every_slot_is_taken_the_oldest_silent_connection_makes_room() {
    // 8 slots, no per-peer share: silent connections may hold 2 of them at once.
    let app = app(8, 0).await;
    // Six established keep-alive connections (each completed a request).
    let mut established = Vec::new();
    for _ in 0..6 {
        let mut socket = connect_from(&app, FLOODING_PEER).await;
        assert!(healthz_on(&mut socket).await);
        established.push(socket);
    }
    // Ten connections that never send a byte: only the newest two keep a slot, and with
    // them every slot is taken.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(connect_from(&app, FLOODING_PEER).await);
    }
    // A new client is served: a silent connection was closed for it.
    let health = tokio::time::timeout(
        WAIT,
        client_from(OTHER_PEER)
            .get(format!("{}/healthz", app.address))
            .send(),
    )
    .await
    .expect("a new client is served while every slot was taken")
    .expect("GET /healthz");
    assert_eq!(health.status().as_u16(), 200);
    // The first silent connection was closed by the server (end of stream or reset).
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(WAIT, silent[0].read(&mut buffer))
        .await
        .expect("the oldest silent connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The established connections were never candidates: each is served again.
    for socket in &mut established {
        assert!(healthz_on(socket).await);
    }
}
