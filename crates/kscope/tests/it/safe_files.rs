//! No file kscope writes can be steered elsewhere by a link another user
//! planted. Each test works in a directory like `/tmp` (mode 1777) holding
//! a "victim" file, plants links at every name kscope writes or could
//! predictably use (the output, the old `FILE.dat.partial`, the
//! `.kscope-record-PID` directories of the next few thousand pids and
//! their per-CPU files), runs kscope as root, and checks that the victim
//! holds the same bytes and that kscope either wrote its output safely or
//! refused, naming the link. The DWARF cache's test is in `core.rs`, with
//! the crashes it needs.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use kscope_testkit::with_unchanged_tracefs;

/// What the victim holds.
const PRECIOUS: &[u8] = b"root-only bytes";

/// How many pids after the last one get planted names.
const NEXT_PIDS: u32 = 2000;

/// A shared directory (mode 1777, as /tmp) with a victim file beside it,
/// outside the shared directory.
pub struct Shared {
    root: tempfile::TempDir,
}

impl Shared {
    pub fn new() -> Shared {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::write(root.path().join("victim"), PRECIOUS).expect("write the victim");
        let shared = root.path().join("tmp");
        std::fs::create_dir(&shared).expect("make the shared directory");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777))
            .expect("chmod 1777");
        Shared { root }
    }

    /// The shared directory.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    /// The victim.
    pub fn victim(&self) -> PathBuf {
        self.root.path().join("victim")
    }

    /// A link to the victim at `name` in the shared directory; returns
    /// the link's path.
    pub fn plant(&self, name: &str) -> PathBuf {
        let at = self.dir().join(name);
        symlink(self.victim(), &at).expect("plant a link");
        at
    }

    /// Links at `name(pid)` for the next [`NEXT_PIDS`] pids.
    pub fn plant_for_next_pids(&self, name: impl Fn(u32) -> String) {
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .expect("read ns_last_pid")
            .trim()
            .parse()
            .expect("a pid");
        for pid in last + 1..=last + NEXT_PIDS {
            let at = self.dir().join(name(pid));
            std::fs::create_dir_all(at.parent().expect("a parent")).expect("make a directory");
            symlink(self.victim(), at).expect("plant a link");
        }
    }

    /// Asserts that the victim holds what it held.
    pub fn assert_victim_intact(&self) {
        let now = std::fs::read(self.victim()).expect("read the victim");
        assert!(
            now == PRECIOUS,
            "the victim was written through a planted link: it holds {} bytes now, starting {:?}",
            now.len(),
            String::from_utf8_lossy(&now[..now.len().min(16)])
        );
    }

    /// The names kscope left in the shared directory that no one planted
    /// (`planted` says which are planted).
    pub fn left(&self, planted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir())
            .expect("list the shared directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| !planted(n))
            .collect();
        names.sort();
        names
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Asserts that `output` failed and said that `link` is a link.
fn assert_refused_link(output: &std::process::Output, link: &Path) {
    assert!(!output.status.success(), "kscope wrote through {link:?}");
    let stderr = crate::stderr(output);
    assert!(
        stderr.contains(&format!("{} is a symbolic link", link.display())),
        "{stderr}"
    );
}

/// `trace record -o FILE` and `trace extract -o FILE` (with `command`
/// after `--` when there is one) share their writer:
/// the links at the output, at `FILE.dat.partial` and in the predictable
/// per-CPU directories stay as they are and the victim is untouched.
fn assert_writes_past_links(what: &str, args: &[&str], command: &[&str]) {
    with_unchanged_tracefs(what, |_| {
        let shared = Shared::new();
        let output = shared.plant("x.dat");
        shared.plant("x.dat.partial");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        for cpu in 0..cpus {
            shared.plant_for_next_pids(|pid| format!(".kscope-record-{pid}/cpu{cpu}"));
        }
        let run = crate::kscope(&with_output(args, &output, command));
        assert!(run.status.success(), "{what}: {}", crate::stderr(&run));
        shared.assert_victim_intact();
        assert!(
            std::fs::symlink_metadata(&output)
                .expect("the output")
                .is_file(),
            "the link at the output was not replaced by the file"
        );
        crate::kscope_ok(&["trace", "report", "-i", text(&output)]);
        let left = shared.left(|n| n.starts_with(".kscope-record-") || n == "x.dat.partial");
        assert_eq!(left, ["x.dat"], "{what} left files behind");
    });
}

#[test]
fn trace_record_writes_past_planted_links() {
    assert_writes_past_links(
        "trace record",
        &["trace", "record", "-e", "sched:sched_switch"],
        &["true"],
    );
}

#[test]
fn trace_extract_writes_past_planted_links() {
    assert_writes_past_links("trace extract", &["trace", "extract"], &[]);
}

#[test]
fn trace_record_refuses_a_missing_directory_and_names_it() {
    let shared = Shared::new();
    let output = shared.dir().join("typo/dir/x.dat");
    let run = crate::kscope(&with_output(
        &["trace", "record", "-e", "sched:sched_switch"],
        &output,
        &["true"],
    ));
    assert!(!run.status.success());
    let stderr = crate::stderr(&run);
    assert!(
        stderr.contains(&format!(
            "cannot write {}: directory {} does not exist",
            output.display(),
            shared.dir().join("typo/dir").display()
        )),
        "{stderr}"
    );
    assert!(!shared.dir().join("typo").exists(), "directories were made");
}

/// The fixture every convert test reads.
fn v6_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracedat/tests/data/v6.dat")
}

#[test]
fn trace_convert_writes_past_planted_links() {
    let shared = Shared::new();
    let output = shared.plant("x.dat");
    shared.plant("x.dat.partial");
    let run = crate::kscope(&[
        "trace",
        "convert",
        "-i",
        text(&v6_fixture()),
        "--file-version",
        "7",
        "-o",
        text(&output),
    ]);
    assert!(run.status.success(), "{}", crate::stderr(&run));
    shared.assert_victim_intact();
    crate::kscope_ok(&["trace", "report", "-i", text(&output)]);
    assert_eq!(shared.left(|n| n == "x.dat.partial"), ["x.dat"]);
}

#[test]
fn trace_convert_with_its_defaults_writes_a_new_file_beside_the_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(v6_fixture(), dir.path().join("trace.dat")).expect("copy the fixture");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_kscope"))
        .args(["trace", "convert", "--file-version", "7"])
        .current_dir(dir.path())
        .output()
        .expect("run kscope");
    assert!(run.status.success(), "{}", crate::stderr(&run));
    assert_eq!(
        std::fs::read(dir.path().join("trace.dat")).expect("the input"),
        std::fs::read(v6_fixture()).expect("the fixture"),
        "the input changed"
    );
    let converted = dir.path().join("trace.v7.dat");
    let report =
        |path: &Path| crate::stdout(&crate::kscope_ok(&["trace", "report", "-i", text(path)]));
    assert_eq!(report(&converted), report(&v6_fixture()));
    let file = kscope_tracedat::TraceFile::open(&converted).expect("map");
    let data = kscope_tracedat::parse(file.bytes()).expect("parse");
    assert_eq!(data.version, 7);
}

/// `args` and `-o FILE`, then `--` and `command` when there is one.
fn with_output<'a>(args: &[&'a str], output: &'a Path, command: &[&'a str]) -> Vec<&'a str> {
    let mut argv = args.to_vec();
    argv.extend(["-o", text(output)]);
    if !command.is_empty() {
        argv.push("--");
        argv.extend(command);
    }
    argv
}

#[test]
fn trace_convert_with_the_input_as_output_converts_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("trace.dat");
    std::fs::copy(v6_fixture(), &input).expect("copy the fixture");
    let path = text(&input);
    let before = crate::stdout(&crate::kscope_ok(&["trace", "report", "-i", path]));
    crate::kscope_ok(&[
        "trace",
        "convert",
        "-i",
        path,
        "-o",
        path,
        "--file-version",
        "7",
        "--compression",
        "zstd",
    ]);
    let file = kscope_tracedat::TraceFile::open(&input).expect("map");
    assert_eq!(
        kscope_tracedat::parse(file.bytes()).expect("parse").version,
        7
    );
    let after = crate::stdout(&crate::kscope_ok(&["trace", "report", "-i", path]));
    assert_eq!(after, before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert_eq!(names.len(), 1, "a temporary file was left: {names:?}");
}

/// Runs `args` (and `command`) with `-o LINK` where LINK, in a shared
/// directory, leads to the victim: refused, naming the link, the victim
/// intact. Then with `-o` naming another user's file there: refused, the
/// file intact.
fn assert_streamed_output_refuses_links(args: &[&str], command: &[&str]) {
    let shared = Shared::new();
    let link = shared.plant("out.txt");
    assert_refused_link(&crate::kscope(&with_output(args, &link, command)), &link);
    shared.assert_victim_intact();

    let theirs = shared.dir().join("theirs.txt");
    std::fs::write(&theirs, b"theirs").expect("write");
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
    let run = crate::kscope(&with_output(args, &theirs, command));
    assert!(!run.status.success());
    assert!(
        crate::stderr(&run).contains("belongs to uid 65534"),
        "{}",
        crate::stderr(&run)
    );
    assert_eq!(std::fs::read(&theirs).expect("read"), b"theirs");
}

#[test]
fn trace_stream_refuses_a_link_or_another_users_file_as_its_output() {
    with_unchanged_tracefs("trace stream -o", |_| {
        assert_streamed_output_refuses_links(
            &["trace", "stream", "-e", "sched:sched_switch"],
            &["true"],
        );
    });
}

#[test]
fn probe_refuses_a_link_or_another_users_file_as_its_output() {
    with_unchanged_tracefs("probe -o", |_| {
        assert_streamed_output_refuses_links(
            &["probe", "-e", r#"probe begin { println("begun"); exit() }"#],
            &[],
        );
    });
}

#[test]
fn the_scratch_file_for_vmemmap_base_is_not_written_through_a_link() {
    // mm_page_free's print fmt reads vmemmap_base; where kallsyms does not
    // list it, kscope writes a scratch file in $TMPDIR to make the kernel
    // allocate pages and print one.
    with_unchanged_tracefs("trace stream of kmem:mm_page_free", |_| {
        let shared = Shared::new();
        shared.plant_for_next_pids(|pid| format!("kscope-{pid}-vmemmap"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_kscope"))
            .args(["trace", "stream", "-e", "kmem:mm_page_free", "--", "true"])
            .env("TMPDIR", shared.dir())
            .output()
            .expect("run kscope");
        assert!(run.status.success(), "{}", crate::stderr(&run));
        shared.assert_victim_intact();
        assert_eq!(
            shared.left(|n| n.ends_with("-vmemmap")),
            Vec::<String>::new()
        );
    });
}

#[test]
fn a_trace_dat_is_not_renamed_over_a_fifo_or_a_device() {
    // A FIFO, whose replacement would harm no one if this failed; a
    // device (`-o /dev/null`) is refused the same way.
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("make a FIFO");
    let run = crate::kscope(&[
        "trace",
        "convert",
        "-i",
        text(&v6_fixture()),
        "-o",
        text(&fifo),
    ]);
    assert!(!run.status.success());
    let stderr = crate::stderr(&run);
    assert!(
        stderr.contains(&format!(
            "{} is a FIFO, not a file to write output to",
            fifo.display()
        )),
        "{stderr}"
    );
    let kept = std::fs::symlink_metadata(&fifo).expect("stat the FIFO");
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kept.file_type()),
        "the FIFO was replaced"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
}
