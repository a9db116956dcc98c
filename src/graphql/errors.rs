//! GraphQL errors: one enum, mapped to `extensions.code` in one place. Internal causes are
//! logged server-side and never reach a client.

use async_graphql::ErrorExtensions;

use crate::db::DbError;

/// An error a resolver answers.
#[derive(Debug, thiserror::Error)]
pub enum GqlError {
    /// No valid token naming an existing agent of the organization.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, not allowed.
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
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] DbError),
}

impl GqlError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            GqlError::Unauthenticated(_) => "UNAUTHENTICATED",
            GqlError::Forbidden(_) => "FORBIDDEN",
            GqlError::NotFound(_) => "NOT_FOUND",
            GqlError::AgentOffline(_) => "AGENT_OFFLINE",
            GqlError::BadUserInput(_) => "BAD_USER_INPUT",
            GqlError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl ErrorExtensions for GqlError {
    fn extend(&self) -> async_graphql::Error {
        let message = match self {
            GqlError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error in a GraphQL resolver");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        let code = self.code();
        async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
    }
}

/// Turns a resolver's [`GqlError`] into the GraphQL error with its code. (`?` alone would
/// go through async-graphql's blanket `From<Display>` and lose the code.)
pub trait Coded<T> {
    /// The result with a coded GraphQL error.
    fn coded(self) -> async_graphql::Result<T>;
}

impl<T> Coded<T> for Result<T, GqlError> {
    fn coded(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

impl From<tokio_postgres::Error> for GqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        GqlError::Internal(DbError::from(e))
    }
}

impl From<deadpool_postgres::PoolError> for GqlError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        GqlError::Internal(DbError::from(e))
    }
}

/// Gives every error of a response an `extensions.code`: a query that does not parse is
/// `GRAPHQL_PARSE_FAILED`, one that fails validation (no path: it never ran) is
/// `GRAPHQL_VALIDATION_FAILED`, anything else without a code `INTERNAL_SERVER_ERROR`.
pub fn classify(response: &mut async_graphql::Response, parse_failed: bool) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if parse_failed {
            "GRAPHQL_PARSE_FAILED"
        } else if error.path.is_empty() {
            "GRAPHQL_VALIDATION_FAILED"
        } else {
            tracing::error!(message = %error.message, "GraphQL error without a code");
            error.message = "internal server error".into();
            "INTERNAL_SERVER_ERROR"
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
}
