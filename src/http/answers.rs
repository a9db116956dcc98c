//! Rendered `cockpit` answers, reused while they stand (issue 22, P3).
//!
//! A query whose root fields are all `cockpit`, each answered from the snapshot of a scope
//! this instance follows, is kept as the bytes sent, by organization and request body, for
//! at most [`MAX_AGE`]. The same request from the same organization is then answered with
//! those bytes once every snapshot it came from is proven still current: the
//! read-your-writes barrier of every answer from memory, the group still at the same
//! publication, no midnight and no overdue crossing since. Such an answer is exact: its
//! `serverNow` is the instant it was made, everything in it holds as of then, and as
//! nothing in it changed since, the clock-derived fields move on from `serverNow` as the
//! schema documents. Who may ask is checked on every request, before the reuse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use axum::body::Bytes;

use crate::live::hub::{Hub, Publication, Scope};

/// Longest a rendered answer is reused (its `serverNow` is at most this old).
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Most answers kept (distinct organizations and request bodies).
const CAPACITY: usize = 512;

type Key = (String, Bytes);

/// Where an answer came from: the publication of each `cockpit` field's scope.
pub type Sources = Vec<(Scope, Publication)>;

struct Entry {
    made: Instant,
    from: Sources,
    body: Bytes,
    /// Held while one request renders this key again, so that a burst of the same
    /// request renders once.
    rendering: Arc<tokio::sync::Mutex<()>>,
}

/// The rendered answers of one instance.
#[derive(Default)]
pub struct Answers {
    entries: Mutex<HashMap<Key, Entry>>,
}

/// What [`Answers::lookup`] found.
pub enum Lookup {
    /// The bytes to send.
    Hit(Bytes),
    /// A request that was answered from memory before: render it again, holding the guard
    /// (others with the same request wait for it, then reuse what it kept).
    Stale(tokio::sync::OwnedMutexGuard<()>),
    /// Never rendered here.
    Miss,
}

impl Answers {
    /// The kept answer of `request` for `org`, if it still stands.
    pub async fn lookup(&self, hub: &Arc<Hub>, org: &str, request: &Bytes) -> Lookup {
        let key = (org.to_owned(), request.clone());
        let Some((made, from, body, rendering)) = self.get(&key) else {
            return Lookup::Miss;
        };
        if made.elapsed() < MAX_AGE && stands(hub, &from).await {
            hub.count_reused_answer();
            return Lookup::Hit(body);
        }
        let guard = rendering.lock_owned().await;
        // Rendered again by the request waited for?
        if let Some((again, from, body, _)) = self.get(&key) {
            if again != made && again.elapsed() < MAX_AGE && stands(hub, &from).await {
                hub.count_reused_answer();
                return Lookup::Hit(body);
            }
        }
        Lookup::Stale(guard)
    }

    fn get(&self, key: &Key) -> Option<(Instant, Sources, Bytes, Arc<tokio::sync::Mutex<()>>)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        Some((
            entry.made,
            entry.from.clone(),
            entry.body.clone(),
            entry.rendering.clone(),
        ))
    }

    /// Keeps `body`, the answer to `request` for `org`, rendered from `from`.
    pub fn keep(&self, org: &str, request: Bytes, from: Sources, body: Bytes) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.made.elapsed() < MAX_AGE);
        }
        let key = (org.to_owned(), request);
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            return;
        }
        let rendering = entries
            .get(&key)
            .map(|e| e.rendering.clone())
            .unwrap_or_default();
        entries.insert(
            key,
            Entry {
                made: Instant::now(),
                from,
                body,
                rendering,
            },
        );
    }
}

impl Answers {
    /// Forgets what is kept for `request` from `org` (its answer can no longer be kept:
    /// the product is gone, the scope no longer followed…), so that the same requests do
    /// not wait for one another to render it.
    pub fn forget(&self, org: &str, request: &Bytes) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(org.to_owned(), request.clone()));
        }
    }
}

async fn stands(hub: &Arc<Hub>, from: &Sources) -> bool {
    for (scope, publication) in from {
        if !hub.still_current(scope, *publication).await {
            return false;
        }
    }
    true
}

/// How many root fields the operation to run has when they are all `cockpit` fields
/// without directives (a query); `None` otherwise.
pub fn cockpit_fields(query: &str, operation_name: Option<&str>) -> Option<usize> {
    let document = async_graphql::parser::parse_query(query).ok()?;
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Query || !operation.directives.is_empty() {
        return None;
    }
    let items = &operation.selection_set.node.items;
    items
        .iter()
        .all(|item| match &item.node {
            Selection::Field(field) => {
                field.node.name.node == "cockpit" && field.node.directives.is_empty()
            }
            _ => false,
        })
        .then_some(items.len())
}

#[cfg(test)]
mod tests {
    use super::cockpit_fields;

    #[test]
    fn only_operations_of_cockpit_fields_alone_are_kept() {
        let q = "query($p: ID!) { a: cockpit(productId: $p) { day } b: cockpit(productId: \"p2\") { day } }";
        assert_eq!(cockpit_fields(q, None), Some(2));
        // Any other root field, a fragment at the root, a directive: never kept.
        assert_eq!(
            cockpit_fields("{ me { id } cockpit(productId: \"p1\") { day } }", None),
            None
        );
        assert_eq!(
            cockpit_fields(
                "{ ...F } fragment F on Query { cockpit(productId: \"p1\") { day } }",
                None
            ),
            None
        );
        assert_eq!(
            cockpit_fields(
                "query($s: Boolean!) { cockpit(productId: \"p1\") @skip(if: $s) { day } }",
                None
            ),
            None
        );
        assert_eq!(
            cockpit_fields(
                "subscription { cockpit(productId: \"p1\") { rows { position } } }",
                None
            ),
            None
        );
        assert_eq!(cockpit_fields("not graphql", None), None);
        // Of several operations, the one named; none named is not kept.
        let two = "query A { cockpit(productId: \"p1\") { day } } query B { me { id } }";
        assert_eq!(cockpit_fields(two, Some("A")), Some(1));
        assert_eq!(cockpit_fields(two, Some("B")), None);
        assert_eq!(cockpit_fields(two, None), None);
    }
}
