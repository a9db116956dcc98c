//! Name search and order (spec 3.4).

use serde_json::{json, Value};

use crate::common::{error_codes, minutes_ago, spawn_app, TestApp, COCKPIT_QUERY};

const NAMES: [(&str, &str); 9] = [
    ("cem", "Cem"),
    ("cagri", "Çağrı"),
    ("deniz", "Deniz"),
    ("isil", "Işıl"),
    ("ipek", "İpek"),
    ("oguz", "Oğuz"),
    ("ozge", "Özge"),
    ("meta", "Ali %_\\ Veli"),
    ("pct", "Yüzde %"),
];

/// The names of NAMES in Turkish alphabetical order (ç after c, ı before i, ö after o…).
const TURKISH_ORDER: [&str; 9] = [
    "Ali %_\\ Veli",
    "Cem",
    "Çağrı",
    "Deniz",
    "Işıl",
    "İpek",
    "Oğuz",
    "Özge",
    "Yüzde %",
];

async fn app_with_names() -> TestApp {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    let mut events = vec![
        json!({"id": "p1", "type": "product_upserted", "at": t0, "product": "p1", "name": "Mağaza"}),
        json!({"id": "boss", "type": "agent_upserted", "at": t0, "agent": "boss", "name": "Zeynep", "role": "SUPERVISOR", "products": []}),
    ];
    for (id, name) in NAMES {
        events.push(json!({"id": id, "type": "agent_upserted", "at": t0, "agent": id, "name": name, "role": "AGENT", "products": ["p1"]}));
    }
    app.ingest_ok("acme", &json!(events)).await;
    app
}

async fn search(app: &TestApp, text: Option<&str>) -> Result<Vec<String>, Vec<String>> {
    let token = app.agent_token("acme", "boss");
    let answer: Value = app
        .graphql(Some(&token), COCKPIT_QUERY, json!({"p": "p1", "s": text}))
        .await;
    let codes = error_codes(&answer);
    if !codes.is_empty() {
        return Err(codes);
    }
    Ok(answer["data"]["cockpit"]["offline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["agent"]["name"].as_str().unwrap().to_string())
        .collect())
}

fn names(list: &[&str]) -> Result<Vec<String>, Vec<String>> {
    Ok(list.iter().map(|s| s.to_string()).collect())
}

#[tokio::test]
async fn rows_are_in_turkish_alphabetical_order() {
    let app = app_with_names().await;
    assert_eq!(search(&app, None).await, names(&TURKISH_ORDER));
    assert_eq!(
        search(&app, Some("")).await,
        search(&app, None).await,
        "empty search: no filter"
    );
}

#[tokio::test]
async fn search_is_case_turkish_and_accent_insensitive() {
    let app = app_with_names().await;
    assert_eq!(
        search(&app, Some("i")).await,
        names(&["Ali %_\\ Veli", "Çağrı", "Deniz", "Işıl", "İpek"])
    );
    assert_eq!(search(&app, Some("İ")).await, search(&app, Some("i")).await);
    assert_eq!(search(&app, Some("ozge")).await, names(&["Özge"]));
    assert_eq!(search(&app, Some("ÖZGE")).await, names(&["Özge"]));
    assert_eq!(search(&app, Some("ÇAĞ")).await, names(&["Çağrı"]));
    assert_eq!(search(&app, Some("cag")).await, names(&["Çağrı"]));
    assert_eq!(search(&app, Some("IŞ")).await, names(&["Işıl"]));
    assert_eq!(search(&app, Some("ğu")).await, names(&["Oğuz"]));
}

#[tokio::test]
async fn wildcards_and_sql_metacharacters_are_literal() {
    let app = app_with_names().await;
    assert_eq!(
        search(&app, Some("%")).await,
        names(&["Ali %_\\ Veli", "Yüzde %"])
    );
    assert_eq!(search(&app, Some("_")).await, names(&["Ali %_\\ Veli"]));
    assert_eq!(search(&app, Some("\\")).await, names(&["Ali %_\\ Veli"]));
    assert_eq!(search(&app, Some("%_\\")).await, names(&["Ali %_\\ Veli"]));
    assert_eq!(
        search(&app, Some("e%")).await,
        names(&[]),
        "`%` matches only itself"
    );
    assert_eq!(search(&app, Some("e %")).await, names(&["Yüzde %"]));
    assert_eq!(
        search(&app, Some("'; DROP TABLE cockpit.agents; --")).await,
        names(&[])
    );
    assert_eq!(search(&app, Some("\" OR 1=1")).await, names(&[]));
    assert_eq!(
        search(&app, None).await.unwrap().len(),
        9,
        "nothing was dropped"
    );
}

#[tokio::test]
async fn a_search_longer_than_100_characters_is_bad_user_input() {
    let app = app_with_names().await;
    assert_eq!(search(&app, Some(&"ç".repeat(100))).await, names(&[]));
    assert_eq!(
        search(&app, Some(&"ç".repeat(101))).await,
        Err(vec!["BAD_USER_INPUT".to_string()])
    );
}

/// Every row of a `cockpit` answer, over its four tables: (position, name).
fn placed(cockpit: &Value) -> Vec<(i64, String)> {
    let mut rows: Vec<(i64, String)> = ["online", "onBreak", "invisible", "offline"]
        .iter()
        .flat_map(|t| cockpit[*t].as_array().expect("table").clone())
        .map(|r| {
            (
                r["position"].as_i64().expect("position"),
                r["agent"]["name"].as_str().expect("name").to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn rows_carry_their_place_in_the_one_order_across_tables_and_live() {
    let app = app_with_names().await;
    // Spread the agents over three tables: the order is one over the whole scope.
    for (who, status) in [("deniz", "ONLINE"), ("ozge", "BREAK"), ("cem", "ONLINE")] {
        let answer = app
            .graphql(
                Some(&app.agent_token("acme", who)),
                "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { id } }",
                json!({"a": who, "s": status}),
            )
            .await;
        assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    }
    let token = app.agent_token("acme", "boss");
    let query = |vars: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            let answer = app.graphql(Some(&token), COCKPIT_QUERY, vars).await;
            answer["data"]["cockpit"].clone()
        }
    };
    let cockpit = query(json!({"p": "p1"})).await;
    assert_eq!(
        placed(&cockpit),
        TURKISH_ORDER
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64, n.to_string()))
            .collect::<Vec<_>>()
    );
    // A search numbers its own rows.
    let found = query(json!({"p": "p1", "s": "e"})).await;
    let positions: Vec<i64> = placed(&found).iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (0..positions.len() as i64).collect::<Vec<_>>());

    // Live: a rename moves the agent and shifts the rows between; the client that applies
    // the messages ends with the positions of a fresh query.
    let mut ws = crate::common::ws::WsClient::connect(&app, false).await;
    ws.init(Some(&token)).await.expect("ack");
    ws.subscribe("1", json!({"p": "p1"})).await;
    let mut state = crate::common::ws::ClientCockpit::default();
    state.apply(&ws.next_update().await.expect("snapshot"));
    app.ingest_ok(
        "acme",
        &json!([{"id": "rename-cem", "type": "agent_upserted", "at": minutes_ago(1),
                 "agent": "cem", "name": "Zafer", "role": "AGENT", "products": ["p1"]}]),
    )
    .await;
    let fresh = crate::common::ws::ClientCockpit::from_query(&query(json!({"p": "p1"})).await);
    assert_eq!(fresh.rows["cem"]["position"], json!(8));
    let mut moved = std::collections::BTreeSet::new();
    while state != fresh {
        let update = ws.next_update().await.expect("update");
        state.apply(&update);
        for row in update["rows"].as_array().expect("rows") {
            moved.insert(row["agent"]["id"].as_str().expect("id").to_string());
        }
    }
    // Cem left position 1 for the end: everyone after him moved up, the first row stayed.
    let expected_moved: std::collections::BTreeSet<String> = [
        "cem", "cagri", "deniz", "isil", "ipek", "oguz", "ozge", "pct",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(moved, expected_moved);
}

#[tokio::test]
async fn stale_after_is_three_intervals_past_the_refresh() {
    let app = app_with_names().await;
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "boss")),
            "{ cockpit(productId: \"p1\") { refreshedAt refreshIntervalSeconds staleAfter } }",
            json!({}),
        )
        .await;
    let c = &answer["data"]["cockpit"];
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(c[k].as_str().expect(k)).expect(k);
    let interval = c["refreshIntervalSeconds"].as_i64().expect("interval");
    assert!(interval > 0);
    assert_eq!(
        at("staleAfter") - at("refreshedAt"),
        chrono::Duration::seconds(3 * interval)
    );
}
