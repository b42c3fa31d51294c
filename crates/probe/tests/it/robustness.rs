//! Truncated and damaged scripts: the parser may fail, but never panics,
//! and every error points inside the text.

use kscope_probe::{SourceFile, parse};

use crate::corpus::scripts;

fn check(name: &str, text: &str) {
    let file = SourceFile::new(name, text);
    if let Err(d) = parse(&file) {
        assert!(
            d.span.start <= d.span.end && d.span.end <= text.len(),
            "{name}: {d:?}"
        );
        let rendered = d.render(&file);
        assert!(rendered.starts_with(&format!("{name}:")), "{rendered}");
        assert!(rendered.contains('^'), "{rendered}");
    }
}

#[test]
fn every_prefix_of_every_corpus_script_parses_or_fails_cleanly() {
    for (_, file) in scripts() {
        for end in (0..=file.text.len()).filter(|&i| file.text.is_char_boundary(i)) {
            check(&file.name, &file.text[..end]);
        }
    }
}

#[test]
fn every_script_with_one_character_removed_parses_or_fails_cleanly() {
    for (_, file) in scripts() {
        for (i, c) in file.text.char_indices() {
            let damaged = format!("{}{}", &file.text[..i], &file.text[i + c.len_utf8()..]);
            check(&file.name, &damaged);
        }
    }
}

#[test]
fn a_truncated_script_reports_where_it_stopped() {
    let file = SourceFile::new("cut.stp", "probe kernel.function(\"vfs_read\"");
    let d = parse(&file).unwrap_err();
    assert_eq!(
        d.render(&file),
        "cut.stp:1:33: error: expected ')' after the probe point argument, found end of file\n\
         probe kernel.function(\"vfs_read\"\n                                \
         ^\n"
    );
}
