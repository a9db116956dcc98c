//! Live cockpits over a real WebSocket: snapshot then deltas, filters, several instances,
//! a cut listener connection, authentication, coalescing.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::proxy::Proxy;
use crate::common::ws::{ClientCockpit, WsClient};
use crate::common::{
    error_codes, minutes_ago, plus_minutes, server, spawn_app, spawn_app_on, team, url_of, TestApp,
    COCKPIT_QUERY,
};

async fn app_with_team() -> TestApp {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    app
}

/// A supervisor's `cockpit` query of `variables`, as the client state it gives.
pub(crate) async fn fresh(app: &TestApp, variables: &Value) -> ClientCockpit {
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            COCKPIT_QUERY,
            variables.clone(),
        )
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    ClientCockpit::from_query(&answer["data"]["cockpit"])
}

/// A supervisor's subscription, past its first message (the full snapshot).
pub(crate) async fn subscribed(app: &TestApp, variables: Value) -> (WsClient, ClientCockpit) {
    let mut ws = WsClient::connect(app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    ws.subscribe("1", variables.clone()).await;
    let first = ws.next_update().await.expect("snapshot");
    let mut state = ClientCockpit::default();
    state.apply(&first);
    assert_eq!(first["removed"], json!([]));
    (ws, state)
}

/// Applies messages until the client equals a fresh query; how many it took.
async fn converge(
    ws: &mut WsClient,
    state: &mut ClientCockpit,
    app: &TestApp,
    variables: &Value,
) -> usize {
    let mut messages = 0;
    loop {
        if *state == fresh(app, variables).await {
            return messages;
        }
        let update = ws.next_update().await.expect("update");
        state.apply(&update);
        messages += 1;
    }
}

pub(crate) async fn set_status(app: &TestApp, actor: &str, agent: &str, status: &str) {
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", actor)),
            "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { id } }",
            json!({"a": agent, "s": status}),
        )
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
}

#[tokio::test]
async fn a_subscriber_gets_the_snapshot_then_deltas_and_ends_equal_to_a_fresh_query() {
    let app = app_with_team().await;
    let vars = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&app, vars.clone()).await;
    assert_eq!(
        state,
        fresh(&app, &vars).await,
        "the first message is the full snapshot"
    );
    assert_eq!(state.rows.len(), 3);

    set_status(&app, "okan", "okan", "ONLINE").await;
    assert!(converge(&mut ws, &mut state, &app, &vars).await >= 1);
    assert_eq!(state.rows["okan"]["agent"]["status"], "ONLINE");

    let t0 = minutes_ago(10);
    app.ingest_ok("acme", &json!([
        {"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "LIVE_CHAT"},
        {"id": "a", "type": "assigned", "at": t0, "conversation": "c", "agent": "okan"},
        {"id": "r", "type": "agent_message", "at": plus_minutes(&t0, 2), "conversation": "c", "agent": "okan"}
    ]))
    .await;
    assert!(converge(&mut ws, &mut state, &app, &vars).await >= 1);
    assert_eq!(state.rows["okan"]["activeConversations"], 1);

    app.ingest_ok("acme", &json!([{"id": "s", "type": "resolved", "at": plus_minutes(&t0, 3), "conversation": "c", "agent": "okan"}])).await;
    assert!(converge(&mut ws, &mut state, &app, &vars).await >= 1);
    assert_eq!(
        state.rows["okan"]["activeConversations"], 0,
        "active drops at once"
    );

    app.db.refresh().await;
    converge(&mut ws, &mut state, &app, &vars).await;
    assert_eq!(
        state.rows["okan"]["resolvedConversations"], 1,
        "resolved follows the refresh"
    );
    assert_eq!(state.rows["okan"]["avgFirstResponseSeconds"], json!(120.0));
}

#[tokio::test]
async fn subscribers_of_another_product_channel_or_search_receive_nothing_of_the_change() {
    let app = app_with_team().await;
    let (mut all, mut all_state) = subscribed(&app, json!({"p": "p1"})).await;
    let mut others = Vec::new();
    for vars in [
        json!({"p": "p1", "c": "WHATSAPP"}),
        json!({"p": "p2"}),
        json!({"p": "p1", "s": "ipek"}),
    ] {
        others.push(subscribed(&app, vars).await.0);
    }
    let t0 = minutes_ago(10);
    app.ingest_ok("acme", &json!([
        {"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "LIVE_CHAT"},
        {"id": "a", "type": "assigned", "at": t0, "conversation": "c", "agent": "okan"}
    ]))
    .await;
    assert!(converge(&mut all, &mut all_state, &app, &json!({"p": "p1"})).await >= 1);
    assert_eq!(all_state.rows["okan"]["activeConversations"], 1);

    // A refresh reaches everyone: until its message, nobody else may have received a row.
    let report = app.db.refresh().await;
    let barrier =
        chrono::DateTime::parse_from_rfc3339(report["refreshed_at"].as_str().unwrap()).unwrap();
    for ws in &mut others {
        loop {
            let update = ws.next_update().await.expect("update");
            assert_eq!(
                (update["rows"].clone(), update["removed"].clone()),
                (json!([]), json!([])),
                "{update}"
            );
            let at = chrono::DateTime::parse_from_rfc3339(update["refreshedAt"].as_str().unwrap())
                .unwrap();
            if at >= barrier {
                break;
            }
        }
    }
}

#[tokio::test]
async fn a_change_made_through_one_instance_reaches_subscribers_of_another() {
    let a = app_with_team().await;
    let b = spawn_app_on(a.db.clone(), None).await;
    let vars = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&b, vars.clone()).await;
    set_status(&a, "sup", "sup", "BREAK").await;
    assert!(converge(&mut ws, &mut state, &b, &vars).await >= 1);
    assert_eq!(state.rows["sup"]["agent"]["status"], "BREAK");

    let t0 = minutes_ago(5);
    a.ingest_ok("acme", &json!([
        {"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "WHATSAPP"},
        {"id": "a", "type": "assigned", "at": t0, "conversation": "c", "agent": "ipek"}
    ]))
    .await;
    assert!(converge(&mut ws, &mut state, &b, &vars).await >= 1);
    assert_eq!(state.rows["ipek"]["activeConversations"], 1);
}

#[tokio::test]
async fn after_the_listener_connection_is_cut_and_restored_subscribers_get_a_full_snapshot() {
    let db = Arc::new(crate::common::TestDb::new().await);
    let config = server();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let mut through = tokio_postgres::Config::new();
    through
        .host("127.0.0.1")
        .port(proxy.port)
        .user(config.get_user().unwrap_or("postgres"));
    if let Some(password) = config.get_password() {
        through.password(password);
    }
    let app = spawn_app_on(db.clone(), Some(url_of(&through, &db.name))).await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    let vars = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&app, vars.clone()).await;

    proxy.cut();
    app.wait_ready(false).await;
    // Changed while the listener is away: its notification is lost for this instance.
    set_status(&app, "ipek", "ipek", "INVISIBLE").await;
    proxy.restore();
    app.wait_ready(true).await;

    // A refresh may push the change first (it re-reads every scope); the full snapshot of
    // the new listener epoch (every row, unchanged ones included) must follow.
    loop {
        let update = ws.next_update().await.expect("an update after reconnect");
        state.apply(&update);
        if update["rows"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(
            update["rows"].as_array().is_some_and(|rows| rows.len() < 3),
            "{update}"
        );
    }
    converge(&mut ws, &mut state, &app, &vars).await;
    assert_eq!(state.rows["ipek"]["agent"]["status"], "INVISIBLE");
}

#[tokio::test]
async fn an_unauthenticated_connection_init_is_refused_with_4403() {
    let app = app_with_team().await;
    for token in [
        None,
        Some("not-a-token".to_string()),
        Some(app.agent_token("acme", "nobody")),
    ] {
        let mut ws = WsClient::connect(&app, false).await;
        assert_eq!(ws.init(token.as_deref()).await, Err(4403), "{token:?}");
    }
    let mut legacy = WsClient::connect(&app, true).await;
    assert!(legacy.init(None).await.is_err());
}

#[tokio::test]
async fn an_agent_cannot_subscribe_to_the_cockpit() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "okan")))
        .await
        .expect("agents may connect");
    ws.subscribe("1", json!({"p": "p1"})).await;
    let errors = ws.next_update().await.expect_err("refused");
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}");
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_serves_the_snapshot_too() {
    let app = app_with_team().await;
    let mut ws = WsClient::connect(&app, true).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    ws.subscribe("1", json!({"p": "p1"})).await;
    let first = ws.next_update().await.expect("snapshot");
    assert_eq!(first["rows"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_burst_of_1000_changes_arrives_as_a_few_coalesced_messages() {
    let app = app_with_team().await;
    let vars = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&app, vars.clone()).await;
    let client = app.db.client().await;
    let started = tokio::time::Instant::now();
    for i in 0..1000 {
        let (agent, status) = (
            ["okan", "ipek", "sup"][i % 3],
            ["ONLINE", "BREAK", "INVISIBLE"][(i / 3) % 3],
        );
        client
            .query_one(
                "SELECT outcome FROM cockpit.set_agent_status('acme', $1, $1, $2)",
                &[&agent, &status],
            )
            .await
            .unwrap();
    }
    let messages = converge(&mut ws, &mut state, &app, &vars).await;
    let elapsed_ms = started.elapsed().as_millis() as usize;
    assert!(messages >= 1);
    // At most one message per MIN_GAP (plus the one going out at once after a quiet spell).
    let gap_ms = cockpit::graphql::subscription::MIN_GAP.as_millis() as usize;
    assert!(
        messages <= elapsed_ms / gap_ms + 2,
        "{messages} messages in {elapsed_ms} ms"
    );
    assert!(messages < 1000 / 5, "{messages} messages for 1000 changes");
}

#[tokio::test]
async fn on_shutdown_subscribers_get_a_clean_close_and_a_batch_in_flight_is_answered_and_kept() {
    let mut app = app_with_team().await;
    let (mut ws, _) = subscribed(&app, json!({"p": "p1"})).await;
    // A batch in flight when the shutdown starts: it waits on the organization's ingest
    // lock, held by the test.
    let batch = json!([{"id": "o", "type": "conversation_opened", "at": minutes_ago(5),
                        "conversation": "c", "product": "p1", "channel": "IN_APP"}]);
    let blocked = app.blocked_batch("acme", batch).await;
    let db = app.db.clone();
    let stopping = tokio::spawn(async move { app.shut_down().await });
    // The subscribers hear that the server goes away: the shutdown has started.
    loop {
        match ws.receive().await {
            crate::common::ws::Received::Closed(code) => {
                assert_eq!(code, 1001, "going away");
                break;
            }
            crate::common::ws::Received::Message(_) => continue, // a last update may precede it
        }
    }
    assert!(
        !stopping.is_finished(),
        "the server waits for the batch in flight"
    );
    let (status, body) = blocked.release().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":1"), "{body}");
    stopping.await.expect("stopped");
    let stored: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM cockpit.events WHERE event_id = 'o'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_push_after_one_status_change_re_reads_that_row_not_the_scope() {
    let app = crate::common::spawn_app_without_refresh().await;
    let at = minutes_ago(60);
    let mut events = team(&at);
    events.push(
        json!({"id": "t-deniz", "type": "agent_upserted", "at": at, "agent": "deniz",
                       "name": "Deniz", "role": "AGENT", "products": ["p2"]}),
    );
    app.ingest_ok("acme", &json!(events)).await;
    let vars = json!({"p": "p1"});
    let (mut ws, mut state) = subscribed(&app, vars.clone()).await;
    assert_eq!(state.rows.len(), 3);
    // Everything before this change has been read once it is pushed.
    set_status(&app, "ipek", "ipek", "BREAK").await;
    converge(&mut ws, &mut state, &app, &vars).await;

    let before = app.hub.reads();
    set_status(&app, "okan", "okan", "ONLINE").await;
    let update = ws.next_update().await.expect("update");
    let ids: Vec<&str> = update["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["agent"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec!["okan"], "{update}");
    state.apply(&update);
    let after = app.hub.reads();
    assert_eq!(after.scopes, before.scopes, "no whole-scope read");
    assert_eq!(after.partial, before.partial + 1);
    assert_eq!(after.partial_rows, before.partial_rows + 1, "one row read");
    assert_eq!(state, fresh(&app, &vars).await);

    // The rows not re-read were brought to the new reading's instant: a new subscriber
    // of the group gets every row's time in status as the definition gives it at the
    // message's serverNow. (After the database clock has passed at least one second since
    // the first reading, so that there is time to add.)
    let client = app.db.client().await;
    let first_now: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT now()", &[])
        .await
        .expect("now")
        .get(0);
    loop {
        let now: chrono::DateTime<chrono::Utc> = client
            .query_one("SELECT now()", &[])
            .await
            .expect("now")
            .get(0);
        if now.timestamp() > first_now.timestamp() {
            break;
        }
        tokio::task::yield_now().await;
    }
    set_status(&app, "okan", "okan", "INVISIBLE").await;
    converge(&mut ws, &mut state, &app, &vars).await;
    let mut second = WsClient::connect(&app, false).await;
    second
        .init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let first = second
        .execute(
            "2",
            "subscription($p: ID!) { cockpit(productId: $p) { day serverNow rows { agent { id }
               secondsInStatusToday { online onBreak invisible offline } } } }",
            vars.clone(),
        )
        .await;
    let update = &first["data"]["cockpit"];
    for row in update["rows"].as_array().expect("rows") {
        let agent = row["agent"]["id"].as_str().expect("id");
        let defined = client
            .query_one(
                "SELECT jsonb_build_object(
                        'online', max(s.seconds) FILTER (WHERE s.status = 'ONLINE'),
                        'onBreak', max(s.seconds) FILTER (WHERE s.status = 'BREAK'),
                        'invisible', max(s.seconds) FILTER (WHERE s.status = 'INVISIBLE'),
                        'offline', max(s.seconds) FILTER (WHERE s.status = 'OFFLINE'))::text
                   FROM cockpit.status_seconds('acme', $1, $2::text::date, $3::text::timestamptz) s",
                &[
                    &agent,
                    &update["day"].as_str().expect("day"),
                    &update["serverNow"].as_str().expect("serverNow"),
                ],
            )
            .await
            .expect("the definition")
            .get::<_, String>(0);
        let defined: Value = serde_json::from_str(&defined).expect("json");
        assert_eq!(row["secondsInStatusToday"], defined, "{agent}");
    }

    // A conversation assigned to okan: his row and the header (the queue) only.
    let t0 = minutes_ago(5);
    let before = app.hub.reads();
    app.ingest_ok("acme", &json!([
        {"id": "o", "type": "conversation_opened", "at": t0, "conversation": "c", "product": "p1", "channel": "LIVE_CHAT"},
        {"id": "a", "type": "assigned", "at": plus_minutes(&t0, 1), "conversation": "c", "agent": "okan"}
    ]))
    .await;
    converge(&mut ws, &mut state, &app, &vars).await;
    assert_eq!(state.rows["okan"]["activeConversations"], 1);
    let after = app.hub.reads();
    assert_eq!(after.scopes, before.scopes, "no whole-scope read");
    assert_eq!(
        after.partial_rows - before.partial_rows,
        after.partial - before.partial,
        "one row per re-read"
    );

    // An agent entering the scope moves the order: the whole scope is read again.
    let before = app.hub.reads();
    app.ingest_ok("acme", &json!([
        {"id": "o2", "type": "conversation_opened", "at": t0, "conversation": "c2", "product": "p1", "channel": "WHATSAPP"},
        {"id": "a2", "type": "assigned", "at": plus_minutes(&t0, 1), "conversation": "c2", "agent": "deniz"}
    ]))
    .await;
    converge(&mut ws, &mut state, &app, &vars).await;
    assert_eq!(state.rows.len(), 4);
    assert!(app.hub.reads().scopes > before.scopes);

    // A refresh re-reads the rows whose daily columns it changed, not the scope.
    app.ingest_ok("acme", &json!([
        {"id": "r", "type": "agent_message", "at": plus_minutes(&t0, 2), "conversation": "c", "agent": "okan"}
    ]))
    .await;
    converge(&mut ws, &mut state, &app, &vars).await;
    let before = app.hub.reads();
    app.db.refresh().await;
    converge(&mut ws, &mut state, &app, &vars).await;
    assert_eq!(state.rows["okan"]["firstResponseCount"], 1);
    let after = app.hub.reads();
    assert_eq!(
        after.scopes, before.scopes,
        "no whole-scope read at a refresh"
    );
    assert!(after.partial > before.partial);
    assert!(
        after.partial_rows - before.partial_rows <= 2,
        "okan (and deniz)"
    );
}

#[tokio::test]
async fn subscribers_with_other_documents_get_their_own_shape_and_a_scopes_searches_share_one_read()
{
    let app = crate::common::spawn_app_without_refresh().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(60)))).await;
    let all = json!({"p": "p1"});
    let okan_only = json!({"p": "p1", "s": "OK"});
    let ipek_only = json!({"p": "p1", "s": "İ"});
    let (mut plain, mut plain_state) = subscribed(&app, all.clone()).await;
    let (mut by_okan, mut okan_state) = subscribed(&app, okan_only.clone()).await;
    let (_by_ipek, ipek_state) = subscribed(&app, ipek_only.clone()).await;
    assert_eq!(okan_state.rows.keys().collect::<Vec<_>>(), vec!["okan"]);
    assert_eq!(ipek_state.rows.keys().collect::<Vec<_>>(), vec!["ipek"]);
    // Another document on the plain scope's group: other fields, under aliases.
    let mut other = WsClient::connect(&app, false).await;
    other
        .init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let first = other
        .execute(
            "7",
            "subscription($p: ID!) { cockpit(productId: $p) { rows { who: agent { id } state: agent { status } } } }",
            all.clone(),
        )
        .await;
    let ids: Vec<&Value> = first["data"]["cockpit"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["who"]["id"])
        .collect();
    assert_eq!(ids.len(), 3, "{first}");

    let before = app.hub.reads();
    set_status(&app, "okan", "okan", "BREAK").await;
    let update = plain.next_update().await.expect("update");
    assert_eq!(update["rows"].as_array().map(Vec::len), Some(1), "{update}");
    assert_eq!(update["rows"][0]["agent"]["id"], "okan");
    assert_eq!(update["rows"][0]["agent"]["status"], "BREAK");
    // Its own selection, not the other subscription's rendering of the same change.
    let mine = other.next_update().await.expect("update");
    assert_eq!(
        mine,
        json!({"rows": [{"who": {"id": "okan"}, "state": {"status": "BREAK"}}]})
    );
    let found = by_okan.next_update().await.expect("update");
    assert_eq!(found["rows"][0]["agent"]["status"], "BREAK", "{found}");
    // The three groups (all names, "OK", "İ") took okan's row from one read, each keeping
    // the rows its search finds.
    let after = app.hub.reads();
    assert_eq!(after.scopes, before.scopes, "no whole-scope read");
    assert_eq!(after.partial, before.partial + 1, "one shared read");
    plain_state.apply(&update);
    okan_state.apply(&found);
    assert_eq!(plain_state, fresh(&app, &all).await);
    assert_eq!(okan_state, fresh(&app, &okan_only).await);
    assert_eq!(ipek_state, fresh(&app, &ipek_only).await);
}
