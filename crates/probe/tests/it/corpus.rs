//! Runs every script of the corpus and compares failures with their `.err`.

use std::fs;
use std::path::{Path, PathBuf};

use kscope_probe::{SourceFile, parse};

/// The corpus scripts, sorted, each with its text, named by file name so
/// that the rendered diagnostics do not depend on where the tree is.
pub fn scripts() -> Vec<(PathBuf, SourceFile)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("the corpus directory is readable")
        .map(|e| e.expect("the corpus directory is readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "stp"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .expect("a corpus file has a name")
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&path).expect("a corpus script is UTF-8 text");
            (path, SourceFile::new(name, text))
        })
        .collect()
}

#[test]
fn every_corpus_script_parses_or_fails_as_its_err_file_says() {
    let bless = std::env::var_os("KSCOPE_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for (path, file) in scripts() {
        let err_path = path.with_extension("err");
        let expected = fs::read_to_string(&err_path).ok();
        match (parse(&file), expected) {
            (Ok(_), None) => valid += 1,
            (Ok(_), Some(_)) => failures.push(format!(
                "{}: parsed, but a .err file expects an error",
                file.name
            )),
            (Err(d), expected) => {
                let got = d.render(&file);
                if bless {
                    fs::write(&err_path, &got).unwrap();
                    invalid += 1;
                } else if expected.as_deref() == Some(got.as_str()) {
                    invalid += 1;
                } else {
                    failures.push(format!(
                        "{}: expected\n{}\ngot\n{got}",
                        file.name,
                        expected
                            .as_deref()
                            .unwrap_or("(no .err file: the script should parse)\n")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(valid >= 15, "only {valid} valid scripts");
    assert!(invalid >= 6, "only {invalid} invalid scripts");
}

#[test]
fn every_err_file_has_its_script() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "err") {
            assert!(
                path.with_extension("stp").exists(),
                "{} has no script",
                path.display()
            );
        }
    }
}
