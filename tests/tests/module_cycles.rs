//! No import cycle among the modules of `jit-test`, nor among those of the PostgreSQL
//! provider: each module's file is read, every path it names through `crate::` or
//! `super::` becomes an edge to the module that path lands in, and the graph must be
//! acyclic. A path that lands in an ancestor module (the crate root's re-exports, a
//! folder's `mod.rs`) is refused too: it would hide the real edge behind a re-export.
//! Code after a file's `#[cfg(test)]` (its unit tests) is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root, e.g. `["lifecycle", "broker"]`.
type Module = Vec<String>;

/// The modules of the files under `dir` (a crate's `src/` or a folder module in it),
/// read as modules of the crate whose source root is `src`.
fn modules(src: &Path, dir: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().unwrap() != "bin" {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.insert(module_of(src, &path), text);
            }
        }
    }
    found
}

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b` and `super::a` path of the code (not comments, not unit tests),
/// as a module path from the crate root, resolved against `module`'s own file.
fn paths(module: &Module, is_folder: bool, text: &str) -> Vec<Module> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            if line[..i].ends_with(|c: char| c == '$' || c == '_' || c.is_alphanumeric()) {
                continue;
            }
            out.extend(
                expand(&line[i + "crate::".len()..])
                    .iter()
                    .map(|p| segments(p)),
            );
        }
        for (i, _) in line.match_indices("super::") {
            if line[..i].ends_with("super::") {
                continue; // counted from the first `super::`
            }
            let mut base = module.clone();
            if !is_folder {
                base.pop();
            }
            let mut rest = &line[i..];
            while let Some(tail) = rest.strip_prefix("super::") {
                rest = tail;
            }
            // `super::super::` climbs once more per extra `super::`.
            let climbs = (line[i..].len() - rest.len()) / "super::".len();
            for _ in 1..climbs {
                base.pop();
            }
            for path in expand(rest) {
                let mut full = base.clone();
                full.extend(segments(&path));
                out.push(full);
            }
        }
    }
    out
}

/// A path with a group, `a::{b, c::D}`, as the paths it names (`a::b`, `a::c::D`); any
/// other path as itself.
fn expand(path: &str) -> Vec<String> {
    let split = match path.strip_prefix('{') {
        Some(group) => Some(("", group)),
        None => path.split_once("::{"),
    };
    let Some((head, group)) = split else {
        return vec![path.to_owned()];
    };
    if head.contains(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        return vec![path.to_owned()];
    }
    let group = group.split('}').next().unwrap_or("");
    group
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match head {
            "" => item.to_owned(),
            _ => format!("{head}::{item}"),
        })
        .collect()
}

/// The leading identifiers of a path (`a::b::{C, D}` → `[a, b]`).
fn segments(path: &str) -> Module {
    path.split("::")
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|s| !s.is_empty())
        .collect()
}

/// Modules the crate root re-exports under a name of their own (`pub use record::{audit,
/// report};` makes `crate::audit` the module `record::audit`): alias → module.
fn module_aliases(all: &BTreeMap<Module, String>) -> BTreeMap<String, Module> {
    let root = all.get(&Module::new()).map(String::as_str).unwrap_or("");
    let mut aliases = BTreeMap::new();
    for line in root
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub use "))
    {
        for path in expand(line.trim_end_matches(';')) {
            let module = segments(&path);
            if module.len() > 1 && all.contains_key(&module) {
                aliases.insert(module.last().unwrap().clone(), module);
            }
        }
    }
    aliases
}

/// `path` with a leading alias replaced by the module it names.
fn unalias(path: Module, aliases: &BTreeMap<String, Module>) -> Module {
    match path.first().and_then(|first| aliases.get(first)) {
        Some(module) => module
            .iter()
            .cloned()
            .chain(path[1..].iter().cloned())
            .collect(),
        None => path,
    }
}

/// The module a path lands in: its longest prefix that is a module.
fn target(path: &Module, known: &BTreeMap<Module, String>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| known.contains_key(prefix))
        .unwrap_or_default()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Checks the modules of `dir` (relative to the workspace root) in the crate whose source
/// root is `src`; returns every problem.
fn check(src: &str, dir: &str) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let (src, dir) = (root.join(src), root.join(dir));
    let all = modules(&src, &src);
    let ours = modules(&src, &dir);
    let aliases = module_aliases(&all);
    let mut problems = Vec::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in &ours {
        let file_is_folder = dir.join(module.join("/")).is_dir() || module.is_empty();
        for path in paths(module, file_is_folder, text) {
            let to = target(&unalias(path.clone(), &aliases), &all);
            if to == *module || !ours.contains_key(&to) {
                continue;
            }
            if module.starts_with(&to) {
                problems.push(format!(
                    "{} names `{}` through its ancestor {}: name the module that defines it",
                    name(module),
                    path.join("::"),
                    name(&to)
                ));
                continue;
            }
            edges.entry(module.clone()).or_default().insert(to);
        }
    }
    problems.extend(cycles(&edges));
    problems
}

/// Each cycle found by a depth-first search, as `a -> b -> a`.
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    fn visit(
        node: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        found: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| m == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(name).collect();
            cycle.push(name(node));
            found.push(format!("import cycle: {}", cycle.join(" -> ")));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn the_runtime_has_no_import_cycle() {
    let problems = check("jit-test/src", "jit-test/src");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_postgres_provider_has_no_import_cycle() {
    let problems = check("jit-test-providers/src", "jit-test-providers/src/postgres");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle() {
    let mut edges = BTreeMap::new();
    let (a, b) = (vec!["a".to_owned()], vec!["b".to_owned()]);
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(cycles(&edges), ["import cycle: a -> b -> a"]);
    let known = BTreeMap::from([(a.clone(), String::new()), (vec![], String::new())]);
    assert_eq!(target(&vec!["a".into(), "Item".into()], &known), a);
    assert_eq!(
        paths(
            &vec!["x".into(), "y".into()],
            false,
            "use super::z::W;\nuse crate::a::B;"
        ),
        [
            vec!["x".to_owned(), "z".to_owned(), "W".to_owned()],
            vec!["a".to_owned(), "B".to_owned()]
        ]
    );
}
