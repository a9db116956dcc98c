//! Debian's PgBouncer in transaction mode in front of the tests' server, on a free loopback
//! port, for as long as the test process lives (issue 23: the product behind a pooler).
//!
//! Like the throwaway clusters, it runs under a small shell that waits on our stdin: when
//! the process exits the pipe closes, and the shell stops PgBouncer and removes its
//! directory.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_postgres::config::Host;

/// Kept for the life of the process: dropping a stdin would stop its PgBouncer.
static BOUNCERS: Mutex<Vec<Child>> = Mutex::new(Vec::new());
/// Numbers the PgBouncers of this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Where PgBouncer's package puts it.
pub const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// A running PgBouncer.
pub struct Pgbouncer {
    /// Its loopback port.
    pub port: u16,
}

impl Pgbouncer {
    /// The URL of database `dbname` through it (user `postgres`).
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }
}

/// Starts PgBouncer in transaction mode in front of `server`, with `server_sessions`
/// server sessions per database and user (few: client transactions then take turns on the
/// same sessions, which is what a transaction pooler does to a prepared statement).
/// `ignore_startup_parameters` lists `options`, as the README advises: the pool's startup
/// `statement_timeout` is then ignored, and the limit must come from the role.
pub fn start(label: &str, server: &tokio_postgres::Config, server_sessions: u32) -> Pgbouncer {
    assert!(
        std::path::Path::new(PGBOUNCER).exists(),
        "{PGBOUNCER} is missing: the pooler's tests need Debian's PgBouncer (apt-get install \
         pgbouncer; .ci/run installs it)"
    );
    let host = match server.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let server_port = server.get_ports().first().copied().unwrap_or(5432);
    let dir = std::env::temp_dir().join(format!(
        "cockpit-{label}-pgbouncer-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("PgBouncer's directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").expect("userlist");
    std::fs::write(
        dir.join("pgbouncer.ini"),
        format!(
            "[databases]\n\
             * = host={host} port={server_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\n\
             default_pool_size = {server_sessions}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = options,extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\n\
             pidfile = {dir}/pgbouncer.pid\n\
             stats_users = postgres\n",
            dir = dir.display()
        ),
    )
    .expect("pgbouncer.ini");
    let root = cockpit::pgcluster::is_root();
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres:", &dir.to_string_lossy()])
            .status()
            .expect("chown");
        assert!(
            status.success(),
            "cannot hand PgBouncer's directory to postgres"
        );
    }
    // PgBouncer refuses to run as root.
    let script = format!(
        "'{PGBOUNCER}' '{dir}/pgbouncer.ini' >'{dir}/stdout.log' 2>&1 & pid=$!; \
         cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        dir = dir.display()
    );
    let mut command = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let mut child = command
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start PgBouncer");
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.flush();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "PgBouncer did not start (see {}/pgbouncer.log)",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    BOUNCERS.lock().expect("bouncers").push(child);
    Pgbouncer { port }
}
