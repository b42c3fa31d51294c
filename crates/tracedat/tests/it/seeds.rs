//! Not a test: seeds for the `tracedat` fuzz target (fuzz/README.md). The
//! fixtures are 70-230 KiB; these small traces of every version,
//! compression and byte order are a few KiB, which the fuzzer mutates
//! fifty times faster.

use std::path::Path;

use crate::build;
use crate::util::{WRITE_OPTIONS, written};

#[test]
#[ignore = "writes fuzz seeds into fuzz/corpus/tracedat; run it by hand"]
fn write_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tracedat");
    std::fs::create_dir_all(&dir).expect("the corpus directory");
    for big_endian in [false, true] {
        let data = build::small_in(big_endian);
        for options in WRITE_OPTIONS {
            let name = format!(
                "small-v{}-{:?}-{}.dat",
                options.version,
                options.compression,
                if big_endian { "be" } else { "le" }
            );
            std::fs::write(dir.join(name), written(&data, &options)).expect("a seed");
        }
    }
}
