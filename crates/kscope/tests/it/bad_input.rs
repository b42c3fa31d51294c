//! Files that are not what a command reads (an empty file, a text file,
//! another kind of dump) are refused in plain words, naming the file and
//! what it starts with: no Rust escapes, no byte counts.

use std::path::Path;

use crate::{kscope, stderr};

/// An empty file, a text file and a file of binary bytes, in a fresh
/// directory.
fn inputs() -> (tempfile::TempDir, [std::path::PathBuf; 3]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.dat");
    let text = dir.path().join("text.txt");
    let binary = dir.path().join("random.bin");
    std::fs::write(&empty, b"").expect("test file");
    std::fs::write(&text, "hello world\nsecond line\n").expect("test file");
    std::fs::write(&binary, [0u8, 1, 2, 0xff, 0x80, 9, 10, 11, 12, 13]).expect("test file");
    (dir, [empty, text, binary])
}

/// Runs kscope with `args` and `file` last but for `after`, and returns
/// its stderr, after checking that it failed with status 1.
fn refused(args: &[&str], file: &std::path::Path, after: &[&str]) -> String {
    let file = file.to_str().expect("test file");
    let mut all: Vec<&str> = args.to_vec();
    all.push(file);
    all.extend_from_slice(after);
    let output = kscope(&all);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{all:?}: {err}");
    assert!(!err.contains("\\u{"), "{err}");
    assert!(!err.contains("needs 3 bytes"), "{err}");
    err
}

#[test]
fn empty_text_and_binary_files_are_named_in_plain_words() {
    let (_dir, [empty, text, binary]) = inputs();
    let commands: [(&[&str], &[&str], &str); 3] = [
        (&["trace", "report", "-i"], &[], "a trace.dat file"),
        (&["core", "info"], &[], "a core dump"),
        (&["crash"], &["sys"], "a kernel crash dump"),
    ];
    for (args, after, what) in commands {
        let err = refused(args, &empty, after);
        assert_eq!(
            err,
            format!("kscope: error: {} is empty\n", empty.display()),
            "{args:?}"
        );
        for (file, start) in [
            (&text, "the text \"hello world\""),
            (&binary, "the bytes 00 01 02 ff 80 09 0a 0b"),
        ] {
            let err = refused(args, file, after);
            let told = format!(
                "kscope: error: {} is not {what}: it starts with {start}, and ",
                file.display()
            );
            assert!(err.starts_with(&told), "{args:?}: {err}");
        }
    }
}

#[test]
fn a_file_of_another_kind_names_the_command_that_reads_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kdump = dir.path().join("vmcore.kdump");
    std::fs::write(&kdump, b"KDUMP   \x06\x00\x00\x00\x00\x00\x00\x00").expect("test file");
    let flat = dir.path().join("vmcore.flat");
    std::fs::write(&flat, b"makedumpfile\0\0\0\0").expect("test file");
    let trace_dat = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracedat/tests/data/v6.dat");
    let cases: [(&[&str], &Path, &[&str], &str); 5] = [
        (
            &["trace", "report", "-i"],
            &kdump,
            &[],
            "a kernel crash dump (kdump-compressed), not a trace.dat file: read it with `kscope crash",
        ),
        (
            &["core", "info"],
            &kdump,
            &[],
            "a kernel crash dump (kdump-compressed), not a core dump: read it with `kscope crash",
        ),
        (
            &["core", "info"],
            &flat,
            &[],
            "a kernel crash dump (flattened), not a core dump: read it with `kscope crash",
        ),
        (
            &["crash"],
            &trace_dat,
            &["sys"],
            "a trace.dat file, not a kernel crash dump: read it with `kscope trace report -i",
        ),
        (
            &["core", "info"],
            &trace_dat,
            &[],
            "a trace.dat file, not a core dump: read it with `kscope trace report -i",
        ),
    ];
    for (args, file, after, told) in cases {
        let err = refused(args, file, after);
        assert!(
            err.contains(&format!("{} is {told} {}`", file.display(), file.display())),
            "{args:?}: {err}"
        );
    }
    // An ELF vmcore is an ELF core too: its VMCOREINFO note tells.
    for variant in kscope_testkit::vmcore_variants("core info on a kernel dump", false) {
        let elf = variant.dir.join("vmcore.elf");
        let err = refused(&["core", "info"], &elf, &[]);
        assert!(
            err.contains(&format!(
                "{} is a kernel crash dump (it has a VMCOREINFO note), not a process's core: read it with `kscope crash {}`",
                elf.display(),
                elf.display()
            )),
            "{err}"
        );
    }
}
