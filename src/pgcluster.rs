//! A throwaway PostgreSQL cluster for machines with the binaries but no running server:
//! used by `cockpit demo` on the embedded default and by the test harness.
//!
//! The server runs under a small shell that waits on our stdin: when this process exits
//! (however it ends), the pipe closes, and the shell stops the server and deletes its
//! directory.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kept for the life of the process: dropping a stdin would stop its cluster.
static CLUSTERS: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// A started cluster.
#[derive(Debug, Clone)]
pub struct Throwaway {
    /// URL of its maintenance database (`postgres`), user `postgres`, trust auth.
    pub url: String,
    /// Its loopback port.
    pub port: u16,
    /// The PostgreSQL binaries it runs.
    pub bindir: PathBuf,
    /// Its directory, deleted when this process exits.
    pub dir: PathBuf,
}

/// Where the PostgreSQL server binaries are (`pg_config --bindir`, else the newest under
/// `/usr/lib/postgresql`).
pub fn bindir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL binaries under /usr/lib/postgresql".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().ok_or_else(|| "no initdb found".to_string())
}

/// Whether this process runs as root (PostgreSQL's and PgBouncer's servers refuse to).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `script` with sh, as the `postgres` user when we are root (initdb refuses root).
fn shell(script: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The directory of a cluster named by `label` (`cockpit-<label>-pg-<pid>` under the
/// temporary directory), created, and the `postgres` user's when we are root.
fn cluster_dir(label: &str, root: bool) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("cockpit-{label}-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if root {
        let status = Command::new("chown")
            .args(["postgres:", &dir.to_string_lossy()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    Ok(dir)
}

/// Starts a cluster on a free loopback port and returns how to reach it; `label` names
/// its directory (`cockpit-<label>-pg-<pid>` under the temporary directory).
pub fn start_throwaway(label: &str) -> Result<Throwaway, String> {
    start_throwaway_with(label, &[])
}

/// [`start_throwaway`] with server settings of its own (`name=value`, each passed as
/// `-c`), e.g. `shared_preload_libraries=citus` for a node of a Citus cluster.
pub fn start_throwaway_with(label: &str, settings: &[&str]) -> Result<Throwaway, String> {
    let bin = bindir()?;
    let root = is_root();
    let dir = cluster_dir(label, root)?;
    let data = dir.join("data");
    let initdb = format!(
        "'{}' -D '{}' -U postgres --auth=trust --encoding=UTF8 --no-sync >'{}' 2>&1",
        bin.join("initdb").display(),
        data.display(),
        dir.join("initdb.log").display()
    );
    let status = shell(&initdb, root).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "initdb failed (see {})",
            dir.join("initdb.log").display()
        ));
    }
    serve(bin, dir, root, settings)
}

/// Starts a hot standby of `primary` on a free loopback port: a base backup streamed with
/// `pg_basebackup -R` (the standby then follows the primary's write-ahead log), in its own
/// directory named by `label`, removed like a throwaway cluster's. The primary must be one
/// of [`start_throwaway`]'s (trust authentication, replication allowed from the loopback).
pub fn start_standby(label: &str, primary: &Throwaway) -> Result<Throwaway, String> {
    let bin = primary.bindir.clone();
    let root = is_root();
    let dir = cluster_dir(label, root)?;
    let port = primary.port;
    let backup = format!(
        "'{}' -h 127.0.0.1 -p {port} -U postgres -D '{}' -R -X stream --no-sync >'{}' 2>&1",
        bin.join("pg_basebackup").display(),
        dir.join("data").display(),
        dir.join("basebackup.log").display()
    );
    let status = shell(&backup, root).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "pg_basebackup failed (see {})",
            dir.join("basebackup.log").display()
        ));
    }
    serve(bin, dir, root, &[])
}

/// Runs the cluster of `dir/data` on a free loopback port until this process exits.
fn serve(bin: PathBuf, dir: PathBuf, root: bool, settings: &[&str]) -> Result<Throwaway, String> {
    let data = dir.join("data");
    let port = free_port()?;
    let extra: String = settings
        .iter()
        .map(|setting| format!(" -c '{}'", setting.replace('\'', "")))
        .collect();
    let script = format!(
        "'{bin}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=300{extra} >'{dir}/server.log' 2>&1 & pid=$!; cat >/dev/null; \
         kill -INT $pid; wait $pid; rm -rf '{dir}'",
        bin = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    // A group of its own: a Ctrl-C in the terminal stops us, and the closed pipe then
    // stops the cluster and removes its directory (a SIGINT would skip the removal).
    let mut child = shell(&script, root)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Keep the write end open; touching it once proves the pipe is there.
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.flush();
    }
    wait_for(port, &dir)?;
    CLUSTERS
        .lock()
        .map_err(|_| "cluster lock poisoned")?
        .push(child);
    Ok(Throwaway {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        port,
        bindir: bin,
        dir,
    })
}

fn wait_for(port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the throwaway cluster did not start (see {}/server.log)",
        dir.display()
    ))
}
