//! The layering of `src/` (README, "Layout"), checked on Rust paths as the compiler reads
//! them: every `use` tree and every path in the code, resolved from `crate`, `self` and
//! `super` to the top-level module it reaches.
//!
//! - The domain and everything that stores, ingests or pushes (`model`, `db`, `store`,
//!   `ingest`, `live`) reaches nothing of the API or the binary (`graphql`, `http`, `web`,
//!   `error`, `startup`, `cli`, `demo`, `bench`) and names no web or GraphQL framework.
//! - `config`, `auth` and `telemetry` stay below `http` (and below everything above it).
//! - The top-level modules form no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Modules that store, ingest or push, and the domain they share.
const LOWER: &[&str] = &["model", "db", "store", "ingest", "live"];
/// Plumbing below the HTTP edge.
const BELOW_HTTP: &[&str] = &["config", "auth", "telemetry"];
/// The API, the screen and the binary's commands.
const UPPER: &[&str] = &[
    "graphql", "http", "web", "error", "startup", "cli", "demo", "bench",
];
/// Web and GraphQL frameworks: the lower layers never name them.
const FRAMEWORKS: &[&str] = &["axum", "async_graphql", "async_graphql_axum", "tower_http"];

/// One reference from a file to a module or a crate.
#[derive(Debug, Clone)]
struct Reference {
    file: String,
    line: usize,
    /// The top-level module of this crate it reaches, or the external crate it names.
    target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Module(String),
    Extern(String),
}

/// The module path of a file under `src/` (`src/live/hub.rs` → `live::hub`).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

struct Collector<'a> {
    file: &'a str,
    /// The module the code being visited is in (inline `mod` blocks push onto it).
    module: Vec<String>,
    /// In `main.rs`, the library is reached as `cockpit::…`.
    is_main: bool,
    found: Vec<Reference>,
}

impl Collector<'_> {
    /// Resolves a path's leading segments to a reference, if it names a module of this
    /// crate from `crate`, `self` or `super`, or an external crate.
    fn resolve(&mut self, segments: &[String], line: usize) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute: Option<Vec<String>> = match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "cockpit" if self.is_main => Some(segments[1..].to_vec()),
            "self" => Some(self.module.iter().chain(&segments[1..]).cloned().collect()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let keep = self.module.len().saturating_sub(ups);
                Some(
                    self.module[..keep]
                        .iter()
                        .chain(&segments[ups..])
                        .cloned()
                        .collect(),
                )
            }
            _ => None,
        };
        let target = match absolute {
            Some(path) => match path.first() {
                Some(top) => Target::Module(top.clone()),
                None => return,
            },
            None if segments.len() > 1 || FRAMEWORKS.contains(&first.as_str()) => {
                Target::Extern(first.clone())
            }
            None => return,
        };
        self.found.push(Reference {
            file: self.file.to_string(),
            line,
            target,
        });
    }

    /// Every path a `use` tree brings in, flattened (`crate::{db, graphql::X}` gives
    /// `crate::db` and `crate::graphql::X`).
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, line: usize) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, line);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                self.resolve(&prefix.clone(), line);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                self.resolve(&prefix.clone(), line);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                prefix.push("*".into());
                self.resolve(&prefix.clone(), line);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, line);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        let mut prefix = Vec::new();
        self.use_tree(&mut prefix, &item.tree, line);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = path
            .segments
            .first()
            .map_or(0, |s| s.ident.span().start().line);
        self.resolve(&segments, line);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // The macro's own path, and any `crate::…`/`super::…` path among its tokens.
        self.visit_path(&mac.path);
        let tokens: Vec<proc_macro2::TokenTree> = mac.tokens.clone().into_iter().collect();
        paths_in_tokens(&tokens, &mut |segments, line| self.resolve(segments, line));
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }
}

/// Paths written inside a macro's tokens (`crate::a::b`, `super::x`), which syn leaves
/// unparsed.
fn paths_in_tokens(tokens: &[proc_macro2::TokenTree], found: &mut impl FnMut(&[String], usize)) {
    use proc_macro2::TokenTree;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                paths_in_tokens(&inner, found);
                i += 1;
            }
            TokenTree::Ident(id) if matches!(id.to_string().as_str(), "crate" | "super") => {
                let line = id.span().start().line;
                let mut segments = vec![id.to_string()];
                let mut j = i + 1;
                // `::` is two `:` puncts, then an ident.
                while j + 2 < tokens.len() + 1 {
                    match (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2)) {
                        (
                            Some(TokenTree::Punct(a)),
                            Some(TokenTree::Punct(b)),
                            Some(TokenTree::Ident(next)),
                        ) if a.as_char() == ':' && b.as_char() == ':' => {
                            segments.push(next.to_string());
                            j += 3;
                        }
                        _ => break,
                    }
                }
                found(&segments, line);
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// Every reference of every file, from sources given by path under `src/`.
fn references(sources: &BTreeMap<PathBuf, String>) -> Vec<Reference> {
    let mut all = Vec::new();
    for (rel, text) in sources {
        let file = syn::parse_file(text)
            .unwrap_or_else(|e| panic!("src/{} does not parse: {e}", rel.display()));
        let name = format!("src/{}", rel.display());
        let mut collector = Collector {
            file: &name,
            module: module_of(rel),
            is_main: rel == Path::new("main.rs"),
            found: Vec::new(),
        };
        collector.visit_file(&file);
        all.extend(collector.found);
    }
    all
}

/// The layer (top-level module) of a file; `main.rs` is the binary above everything.
fn top_of(file: &str) -> String {
    let rel = file.trim_start_matches("src/");
    match module_of(Path::new(rel)).first() {
        Some(top) => top.clone(),
        None if rel == "main.rs" => "main".into(),
        None => "lib".into(),
    }
}

/// Every breach of the layering rules, in words.
fn breaches(sources: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let refs = references(sources);
    let mut out = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &refs {
        let from = top_of(&r.file);
        match &r.target {
            Target::Module(to) => {
                if *to == from || from == "lib" {
                    continue;
                }
                graph.entry(from.clone()).or_default().insert(to.clone());
                if LOWER.contains(&from.as_str()) && UPPER.contains(&to.as_str()) {
                    out.push(format!(
                        "{}:{}: {from} (a lower layer) reaches {to}",
                        r.file, r.line
                    ));
                }
                if BELOW_HTTP.contains(&from.as_str()) && UPPER.contains(&to.as_str()) {
                    out.push(format!(
                        "{}:{}: {from} (below http) reaches {to}",
                        r.file, r.line
                    ));
                }
            }
            Target::Extern(name) => {
                if LOWER.contains(&from.as_str()) && FRAMEWORKS.contains(&name.as_str()) {
                    out.push(format!(
                        "{}:{}: {from} (a lower layer) names the framework {name}",
                        r.file, r.line
                    ));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        out.push(format!("a cycle of modules: {}", cycle.join(" -> ")));
    }
    out
}

/// A cycle in the graph of top-level modules, if any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn walk(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = walk(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| walk(node, graph, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `src/`, by its path below `src/`.
fn sources() -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.insert(
                    path.strip_prefix(root).expect("under src/").to_path_buf(),
                    text,
                );
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

#[test]
fn src_keeps_its_layers_and_has_no_cycle() {
    let found = breaches(&sources());
    assert!(found.is_empty(), "layering breaches:\n{}", found.join("\n"));
}

/// `sources()` with `line` added to `file` after its inner doc comment, and the line
/// number it has there.
fn with_line(file: &str, line: &str) -> (BTreeMap<PathBuf, String>, usize) {
    let mut all = sources();
    let text = all.get_mut(Path::new(file)).expect("the file exists");
    let docs = text.lines().take_while(|l| l.starts_with("//!")).count();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(docs, line);
    *text = lines.join("\n");
    (all, docs + 1)
}

#[test]
fn the_check_fails_on_an_upward_import_however_it_is_spelled() {
    for (file, line, reaches) in [
        (
            "store.rs",
            "use crate::{db, graphql::CockpitSchema};",
            "store (a lower layer) reaches graphql",
        ),
        (
            "live/hub.rs",
            "use super::super::http;",
            "live (a lower layer) reaches http",
        ),
        (
            "model.rs",
            "use crate::graphql;",
            "model (a lower layer) reaches graphql",
        ),
        (
            "config.rs",
            "fn f() { let _ = crate::http::Application::router; }",
            "config (below http) reaches http",
        ),
        (
            "ingest.rs",
            "fn f() -> axum::http::StatusCode { todo!() }",
            "names the framework axum",
        ),
        (
            "db/definitions.rs",
            "fn f() { tracing::info!(\"{}\", super::super::startup::x()); }",
            "db (a lower layer) reaches startup",
        ),
    ] {
        let (sources, at) = with_line(file, line);
        let found = breaches(&sources);
        assert!(
            found
                .iter()
                .any(|b| b.contains(reaches) && b.starts_with(&format!("src/{file}:{at}:"))),
            "`{line}` in src/{file} was not caught as `{reaches}`: {found:?}"
        );
    }
}

#[test]
fn the_check_finds_a_cycle() {
    // model is below store; model reaching store closes store -> model -> store.
    let found = breaches(&with_line("model.rs", "use crate::store;").0);
    assert!(
        found.iter().any(|b| b.starts_with("a cycle of modules")),
        "{found:?}"
    );
}
