//! The HTTP API's errors, mapped to status codes and `{"error": {"code", "message"}}` bodies
//! in one place. Internal errors are logged with their cause and never shown to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::db::DbError;

/// An error answered by the HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid credentials (401).
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The body could not be read as the API's format (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is over a size or count limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The database could not serve in time (no free connection): 503, try again.
    #[error("the service is busy; try again shortly")]
    Unavailable,
    /// Anything else: logged, answered as a bare 500.
    #[error(transparent)]
    Internal(DbError),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        if crate::db::is_pool_timeout(&e) {
            tracing::warn!(error = %e, "no database connection in time");
            ApiError::Unavailable
        } else {
            ApiError::Internal(e)
        }
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
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
        response
    }
}
