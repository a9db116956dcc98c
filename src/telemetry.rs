//! Prometheus metrics (`GET /metrics`): one recorder per process, installed on first use.
//!
//! Names (spec 7): `cockpit_refresh_duration_seconds`, `cockpit_refresh_age_seconds`,
//! `cockpit_notify_lag_seconds`, `cockpit_listener_reconnects_total`, `cockpit_subscribers`,
//! `cockpit_ingest_events_total{result, code}`, `cockpit_http_request_duration_seconds{route}`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, seconds: from sub-millisecond notifications to multi-second batches.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use. Several apps in
/// one process (the tests) share it.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // The buckets are a non-empty constant: setting them cannot fail.
        let builder = match builder.set_buckets(&BUCKETS) {
            Ok(with_buckets) => with_buckets,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_histogram!(
        "cockpit_refresh_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of one refresh of the daily columns"
    );
    metrics::describe_gauge!(
        "cockpit_refresh_age_seconds",
        metrics::Unit::Seconds,
        "Seconds since the daily columns were last refreshed (by any instance)"
    );
    metrics::describe_histogram!(
        "cockpit_notify_lag_seconds",
        metrics::Unit::Seconds,
        "From the change in PostgreSQL to its fan-out in this instance"
    );
    metrics::describe_counter!(
        "cockpit_listener_reconnects_total",
        "Times the LISTEN connection was lost and reopened"
    );
    metrics::describe_gauge!("cockpit_subscribers", "Open cockpit subscriptions");
    metrics::describe_counter!(
        "cockpit_ingest_events_total",
        "Ingested events by result (accepted, duplicate, rejected with its code)"
    );
    metrics::describe_histogram!(
        "cockpit_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request duration by route"
    );
}

/// Middleware: times every request under its route template.
pub async fn time_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!("cockpit_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts one open subscription for as long as it lives.
pub struct SubscriberGuard(());

impl SubscriberGuard {
    /// Counts a new subscription.
    pub fn new() -> Self {
        metrics::gauge!("cockpit_subscribers").increment(1.0);
        SubscriberGuard(())
    }
}

impl Default for SubscriberGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        metrics::gauge!("cockpit_subscribers").decrement(1.0);
    }
}

/// Logs to standard error: `RUST_LOG` filters (default `info,tower_http=warn`);
/// `COCKPIT_LOG_FORMAT=json` writes one JSON object a line.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let json = std::env::var("COCKPIT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
