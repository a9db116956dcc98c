use crate::common::spawn_app;

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn readyz_is_green_once_migrations_are_applied() {
    let app = spawn_app().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ready"), "{body}");
}

#[tokio::test]
async fn readyz_turns_red_when_the_schema_history_is_behind() {
    let app = spawn_app().await;
    let client = app.db.client().await;
    client
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history)",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("migrations"), "{body}");
}
