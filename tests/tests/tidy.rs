//! Habits that keep the codebase readable, checked on every test run (rust-analyzer's `tidy`
//! pattern): no non-test source file over [`MAX_LINES`] lines, no module cycle inside a
//! crate, every dependency declared once in `[workspace.dependencies]`, every crate on the
//! workspace lints.
//!
//! The known exceptions are listed below with the reason they still exist; each list fails
//! the test when an entry is no longer needed, so the lists only shrink.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a non-test source file may be.
const MAX_LINES: usize = 800;

/// Files still over [`MAX_LINES`], with the split the structure issue plans for them.
const LONG_FILES: &[(&str, &str)] = &[];

/// Module cycles still present, as the sorted modules of one strongly connected component.
const KNOWN_CYCLES: &[(&str, &[&str], &str)] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

fn toml_at(p: &Path) -> toml::Table {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The workspace members' directories.
fn members() -> Vec<PathBuf> {
    let manifest = toml_at(&root().join("Cargo.toml"));
    manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| root().join(m.as_str().unwrap()))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A source file that holds only tests: `tests.rs`, or under a `tests/` directory of `src`.
fn is_test_file(src: &Path, p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "tests.rs")
        || p.strip_prefix(src)
            .is_ok_and(|r| r.components().any(|c| c.as_os_str() == "tests"))
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let mut too_long = BTreeMap::new();
    for m in members() {
        let src = m.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for f in files.into_iter().filter(|f| !is_test_file(&src, f)) {
            let lines = fs::read_to_string(&f).unwrap().lines().count();
            if lines > MAX_LINES {
                too_long.insert(rel(&f), lines);
            }
        }
    }
    let known: BTreeSet<&str> = LONG_FILES.iter().map(|(f, _)| *f).collect();
    let new: Vec<String> = too_long
        .iter()
        .filter(|(f, _)| !known.contains(f.as_str()))
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(
        new.is_empty(),
        "over {MAX_LINES} lines; split by concept (docs/ARCHITECTURE.md):\n  {}",
        new.join("\n  ")
    );
    let fixed: Vec<&&str> = known
        .iter()
        .filter(|f| !too_long.contains_key(**f))
        .collect();
    assert!(
        fixed.is_empty(),
        "no longer over {MAX_LINES} lines: remove from LONG_FILES: {fixed:?}"
    );
}

/// The names a crate root re-exports, and the module each comes from (`pub use m::{A, B}` and
/// `pub use m::*`, the latter resolved through `m`'s own `pub` items).
fn reexports(src: &Path, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        if items.trim() == "*" {
            for name in pub_items(&module_files(src, module)) {
                out.insert(name, module.to_owned());
            }
        } else {
            for name in top_level_names(items) {
                out.insert(name, module.to_owned());
            }
        }
    }
    out
}

/// `pub struct|enum|fn|trait|type|const|static NAME` declared in `files`.
fn pub_items(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        for line in fs::read_to_string(f).unwrap().lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() >= 3
                && words[0] == "pub"
                && ["struct", "enum", "fn", "trait", "type", "const", "static"].contains(&words[1])
            {
                let name: String = words[2]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
    }
    out
}

/// The first path segment of each entry of `a, b::c, {d, e}`, or of a single path.
fn top_level_names(items: &str) -> Vec<String> {
    let items = items.trim();
    let inner = items
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(items);
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&inner[start..]);
    out.iter()
        .map(|s| {
            s.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The files of top-level module `m`: `m.rs` and everything under `m/`.
fn module_files(src: &Path, m: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{m}.rs"));
    if file.is_file() {
        files.push(file);
    }
    rust_files(&src.join(m), &mut files);
    files
}

/// Which top-level modules of the crate at `src` each one refers to in code (`crate::`,
/// `$crate::`, and `super::` in a top-level file, directly or through a root re-export; doc
/// comments do not count), with one place
/// that shows each edge.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn module_graph(src: &Path) -> Graph {
    let mut modules = BTreeSet::new();
    for e in fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if stem == "lib" || stem == "main" || stem == "bin" {
            continue;
        }
        if p.is_dir() || p.extension().is_some_and(|x| x == "rs") {
            modules.insert(stem);
        }
    }
    let reexported = reexports(src, &modules);
    let resolve = |name: &str| -> Option<String> {
        if modules.contains(name) {
            Some(name.to_owned())
        } else {
            reexported.get(name).cloned()
        }
    };
    let mut graph = BTreeMap::new();
    for m in &modules {
        let mut deps = BTreeMap::new();
        for f in module_files(src, m) {
            let top_level = f.parent() == Some(src);
            // Code only: a doc link (`[`Engine`](crate::Engine)`) is not an import.
            let text: String = fs::read_to_string(&f)
                .unwrap()
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("//") {
                        ""
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut prefixes = vec!["crate::"];
            if top_level {
                prefixes.push("super::");
            }
            for prefix in prefixes {
                for (i, _) in text.match_indices(prefix) {
                    // `$crate::` counts; `rocket_revoke_core::`-style paths end in "crate" too
                    // only as part of a longer identifier, which is skipped.
                    let before = text[..i].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let rest = &text[i + prefix.len()..];
                    let names = if rest.starts_with('{') {
                        let end = matching_brace(rest);
                        top_level_names(&rest[..end])
                    } else {
                        top_level_names(rest.split([';', ',', ' ', '\n', ')', '(']).next().unwrap())
                    };
                    for n in names {
                        if let Some(target) = resolve(&n) {
                            if &target != m {
                                let line = text[..i].lines().count();
                                deps.entry(target)
                                    .or_insert_with(|| format!("{}:{line} {prefix}{n}", rel(&f)));
                            }
                        }
                    }
                }
            }
        }
        graph.insert(m.clone(), deps);
    }
    graph
}

/// The length of `s` up to and including the brace that closes its first `{`.
fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|d| d.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    let g = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).into())
                .or_default()
                .insert((*b).into(), String::new());
            g.entry((*b).into()).or_default();
        }
        g
    };
    assert!(cycles(&g(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(
        cycles(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        vec![vec!["a".to_owned(), "b".into(), "c".into()]]
    );
    assert_eq!(
        top_level_names("{Engine, store::{Store, PgStore}, Scope}"),
        ["Engine", "store", "Scope"]
    );
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let mut found = BTreeSet::new();
    let mut evidence = Vec::new();
    for m in members() {
        let src = m.join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = module_graph(&src);
        for scc in cycles(&graph) {
            for a in &scc {
                for (b, at) in &graph[a] {
                    if scc.contains(b) {
                        evidence.push(format!("{a} -> {b}: {at}"));
                    }
                }
            }
            found.insert((rel(&src), scc));
        }
    }
    let known: BTreeSet<(String, Vec<String>)> = KNOWN_CYCLES
        .iter()
        .map(|(src, mods, _)| {
            (
                (*src).to_owned(),
                mods.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    assert!(
        new.is_empty(),
        "module cycles (move what both use into a leaf module both import): {new:?}\n  {}",
        evidence.join("\n  ")
    );
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "no longer cycles: remove from KNOWN_CYCLES: {gone:?}"
    );
}

#[test]
fn every_dependency_is_declared_once_in_the_workspace() {
    let mut loose = Vec::new();
    for m in members() {
        let manifest = toml_at(&m.join("Cargo.toml"));
        let mut tables: Vec<(String, &toml::Table)> = Vec::new();
        for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(t) = manifest.get(key).and_then(|v| v.as_table()) {
                tables.push((key.to_owned(), t));
            }
        }
        if let Some(targets) = manifest.get("target").and_then(|v| v.as_table()) {
            for (cfg, t) in targets {
                for key in ["dependencies", "dev-dependencies", "build-dependencies"] {
                    if let Some(t) = t.get(key).and_then(|v| v.as_table()) {
                        tables.push((format!("target.{cfg}.{key}"), t));
                    }
                }
            }
        }
        for (section, deps) in tables {
            for (name, spec) in deps {
                let inherited = spec
                    .as_table()
                    .and_then(|t| t.get("workspace"))
                    .and_then(|w| w.as_bool())
                    == Some(true);
                if !inherited {
                    loose.push(format!(
                        "{}: [{section}] {name}",
                        rel(&m.join("Cargo.toml"))
                    ));
                }
            }
        }
    }
    assert!(
        loose.is_empty(),
        "declare these in the root [workspace.dependencies] and use `name.workspace = true`:\n  {}",
        loose.join("\n  ")
    );
}

#[test]
fn every_crate_uses_the_workspace_lints() {
    let missing: Vec<String> = members()
        .into_iter()
        .filter(|m| {
            toml_at(&m.join("Cargo.toml"))
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(|w| w.as_bool())
                != Some(true)
        })
        .map(|m| rel(&m))
        .collect();
    assert!(
        missing.is_empty(),
        "add `[lints]\\nworkspace = true` to: {missing:?}"
    );
}
