//! The current definitions of the product's functions, views and triggers: one file each
//! under `sql/`, applied after the migrations, under the migration lock, in the order of
//! [`DEFINITIONS`] (the idea of Flyway's repeatable migrations).
//!
//! - A file is applied when its text changed since it was last applied (an md5 per file
//!   in `cockpit.sql_definitions`), or when an object it declares is missing (a migration
//!   or a cascade dropped it).
//! - Files use `CREATE OR REPLACE`. When PostgreSQL refuses to replace (a function's
//!   result or parameter names changed, a view lost or renamed a column), the file's
//!   objects are dropped with their dependants and the file applied again; the dependants'
//!   files, later in the order, are then missing objects and are applied in turn.
//! - A function whose argument list changed leaves its old signature behind: it is dropped.
//! - A function, view or trigger in the product's schemas that no file declares is
//!   retired (dropped), so that a database migrated from any release ends with exactly
//!   the objects of a fresh one.
//!
//! All of it runs in one transaction: a start either applies every change or none.

use std::collections::BTreeSet;

use tokio_postgres::error::SqlState;

use super::DbError;

/// One file of `sql/` that defines functions, views or triggers.
#[derive(Debug, Clone, Copy)]
pub struct Definition {
    /// Path under `sql/`.
    pub path: &'static str,
    /// Its text.
    pub sql: &'static str,
}

macro_rules! definitions {
    ($($path:literal),* $(,)?) => {
        &[$(Definition { path: $path, sql: include_str!(concat!("../../sql/", $path)) }),*]
    };
}

/// Every definition file, in the order they are applied: what a file uses comes before it
/// (a view after the functions it calls, a trigger with or after its function).
pub const DEFINITIONS: &[Definition] = definitions![
    "ingest/parse.sql",
    "agents/search_key.sql",
    "live/notify.sql",
    "refresh/mark_dirty.sql",
    "ingest/judge.sql",
    "ingest/store.sql",
    "ingest/facts.sql",
    "ingest/sequential.sql",
    "ingest/shaped.sql",
    "ingest/well_formed.sql",
    "ingest/events.sql",
    "insights/status_seconds.sql",
    "insights/status_time.sql",
    "agents/set_agent_status.sql",
    "refresh/conversation_facts.sql",
    "refresh/refresh_daily.sql",
    "refresh/time_zone.sql",
    "refresh/service_level.sql",
    "live/agent_active.sql",
    "live/conversations.sql",
    "insights/conversation_live_facts.sql",
    "oracle/agent_daily_reference.sql",
    "oracle/conversation_live_reference.sql",
    "reporting/organizations.sql",
    "reporting/agent_daily.sql",
    "reporting/agent_live.sql",
    "reporting/agent_status_changes.sql",
    "reporting/agent_status_daily.sql",
    "reporting/open_conversations.sql",
    "scale/distribute.sql",
];

/// The schemas whose functions, views and triggers are the product's (and only defined
/// under `sql/`).
pub const PRODUCT_SCHEMAS: &[&str] = &["cockpit", "reporting"];

/// A function, view or trigger, named as the catalog names it (unquoted names in lower
/// case, qualified by schema).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SqlObject {
    /// `schema.name` (every overload: the product overloads no function name).
    Function(String),
    /// `schema.name`, materialized or not.
    View(String),
    /// A trigger and its `schema.table`.
    Trigger { name: String, table: String },
}

impl std::fmt::Display for SqlObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlObject::Function(name) => write!(f, "function {name}"),
            SqlObject::View(name) => write!(f, "view {name}"),
            SqlObject::Trigger { name, table } => write!(f, "trigger {name} on {table}"),
        }
    }
}

/// The objects an SQL text creates (`CREATE [OR REPLACE] FUNCTION|[MATERIALIZED] VIEW|
/// [CONSTRAINT] TRIGGER`), read past comments, string literals and dollar-quoted bodies.
pub fn declared(sql: &str) -> Vec<SqlObject> {
    let words = words(sql);
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] != "create" {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if words.get(j).map(String::as_str) == Some("or")
            && words.get(j + 1).map(String::as_str) == Some("replace")
        {
            j += 2;
        }
        if matches!(
            words.get(j).map(String::as_str),
            Some("materialized" | "constraint")
        ) {
            j += 1;
        }
        match (words.get(j).map(String::as_str), words.get(j + 1)) {
            (Some("function"), Some(name)) => found.push(SqlObject::Function(name.clone())),
            (Some("view"), Some(name)) => found.push(SqlObject::View(name.clone())),
            (Some("trigger"), Some(name)) => {
                // CREATE TRIGGER name {BEFORE|AFTER|INSTEAD OF} events ON table …
                let on = words[j + 2..].iter().position(|w| w == "on");
                if let Some(table) = on.and_then(|k| words.get(j + 3 + k)) {
                    found.push(SqlObject::Trigger {
                        name: name.clone(),
                        table: table.clone(),
                    });
                }
            }
            _ => {}
        }
        i = j + 1;
    }
    found
}

/// The words of an SQL text (identifiers and keywords, dotted names kept whole, unquoted
/// ones folded to lower case), without comments, literals or dollar-quoted strings.
fn words(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut i = 0;
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &sql[i..];
        if rest.starts_with("--") {
            flush(&mut word, &mut out);
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            flush(&mut word, &mut out);
            i += rest.find("*/").map_or(rest.len(), |k| k + 2);
        } else if c == b'\'' {
            flush(&mut word, &mut out);
            // '' inside a literal is two literals back to back: same effect.
            i += 1 + rest[1..].find('\'').map_or(rest.len(), |k| k + 1);
        } else if c == b'"' {
            // A quoted identifier: kept as written, part of the current word.
            let end = rest[1..].find('"').map_or(rest.len() - 1, |k| k + 1);
            word.push_str(&rest[1..end]);
            i += end + 1;
        } else if c == b'$' && word.is_empty() {
            let tag_len = rest[1..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map(|k| k + 1);
            match tag_len {
                Some(k) if rest.as_bytes()[k] == b'$' => {
                    let tag = &rest[..=k];
                    let body = &rest[k + 1..];
                    i += k + 1 + body.find(tag).map_or(body.len(), |e| e + tag.len());
                }
                _ => i += 1,
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$' {
            word.push(char::from(c.to_ascii_lowercase()));
            i += 1;
        } else if c >= 0x80 {
            let ch = rest.chars().next().unwrap_or(' ');
            word.extend(ch.to_lowercase());
            i += ch.len_utf8();
        } else {
            flush(&mut word, &mut out);
            i += 1;
        }
    }
    flush(&mut word, &mut out);
    out
}

/// What one application did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Files applied (changed, or missing an object).
    pub files: Vec<&'static str>,
    /// Objects dropped because no file declares them any more, or an old signature.
    pub retired: Vec<String>,
}

/// Every function, view and trigger of the product's schemas, as the catalog lists them
/// (extension members left out).
pub const CATALOG_SQL: &str = include_str!("../../sql/queries/definitions_catalog.sql");

/// The objects the catalog of the connected database holds.
pub async fn catalog(client: &tokio_postgres::Client) -> Result<BTreeSet<SqlObject>, DbError> {
    let schemas: Vec<&str> = PRODUCT_SCHEMAS.to_vec();
    let rows = client.query(CATALOG_SQL, &[&schemas]).await?;
    rows.iter()
        .map(|row| {
            let kind: &str = row.get("kind");
            let name: String = row.get("name");
            match kind {
                "function" => Ok(SqlObject::Function(name)),
                "view" => Ok(SqlObject::View(name)),
                "trigger" => Ok(SqlObject::Trigger {
                    name,
                    table: row.get("table_name"),
                }),
                other => Err(DbError::Unexpected(format!("catalog kind {other}"))),
            }
        })
        .collect()
}

/// Applies the definitions that changed, in one transaction. The caller holds the
/// migration lock.
pub async fn apply(client: &tokio_postgres::Client) -> Result<Applied, DbError> {
    client.batch_execute("BEGIN").await?;
    match apply_in_transaction(client).await {
        Ok(applied) => {
            client.batch_execute("COMMIT").await?;
            Ok(applied)
        }
        Err(e) => {
            // The connection may be gone; the error that matters is the first one.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn apply_in_transaction(client: &tokio_postgres::Client) -> Result<Applied, DbError> {
    let stored = client
        .query("SELECT file, checksum FROM cockpit.sql_definitions", &[])
        .await?;
    let stored: std::collections::HashMap<String, String> =
        stored.iter().map(|row| (row.get(0), row.get(1))).collect();
    let mut applied = Applied::default();
    let mut present = catalog(client).await?;
    // What each file declares, and the md5 of every file in one round trip.
    let declared_by: Vec<Vec<SqlObject>> = DEFINITIONS.iter().map(|d| declared(d.sql)).collect();
    let declared_all: BTreeSet<SqlObject> = declared_by.iter().flatten().cloned().collect();
    let texts: Vec<&str> = DEFINITIONS.iter().map(|d| d.sql).collect();
    let checksums: Vec<String> = client
        .query(
            "SELECT md5(t) FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n",
            &[&texts],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for ((def, objects), checksum) in DEFINITIONS.iter().zip(&declared_by).zip(&checksums) {
        let changed = stored.get(def.path) != Some(checksum);
        let missing = objects.iter().any(|o| !present.contains(o));
        if !changed && !missing {
            continue;
        }
        let mut before = Vec::new();
        for object in objects {
            before.push(function_oids(client, std::slice::from_ref(object)).await?);
        }
        // Whether this file dropped anything (the catalog is read again only then).
        let mut dropped = false;
        client.batch_execute("SAVEPOINT definition").await?;
        match client.batch_execute(def.sql).await {
            Ok(()) => client.batch_execute("RELEASE SAVEPOINT definition").await?,
            Err(e) if is_replace_refused(&e) => {
                // A changed result type, parameter names or view columns: drop and create,
                // with the dependants (their files are later in the order, and re-applied
                // below because their objects are then missing).
                client
                    .batch_execute("ROLLBACK TO SAVEPOINT definition")
                    .await?;
                tracing::info!(file = def.path, "definition changed shape: drop and create");
                // The drop takes the dependent views with it: only ours, which their files
                // re-create. Anyone else's (a BI user's view) stops the start, named.
                let foreign = foreign_dependants(client, objects, &declared_all).await?;
                if !foreign.is_empty() {
                    return Err(DbError::Definition(
                        def.path,
                        format!(
                            "its objects changed shape and must be re-created, but {} \
                             depend on them and are not the product's: drop them, start, \
                             and create them again",
                            foreign.join(", ")
                        ),
                    ));
                }
                for object in objects {
                    drop_object(client, object, true).await?;
                }
                dropped = true;
                client
                    .batch_execute(def.sql)
                    .await
                    .map_err(|e| DbError::Definition(def.path, super::describe(&e)))?;
            }
            Err(e) => return Err(DbError::Definition(def.path, super::describe(&e))),
        }
        // A function whose argument list changed is a new function beside the old one: the
        // old one goes, with the views of ours built on it (their files, later in the
        // order, are then missing objects and re-create them on the new one). Anyone
        // else's view on it stops the start, named.
        for (object, before) in objects.iter().zip(&before) {
            let after = function_oids(client, std::slice::from_ref(object)).await?;
            if after.iter().any(|oid| !before.contains(oid)) {
                for oid in before.iter().filter(|oid| after.contains(oid)) {
                    let foreign =
                        foreign_dependants(client, std::slice::from_ref(object), &declared_all)
                            .await?;
                    if !foreign.is_empty() {
                        return Err(DbError::Definition(
                            def.path,
                            format!(
                                "a function's argument list changed and its old version must \
                                 go, but {} depend on it and are not the product's: drop \
                                 them, start, and create them again",
                                foreign.join(", ")
                            ),
                        ));
                    }
                    applied
                        .retired
                        .push(drop_function(client, *oid, true).await?);
                    dropped = true;
                }
            }
        }
        client
            .execute(
                "INSERT INTO cockpit.sql_definitions (file, checksum) VALUES ($1, $2)
                 ON CONFLICT (file) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
                &[&def.path, checksum],
            )
            .await?;
        applied.files.push(def.path);
        if dropped {
            present = catalog(client).await?;
        }
    }
    // Objects no file declares any more: triggers first, then views, then functions.
    // (`present` may still list what a cascade dropped: the drops below are IF EXISTS.)
    let mut retired: Vec<&SqlObject> = present.difference(&declared_all).collect();
    retired.sort_by_key(|o| match o {
        SqlObject::Trigger { .. } => 0,
        SqlObject::View(_) => 1,
        SqlObject::Function(_) => 2,
    });
    for object in retired {
        drop_object(client, object, false).await?;
        applied.retired.push(object.to_string());
    }
    let files: Vec<&str> = DEFINITIONS.iter().map(|d| d.path).collect();
    client
        .execute(
            "DELETE FROM cockpit.sql_definitions WHERE file <> ALL ($1)",
            &[&files],
        )
        .await?;
    Ok(applied)
}

/// The views (at any depth) that depend on `objects` and that no definition declares.
async fn foreign_dependants(
    client: &tokio_postgres::Client,
    objects: &[SqlObject],
    ours: &BTreeSet<SqlObject>,
) -> Result<Vec<String>, DbError> {
    let mut oids = function_oids(client, objects).await?;
    for object in objects {
        if let SqlObject::View(name) = object {
            let oid: Option<i64> = client
                .query_one("SELECT to_regclass($1)::oid::bigint", &[name])
                .await?
                .get(0);
            oids.extend(oid);
        }
    }
    let rows = client
        .query(
            "WITH RECURSIVE dependant(oid) AS (
                 SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid::bigint = ANY ($1)
                 UNION
                 SELECT r.ev_class FROM dependant x
                   JOIN pg_depend d ON d.refobjid = x.oid AND d.classid = 'pg_rewrite'::regclass
                   JOIN pg_rewrite r ON r.oid = d.objid
             )
             SELECT DISTINCT n.nspname || '.' || c.relname
               FROM dependant x JOIN pg_class c ON c.oid = x.oid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid::bigint <> ALL ($1)",
            &[&oids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|name| !ours.contains(&SqlObject::View(name.clone())))
        .collect())
}

/// Whether PostgreSQL refused a `CREATE OR REPLACE` because the object changed shape.
fn is_replace_refused(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::INVALID_FUNCTION_DEFINITION) | Some(&SqlState::INVALID_TABLE_DEFINITION)
    )
}

/// The oids of the functions among `objects` (every overload of each name).
async fn function_oids(
    client: &tokio_postgres::Client,
    objects: &[SqlObject],
) -> Result<Vec<i64>, DbError> {
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| match o {
            SqlObject::Function(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT p.oid::bigint FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname || '.' || p.proname = ANY ($1)",
            &[&names],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Drops one function by oid if it still exists (with its dependants when `cascade`),
/// answering what it dropped.
async fn drop_function(
    client: &tokio_postgres::Client,
    oid: i64,
    cascade: bool,
) -> Result<String, DbError> {
    let signature: String = client
        .query_one("SELECT $1::bigint::oid::regprocedure::text", &[&oid])
        .await?
        .get(0);
    let cascade = if cascade { " CASCADE" } else { "" };
    client
        .batch_execute(&format!("DROP FUNCTION IF EXISTS {signature}{cascade}"))
        .await?;
    Ok(format!("function {signature}"))
}

/// Drops `object` if it exists (a function: every overload), with its dependants when
/// `cascade`.
async fn drop_object(
    client: &tokio_postgres::Client,
    object: &SqlObject,
    cascade: bool,
) -> Result<(), DbError> {
    match object {
        SqlObject::Function(_) => {
            for oid in function_oids(client, std::slice::from_ref(object)).await? {
                drop_function(client, oid, cascade).await?;
            }
        }
        SqlObject::View(name) => {
            let kind: Option<String> = client
                .query_one(
                    "SELECT (SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1))",
                    &[name],
                )
                .await?
                .get(0);
            let what = match kind.as_deref() {
                Some("m") => "MATERIALIZED VIEW",
                Some(_) => "VIEW",
                None => return Ok(()),
            };
            client
                .batch_execute(&format!(
                    "DROP {what} IF EXISTS {}{}",
                    qualified(name),
                    if cascade { " CASCADE" } else { "" }
                ))
                .await?;
        }
        SqlObject::Trigger { name, table } => {
            client
                .batch_execute(&format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    super::quote_ident(name),
                    qualified(table)
                ))
                .await?;
        }
    }
    Ok(())
}

/// `schema.name` quoted part by part.
fn qualified(name: &str) -> String {
    name.split('.')
        .map(super::quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_reads_past_comments_literals_and_bodies() {
        let sql = r#"
            -- CREATE FUNCTION cockpit.not_this() in a comment
            /* CREATE VIEW cockpit.nor_this */
            CREATE OR REPLACE FUNCTION cockpit.f(p text) RETURNS text LANGUAGE sql
            AS $body$ SELECT 'CREATE VIEW cockpit.inside' $body$;
            COMMENT ON FUNCTION cockpit.f(text) IS 'CREATE TRIGGER x ON y';
            CREATE VIEW Reporting.V AS SELECT 1;
            create materialized view cockpit."Mixed" as select 2;
            CREATE OR REPLACE TRIGGER t_live
                AFTER INSERT OR UPDATE ON cockpit.events
                FOR EACH STATEMENT EXECUTE FUNCTION cockpit.f();
        "#;
        assert_eq!(
            declared(sql),
            vec![
                SqlObject::Function("cockpit.f".into()),
                SqlObject::View("reporting.v".into()),
                SqlObject::View("cockpit.Mixed".into()),
                SqlObject::Trigger {
                    name: "t_live".into(),
                    table: "cockpit.events".into()
                },
            ]
        );
    }

    #[test]
    fn every_definition_file_declares_something_once() {
        let mut seen = BTreeSet::new();
        for def in DEFINITIONS {
            let objects = declared(def.sql);
            assert!(!objects.is_empty(), "{} declares nothing", def.path);
            for object in objects {
                assert!(seen.insert(object.clone()), "{object} twice ({})", def.path);
            }
        }
    }
}
