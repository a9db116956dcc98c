//! The supervisors' screen (spec 7.1) in a real headless Chromium against a real server:
//! the four tables, filtering, status changes, live counts, permissions, the connection
//! warning, sign-in errors, GraphiQL offline, and the screenshots in `docs/`.

use serde_json::{json, Value};

use crate::common::browser::{Browser, TABLES};
use crate::common::proxy::Proxy;
use crate::common::{noon_zone, spawn_app, TestApp, JWT_SECRET};
use cockpit::auth::TokenRole;

const ORG: &str = "acme";

/// RFC 3339 of now − `minutes` (the org's zone keeps the whole fixture inside its day).
fn ago(minutes: i64) -> String {
    crate::common::minutes_ago(minutes)
}

/// Products p1, p2; Okan (AGENT, p1, ONLINE), İpek (AGENT, p1 and p2, BREAK), Işıl (AGENT,
/// p1, INVISIBLE), Cem (AGENT, p1, OFFLINE) and the supervisor Özge (p1, ONLINE).
/// Okan answered c1 2 minutes after its assignment and c2 after 4 (average 3:00) and
/// resolved c2 10 minutes after it was assigned to him; c1 is still active on him, c3 is
/// active on İpek without an answer.
async fn fixture(app: &TestApp) {
    let at = ago(120);
    let mut events = vec![
        json!({"id": "org", "type": "organization_upserted", "at": at,
                                  "name": "Acme", "timezone": noon_zone()}),
    ];
    events.extend(crate::common::team(&at));
    events.push(
        json!({"id": "t-isil", "type": "agent_upserted", "at": at, "agent": "isil",
                       "name": "Işıl", "role": "AGENT", "products": ["p1"]}),
    );
    events.push(
        json!({"id": "t-cem", "type": "agent_upserted", "at": at, "agent": "cem",
                       "name": "Cem", "role": "AGENT", "products": ["p1"]}),
    );
    let conversation = |c: &str, channel: &str, opened: i64| {
        json!({"id": format!("{c}-open"), "type": "conversation_opened", "at": ago(opened),
               "conversation": c, "product": "p1", "channel": channel})
    };
    events.extend([
        conversation("c1", "LIVE_CHAT", 50),
        json!({"id": "c1-a", "type": "assigned", "at": ago(40), "conversation": "c1", "agent": "okan"}),
        json!({"id": "c1-r", "type": "agent_message", "at": ago(38), "conversation": "c1", "agent": "okan"}),
        conversation("c2", "WHATSAPP", 45),
        json!({"id": "c2-a", "type": "assigned", "at": ago(30), "conversation": "c2", "agent": "okan"}),
        json!({"id": "c2-r", "type": "agent_message", "at": ago(26), "conversation": "c2", "agent": "okan"}),
        json!({"id": "c2-x", "type": "resolved", "at": ago(20), "conversation": "c2", "agent": "okan"}),
        conversation("c3", "LIVE_CHAT", 15),
        json!({"id": "c3-a", "type": "assigned", "at": ago(10), "conversation": "c3", "agent": "ipek"}),
    ]);
    app.ingest_ok(ORG, &json!(events)).await;
    for (agent, status) in [
        ("okan", "ONLINE"),
        ("ipek", "BREAK"),
        ("isil", "INVISIBLE"),
        ("sup", "ONLINE"),
    ] {
        let answer = app
            .graphql(
                Some(&app.agent_token(ORG, agent)),
                "mutation($a: ID!, $s: AgentStatus!) { setAgentStatus(agentId: $a, status: $s) { status } }",
                json!({"a": agent, "s": status}),
            )
            .await;
        assert_eq!(
            answer["data"]["setAgentStatus"]["status"], status,
            "{answer}"
        );
    }
    app.db.refresh().await;
}

fn row(id: &str, name: &str, status: &str, figures: [&str; 6], control: bool) -> Value {
    let [first, resolution, active, resolved, reactivated, forwarded] = figures;
    json!([
        id,
        name,
        status,
        first,
        resolution,
        active,
        resolved,
        reactivated,
        forwarded,
        control
    ])
}

/// The screen signed in with `token` through the URL fragment, its tables drawn.
async fn open_screen(browser: &Browser, base: &str, token: &str) {
    browser.goto(&format!("{base}/#token={token}")).await;
    browser
        .wait_until(
            "the cockpit is drawn",
            "return !document.getElementById('cockpit').hidden \
             && document.querySelectorAll('tr[data-agent]').length > 0",
        )
        .await;
}

#[tokio::test]
async fn the_screen_shows_the_four_tables_filters_and_changes_statuses_live() {
    let app = spawn_app().await;
    fixture(&app).await;
    let browser = Browser::start().await;
    open_screen(&browser, &app.address, &app.agent_token(ORG, "sup")).await;

    // The token left the address bar at once; the page is Turkish by default.
    assert_eq!(browser.eval("return location.hash").await, json!(""));
    assert_eq!(
        browser
            .eval("return document.querySelector('[data-table=BREAK] h2').textContent.trim()")
            .await,
        json!("Mola (1)")
    );
    let expected = json!({
        "ONLINE": [
            row("okan", "Okan", "Çevrimiçi", ["3:00", "10:00", "1", "1", "0", "0"], true),
            row("sup", "Özge", "Çevrimiçi", ["—", "—", "0", "0", "0", "0"], true),
        ],
        "BREAK": [row("ipek", "İpek", "Mola", ["—", "—", "1", "0", "0", "0"], true)],
        "INVISIBLE": [row("isil", "Işıl", "Görünmez", ["—", "—", "0", "0", "0", "0"], true)],
        "OFFLINE": [row("cem", "Cem", "Çevrimdışı", ["—", "—", "0", "0", "0", "0"], false)],
    });
    browser.wait_for("the four tables", TABLES, &expected).await;
    let in_status = browser
        .eval("return document.querySelector('tr[data-agent=okan] td[data-col=inStatus]').textContent")
        .await;
    let in_status = in_status.as_str().expect("text");
    assert!(
        in_status.len() >= 4 && in_status.contains(':') && !in_status.starts_with('-'),
        "time in status {in_status}"
    );

    // One letter filters: `i` finds İpek and Işıl (Turkish-aware), nobody else.
    browser.type_into("#search", "i").await;
    browser
        .wait_for(
            "the rows after typing `i`",
            "return [...document.querySelectorAll('tr[data-agent]')].map((tr) => tr.dataset.agent).sort()",
            &json!(["ipek", "isil"]),
        )
        .await;
    browser
        .eval("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); return null")
        .await;
    browser.wait_for("all rows again", TABLES, &expected).await;

    // The supervisor moves Okan to a break from his row; the page is never reloaded.
    browser
        .eval("window.__sameDocument = true; return null")
        .await;
    browser
        .select("select[data-status-control=okan]", "BREAK")
        .await;
    browser
        .wait_for(
            "Okan's row in the break table",
            "return [...document.querySelectorAll('[data-table=BREAK] tr[data-agent]')].map((tr) => tr.dataset.agent)",
            &json!(["ipek", "okan"]),
        )
        .await;
    let stored = app
        .graphql(
            Some(&app.agent_token(ORG, "sup")),
            "{ statusHistory(agentId: \"okan\", limit: 1) { to changedBy { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stored["data"]["statusHistory"][0],
        json!({"to": "BREAK", "changedBy": {"id": "sup"}})
    );

    // The platform resolves c1: Okan's active count drops without a reload.
    app.ingest_ok(
        ORG,
        &json!([{"id": "c1-x", "type": "resolved", "at": ago(1), "conversation": "c1", "agent": "okan"}]),
    )
    .await;
    browser
        .wait_for(
            "Okan's active count",
            "return document.querySelector('tr[data-agent=okan] td[data-col=active]').textContent",
            &json!("0"),
        )
        .await;
    // ...and his resolved count follows after the next refresh (every second in tests).
    browser
        .wait_for(
            "Okan's resolved count",
            "return document.querySelector('tr[data-agent=okan] td[data-col=resolved]').textContent",
            &json!("2"),
        )
        .await;
    assert_eq!(
        browser.eval("return window.__sameDocument === true").await,
        json!(true)
    );

    // Cem is offline: his row offers no status control.
    assert_eq!(
        browser
            .eval("return document.querySelector('tr[data-agent=cem] select') === null")
            .await,
        json!(true)
    );
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_screen_shows_the_insights_and_the_queue_live_with_ticking_clocks() {
    let app = spawn_app().await;
    fixture(&app).await;
    // A conversation of p1 nobody holds: the queue.
    app.ingest_ok(
        ORG,
        &json!([{"id": "q1-open", "type": "conversation_opened", "at": ago(5), "conversation": "q1",
                 "product": "p1", "channel": "IN_APP"}]),
    )
    .await;
    let browser = Browser::start().await;
    open_screen(&browser, &app.address, &app.agent_token(ORG, "sup")).await;
    let cells = |agent: &str| {
        format!(
            "const tr = document.querySelector('tr[data-agent={agent}]'); \
             return ['unanswered', 'overdue', 'serviceLevel'].map((c) => tr.querySelector(`td[data-col=${{c}}]`).textContent)"
        )
    };
    // İpek holds c3, opened 15 minutes ago and assigned 10 minutes ago, unanswered: one
    // customer waits (for 15 minutes and counting), one first response is overdue, and her
    // service level is 0 of 1. Okan answered both of his in 2 and 4 minutes: 0 of 2 within
    // the 60 s target, nobody waiting.
    browser
        .wait_until(
            "İpek's insights",
            "const tr = document.querySelector('tr[data-agent=ipek]'); \
             const cell = (c) => tr.querySelector(`td[data-col=${c}]`).textContent; \
             return cell('unanswered').startsWith('1 (15:') && cell('overdue') === '1' \
                 && cell('serviceLevel').endsWith('(0/1)') && cell('serviceLevel').includes('0')",
        )
        .await;
    let okan = browser.eval(&cells("okan")).await;
    assert_eq!(okan[0], "0", "{okan}");
    assert_eq!(okan[1], "0", "{okan}");
    assert!(
        okan[2].as_str().is_some_and(|t| t.ends_with("(0/2)")),
        "{okan}"
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('target').textContent")
            .await,
        json!("İlk yanıt hedefi: 1:00")
    );
    browser
        .wait_until(
            "the queue with its oldest wait",
            "return document.getElementById('queue').textContent.startsWith('Kuyruk: 1 (en eski 5:')",
        )
        .await;
    // Okan's time online today ticks on the client (he has been online since the fixture).
    let online = browser
        .eval("return document.querySelector('tr[data-agent=okan] td[data-col=onlineToday]').textContent")
        .await;
    browser
        .wait_until(
            "Okan's time online today moves",
            &format!(
                "return document.querySelector('tr[data-agent=okan] td[data-col=onlineToday]').textContent !== {online}"
            ),
        )
        .await;
    // He has been nothing else today: his time in status and his time online today are the
    // same clock, second for second, over several ticks (both count whole seconds of the
    // clock, as the SQL does, and one paint reads one instant).
    for _ in 0..3 {
        let pair = browser
            .eval(
                "const tr = document.querySelector('tr[data-agent=okan]'); \
                 return ['inStatus', 'onlineToday'].map((c) => tr.querySelector(`td[data-col=${c}]`).textContent)",
            )
            .await;
        assert_eq!(pair[0], pair[1], "{pair}");
        browser
            .wait_until(
                "the next tick of Okan's time in status",
                &format!(
                    "return document.querySelector('tr[data-agent=okan] td[data-col=inStatus]').textContent !== {}",
                    pair[0]
                ),
            )
            .await;
    }

    // Okan takes q1 from the queue two minutes late: the queue empties, and he has a
    // customer waiting and an overdue first response, without a reload.
    app.ingest_ok(
        ORG,
        &json!([{"id": "q1-a", "type": "assigned", "at": ago(2), "conversation": "q1", "agent": "okan"}]),
    )
    .await;
    browser
        .wait_for(
            "the empty queue",
            "return document.getElementById('queue').textContent",
            &json!("Kuyruk: 0"),
        )
        .await;
    browser
        .wait_until(
            "Okan's waiting customer and overdue first response",
            "const tr = document.querySelector('tr[data-agent=okan]'); \
             const cell = (c) => tr.querySelector(`td[data-col=${c}]`).textContent; \
             return cell('unanswered').startsWith('1 (5:') && cell('overdue') === '1' \
                 && cell('serviceLevel').endsWith('(0/3)')",
        )
        .await;
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn an_api_error_is_shown_in_words_and_english_is_switchable_and_remembered() {
    let app = spawn_app().await;
    fixture(&app).await;
    let browser = Browser::start().await;
    open_screen(&browser, &app.address, &app.agent_token(ORG, "sup")).await;
    browser
        .wait_until(
            "İpek's control",
            "return !!document.querySelector('select[data-status-control=ipek]')",
        )
        .await;
    // The screen stops listening (as a tab whose socket silently died would), İpek logs
    // off herself, and the supervisor's stale control is refused by the API with
    // AGENT_OFFLINE, shown in words.
    browser.eval("live.stop(); return null").await;
    let answer = app
        .graphql(
            Some(&app.agent_token(ORG, "ipek")),
            "mutation { setAgentStatus(agentId: \"ipek\", status: OFFLINE) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["data"]["setAgentStatus"]["status"], "OFFLINE");
    browser
        .select("select[data-status-control=ipek]", "ONLINE")
        .await;
    browser
        .wait_for(
            "the refusal in words",
            "const e = document.getElementById('error'); \
             return e.hidden ? null : [e.dataset.code, document.getElementById('error-text').textContent]",
            &json!(["AGENT_OFFLINE", "Çevrimdışı bir temsilcinin statüsünü yalnızca kendisi değiştirebilir."]),
        )
        .await;
    // Listening again, the fresh snapshot puts her row in the offline table, bare.
    browser.eval("live.start(); return null").await;
    browser
        .wait_until(
            "İpek offline without a control",
            "const tr = document.querySelector('[data-table=OFFLINE] tr[data-agent=ipek]'); \
             return !!tr && !tr.querySelector('select')",
        )
        .await;

    // English, remembered across a reload.
    browser.click("#lang").await;
    browser
        .wait_for(
            "English headings",
            "return [...document.querySelectorAll('[data-table] h2 [data-i18n]')].map((e) => e.textContent)",
            &json!(["Online", "Break", "Invisible", "Offline"]),
        )
        .await;
    browser.goto(&format!("{}/", app.address)).await;
    browser
        .wait_for(
            "English after a reload (token kept in the session)",
            "return document.querySelectorAll('tr[data-agent]').length > 0 \
             ? document.querySelector('th[data-col=avgFirst]').textContent : null",
            &json!("Avg first response"),
        )
        .await;
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn an_agent_token_sees_only_their_own_status_and_can_change_it() {
    let app = spawn_app().await;
    fixture(&app).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!(
            "{}/#token={}",
            app.address,
            app.agent_token(ORG, "okan")
        ))
        .await;
    browser
        .wait_until(
            "the agent's view",
            "return !document.getElementById('agent-view').hidden",
        )
        .await;
    assert_eq!(
        browser
            .eval(
                "return [document.getElementById('cockpit').hidden, \
                 document.querySelectorAll('tr[data-agent]').length, \
                 document.getElementById('me').textContent, \
                 document.getElementById('filters').hidden]"
            )
            .await,
        json!([true, 0, "Okan", true])
    );
    browser.select("#my-status", "BREAK").await;
    browser
        .wait_for(
            "the new status in the picker",
            "return document.querySelector('#my-status option[value=\"\"]').textContent",
            &json!("Mola"),
        )
        .await;
    let me = app
        .graphql(
            Some(&app.agent_token(ORG, "okan")),
            "{ me { status } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["status"], "BREAK");
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_screen_warns_when_the_connection_is_lost_or_the_columns_are_old_and_recovers() {
    let app = spawn_app().await;
    fixture(&app).await;
    let proxy = Proxy::start(([127, 0, 0, 1], app.port()).into()).await;
    let base = format!("http://127.0.0.1:{}", proxy.port);
    let browser = Browser::start().await;
    open_screen(&browser, &base, &app.agent_token(ORG, "sup")).await;
    let warning = "const w = document.getElementById('warning'); \
                   return [w.hidden, w.dataset.kind, document.getElementById('conn').dataset.state]";
    browser
        .wait_for("no warning", warning, &json!([true, "", "open"]))
        .await;

    proxy.cut();
    browser
        .wait_for(
            "the connection warning",
            warning,
            &json!([false, "connection", "down"]),
        )
        .await;
    // A change while the screen is away reaches it with the fresh snapshot.
    let answer = app
        .graphql(
            Some(&app.agent_token(ORG, "sup")),
            "mutation { setAgentStatus(agentId: \"isil\", status: ONLINE) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(answer["data"]["setAgentStatus"]["status"], "ONLINE");
    proxy.restore();
    browser
        .wait_for("the warning cleared", warning, &json!([true, "", "open"]))
        .await;
    browser
        .wait_until(
            "Işıl online after the reconnect",
            "return !!document.querySelector('[data-table=ONLINE] tr[data-agent=isil]')",
        )
        .await;

    // Refreshes held back (another session holds the refresh lock): after 3 intervals
    // (3 s in tests) the screen says its daily columns are old; once released, it clears.
    let mut holder = app.db.client().await;
    let tx = holder.transaction().await.expect("begin");
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0))",
        &[],
    )
    .await
    .expect("hold the refresh lock");
    browser
        .wait_for(
            "the stale warning",
            warning,
            &json!([false, "stale", "open"]),
        )
        .await;
    tx.rollback().await.expect("release");
    browser
        .wait_for(
            "the stale warning cleared",
            warning,
            &json!([true, "", "open"]),
        )
        .await;
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

fn token_expired_a_minute_ago() -> String {
    let claims = cockpit::auth::Claims {
        sub: "sup".into(),
        org: ORG.into(),
        role: TokenRole::Supervisor,
        exp: (chrono::Utc::now().timestamp() - 60) as u64,
        iat: None,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("encode")
}

#[tokio::test]
async fn graphiql_and_the_screen_load_offline_and_bad_tokens_are_explained() {
    let app = spawn_app().await;
    fixture(&app).await;
    let browser = Browser::start().await;
    let signin = "const m = document.getElementById('signin-message'); \
                  return document.getElementById('signin').hidden ? null : [m.dataset.code, m.textContent]";

    browser
        .goto(&format!(
            "{}/#token={}",
            app.address,
            token_expired_a_minute_ago()
        ))
        .await;
    browser
        .wait_for(
            "the expired token explained",
            signin,
            &json!([
                "expired",
                "Oturumunuzun süresi doldu. Yeni bir erişim anahtarıyla giriş yapın."
            ]),
        )
        .await;
    let foreign = cockpit::auth::Keys::new("another-secret-another-secret-xx").issue(
        ORG,
        "sup",
        TokenRole::Supervisor,
        std::time::Duration::from_secs(600),
    );
    browser.type_into("#token-input", &foreign).await;
    browser.click("#signin-button").await;
    browser
        .wait_for(
            "the refused token explained",
            "const m = document.getElementById('signin-message'); return m.dataset.code",
            &json!("UNAUTHENTICATED"),
        )
        .await;
    // The page never shows raw JSON.
    let text = browser.eval("return document.body.innerText").await;
    assert!(!text.as_str().unwrap_or("").contains('{'), "{text}");

    // GraphiQL from the binary, with the network cut off.
    browser.goto(&format!("{}/graphql", app.address)).await;
    browser
        .wait_until(
            "GraphiQL drawn",
            "return !!document.querySelector('.graphiql-container .graphiql-editors')",
        )
        .await;
    let origin = app.address.clone();
    let resources = browser
        .eval("return performance.getEntriesByType('resource').map((e) => e.name)")
        .await;
    let resources: Vec<String> = serde_json::from_value(resources).expect("names");
    assert!(resources.len() >= 4, "GraphiQL's assets: {resources:?}");
    assert!(
        resources.iter().all(|r| r.starts_with(&origin)),
        "{resources:?}"
    );
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn the_screenshots_of_the_demo_show_the_screen_in_turkish_and_english() {
    let app = spawn_app().await;
    let pool = cockpit::db::pool(&app.db.url, 2).expect("pool");
    cockpit::demo::seed(&pool).await.expect("demo seed");
    // A zone where it is about noon now: the 90 minutes of history stay inside today
    // whatever the hour the test runs (the latest organization_upserted wins).
    let zone = json!([{"id": "screenshot-zone", "type": "organization_upserted",
                       "at": ago(1), "name": "Demo Destek A.Ş.", "timezone": noon_zone()}]);
    let report = cockpit::ingest::store_json(&pool, cockpit::demo::ORG, &zone)
        .await
        .expect("zone");
    assert_eq!(report.rejected, vec![]);
    let mut traffic = cockpit::demo::Traffic::new();
    let now = chrono::Utc::now();
    let history = traffic.history(now - chrono::Duration::minutes(5), 90);
    let report = cockpit::ingest::store_json(&pool, cockpit::demo::ORG, &json!(history))
        .await
        .expect("history");
    assert_eq!(report.rejected, vec![]);
    app.db.refresh().await;

    let browser = Browser::start().await;
    let token = app.agent_token(cockpit::demo::ORG, cockpit::demo::SUPERVISOR);
    open_screen(&browser, &app.address, &token).await;
    browser
        .wait_until(
            "a resolved conversation on screen",
            "return [...document.querySelectorAll('td[data-col=resolved]')].some((td) => td.textContent !== '0')",
        )
        .await;
    // The product selector switches the tables to the product's team.
    browser.select("#product", "mobil").await;
    browser
        .wait_until(
            "the Mobil team (Okan is a member, Deniz is not)",
            "return !!document.querySelector('tr[data-agent=okan]') \
             && !document.querySelector('tr[data-agent=deniz]')",
        )
        .await;
    let turkish = browser.screenshot().await;
    browser.click("#lang").await;
    browser
        .wait_for(
            "English",
            "return document.querySelector('th[data-col=name]').textContent",
            &json!("Name"),
        )
        .await;
    let english = browser.screenshot().await;
    for png in [&turkish, &english] {
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{} bytes",
            png.len()
        );
    }
    // COCKPIT_UPDATE_SCREENSHOTS=1 writes them to docs/ (the README's pictures).
    let dir = if std::env::var("COCKPIT_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("cockpit-tr.png"), &turkish).expect("write");
    std::fs::write(dir.join("cockpit-en.png"), &english).expect("write");
    assert_eq!(browser.outside_requests().await, Vec::<String>::new());
    browser.close().await;
}
