//! `cockpit bench`: the benchmarks of BENCHMARKS.md, run against databases of their own
//! (`cockpit_bench_<N>d`) on the configured server, loaded with the reference workload in
//! SQL (`sql/bench/workload.sql`). This module holds what the benches share (the bench
//! databases, the in-process service, an HTTP client); each bench has its own file, and
//! [`stats`] is the one place where figures are summarised.

use std::str::FromStr;
use std::time::Instant;

use crate::db::Pool;

use crate::db::{self, quote_ident, DbError};

mod ingest;
mod ingest_long;
mod live;
mod query;
mod refresh;
mod refresh_touch;
mod stats;
pub use ingest::ingest;
pub use ingest_long::ingest_long;
pub use live::{live, soak, LiveOptions, SoakOptions};
pub use query::query;
pub use refresh::{refresh, refresh_interval};

const WORKLOAD_SQL: &str = include_str!("../../sql/bench/workload.sql");
/// Reference rate: conversations a day, across the 10 organizations.
const PER_DAY: i32 = 200_000;
/// Conversations still active now.
const ACTIVE: i32 = 20_000;
/// Conversations recomputed per refresh while building the summary after a load.
const BUILD_CHUNK: i64 = 100_000;

/// Secret of the tokens the benches sign for their in-process service.
const SECRET: &str = "bench-secret-of-the-in-process-service";

/// The service, in process, on a free port of the loopback, serving `url`.
struct Service {
    port: u16,
    pool: Pool,
    hub: std::sync::Arc<crate::live::hub::Hub>,
    keys: crate::auth::Keys,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    async fn start(url: String, pool_size: usize, refresh_secs: u64) -> Result<Service, String> {
        let config = crate::config::Config {
            bind: "127.0.0.1:0"
                .parse()
                .map_err(|e: std::net::AddrParseError| e.to_string())?,
            refresh_interval: std::time::Duration::from_secs(refresh_secs),
            pool_size,
            ..crate::config::Config::new(url, SECRET)
        };
        let app = crate::http::Application::build(&config)
            .await
            .map_err(|e| e.to_string())?;
        let (port, pool, hub) = (app.port(), app.pool(), app.hub());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Service {
            port,
            pool,
            hub,
            keys: crate::auth::Keys::new(SECRET),
            stop,
            server,
        })
    }

    /// A token of `sub` in `org` with `role`, for an hour.
    fn token(&self, org: &str, sub: &str, role: crate::auth::TokenRole) -> String {
        self.keys
            .issue(org, sub, role, std::time::Duration::from_secs(3600))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

fn url_with_db(base: &str, name: &str) -> Result<String, String> {
    let config = tokio_postgres::Config::from_str(base).map_err(|e| e.to_string())?;
    Ok(db::url_of(&config, name))
}

async fn loaded_days(pool: &Pool) -> Option<i32> {
    let client = pool.get().await.ok()?;
    let row = client
        .query_opt("SELECT days FROM bench.loaded LIMIT 1", &[])
        .await
        .ok()??;
    row.get(0)
}

/// The bench database at `url`, created when missing, migrated, with the current workload
/// functions installed (replaced in place, so that a newer bench reuses an older load).
async fn open(url: &str) -> Result<Pool, String> {
    db::ensure_database(url).await.map_err(|e| e.to_string())?;
    // Loading 14 days takes minutes: no statement limit for the bench's own work.
    let pool = db::pool_with(url, 4, None).map_err(|e| e.to_string())?;
    db::migrate(&pool).await.map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(WORKLOAD_SQL)
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    drop(client);
    Ok(pool)
}

/// As `serve` keeps a database: earlier benches' marks refreshed, their dead rows vacuumed
/// (autovacuum may be off).
async fn keep(pool: &Pool) -> Result<(), String> {
    crate::live::refresher::refresh_once(pool)
        .await
        .map_err(|e| e.to_string())?;
    crate::live::refresher::upkeep(pool)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The name of the bench database of `days` days at `per_day` conversations a day.
fn bench_db(days: u32, per_day: i32) -> String {
    if per_day == PER_DAY {
        format!("cockpit_bench_{days}d")
    } else {
        format!("cockpit_bench_{days}d_{per_day}")
    }
}

/// A bench database with `days` of history at the reference rate, loaded unless already
/// there.
async fn prepare(base: &str, days: u32) -> Result<Pool, String> {
    prepare_sized(base, days, PER_DAY, ACTIVE).await
}

/// A bench database with `days` of history at `per_day` conversations a day (`active` of
/// them still active); a rate other than the reference one has a database of its own (the
/// benches' smoke tests use a tiny one).
async fn prepare_sized(base: &str, days: u32, per_day: i32, active: i32) -> Result<Pool, String> {
    let name = bench_db(days, per_day);
    let url = url_with_db(base, &name)?;
    let pool = open(&url).await?;
    if loaded_days(&pool).await == Some(days as i32) {
        keep(&pool).await?;
        println!("{name}: already loaded (refreshed, vacuumed)");
        return Ok(pool);
    }
    pool.close();
    // Start from an empty database: drop and create it again.
    let admin = maintenance(base).await?;
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        ))
        .await
        .map_err(|e| e.to_string())?;
    let pool = open(&url).await?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    println!("{name}: loading {days} day(s) of the reference workload…");
    client
        .execute(
            "SELECT bench.load($1, $2, $3)",
            &[&(days as i32), &per_day, &active],
        )
        .await
        .map_err(|e| e.to_string())?;
    let events: i64 = client
        .query_one("SELECT events FROM bench.loaded", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    println!(
        "{name}: {events} events loaded in {:.0} s; building the summary…",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let total: i64 = client
        .query_one("SELECT count(*) FROM cockpit.conversations", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let mut offset = 0;
    while offset < total {
        client
            .execute(
                "INSERT INTO cockpit.dirty_conversations (org_id, conversation_id)
                 SELECT org_id, conversation_id FROM cockpit.conversations
                  ORDER BY org_id, conversation_id OFFSET $1 LIMIT $2",
                &[&offset, &BUILD_CHUNK],
            )
            .await
            .map_err(|e| e.to_string())?;
        client
            .execute("SELECT cockpit.refresh_daily()", &[])
            .await
            .map_err(|e| e.to_string())?;
        offset += BUILD_CHUNK;
    }
    client
        .batch_execute("VACUUM ANALYZE")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{name}: summary built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(pool)
}

/// A session on the server's maintenance database (`postgres`), to create and drop bench
/// databases.
async fn maintenance(base: &str) -> Result<tokio_postgres::Client, String> {
    let url = url_with_db(base, "postgres")?;
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(admin)
}

/// A copy of the bench database of `days` at `per_day` (loaded first unless already there),
/// made afresh for one run: benches that add traffic leave the loaded database as it was,
/// so that every run starts from the same state (each run of `bench live` used to leave
/// ~500 more active conversations behind, and the statement slowed from run to run).
/// Its pool and URL.
async fn prepare_copy(
    base: &str,
    days: u32,
    per_day: i32,
    active: i32,
) -> Result<(Pool, String), String> {
    let loaded = prepare_sized(base, days, per_day, active).await?;
    loaded.close();
    let name = bench_db(days, per_day);
    let copy = format!("{name}_run");
    let admin = maintenance(base).await?;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    // Two statements: neither may run in a transaction block.
    for statement in [
        format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&copy)
        ),
        format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&copy),
            quote_ident(&name)
        ),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .map_err(|e| format!("copying {name}: {}", crate::db::DbError::from(e)))?;
    }
    println!(
        "{copy}: a fresh copy of {name} for this run ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let url = url_with_db(base, &copy)?;
    Ok((open(&url).await?, url))
}

/// A keep-alive HTTP/1.1 client of the in-process service (one connection per client
/// reused across requests, as a platform's sender would).
#[derive(Clone)]
struct HttpClient {
    port: u16,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<axum::body::Bytes>,
    >,
}

impl HttpClient {
    fn new(port: u16) -> Self {
        HttpClient {
            port,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        }
    }

    /// POSTs a JSON body with a bearer token; the body of a 200 answer, else an error.
    async fn post(&self, path: &str, token: &str, body: String) -> Result<String, String> {
        use http_body_util::BodyExt;
        let request = axum::http::Request::post(format!("http://127.0.0.1:{}{path}", self.port))
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(axum::body::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status != axum::http::StatusCode::OK {
            return Err(format!("{status}: {text}"));
        }
        Ok(text)
    }

    async fn post_events(&self, token: &str, body: String) -> Result<serde_json::Value, String> {
        let answer = self.post("/v1/events", token, body).await?;
        serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer}"))
    }

    async fn graphql(&self, token: &str, body: &str) -> Result<(), String> {
        let answer = self.post("/graphql", token, body.to_string()).await?;
        if answer.contains("\"errors\"") {
            return Err(answer.chars().take(300).collect());
        }
        Ok(())
    }
}
