//! The module graph points one way. Reads `src/` and checks, from the `use` lines:
//! - no import cycle among the top-level modules (`src/x.rs` or `src/x/`), and none between
//!   two files;
//! - the shared vocabulary (`model`) and the other leaves import nothing of the crate;
//! - the layers of ARCHITECTURE.md: a module only uses modules listed before it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top, as ARCHITECTURE.md draws them. A module may use only modules above it in
/// this list (its lower layers). `main` sits on top; `testing` is test support.
const LAYERS: &[&str] = &[
    "model",
    "config",
    "canary",
    "status",
    "metrics",
    "aws",
    "discovery",
    "diagnose",
    "cleanup",
    "emit",
    "probe",
    "estate",
    "scan",
    "report",
    "logging",
    "http",
    "web",
    "daemon",
    "commands",
    "main",
];

/// Modules that import nothing of the crate.
const LEAVES: &[&str] = &["model", "config", "canary"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`; `src/main.rs` → `["main"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// Code outside `#[cfg(test)]` modules: the graph of the program, not of its tests.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if skip_depth.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && trimmed.starts_with("mod ") && trimmed.ends_with('{') {
            skip_depth = Some(depth);
        }
        if pending_cfg_test && !trimmed.starts_with("#[") {
            pending_cfg_test = false;
        }
        let opens = line.matches('{').count() as i32;
        let closes = line.matches('}').count() as i32;
        if skip_depth.is_none() {
            out.push_str(line);
            out.push('\n');
        }
        depth += opens - closes;
        if skip_depth.is_some_and(|d| depth <= d) {
            skip_depth = None;
        }
    }
    out
}

/// The `crate::x::y` and `super::…` paths a file uses, resolved to module paths.
fn uses(file: &Path, text: &str) -> BTreeSet<Vec<String>> {
    let me = module_path(file);
    let mut found = BTreeSet::new();
    let code = non_test_code(text);
    // Join `use` statements onto one line so that grouped imports are seen whole.
    let flat = code.replace('\n', " ");
    // `super` is the parent module (`main.rs` is the crate root and has none).
    let parent = me[..me.len().saturating_sub(1)].to_vec();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = flat.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = base.clone();
            for seg in rest.split("::") {
                let name: String = seg
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || name.chars().next().is_some_and(char::is_uppercase) {
                    break;
                }
                path.push(name);
                if !seg.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    break;
                }
            }
            if !path.is_empty() {
                found.insert(path);
            }
        }
    }
    found
}

/// The file a module path lives in: the longest prefix that is a file.
fn file_of(path: &[String], files: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains(p))
}

struct Graph {
    /// File (module path) → files it uses.
    files: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph() -> Graph {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    // Unit tests and their support are not part of the program's graph.
    paths.retain(|p| {
        let m = module_path(p);
        !m.iter().any(|s| s == "tests") && m.first().is_none_or(|f| f != "testing")
    });
    let known: BTreeSet<Vec<String>> = paths.iter().map(|p| module_path(p)).collect();
    let mut files = BTreeMap::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).expect("readable");
        let me = module_path(p);
        let deps: BTreeSet<Vec<String>> = uses(p, &text)
            .iter()
            .filter_map(|u| file_of(u, &known))
            .filter(|d| *d != me)
            .collect();
        files.insert(me, deps);
    }
    Graph { files }
}

fn top(path: &[String]) -> String {
    path.first().cloned().unwrap_or_default()
}

#[test]
fn no_two_files_use_each_other_and_modules_form_no_cycle() {
    let g = graph();
    assert!(g.files.len() > 20, "the scan found the source files");
    for (a, deps) in &g.files {
        for b in deps {
            // A parent module re-exporting or declaring its children is not a use.
            let child_of_a = b.len() > a.len() && b.starts_with(a);
            let parent_of_a = a.len() > b.len() && a.starts_with(b);
            if child_of_a || parent_of_a {
                continue;
            }
            let back = g.files.get(b).is_some_and(|d| d.contains(a));
            assert!(!back, "{} and {} use each other", a.join("/"), b.join("/"));
        }
    }
    // Top-level modules: depth-first search for a cycle.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, deps) in &g.files {
        for b in deps {
            if top(a) != top(b) {
                edges.entry(top(a)).or_default().insert(top(b));
            }
        }
    }
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == n) {
            panic!("import cycle: {} → {n}", stack[i..].join(" → "));
        }
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, stack, done);
        }
        stack.pop();
        done.insert(n.to_owned());
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        visit(n, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let g = graph();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    for (a, deps) in &g.files {
        let from = top(a);
        let Some(ra) = rank(&from) else {
            panic!(
                "module `{from}` is not placed in a layer (tests/architecture.rs, ARCHITECTURE.md)"
            );
        };
        for b in deps {
            let to = top(b);
            if to == from {
                continue;
            }
            let rb = rank(&to).unwrap_or(usize::MAX);
            assert!(
                rb < ra,
                "{} uses {}: `{to}` is not below `{from}`",
                a.join("/"),
                b.join("/")
            );
            if LEAVES.contains(&from.as_str()) {
                panic!("{} is a leaf and uses {}", a.join("/"), b.join("/"));
            }
        }
    }
}

#[test]
fn the_scanner_sees_grouped_and_nested_imports() {
    let p = src().join("probe/mod.rs");
    let found = uses(
        &p,
        "use crate::aws::{ErrorClass, ObjectHead};\nuse crate::model::{AwsError, Side};\nuse super::x;\n#[cfg(test)]\nmod tests {\n use crate::daemon::Foo;\n}\n",
    );
    let names: BTreeSet<String> = found.iter().map(|p| p.join("::")).collect();
    assert!(names.contains("aws"), "{names:?}");
    assert!(names.contains("model"), "{names:?}");
    assert!(
        names.contains("x"),
        "super of probe/mod.rs is the crate root: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("daemon")),
        "test modules are skipped: {names:?}"
    );
}
