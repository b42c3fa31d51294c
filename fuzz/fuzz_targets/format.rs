//! Format-file text (`events/SYSTEM/EVENT/format`, `events/header_page`,
//! `events/header_event`): any UTF-8 gives a parse or an error, never a
//! panic, and what parses holds together.

#![no_main]

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
    }
    if let Ok(page) = HeaderPage::parse(text) {
        // What a sub-buffer decoder would derive from it.
        let _ = (page.commit_size(), page.data_offset(), page.data_size());
    }
    let _ = HeaderEvent::parse(text);
});
