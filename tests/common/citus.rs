//! The Citus tier: with `COCKPIT_TEST_CITUS=1` the tests run against a real Citus cluster,
//! a coordinator and two workers, three throwaway clusters on loopback ports started from
//! this machine's PostgreSQL with `shared_preload_libraries = 'citus'`
//! (`bash ../shared/citus/build.sh` installs Citus).
//!
//! Citus does not propagate `CREATE DATABASE`, and its maintenance daemon stays connected
//! to every database that has the extension (so a Citus database cannot serve as a
//! template): a test database is created on every node, gets `CREATE EXTENSION citus` on
//! every node and the workers added on the coordinator, then is migrated through the
//! coordinator, whose migration distributes the tables.

use std::str::FromStr;
use std::sync::OnceLock;

use tokio_postgres::Config;

use super::connect;

/// The coordinator and its workers.
pub struct Cluster {
    /// The coordinator's maintenance database: the tests' server.
    pub coordinator: Config,
    /// The coordinator's port (the workers reach it on the loopback).
    pub coordinator_port: u16,
    /// Each worker's port and maintenance database.
    pub workers: Vec<(u16, Config)>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Held while a test database is created and migrated (see `TestDb::new`).
pub static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Shards per distributed table in the tier (the default, 32 per table, only multiplies
/// the connections each multi-shard statement opens on two cores).
const SHARD_COUNT: &str = "citus.shard_count=8";

/// Whether this run is the Citus tier.
pub fn enabled() -> bool {
    std::env::var("COCKPIT_TEST_CITUS").is_ok_and(|v| v == "1")
}

/// The cluster of this test process, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

fn start() -> Cluster {
    let library = cockpit::pgcluster::bindir()
        .ok()
        .and_then(|bin| {
            std::process::Command::new(bin.join("pg_config"))
                .arg("--pkglibdir")
                .output()
                .ok()
        })
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    let installed = library
        .as_deref()
        .is_some_and(|dir| std::path::Path::new(dir).join("citus.so").exists());
    assert!(
        installed,
        "COCKPIT_TEST_CITUS=1 needs the citus extension in this machine's PostgreSQL: run \
         `bash ../shared/citus/build.sh`"
    );
    let settings = [
        "shared_preload_libraries=citus",
        "max_prepared_transactions=300",
        // Every test database has a maintenance daemon on each node, and every coordinator
        // session keeps connections to the workers.
        "max_connections=600",
        SHARD_COUNT,
    ];
    let node = |label: &str| {
        cockpit::pgcluster::start_throwaway_with(label, &settings)
            .unwrap_or_else(|e| panic!("the Citus node {label} did not start: {e}"))
    };
    let coordinator = node("citus-coordinator");
    let workers = [node("citus-worker-1"), node("citus-worker-2")];
    let config = |url: &str| Config::from_str(url).expect("a throwaway cluster's URL");
    Cluster {
        coordinator: config(&coordinator.url),
        coordinator_port: coordinator.port,
        workers: workers.iter().map(|w| (w.port, config(&w.url))).collect(),
    }
}

impl Cluster {
    /// Every node's maintenance database, the coordinator first.
    fn nodes(&self) -> Vec<Config> {
        std::iter::once(self.coordinator.clone())
            .chain(self.workers.iter().map(|(_, c)| c.clone()))
            .collect()
    }

    /// Creates database `name` on every node, with the citus extension, and makes the
    /// workers the coordinator's (nothing migrated yet).
    pub async fn create_database(&self, name: &str) {
        let quoted = cockpit::db::quote_ident(name);
        for node in self.nodes() {
            connect(&node)
                .await
                .batch_execute(&format!("CREATE DATABASE {quoted}"))
                .await
                .expect("create a database on a Citus node");
            let mut inside = node.clone();
            inside.dbname(name);
            connect(&inside)
                .await
                .batch_execute("CREATE EXTENSION citus")
                .await
                .expect("create extension citus");
        }
        let mut coordinator = self.coordinator.clone();
        coordinator.dbname(name);
        let client = connect(&coordinator).await;
        client
            .execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
                &[&i32::from(self.coordinator_port)],
            )
            .await
            .expect("citus_set_coordinator_host");
        for (port, _) in &self.workers {
            // Adding a node syncs the metadata to it over a new connection, which a busy
            // worker may refuse for a moment: a few attempts, each a statement of its own.
            let mut attempt = 0;
            loop {
                attempt += 1;
                match client
                    .execute(
                        "SELECT citus_add_node('127.0.0.1', $1)",
                        &[&i32::from(*port)],
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(e) if attempt < 5 => {
                        eprintln!("citus_add_node (attempt {attempt}): {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                    }
                    Err(e) => panic!("citus_add_node: {e}"),
                }
            }
        }
    }

    /// Drops database `name` on every node.
    pub async fn drop_database(&self, name: &str) {
        let quoted = cockpit::db::quote_ident(name);
        for node in self.nodes() {
            let _ = connect(&node)
                .await
                .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                .await;
        }
    }
}
