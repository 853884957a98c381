//! The load generator's files import each other without circles: a reader
//! can start at the bottom (records, stats) and climb, never needing a
//! file above to understand one below. This test reads every `crate::` and
//! `super::` path in loadgen/src (imports and paths in code; not comments,
//! not in-file tests), resolves each to the file that defines it, and fails
//! naming the files of any circle it finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `["run", "engine"]` for run/engine.rs, `["run"]` for run/mod.rs.
type Module = Vec<String>;

/// Every .rs file under `dir`, by module path, with its text.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Module, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let mut module = prefix.to_vec();
        if path.is_dir() {
            module.push(name);
            modules(&path, &module, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                module.push(name);
            }
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The code of a file without its comments and its in-file tests (a test
/// may use anything).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The paths a file of module `own` names: `crate::a::b` gives a::b, and
/// `super::c` gives c beside `own`.
fn named(code: &str, own: &[String]) -> Vec<Module> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (i, _) in code.match_indices("::") {
        // Only paths that start at `crate` or `super`.
        let head: String =
            code[..i].chars().rev().take_while(|c| ident(*c)).collect::<Vec<_>>().into_iter().rev().collect();
        let before = code[..i - head.len()].chars().last();
        if !matches!(head.as_str(), "crate" | "super") || before.is_some_and(|c| ident(c) || c == ':') {
            continue;
        }
        let mut path: Module = if head == "super" { own[..own.len().saturating_sub(1)].to_vec() } else { Vec::new() };
        let mut rest = &code[i + 2..];
        loop {
            let seg: String = rest.chars().take_while(|c| ident(*c)).collect();
            if seg.is_empty() {
                break;
            }
            rest = &rest[seg.len()..];
            path.push(seg);
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        out.push(path);
    }
    out
}

/// The circles among `files`, each as "a -> b -> a".
fn circles(files: &BTreeMap<Module, String>) -> Vec<String> {
    let mut edges: BTreeMap<&Module, BTreeSet<&Module>> = BTreeMap::new();
    for (module, text) in files {
        for path in named(&code(text), module) {
            // The longest prefix of the path that is a file's module.
            let target = (1..=path.len()).rev().find_map(|n| files.get_key_value(&path[..n]).map(|(k, _)| k));
            if let Some(t) = target.filter(|t| *t != module) {
                edges.entry(module).or_default().insert(t);
            }
        }
    }
    fn visit<'a>(
        m: &'a Module,
        edges: &BTreeMap<&'a Module, BTreeSet<&'a Module>>,
        stack: &mut Vec<&'a Module>,
        done: &mut BTreeSet<&'a Module>,
        found: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = stack.iter().position(|s| *s == m) {
            let names: Vec<String> = stack[at..].iter().copied().chain([m]).map(|p| p.join("::")).collect();
            found.push(names.join(" -> "));
            return;
        }
        stack.push(m);
        for t in edges.get(m).into_iter().flatten() {
            visit(t, edges, stack, done, found);
        }
        stack.pop();
        done.insert(m);
    }
    let (mut found, mut done) = (Vec::new(), BTreeSet::new());
    for m in files.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn no_circle_of_imports_between_the_load_generators_files() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    modules(&src, &[], &mut files);
    assert!(files.len() > 20, "read {} files from {}", files.len(), src.display());
    let found = circles(&files);
    assert!(found.is_empty(), "circles of imports between files:\n{}", found.join("\n"));
}

#[test]
fn a_circle_is_found_where_there_is_one() {
    let file = |m: &[&str], text: &str| (m.iter().map(|s| s.to_string()).collect::<Module>(), text.to_string());
    let mut files: BTreeMap<Module, String> = [
        file(&["run"], "pub mod engine;"),
        file(&["run", "engine"], "use super::conn::Tally;\nfn f() { crate::stats::median(&[]); }"),
        file(&["run", "conn"], "// use crate::run::engine; (a comment)\nuse crate::stats::{self, Spread};"),
        file(&["stats"], "pub fn median() {}\n#[cfg(test)]\nmod tests { use crate::run::engine; }"),
    ]
    .into_iter()
    .collect();
    assert_eq!(circles(&files), Vec::<String>::new(), "comments and in-file tests do not count");
    files.insert(file(&["stats"], "use crate::run::engine::Thing;").0, "use crate::run::engine::Thing;".into());
    let found = circles(&files);
    assert!(found.iter().any(|c| c.contains("stats -> run::engine")), "{found:?}");
}
