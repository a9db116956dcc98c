//! PostgreSQL: the connection pool and the migrations embedded in the binary.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

pub mod definitions;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Key of the session advisory lock held while migrating, so that instances started
/// together migrate once.
const MIGRATION_LOCK_KEY: i64 = 0x636f_636b_7069_7401; // "cockpit" + 1

/// A database failure. Its text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error("bad DATABASE_URL: {0}")]
    Url(String),
    /// No connection could be had from the pool.
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    /// A definition file under `sql/` failed to apply.
    #[error("sql/{0}: {1}")]
    Definition(&'static str, String),
    /// The database answered something this code does not expect.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The pool could not be built.
    #[error("database pool setup: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
}

impl DbError {
    /// The server's SQLSTATE, when the server answered with an error.
    pub fn postgres_code(&self) -> Option<tokio_postgres::error::SqlState> {
        match self {
            DbError::Postgres(e) => e.code().cloned(),
            _ => None,
        }
    }
}

/// A PostgreSQL error with the server's code, message and detail (for logs only).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

/// Longest wait to establish a connection: a server that does not answer is an error, not
/// a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a pooled connection: past it the request answers 503, it never hangs.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `statement_timeout` of the service's sessions: a statement that runs longer is
/// stuck (a 50,000-event batch takes seconds); it backs up the cancellation of abandoned
/// requests. Migrations lift it for their own session.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(110);

/// The service's connection pool (deadpool's, which it derefs to), and how its sessions
/// reach PostgreSQL: directly, or through a transaction pooler.
#[derive(Clone)]
pub struct Pool {
    inner: deadpool_postgres::Pool,
    pooler: Option<Arc<TransactionPooler>>,
    statement_timeout: Option<Duration>,
}

impl std::ops::Deref for Pool {
    type Target = deadpool_postgres::Pool;

    fn deref(&self) -> &deadpool_postgres::Pool {
        &self.inner
    }
}

/// A pool behind a transaction pooler (PgBouncer with `pool_mode = transaction`): each
/// transaction may run on another server session, so nothing may outlive one. Statements
/// are not prepared under a name (a named statement would be left on a server session that
/// then serves others): each is sent unnamed with its parameter types, in one round trip
/// (`query_typed`). The types are learnt once per statement text on a direct connection,
/// which also carries what needs a session of its own (migrations, the upkeep's VACUUM and
/// their session locks).
struct TransactionPooler {
    /// A direct connection's URL (the listener's).
    direct_url: String,
    /// Parameter types by statement text.
    types: Mutex<HashMap<String, Arc<[Type]>>>,
}

impl TransactionPooler {
    async fn types(&self, sql: &str) -> Result<Arc<[Type]>, DbError> {
        if let Some(types) = self.types.lock().ok().and_then(|t| t.get(sql).cloned()) {
            return Ok(types);
        }
        let mut config = tokio_postgres::Config::from_str(&self.direct_url)
            .map_err(|e| DbError::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let types: Arc<[Type]> = client.prepare(sql).await?.params().into();
        drop(client);
        let _ = driver.await;
        if let Ok(mut known) = self.types.lock() {
            known.insert(sql.to_string(), types.clone());
        }
        Ok(types)
    }
}

impl Pool {
    /// Whether this pool goes through a transaction pooler.
    pub fn through_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// A pool of one direct session for work that needs a session of its own (session
    /// locks and settings, VACUUM): this pool itself unless it goes through a transaction
    /// pooler.
    pub fn direct(&self) -> Result<Pool, DbError> {
        match &self.pooler {
            None => Ok(self.clone()),
            Some(pooler) => pool_with(&pooler.direct_url, 1, self.statement_timeout),
        }
    }
}

/// A pool of at most `size` connections to `url`, with bounded connect, checkout and
/// statement times.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    pool_with(url, size, Some(STATEMENT_TIMEOUT))
}

/// [`pool_with`] for `url` behind a transaction pooler (PgBouncer, `pool_mode =
/// transaction`); `direct_url` reaches the same database without it.
pub fn pool_through_pooler(
    url: &str,
    direct_url: &str,
    size: usize,
    statement_timeout: Option<Duration>,
) -> Result<Pool, DbError> {
    let mut pool = pool_with(url, size, statement_timeout)?;
    pool.pooler = Some(Arc::new(TransactionPooler {
        direct_url: direct_url.to_string(),
        types: Mutex::default(),
    }));
    Ok(pool)
}

/// [`pool`] with another statement limit (`None`: none, for bulk work such as the bench's
/// loads).
pub fn pool_with(
    url: &str,
    size: usize,
    statement_timeout: Option<Duration>,
) -> Result<Pool, DbError> {
    let mut config =
        tokio_postgres::Config::from_str(url).map_err(|e| DbError::Url(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // A startup option: the session default, which RESET returns to.
    let options = format!(
        "{} -c statement_timeout={}",
        config.get_options().unwrap_or(""),
        statement_timeout.map_or(0, |t| t.as_millis())
    );
    config.options(options.trim());
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let inner = deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()?;
    Ok(Pool {
        inner,
        pooler: None,
        statement_timeout,
    })
}

/// Runs `work` on a pooled connection. Should the caller stop waiting before `work` is done
/// (its client went away, its request timed out), the statement is cancelled in
/// PostgreSQL and the connection is closed instead of returned to the pool: no other
/// request ever queues behind work that nobody waits for, or behind a frozen socket.
pub async fn run<T>(
    pool: &Pool,
    work: impl AsyncFnOnce(&deadpool_postgres::Client) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let checkout = Checkout::new(pool.get().await?);
    let result = work(checkout.client()).await;
    checkout.finish();
    result
}

/// The rows of one prepared (cached) statement, run through [`run`].
pub async fn query(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    run(pool, async |client| {
        query_on(pool, client, sql, params).await
    })
    .await
}

/// The rows of one statement on a client of `pool` (within [`run`]): prepared and cached
/// on a direct pool, sent unnamed with its parameter types through a transaction pooler.
pub async fn query_on(
    pool: &Pool,
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    match &pool.pooler {
        None => {
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        }
        Some(pooler) => {
            let types = pooler.types(sql).await?;
            if types.len() != params.len() {
                return Err(DbError::Unexpected(format!(
                    "a statement of {} parameters given {}",
                    types.len(),
                    params.len()
                )));
            }
            let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                .iter()
                .zip(types.iter())
                .map(|(value, ty)| (*value, ty.clone()))
                .collect();
            Ok(client.query_typed(sql, &typed).await?)
        }
    }
}

/// The rows of one prepared (cached) statement run with its generic plan, for a statement
/// whose custom plans PostgreSQL would never give up although they cost more to make than
/// to run: the live re-read of a few agents' rows (`agent_id = ANY ($5)`) was planned anew
/// on every call, 1.5–5 ms of planning for 0.4 ms of execution (issue 22). The setting is
/// local to a transaction of its own, so the connection returns to the pool unchanged.
pub async fn query_generic(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    if pool.pooler.is_some() {
        // Unnamed statements have no plan to keep: the setting would change nothing.
        return query(pool, sql, params).await;
    }
    run(pool, async |client| {
        let statement = client.prepare_cached(sql).await?;
        client
            .batch_execute("BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
        match client.query(&statement, params).await {
            Ok(rows) => {
                client.batch_execute("COMMIT").await?;
                Ok(rows)
            }
            Err(e) => {
                client.batch_execute("ROLLBACK").await?;
                Err(e.into())
            }
        }
    })
    .await
}

/// The one row a statement answers (an error when there is none).
pub async fn query_one(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<tokio_postgres::Row, DbError> {
    query(pool, sql, params)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::Unexpected("a statement answered no row".into()))
}

/// A pooled connection that is cancelled and discarded unless finished.
struct Checkout {
    client: Option<deadpool_postgres::Client>,
    cancel: tokio_postgres::CancelToken,
}

impl Checkout {
    fn new(client: deadpool_postgres::Client) -> Self {
        Checkout {
            cancel: client.cancel_token(),
            client: Some(client),
        }
    }

    fn client(&self) -> &deadpool_postgres::Client {
        self.client
            .as_ref()
            .expect("the client is there until finish or drop")
    }

    /// The work is over (done or failed): the connection goes back to the pool.
    fn finish(mut self) {
        self.client.take();
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // Out of the pool; closed once the cancel request has been sent (bounded: the
        // server may be unreachable, which is maybe why the caller gave up).
        let detached = deadpool_postgres::Object::take(client);
        let cancel = self.cancel.clone();
        tracing::warn!("a database call was abandoned by its caller; cancelling it");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let sent = tokio::time::timeout(CONNECT_TIMEOUT, cancel.cancel_query(NoTls)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::warn!("the cancel request of an abandoned call did not go through");
                }
                drop(detached);
            });
        }
    }
}

/// Whether an error is the pool's timeout (no connection could be had in time).
pub fn is_pool_timeout(e: &DbError) -> bool {
    matches!(e, DbError::Pool(deadpool_postgres::PoolError::Timeout(_)))
}

/// Whether the database could not serve now rather than failed: no connection in time or
/// none could be made (the server unreachable, refusing, shutting down), the connection
/// lost mid-statement, a statement cancelled by its time limit, the server out of
/// connections. Callers answer "busy, try again" for these; anything else is a fault.
pub fn is_unavailable(e: &DbError) -> bool {
    match e {
        // Every pool error is about getting a connection: in time, or at all.
        DbError::Pool(_) => true,
        DbError::Postgres(e) => {
            if e.is_closed() {
                return true;
            }
            match e.code() {
                // 57014 query_canceled (statement_timeout, or a cancel request), 57P0x the
                // server shutting down or starting, 53300 too many connections, 53400
                // configuration limit, class 08 connection exceptions.
                Some(code) => {
                    matches!(
                        code.code(),
                        "57014" | "57P01" | "57P02" | "57P03" | "53300" | "53400"
                    ) || code.code().starts_with("08")
                }
                // No answer of the server: an I/O failure on the socket.
                None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
            }
        }
        _ => false,
    }
}

/// Creates the database named in `url` when it does not exist yet, connecting to the
/// server's `postgres` database to do so. A newcomer's first `serve` just works.
pub async fn ensure_database(url: &str) -> Result<(), DbError> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| DbError::Url(e.to_string()))?;
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Ok(());
    };
    // Try the database itself first: most of the time it exists.
    if config.connect(NoTls).await.is_ok() {
        return Ok(());
    }
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let (client, connection) = maintenance.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        match client.batch_execute(&sql).await {
            Ok(()) => tracing::info!(database = %name, "created database"),
            // Created concurrently by another instance: fine.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Runs the pending migrations, then applies the definitions of `sql/` that changed
/// ([`definitions`]), under a session advisory lock: instances started together migrate
/// once.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    migrate_until(pool, None).await
}

/// The migrations up to version `target` only, and no definitions: what a release before
/// `sql/` held its functions, views and triggers left (63a4113: V1–V16). For the upgrade
/// test; the migrations are the ones that landed, refinery checks their checksums.
pub async fn migrate_history_only(pool: &Pool, target: u32) -> Result<(), DbError> {
    migrate_until(pool, Some(target)).await
}

async fn migrate_until(pool: &Pool, target: Option<u32>) -> Result<(), DbError> {
    // A session lock and session settings: on a session of its own.
    let direct = pool.direct()?;
    let mut client = direct.get().await?;
    // A migration may build an index over millions of rows: no statement time limit here.
    client.batch_execute("SET statement_timeout = 0").await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let runner = embedded::migrations::runner().set_grouped(false);
    let runner = match target {
        Some(version) => runner.set_target(refinery::Target::Version(version)),
        None => runner,
    };
    let result = match runner.run_async(&mut **client).await {
        Ok(report) => {
            for migration in report.applied_migrations() {
                tracing::info!(version = migration.version(), name = %migration.name(), "applied migration");
            }
            match target {
                Some(_) => Ok(()),
                None => definitions::apply(&client).await.map(|applied| {
                    for file in &applied.files {
                        tracing::debug!(file = %format!("sql/{file}"), "applied definition");
                    }
                    if !applied.files.is_empty() {
                        tracing::info!(
                            files = applied.files.len(),
                            "applied the changed definitions of sql/"
                        );
                    }
                    for object in &applied.retired {
                        tracing::info!(%object, "retired: no definition declares it");
                    }
                }),
            }
        }
        Err(e) => Err(e.into()),
    };
    // On a Citus cluster, the tables not yet distributed are (sql/scale/distribute.sql).
    let result = match result {
        Ok(()) if target.is_none() => distribute(&client).await,
        other => other,
    };
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    client.batch_execute("RESET statement_timeout").await?;
    result
}

/// Distributes the tables when the database has the citus extension (nothing otherwise).
async fn distribute(client: &tokio_postgres::Client) -> Result<(), DbError> {
    let row = client
        .query_one(include_str!("../../sql/queries/distribute.sql"), &[])
        .await?;
    let distributed: i32 = row.get(0);
    if distributed > 0 {
        tracing::info!(
            tables = distributed,
            "distributed the tables on the Citus cluster"
        );
    }
    Ok(())
}

/// A fingerprint of the schema this binary makes: every migration and every definition
/// (the tests rebuild their template database when it changes).
pub fn schema_fingerprint() -> String {
    // FNV-1a: stable across runs and Rust versions.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for m in embedded::migrations::runner().get_migrations() {
        feed(m.name().as_bytes());
        feed(m.sql().unwrap_or("").as_bytes());
    }
    for d in definitions::DEFINITIONS {
        feed(d.path.as_bytes());
        feed(d.sql.as_bytes());
    }
    format!("{hash:016x}")
}

/// The newest migration version embedded in this binary.
pub fn latest_migration_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// Whether the database answers and has every embedded migration applied.
pub async fn is_ready(pool: &Pool) -> Result<bool, DbError> {
    run(pool, async |client| {
        let row = client
            .query_opt("SELECT max(version) FROM refinery_schema_history", &[])
            .await;
        match row {
            Ok(Some(row)) => {
                Ok(row.get::<_, Option<i32>>(0).map(i64::from) >= Some(latest_migration_version()))
            }
            Ok(None) => Ok(false),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The SQL of `sql/queries/summary_drift.sql` (tests and `bench --verify`).
pub const SUMMARY_DRIFT_SQL: &str = include_str!("../../sql/queries/summary_drift.sql");

/// The URL of database `dbname` on the server `config` points at.
pub fn url_of(config: &tokio_postgres::Config, dbname: &str) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.to_string_lossy().replace('/', "%2F"),
        None => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{dbname}")
}

/// `name` quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
