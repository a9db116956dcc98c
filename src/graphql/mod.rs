//! The GraphQL API of spec 4. Types know nothing of HTTP: the HTTP layer authenticates the
//! request into an [`Auth`] and puts it in the request data; resolvers ask for the viewer.

pub mod errors;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use crate::db::Pool;
use async_graphql::{Context, Schema};

use crate::auth::{Claims, TokenRole};
use crate::model::Role;
use crate::store;
use errors::ApiError;

/// The schema served at `/graphql`.
pub type CockpitSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Deepest query accepted: the API's own queries are 4 deep, GraphiQL's introspection 13.
pub const MAX_DEPTH: usize = 15;
/// Largest query complexity accepted (a full cockpit query is about 60).
pub const MAX_COMPLEXITY: usize = 500;

/// Seconds between refreshes of the daily columns, as the API reports them.
#[derive(Clone, Copy, Debug)]
pub struct RefreshInterval(pub std::time::Duration);

impl RefreshInterval {
    /// Whole seconds, for the API.
    pub fn seconds(self) -> i32 {
        i32::try_from(self.0.as_secs()).unwrap_or(i32::MAX)
    }

    /// When daily columns refreshed at `refreshed_at` turn stale ([`crate::model::stale_after`]).
    pub fn stale_after(self, refreshed_at: chrono::DateTime<chrono::Utc>) -> types::DateTime {
        types::DateTime(crate::model::stale_after(refreshed_at, self.0))
    }
}

/// Builds the schema; `pool` serves the resolvers, `hub` the subscriptions.
pub fn schema(
    pool: Pool,
    hub: Arc<crate::live::hub::Hub>,
    refresh_interval: std::time::Duration,
) -> CockpitSchema {
    builder()
        .data(pool)
        .data(hub)
        .data(RefreshInterval(refresh_interval))
        .finish()
}

/// The refresh interval the schema was built with (the default when absent).
pub fn refresh_interval(ctx: &Context<'_>) -> RefreshInterval {
    ctx.data_opt::<RefreshInterval>()
        .copied()
        .unwrap_or(RefreshInterval(std::time::Duration::from_secs(
            crate::config::DEFAULT_REFRESH_SECS,
        )))
}

fn builder(
) -> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(errors::ErrorCodes)
}

/// The SDL of the schema, as `schema.graphql` holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Where a request's `cockpit` answers came from (its scope, and the publication of the
/// snapshot it was answered from, or `None` for the statement), for the HTTP layer's reuse
/// of rendered answers; the HTTP layer puts it in the request data.
#[derive(Default)]
pub struct AnswerNote(std::sync::Mutex<Vec<AnswerSource>>);

/// A `cockpit` answer's scope and publication.
pub type AnswerSource = (
    crate::live::hub::Scope,
    Option<crate::live::hub::Publication>,
);

impl AnswerNote {
    /// Records one answer.
    pub fn record(
        &self,
        scope: crate::live::hub::Scope,
        from: Option<crate::live::hub::Publication>,
    ) {
        if let Ok(mut answers) = self.0.lock() {
            answers.push((scope, from));
        }
    }

    /// The answers recorded.
    pub fn take(&self) -> Vec<AnswerSource> {
        self.0
            .lock()
            .map(|mut answers| std::mem::take(&mut *answers))
            .unwrap_or_default()
    }
}

/// Who is asking, as stored: the agent named by the token's `sub` in its `org`.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Organization id.
    pub org: String,
    /// The caller's agent id.
    pub agent_id: String,
    /// The caller's stored role.
    pub role: Role,
}

impl Viewer {
    /// Whether the caller reads the whole organization (ADMIN, SUPERVISOR).
    pub fn is_supervising(&self) -> bool {
        self.role.is_supervising()
    }

    /// FORBIDDEN unless the caller supervises.
    pub fn require_supervising(&self) -> Result<(), ApiError> {
        if self.is_supervising() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only admins and supervisors may read this".into(),
            ))
        }
    }
}

/// The outcome of authenticating a request, put in the request data.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A known agent.
    Viewer(Viewer),
    /// Refused: what every resolver that needs a viewer answers.
    Refused(Refusal),
}

/// Why a request has no viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token naming an agent of its organization (the message says which).
    Unauthenticated(String),
    /// A token that may not use the API (the message says why).
    Forbidden(String),
    /// The agents could not be read now (the database busy or unreachable): try again.
    Unavailable,
    /// The agents could not be read (logged where it happened).
    Internal,
}

impl Refusal {
    /// What the client is told.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Unauthenticated(message) | Refusal::Forbidden(message) => message,
            Refusal::Unavailable => "the service is busy; try again shortly",
            Refusal::Internal => "internal server error",
        }
    }
}

impl From<&Refusal> for ApiError {
    fn from(refusal: &Refusal) -> Self {
        match refusal {
            Refusal::Unauthenticated(message) => ApiError::Unauthenticated(message.clone()),
            Refusal::Forbidden(message) => ApiError::Forbidden(message.clone()),
            Refusal::Unavailable => ApiError::Unavailable,
            Refusal::Internal => ApiError::Internal(crate::db::DbError::Unexpected(
                "the agents could not be read while authenticating".into(),
            )),
        }
    }
}

impl Auth {
    /// Authenticates verified claims (or their failure) against the stored agents.
    pub async fn resolve(pool: &Pool, claims: Result<Claims, crate::auth::AuthError>) -> Auth {
        let claims = match claims {
            Ok(claims) => claims,
            Err(e) => return Auth::Refused(Refusal::Unauthenticated(e.to_string())),
        };
        if claims.role == TokenRole::Service {
            return Auth::Refused(Refusal::Forbidden(
                "service tokens are for ingest only".into(),
            ));
        }
        match store::agent(pool, &claims.org, &claims.sub).await {
            Ok(Some(agent)) => Auth::Viewer(Viewer {
                org: claims.org,
                agent_id: claims.sub,
                role: agent.role,
            }),
            Ok(None) => Auth::Refused(Refusal::Unauthenticated(
                "the token names no agent of its organization".into(),
            )),
            Err(e) if crate::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "authenticating a GraphQL request: database busy");
                Auth::Refused(Refusal::Unavailable)
            }
            Err(e) => {
                tracing::error!(error = %e, "authenticating a GraphQL request");
                Auth::Refused(Refusal::Internal)
            }
        }
    }
}

/// The caller, or the error every resolver answers when there is none.
pub fn viewer<'a>(ctx: &'a Context<'_>) -> Result<&'a Viewer, ApiError> {
    match ctx.data_opt::<Auth>() {
        Some(Auth::Viewer(viewer)) => Ok(viewer),
        Some(Auth::Refused(refusal)) => Err(refusal.into()),
        None => Err(ApiError::Unauthenticated("missing bearer token".into())),
    }
}

/// The database pool of the resolvers.
pub fn pool<'a>(ctx: &'a Context<'_>) -> Result<&'a Pool, ApiError> {
    ctx.data::<Pool>()
        .map_err(|_| ApiError::Internal(crate::db::DbError::Unexpected("no pool".into())))
}

/// A GraphQL-over-HTTP request body (`{"query", "operationName"?, "variables"?,
/// "extensions"?}`) read into a request; the error says, in our words, what is wrong.
pub fn request_from_json(body: &[u8]) -> Result<async_graphql::Request, String> {
    const SHAPE: &str =
        "a GraphQL request is a JSON object with a string \"query\", and optionally \
                         a string \"operationName\" and an object \"variables\"";
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| format!("the body is not JSON: {SHAPE}"))?;
    let serde_json::Value::Object(mut fields) = value else {
        return Err(format!("the body is not a JSON object: {SHAPE}"));
    };
    let query = match fields.remove("query") {
        Some(serde_json::Value::String(query)) => query,
        Some(_) => return Err(format!("\"query\" is not a string: {SHAPE}")),
        None => return Err(format!("\"query\" is missing: {SHAPE}")),
    };
    let mut request = async_graphql::Request::new(query);
    match fields.remove("operationName") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err(format!("\"operationName\" is not a string: {SHAPE}")),
    }
    match fields.remove("variables") {
        None | Some(serde_json::Value::Null) => {}
        Some(variables @ serde_json::Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(variables))
        }
        Some(_) => return Err(format!("\"variables\" is not an object: {SHAPE}")),
    }
    match fields.remove("extensions") {
        None | Some(serde_json::Value::Null | serde_json::Value::Object(_)) => {}
        Some(_) => return Err(format!("\"extensions\" is not an object: {SHAPE}")),
    }
    Ok(request)
}
