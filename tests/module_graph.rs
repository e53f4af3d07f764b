//! The library's modules depend on each other in one direction only: no cycle among the
//! top-level modules (`crate::x` paths), nor among the files of one module (`super::x` and
//! `crate::module::x` paths). Read from the source text, so it needs no build tooling; `cli`
//! (the binary's commands) sits on top of everything and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The file's code: comments and unit-test modules left out.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    strip_comments(text.split("#[cfg(test)]").next().unwrap_or_default())
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every identifier that follows `prefix` in `code`, also inside `prefix{a, b::c}` groups.
fn targets(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        let group = rest
            .strip_prefix('{')
            .map(|g| &g[..g.find('}').unwrap_or(g.len())]);
        for part in group.map_or_else(|| vec![rest], |g| g.split(',').collect()) {
            let name: String = part
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(n: &str, g: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> bool {
        if let Some(i) = path.iter().position(|p| p == n) {
            path.drain(..i);
            return true;
        }
        if done.contains(n) {
            return false;
        }
        path.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if visit(next, g, path, done) {
                return true;
            }
        }
        path.pop();
        done.insert(n.to_string());
        false
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| {
        let mut path = Vec::new();
        visit(n, graph, &mut path, &mut done).then_some(path)
    })
}

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let from = module_of(&src, file);
        if matches!(from.as_str(), "cli" | "lib" | "main") {
            continue;
        }
        let deps = graph.entry(from.clone()).or_default();
        for to in targets(&code(file), "crate::") {
            if to != from && modules.contains(&to) {
                deps.insert(to);
            }
        }
    }
    assert!(graph.len() > 10, "read the modules: {graph:?}");
    assert_eq!(cycle(&graph), None, "module cycle; graph: {graph:#?}");
}

#[test]
fn files_within_a_module_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for dir in std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()) {
        if !dir.is_dir() {
            continue;
        }
        let module = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files: Vec<_> = rust_files(&dir)
            .into_iter()
            .filter(|f| f.parent() == Some(dir.as_path()) && !f.ends_with("mod.rs"))
            .collect();
        let names: BTreeSet<String> = files
            .iter()
            .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut graph = Graph::new();
        for file in &files {
            let from = file.file_stem().unwrap().to_string_lossy().into_owned();
            let text = code(file);
            let mut deps = targets(&text, "super::");
            deps.extend(targets(&text, &format!("crate::{module}::")));
            deps.retain(|d| d != &from && names.contains(d));
            graph.insert(from, deps);
        }
        assert_eq!(
            cycle(&graph),
            None,
            "cycle among the files of {module}: {graph:#?}"
        );
    }
}

#[test]
fn the_reader_finds_cycles() {
    let g: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(Graph::new(), |mut g, (x, y)| {
            g.entry(x.into()).or_default().insert(y.into());
            g
        });
    assert_eq!(cycle(&g).map(|c| c.len()), Some(3));
    let code = "use crate::a::{b, c::d};\nlet x = crate::e::f(); // crate::g";
    let found = targets(&strip_comments(code), "crate::");
    assert_eq!(found, ["a", "e"].map(String::from).into());
}
