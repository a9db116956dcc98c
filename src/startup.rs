//! Start-up helpers of the commands: finding a database for `cockpit demo` on a machine
//! where none runs, and start-up errors that say what was tried and what to do.

use std::time::Duration;

use crate::config::Config;
use crate::http::StartError;
use crate::pgcluster::{self, Throwaway};

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
        StartError::Bind(e) => format!(
            "cannot listen on {} ({e}). Stop what uses it or choose another address with \
             COCKPIT_BIND (--bind).",
            config.bind
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

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
