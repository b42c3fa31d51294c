//! The lab suite: kscope's live tests of kernel features this host lacks,
//! run in Debian's own kernel under QEMU (or on the host when it has them),
//! and tests of the lab itself (a failing command, a guest panic, a hang).
//!
//! Every test of the suite reads its results from one shared batch, so
//! the guest boots once for all of them. To add a lab test: add a command
//! to `SUITE_COMMANDS`, then a test that reads `suite().success(NAME)`.

mod doctor;
mod failures;
mod guard;
mod probe;
mod stream;

use std::sync::OnceLock;
use std::time::Duration;

use kscope_lab::{Batch, Feature, GuestCommand, Placement, run_for_test};

/// Features the suite's commands need.
const SUITE_FEATURES: &[Feature] = &[
    Feature::Kprobes,
    Feature::FunctionTracer,
    Feature::Kcore,
    Feature::Kdump,
];

/// The suite's batch: (name, shell command), run in this order.
/// `top-buffer` needs a top-level buffer nobody has used yet, so it runs
/// first.
const SUITE_COMMANDS: &[(&str, &str)] = &[
    ("top-buffer", "kscope-lab-guest top-buffer"),
    ("doctor-json", "kscope doctor --json"),
    ("doctor-text", "kscope doctor"),
    ("guard-normal", "kscope-lab-guest guard normal"),
    ("guard-panic", "kscope-lab-guest guard panic"),
    ("guard-sigterm", "kscope-lab-guest guard sigterm"),
    ("failing", "echo to-stdout; echo to-stderr >&2; exit 3"),
    (
        "stream-pages",
        "kscope trace stream -e kmem:mm_page_alloc -- dd if=/dev/zero of=/tmp/pages bs=64k count=8",
    ),
    (
        "probe-vfs-read",
        "kscope probe -c 'dd if=/dev/zero of=/dev/null bs=512 count=3' -e 'probe vfs.read { if (pid() == target()) printf(\"%s %s %d %s\\n\", name, execname(), bytes_to_read, pp()) }'",
    ),
    // dd reads with read(2); busybox cat copies with sendfile, and this
    // case passed with cat only through the reads of the shell gate that
    // once ran before each -c command.
    (
        "probe-function-return",
        "kscope probe -c 'dd if=/proc/version of=/dev/null bs=64 count=1' -e 'probe kernel.function(\"vfs_read\").return { if (pid() == target() && $return > 0) printf(\"%s read %d\\n\", probefunc(), $return > 0) }'",
    ),
    // SystemTap's latency idiom on a kprobe pair, with @entry.
    (
        "probe-kprobe-latency",
        "kscope probe -c 'dd if=/dev/zero of=/dev/null bs=512 count=3' -e 'global t, lat probe kernel.function(\"vfs_read\") { if (pid() == target()) t[tid()] = gettimeofday_ns() } probe kernel.function(\"vfs_read\").return { if (pid() == target() && [tid()] in t) { lat <<< gettimeofday_ns() - t[tid()]; delete t[tid()]; if (@entry($count) == 512) printf(\"entry %d returned %d\\n\", @entry($count), $return) } } probe end { printf(\"timed %d, all positive %d, left %d\\n\", @count(lat) >= 3, @min(lat) > 0, [target()] in t) }'",
    ),
    (
        "probe-function-args",
        "kscope probe -l 'kernel.function(\"vfs_rea*\")'; kscope probe -L 'kernel.function(\"vfs_read\")'",
    ),
];

/// The whole suite's deadline, boot included.
const SUITE_DEADLINE: Duration = Duration::from_secs(300);

/// The suite's batch, run once per test process; `None` when the suite
/// cannot run here and may skip.
pub fn suite() -> Option<&'static (Placement, Batch)> {
    static SUITE: OnceLock<Option<(Placement, Batch)>> = OnceLock::new();
    SUITE
        .get_or_init(|| {
            let commands: Vec<GuestCommand> = SUITE_COMMANDS
                .iter()
                .map(|(name, script)| GuestCommand::new(*name, *script))
                .collect();
            run_for_test(
                "the lab suite",
                SUITE_FEATURES,
                "suite",
                &commands,
                SUITE_DEADLINE,
            )
        })
        .as_ref()
}

/// The stdout of a suite command that must have succeeded.
pub fn succeeded(name: &str) -> Option<String> {
    let (_, batch) = suite()?;
    let result = batch.success(name).unwrap_or_else(|e| panic!("{e}"));
    Some(result.stdout_text())
}
