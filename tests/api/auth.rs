//! Who may ingest (spec 5.1): service and admin tokens; everything else is 401 or 403.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use crate::common::{minutes_ago, rejected_codes, spawn_app, team, JWT_SECRET};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn ingest_without_a_valid_service_or_admin_token_is_refused() {
    let app = spawn_app().await;
    let body = json!([{"id": "p", "type": "product_upserted", "at": minutes_ago(1), "product": "p", "name": "P"}]);
    let body = body.to_string().into_bytes();
    let claims = |exp: Option<u64>, role: &str| {
        let mut c = json!({"sub": "platform", "org": "acme", "role": role});
        if let Some(exp) = exp {
            c["exp"] = json!(exp);
        }
        c
    };
    let alg_none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(claims(Some(now() + 3600), "service").to_string().as_bytes())
    );
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no token", None, 401),
        ("garbage", Some("not-a-jwt".into()), 401),
        (
            "expired",
            Some(signed(claims(Some(now() - 600), "service"), JWT_SECRET)),
            401,
        ),
        (
            "no exp",
            Some(signed(claims(None, "service"), JWT_SECRET)),
            401,
        ),
        (
            "wrong secret",
            Some(signed(
                claims(Some(now() + 3600), "service"),
                "other-secret",
            )),
            401,
        ),
        ("alg none", Some(alg_none), 401),
        (
            "unknown role",
            Some(signed(claims(Some(now() + 3600), "root"), JWT_SECRET)),
            401,
        ),
        (
            "agent",
            Some(signed(claims(Some(now() + 3600), "agent"), JWT_SECRET)),
            403,
        ),
        (
            "supervisor",
            Some(signed(claims(Some(now() + 3600), "supervisor"), JWT_SECRET)),
            403,
        ),
    ];
    for (name, token, expected) in cases {
        let (status, answer) = app
            .post_raw(token.as_deref(), "application/json", body.clone())
            .await;
        assert_eq!(status, expected, "{name}: {answer}");
        let code = if expected == 401 {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(answer["error"]["code"], code, "{name}");
    }
    let stored = app
        .db
        .client()
        .await
        .query("SELECT 1 FROM cockpit.events", &[])
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing was stored by refused requests");

    for role in ["service", "admin"] {
        let token = signed(claims(Some(now() + 3600), role), JWT_SECRET);
        let (status, answer) = app
            .post_raw(Some(&token), "application/json", body.clone())
            .await;
        assert_eq!(status, 200, "{role}: {answer}");
    }
}

#[tokio::test]
async fn another_organizations_objects_are_never_touched() {
    let app = spawn_app().await;
    let t0 = minutes_ago(30);
    app.ingest_ok("acme", &json!(team(&t0))).await;
    app.ingest_ok("acme", &json!([
        {"id": "open", "type": "conversation_opened", "at": t0, "conversation": "c1", "product": "p1", "channel": "LIVE_CHAT"}
    ]))
    .await;
    // The same ids in another organization name nothing there.
    let (status, answer) = app
        .post_events(&app.service_token("globex"), &json!([
            {"id": "x1", "type": "conversation_opened", "at": t0, "conversation": "c2", "product": "p1", "channel": "LIVE_CHAT"},
            {"id": "x2", "type": "assigned", "at": t0, "conversation": "c1", "agent": "okan"},
            {"id": "x3", "type": "product_upserted", "at": t0, "product": "p9", "name": "G"},
            {"id": "x4", "type": "agent_upserted", "at": t0, "agent": "okan", "name": "Okan", "role": "AGENT", "products": ["p1"]},
            // acme's event id, reused by globex: its own event, not a duplicate of acme's.
            {"id": "t-p1", "type": "product_upserted", "at": t0, "product": "p1", "name": "Globex P1"}
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rejected_codes(&answer),
        vec![
            (0, "UNKNOWN_PRODUCT".into()),
            (1, "UNKNOWN_CONVERSATION".into()),
            (3, "UNKNOWN_PRODUCT".into())
        ]
    );
    assert_eq!(answer["accepted"], 2);
    let client = app.db.client().await;
    let acme: Vec<(String, String)> = client
        .query(
            "SELECT product_id, name FROM cockpit.products WHERE org_id = 'acme' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        acme,
        vec![
            ("p1".into(), "Mağaza".into()),
            ("p2".into(), "Uygulama".into())
        ]
    );
    let assignee: Option<String> = client
        .query_one("SELECT assignee_id FROM cockpit.conversations WHERE org_id = 'acme' AND conversation_id = 'c1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(assignee, None);
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_and_one_whose_nbf_has_passed_is_accepted() {
    let app = spawn_app().await;
    let body = json!([{"id": "p", "type": "product_upserted", "at": minutes_ago(1), "product": "p", "name": "P"}])
        .to_string()
        .into_bytes();
    let token = |nbf: u64| {
        signed(
            json!({"sub": "platform", "org": "acme", "role": "service", "exp": now() + 3600, "nbf": nbf}),
            JWT_SECRET,
        )
    };
    let (status, answer) = app
        .post_raw(Some(&token(now() + 600)), "application/json", body.clone())
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid yet")),
        "{answer}"
    );
    let (status, answer) = app
        .post_raw(Some(&token(now() - 60)), "application/json", body)
        .await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
}

#[tokio::test]
async fn a_jwt_secret_shorter_than_32_bytes_is_refused_at_start_up() {
    let db = crate::common::TestDb::new().await;
    let short = cockpit::config::Config {
        bind: "127.0.0.1:0".parse().expect("address"),
        ..cockpit::config::Config::new(db.url.clone(), "x".repeat(31))
    };
    match cockpit::http::Application::build(&short).await {
        Err(cockpit::http::StartError::Config(message)) => {
            assert!(message.contains("at least 32"), "{message}")
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a 31-byte secret was accepted"),
    }
    let enough = cockpit::config::Config {
        bind: "127.0.0.1:0".parse().expect("address"),
        ..cockpit::config::Config::new(db.url.clone(), "x".repeat(32))
    };
    assert!(cockpit::http::Application::build(&enough).await.is_ok());
}
