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

/// Status changes of `ipek` waiting on her row, locked by another session.
async fn waiting_on_ipek(watcher: &tokio_postgres::Client) -> i64 {
    // On a Citus cluster the row lock is waited for on the worker holding the shard; the
    // coordinator's citus_lock_waits names the waiting statements.
    let sql = if crate::common::citus::enabled() {
        "SELECT count(DISTINCT waiting_gpid) FROM citus_lock_waits WHERE blocked_statement LIKE '%set_agent_status(%'"
    } else {
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%set_agent_status(%'"
    };
    watcher.query_one(sql, &[]).await.expect("activity").get(0)
}

/// Runs a log-off by ipek and a supervisor's BREAK for her, both waiting on her row (held
/// by the test) and queued in the order given, then releases the row: each interleaving
/// made to happen, not hoped for. Returns (log-off answer, supervisor answer).
async fn race(app: &TestApp, supervisor_first: bool) -> (serde_json::Value, serde_json::Value) {
    let online = app
        .graphql(
            Some(&app.agent_token("acme", "ipek")),
            SET,
            json!({"a": "ipek", "s": "ONLINE"}),
        )
        .await;
    assert_eq!(error_codes(&online), Vec::<String>::new(), "{online}");
    let mut holder = app.db.client().await;
    let lock = holder.transaction().await.expect("transaction");
    lock.execute(
        "SELECT 1 FROM cockpit.agents WHERE org_id = 'acme' AND agent_id = 'ipek' FOR UPDATE",
        &[],
    )
    .await
    .expect("hold ipek's row");
    let watcher = app.db.client().await;
    let log_off = {
        let (app_address, token) = (app.address.clone(), app.agent_token("acme", "ipek"));
        move || {
            tokio::spawn(post(
                app_address.clone(),
                token.clone(),
                json!({"a": "ipek", "s": "OFFLINE"}),
            ))
        }
    };
    let supervise = {
        let (app_address, token) = (app.address.clone(), app.agent_token("acme", "sup"));
        move || {
            tokio::spawn(post(
                app_address.clone(),
                token.clone(),
                json!({"a": "ipek", "s": "BREAK"}),
            ))
        }
    };
    let mut handles = Vec::new();
    let order: [bool; 2] = if supervisor_first {
        [true, false]
    } else {
        [false, true]
    };
    for (n, is_supervisor) in order.into_iter().enumerate() {
        handles.push((
            is_supervisor,
            if is_supervisor {
                supervise()
            } else {
                log_off()
            },
        ));
        // Queued before the next one is sent.
        while waiting_on_ipek(&watcher).await < n as i64 + 1 {
            tokio::task::yield_now().await;
        }
    }
    lock.rollback().await.expect("release the row");
    let (mut log_off_answer, mut supervisor_answer) = (json!(null), json!(null));
    for (is_supervisor, handle) in handles {
        let answer = handle.await.expect("request");
        if is_supervisor {
            supervisor_answer = answer;
        } else {
            log_off_answer = answer;
        }
    }
    (log_off_answer, supervisor_answer)
}

async fn post(address: String, token: String, variables: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": SET, "variables": variables}))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn a_supervisor_never_overwrites_a_concurrent_log_off_in_either_order() {
    let app = app_with_roles().await;
    // The supervisor first: the break is recorded, then the log-off; ipek ends OFFLINE.
    let (log_off, supervise) = race(&app, true).await;
    assert_eq!(error_codes(&supervise), Vec::<String>::new(), "{supervise}");
    assert_eq!(error_codes(&log_off), Vec::<String>::new(), "{log_off}");
    // The log-off first: the supervisor's change is refused, ipek stays OFFLINE.
    let (log_off, supervise) = race(&app, false).await;
    assert_eq!(error_codes(&log_off), Vec::<String>::new(), "{log_off}");
    assert_eq!(
        error_codes(&supervise),
        vec!["AGENT_OFFLINE"],
        "{supervise}"
    );

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
    // The trail: ONLINE, BREAK (by sup), OFFLINE, then ONLINE, OFFLINE; no supervisor change
    // ever started from OFFLINE.
    let trail: Vec<(String, String, String)> = audit(&app)
        .await
        .into_iter()
        .filter(|a| a.0 == "ipek")
        .map(|(_, from, to, by)| (from, to, by))
        .collect();
    let step = |from: &str, to: &str, by: &str| (from.to_string(), to.to_string(), by.to_string());
    assert_eq!(
        trail,
        vec![
            step("OFFLINE", "ONLINE", "ipek"),
            step("ONLINE", "BREAK", "sup"),
            step("BREAK", "OFFLINE", "ipek"),
            step("OFFLINE", "ONLINE", "ipek"),
            step("ONLINE", "OFFLINE", "ipek"),
        ]
    );
}
