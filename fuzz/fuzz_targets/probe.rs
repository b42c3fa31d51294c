//! Probe scripts: any UTF-8 text parses or gives a diagnostic, never a
//! panic or a stack overflow, and every diagnostic points inside the text
//! and renders.

#![no_main]

use kscope_probe::{SourceFile, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let file = SourceFile::new("fuzz.stp", text);
    if let Err(d) = parse(&file) {
        assert!(d.span.start <= d.span.end && d.span.end <= text.len());
        assert!(d.render(&file).starts_with("fuzz.stp:"));
    }
});
