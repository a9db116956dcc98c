//! The supervisors' screen and GraphiQL: static assets embedded in the binary and served
//! as they are, so that nothing is loaded from the internet at run time.
//!
//! The screen (`index.html`, `app.js`, `app.css`) has no dependency and no build step; the
//! GraphiQL page uses the vendored UMD builds listed in `vendor/README.md`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the screen may load and connect to: this server only.
const SCREEN_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     font-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";
/// GraphiQL's editor sets inline styles; still nothing from another origin.
const GRAPHIQL_POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     font-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The files under `/assets/`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("app.js"),
    },
    Asset {
        path: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("app.css"),
    },
    Asset {
        path: "graphiql-init.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("graphiql-init.js"),
    },
    Asset {
        path: "graphiql/graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("vendor/graphiql.min.js"),
    },
    Asset {
        path: "graphiql/graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("vendor/graphiql.min.css"),
    },
    Asset {
        path: "graphiql/react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("vendor/react.production.min.js"),
    },
    Asset {
        path: "graphiql/react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("vendor/react-dom.production.min.js"),
    },
];

/// The routes of the screen (`/`, `/assets/…`); GraphiQL's page is [`graphiql`].
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(screen))
        .route("/assets/{*path}", get(asset))
}

fn page(html: &'static str, policy: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

async fn screen() -> Response {
    page(include_str!("index.html"), SCREEN_POLICY)
}

/// GraphiQL, from the embedded assets.
pub async fn graphiql() -> Response {
    page(include_str!("graphiql.html"), GRAPHIQL_POLICY)
}

async fn asset(Path(path): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    // The screen's own files change with the binary: revalidate; vendored ones are pinned.
    let cache = if path.starts_with("graphiql/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
