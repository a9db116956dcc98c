//! GraphQL errors: resolvers answer the API's one error enum ([`ApiError`], which says
//! each kind's code), and the schema extension [`ErrorCodes`] sets the codes of errors that
//! arise before any resolver runs (parse, validation), for HTTP and WebSocket alike.

use async_graphql::ErrorExtensions;

pub use crate::error::ApiError;

/// Turns a resolver's error into the GraphQL error with its code. (`?` alone would
/// go through async-graphql's blanket `From<Display>` and lose the code.)
pub trait Coded<T> {
    /// The result with a coded GraphQL error.
    fn coded(self) -> async_graphql::Result<T>;
}

impl<T> Coded<T> for Result<T, ApiError> {
    fn coded(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
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

/// Whether a value holds a NUL character in a string (or an object key), at any depth.
fn holds_nul(value: &async_graphql::Value) -> bool {
    match value {
        async_graphql::Value::String(s) => s.contains('\0'),
        async_graphql::Value::List(items) => items.iter().any(holds_nul),
        async_graphql::Value::Object(fields) => fields
            .iter()
            .any(|(key, v)| key.as_str().contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Whether a literal of the document (an argument, a directive's argument, a variable's
/// default) holds a NUL character.
fn document_holds_nul(document: &async_graphql::parser::types::ExecutableDocument) -> bool {
    use async_graphql::parser::types::{Directive, Selection, SelectionSet};
    use async_graphql::Positioned;

    // A literal with its variables read as null (the variables are checked on their own).
    macro_rules! literal_holds_nul {
        ($value:expr) => {
            $value
                .clone()
                .into_const_with(|_| Ok::<_, std::convert::Infallible>(async_graphql::Value::Null))
                .is_ok_and(|v| holds_nul(&v))
        };
    }

    fn directives(list: &[Positioned<Directive>]) -> bool {
        list.iter().any(|d| {
            d.node
                .arguments
                .iter()
                .any(|(_, v)| literal_holds_nul!(v.node))
        })
    }
    fn selections(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => {
                f.node
                    .arguments
                    .iter()
                    .any(|(_, v)| literal_holds_nul!(v.node))
                    || directives(&f.node.directives)
                    || selections(&f.node.selection_set.node)
            }
            Selection::FragmentSpread(s) => directives(&s.node.directives),
            Selection::InlineFragment(i) => {
                directives(&i.node.directives) || selections(&i.node.selection_set.node)
            }
        })
    }
    document.operations.iter().any(|(_, op)| {
        op.node.variable_definitions.iter().any(|v| {
            v.node
                .default_value
                .as_ref()
                .is_some_and(|d| holds_nul(&d.node))
                || directives(&v.node.directives)
        }) || directives(&op.node.directives)
            || selections(&op.node.selection_set.node)
    }) || document
        .fragments
        .values()
        .any(|f| directives(&f.node.directives) || selections(&f.node.selection_set.node))
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
        let document = next.run(ctx, query, variables).await.map_err(|mut error| {
            set_code(&mut error, "GRAPHQL_PARSE_FAILED");
            error
        })?;
        // Text in PostgreSQL cannot hold NUL: a string that does is the client's error,
        // refused here for every transport before any resolver reads it.
        // A literal holds NUL only through an escape (`\u…`) or the character itself: the
        // document is walked only when its text has one.
        let literal_may_hold_nul = query.contains("\\u") || query.contains('\0');
        if variables.iter().any(|(_, value)| holds_nul(value))
            || (literal_may_hold_nul && document_holds_nul(&document))
        {
            let mut error = async_graphql::ServerError::new(
                "a string argument or variable holds a NUL character (\\u0000), which no field accepts",
                None,
            );
            set_code(&mut error, "BAD_USER_INPUT");
            return Err(error);
        }
        Ok(document)
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
