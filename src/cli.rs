//! The command line: `cockpit serve | demo | bench | migrate | token | schema`. Flags and
//! their environment variables are declared here once; the commands themselves live in
//! [`crate::startup`] (serve, demo, migrate) and [`crate::bench`].

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::{parse_ttl, Keys, TokenRole};
use crate::config::{
    Config, PoolMode, DEFAULT_BIND, DEFAULT_DATABASE_URL, DEFAULT_GRAPHQL_BODY_LIMIT,
    DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_PEER, DEFAULT_POOL_SIZE, DEFAULT_REFRESH_SECS,
    DEFAULT_REQUEST_TIMEOUT_SECS, DEFAULT_WS_INIT_TIMEOUT_SECS,
};
use crate::startup;

#[derive(Parser)]
#[command(
    name = "cockpit",
    version,
    about = "Chat Cockpit: a live cockpit of support agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then serve the HTTP API (the default command).
    Serve(ServeArgs),
    /// Show the product alive: a demo organization with live traffic, served, with tokens.
    Demo(DemoArgs),
    /// Benchmarks of BENCHMARKS.md, on bench databases of their own.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Print a signed bearer token.
    Token(TokenArgs),
    /// Print the GraphQL schema (SDL).
    Schema,
}

#[derive(Args)]
struct DbArgs {
    /// PostgreSQL connection URL; the database is created when missing.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Parser)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Where the listener connects for LISTEN/NOTIFY (default: the database URL).
    #[arg(long, env = "COCKPIT_LISTEN_DATABASE_URL")]
    listen_database_url: Option<String>,
    /// How the pool's connections reach PostgreSQL: `transaction` through a transaction
    /// pooler such as PgBouncer (needs a direct `--listen-database-url`).
    #[arg(long, env = "COCKPIT_POOL_MODE", value_enum, default_value_t = PoolMode::Session)]
    pool_mode: PoolMode,
    /// Address to listen on.
    #[arg(long, env = "COCKPIT_BIND", default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// HS256 secret of the bearer tokens (required: there is no default secret).
    #[arg(long, env = "COCKPIT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Seconds between refreshes of the daily columns.
    #[arg(long, env = "COCKPIT_REFRESH_SECS", default_value_t = DEFAULT_REFRESH_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    refresh_secs: u64,
    /// Connections in the database pool.
    #[arg(long, env = "COCKPIT_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE)]
    pool_size: usize,
    /// Longest time a request other than ingest may take before it answers 503.
    #[arg(long, env = "COCKPIT_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_secs: u64,
    /// `statement_timeout` of the pool's sessions, seconds (through a transaction pooler,
    /// set it on the role instead: README).
    #[arg(long, env = "COCKPIT_STATEMENT_TIMEOUT_SECS", default_value_t = crate::db::STATEMENT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    statement_timeout_secs: u64,
    /// Largest body of a GraphQL request (and WebSocket message), in bytes.
    #[arg(long, env = "COCKPIT_GRAPHQL_BODY_LIMIT", default_value_t = DEFAULT_GRAPHQL_BODY_LIMIT)]
    graphql_body_limit: usize,
    /// Seconds a WebSocket may wait before sending `connection_init` (then 4408).
    #[arg(long, env = "COCKPIT_WS_INIT_TIMEOUT_SECS", default_value_t = DEFAULT_WS_INIT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    ws_init_timeout_secs: u64,
    /// Seconds after which a connection with nothing read or written is closed.
    #[arg(long, env = "COCKPIT_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(2..))]
    idle_timeout_secs: u64,
    /// Seconds a request head (a WebSocket upgrade's included) may take to arrive whole.
    #[arg(long, env = "COCKPIT_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
    /// Most client connections open at once (lowered to fit the open-file limit).
    #[arg(long, env = "COCKPIT_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(usize))]
    max_connections: usize,
    /// Most client connections one peer address may hold (0: no limit, for a service
    /// behind a proxy, where every client has the proxy's address).
    #[arg(long, env = "COCKPIT_MAX_CONNECTIONS_PER_PEER", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    max_connections_per_peer: usize,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// P1/P2/P8: the refresh of the daily columns at several history sizes, side by side.
    Refresh(BenchRefreshArgs),
    /// P6: POST /v1/events with concurrent senders, against raw batched INSERTs.
    Ingest(BenchIngestArgs),
    /// P3/P4: the cockpit GraphQL query against the same SQL run directly, quiet and
    /// during refreshes.
    Query(BenchQueryArgs),
    /// P5/P10: live pushes to WebSocket subscribers of two `serve` instances while
    /// statuses change and traffic is ingested; status changes during heavy ingest.
    Live(BenchLiveArgs),
    /// P7: memory of two `serve` instances with subscribers under reference traffic.
    Soak(BenchSoakArgs),
}

#[derive(Args)]
struct BenchSoakArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Subscribers, spread over the two instances.
    #[arg(long, default_value_t = 1000)]
    subs: usize,
    /// Minutes of reference traffic (P7 asks 30).
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Conversations a day of the bench database (a smaller one for a smoke run).
    #[arg(long, default_value_t = 200_000, hide = true)]
    per_day: i32,
    /// The cockpit binary to run as the two instances (default: this one).
    #[arg(long, hide = true)]
    binary: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct BenchLiveArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Subscribers, spread over the two instances (the stretch target: 10000).
    #[arg(long, default_value_t = 1000)]
    subs: usize,
    /// Status changes (one agent each, in turn).
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Status changes a second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of the P10 phase (0: none).
    #[arg(long, default_value_t = 10)]
    p10_seconds: u64,
    /// Conversations a day of the bench database (a smaller one for a smoke run).
    #[arg(long, default_value_t = 200_000, hide = true)]
    per_day: i32,
    /// The cockpit binary to run as the two instances (default: this one).
    #[arg(long, hide = true)]
    binary: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct BenchQueryArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Conversations a day of the bench database (a smaller one for a smoke run).
    #[arg(long, default_value_t = 200_000, hide = true)]
    per_day: i32,
}

#[derive(Args)]
struct BenchIngestArgs {
    #[command(flatten)]
    db: DbArgs,
    /// History of the bench database, in days (1 or 14, loaded when missing).
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// P9 instead: one 50,000-event conversation in one batch, then single events into it
    /// against a fresh conversation.
    #[arg(long)]
    long: bool,
}

#[derive(Args)]
struct BenchRefreshArgs {
    #[command(flatten)]
    db: DbArgs,
    /// History sizes in days (repeat the flag); loaded once, reused afterwards.
    #[arg(long = "days", default_values_t = [1u32, 14])]
    days: Vec<u32>,
    /// Steady-state cycles (one minute of reference traffic, then a refresh).
    #[arg(long, default_value_t = 12)]
    cycles: usize,
    /// Also re-send batches (duplicates) and compare the summary with a full recompute.
    #[arg(long)]
    verify: bool,
    /// P11 instead: a refresh every N seconds at the reference traffic (1-day database),
    /// for `cycles` intervals; the refresh's share of one core.
    #[arg(long)]
    interval: Option<u64>,
}

#[derive(Args)]
struct DemoArgs {
    /// PostgreSQL connection URL; when unset, the local server at the embedded default, or
    /// else a throwaway cluster started for this run.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "COCKPIT_BIND", default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// HS256 secret of the tokens; a random one for this run when not set.
    #[arg(long, env = "COCKPIT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Seconds between refreshes of the daily columns (short, to watch them move).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    refresh_secs: u64,
}

#[derive(Args)]
struct TokenArgs {
    /// Organization id (`org` claim).
    #[arg(long)]
    org: String,
    /// Agent id or service name (`sub` claim).
    #[arg(long)]
    sub: String,
    /// admin, supervisor, agent or service.
    #[arg(long)]
    role: TokenRole,
    /// Lifetime, e.g. 90s, 30m, 8h, 7d.
    #[arg(long, default_value = "8h", value_parser = parse_ttl)]
    ttl: Duration,
    /// HS256 secret to sign with.
    #[arg(long, env = "COCKPIT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
}

/// Parses the command line and runs the command; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init_tracing();
    let command = match cli.command {
        Some(command) => command,
        None => Command::Serve(ServeArgs::parse_from(["cockpit"])),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let bench = |outcome: Result<(), String>| outcome.map_err(anyhow::Error::msg);
    match command {
        Command::Serve(args) => startup::serve(args.config()?).await,
        Command::Demo(args) => {
            startup::demo(startup::DemoOptions {
                database_url: args.database_url,
                bind: args.bind,
                jwt_secret: args.jwt_secret.filter(|s| !s.is_empty()),
                refresh_interval: Duration::from_secs(args.refresh_secs),
            })
            .await
        }
        Command::Bench(BenchCommand::Query(args)) => bench(
            crate::bench::query(
                &args.db.database_url,
                args.clients,
                args.seconds,
                args.per_day,
            )
            .await,
        ),
        Command::Bench(BenchCommand::Live(args)) => bench(
            crate::bench::live(
                &args.db.database_url,
                crate::bench::LiveOptions {
                    subs: args.subs,
                    changes: args.changes,
                    rate: args.rate,
                    p10_seconds: args.p10_seconds,
                    per_day: args.per_day,
                    binary: args.binary,
                },
            )
            .await,
        ),
        Command::Bench(BenchCommand::Soak(args)) => bench(
            crate::bench::soak(
                &args.db.database_url,
                crate::bench::SoakOptions {
                    subs: args.subs,
                    minutes: args.minutes,
                    per_day: args.per_day,
                    binary: args.binary,
                },
            )
            .await,
        ),
        Command::Bench(BenchCommand::Ingest(args)) if args.long => {
            bench(crate::bench::ingest_long(&args.db.database_url).await)
        }
        Command::Bench(BenchCommand::Ingest(args)) => bench(
            crate::bench::ingest(&args.db.database_url, args.days, args.senders, args.seconds)
                .await,
        ),
        Command::Bench(BenchCommand::Refresh(BenchRefreshArgs {
            db,
            interval: Some(interval),
            cycles,
            ..
        })) => bench(crate::bench::refresh_interval(&db.database_url, interval, cycles).await),
        Command::Bench(BenchCommand::Refresh(args)) => bench(
            crate::bench::refresh(&args.db.database_url, &args.days, args.cycles, args.verify)
                .await,
        ),
        Command::Migrate(args) => startup::migrate(&args.database_url).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            crate::auth::check_secret(&args.jwt_secret).map_err(anyhow::Error::msg)?;
            let keys = Keys::new(&args.jwt_secret);
            println!("{}", keys.issue(&args.org, &args.sub, args.role, args.ttl));
            Ok(())
        }
    }
}

impl ServeArgs {
    /// The configuration these flags and variables describe.
    fn config(self) -> anyhow::Result<Config> {
        let jwt_secret = self.jwt_secret.filter(|s| !s.is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "COCKPIT_JWT_SECRET is not set: `serve` needs the HS256 secret of the bearer \
                 tokens (set the variable or pass --jwt-secret); there is no default secret"
            )
        })?;
        if self.pool_mode == PoolMode::Transaction && self.listen_database_url.is_none() {
            anyhow::bail!(
                "COCKPIT_POOL_MODE=transaction needs COCKPIT_LISTEN_DATABASE_URL: a direct \
                 connection to the same database (a transaction pooler cannot carry LISTEN, \
                 the migrations' session lock or VACUUM)"
            );
        }
        Ok(Config {
            listen_url: self.listen_database_url,
            pool_mode: self.pool_mode,
            bind: self.bind,
            refresh_interval: Duration::from_secs(self.refresh_secs),
            pool_size: self.pool_size,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            graphql_body_limit: self.graphql_body_limit,
            ws_init_timeout: Duration::from_secs(self.ws_init_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            ..Config::new(self.db.database_url, jwt_secret)
        })
    }
}
