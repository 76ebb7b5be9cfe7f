//! Rules about the shape of the code that the compiler does not enforce:
//! no module imports loop (in any crate of the workspace), the node runtime
//! and the client-side commands know nothing of each other, and no SQL
//! function outgrows a screen.
//!
//! The checks read the sources as text. That is enough because `cargo fmt`
//! fixes the layout they rely on: a function's closing brace sits at the
//! indentation of its `fn`, and paths are written `crate::a::b` or
//! `super::b`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates whose `src/` the rules cover.
const CRATES: [&str; 8] = [
    "proto", "log", "kv", "txn", "sql", "client", "server", "benches",
];

/// Longest non-test function allowed in `sql/`, in lines.
const MAX_SQL_FUNCTION_LINES: usize = 80;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate sits in the workspace")
        .to_path_buf()
}

/// A module path inside one crate (`[]` is the crate root).
type ModPath = Vec<String>;

/// One crate's library modules: module path -> source without tests and
/// comments.
fn modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut found = BTreeMap::new();
    collect(src, src, &mut found);
    found
}

fn collect(src: &Path, dir: &Path, found: &mut BTreeMap<ModPath, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("source directory is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(src).expect("below src");
        if relative.starts_with("bin") {
            continue; // binaries are crates of their own
        }
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // a test module kept in a file of its own
        }
        if path.is_dir() {
            collect(src, &path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is readable");
            found.insert(module_path(relative), without_tests_and_comments(&text));
        }
    }
}

fn module_path(relative: &Path) -> ModPath {
    let mut parts: Vec<String> = relative
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

/// The source up to its test module, without comment lines.
fn without_tests_and_comments(text: &str) -> String {
    let mut kept = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let next = lines.peek().map_or("", |l| l.trim_start());
        if trimmed == "#[cfg(test)]" && next.starts_with("mod ") {
            break;
        }
        if !trimmed.starts_with("//") {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// `use` trees written out as one path each: `a::{b, c::d as e}` gives
/// `(a::b, b)` and `(a::c::d, e)`, (path, the name it binds).
fn expand_use_tree(prefix: &str, tree: &str, out: &mut Vec<(String, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let prefix = join_path(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use_tree(&prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use_tree(&prefix, &inner[start..], out);
        return;
    }
    if tree.is_empty() || tree.ends_with('*') {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim())),
        None => (tree, None),
    };
    let full = match path {
        "self" => prefix.to_string(),
        path => join_path(prefix, path),
    };
    let last = full.rsplit("::").next().unwrap_or_default().to_string();
    out.push((full, alias.map_or(last, str::to_string)));
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}::{rest}"),
    }
}

/// `text` with each `use` statement replaced by the paths it names, and
/// the names its `pub use` statements re-export: (name, path).
fn expand_uses(text: &str) -> (String, Vec<(String, String)>) {
    let mut expanded = String::new();
    let mut reexports = Vec::new();
    let mut rest = text;
    while let Some(at) = find_use(rest) {
        expanded.push_str(&rest[..at]);
        let statement = &rest[at..];
        let end = statement.find(';').unwrap_or(statement.len());
        let public = statement.starts_with("pub");
        let tree = &statement[statement.find("use ").map_or(0, |u| u + 4)..end];
        let mut paths = Vec::new();
        expand_use_tree("", tree, &mut paths);
        for (path, name) in paths {
            expanded.push_str(&format!(" {path} "));
            if public {
                reexports.push((name, path));
            }
        }
        rest = &statement[(end + 1).min(statement.len())..];
    }
    expanded.push_str(rest);
    (expanded, reexports)
}

/// Where the next `use` statement (any visibility) starts.
fn find_use(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find("use ") {
        let at = from + found;
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let before = text[line_start..at].trim();
        if before.is_empty() || before.starts_with("pub") && !before.contains(' ') {
            return Some(
                line_start + text[line_start..].len() - text[line_start..].trim_start().len(),
            );
        }
        from = at + 4;
    }
    None
}

/// Every `crate::`, `super::`, `self::` or child-module path in `text`,
/// as its first segment and the segments that follow.
fn paths_in(text: &str) -> Vec<(String, Vec<String>)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after_colons = i >= 2 && &bytes[i - 2..i] == b"::";
        if starts_word && !after_colons && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
            let (segments, end) = segments_at(text, i);
            if segments.len() > 1 {
                found.push((segments[0].clone(), segments[1..].to_vec()));
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// The `a::b::c` path starting at byte `start`, and where it ends.
fn segments_at(text: &str, start: usize) -> (Vec<String>, usize) {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let word_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        segments.push(text[word_start..i].to_string());
        if text[i..].starts_with("::")
            && text[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        {
            i += 2;
        } else {
            return (segments, i);
        }
    }
}

/// One crate's modules as the rules see them.
struct Crate {
    /// Module -> its source, `use` statements written out.
    sources: BTreeMap<ModPath, String>,
    /// (module, name) -> the path the module re-exports under that name.
    reexports: BTreeMap<(ModPath, String), String>,
}

impl Crate {
    fn new(raw: &BTreeMap<ModPath, String>) -> Self {
        let mut sources = BTreeMap::new();
        let mut reexports = BTreeMap::new();
        for (module, text) in raw {
            let (expanded, exported) = expand_uses(text);
            for (name, path) in exported {
                reexports.insert((module.clone(), name), path);
            }
            sources.insert(module.clone(), expanded);
        }
        Self { sources, reexports }
    }

    fn known(&self, path: &ModPath) -> bool {
        self.sources.contains_key(path)
    }

    /// The module a path written in module `from` points into: the longest
    /// known module its segments name, following re-exports of the name
    /// after it (at most `hops` times).
    fn target(&self, from: &ModPath, head: &str, rest: &[String], hops: usize) -> Option<ModPath> {
        let mut base: ModPath = match head {
            "crate" => vec![],
            "super" => from[..from.len().checked_sub(1)?].to_vec(),
            "self" => from.clone(),
            child => {
                let path: ModPath = from.iter().cloned().chain([child.to_string()]).collect();
                if !self.known(&path) {
                    return None;
                }
                path
            }
        };
        let mut rest = rest.iter().peekable();
        while rest.peek().is_some_and(|s| s.as_str() == "super") {
            base.pop();
            rest.next();
        }
        for segment in rest {
            base.push(segment.clone());
            if self.known(&base) {
                continue;
            }
            base.pop();
            let Some(path) = self.reexports.get(&(base.clone(), segment.clone())) else {
                break;
            };
            let (head, rest) = path.split_once("::")?;
            let rest: Vec<String> = rest.split("::").map(str::to_string).collect();
            return match hops {
                0 => Some(base),
                _ => self.target(&base, head, &rest, hops - 1),
            };
        }
        Some(base)
    }
}

/// Module -> the modules it names, within one crate. The crate root is the
/// crate's public face: what it re-exports is followed to where it is
/// defined, and its own edges are left out (everything may use the few
/// items it defines, and it names every module).
fn import_graph(modules: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let krate = Crate::new(modules);
    krate
        .sources
        .iter()
        .map(|(from, text)| {
            let targets = match from.is_empty() {
                true => BTreeSet::new(),
                false => paths_in(text)
                    .into_iter()
                    .filter_map(|(head, rest)| krate.target(from, &head, &rest, 8))
                    .filter(|to| to != from)
                    .collect(),
            };
            (from.clone(), targets)
        })
        .collect()
}

/// Groups of modules that import each other in a loop (the strongly
/// connected components with more than one member).
fn loops(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Reachability is enough at this size: a and b share a loop when each
    // reaches the other.
    let reach = |from: &ModPath| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(at) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<_, _> = graph.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut groups: Vec<Vec<ModPath>> = Vec::new();
    for m in graph.keys() {
        if !reaches[m].contains(m) || groups.iter().any(|g| g.contains(m)) {
            continue;
        }
        let group = graph
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        groups.push(group);
    }
    groups
}

fn shown(path: &ModPath) -> String {
    match path.is_empty() {
        true => "crate".to_string(),
        false => path.join("::"),
    }
}

#[test]
fn no_modules_import_each_other_in_a_loop() {
    let mut found = Vec::new();
    for krate in CRATES {
        let graph = import_graph(&modules(&workspace().join(krate).join("src")));
        for group in loops(&graph) {
            let names: Vec<String> = group.iter().map(shown).collect();
            found.push(format!("{krate}: {}", names.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "modules in a loop:\n{}", found.join("\n"));
}

#[test]
fn the_loop_check_finds_a_loop_through_a_child_and_a_grandparent() {
    let module = |path: &[&str], text: &str| {
        let path = path.iter().map(|s| s.to_string()).collect::<ModPath>();
        (path, without_tests_and_comments(text))
    };
    let sources = BTreeMap::from([
        module(&[], "pub mod a;\npub mod b;\npub mod d;\n"),
        module(
            &["a"],
            "use crate::b::Thing;\n// crate::d is only a comment\n",
        ),
        module(&["b"], "pub mod c;\nuse c::X;\n"),
        module(
            &["b", "c"],
            "fn f() -> super::super::a::Other { todo!() }\n",
        ),
        module(
            &["d"],
            "use crate::a::Y;\n#[cfg(test)]\nmod tests { use crate::d::Z; }\n",
        ),
    ]);
    let graph = import_graph(&sources);
    let names = |group: &Vec<ModPath>| group.iter().map(shown).collect::<Vec<_>>();
    let found: Vec<_> = loops(&graph).iter().map(names).collect();
    assert_eq!(found, vec![vec!["a", "b", "b::c"]]);
}

/// Every `crate::X` a module of the server names, by top-level module.
fn server_imports(under: &[&str]) -> BTreeSet<String> {
    let sources = modules(&workspace().join("server/src"));
    let graph = import_graph(&sources);
    graph
        .iter()
        .filter(|(from, _)| {
            from.first()
                .is_some_and(|top| under.contains(&top.as_str()))
        })
        .flat_map(|(_, to)| to.iter().filter_map(|t| t.first().cloned()))
        .collect()
}

#[test]
fn the_node_runtime_imports_no_client_side_command() {
    let imported = server_imports(&["node", "replay"]);
    for forbidden in ["commands", "cli"] {
        assert!(
            !imported.contains(forbidden),
            "the node runtime imports crate::{forbidden}"
        );
    }
}

#[test]
fn client_side_commands_speak_only_the_protocol() {
    let imported = server_imports(&["commands"]);
    for forbidden in ["node", "replay", "cli"] {
        assert!(
            !imported.contains(forbidden),
            "a client-side command imports crate::{forbidden}"
        );
    }
    let sources = modules(&workspace().join("server/src"));
    for (path, text) in sources
        .iter()
        .filter(|(p, _)| p.first().is_some_and(|t| t == "commands"))
    {
        for crate_name in ["ordo_log", "ordo_kv", "ordo_sql", "ordo_server"] {
            assert!(
                !text.contains(&format!("{crate_name}::")),
                "{} uses {crate_name}; client-side commands use only ordo_client, ordo_proto and the wire half of ordo_txn",
                shown(path)
            );
        }
    }
}

/// Each function in `text` with more than `max` lines: (name, lines).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(name) = function_name(trimmed) else {
            continue;
        };
        if trimmed.ends_with(';') {
            continue; // a declaration without a body
        }
        let indent = &line[..line.len() - trimmed.len()];
        let closing = format!("{indent}}}");
        let length = lines[i..]
            .iter()
            .position(|l| *l == closing)
            .map_or(1, |end| end + 1);
        if length > max {
            long.push((name, length));
        }
    }
    long
}

/// The name of the function a line starts, if it starts one.
fn function_name(line: &str) -> Option<String> {
    let mut rest = line;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    Some(
        name.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect(),
    )
}

#[test]
fn no_sql_function_is_longer_than_a_screen() {
    let mut found = Vec::new();
    for (path, text) in modules(&workspace().join("sql/src")) {
        for (name, lines) in long_functions(&text, MAX_SQL_FUNCTION_LINES) {
            found.push(format!("sql::{}::{name}: {lines} lines", shown(&path)));
        }
    }
    assert!(
        found.is_empty(),
        "functions over {MAX_SQL_FUNCTION_LINES} lines:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_length_check_counts_a_function_to_its_closing_brace() {
    let body = "    let x = 1;\n".repeat(5);
    let text = format!("pub fn short() {{\n}}\n\n    async fn long() {{\n{body}    }}\n");
    assert_eq!(long_functions(&text, 6), vec![("long".to_string(), 7)]);
}
