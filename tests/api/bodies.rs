//! Bodies: JSON or NDJSON, and the limits (spec 5.2).

use serde_json::json;

use crate::common::{minutes_ago, rejected_codes, spawn_app};

fn product(id: &str, at: &str) -> serde_json::Value {
    json!({"id": id, "type": "product_upserted", "at": at, "product": id, "name": format!("Product {id}")})
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_and_a_json_scalar_too() {
    let app = spawn_app().await;
    let token = app.service_token("acme");
    for body in [
        &b"{\"id\": "[..],
        b"hello",
        b"42",
        b"\"x\"",
        b"",
        b"\xff\xfe",
    ] {
        let (status, answer) = app
            .post_raw(Some(&token), "application/json", body.to_vec())
            .await;
        assert_eq!(status, 400, "{:?}: {answer}", String::from_utf8_lossy(body));
        assert_eq!(answer["error"]["code"], "BAD_REQUEST");
    }
}

#[tokio::test]
async fn an_empty_batch_is_a_200_with_zeros() {
    let app = spawn_app().await;
    let token = app.service_token("acme");
    let (status, answer) = app
        .post_raw(Some(&token), "application/json", b"[]".to_vec())
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": 0, "duplicates": 0, "rejected": []}))
    );
    let (status, answer) = app
        .post_raw(Some(&token), "application/x-ndjson", b"\n\n".to_vec())
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"accepted": 0, "duplicates": 0, "rejected": []}))
    );
}

#[tokio::test]
async fn one_json_object_is_a_batch_of_one() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post_events(&app.service_token("acme"), &product("p1", &minutes_ago(1)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["accepted"], 1);
}

#[tokio::test]
async fn a_truncated_ndjson_line_is_invalid_and_the_other_lines_are_accepted() {
    let app = spawn_app().await;
    let at = minutes_ago(1);
    for (prefix, content_type) in [
        ("a", "application/x-ndjson"),
        ("b", "application/jsonl; charset=utf-8"),
    ] {
        let body = format!(
            "{}\n\n{}\n{}\r\n{}",
            product(&format!("{prefix}1"), &at),
            r#"{"id": "x2", "type": "product_upserted", "at": "#,
            product(&format!("{prefix}3"), &at),
            &product(&format!("{prefix}4"), &at).to_string()[..20]
        );
        let (status, answer) = app
            .post_raw(
                Some(&app.service_token("acme")),
                content_type,
                body.into_bytes(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 2, "{answer}");
        assert_eq!(
            rejected_codes(&answer),
            vec![(1, "INVALID".into()), (3, "INVALID".into())]
        );
        assert!(answer["rejected"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON"));
    }
}

#[tokio::test]
async fn ndjson_whose_every_line_is_unreadable_is_a_200_with_every_line_rejected() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post_raw(
            Some(&app.service_token("acme")),
            "application/x-ndjson",
            b"nope\n{\n42 43\n".to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        rejected_codes(&answer),
        vec![
            (0, "INVALID".into()),
            (1, "INVALID".into()),
            (2, "INVALID".into())
        ]
    );
}

#[tokio::test]
async fn a_body_over_10_mib_is_a_413_and_stores_nothing() {
    let app = spawn_app().await;
    let at = minutes_ago(1);
    // Valid events, so only the size can be the reason.
    let one = product("p", &at).to_string();
    let mut body = String::from("[");
    let mut n = 0;
    while body.len() < 11 * 1024 * 1024 {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&one.replace("\"id\":\"p\"", &format!("\"id\":\"e{n}\"")));
        n += 1;
    }
    body.push(']');
    let (status, answer) = app
        .post_raw(
            Some(&app.service_token("acme")),
            "application/json",
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "PAYLOAD_TOO_LARGE");
    let stored = app
        .db
        .client()
        .await
        .query("SELECT 1 FROM cockpit.events", &[])
        .await
        .unwrap();
    assert!(stored.is_empty());
}

#[tokio::test]
async fn more_than_50000_events_is_a_413_and_exactly_50000_is_read() {
    let app = spawn_app().await;
    let token = app.service_token("acme");
    let too_many = format!("[{}]", vec!["{}"; 50_001].join(","));
    let (status, answer) = app
        .post_raw(Some(&token), "application/json", too_many.into_bytes())
        .await;
    assert_eq!(status, 413, "{answer}");
    let ndjson = "{}\n".repeat(50_001);
    let (status, _) = app
        .post_raw(Some(&token), "application/x-ndjson", ndjson.into_bytes())
        .await;
    assert_eq!(status, 413);
    // 50,000 events (all invalid here: empty objects) are read and each answered.
    let (status, answer) = app
        .post_raw(
            Some(&token),
            "application/json",
            format!("[{}]", vec!["{}"; 50_000].join(",")).into_bytes(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 50_000);
}
