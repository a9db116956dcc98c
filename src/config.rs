//! Configuration of `cockpit serve`, from the environment with flags to override:
//!
//! - `DATABASE_URL`: PostgreSQL connection URL (default [`DEFAULT_DATABASE_URL`]; the
//!   database is created when missing).
//! - `COCKPIT_BIND`: address the HTTP server listens on (default [`DEFAULT_BIND`]).
//! - `COCKPIT_JWT_SECRET`: HS256 secret of the bearer tokens; required, no default.
//! - `COCKPIT_LISTEN_DATABASE_URL`: where the listener connects for LISTEN/NOTIFY
//!   (default: `DATABASE_URL`); set it when the pool goes through a transaction-pooling
//!   proxy such as PgBouncer, which cannot carry LISTEN.
//! - `COCKPIT_POOL_MODE`: `session` (default: the pool's connections are sessions of their
//!   own) or `transaction` (the pool goes through a transaction pooler, PgBouncer's
//!   `pool_mode = transaction`: no named prepared statements, and what needs a session of
//!   its own runs on the direct `COCKPIT_LISTEN_DATABASE_URL`, which is then required).
//! - `COCKPIT_REFRESH_SECS`: interval of the daily-column refresh (default
//!   [`DEFAULT_REFRESH_SECS`], at least 1).
//! - `COCKPIT_REQUEST_TIMEOUT_SECS`: longest time a request other than ingest may take
//!   (default [`DEFAULT_REQUEST_TIMEOUT_SECS`]); ingest has [`INGEST_TIMEOUT`].
//! - `COCKPIT_GRAPHQL_BODY_LIMIT`: largest body of a GraphQL request, in bytes (default
//!   [`DEFAULT_GRAPHQL_BODY_LIMIT`]); also the largest WebSocket message.
//! - `COCKPIT_WS_INIT_TIMEOUT_SECS`: longest wait for a WebSocket's `connection_init`
//!   (default [`DEFAULT_WS_INIT_TIMEOUT_SECS`]).
//! - `COCKPIT_IDLE_TIMEOUT_SECS`: a connection with nothing read or written for this long
//!   is closed (default [`DEFAULT_IDLE_TIMEOUT_SECS`]; WebSockets are pinged at half).
//! - `COCKPIT_MAX_CONNECTIONS`: most client connections open at once (default
//!   [`DEFAULT_MAX_CONNECTIONS`], lowered to fit the open-file limit, which start-up raises).

use std::net::SocketAddr;
use std::time::Duration;

/// How the pool's connections reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoolMode {
    /// Each pooled connection is a server session of its own (directly, or through a
    /// session pooler).
    Session,
    /// Through a transaction pooler (PgBouncer, `pool_mode = transaction`): a server
    /// session lasts one transaction.
    Transaction,
}

/// The embedded default: the local PostgreSQL of a developer machine.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/cockpit";
/// Loopback only unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The refresh interval of the daily columns: 10 s (the seed asked 60 s; a refresh every
/// 5 s costs about 0.1 % of one core at the reference workload, BENCHMARKS.md P11, and
/// re-reads only the live rows it changed; 10 s keeps /readyz's staleness rule, three
/// intervals, at 30 s).
pub const DEFAULT_REFRESH_SECS: u64 = 10;
/// Longest time of a request other than ingest: reads answer in milliseconds, so a request
/// still waiting after this is stuck (e.g. on a frozen database connection).
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Longest time of an ingest request: a 10 MiB batch takes seconds.
pub const INGEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest body of a GraphQL request: the API's queries are a few hundred bytes.
pub const DEFAULT_GRAPHQL_BODY_LIMIT: usize = 1024 * 1024;
/// Longest wait for a WebSocket's `connection_init`: clients send it at once.
pub const DEFAULT_WS_INIT_TIMEOUT_SECS: u64 = 5;
/// A connection idle this long is closed (WebSockets are pinged at half of it).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// A request head must be complete this long after it began.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Most client connections one peer address may hold: a quarter of the default cap.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 2_500;
/// Most client connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Connections in the pool of one instance.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Everything `serve` needs to run. Its `Debug` hides the secret and URL passwords.
#[derive(Clone)]
pub struct Config {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Connection URL of the listener (LISTEN/NOTIFY); `None`: `database_url`.
    pub listen_url: Option<String>,
    /// How the pool's connections reach PostgreSQL.
    pub pool_mode: PoolMode,
    /// Listen address; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// HS256 secret for bearer tokens.
    pub jwt_secret: String,
    /// Interval of the daily-column refresh.
    pub refresh_interval: Duration,
    /// Maximum connections in the pool.
    pub pool_size: usize,
    /// Longest time of a request other than ingest.
    pub request_timeout: Duration,
    /// `statement_timeout` of the pool's sessions (a statement running longer is stuck).
    pub statement_timeout: Duration,
    /// Largest body of a GraphQL request, in bytes.
    pub graphql_body_limit: usize,
    /// Longest wait for a WebSocket's `connection_init` (then it closes with 4408).
    pub ws_init_timeout: Duration,
    /// A connection with nothing read or written for this long is closed.
    pub idle_timeout: Duration,
    /// A request head (a WebSocket upgrade's included) not complete this long after it
    /// began closes its connection.
    pub header_timeout: Duration,
    /// Most client connections open at once (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Most of those one peer address may hold (0: no limit; behind a proxy every client
    /// has the proxy's address).
    pub max_connections_per_peer: usize,
}

impl Config {
    /// The defaults above, for the database at `database_url` and tokens signed with
    /// `jwt_secret`; change what differs with struct-update syntax.
    pub fn new(database_url: impl Into<String>, jwt_secret: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            listen_url: None,
            pool_mode: PoolMode::Session,
            bind: DEFAULT_BIND.parse().expect("the default address parses"),
            jwt_secret: jwt_secret.into(),
            refresh_interval: Duration::from_secs(DEFAULT_REFRESH_SECS),
            pool_size: DEFAULT_POOL_SIZE,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            statement_timeout: crate::db::STATEMENT_TIMEOUT,
            graphql_body_limit: DEFAULT_GRAPHQL_BODY_LIMIT,
            ws_init_timeout: Duration::from_secs(DEFAULT_WS_INIT_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redacted(&self.database_url))
            .field("listen_url", &self.listen_url.as_deref().map(redacted))
            .field("pool_mode", &self.pool_mode)
            .field("bind", &self.bind)
            .field("jwt_secret", &"***")
            .field("refresh_interval", &self.refresh_interval)
            .field("pool_size", &self.pool_size)
            .field("request_timeout", &self.request_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("graphql_body_limit", &self.graphql_body_limit)
            .field("ws_init_timeout", &self.ws_init_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `url` with its password, if any, hidden (for messages and logs).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted, Config};

    #[test]
    fn debug_hides_the_secret_and_passwords() {
        let config = Config::new(
            "postgres://app:s3cret-pw@db/cockpit",
            "a-secret-of-more-than-thirty-two-bytes",
        );
        let text = format!("{config:?}");
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(!text.contains("thirty-two"), "{text}");
        assert!(text.contains("postgres://app:***@db/cockpit"), "{text}");
    }

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/cockpit"),
            "postgres://app:***@db:5432/cockpit"
        );
        assert_eq!(
            redacted("postgres://postgres@127.0.0.1:5432/cockpit"),
            "postgres://postgres@127.0.0.1:5432/cockpit"
        );
        assert_eq!(redacted("host=/tmp user=x"), "host=/tmp user=x");
    }
}
