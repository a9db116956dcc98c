use crate::common::spawn_app;

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_is_green_once_migrations_are_applied() {
    let app = spawn_app().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ready"), "{body}");
}

#[tokio::test]
async fn readyz_turns_red_when_the_schema_history_is_behind() {
    let app = spawn_app().await;
    let client = app.db.client().await;
    client
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history)",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("migrations"), "{body}");
}

#[tokio::test]
async fn metrics_exposes_the_series_of_the_spec() {
    let app = spawn_app().await;
    let at = crate::common::minutes_ago(5);
    app.ingest_ok("acme", &serde_json::json!(crate::common::team(&at)))
        .await;
    // The recorder is the process's, shared by the tests running beside this one: the
    // ingest counter is checked by its growth, by a number of rejections no other test
    // sends in one go.
    let invalid = "cockpit_ingest_events_total{result=\"rejected\",code=\"INVALID\"}";
    let before = series_value(&app.get("/metrics").await.1, invalid);
    let bad: Vec<_> = (0..777)
        .map(|i| serde_json::json!({"id": format!("x{i}"), "type": "nope", "at": at}))
        .collect();
    let (_, answer) = app
        .post_events(&app.service_token("acme"), &serde_json::json!(bad))
        .await;
    assert_eq!(answer["rejected"][0]["code"], "INVALID");
    let after = series_value(&app.get("/metrics").await.1, invalid);
    assert!(after >= before + 777.0, "{invalid}: {before} then {after}");
    let mut ws = crate::common::ws::WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    ws.subscribe("1", serde_json::json!({"p": "p1"})).await;
    ws.next_update().await.expect("snapshot");
    // A status change goes through NOTIFY: the lag is recorded once it is fanned out.
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            "mutation { setAgentStatus(agentId: \"sup\", status: ONLINE) { id } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(crate::common::error_codes(&answer), Vec::<String>::new());
    ws.next_update().await.expect("the change");

    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "cockpit_refresh_duration_seconds_bucket",
        "cockpit_refresh_age_seconds",
        "cockpit_notify_lag_seconds_bucket",
        "cockpit_subscribers",
        "cockpit_ingest_events_total{result=\"accepted\"}",
        "cockpit_ingest_events_total{result=\"rejected\",code=\"INVALID\"}",
        "cockpit_http_request_duration_seconds_bucket{route=\"/v1/events\"",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from /metrics:\n{text}"
        );
    }
}

/// The value of one series (name and labels as written) in a Prometheus text; 0 if absent.
fn series_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}
