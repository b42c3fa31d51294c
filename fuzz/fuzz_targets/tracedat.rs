//! trace.dat files: any bytes give a `TraceData` or an error, never a
//! panic, a hang or a huge allocation; and what parses is written again as
//! version 6 and as version 7 (with the input's compression) and reads
//! back as the same trace, unless it is something version 6 cannot hold.

#![no_main]

use std::io::Cursor;

use kscope_tracedat::{Error, WriteOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(data) = kscope_tracedat::parse(input) else {
        return;
    };
    for options in [
        WriteOptions::default(),
        WriteOptions {
            version: 7,
            compression: data.compression,
        },
    ] {
        let mut out = Cursor::new(Vec::new());
        match kscope_tracedat::write(&data, &options, &mut out) {
            Ok(()) => {}
            // Several page sizes, or CPUs beyond the count, have no
            // version 6 form.
            Err(Error::Unrepresentable { .. }) if options.version == 6 => continue,
            Err(e) => panic!("{options:?}: {e}"),
        }
        let back = kscope_tracedat::parse(out.get_ref())
            .unwrap_or_else(|e| panic!("{options:?} does not read back: {e}"));
        assert_eq!(back.version, options.version);
        assert_eq!(back.compression, options.compression);
        assert_eq!(back.header_page, data.header_page);
        assert_eq!(back.ftrace_formats, data.ftrace_formats);
        assert_eq!(back.event_formats, data.event_formats);
        assert_eq!(back.kallsyms, data.kallsyms);
        assert_eq!(back.cmdlines, data.cmdlines);
        // Version 7 adds a CPUCOUNT option when there is none.
        assert_eq!(back.options[..data.options.len()], data.options[..]);
        assert_eq!(back.buffers.len(), data.buffers.len());
        for (b, d) in back.buffers.iter().zip(&data.buffers) {
            assert_eq!(
                (&b.name, b.page_size, &b.cpus),
                (&d.name, d.page_size, &d.cpus)
            );
            // Version 6 keeps a clock only beside a TRACECLOCK option, and
            // version 7 always has one.
            if options.version == data.version {
                assert_eq!(b.clock, d.clock);
            }
        }
    }
});
