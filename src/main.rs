//! `cockpit`: the Chat Cockpit service and its tools.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cockpit::auth::{parse_ttl, Keys, TokenRole};
use cockpit::config::{
    Config, DEFAULT_BIND, DEFAULT_DATABASE_URL, DEFAULT_GRAPHQL_BODY_LIMIT, DEFAULT_POOL_SIZE,
    DEFAULT_REFRESH_SECS, DEFAULT_REQUEST_TIMEOUT_SECS, DEFAULT_WS_INIT_TIMEOUT_SECS,
};
use cockpit::http::{shutdown_signal, Application};
use cockpit::{db, startup};
use tracing_subscriber::EnvFilter;

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
    /// Largest body of a GraphQL request (and WebSocket message), in bytes.
    #[arg(long, env = "COCKPIT_GRAPHQL_BODY_LIMIT", default_value_t = DEFAULT_GRAPHQL_BODY_LIMIT)]
    graphql_body_limit: usize,
    /// Seconds a WebSocket may wait before sending `connection_init` (then 4408).
    #[arg(long, env = "COCKPIT_WS_INIT_TIMEOUT_SECS", default_value_t = DEFAULT_WS_INIT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    ws_init_timeout_secs: u64,
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
}

#[derive(Args)]
struct BenchQueryArgs {
    /// Server to use (the 1-day bench database, loaded when missing).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Args)]
struct BenchIngestArgs {
    /// Server to use (the 1-day bench database, loaded when missing).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
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
    /// Server to use (the database name is replaced by cockpit_bench_<N>d).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// History sizes in days (repeat the flag); loaded once, reused afterwards.
    #[arg(long = "days", default_values_t = [1u32, 14])]
    days: Vec<u32>,
    /// Steady-state cycles (one minute of reference traffic, then a refresh).
    #[arg(long, default_value_t = 12)]
    cycles: usize,
    /// Also re-send batches (duplicates) and compare the summary with a full recompute.
    #[arg(long)]
    verify: bool,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
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
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Bench(BenchCommand::Query(args)) => {
            cockpit::bench::query(&args.database_url, args.clients, args.seconds).await
        }
        Command::Bench(BenchCommand::Ingest(args)) if args.long => {
            cockpit::bench::ingest_long(&args.database_url).await
        }
        Command::Bench(BenchCommand::Ingest(args)) => {
            cockpit::bench::ingest(&args.database_url, args.days, args.senders, args.seconds).await
        }
        Command::Bench(BenchCommand::Refresh(args)) => {
            cockpit::bench::refresh(&args.database_url, &args.days, args.cycles, args.verify).await
        }
        Command::Migrate(args) => {
            let failed = |e: db::DbError| {
                format!(
                    "cannot migrate the database at {} ({e}). Check that PostgreSQL runs \
                     there and that the user may create databases and tables, or set \
                     DATABASE_URL (--database-url).",
                    startup::redacted(&args.database_url)
                )
            };
            db::ensure_database(&args.database_url)
                .await
                .map_err(failed)?;
            let pool = db::pool(&args.database_url, 1).map_err(failed)?;
            db::migrate(&pool).await.map_err(failed)?;
            println!(
                "database migrated to version {}",
                db::latest_migration_version()
            );
            Ok(())
        }
        Command::Schema => {
            print!("{}", cockpit::graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            let keys = Keys::new(&args.jwt_secret);
            println!("{}", keys.issue(&args.org, &args.sub, args.role, args.ttl));
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let jwt_secret = args.jwt_secret.filter(|s| !s.is_empty()).ok_or(
        "COCKPIT_JWT_SECRET is not set: `serve` needs the HS256 secret of the bearer tokens \
         (set the variable or pass --jwt-secret); there is no default secret",
    )?;
    let config = Config {
        listen_url: args.listen_database_url,
        bind: args.bind,
        refresh_interval: Duration::from_secs(args.refresh_secs),
        pool_size: args.pool_size,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        graphql_body_limit: args.graphql_body_limit,
        ws_init_timeout: Duration::from_secs(args.ws_init_timeout_secs),
        ..Config::new(args.db.database_url, jwt_secret)
    };
    let app = Application::build(&config)
        .await
        .map_err(|e| startup::explain(&config, &e))?;
    tracing::info!(address = %config.bind.ip(), port = app.port(), "serving");
    app.run_until_stopped(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let jwt_secret = args
        .jwt_secret
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            use rand::Rng;
            let bytes: [u8; 24] = rand::thread_rng().gen();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
    let database = startup::demo_database(args.database_url, DEFAULT_DATABASE_URL).await?;
    if let Some(cluster) = &database.throwaway {
        println!(
            "No PostgreSQL answered at {DEFAULT_DATABASE_URL}: started a throwaway cluster \
             from {} in {} (removed when the demo stops).",
            cluster.bindir.display(),
            cluster.dir.display()
        );
    }
    let config = Config {
        bind: args.bind,
        refresh_interval: Duration::from_secs(args.refresh_secs),
        ..Config::new(database.url, jwt_secret.clone())
    };
    let app = Application::build(&config)
        .await
        .map_err(|e| startup::explain(&config, &e))?;
    cockpit::demo::seed(&app.pool())
        .await
        .map_err(|e| format!("seeding the demo: {e}"))?;
    tokio::spawn(cockpit::demo::run_traffic(app.pool()));
    let keys = Keys::new(&jwt_secret);
    let ttl = Duration::from_secs(12 * 3600);
    let supervisor = keys.issue(
        cockpit::demo::ORG,
        cockpit::demo::SUPERVISOR,
        TokenRole::Supervisor,
        ttl,
    );
    let admin = keys.issue(
        cockpit::demo::ORG,
        cockpit::demo::ADMIN,
        TokenRole::Admin,
        ttl,
    );
    let agent = keys.issue(cockpit::demo::ORG, "okan", TokenRole::Agent, ttl);
    let service = keys.issue(cockpit::demo::ORG, "demo-platform", TokenRole::Service, ttl);
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
        .map_err(|e| e.to_string())
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let json = std::env::var("COCKPIT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
