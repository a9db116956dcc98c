//! The hardened edge: body limits before reading and authenticating, bodies that are not
//! GraphQL requests, out-of-range input, and error codes identical on both transports with
//! nothing internal leaked.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::ws::WsClient;
use crate::common::{error_codes, minutes_ago, spawn_app, team, TestApp};

/// Texts that must never reach a client: Rust's and PostgreSQL's own words.
const LEAKS: [&str; 12] = [
    "Error(",
    "InvalidRequest",
    "EOF",
    "line 1",
    "column",
    "::",
    "panicked",
    "relation",
    "SELECT",
    "daily_stats",
    "tokio",
    "serde",
];

fn assert_no_leak(text: &str) {
    for leak in LEAKS {
        assert!(!text.contains(leak), "{leak:?} leaked: {text}");
    }
}

/// The messages of an answer's errors, checked for leaks.
fn assert_no_leak_in(answer: &Value) {
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    assert!(!errors.is_empty(), "an error was expected: {answer}");
    for error in errors {
        assert_no_leak(error["message"].as_str().unwrap_or_default());
    }
}

async fn app_with_team() -> TestApp {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    app
}

/// Sends the head of a `POST path` that announces `length` bytes and only 1 KiB of them,
/// then reads the answer: it must come without the rest being sent.
async fn announce_and_read(
    app: &TestApp,
    path: &str,
    length: usize,
    token: Option<&str>,
) -> String {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port()))
        .await
        .expect("connect");
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{authorization}\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket
        .write_all(&[b' '; 1024])
        .await
        .expect("a little body");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // The answer, in full: the server closes the connection after it (the body was not read).
    loop {
        let n = tokio::time::timeout(crate::common::ws::WAIT, socket.read(&mut buffer))
            .await
            .expect("an answer without the rest of the body")
            .expect("read");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_graphql_body_over_the_limit_is_refused_before_it_is_read_or_authenticated() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    for token in [None, Some(token.as_str())] {
        let answer = announce_and_read(&app, "/graphql", 2 * 1024 * 1024, token).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"PAYLOAD_TOO_LARGE\""), "{answer}");
        // The same for ingest beyond its 10 MiB, before the token is looked at.
        let answer = announce_and_read(&app, "/v1/events", 11 * 1024 * 1024, token).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"PAYLOAD_TOO_LARGE\""), "{answer}");
    }
    // Without a declared length (chunked), refused once the limit is passed.
    let chunks =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 32 * 1024])));
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 413);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(error_codes(&answer), vec!["PAYLOAD_TOO_LARGE"], "{answer}");
    // Just under the limit is read (and answered as what it is: not a request).
    let (status, answer) = post_graphql(&app, vec![b' '; 1024 * 1024 - 1]).await;
    assert_eq!(
        (status, error_codes(&answer)),
        (400, vec!["BAD_REQUEST".to_string()])
    );
}

async fn post_graphql(app: &TestApp, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .bearer_auth(app.agent_token("acme", "sup"))
        .body(body)
        .send()
        .await
        .expect("POST /graphql");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status != 200 {
        assert_no_leak_in(&answer);
    }
    (status, answer)
}

#[tokio::test]
async fn a_body_that_is_not_a_graphql_request_is_a_bad_request_in_our_words() {
    let app = app_with_team().await;
    for body in [
        "{",
        "hello",
        "",
        "[]",
        "42",
        r#"{"variables": {}}"#,
        r#"{"query": 5}"#,
        r#"{"query": "{ me { id } }", "variables": 5}"#,
        r#"{"query": "{ me { id } }", "variables": "x"}"#,
        r#"{"query": "{ me { id } }", "operationName": 5}"#,
        r#"{"query": "{ me { id } }", "extensions": []}"#,
    ] {
        let (status, answer) = post_graphql(&app, body.as_bytes().to_vec()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(
            error_codes(&answer),
            vec!["BAD_REQUEST"],
            "{body}: {answer}"
        );
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("GraphQL request"), "{body}: {message}");
    }
    // The same request well-formed is answered.
    let (status, answer) = post_graphql(
        &app,
        br#"{"query": "{ me { id } }", "variables": null, "operationName": null}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, &answer["data"]["me"]["id"]),
        (200, &json!("sup")),
        "{answer}"
    );
}

#[tokio::test]
async fn an_integer_out_of_range_is_bad_user_input_as_literal_and_as_variable() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    for limit in ["2147483648", "-2147483649", "9223372036854775807"] {
        let query = format!(r#"{{ statusHistory(agentId: "sup", limit: {limit}) {{ at }} }}"#);
        let answer = app.graphql(Some(&token), &query, json!({})).await;
        assert_eq!(
            error_codes(&answer),
            vec!["BAD_USER_INPUT"],
            "{limit}: {answer}"
        );
        let answer = app
            .graphql(
                Some(&token),
                "query($l: Int) { statusHistory(agentId: \"sup\", limit: $l) { at } }",
                json!({"l": limit.parse::<i64>().expect("i64")}),
            )
            .await;
        assert_eq!(
            error_codes(&answer),
            vec!["BAD_USER_INPUT"],
            "{limit}: {answer}"
        );
        assert_no_leak_in(&answer);
    }
}

/// Queries whose failure has a code of its own, the same on both transports.
const CODED: [(&str, &str); 6] = [
    ("{ me { id ", "GRAPHQL_PARSE_FAILED"),
    ("{ me { password } }", "GRAPHQL_VALIDATION_FAILED"),
    ("{ cockpit { day } }", "GRAPHQL_VALIDATION_FAILED"),
    (
        "query A { me { id } } query B { me { id } }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        r#"{ statusHistory(agentId: "sup", limit: 0) { at } }"#,
        "BAD_USER_INPUT",
    ),
    (
        r#"{ statusHistory(agentId: "nobody") { at } }"#,
        "NOT_FOUND",
    ),
];

#[tokio::test]
async fn parse_and_validation_codes_are_the_same_over_http_and_websocket() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&token)).await.expect("ack");
    for (n, (query, code)) in CODED.into_iter().enumerate() {
        let over_http = app.graphql(Some(&token), query, json!({})).await;
        let over_ws = ws.execute(&format!("q{n}"), query, json!({})).await;
        assert_eq!(error_codes(&over_http), vec![code], "{query}: {over_http}");
        assert_eq!(error_codes(&over_ws), vec![code], "{query}: {over_ws}");
        assert_no_leak_in(&over_ws);
    }
}

#[tokio::test]
async fn an_internal_failure_is_coded_and_leaks_nothing_on_either_transport() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&token)).await.expect("ack");
    // The summary the cockpit reads is gone.
    app.db
        .client()
        .await
        .batch_execute("ALTER TABLE cockpit.daily_stats RENAME TO daily_stats_gone")
        .await
        .expect("break the database");
    let query = r#"{ cockpit(productId: "p1") { day } }"#;
    let over_http = app.graphql(Some(&token), query, json!({})).await;
    let subscription = r#"subscription { cockpit(productId: "p1") { day } }"#;
    let over_ws = ws.execute("s1", subscription, json!({})).await;
    for answer in [&over_http, &over_ws] {
        assert_eq!(
            error_codes(answer),
            vec!["INTERNAL_SERVER_ERROR"],
            "{answer}"
        );
        assert_eq!(
            answer["errors"][0]["message"], "internal server error",
            "{answer}"
        );
        assert_no_leak_in(answer);
    }
}

/// Opens `n` TCP connections that send nothing.
async fn idle_sockets(app: &TestApp, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut sockets = Vec::new();
    for _ in 0..n {
        sockets.push(
            tokio::net::TcpStream::connect(("127.0.0.1", app.port()))
                .await
                .expect("connect"),
        );
    }
    sockets
}

/// Waits until the server closes `socket` (end of stream or reset).
async fn closed_by_server(socket: &mut tokio::net::TcpStream) {
    let mut buffer = [0u8; 64];
    loop {
        match tokio::time::timeout(crate::common::ws::WAIT, socket.read(&mut buffer))
            .await
            .expect("the server closes an idle socket")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn idle_sockets_are_closed_and_never_starve_healthz() {
    let db = std::sync::Arc::new(crate::common::TestDb::new().await);
    let app = crate::common::spawn_app_with(db, None, |config| cockpit::config::Config {
        idle_timeout: std::time::Duration::from_secs(1),
        max_connections: 20,
        ..config
    })
    .await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    // Every connection slot taken by a socket that says nothing.
    let mut sockets = idle_sockets(&app, 20).await;
    // /healthz still answers: the idle ones are closed, which frees their slots.
    // (A new client: the app's own keeps a connection of its own open.)
    let healthz = async {
        let response = reqwest::Client::new()
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("GET /healthz");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    };
    let (status, body) = tokio::time::timeout(crate::common::ws::WAIT, healthz)
        .await
        .expect("/healthz answers while idle sockets hold every slot");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    for socket in &mut sockets {
        closed_by_server(socket).await;
    }
    // A WebSocket that keeps answering the server's pings stays open past the timeout.
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let answer = ws.execute("me", "{ me { id } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["id"], "sup", "{answer}");
}

#[tokio::test]
async fn a_request_answered_slower_than_the_idle_timeout_is_not_cut() {
    let db = std::sync::Arc::new(crate::common::TestDb::new().await);
    let app = crate::common::spawn_app_with(db, None, |config| cockpit::config::Config {
        idle_timeout: std::time::Duration::from_secs(1),
        ..config
    })
    .await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    // The batch waits for its organization's ingest lock (held by the test) past two idle
    // timeouts.
    let batch = json!([{"id": "o", "type": "conversation_opened", "at": minutes_ago(50),
                        "conversation": "c", "product": "p1", "channel": "WHATSAPP"}]);
    let blocked = app.blocked_batch("acme", batch).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = blocked.release().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":1"), "{body}");
}

#[tokio::test]
async fn a_trickling_request_head_is_closed_at_its_deadline_while_others_are_served() {
    use tokio::io::AsyncWriteExt;
    let db = std::sync::Arc::new(crate::common::TestDb::new().await);
    let app = crate::common::spawn_app_with(db, None, |config| cockpit::config::Config {
        header_timeout: std::time::Duration::from_secs(1),
        idle_timeout: std::time::Duration::from_secs(30),
        ..config
    })
    .await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    // A WebSocket opened now outlives the head deadline: it sends frames, not heads.
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");

    // A head that never ends: one byte every 100 ms, so never idle for 30 s.
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port()))
        .await
        .expect("connect");
    let (mut reader, mut writer) = socket.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .expect("start a head");
    let trickle = tokio::spawn(async move {
        while writer.write_all(b"a").await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    // Meanwhile a keep-alive client is served, pausing between its requests past the
    // head deadline (between requests a connection is idle, not sending a head).
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let answer = client
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .expect("GET /healthz");
        assert_eq!(answer.status().as_u16(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    }
    // The trickling socket was closed by the server, without an answer.
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(crate::common::ws::WAIT, reader.read_to_end(&mut buffer))
        .await
        .expect("the server closes a trickling head");
    assert!(
        read.is_err() || !String::from_utf8_lossy(&buffer).contains("200 OK"),
        "the trickled request was answered: {}",
        String::from_utf8_lossy(&buffer)
    );
    trickle.abort();
    let answer = ws.execute("me", "{ me { id } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["id"], "sup", "{answer}");
}
