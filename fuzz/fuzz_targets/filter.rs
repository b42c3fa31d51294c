//! `trace report -F` filters (`kscope_traceevent::filter`): any UTF-8
//! gives a filter or an error, never a panic or a stack overflow (the
//! parser's depth limit), and what parses is evaluated on a record made
//! of the input's bytes.

#![no_main]

use kscope_traceevent::EventFormat;
use kscope_traceevent::filter::Filter;
use libfuzzer_sys::fuzz_target;

/// An event with a number, a string and an array field to compare.
const FORMAT: &str = "name: demo\nID: 7\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;\n\
\tfield:__data_loc char[] name;\toffset:28;\tsize:4;\tsigned:0;\n\
\nprint fmt: \"prio=%d\", REC->prio\n";

fuzz_target!(|text: &str| {
    let Ok(format) = EventFormat::parse(FORMAT) else {
        return;
    };
    if let Ok(filter) = Filter::parse(text, &format) {
        let mut record = text.as_bytes().to_vec();
        record.resize(64, 0);
        filter.matches(&format, &record, text);
    }
});
