//! The GraphQL contract: schema file, identity, roles, error codes, limits.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{error_codes, minutes_ago, spawn_app, team, TestApp, JWT_SECRET};

#[test]
fn schema_graphql_is_the_codes_sdl() {
    let file = include_str!("../../schema.graphql");
    assert!(
        cockpit::graphql::sdl() == file,
        "schema.graphql drifted from the code: run `cargo run -- schema > schema.graphql`"
    );
}

async fn app_with_team() -> TestApp {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    let mut events = team(&t0);
    events.push(json!({"id": "adm", "type": "agent_upserted", "at": t0, "agent": "adm", "name": "Admin", "role": "ADMIN", "products": []}));
    app.ingest_ok("acme", &json!(events)).await;
    app.ingest_ok("globex", &json!([
        {"id": "g1", "type": "product_upserted", "at": t0, "product": "gp", "name": "Globex"},
        {"id": "g2", "type": "agent_upserted", "at": t0, "agent": "gsup", "name": "G", "role": "SUPERVISOR", "products": ["gp"]}
    ]))
    .await;
    app
}

const ME: &str = "{ me { id name role status statusSince } }";

#[tokio::test]
async fn me_is_the_stored_agent_named_by_the_token() {
    let app = app_with_team().await;
    let answer = app
        .graphql(Some(&app.agent_token("acme", "ipek")), ME, json!({}))
        .await;
    assert_eq!(answer["data"]["me"]["name"], "İpek", "{answer}");
    assert_eq!(answer["data"]["me"]["role"], "AGENT");
    assert_eq!(answer["data"]["me"]["status"], "OFFLINE");
    let since = answer["data"]["me"]["statusSince"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(since).is_ok(),
        "{since}"
    );
}

#[tokio::test]
async fn tokens_that_name_no_agent_or_are_invalid_are_unauthenticated() {
    let app = app_with_team().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "sup", "org": "acme", "role": "supervisor", "exp": now - 600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let cases = [
        ("missing", None),
        ("garbage", Some("x.y.z".to_string())),
        ("expired", Some(expired)),
        ("unknown agent", Some(app.agent_token("acme", "nobody"))),
        (
            "agent of another org",
            Some(app.agent_token("acme", "gsup")),
        ),
        ("unknown org", Some(app.agent_token("initech", "sup"))),
    ];
    for (name, token) in cases {
        let answer = app.graphql(token.as_deref(), ME, json!({})).await;
        assert_eq!(
            error_codes(&answer),
            vec!["UNAUTHENTICATED"],
            "{name}: {answer}"
        );
        assert_eq!(answer["data"], Value::Null, "{name}");
    }
    let service = app.service_token("acme");
    let answer = app.graphql(Some(&service), ME, json!({})).await;
    assert_eq!(error_codes(&answer), vec!["FORBIDDEN"], "{answer}");
}

#[tokio::test]
async fn an_agent_reads_only_me_and_supervisors_read_everything() {
    let app = app_with_team().await;
    let agent = app.agent_token("acme", "okan");
    for query in [
        "{ products { id } }",
        r#"{ cockpit(productId: "p1") { day } }"#,
        r#"{ statusHistory(agentId: "okan") { at } }"#,
    ] {
        let answer = app.graphql(Some(&agent), query, json!({})).await;
        assert_eq!(error_codes(&answer), vec!["FORBIDDEN"], "{query}: {answer}");
    }
    for who in ["sup", "adm"] {
        let token = app.agent_token("acme", who);
        let answer = app
            .graphql(Some(&token), "{ products { id name } }", json!({}))
            .await;
        assert_eq!(
            answer["data"]["products"],
            json!([{"id": "p1", "name": "Mağaza"}, {"id": "p2", "name": "Uygulama"}]),
            "{who}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_stored_role_decides_so_a_demoted_supervisor_loses_power_at_once() {
    let app = app_with_team().await;
    // A token claiming `supervisor` for an AGENT gives no power...
    let claims_more = app.token("acme", "okan", cockpit::auth::TokenRole::Supervisor);
    let answer = app
        .graphql(Some(&claims_more), "{ products { id } }", json!({}))
        .await;
    assert_eq!(error_codes(&answer), vec!["FORBIDDEN"]);
    // ...and a supervisor demoted by the platform loses it with the same token.
    let token = app.agent_token("acme", "sup");
    assert_eq!(
        error_codes(
            &app.graphql(Some(&token), "{ products { id } }", json!({}))
                .await
        ),
        Vec::<String>::new()
    );
    app.ingest_ok("acme", &json!([{"id": "demote", "type": "agent_upserted", "at": minutes_ago(1), "agent": "sup", "name": "Özge", "role": "AGENT", "products": ["p1"]}])).await;
    let answer = app
        .graphql(Some(&token), "{ products { id } }", json!({}))
        .await;
    assert_eq!(error_codes(&answer), vec!["FORBIDDEN"]);
}

#[tokio::test]
async fn another_organizations_ids_are_not_found() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    // Each answers exactly as an id that exists nowhere: nothing tells that it exists.
    for (query, expected) in [
        (
            r#"{ cockpit(productId: "gp") { day } }"#,
            "product gp not found",
        ),
        (
            r#"{ cockpit(productId: "nope") { day } }"#,
            "product nope not found",
        ),
        (
            r#"{ statusHistory(agentId: "gsup") { at } }"#,
            "agent gsup not found",
        ),
        (
            r#"{ statusHistory(agentId: "nobody") { at } }"#,
            "agent nobody not found",
        ),
        (
            r#"mutation { setAgentStatus(agentId: "gsup", status: ONLINE) { id } }"#,
            "agent gsup not found",
        ),
        (
            r#"mutation { setAgentStatus(agentId: "nobody", status: ONLINE) { id } }"#,
            "agent nobody not found",
        ),
    ] {
        let answer = app.graphql(Some(&token), query, json!({})).await;
        assert_eq!(error_codes(&answer), vec!["NOT_FOUND"], "{query}: {answer}");
        assert_eq!(
            answer["errors"][0]["message"], expected,
            "{query}: {answer}"
        );
    }
}

#[tokio::test]
async fn parse_validation_and_input_errors_carry_their_codes() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    let cases = [
        ("{ me { id ", "GRAPHQL_PARSE_FAILED"),
        ("{ me { password } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ cockpit { day } }", "GRAPHQL_VALIDATION_FAILED"),
        (
            r#"mutation { setAgentStatus(agentId: "sup", status: ASLEEP) { id } }"#,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            r#"{ statusHistory(agentId: "sup", limit: 0) { at } }"#,
            "BAD_USER_INPUT",
        ),
        (
            r#"{ statusHistory(agentId: "sup", limit: 1001) { at } }"#,
            "BAD_USER_INPUT",
        ),
        (
            &format!(
                r#"{{ cockpit(productId: "p1", search: "{}") {{ day }} }}"#,
                "x".repeat(101)
            ),
            "BAD_USER_INPUT",
        ),
    ];
    for (query, code) in cases {
        let answer = app.graphql(Some(&token), query, json!({})).await;
        assert_eq!(error_codes(&answer), vec![code], "{query}: {answer}");
        let text = answer.to_string();
        for leak in ["SELECT", "cockpit.", "tokio_postgres", "panicked", "::"] {
            assert!(!text.contains(leak), "{leak} leaked: {text}");
        }
    }
}

#[tokio::test]
async fn deep_and_wide_queries_are_refused_and_introspection_works() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "sup");
    let deep = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "fields { type { ".repeat(10),
        " } }".repeat(10)
    );
    let answer = app.graphql(Some(&token), &deep, json!({})).await;
    assert_eq!(
        error_codes(&answer),
        vec!["GRAPHQL_VALIDATION_FAILED"],
        "{answer}"
    );
    let wide = format!(
        "{{ {} }}",
        (0..2000)
            .map(|i| format!("a{i}: me {{ id }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let answer = app.graphql(Some(&token), &wide, json!({})).await;
    assert_eq!(
        error_codes(&answer),
        vec!["GRAPHQL_VALIDATION_FAILED"],
        "{answer}"
    );

    // GraphiQL's introspection query (its TypeRef fragment nests ofType seven times).
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
    let introspection = format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
         types {{ kind name description fields(includeDeprecated: true) {{ name description args {{ name description type {{ {type_ref} }} defaultValue }} \
         type {{ {type_ref} }} isDeprecated deprecationReason }} inputFields {{ name type {{ {type_ref} }} defaultValue }} \
         interfaces {{ {type_ref} }} enumValues(includeDeprecated: true) {{ name description isDeprecated deprecationReason }} \
         possibleTypes {{ {type_ref} }} }} directives {{ name description locations args {{ name type {{ {type_ref} }} }} }} }} }}"
    );
    let answer = app.graphql(None, &introspection, json!({})).await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn status_history_is_newest_first_and_null_limit_means_50() {
    let app = app_with_team().await;
    let token = app.agent_token("acme", "ipek");
    let sup = app.agent_token("acme", "sup");
    for status in ["ONLINE", "BREAK", "ONLINE", "INVISIBLE"] {
        let answer = app
            .graphql(Some(&token), "mutation($s: AgentStatus!) { setAgentStatus(agentId: \"ipek\", status: $s) { status } }", json!({"s": status}))
            .await;
        assert_eq!(
            answer["data"]["setAgentStatus"]["status"], status,
            "{answer}"
        );
    }
    let query = "query($l: Int) { statusHistory(agentId: \"ipek\", limit: $l) { from to agent { id } changedBy { id name } at } }";
    let answer = app.graphql(Some(&sup), query, json!({"l": null})).await;
    let history = answer["data"]["statusHistory"].as_array().unwrap();
    let steps: Vec<(String, String)> = history
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap().into(),
                h["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("ONLINE".into(), "INVISIBLE".into()),
            ("BREAK".into(), "ONLINE".into()),
            ("ONLINE".into(), "BREAK".into()),
            ("OFFLINE".into(), "ONLINE".into()),
        ]
    );
    assert_eq!(
        history[0]["changedBy"],
        json!({"id": "ipek", "name": "İpek"})
    );
    let answer = app.graphql(Some(&sup), query, json!({"l": 2})).await;
    assert_eq!(answer["data"]["statusHistory"].as_array().unwrap().len(), 2);
}
