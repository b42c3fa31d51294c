//! Format-file text (`events/SYSTEM/EVENT/format`, `events/header_page`,
//! `events/header_event`) and print fmts: any UTF-8 gives a parse or an
//! error, never a panic or a stack overflow, and what parses holds
//! together; a parsed format's print fmt is evaluated on a record made of
//! the input's bytes.

#![no_main]

use kscope_traceevent::printfmt::{Env, Formatter, PrintFmt};
use kscope_traceevent::{EventFormat, HeaderEvent, HeaderPage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(format) = EventFormat::parse(text) {
        for field in format.common_fields.iter().chain(&format.fields) {
            assert!(text.contains(field.declaration));
            assert_eq!(format.field(field.name).map(|f| f.name), Some(field.name));
        }
        let end = format
            .common_fields
            .iter()
            .chain(&format.fields)
            .map(|f| f.offset.saturating_add(f.size))
            .max()
            .unwrap_or(0);
        assert_eq!(format.min_record_size(), end);
        if let Ok(formatter) = Formatter::new(&format) {
            // A record as long as the format needs (within reason), its
            // bytes the input's, so that fields hold what the fuzzer chose.
            let len = format.min_record_size().min(1 << 16) as usize + 64;
            let record: Vec<u8> = text.bytes().cycle().take(len).collect();
            let mut out = String::new();
            let _ = formatter.render(&record, &Env::default(), &mut out);
        }
    }
    // The input as a print fmt itself (what follows `print fmt: `).
    if let Err(err) = PrintFmt::parse(text) {
        assert!(err.offset <= text.len(), "{err}");
    }
    if let Ok(page) = HeaderPage::parse(text) {
        // What a sub-buffer decoder would derive from it.
        let _ = (page.commit_size(), page.data_offset(), page.data_size());
    }
    let _ = HeaderEvent::parse(text);
});
