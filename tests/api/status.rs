//! setAgentStatus (spec 3.3): the role × target × current × requested matrix, the audit
//! trail, and the race between a log-off and a supervisor.

use serde_json::json;

use crate::common::{error_codes, minutes_ago, spawn_app, team, TestApp};

const STATUSES: [&str; 4] = ["ONLINE", "OFFLINE", "BREAK", "INVISIBLE"];
const SET: &str = "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { id status statusSince } }";

async fn app_with_roles() -> TestApp {
    let app = spawn_app().await;
    let t0 = minutes_ago(60);
    let mut events = team(&t0);
    events.push(json!({"id": "adm", "type": "agent_upserted", "at": t0, "agent": "adm", "name": "Admin", "role": "ADMIN", "products": []}));
    app.ingest_ok("acme", &json!(events)).await;
    app
}

async fn audit(app: &TestApp) -> Vec<(String, String, String, String)> {
    app.db
        .client()
        .await
        .query(
            "SELECT agent_id, from_status, to_status, changed_by_id FROM reporting.agent_status_changes ORDER BY changed_at, agent_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn the_full_role_target_and_status_matrix_follows_the_rules() {
    let app = app_with_roles().await;
    let client = app.db.client().await;
    let mut cases = 0;
    for (actor, role) in [("adm", "ADMIN"), ("sup", "SUPERVISOR"), ("okan", "AGENT")] {
        let token = app.agent_token("acme", actor);
        for target in [actor, "ipek"] {
            for current in STATUSES {
                for requested in STATUSES {
                    client
                        .execute(
                            "UPDATE cockpit.agents SET status = $1 WHERE agent_id = $2",
                            &[&current, &target],
                        )
                        .await
                        .unwrap();
                    let before = audit(&app).await.len();
                    let answer = app
                        .graphql(Some(&token), SET, json!({"a": target, "s": requested}))
                        .await;
                    let someone_else = target != actor;
                    let expected_error = if someone_else && role == "AGENT" {
                        Some("FORBIDDEN")
                    } else if someone_else && current == "OFFLINE" {
                        Some("AGENT_OFFLINE")
                    } else {
                        None
                    };
                    let case = format!("{actor} sets {target} {current} -> {requested}: {answer}");
                    let stored: String = client
                        .query_one(
                            "SELECT status FROM cockpit.agents WHERE agent_id = $1",
                            &[&target],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    let after = audit(&app).await;
                    match expected_error {
                        Some(code) => {
                            assert_eq!(error_codes(&answer), vec![code], "{case}");
                            assert_eq!(stored, current, "{case}");
                            assert_eq!(after.len(), before, "{case}");
                        }
                        None => {
                            assert_eq!(error_codes(&answer), Vec::<String>::new(), "{case}");
                            assert_eq!(
                                answer["data"]["setAgentStatus"]["status"], requested,
                                "{case}"
                            );
                            assert_eq!(stored, requested, "{case}");
                            if current == requested {
                                assert_eq!(after.len(), before, "same status is a no-op: {case}");
                            } else {
                                assert_eq!(after.len(), before + 1, "{case}");
                                assert_eq!(
                                    after.last().unwrap(),
                                    &(
                                        target.to_string(),
                                        current.to_string(),
                                        requested.to_string(),
                                        actor.to_string()
                                    ),
                                    "{case}"
                                );
                            }
                        }
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 3 * 2 * 4 * 4);
}

#[tokio::test]
async fn a_supervisor_never_overwrites_a_concurrent_log_off() {
    let app = app_with_roles().await;
    let agent = app.agent_token("acme", "ipek");
    let sup = app.agent_token("acme", "sup");
    let mut supervisor_won = 0;
    for _ in 0..200 {
        let online = app
            .graphql(Some(&agent), SET, json!({"a": "ipek", "s": "ONLINE"}))
            .await;
        assert_eq!(error_codes(&online), Vec::<String>::new());
        let (log_off, supervise) = tokio::join!(
            app.graphql(Some(&agent), SET, json!({"a": "ipek", "s": "OFFLINE"})),
            app.graphql(Some(&sup), SET, json!({"a": "ipek", "s": "BREAK"})),
        );
        assert_eq!(error_codes(&log_off), Vec::<String>::new(), "{log_off}");
        match error_codes(&supervise).as_slice() {
            [] => supervisor_won += 1,
            [code] => assert_eq!(code, "AGENT_OFFLINE", "{supervise}"),
            other => panic!("{other:?}"),
        }
    }
    let final_status: String = app
        .db
        .client()
        .await
        .query_one(
            "SELECT status FROM cockpit.agents WHERE agent_id = 'ipek'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(final_status, "OFFLINE");
    // The audit trail replays to the final status, and no supervisor change ever started
    // from OFFLINE.
    let trail: Vec<_> = audit(&app)
        .await
        .into_iter()
        .filter(|a| a.0 == "ipek")
        .collect();
    let mut status = "OFFLINE".to_string();
    for (_, from, to, by) in &trail {
        assert_eq!(from, &status, "the trail is continuous");
        if by == "sup" {
            assert_ne!(from, "OFFLINE");
        }
        status = to.clone();
    }
    assert_eq!(status, final_status);
    assert_eq!(
        trail.len(),
        400 + supervisor_won,
        "ONLINE and OFFLINE each round, plus BREAK when the supervisor came first"
    );
}
