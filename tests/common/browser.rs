//! A real headless Chromium (Debian's `chromium`), driven over WebDriver by its own
//! `chromedriver`, one browser per test.
//!
//! The network is cut off: the browser's proxy is a loopback port that refuses everything,
//! and Chromium reaches 127.0.0.1 directly (loopback never goes through a proxy), so
//! nothing leaves the machine. The proxy would also hear Chromium's own background traffic
//! (update checks, the default search engine), so what the *page* asked for is read from
//! Chromium's network log instead: [`Browser::outside_requests`]
//! lists every request and WebSocket of the page whose address is not on 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Longest wait for a condition on the page.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    proxy: JoinHandle<()>,
    profile: std::path::PathBuf,
    driver_url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The browser's only way out: a proxy on the loopback that refuses every request.
async fn start_refusing_proxy() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the refusing proxy");
    let port = listener.local_addr().expect("proxy address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, task)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium whose only way out is the refusing proxy.
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: the screen's tests need Debian's Chromium \
                 (apt-get install chromium chromium-driver; .ci/run installs them)"
            );
        }
        let (proxy_port, proxy) = start_refusing_proxy().await;
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("cockpit-chromium-{}-{}", std::process::id(), port));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1440,1000",
                    "--hide-scrollbars",
                    format!("--proxy-server=http://127.0.0.1:{proxy_port}"),
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--disable-extensions",
                    "--lang=tr-TR",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({"performance": "ALL"}));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            driver,
            proxy,
            profile,
            driver_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs `body` (a function body: `return …`) in the page.
    pub async fn eval(&self, body: &str) -> Value {
        self.client
            .execute(body, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{body}"))
    }

    /// Waits until `body` returns a value equal to `expected`; panics with the last value.
    pub async fn wait_for(&self, what: &str, body: &str, expected: &Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.eval(body).await;
            if &value == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still {value:#}, expected {expected:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `body` returns `true`; panics with `what`.
    pub async fn wait_until(&self, what: &str, body: &str) {
        self.wait_for(what, body, &json!(true)).await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the element matching `css`, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Picks `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// The page's network requests and WebSockets since the last call whose address is not
    /// on 127.0.0.1, from Chromium's network log (`chrome://` pages of the browser itself and
    /// inline `data:` never touch the network).
    pub async fn outside_requests(&self) -> Vec<String> {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "performance"}))
            .send()
            .await
            .expect("read the performance log")
            .json()
            .await
            .expect("performance log JSON");
        let entries = log["value"].as_array().expect("log entries");
        let mut outside = Vec::new();
        let mut seen_local = 0;
        for entry in entries {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let message: Value = serde_json::from_str(message).expect("log message");
            let params = &message["message"]["params"];
            let url = match message["message"]["method"].as_str() {
                Some("Network.requestWillBeSent") => params["request"]["url"].as_str(),
                Some("Network.webSocketCreated") => params["url"].as_str(),
                _ => None,
            };
            if let Some(url) = url {
                let network = ["http:", "https:", "ws:", "wss:"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme));
                let loopback = ["http://127.0.0.1:", "ws://127.0.0.1:"]
                    .iter()
                    .any(|prefix| url.starts_with(prefix));
                if loopback {
                    seen_local += 1;
                } else if network {
                    outside.push(url.to_string());
                }
            }
        }
        // The log must have seen the page itself, or it proves nothing.
        assert!(
            seen_local > 0,
            "the network log shows no request of the page"
        );
        outside
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        self.proxy.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.proxy.abort();
        let _ = self.driver.start_kill();
        // After a failed test the session was never closed: end its browser too.
        let _ = std::process::Command::new("pkill")
            .args(["-f", "--"])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .status();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A page function that describes the four tables: per table, per row in order, its agent
/// id and the text of every cell but the ticking time in status, plus whether it offers a
/// status control.
pub const TABLES: &str = r#"
const out = {};
for (const section of document.querySelectorAll('[data-table]')) {
  out[section.dataset.table] = [...section.querySelectorAll('tr[data-agent]')].map((tr) => {
    const cell = (c) => tr.querySelector(`td[data-col="${c}"]`).textContent;
    return [tr.dataset.agent, cell('name'), cell('status'), cell('avgFirst'), cell('avgResolution'),
            cell('active'), cell('resolved'), cell('reactivated'), cell('forwarded'),
            !!tr.querySelector('select[data-status-control]')];
  });
}
return out;
"#;
