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

/// Sets the codes of spec 4 where the errors arise, for every transport (HTTP and
/// WebSocket run the same schema): a query that does not parse is `GRAPHQL_PARSE_FAILED`,
/// one that fails validation (depth and complexity limits included) or whose operation
/// cannot be chosen `GRAPHQL_VALIDATION_FAILED`. An error that reaches the client without a
/// code is a fault of ours: logged, answered `INTERNAL_SERVER_ERROR` with no detail.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn set_code(error: &mut async_graphql::ServerError, code: &'static str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

/// Every error of `response` has a code; those that had none are internal faults.
fn code_the_rest(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            // Without a path the request failed before any field ran: the operation it
            // names is not in the document (or it names none of several).
            let code = if error.path.is_empty() {
                "GRAPHQL_VALIDATION_FAILED"
            } else {
                tracing::error!(message = %error.message, "GraphQL error without a code");
                error.message = "internal server error".into();
                "INTERNAL_SERVER_ERROR"
            };
            set_code(error, code);
        }
    }
}

#[async_graphql::async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodesExtension {
    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx).await;
        code_the_rest(&mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures_util::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures_util::stream::BoxStream<'s, async_graphql::Response> {
        use futures_util::StreamExt;
        next.run(ctx, stream)
            .map(|mut response| {
                code_the_rest(&mut response);
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut error| {
            set_code(&mut error, "GRAPHQL_PARSE_FAILED");
            error
        })
    }

    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for error in &mut errors {
                set_code(error, "GRAPHQL_VALIDATION_FAILED");
            }
            errors
        })
    }
}
