//! The workspace's shape, as docs/ARCHITECTURE.md promises it: no module
//! of a crate uses a sibling that uses it back (directly or around a
//! longer loop), and no source file grows past about 1,000 lines unless
//! it is one grammar.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Files allowed over the limit, each with why.
const LONG_FILES: &[(&str, &str)] = &[(
    "probe/src/parser.rs",
    "one grammar: the probe language's recursive descent",
)];

const MAX_LINES: usize = 1_000;

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paths in a directory.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let read = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    read.map(|e| e.expect("read a directory entry").path())
        .collect()
}

fn read(file: &Path) -> String {
    fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for path in entries(dir) {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path inside its crate: `src/a/b.rs` and `src/a/b/mod.rs`
/// are `[a, b]`; `lib.rs` and `main.rs` are the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("a file of src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] || parts == ["main"] {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its inline
/// `mod tests { .. }`, which ends a file by convention (tests may reach
/// anywhere).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim() == "mod tests {")
        {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    code
}

/// The paths a file names: `crate::a::b` and `super::a`, as module paths
/// resolved against the file's own module.
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| at + e);
            let words: Vec<&str> = code[at..end]
                .split("::")
                .filter(|w| !w.is_empty())
                .collect();
            let mut path: Vec<String> = Vec::new();
            let mut rest = words.as_slice();
            if rest.first() == Some(&"crate") {
                rest = &rest[1..];
            } else {
                path = module.to_vec();
                while rest.first() == Some(&"super") {
                    path.pop();
                    rest = &rest[1..];
                }
            }
            path.extend(rest.iter().map(|w| w.to_string()));
            paths.push(path);
        }
    }
    paths
}

#[test]
fn no_module_of_a_crate_uses_a_sibling_that_uses_it_back() {
    let mut cycles = Vec::new();
    let mut crates: Vec<PathBuf> = entries(&crates_dir())
        .into_iter()
        .filter(|p| p.join("src").is_dir())
        .collect();
    crates.sort();
    assert!(crates.len() > 10, "found only {crates:?}");
    for krate in &crates {
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeMap<Vec<String>, PathBuf> = files
            .iter()
            .filter(|f| !f.starts_with(src.join("bin")))
            .map(|f| (module_of(&src, f), f.clone()))
            .collect();
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (module, file) in &modules {
            if module.last().is_some_and(|m| m == "tests") {
                continue;
            }
            let code = code_of(&read(file));
            for path in named_paths(&code, module) {
                let Some(target) = (1..=path.len())
                    .rev()
                    .map(|n| path[..n].to_vec())
                    .find(|p| modules.contains_key(p))
                else {
                    continue;
                };
                let common = module
                    .iter()
                    .zip(&target)
                    .take_while(|(a, b)| a == b)
                    .count();
                if common == module.len() || common == target.len() {
                    continue; // an ancestor or a descendant
                }
                edges
                    .entry(module[..=common].to_vec())
                    .or_default()
                    .insert(target[..=common].to_vec());
            }
        }
        // A cycle: a module reachable again from itself.
        for start in edges.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&Vec<String>> = edges[start].iter().collect();
            while let Some(next) = todo.pop() {
                if next == start {
                    cycles.push(format!(
                        "{}: {}",
                        krate
                            .file_name()
                            .expect("a crate directory")
                            .to_string_lossy(),
                        start.join("::")
                    ));
                    break;
                }
                if seen.insert(next.clone()) {
                    todo.extend(edges.get(next).into_iter().flatten());
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules on a use cycle with a sibling: {cycles:#?}"
    );
}

#[test]
fn no_source_file_is_over_a_thousand_lines_unless_it_is_one_grammar() {
    let mut files = Vec::new();
    for krate in entries(&crates_dir()) {
        let src = krate.join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter(|f| read(f).lines().count() > MAX_LINES)
        .map(|f| {
            f.strip_prefix(crates_dir())
                .expect("a file under crates")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| !LONG_FILES.iter().any(|(allowed, _)| allowed == f))
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

#[test]
fn the_path_reader_sees_what_a_module_names() {
    // So that the cycle test can fail: `a` naming crate::b and super::c::d
    // (from inside `a`, super is the root); a comment names nothing.
    let code = code_of("use crate::b::X;\nfn f() { super::c::d(); } // crate::e\n");
    let paths = named_paths(&code, &["a".to_string()]);
    assert_eq!(
        paths,
        vec![
            vec!["b".to_string(), "X".to_string()],
            vec!["c".to_string(), "d".to_string()]
        ]
    );
}
