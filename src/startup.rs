//! The commands that start the service (`serve`, `demo`) or prepare its database
//! (`migrate`): finding a database for `cockpit demo` on a machine where none runs, and
//! start-up errors that say what was tried and what to do.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::auth::{Keys, TokenRole};
use crate::config::{redacted, Config, DEFAULT_DATABASE_URL};
use crate::http::{shutdown_signal, Application, StartError};
use crate::pgcluster::{self, Throwaway};

/// `cockpit serve`: migrate, refresh once, serve until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config)
        .await
        .map_err(|e| anyhow::Error::msg(explain(&config, &e)))?;
    tracing::info!(address = %config.bind.ip(), port = app.port(), "serving");
    app.run_until_stopped(shutdown_signal())
        .await
        .context("serving")
}

/// `cockpit migrate`: create the database when missing and apply pending migrations.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let failed = |e: crate::db::DbError| {
        anyhow::anyhow!(
            "cannot migrate the database at {} ({e}). Check that PostgreSQL runs there and \
             that the user may create databases and tables, or set DATABASE_URL \
             (--database-url).",
            redacted(database_url)
        )
    };
    crate::db::ensure_database(database_url)
        .await
        .map_err(failed)?;
    let pool = crate::db::pool(database_url, 1).map_err(failed)?;
    crate::db::migrate(&pool).await.map_err(failed)?;
    println!(
        "database migrated to version {}",
        crate::db::latest_migration_version()
    );
    Ok(())
}

/// What `cockpit demo` was asked for.
#[derive(Debug)]
pub struct DemoOptions {
    /// DATABASE_URL or --database-url, when given.
    pub database_url: Option<String>,
    /// Listen address.
    pub bind: SocketAddr,
    /// The tokens' secret, when given (else a random one for this run).
    pub jwt_secret: Option<String>,
    /// Interval of the daily-column refresh.
    pub refresh_interval: Duration,
}

/// `cockpit demo`: a demo organization seeded and fed with live traffic, served, with a
/// link to the screen and tokens printed first.
pub async fn demo(options: DemoOptions) -> anyhow::Result<()> {
    let jwt_secret = options.jwt_secret.unwrap_or_else(|| {
        use rand::Rng;
        let bytes: [u8; 24] = rand::thread_rng().gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let database = demo_database(options.database_url, DEFAULT_DATABASE_URL)
        .await
        .map_err(anyhow::Error::msg)?;
    if let Some(cluster) = &database.throwaway {
        println!(
            "No PostgreSQL answered at {DEFAULT_DATABASE_URL}: started a throwaway cluster \
             from {} in {} (removed when the demo stops).",
            cluster.bindir.display(),
            cluster.dir.display()
        );
    }
    let config = Config {
        bind: options.bind,
        refresh_interval: options.refresh_interval,
        ..Config::new(database.url, jwt_secret.clone())
    };
    let app = Application::build(&config)
        .await
        .map_err(|e| anyhow::Error::msg(explain(&config, &e)))?;
    crate::demo::seed(&app.pool())
        .await
        .context("seeding the demo")?;
    tokio::spawn(crate::demo::run_traffic(app.pool()));
    let keys = Keys::new(&jwt_secret);
    let ttl = Duration::from_secs(12 * 3600);
    let supervisor = keys.issue(
        crate::demo::ORG,
        crate::demo::SUPERVISOR,
        TokenRole::Supervisor,
        ttl,
    );
    let admin = keys.issue(crate::demo::ORG, crate::demo::ADMIN, TokenRole::Admin, ttl);
    let agent = keys.issue(crate::demo::ORG, "okan", TokenRole::Agent, ttl);
    let service = keys.issue(crate::demo::ORG, "demo-platform", TokenRole::Service, ttl);
    let base = format!("http://{}:{}", config.bind.ip(), app.port());
    println!(
        "\nChat Cockpit demo: organization `demo`, products mobil, web, kargo; live traffic every second.\n\
         \n  The cockpit screen (signed in as the supervisor Ayşe Erdoğan; open it in a browser):\n\
         \n    {base}/#token={supervisor}\n\
         \n  The token stays in the URL fragment, which the browser never sends to a server.\n\
         \n  GraphiQL        {base}/graphql   (opened from the screen, it carries the token)\n\
         \x20 Subscriptions   ws://{}:{}/graphql/ws   (token in connection_init: {{\"Authorization\": \"Bearer <token>\"}})\n\
         \x20 Metrics         {base}/metrics\n\
         \n  Tokens (paste one on the screen's sign-in, or send it as Authorization: Bearer <token>):\n\
         \x20 Supervisor (Ayşe Erdoğan): {supervisor}\n\
         \x20 Admin (Mehmet Doğan):      {admin}\n\
         \x20 Agent (Okan Yılmaz):       {agent}\n\
         \x20 Platform (ingest):         {service}\n\
         \n  Try:\n  curl -s {base}/graphql -H 'Authorization: Bearer {supervisor}' \\\n\
         \x20   -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"query\": \"{{ cockpit(productId: \\\"mobil\\\") {{ day refreshedAt online {{ agent {{ name }} activeConversations avgFirstResponseSeconds resolvedConversations }} }} }}\"}}'\n\
         \n  Ctrl-C stops the demo.\n",
        config.bind.ip(),
        app.port()
    );
    app.run_until_stopped(shutdown_signal())
        .await
        .context("serving")
}

/// How long a probe of the default server may take before it counts as "nothing there".
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The database a demo runs on.
#[derive(Debug)]
pub struct DemoDatabase {
    /// Connection URL.
    pub url: String,
    /// The cluster started for this run, when nothing answered at the default.
    pub throwaway: Option<Throwaway>,
}

/// Whether a PostgreSQL server answers at `url` (its maintenance database); why not.
pub async fn server_answers(url: &str) -> Result<(), String> {
    use std::str::FromStr;
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    config.dbname("postgres").connect_timeout(PROBE_TIMEOUT);
    match tokio::time::timeout(PROBE_TIMEOUT, config.connect(tokio_postgres::NoTls)).await {
        Ok(Ok((_client, connection))) => {
            drop(connection);
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
}

/// The demo's database: `explicit` (DATABASE_URL or --database-url) as it is; otherwise
/// `default_url` when a server answers there, else a throwaway cluster started from the
/// PostgreSQL binaries of this machine (removed when the process exits).
pub async fn demo_database(
    explicit: Option<String>,
    default_url: &str,
) -> Result<DemoDatabase, String> {
    if let Some(url) = explicit {
        return Ok(DemoDatabase {
            url,
            throwaway: None,
        });
    }
    let why = match server_answers(default_url).await {
        Ok(()) => {
            return Ok(DemoDatabase {
                url: default_url.to_string(),
                throwaway: None,
            })
        }
        Err(why) => why,
    };
    tracing::info!(url = %redacted(default_url), reason = %why, "no PostgreSQL at the default; starting a throwaway cluster");
    let started = tokio::task::spawn_blocking(|| pgcluster::start_throwaway("demo"))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match started {
        Ok(cluster) => Ok(DemoDatabase {
            url: cluster
                .url
                .strip_suffix("/postgres")
                .map(|base| format!("{base}/cockpit"))
                .unwrap_or_else(|| cluster.url.clone()),
            throwaway: Some(cluster),
        }),
        Err(e) => Err(format!(
            "no PostgreSQL answered at {} ({why}), and no throwaway cluster could be started \
             from this machine's PostgreSQL binaries ({e}). Install PostgreSQL \
             (apt-get install postgresql) so the demo can start its own, start the server, \
             or set DATABASE_URL to a server where the user may create databases.",
            redacted(default_url)
        )),
    }
}

/// A start-up failure of `serve` or `demo` in words: what was tried, what to do.
pub fn explain(config: &Config, error: &StartError) -> String {
    match error {
        StartError::Db(e) => format!(
            "cannot prepare the database at {} ({e}). Check that PostgreSQL runs there and \
             that the user may create databases and tables, or point DATABASE_URL \
             (--database-url) at another server.",
            redacted(&config.database_url)
        ),
        StartError::Config(message) => message.clone(),
        StartError::Bind(e) => format!(
            "cannot listen on {} ({e}). Stop what uses it or choose another address with \
             COCKPIT_BIND (--bind).",
            config.bind
        ),
    }
}
