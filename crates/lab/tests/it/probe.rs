//! `kscope probe` on kprobes, which Debian's kernel has and the host does
//! not: `vfs.read` (SystemTap's tapset alias, with its variables),
//! `kernel.function(...).return` with `$return`, a kprobe pair timing
//! calls into a statistic with `@entry`, and `-l`/`-L` over the kernel's
//! functions with their parameters from BTF.

use crate::succeeded;

#[test]
fn vfs_read_fires_with_its_tapset_variables() {
    let Some(stdout) = succeeded("probe-vfs-read") else {
        return;
    };
    // dd reads three 512-byte blocks (and perhaps its locale files).
    let reads: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("vfs.read dd 512 "))
        .collect();
    assert_eq!(reads.len(), 3, "{stdout}");
    assert!(reads[0].ends_with(" vfs.read"), "{stdout}");
}

#[test]
fn a_return_probe_sees_the_return_value() {
    let Some(stdout) = succeeded("probe-function-return") else {
        return;
    };
    assert!(stdout.lines().any(|l| l == "vfs_read read 1"), "{stdout}");
}

#[test]
fn a_kprobe_pair_times_calls_and_entry_gives_the_arguments() {
    let Some(stdout) = succeeded("probe-kprobe-latency") else {
        return;
    };
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "entry 512 returned 512")
            .count(),
        3,
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&"timed 1, all positive 1, left 0"),
        "{stdout}"
    );
}

#[test]
fn functions_and_their_parameters_are_listed() {
    let Some(stdout) = succeeded("probe-function-args") else {
        return;
    };
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"kernel.function(\"vfs_read\")"), "{stdout}");
    assert!(
        lines.contains(&"kernel.function(\"vfs_readv\")"),
        "{stdout}"
    );
    assert!(
        lines.contains(&"kernel.function(\"vfs_read\") $file:long $buf:long $count:long $pos:long"),
        "{stdout}"
    );
}
