//! The one error taxonomy of the API: every failure a client can see, its code, and how it
//! is rendered — as an HTTP answer (`{"error": {"code", "message"}}` with its status) and
//! as a GraphQL error (`extensions.code`). Internal causes are logged here and never
//! reach a client. Lower layers have errors of their own (`DbError`, `IngestError`,
//! `AuthError`), turned into this one below.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::db::DbError;
use crate::ingest::IngestError;

/// Seconds a client is asked to wait before retrying a `SERVICE_UNAVAILABLE` answer
/// (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 2;

/// Adds `Retry-After` to a 503 answer: every "busy" answer carries it.
pub fn with_retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(RETRY_AFTER_SECS),
        );
    }
    response
}

/// An error answered by the API, over HTTP or GraphQL.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid credentials, or a token naming no agent.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown here (or another organization's: never revealed).
    #[error("{0}")]
    NotFound(String),
    /// A supervisor or admin tried to change an OFFLINE agent.
    #[error("{0}")]
    AgentOffline(String),
    /// An argument out of its range.
    #[error("{0}")]
    BadUserInput(String),
    /// The body could not be read as the API's format.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over a size or count limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database could not serve in time (no free connection, a cancelled statement).
    #[error("the service is busy; try again shortly")]
    Unavailable,
    /// Anything else: logged with its cause, answered without it.
    #[error(transparent)]
    Internal(DbError),
}

impl ApiError {
    /// The table: HTTP status and code of each kind of error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::AgentOffline(_) => (StatusCode::CONFLICT, "AGENT_OFFLINE"),
            ApiError::BadUserInput(_) => (StatusCode::BAD_REQUEST, "BAD_USER_INPUT"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
        }
    }

    /// The `extensions.code` / `error.code` of this error.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// What the client reads: the message, except for internal errors (logged instead).
    fn client_message(&self) -> String {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                "internal server error".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Unauthenticated(e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "the database cannot serve now");
            ApiError::Unavailable
        } else {
            ApiError::Internal(e)
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::from(DbError::from(e))
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::from(DbError::from(e))
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::BadBody(message) => ApiError::BadRequest(message),
            IngestError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            IngestError::Busy => ApiError::Unavailable,
            IngestError::Db(cause) => ApiError::from(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.client_message();
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        with_retry_after(response)
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code();
        async_graphql::Error::new(self.client_message()).extend_with(|_, e| e.set("code", code))
    }
}
