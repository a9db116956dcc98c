//! Supervisor insights that move with every event (spec 3.5): the waiting customer, the
//! queue, the overdue first response, time in status on the cockpit, the drill-down.
//! Fixtures are timelines; every figure is checked on GraphQL, in BI and against the
//! plain statement over the event log.

use serde_json::{json, Value};

use crate::common::ws::WsClient;
use crate::common::{
    error_codes, minutes_ago, plus_minutes, spawn_app, team, team_members, TestApp, TestDb,
};

/// The insights of a cockpit row and the header, as the tests read them.
const INSIGHTS_QUERY: &str = "query($p: ID!, $c: Channel) {
  cockpit(productId: $p, channel: $c) {
    day serverNow serviceLevelSeconds queue { queued oldestQueuedSince }
    online { ...R } onBreak { ...R } invisible { ...R } offline { ...R }
  }
}
fragment R on AgentRow {
  agent { id status statusSince } activeConversations
  unansweredConversations oldestUnansweredSince overdueFirstResponses
  secondsInStatusToday { online onBreak invisible offline }
}";

const INSIGHTS_SUBSCRIPTION: &str = "subscription($p: ID!) {
  cockpit(productId: $p) {
    serverNow queue { queued oldestQueuedSince } removed
    rows {
      agent { id status } activeConversations
      unansweredConversations oldestUnansweredSince overdueFirstResponses
    }
  }
}";

const DRILL_DOWN: &str = "query($a: ID!, $p: ID, $c: Channel) {
  agentConversations(agentId: $a, productId: $p, channel: $c) {
    id product { id name } channel openedAt assignedAt waitingSince firstResponseAt
    lastCustomerMessageAt lastAgentMessageAt
  }
}";

fn opened(id: &str, conversation: &str, at: &str) -> Value {
    json!({"id": id, "type": "conversation_opened", "at": at, "conversation": conversation,
           "product": "p1", "channel": "WHATSAPP"})
}

fn event(id: &str, kind: &str, conversation: &str, at: &str, agent: Option<&str>) -> Value {
    let mut e = json!({"id": id, "type": kind, "at": at, "conversation": conversation});
    if let Some(agent) = agent {
        e["agent"] = json!(agent);
    }
    e
}

/// The instant of an RFC 3339 text as the API writes it (UTC, microseconds).
fn api_instant(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .expect("RFC 3339")
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The row of `agent` in a cockpit answer, whatever its table.
fn row<'a>(cockpit: &'a Value, agent: &str) -> &'a Value {
    ["online", "onBreak", "invisible", "offline"]
        .iter()
        .flat_map(|t| cockpit[*t].as_array().expect("table"))
        .find(|r| r["agent"]["id"] == agent)
        .unwrap_or_else(|| panic!("no row of {agent} in {cockpit}"))
}

async fn cockpit(app: &TestApp) -> Value {
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            INSIGHTS_QUERY,
            json!({"p": "p1"}),
        )
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    answer["data"]["cockpit"].clone()
}

/// `waiting_since` of a conversation as stored, and as the plain statement over the log.
async fn waiting(db: &TestDb, conversation: &str) -> (Option<String>, Option<String>) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT to_char(c.waiting_since AT TIME ZONE 'UTC', 'HH24:MI'),
                    to_char(r.waiting_since AT TIME ZONE 'UTC', 'HH24:MI')
               FROM cockpit.conversations c
               JOIN cockpit.conversation_live_reference r USING (org_id, conversation_id)
              WHERE c.org_id = 'acme' AND c.conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("waiting_since");
    (row.get(0), row.get(1))
}

async fn ingest(db: &TestDb, events: Value) {
    let answer: Value = db
        .client()
        .await
        .query_one("SELECT cockpit.ingest_events('acme', $1)", &[&events])
        .await
        .expect("ingest")
        .get(0);
    assert_eq!(answer["rejected"], json!([]), "{answer}");
}

#[tokio::test]
async fn a_customer_waits_from_their_first_unanswered_message_until_a_reply_or_the_resolution() {
    let db = TestDb::new().await;
    ingest(&db, json!(team_members("2026-11-02T08:00:00Z"))).await;
    let t = |hh_mm: &str| format!("2026-11-02T{hh_mm}:00Z");
    let steps: Vec<(Value, Option<&str>)> = vec![
        (opened("o", "c", &t("09:00")), Some("09:00")),
        (
            event("a", "assigned", "c", &t("09:01"), Some("okan")),
            Some("09:00"),
        ),
        (
            event("m1", "customer_message", "c", &t("09:02"), None),
            Some("09:00"),
        ),
        // Any agent's reply clears it (İpek is not the assignee).
        (
            event("r1", "agent_message", "c", &t("09:03"), Some("ipek")),
            None,
        ),
        (
            event("m2", "customer_message", "c", &t("09:04"), None),
            Some("09:04"),
        ),
        (
            event("m3", "customer_message", "c", &t("09:05"), None),
            Some("09:04"),
        ),
        (
            event("r2", "agent_message", "c", &t("09:06"), Some("okan")),
            None,
        ),
        (
            event("m4", "customer_message", "c", &t("09:07"), None),
            Some("09:07"),
        ),
        // The resolution clears it too.
        (event("x", "resolved", "c", &t("09:08"), Some("okan")), None),
        // A customer writing to the archived conversation waits again.
        (
            event("m5", "customer_message", "c", &t("09:09"), None),
            Some("09:09"),
        ),
    ];
    for (e, expected) in &steps {
        ingest(&db, json!([e])).await;
        let expected = expected.map(String::from);
        assert_eq!(
            waiting(&db, "c").await,
            (expected.clone(), expected),
            "after {e}"
        );
    }

    // Late and shuffled: the same events in other orders and batches end the same.
    let all: Vec<Value> = steps.iter().map(|(e, _)| e.clone()).collect();
    let orders: Vec<Vec<usize>> = vec![
        vec![0, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        vec![0, 2, 4, 5, 7, 9, 1, 3, 6, 8],
        vec![0, 1, 2, 4, 5, 3, 6, 7],
    ];
    for order in orders {
        let db = TestDb::new().await;
        ingest(&db, json!(team_members("2026-11-02T08:00:00Z"))).await;
        for pair in order.chunks(3) {
            ingest(
                &db,
                json!(pair.iter().map(|i| all[*i].clone()).collect::<Vec<_>>()),
            )
            .await;
        }
        let last_customer_without_reply = if order.contains(&9) {
            Some("09:09".to_string())
        } else if order.contains(&7) {
            Some("09:07".to_string())
        } else {
            None
        };
        assert_eq!(
            waiting(&db, "c").await,
            (
                last_customer_without_reply.clone(),
                last_customer_without_reply
            ),
            "order {order:?}"
        );
    }
}

/// Okan: `c-b` waiting for 20 minutes, `c-a` for 10, `c-c` answered (assigned 30 minutes
/// ago), `c-d` answered (assigned 5 minutes ago, on another channel); İpek: `c-i`, waiting,
/// never answered for 40 minutes (overdue); `q1`, `q2` queued, `q3` queued in product p2.
fn floor(start: &str) -> Vec<Value> {
    let at = |m: i64| plus_minutes(start, m);
    let mut e = vec![
        opened("oa", "c-a", &at(0)),
        event("aa", "assigned", "c-a", &at(1), Some("okan")),
        event("ra", "agent_message", "c-a", &at(2), Some("okan")),
        event("ma", "customer_message", "c-a", &at(50), None),
        opened("ob", "c-b", &at(10)),
        event("ab", "assigned", "c-b", &at(11), Some("okan")),
        event("mb", "customer_message", "c-b", &at(40), None),
        opened("oc", "c-c", &at(20)),
        event("ac", "assigned", "c-c", &at(30), Some("okan")),
        event("rc", "agent_message", "c-c", &at(31), Some("okan")),
        json!({"id": "od", "type": "conversation_opened", "at": at(54), "conversation": "c-d",
               "product": "p1", "channel": "LIVE_CHAT"}),
        event("ad", "assigned", "c-d", &at(55), Some("okan")),
        event("rd", "agent_message", "c-d", &at(56), Some("okan")),
        opened("oi", "c-i", &at(19)),
        event("ai", "assigned", "c-i", &at(20), Some("ipek")),
        opened("q1", "q1", &at(25)),
        opened("q2", "q2", &at(45)),
    ];
    e.push(
        json!({"id": "q3", "type": "conversation_opened", "at": at(15), "conversation": "q3",
                  "product": "p2", "channel": "WHATSAPP"}),
    );
    e
}

#[tokio::test]
async fn the_cockpit_shows_who_keeps_customers_waiting_the_queue_and_overdue_first_responses() {
    let app = spawn_app().await;
    let start = minutes_ago(60);
    app.ingest_ok("acme", &json!(team(&plus_minutes(&start, -30))))
        .await;
    app.ingest_ok("acme", &json!(floor(&start))).await;
    let c = cockpit(&app).await;
    let okan = row(&c, "okan");
    assert_eq!(okan["activeConversations"], 4);
    // c-a (since +50) and c-b (since +40) wait; c-b has had no first response for 49
    // minutes, c-a's was at +2.
    assert_eq!(okan["unansweredConversations"], 2);
    assert_eq!(
        okan["oldestUnansweredSince"],
        json!(api_instant(&plus_minutes(&start, 10)))
    );
    assert_eq!(okan["overdueFirstResponses"], 1);
    let ipek = row(&c, "ipek");
    assert_eq!(ipek["unansweredConversations"], 1);
    assert_eq!(
        ipek["oldestUnansweredSince"],
        json!(api_instant(&plus_minutes(&start, 19)))
    );
    assert_eq!(ipek["overdueFirstResponses"], 1);
    let sup = row(&c, "sup");
    assert_eq!(
        (
            sup["unansweredConversations"].clone(),
            sup["oldestUnansweredSince"].clone(),
            sup["overdueFirstResponses"].clone()
        ),
        (json!(0), Value::Null, json!(0))
    );
    assert_eq!(c["serviceLevelSeconds"], 60);
    // p1's queue: q1 and q2 (q3 is p2's).
    assert_eq!(
        c["queue"],
        json!({"queued": 2, "oldestQueuedSince": api_instant(&plus_minutes(&start, 25))})
    );
    // One channel: LIVE_CHAT holds only c-d, answered, and no queue.
    let answer = app
        .graphql(
            Some(&app.agent_token("acme", "sup")),
            INSIGHTS_QUERY,
            json!({"p": "p1", "c": "LIVE_CHAT"}),
        )
        .await;
    let live_chat = &answer["data"]["cockpit"];
    assert_eq!(row(live_chat, "okan")["activeConversations"], 1);
    assert_eq!(row(live_chat, "okan")["unansweredConversations"], 0);
    assert_eq!(
        live_chat["queue"],
        json!({"queued": 0, "oldestQueuedSince": null})
    );

    // BI: the open conversations say the same, and equal the plain statement.
    let client = app.db.client().await;
    let bi = client
        .query(
            "SELECT conversation_id, assignee_id, waiting_since, first_response_at
               FROM reporting.open_conversations WHERE org_id = 'acme' ORDER BY conversation_id",
            &[],
        )
        .await
        .expect("open_conversations");
    let ids: Vec<String> = bi.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["c-a", "c-b", "c-c", "c-d", "c-i", "q1", "q2", "q3"]);
    let queued: Vec<String> = bi
        .iter()
        .filter(|r| r.get::<_, Option<String>>(1).is_none())
        .map(|r| r.get(0))
        .collect();
    assert_eq!(queued, ["q1", "q2", "q3"]);
    let off: i64 = client
        .query_one(
            "SELECT count(*) FROM reporting.open_conversations o
               JOIN cockpit.conversation_live_reference r USING (org_id, conversation_id)
              WHERE (o.assignee_id, o.assigned_at, o.waiting_since, o.first_response_at,
                     o.last_customer_message_at, o.last_agent_message_at)
                    IS DISTINCT FROM
                    (r.assignee_id, r.assigned_at, r.waiting_since, r.first_response_at,
                     r.last_customer_message_at, r.last_agent_message_at)",
            &[],
        )
        .await
        .expect("against the reference")
        .get(0);
    assert_eq!(off, 0);
}

#[tokio::test]
async fn the_drill_down_lists_the_longest_waiting_first_with_the_permissions_of_the_cockpit() {
    let app = spawn_app().await;
    let start = minutes_ago(60);
    app.ingest_ok("acme", &json!(team(&plus_minutes(&start, -30))))
        .await;
    app.ingest_ok("acme", &json!(floor(&start))).await;
    let sup = app.agent_token("acme", "sup");
    let answer = app
        .graphql(Some(&sup), DRILL_DOWN, json!({"a": "okan"}))
        .await;
    assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    let list = answer["data"]["agentConversations"]
        .as_array()
        .expect("list");
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().expect("id")).collect();
    // Waiting longest first (c-b since its opening at +10, never answered; c-a since +50),
    // then the answered ones by assignment time (c-c at +30, c-d at +55).
    assert_eq!(ids, ["c-b", "c-a", "c-c", "c-d"]);
    let at = |m: i64| json!(api_instant(&plus_minutes(&start, m)));
    assert_eq!(
        list[0],
        json!({"id": "c-b", "product": {"id": "p1", "name": "Mağaza"}, "channel": "WHATSAPP",
               "openedAt": at(10), "assignedAt": at(11), "waitingSince": at(10),
               "firstResponseAt": null, "lastCustomerMessageAt": at(40), "lastAgentMessageAt": null})
    );
    assert_eq!(
        list[1],
        json!({"id": "c-a", "product": {"id": "p1", "name": "Mağaza"}, "channel": "WHATSAPP",
               "openedAt": at(0), "assignedAt": at(1), "waitingSince": at(50),
               "firstResponseAt": at(2), "lastCustomerMessageAt": at(50), "lastAgentMessageAt": at(2)})
    );
    // Scope: one channel, one product.
    let live_chat = app
        .graphql(
            Some(&sup),
            DRILL_DOWN,
            json!({"a": "okan", "c": "LIVE_CHAT"}),
        )
        .await;
    assert_eq!(live_chat["data"]["agentConversations"][0]["id"], "c-d");
    assert_eq!(
        live_chat["data"]["agentConversations"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let p2 = app
        .graphql(Some(&sup), DRILL_DOWN, json!({"a": "okan", "p": "p2"}))
        .await;
    assert_eq!(p2["data"]["agentConversations"], json!([]));

    // Permissions: an AGENT for themselves only; unknown ids (or another organization's)
    // are NOT_FOUND.
    let okan = app.agent_token("acme", "okan");
    let own = app
        .graphql(Some(&okan), DRILL_DOWN, json!({"a": "okan"}))
        .await;
    assert_eq!(
        own["data"]["agentConversations"].as_array().map(Vec::len),
        Some(4)
    );
    let other = app
        .graphql(Some(&okan), DRILL_DOWN, json!({"a": "ipek"}))
        .await;
    assert_eq!(error_codes(&other), ["FORBIDDEN"]);
    app.ingest_ok("globex", &json!(team(&minutes_ago(10))))
        .await;
    for variables in [json!({"a": "nobody"}), json!({"a": "okan", "p": "nothing"})] {
        let answer = app.graphql(Some(&sup), DRILL_DOWN, variables.clone()).await;
        assert_eq!(error_codes(&answer), ["NOT_FOUND"], "{variables}");
    }
    let globex = app
        .graphql(
            Some(&app.agent_token("globex", "sup")),
            DRILL_DOWN,
            json!({"a": "okan"}),
        )
        .await;
    assert_eq!(
        globex["data"]["agentConversations"],
        json!([]),
        "globex's own okan has nothing: acme's conversations are not theirs"
    );
    let anonymous = app.graphql(None, DRILL_DOWN, json!({"a": "okan"})).await;
    assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn the_queue_empties_on_assignment_and_the_subscription_carries_it() {
    let app = spawn_app().await;
    let start = minutes_ago(30);
    app.ingest_ok("acme", &json!(team(&plus_minutes(&start, -30))))
        .await;
    app.ingest_ok(
        "acme",
        &json!([opened("q1", "q1", &plus_minutes(&start, 1))]),
    )
    .await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let first = ws
        .execute("1", INSIGHTS_SUBSCRIPTION, json!({"p": "p1"}))
        .await;
    let first = &first["data"]["cockpit"];
    assert_eq!(
        first["queue"],
        json!({"queued": 1, "oldestQueuedSince": api_instant(&plus_minutes(&start, 1))})
    );
    // A second one joins the queue, then both are assigned: the queue empties.
    app.ingest_ok(
        "acme",
        &json!([opened("q2", "q2", &plus_minutes(&start, 2))]),
    )
    .await;
    let mut queue = first["queue"].clone();
    while queue["queued"] != 2 {
        queue = ws.next_update().await.expect("update")["queue"].clone();
    }
    app.ingest_ok(
        "acme",
        &json!([
            event(
                "a1",
                "assigned",
                "q1",
                &plus_minutes(&start, 3),
                Some("okan")
            ),
            event(
                "a2",
                "assigned",
                "q2",
                &plus_minutes(&start, 3),
                Some("okan")
            ),
        ]),
    )
    .await;
    let okan = loop {
        let update = ws.next_update().await.expect("update");
        if update["queue"]["queued"] == 0 {
            assert_eq!(update["queue"]["oldestQueuedSince"], Value::Null);
            break update["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .find(|r| r["agent"]["id"] == "okan")
                .cloned();
        }
    };
    // Both customers still wait (opened, never answered), now on Okan.
    let okan = okan.expect("okan's row came with the queue's change");
    assert_eq!(okan["activeConversations"], 2);
    assert_eq!(okan["unansweredConversations"], 2);
    assert_eq!(
        okan["oldestUnansweredSince"],
        json!(api_instant(&plus_minutes(&start, 1)))
    );
}

#[tokio::test]
async fn an_assignment_crossing_the_target_reaches_a_subscriber_with_no_event_sent() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(30)))).await;
    let mut ws = WsClient::connect(&app, false).await;
    ws.init(Some(&app.agent_token("acme", "sup")))
        .await
        .expect("ack");
    let first = ws
        .execute("1", INSIGHTS_SUBSCRIPTION, json!({"p": "p1"}))
        .await;
    assert!(first["data"]["cockpit"]["rows"].is_array(), "{first}");
    // Assigned 52 seconds ago: the target (60 s) is crossed 8 seconds from now. The
    // assignment itself is pushed (not yet overdue), then the crossing, with nothing sent.
    let assigned_at = chrono::Utc::now() - chrono::Duration::seconds(52);
    let at = assigned_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    app.ingest_ok(
        "acme",
        &json!([
            opened("o", "c", &at),
            event("a", "assigned", "c", &at, Some("okan"))
        ]),
    )
    .await;
    let crossing = assigned_at + chrono::Duration::seconds(60);
    let mut seen_before_crossing = false;
    let update = loop {
        let update = ws.next_update().await.expect("update");
        let okan = update["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["agent"]["id"] == "okan")
            .cloned();
        let Some(okan) = okan else { continue };
        if okan["overdueFirstResponses"] == 0 {
            assert_eq!(okan["activeConversations"], 1);
            seen_before_crossing = true;
            continue;
        }
        break update;
    };
    assert!(
        seen_before_crossing,
        "the assignment was pushed before it crossed"
    );
    let server_now =
        chrono::DateTime::parse_from_rfc3339(update["serverNow"].as_str().expect("serverNow"))
            .expect("RFC 3339");
    assert!(
        server_now > crossing,
        "overdue is read after the crossing ({server_now} vs {crossing})"
    );
    let okan = update["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["agent"]["id"] == "okan")
        .cloned()
        .expect("okan");
    assert_eq!(okan["overdueFirstResponses"], 1);
    // The first response ends it (a pushed change, at once).
    app.ingest_ok(
        "acme",
        &json!([event(
            "r",
            "agent_message",
            "c",
            &minutes_ago(0),
            Some("okan")
        )]),
    )
    .await;
    loop {
        let update = ws.next_update().await.expect("update");
        if let Some(okan) = update["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["agent"]["id"] == "okan")
        {
            if okan["overdueFirstResponses"] == 0 {
                break;
            }
        }
    }
}

#[tokio::test]
async fn time_in_status_on_the_cockpit_is_the_sql_definition_at_server_now() {
    let app = spawn_app().await;
    app.ingest_ok("acme", &json!(team(&minutes_ago(30)))).await;
    let sup = app.agent_token("acme", "sup");
    for (agent, status) in [("sup", "ONLINE"), ("okan", "ONLINE"), ("okan", "BREAK")] {
        let answer = app
            .graphql(
                Some(&if agent == "sup" { sup.clone() } else { app.agent_token("acme", agent) }),
                "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { status } }",
                json!({"a": agent, "s": status}),
            )
            .await;
        assert_eq!(error_codes(&answer), Vec::<String>::new(), "{answer}");
    }
    let c = cockpit(&app).await;
    let client = app.db.client().await;
    for agent in ["okan", "ipek", "sup"] {
        let shown = &row(&c, agent)["secondsInStatusToday"];
        let defined = client
            .query(
                "SELECT s.status, s.seconds
                   FROM cockpit.status_seconds('acme', $1, $2::text::date, $3::text::timestamptz) s",
                &[&agent, &c["day"].as_str().expect("day"), &c["serverNow"].as_str().expect("serverNow")],
            )
            .await
            .expect("the definition");
        let of = |status: &str| -> i32 {
            defined
                .iter()
                .find(|r| r.get::<_, String>(0) == status)
                .map(|r| r.get(1))
                .expect("status")
        };
        assert_eq!(
            shown,
            &json!({"online": of("ONLINE"), "onBreak": of("BREAK"),
                    "invisible": of("INVISIBLE"), "offline": of("OFFLINE")}),
            "{agent}"
        );
    }
    // Okan was OFFLINE from the day's start (the organization's local noon is about now),
    // so hours of OFFLINE, then a moment ONLINE, and BREAK since.
    let okan = &row(&c, "okan")["secondsInStatusToday"];
    assert!(okan["offline"].as_i64().expect("offline") > 3600, "{okan}");
    assert_eq!(row(&c, "okan")["agent"]["status"], "BREAK");
    assert_eq!(row(&c, "ipek")["secondsInStatusToday"]["online"], 0);
}
