//! One current definition of each SQL object (spec 2): the functions, views and triggers
//! live in files under `sql/`, applied after the migrations; a database migrated from an
//! earlier release ends with exactly the objects of a fresh one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cockpit::db::definitions::{self, SqlObject, DEFINITIONS, PRODUCT_SCHEMAS};

use crate::common::{connect, TestDb};

/// The last release that kept functions, views and triggers in its migrations (63a4113)
/// had migrations V1–V16: the same files as here (refinery refuses a changed one).
const LAST_RELEASE_BEFORE_SQL_DEFINITIONS: u32 = 16;

fn pool(db: &TestDb) -> cockpit::db::Pool {
    cockpit::db::pool(&db.url, 2).expect("pool")
}

async fn client(db: &TestDb) -> tokio_postgres::Client {
    connect(&db.url.parse().expect("test url")).await
}

/// `pg_dump --schema-only` of `db`, without the lines that differ between any two dumps
/// (the random key of `\restrict`).
fn schema_dump(db: &TestDb) -> String {
    let bindir = cockpit::pgcluster::bindir().expect("PostgreSQL binaries");
    let out = std::process::Command::new(bindir.join("pg_dump"))
        .arg("--schema-only")
        .arg(&db.url)
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pg_dump writes UTF-8")
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first line where two dumps differ, with some context, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(5);
    format!(
        "line {at}:\n--- upgraded\n{}\n--- fresh\n{}",
        a[from..(at + 5).min(a.len())].join("\n"),
        b[from..(at + 5).min(b.len())].join("\n")
    )
}

async fn fresh() -> (TestDb, String) {
    let db = TestDb::empty().await;
    cockpit::db::migrate(&pool(&db))
        .await
        .expect("migrate fresh");
    let dump = schema_dump(&db);
    (db, dump)
}

#[tokio::test]
async fn a_database_of_the_last_release_upgraded_has_the_schema_of_a_fresh_one() {
    let old = TestDb::empty().await;
    let pool_old = pool(&old);
    cockpit::db::migrate_history_only(&pool_old, LAST_RELEASE_BEFORE_SQL_DEFINITIONS)
        .await
        .expect("migrate as the last release did");
    let c = client(&old).await;
    let has_table: bool = c
        .query_one(
            "SELECT to_regclass('cockpit.sql_definitions') IS NOT NULL",
            &[],
        )
        .await
        .expect("look up")
        .get(0);
    assert!(!has_table, "the last release had no definitions table");
    cockpit::db::migrate(&pool_old).await.expect("upgrade");

    let (_fresh, fresh_dump) = fresh().await;
    let upgraded = schema_dump(&old);
    assert!(fresh_dump.contains("CREATE FUNCTION cockpit.refresh_daily"));
    assert!(
        upgraded == fresh_dump,
        "upgraded and fresh schemas differ at {}",
        first_difference(&upgraded, &fresh_dump)
    );
}

#[tokio::test]
async fn changed_reshaped_renamed_dropped_and_retired_definitions_end_as_a_fresh_database() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    // What an earlier release could have left: each change marks its file as applied with
    // another text, as a release with that text would have.
    c.batch_execute(
        r#"
        -- A changed body.
        CREATE OR REPLACE FUNCTION cockpit.search_key(p text) RETURNS text
            LANGUAGE sql IMMUTABLE AS $$ SELECT lower(p) $$;
        -- A view of another shape (CREATE OR REPLACE refuses it).
        DROP VIEW reporting.agent_status_daily;
        CREATE VIEW reporting.agent_status_daily AS SELECT 1 AS org_id, 2 AS seconds;
        -- A function of another result type, with a view depending on it.
        DROP FUNCTION cockpit.conversation_facts(text) CASCADE;
        CREATE FUNCTION cockpit.conversation_facts(p_org text)
            RETURNS integer LANGUAGE sql AS 'SELECT 1';
        CREATE VIEW cockpit.agent_daily_reference AS
            SELECT cockpit.conversation_facts('a') AS x;
        -- A function whose argument list was another.
        DROP FUNCTION cockpit.event_rank(text);
        CREATE FUNCTION cockpit.event_rank(p_type text, p_old integer) RETURNS smallint
            LANGUAGE sql IMMUTABLE AS 'SELECT 0::smallint';
        UPDATE cockpit.sql_definitions SET checksum = 'an earlier text'
         WHERE file IN ('agents/search_key.sql', 'reporting/agent_status_daily.sql',
                        'refresh/conversation_facts.sql', 'ingest/parse.sql');
        -- Objects no definition declares any more, and a file that is gone.
        CREATE FUNCTION cockpit.retired_helper() RETURNS integer LANGUAGE sql AS 'SELECT 1';
        CREATE VIEW reporting.retired_view AS SELECT 1 AS one;
        CREATE FUNCTION cockpit.retired_trigger_function() RETURNS trigger
            LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
        CREATE TRIGGER retired_trigger AFTER INSERT ON cockpit.events
            FOR EACH STATEMENT EXECUTE FUNCTION cockpit.retired_trigger_function();
        INSERT INTO cockpit.sql_definitions (file, checksum) VALUES ('old/gone.sql', 'x');
        -- A view a migration dropped (its file unchanged).
        DROP VIEW reporting.open_conversations;
        "#,
    )
    .await
    .expect("make an earlier release's objects");

    let pool = pool(&db);
    cockpit::db::migrate(&pool)
        .await
        .expect("apply the definitions");

    let (_fresh, fresh_dump) = fresh().await;
    let dump = schema_dump(&db);
    assert!(
        dump == fresh_dump,
        "schemas differ at {}",
        first_difference(&dump, &fresh_dump)
    );
    // Every file recorded with the checksum of its text, and nothing else.
    let rows = c
        .query("SELECT file, checksum FROM cockpit.sql_definitions", &[])
        .await
        .expect("read checksums");
    let stored: BTreeMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored.len(), DEFINITIONS.len());
    for def in DEFINITIONS {
        let md5: String = c
            .query_one("SELECT md5($1)", &[&def.sql])
            .await
            .expect("md5")
            .get(0);
        assert_eq!(stored.get(def.path), Some(&md5), "{}", def.path);
    }
    // Nothing changed since: the next start applies nothing.
    let applied = definitions::apply(&c).await.expect("apply again");
    assert!(applied.files.is_empty(), "re-applied {:?}", applied.files);
    assert!(applied.retired.is_empty(), "retired {:?}", applied.retired);
}

/// Every `.sql` file under `sql/`, with the path below it.
fn sql_files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("read sql/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sql_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            let rel = path.strip_prefix(root).expect("under sql/");
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
}

#[tokio::test]
async fn every_function_view_and_trigger_has_exactly_one_definition_under_sql() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    let in_database = definitions::catalog(&c).await.expect("catalog");
    // The product's objects, not an empty catalog (43 before issue 23 moved triggers into functions).
    assert!(in_database.len() >= 35, "{} objects", in_database.len());

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files = Vec::new();
    sql_files(&root, &root, &mut files);
    let is_product = |o: &SqlObject| {
        let name = match o {
            SqlObject::Function(n) | SqlObject::View(n) => n,
            SqlObject::Trigger { table, .. } => table,
        };
        PRODUCT_SCHEMAS
            .iter()
            .any(|s| name.starts_with(&format!("{s}.")))
    };
    let mut defined: BTreeMap<SqlObject, Vec<String>> = BTreeMap::new();
    let mut defining_files = BTreeSet::new();
    for (rel, path) in &files {
        let text = std::fs::read_to_string(path).expect("read a definition");
        for object in definitions::declared(&text).into_iter().filter(is_product) {
            defining_files.insert(rel.clone());
            defined.entry(object).or_default().push(rel.clone());
        }
    }
    for object in &in_database {
        match defined.get(object).map(Vec::as_slice) {
            Some([_one]) => {}
            Some(many) => panic!("{object} is defined in {many:?}"),
            None => panic!("{object} has no definition under sql/"),
        }
    }
    for object in defined.keys() {
        assert!(
            in_database.contains(object),
            "{object} is defined but not in the database"
        );
    }
    // Every defining file is applied, in the one stated order.
    let ordered: BTreeSet<String> = DEFINITIONS.iter().map(|d| d.path.to_string()).collect();
    assert_eq!(defining_files, ordered);
}

#[tokio::test]
async fn a_reshaped_view_that_someone_else_built_on_stops_the_start_with_its_name() {
    let db = TestDb::new().await;
    let c = client(&db).await;
    c.batch_execute(
        "DROP VIEW reporting.agent_status_daily;
         CREATE VIEW reporting.agent_status_daily AS SELECT 1 AS org_id, 2 AS seconds;
         CREATE VIEW public.my_breaks AS SELECT seconds FROM reporting.agent_status_daily;
         UPDATE cockpit.sql_definitions SET checksum = 'an earlier text'
          WHERE file = 'reporting/agent_status_daily.sql';",
    )
    .await
    .expect("an older view with a BI user's view on it");
    let error = cockpit::db::migrate(&pool(&db))
        .await
        .expect_err("the user's view is not dropped silently");
    let message = error.to_string();
    assert!(
        message.contains("reporting/agent_status_daily.sql")
            && message.contains("public.my_breaks"),
        "{message}"
    );
    // Nothing was applied: the user's view is still there.
    let kept: bool = c
        .query_one("SELECT to_regclass('public.my_breaks') IS NOT NULL", &[])
        .await
        .expect("look up")
        .get(0);
    assert!(kept);
}
