//! The HTTP surface: router, shared state, and the [`Application`] that binds and serves.

mod answers;
mod conn;
mod memory;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::db::Pool;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use async_graphql_axum::{GraphQLProtocol, GraphQLResponse};
use axum::extract::ws::WebSocketUpgrade;

use crate::auth::Keys;
use crate::config::{Config, PoolMode};
use crate::db::{self, DbError};
use crate::error::ApiError;
use crate::graphql::{self, Auth, CockpitSchema};
use crate::ingest::{self, IngestReport};
use crate::live::hub::Hub;
use crate::live::{listener, refresher};
use crate::telemetry;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Connections to PostgreSQL.
    pub pool: Pool,
    /// Token verification.
    pub keys: Arc<Keys>,
    /// Interval of the daily-column refresh (readiness wants a refresh within 3 of them).
    pub refresh_interval: Duration,
    /// Longest time of a request other than ingest.
    pub request_timeout: Duration,
    /// Largest body of a GraphQL request (and WebSocket message), in bytes.
    pub graphql_body_limit: usize,
    /// Longest wait for a WebSocket's `connection_init`.
    pub ws_init_timeout: Duration,
    /// A connection with nothing read or written for this long is closed; WebSockets are
    /// pinged at half of it.
    pub idle_timeout: Duration,
    /// The GraphQL schema.
    pub schema: CockpitSchema,
    /// Fan-out of live changes to subscriptions.
    pub hub: Arc<Hub>,
    /// Rendered `cockpit` answers reused while they stand.
    pub answers: Arc<answers::Answers>,
    /// One ingest at a time per organization, waited for outside the pool.
    pub ingest_gate: Arc<ingest::OrgGate>,
    /// Turns true when the service starts shutting down: WebSockets say goodbye.
    pub shutdown: CancellationToken,
    /// Held by every open WebSocket; shutdown waits until all are dropped.
    pub open_sockets: tokio::sync::mpsc::Sender<()>,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    let events = Router::new()
        .route(
            "/v1/events",
            post(ingest_events).layer(DefaultBodyLimit::max(ingest::MAX_BODY_BYTES)),
        )
        .layer(axum::middleware::from_fn(|request, next| {
            time_limit(crate::config::INGEST_TIMEOUT, request, next)
        }));
    // A request that cannot finish in this time is stuck; dropping it cancels its database
    // work (db::run). WebSocket upgrades answer at once and are not concerned.
    let request_timeout = state.request_timeout;
    let timeout =
        axum::middleware::from_fn(move |request, next| time_limit(request_timeout, request, next));
    let reads = Router::new()
        .route("/graphql", get(crate::web::graphiql).post(graphql_request))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(crate::web::routes())
        .layer(timeout);
    events
        .merge(reads)
        .layer(axum::middleware::from_fn(telemetry::time_requests))
        .layer(axum::middleware::from_fn(conn::mark_busy))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn ingest_events(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IngestReport>, ApiError> {
    // Too large is refused before anything else (declared length; a body without one is
    // cut at the limit while it is read); who is asking comes before reading the body.
    if declared_length(request.headers())
        .is_some_and(|length| length > ingest::MAX_BODY_BYTES as u64)
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is larger than {} bytes",
            ingest::MAX_BODY_BYTES
        )));
    }
    let claims = state.keys.authenticate(request.headers())?;
    if !claims.role.may_ingest() {
        return Err(ApiError::Forbidden(
            "only service and admin tokens may ingest events".into(),
        ));
    }
    let ndjson = ingest::is_ndjson(
        request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!(
                    "the body is larger than {} bytes",
                    ingest::MAX_BODY_BYTES
                ))
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
    let batch = ingest::read_body(&body, ndjson)?;
    let events = batch.len();
    let report = ingest::store(&state.pool, &state.ingest_gate, &claims.org, batch).await?;
    ingest::count(&report);
    tracing::info!(
        org = %claims.org,
        sender = %claims.sub,
        events,
        accepted = report.accepted,
        duplicates = report.duplicates,
        rejected = report.rejected.len(),
        "ingested batch"
    );
    Ok(Json(report))
}

async fn graphql_request(State(state): State<AppState>, request: Request) -> Response {
    let limit = state.graphql_body_limit;
    // Too large is refused before the body is read and before any authentication work:
    // at once when the request says its length, else as soon as the limit is passed.
    let too_large = || {
        graphql_refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than {limit} bytes"),
        )
    };
    if declared_length(request.headers()).is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => return too_large(),
        Err(_) => {
            return graphql_refusal(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the body could not be read".into(),
            )
        }
    };
    let request = match graphql::request_from_json(&bytes) {
        Ok(request) => request,
        Err(message) => return graphql_refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", message),
    };
    let auth = Auth::resolve(&state.pool, state.keys.authenticate(&parts.headers)).await;
    // Who may read a cockpit may be given a kept rendering of the same request.
    let org = match &auth {
        Auth::Viewer(viewer) if viewer.is_supervising() => Some(viewer.org.clone()),
        _ => None,
    };
    let mut rendering = None;
    if let Some(org) = &org {
        match state.answers.lookup(&state.hub, org, &bytes).await {
            answers::Lookup::Hit(body) => return rendered(body),
            answers::Lookup::Stale(guard) => rendering = Some(guard),
            answers::Lookup::Miss => {}
        }
    }
    let note = Arc::new(graphql::AnswerNote::default());
    let (query, operation_name) = match org {
        Some(_) => (request.query.clone(), request.operation_name.clone()),
        None => Default::default(),
    };
    let response = state
        .schema
        .execute(request.data(auth).data(note.clone()))
        .await;
    if let Some(org) = &org {
        let from = note.take();
        let all_from_memory = !from.is_empty() && from.iter().all(|(_, p)| p.is_some());
        if response.is_ok()
            && response.http_headers.is_empty()
            && all_from_memory
            && answers::cockpit_fields(&query, operation_name.as_deref()) == Some(from.len())
        {
            if let Ok(body) = serde_json::to_vec(&response) {
                let body = Bytes::from(body);
                let from = from
                    .into_iter()
                    .filter_map(|(scope, p)| Some((scope, p?)))
                    .collect();
                state.answers.keep(org, bytes, from, body.clone());
                drop(rendering);
                return rendered(body);
            }
        }
        if rendering.is_some() {
            state.answers.forget(org, &bytes);
        }
    }
    drop(rendering);
    // Busy is answered alike on every path: 503 with Retry-After (the body stays GraphQL's).
    let busy = response.errors.iter().any(|e| {
        e.extensions.as_ref().and_then(|x| x.get("code"))
            == Some(&async_graphql::Value::from(ApiError::Unavailable.code()))
    });
    let mut answer = GraphQLResponse::from(response).into_response();
    if busy {
        *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    crate::error::with_retry_after(answer)
}

/// A GraphQL answer already rendered (as async-graphql-axum sends one without errors).
fn rendered(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "application/graphql-response+json")],
        body,
    )
        .into_response()
}

/// The request time limit: a request that cannot finish in `limit` is stuck; dropping it
/// cancels its database work (db::run), and the client is told the service is busy, in
/// the body format of its route (GraphQL's for `/graphql`).
async fn time_limit(limit: Duration, request: Request, next: axum::middleware::Next) -> Response {
    // A cheap copy (shared bytes), read only when the limit is reached.
    let uri = request.uri().clone();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let path = uri.path();
            tracing::warn!(%path, limit_secs = limit.as_secs_f64(), "request time limit reached");
            let error = ApiError::Unavailable;
            if path == "/graphql" {
                crate::error::with_retry_after(graphql_refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error.code(),
                    error.to_string(),
                ))
            } else {
                error.into_response()
            }
        }
    }
}

/// The body length a request declares (`Content-Length`), if any.
fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Whether reading a body failed on its length limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// A request refused before execution, as a GraphQL response with a code.
fn graphql_refusal(status: StatusCode, code: &'static str, message: String) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": code}}]})),
    )
        .into_response()
}

/// Read buffer of a WebSocket, bytes.
const WS_READ_BUFFER: usize = 1024;

/// Longest wait at shutdown for the WebSockets to close, and for each background task.
const DRAIN: Duration = Duration::from_secs(5);

async fn graphql_ws(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    // From here the connection carries WebSocket frames, not request heads.
    let activity = extensions
        .get::<axum::extract::ConnectInfo<conn::Activity>>()
        .map(|info| info.0.clone());
    if let Some(activity) = &activity {
        activity.upgraded();
    }
    let limit = state.graphql_body_limit;
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(limit)
        .max_frame_size(limit)
        // Small buffers: most sockets carry small messages, and a flood of idle ones must
        // not cost 128 KiB each (the codec's default, allocated at the upgrade); a larger
        // message still fits, the buffer growing to its frame. Written messages are
        // flushed at once (live pushes).
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| ws::serve(state, socket, protocol, activity))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let handle = telemetry::prometheus();
    match refresher::refresh_age(&state.pool)
        .await
        .map(|c| c.age_seconds())
    {
        Ok(Some(age)) => metrics::gauge!("cockpit_refresh_age_seconds").set(age),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "reading the refresh age for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `/readyz` answers within this, whatever the database does: a load balancer probing
/// with a short timeout sees a red light, not a hang.
const READY_WITHIN: Duration = Duration::from_millis(900);

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READY_WITHIN, readiness(&state)).await {
        Ok(answer) => answer.into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not ready", "reason": "the database did not answer within 1 s"}),
            ),
        )
            .into_response(),
    }
}

async fn readiness(state: &AppState) -> impl IntoResponse {
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason})),
        )
    };
    match db::is_ready(&state.pool).await {
        Ok(true) => {}
        Ok(false) => return not_ready("migrations not applied"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            return not_ready("database unreachable");
        }
    }
    if !state.hub.listener_connected() {
        return not_ready("listener not connected");
    }
    match refresher::refresh_age(&state.pool).await {
        Ok(clock) if !clock.is_stale(state.refresh_interval) => {
            (StatusCode::OK, Json(json!({"status": "ready"})))
        }
        Ok(_) => not_ready("daily columns not refreshed within 3 intervals"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready("database unreachable")
        }
    }
}

/// A built service: database migrated, socket bound, ready to serve.
pub struct Application {
    listen_url: String,
    shutdown: CancellationToken,
    sockets_closed: tokio::sync::mpsc::Receiver<()>,
    listener: conn::CappedListener,
    router: Router,
    port: u16,
    state: AppState,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be served (e.g. a JWT secret that is too short).
    #[error("{0}")]
    Config(String),
    /// The database could not be prepared.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The socket could not be bound.
    #[error("cannot listen on the configured address: {0}")]
    Bind(#[from] std::io::Error),
}

impl Application {
    /// Prepares the database (creates it if missing, migrates), refreshes the daily columns
    /// once (so `refreshedAt` is always a real refresh) and binds the socket.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        crate::auth::check_secret(&config.jwt_secret).map_err(StartError::Config)?;
        telemetry::prometheus();
        let pool = match (config.pool_mode, &config.listen_url) {
            (PoolMode::Transaction, Some(direct)) => {
                db::ensure_database(direct).await?;
                db::pool_through_pooler(
                    &config.database_url,
                    direct,
                    config.pool_size,
                    Some(config.statement_timeout),
                )?
            }
            (PoolMode::Transaction, None) => {
                return Err(StartError::Config(
                    "the transaction pool mode needs a direct listen URL".into(),
                ))
            }
            (PoolMode::Session, _) => {
                db::ensure_database(&config.database_url).await?;
                db::pool_with(
                    &config.database_url,
                    config.pool_size,
                    Some(config.statement_timeout),
                )?
            }
        };
        db::migrate(&pool).await?;
        if refresher::refresh_once(&pool).await?.is_none() {
            tracing::info!("another instance is refreshing the daily columns");
        }
        let hub = Hub::new(pool.clone());
        let shutdown = CancellationToken::new();
        let (open_sockets, sockets_closed) = tokio::sync::mpsc::channel(1);
        let state = AppState {
            shutdown: shutdown.clone(),
            open_sockets,
            pool: pool.clone(),
            keys: Arc::new(Keys::new(&config.jwt_secret)),
            refresh_interval: config.refresh_interval,
            request_timeout: config.request_timeout,
            graphql_body_limit: config.graphql_body_limit,
            ws_init_timeout: config.ws_init_timeout,
            idle_timeout: config.idle_timeout,
            ingest_gate: Arc::new(ingest::OrgGate::default()),
            schema: graphql::schema(pool.clone(), hub.clone(), config.refresh_interval),
            hub,
            answers: Arc::default(),
        };
        let listener = TcpListener::bind(config.bind).await?;
        let port = listener.local_addr()?.port();
        let cap = conn::connection_cap(config.max_connections);
        let listener = conn::CappedListener::new(
            listener,
            cap,
            config.max_connections_per_peer.min(cap),
            conn::Timeouts {
                idle: config.idle_timeout,
                head: config.header_timeout,
            },
        );
        Ok(Application {
            shutdown,
            sockets_closed,
            listen_url: config
                .listen_url
                .clone()
                .unwrap_or_else(|| config.database_url.clone()),
            listener,
            router: router(state.clone()),
            port,
            state,
        })
    }

    /// The database pool the service uses.
    pub fn pool(&self) -> Pool {
        self.state.pool.clone()
    }

    /// The live hub of this instance (its read counters, for tests and benches).
    pub fn hub(&self) -> Arc<Hub> {
        self.state.hub.clone()
    }

    /// The bound port (useful when the configured port was 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves, refreshes the daily columns every interval and listens for live changes,
    /// until `shutdown` completes. Then one cancellation reaches every background task and
    /// socket: in-flight requests finish, WebSockets close with 1001, the refresher ends
    /// after its current refresh and the listener at once, each wait bounded.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let cancel = self.shutdown;
        let refresher = tokio::spawn(refresher::run(
            self.state.pool.clone(),
            self.state.refresh_interval,
            cancel.clone(),
        ));
        let trimmer = tokio::spawn(memory::run(cancel.clone()));
        let listener = tokio::spawn(listener::run(
            self.listen_url,
            self.state.hub.clone(),
            cancel.clone(),
        ));
        let stopping = cancel.clone();
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<conn::Activity>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
        // Whatever ended the server, the background work ends too.
        cancel.cancel();
        // In-flight requests are done (accepted events committed); WebSockets, which the
        // server no longer tracks once upgraded, close with 1001: wait for them, bounded.
        drop(self.state);
        let mut sockets_closed = self.sockets_closed;
        let _ = tokio::time::timeout(DRAIN, sockets_closed.recv()).await;
        for (name, mut task) in [
            ("refresher", refresher),
            ("listener", listener),
            ("memory", trimmer),
        ] {
            if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
                tracing::warn!(task = name, "did not stop in time; aborted");
                task.abort();
            }
        }
        served
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
