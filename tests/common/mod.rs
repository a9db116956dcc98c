//! Test harness: a real PostgreSQL, a database per test cloned from a migrated template,
//! and the real application started on port 0.
//!
//! The server is, in this order: `DATABASE_URL` when set; the local server on
//! 127.0.0.1:5432 (user `postgres`); a throwaway cluster started from the PostgreSQL
//! binaries found on this machine. Otherwise the tests fail saying how to get PostgreSQL.
//! With `COCKPIT_TEST_CITUS=1`: a Citus coordinator and two workers ([`citus`]).

#![allow(dead_code)]

pub mod browser;
pub mod citus;
pub mod pooler;
pub mod proxy;
pub mod ws;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use cockpit::auth::{Keys, TokenRole};
use cockpit::config::Config;
use cockpit::http::Application;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

/// How long the test apps wait for a WebSocket's `connection_init`.
pub const WS_INIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Secret the test apps sign and verify tokens with.
pub const JWT_SECRET: &str = "test-secret-do-not-use-in-production";

static SERVER: OnceLock<tokio_postgres::Config> = OnceLock::new();
static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// Connection settings of the PostgreSQL server the tests use (its maintenance database).
pub fn server() -> tokio_postgres::Config {
    SERVER.get_or_init(find_server).clone()
}

fn find_server() -> tokio_postgres::Config {
    if citus::enabled() {
        return citus::cluster().coordinator.clone();
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return tokio_postgres::Config::from_str(&url)
            .unwrap_or_else(|e| panic!("DATABASE_URL does not parse: {e}"));
    }
    // COCKPIT_TEST_THROWAWAY_PG=1 skips the local server (to exercise the fallback).
    let skip_local = std::env::var("COCKPIT_TEST_THROWAWAY_PG").is_ok_and(|v| v == "1");
    let local = tokio_postgres::Config::from_str("postgres://postgres@127.0.0.1:5432/postgres")
        .expect("static URL");
    if !skip_local && can_connect(&local) {
        return local;
    }
    match cockpit::pgcluster::start_throwaway("test") {
        Ok(cluster) => tokio_postgres::Config::from_str(&cluster.url)
            .unwrap_or_else(|e| panic!("the throwaway cluster's URL: {e}")),
        Err(e) => panic!(
            "no PostgreSQL for the tests: DATABASE_URL is not set, nothing on \
             127.0.0.1:5432 accepts user postgres, and no throwaway cluster could be started ({e}). Install \
             PostgreSQL (apt-get install postgresql) or set DATABASE_URL to a server where \
             this user may create databases."
        ),
    }
}

/// Whether `config` accepts a connection (a server may listen on 5432 and still refuse
/// this user, e.g. with password authentication).
fn can_connect(config: &tokio_postgres::Config) -> bool {
    let config = config.clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        runtime.block_on(async {
            let mut config = config;
            config.connect_timeout(Duration::from_secs(3));
            config.connect(NoTls).await.is_ok()
        })
    })
    .join()
    .unwrap_or(false)
}

/// A client connected to `config`, its connection driven on the current runtime.
pub async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The URL of database `dbname` on the test server.
pub fn url_of(config: &tokio_postgres::Config, dbname: &str) -> String {
    cockpit::db::url_of(config, dbname)
}

/// The migrated template database, built once per schema fingerprint (the migrations and
/// the definitions of `sql/`) and shared by concurrent test processes (an advisory lock
/// serialises its creation).
async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("cockpit_tpl_{}", cockpit::db::schema_fingerprint());
            let admin = connect(&server()).await;
            admin
                .execute("SELECT pg_advisory_lock(7031003)", &[])
                .await
                .expect("template lock");
            let ready = admin
                .query_opt(
                    "SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate",
                    &[&name],
                )
                .await
                .expect("look up template")
                .is_some();
            if !ready {
                // Templates of older migrations and a half-built one of these go.
                let stale = admin
                    .query(
                        "SELECT datname FROM pg_database WHERE datname LIKE 'cockpit\\_tpl\\_%'",
                        &[],
                    )
                    .await
                    .expect("list templates");
                for row in stale {
                    let old: String = row.get(0);
                    let q = cockpit::db::quote_ident(&old);
                    admin
                        .batch_execute(&format!("ALTER DATABASE {q} IS_TEMPLATE false"))
                        .await
                        .expect("unmark template");
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
                        .await
                        .expect("drop stale template");
                }
                let q = cockpit::db::quote_ident(&name);
                admin
                    .batch_execute(&format!("CREATE DATABASE {q}"))
                    .await
                    .expect("create template");
                let pool = cockpit::db::pool(&url_of(&server(), &name), 1).expect("template pool");
                cockpit::db::migrate(&pool).await.expect("migrate template");
                pool.close();
                admin
                    .batch_execute(&format!("ALTER DATABASE {q} IS_TEMPLATE true"))
                    .await
                    .expect("mark template");
            }
            admin
                .execute("SELECT pg_advisory_unlock(7031003)", &[])
                .await
                .expect("template unlock");
            name
        })
        .await
        .clone()
}

/// A name for a new test database: this process's, numbered.
fn next_name() -> String {
    format!(
        "cockpit_test_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database of its own for one test, dropped when the value is dropped.
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// URL to connect to it.
    pub url: String,
}

impl TestDb {
    /// A fresh, migrated database.
    pub async fn new() -> TestDb {
        if citus::enabled() {
            // No template on Citus (see `citus`): created and migrated through the coordinator,
            // one database at a time: the migrations change roles, which are the whole
            // cluster's, and Citus propagates each change to the workers, where two at once
            // fail ("tuple concurrently updated").
            let _one_at_a_time = citus::MIGRATING.lock().await;
            let db = TestDb::empty().await;
            let pool = cockpit::db::pool(&db.url, 1).expect("test pool");
            cockpit::db::migrate(&pool).await.expect("migrate on Citus");
            pool.close();
            return db;
        }
        let template = template().await;
        let name = next_name();
        let admin = connect(&server()).await;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                cockpit::db::quote_ident(&name),
                cockpit::db::quote_ident(&template)
            ))
            .await
            .expect("create test database");
        let url = url_of(&server(), &name);
        TestDb { name, url }
    }

    /// An empty database (nothing migrated), dropped like any other.
    pub async fn empty() -> TestDb {
        let name = next_name();
        if citus::enabled() {
            citus::cluster().create_database(&name).await;
            let url = url_of(&server(), &name);
            return TestDb { name, url };
        }
        let admin = connect(&server()).await;
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {}",
                cockpit::db::quote_ident(&name)
            ))
            .await
            .expect("create empty test database");
        let url = url_of(&server(), &name);
        TestDb { name, url }
    }

    /// A new client on this database.
    pub async fn client(&self) -> Client {
        connect(&tokio_postgres::Config::from_str(&self.url).expect("test url")).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread with a
        // runtime of its own drops the database (FORCE ends the app's connections).
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if citus::enabled() {
                    citus::cluster().drop_database(&name).await;
                    return;
                }
                let admin = connect(&server()).await;
                let _ = admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        cockpit::db::quote_ident(&name)
                    ))
                    .await;
            });
        })
        .join();
    }
}

/// The real application, serving on a free port, with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The app's database (dropped with its last app).
    pub db: std::sync::Arc<TestDb>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The instance's live hub (its read counters).
    pub hub: std::sync::Arc<cockpit::live::hub::Hub>,
    keys: Keys,
    server: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the application against a fresh database with no refresh during a test (a
/// refresh's notification re-reads every live scope, which tests of partial re-reads
/// must not see).
pub async fn spawn_app_without_refresh() -> TestApp {
    let db = std::sync::Arc::new(TestDb::new().await);
    spawn_app_with(db, None, |config| cockpit::config::Config {
        refresh_interval: Duration::from_secs(3600),
        ..config
    })
    .await
}

/// Starts the application on port 0 against a fresh database.
pub async fn spawn_app() -> TestApp {
    let db = std::sync::Arc::new(TestDb::new().await);
    spawn_app_on(db, None).await
}

/// Starts another instance of the application on `db` (several instances share one
/// database), its listener connecting through `listen_url` when given. Returns once the
/// instance is ready (migrated, refreshed, listener connected).
pub async fn spawn_app_on(db: std::sync::Arc<TestDb>, listen_url: Option<String>) -> TestApp {
    spawn_app_with(db, listen_url, |config| config).await
}

/// [`spawn_app_on`] with the test configuration changed by `adjust`.
pub async fn spawn_app_with(
    db: std::sync::Arc<TestDb>,
    listen_url: Option<String>,
    adjust: impl FnOnce(Config) -> Config,
) -> TestApp {
    let config = Config {
        listen_url,
        bind: "127.0.0.1:0".parse().expect("static address"),
        refresh_interval: Duration::from_secs(1),
        pool_size: 4,
        ws_init_timeout: WS_INIT_TIMEOUT,
        ..Config::new(db.url.clone(), JWT_SECRET)
    };
    let config = adjust(config);
    let app = Application::build(&config).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let hub = app.hub();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = stopped.await;
            })
            .await;
    });
    let app = TestApp {
        address,
        db,
        http: reqwest::Client::new(),
        hub,
        keys: Keys::new(JWT_SECRET),
        server,
        stop: Some(stop),
    };
    app.wait_ready(true).await;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// Waits (10 s at most) until `/readyz` says ready (`true`) or not ready (`false`).
    pub async fn wait_ready(&self, ready: bool) {
        let wanted = if ready { 200 } else { 503 };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get("/readyz").await;
            if status == wanted {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz stayed {status} ({body}), expected {wanted}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts the app down as SIGTERM would, and waits until it has stopped.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.expect("server task");
    }

    /// The port the app serves on.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// A token signed with the app's secret, valid for an hour.
    pub fn token(&self, org: &str, sub: &str, role: TokenRole) -> String {
        self.keys.issue(org, sub, role, Duration::from_secs(3600))
    }

    /// A service token of `org`.
    pub fn service_token(&self, org: &str) -> String {
        self.token(org, "platform", TokenRole::Service)
    }

    /// `POST /v1/events` with a JSON body and a bearer token; status and JSON answer.
    pub async fn post_events(&self, token: &str, events: &Value) -> (u16, Value) {
        self.post_raw(
            Some(token),
            "application/json",
            events.to_string().into_bytes(),
        )
        .await
    }

    /// `POST /v1/events` with any body, content type and (optional) token.
    pub async fn post_raw(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/events", self.address))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /v1/events");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Ingests events for `org` with a service token and asserts that all were accepted.
    pub async fn ingest_ok(&self, org: &str, events: &Value) -> Value {
        let (status, answer) = self.post_events(&self.service_token(org), events).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["rejected"], serde_json::json!([]), "{answer}");
        answer
    }

    /// `GET path`: status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

/// An RFC 3339 instant `minutes` before now (UTC), for events that must not be in the future.
pub fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A small team at `at`: products `p1`, `p2`; agents `okan` (AGENT, p1), `ipek` (AGENT, p1
/// and p2) and `sup` (SUPERVISOR, p1).
/// The organization `acme` in a zone where it is about noon now (a fixture of the last
/// hours stays inside one local day, whatever the hour the tests run at), then
/// [`team_members`].
pub fn team(at: &str) -> Vec<Value> {
    let mut events = vec![
        serde_json::json!({"id": "t-org", "type": "organization_upserted", "at": at,
                                             "name": "Acme", "timezone": noon_zone()}),
    ];
    events.extend(team_members(at));
    events
}

/// Two products and three agents, for tests that choose the organization's zone
/// themselves (or test its default).
pub fn team_members(at: &str) -> Vec<Value> {
    vec![
        serde_json::json!({"id": "t-p1", "type": "product_upserted", "at": at, "product": "p1", "name": "Mağaza"}),
        serde_json::json!({"id": "t-p2", "type": "product_upserted", "at": at, "product": "p2", "name": "Uygulama"}),
        serde_json::json!({"id": "t-okan", "type": "agent_upserted", "at": at, "agent": "okan", "name": "Okan", "role": "AGENT", "products": ["p1"]}),
        serde_json::json!({"id": "t-ipek", "type": "agent_upserted", "at": at, "agent": "ipek", "name": "İpek", "role": "agent", "products": ["p1", "p2"]}),
        serde_json::json!({"id": "t-sup", "type": "agent_upserted", "at": at, "agent": "sup", "name": "Özge", "role": "Supervisor", "products": ["p1"]}),
    ]
}

/// `base` plus `minutes`, as RFC 3339 in UTC.
pub fn plus_minutes(base: &str, minutes: i64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339(base).expect("RFC 3339 base");
    (base + chrono::Duration::minutes(minutes))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The rejection codes of an ingest answer, by batch index.
pub fn rejected_codes(answer: &Value) -> Vec<(u64, String)> {
    answer["rejected"]
        .as_array()
        .expect("rejected array")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["code"].as_str().expect("code").to_string(),
            )
        })
        .collect()
}

impl TestDb {
    /// Runs `cockpit.refresh_daily()` now, waiting for a refresh in progress elsewhere (the
    /// app's own refresher) instead of skipping: the session takes the refresh lock first.
    pub async fn refresh(&self) -> Value {
        let mut client = self.client().await;
        let tx = client.transaction().await.expect("begin");
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0))",
            &[],
        )
        .await
        .expect("refresh lock");
        let report: Option<Value> = tx
            .query_one("SELECT cockpit.refresh_daily()", &[])
            .await
            .expect("refresh")
            .get(0);
        tx.commit().await.expect("commit refresh");
        report.expect("the lock holder refreshes")
    }

    /// Rows of `reporting.agent_daily` as text, ordered, for exact comparisons.
    pub async fn agent_daily(&self) -> Vec<String> {
        self.client()
            .await
            .query(
                "SELECT d::text FROM reporting.agent_daily d \
                 ORDER BY org_id, day, agent_id, product_id, channel",
                &[],
            )
            .await
            .expect("agent_daily")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl TestApp {
    /// `POST /graphql` with an optional bearer token; the JSON answer (always a 200).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.address))
            .json(&serde_json::json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("GraphQL JSON answer")
    }

    /// A token of agent `sub` of `org` (the token's role claim does not matter for GraphQL).
    pub fn agent_token(&self, org: &str, sub: &str) -> String {
        self.token(org, sub, TokenRole::Agent)
    }
}

/// The `extensions.code` of each error of a GraphQL answer.
pub fn error_codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A fixed-offset IANA zone where it is about noon now, so that "today" in it holds the
/// last hour whatever time the tests run.
pub fn noon_zone() -> String {
    use chrono::Timelike;
    let n = chrono::Utc::now().hour() as i32 - 12;
    // Etc/GMT+N is N hours *behind* UTC (POSIX sign).
    if n >= 0 {
        format!("Etc/GMT+{n}")
    } else {
        format!("Etc/GMT-{}", -n)
    }
}

/// The GraphQL fields of a cockpit row used by the tests.
pub const COCKPIT_QUERY: &str = "query($p: ID!, $c: Channel, $s: String) {
  cockpit(productId: $p, channel: $c, search: $s) {
    product { id name } channel day refreshedAt staleAfter
    online { ...R } onBreak { ...R } invisible { ...R } offline { ...R }
  }
}
fragment R on AgentRow {
  agent { id name status } position
  avgFirstResponseSeconds avgResolutionSeconds activeConversations resolvedConversations
  reactivatedConversations forwardedConversations firstResponseCount resolutionCount
}";

impl TestApp {
    /// Holds `org`'s ingest lock (the one every batch of the organization takes) in a
    /// session of its own, and posts `batch` in the background: the batch is then waiting
    /// for the lock in PostgreSQL when this returns. Release with [`BlockedBatch::release`].
    pub async fn blocked_batch(&self, org: &str, batch: Value) -> BlockedBatch {
        let holder = self.db.client().await;
        holder
            .execute(
                "SELECT pg_advisory_lock(hashtextextended('cockpit.ingest/' || $1, 0))",
                &[&org],
            )
            .await
            .expect("hold the ingest lock");
        let (address, token) = (self.address.clone(), self.service_token(org));
        let request = tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{address}/v1/events"))
                .bearer_auth(token)
                .json(&batch)
                .send()
                .await
                .expect("the batch is answered");
            (
                response.status().as_u16(),
                response.text().await.expect("body"),
            )
        });
        let watcher = self.db.client().await;
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory' AND query LIKE '%ingest%'",
                    &[],
                )
                .await
                .expect("activity")
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        BlockedBatch {
            holder,
            org: org.to_string(),
            request,
        }
    }
}

/// A batch waiting for its organization's ingest lock, held by the test.
pub struct BlockedBatch {
    holder: Client,
    org: String,
    /// The batch's answer: status and body.
    pub request: tokio::task::JoinHandle<(u16, String)>,
}

impl BlockedBatch {
    /// Releases the lock; the batch's answer (status, body).
    pub async fn release(self) -> (u16, String) {
        self.holder
            .execute(
                "SELECT pg_advisory_unlock(hashtextextended('cockpit.ingest/' || $1, 0))",
                &[&self.org],
            )
            .await
            .expect("release the ingest lock");
        self.request.await.expect("the batch's task")
    }
}
