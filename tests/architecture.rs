//! The architecture, checked: the layering rules of ARCHITECTURE.md hold in the source.
//!
//! Every `crate::NAME` path outside comments and test-only code counts as a dependency of the
//! file's top-level module on module `NAME`. The graph of top-level modules must have no cycle,
//! and each layer may only reach the layers its rules allow. Files stay readable in size.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/cpu/codegen/emit.rs` -> `cpu`),
/// or `None` for the crate roots.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Test-only files: unit-test modules kept in files of their own.
fn test_only(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    s.contains("/tests/")
        || s.ends_with("/tests.rs")
        || s.ends_with("mathlib/accuracy.rs")
        || s.ends_with("gpu/agreement.rs")
}

/// The code of a file without comments and without its trailing `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::NAME` paths in `code`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && name.chars().next().unwrap().is_ascii_lowercase() {
            out.insert(name);
        }
    }
    out
}

struct Source {
    /// Module -> the modules it uses.
    deps: BTreeMap<String, BTreeSet<String>>,
    /// File (relative to `src/`) -> the modules it uses.
    file_deps: BTreeMap<String, BTreeSet<String>>,
    /// File (relative to the repository) -> lines.
    lines: BTreeMap<String, usize>,
}

fn source() -> Source {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    rust_files(&root.join("src"), &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut file_deps = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(root.join("src")).unwrap();
        lines.insert(format!("src/{}", rel.display()), text.lines().count());
        let Some(module) = module_of(rel) else {
            continue;
        };
        if test_only(rel) {
            continue;
        }
        let refs: BTreeSet<String> = crate_refs(&code_of(&text))
            .into_iter()
            .filter(|m| *m != module)
            .collect();
        deps.entry(module).or_default().extend(refs.iter().cloned());
        file_deps.insert(rel.display().to_string(), refs);
    }
    let mut tests = vec![];
    rust_files(&root.join("tests"), &mut tests);
    for f in tests.iter().chain(std::iter::once(&root.join("README.md"))) {
        if let Ok(text) = std::fs::read_to_string(f) {
            let rel = f.strip_prefix(root).unwrap();
            lines.insert(rel.display().to_string(), text.lines().count());
        }
    }
    Source {
        deps,
        file_deps,
        lines,
    }
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = source();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for d in deps.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in src.deps.keys() {
        if let Some(cycle) = visit(m, &src.deps, &mut vec![], &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// What each layer must not use (see ARCHITECTURE.md).
const FORBIDDEN: &[(&str, &[&str])] = &[
    // The bottom floor: vocabulary, imports nothing above it. The dtype enum imports nothing.
    (
        "elem",
        &[
            "error", "fmt", "dtype", "target", "options", "array", "ops", "expr", "kir", "opt",
        ],
    ),
    (
        "error",
        &[
            "array", "dtype", "expr", "kir", "opt", "exec", "cpu", "gpu", "session",
        ],
    ),
    ("fmt", &["array", "dtype", "error", "kir", "expr"]),
    (
        "dtype",
        &["array", "kir", "ops", "semantics", "expr", "opt"],
    ),
    (
        "options",
        &["array", "kir", "expr", "opt", "exec", "cpu", "gpu"],
    ),
    (
        "target",
        &["kir", "expr", "opt", "exec", "cpu", "gpu", "place"],
    ),
    // Vocabulary of operators and arrays.
    (
        "array",
        &["kir", "expr", "opt", "exec", "cpu", "gpu", "session"],
    ),
    (
        "ops",
        &["kir", "expr", "opt", "exec", "cpu", "gpu", "session"],
    ),
    (
        "view",
        &["kir", "expr", "opt", "exec", "cpu", "gpu", "session"],
    ),
    (
        "semantics",
        &["kir", "expr", "opt", "exec", "cpu", "gpu", "session"],
    ),
    // What users build: no optimizer, no backend.
    (
        "expr",
        &["opt", "kir", "exec", "cpu", "gpu", "place", "session"],
    ),
    (
        "parse",
        &["opt", "kir", "exec", "cpu", "gpu", "place", "session"],
    ),
    // The oracles share typing and semantics only.
    (
        "reference",
        &["opt", "kir", "exec", "cpu", "gpu", "place", "session"],
    ),
    (
        "interp",
        &["expr", "opt", "exec", "cpu", "gpu", "place", "session"],
    ),
    // The IR and its math know nothing of the optimizer or of any backend.
    (
        "kir",
        &["expr", "opt", "exec", "cpu", "gpu", "place", "session"],
    ),
    (
        "mathlib",
        &["expr", "opt", "exec", "cpu", "gpu", "place", "session"],
    ),
    // The optimizer emits IR; it never runs it.
    (
        "opt",
        &[
            "exec", "cpu", "gpu", "place", "devices", "session", "explain",
        ],
    ),
    // Backends compile verified kernel IR: never Expr, a plan, or the layers above.
    (
        "cpu",
        &[
            "expr",
            "opt",
            "exec",
            "place",
            "devices",
            "session",
            "explain",
            "parse",
            "reference",
            "bench",
            "options",
        ],
    ),
    (
        "gpu",
        &[
            "expr",
            "opt",
            "exec",
            "place",
            "devices",
            "session",
            "explain",
            "parse",
            "reference",
            "bench",
            "options",
        ],
    ),
    (
        "devices",
        &["expr", "opt", "exec", "place", "session", "explain"],
    ),
    // Placement decides; the executor runs; neither knows the user API.
    ("place", &["exec", "session", "explain", "expr", "parse"]),
    (
        "exec",
        &["place", "session", "explain", "expr", "parse", "reference"],
    ),
    ("explain", &["exec", "session", "cpu", "gpu"]),
    // Tables sit above the session (a front end of data): kernels run through it, never a
    // backend or the executor directly.
    (
        "table",
        &[
            "opt", "kir", "exec", "cpu", "gpu", "place", "devices", "mathlib", "interp", "cache",
            "bench",
        ],
    ),
    (
        "npy",
        &["expr", "opt", "kir", "exec", "cpu", "gpu", "session"],
    ),
];

#[test]
fn layers_use_only_what_they_may() {
    let src = source();
    let mut bad = vec![];
    for (m, forbidden) in FORBIDDEN {
        for d in src.deps.get(*m).into_iter().flatten() {
            if forbidden.contains(&d.as_str()) {
                bad.push(format!("{m} uses {d}"));
            }
        }
    }
    // The cost model is pure: of `place`, only the probes touch a backend.
    for (f, refs) in &src.file_deps {
        if f.starts_with("place/") && f != "place/probes.rs" && f != "place/auto.rs" {
            for b in ["cpu", "gpu"] {
                if refs.contains(b) {
                    bad.push(format!("{f} uses {b}"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

#[test]
fn every_module_has_a_rule() {
    let src = source();
    let ruled: BTreeSet<&str> = FORBIDDEN.iter().map(|(m, _)| *m).collect();
    // The top of the stack may use everything below it.
    let top = ["session", "bench", "cache"];
    let unruled: Vec<&String> = src
        .deps
        .keys()
        .filter(|m| !ruled.contains(m.as_str()) && !top.contains(&m.as_str()))
        .collect();
    assert!(
        unruled.is_empty(),
        "modules without a layering rule (add them to FORBIDDEN and ARCHITECTURE.md): {unruled:?}"
    );
}

/// Files that hold tables of data rather than code may be long.
const DATA_TABLES: &[&str] = &["src/kir/tables.rs"];

#[test]
fn files_stay_readable() {
    let src = source();
    let long: Vec<String> = src
        .lines
        .iter()
        .filter(|(f, n)| **n > 1500 && !DATA_TABLES.contains(&f.as_str()))
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(long.is_empty(), "files over 1,500 lines: {long:?}");
    let session = src.lines["src/session/mod.rs"];
    assert!(session < 700, "session/mod.rs has {session} lines");
}
