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
    assert_eq!(
        search(&app, None).await,
        names(&[
            "Ali %_\\ Veli",
            "Cem",
            "Çağrı",
            "Deniz",
            "Işıl",
            "İpek",
            "Oğuz",
            "Özge",
            "Yüzde %"
        ])
    );
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
