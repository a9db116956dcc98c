//! `cockpit`: the Metrics issue's figures, split into the four status tables, filtered by
//! channel, weighted over channels.

use serde_json::{json, Value};

use crate::common::{error_codes, noon_zone, plus_minutes, spawn_app, TestApp, COCKPIT_QUERY};

async fn app_with_day() -> (TestApp, String) {
    let app = spawn_app().await;
    let zone = noon_zone();
    let t0 = plus_minutes(&crate::common::minutes_ago(0), -40);
    let e = |id: &str, typ: &str, min: i64, conv: &str, extra: Value| {
        let mut e =
            json!({"id": id, "type": typ, "at": plus_minutes(&t0, min), "conversation": conv});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let open = |c: &str, channel: &str, product: &str| json!({"id": format!("{c}-o"), "type": "conversation_opened", "at": t0, "conversation": c, "product": product, "channel": channel});
    app.ingest_ok("acme", &json!([
        {"id": "org", "type": "organization_upserted", "at": t0, "name": "Acme", "timezone": zone},
        {"id": "p1", "type": "product_upserted", "at": t0, "product": "p1", "name": "Mağaza"},
        {"id": "p2", "type": "product_upserted", "at": t0, "product": "p2", "name": "Uygulama"},
        {"id": "okan", "type": "agent_upserted", "at": t0, "agent": "okan", "name": "Okan", "role": "AGENT", "products": ["p1"]},
        {"id": "ipek", "type": "agent_upserted", "at": t0, "agent": "ipek", "name": "İpek", "role": "AGENT", "products": ["p1"]},
        {"id": "sup", "type": "agent_upserted", "at": t0, "agent": "sup", "name": "Özge", "role": "SUPERVISOR", "products": ["p1"]},
        {"id": "adm", "type": "agent_upserted", "at": t0, "agent": "adm", "name": "Admin", "role": "ADMIN", "products": ["p2"]}
    ]))
    .await;
    app.ingest_ok(
        "acme",
        &json!([
            // okan: WhatsApp replies after 60 s and 180 s, live chat after 600 s; all still active.
            open("w1", "WHATSAPP", "p1"),
            e("w1-a", "assigned", 0, "w1", json!({"agent": "okan"})),
            e("w1-r", "agent_message", 1, "w1", json!({"agent": "okan"})),
            open("w2", "WHATSAPP", "p1"),
            e(
                "w2-a",
                "assigned",
                0,
                "w2",
                json!({"agent": "okan", "by": "sup"})
            ),
            e("w2-r", "agent_message", 3, "w2", json!({"agent": "okan"})),
            open("l1", "LIVE_CHAT", "p1"),
            e("l1-a", "assigned", 0, "l1", json!({"agent": "okan"})),
            e("l1-r", "agent_message", 10, "l1", json!({"agent": "okan"})),
            // ipek resolves a live chat after 5 minutes.
            open("l2", "LIVE_CHAT", "p1"),
            e("l2-a", "assigned", 0, "l2", json!({"agent": "ipek"})),
            e("l2-s", "resolved", 5, "l2", json!({"agent": "ipek"})),
            // adm, no member of p1, holds an active p1 Instagram chat: in p1's cockpit.
            open("i1", "INSTAGRAM", "p1"),
            e("i1-a", "assigned", 0, "i1", json!({"agent": "adm"})),
            // a p2 chat of okan's does not count in p1.
            open("x1", "IN_APP", "p2"),
            e("x1-a", "assigned", 0, "x1", json!({"agent": "okan"})),
            e("x1-r", "agent_message", 20, "x1", json!({"agent": "okan"}))
        ]),
    )
    .await;
    for (who, status) in [("okan", "ONLINE"), ("ipek", "BREAK"), ("sup", "INVISIBLE")] {
        let answer = app
            .graphql(Some(&app.agent_token("acme", who)), "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { id } }", json!({"a": who, "s": status}))
            .await;
        assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    }
    app.db.refresh().await;
    (app, zone)
}

async fn cockpit(app: &TestApp, product: &str, channel: Option<&str>) -> Value {
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            COCKPIT_QUERY,
            json!({"p": product, "c": channel}),
        )
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    answer["data"]["cockpit"].clone()
}

fn ids(table: &Value) -> Vec<&str> {
    table
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["agent"]["id"].as_str().unwrap())
        .collect()
}

fn row<'a>(cockpit: &'a Value, id: &str) -> &'a Value {
    ["online", "onBreak", "invisible", "offline"]
        .iter()
        .flat_map(|t| cockpit[*t].as_array().unwrap())
        .find(|r| r["agent"]["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {cockpit}"))
}

#[tokio::test]
async fn the_cockpit_splits_agents_by_status_with_todays_figures() {
    let (app, zone) = app_with_day().await;
    let all = cockpit(&app, "p1", None).await;
    assert_eq!(all["product"], json!({"id": "p1", "name": "Mağaza"}));
    assert_eq!(all["channel"], Value::Null);
    let today = chrono::Utc::now()
        .with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap())
        .date_naive();
    assert_eq!(all["day"], today.format("%Y-%m-%d").to_string());
    assert!(chrono::DateTime::parse_from_rfc3339(all["refreshedAt"].as_str().unwrap()).is_ok());
    assert_eq!(
        (ids(&all["online"]), ids(&all["onBreak"])),
        (vec!["okan"], vec!["ipek"])
    );
    assert_eq!(
        (ids(&all["invisible"]), ids(&all["offline"])),
        (vec!["sup"], vec!["adm"])
    );

    let okan = row(&all, "okan");
    assert_eq!(
        okan["avgFirstResponseSeconds"],
        json!(280.0),
        "(60 + 180 + 600) / 3, weighted"
    );
    assert_eq!(okan["firstResponseCount"], 3);
    assert_eq!(
        okan["activeConversations"], 3,
        "the p2 chat is not in p1's cockpit"
    );
    assert_eq!(okan["avgResolutionSeconds"], Value::Null);
    let ipek = row(&all, "ipek");
    assert_eq!(
        (
            ipek["avgResolutionSeconds"].clone(),
            ipek["resolvedConversations"].clone()
        ),
        (json!(300.0), json!(1))
    );
    assert_eq!(ipek["activeConversations"], 0);
    assert_eq!(row(&all, "sup")["forwardedConversations"], 1);
    assert_eq!(row(&all, "adm")["activeConversations"], 1);
}

#[tokio::test]
async fn a_channel_filter_narrows_figures_and_out_of_scope_agents() {
    let (app, _) = app_with_day().await;
    let whatsapp = cockpit(&app, "p1", Some("WHATSAPP")).await;
    assert_eq!(whatsapp["channel"], "WHATSAPP");
    let okan = row(&whatsapp, "okan");
    assert_eq!(
        (
            okan["avgFirstResponseSeconds"].clone(),
            okan["activeConversations"].clone()
        ),
        (json!(120.0), json!(2))
    );
    assert_eq!(row(&whatsapp, "sup")["forwardedConversations"], 1);
    assert_eq!(
        ids(&whatsapp["offline"]),
        Vec::<&str>::new(),
        "adm has nothing on WhatsApp in p1"
    );
    let ipek = row(&whatsapp, "ipek");
    assert_eq!(
        (
            ipek["resolvedConversations"].clone(),
            ipek["avgResolutionSeconds"].clone()
        ),
        (json!(0), Value::Null)
    );

    let live_chat = cockpit(&app, "p1", Some("LIVE_CHAT")).await;
    assert_eq!(
        row(&live_chat, "okan")["avgFirstResponseSeconds"],
        json!(600.0)
    );
    assert_eq!(row(&live_chat, "sup")["forwardedConversations"], 0);

    let p2 = cockpit(&app, "p2", None).await;
    assert_eq!(ids(&p2["offline"]), vec!["adm"]);
    assert_eq!(
        row(&p2, "okan")["avgFirstResponseSeconds"],
        json!(1200.0),
        "okan has figures in p2 today"
    );
}
