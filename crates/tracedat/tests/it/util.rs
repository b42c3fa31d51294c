//! Shared helpers: the fixtures, trace-cmd as the oracle, temp files, and a
//! comparison of two `TraceData` that says what differs without dumping
//! megabytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use kscope_tracedat::{Compression, TraceData, WriteOptions};

/// The fixtures made by trace-cmd 3.1.6 (see tests/data/README.md), with
/// the version and compression of each.
pub const FIXTURES: [(&str, u32, Compression); 5] = [
    ("extract.dat", 7, Compression::Zstd),
    ("v6.dat", 6, Compression::None),
    ("v7-none.dat", 7, Compression::None),
    ("v7-zlib.dat", 7, Compression::Zlib),
    ("v7-zstd.dat", 7, Compression::Zstd),
];

/// Every version and compression kscope writes.
pub const WRITE_OPTIONS: [WriteOptions; 4] = [
    WriteOptions {
        version: 6,
        compression: Compression::None,
    },
    WriteOptions {
        version: 7,
        compression: Compression::None,
    },
    WriteOptions {
        version: 7,
        compression: Compression::Zlib,
    },
    WriteOptions {
        version: 7,
        compression: Compression::Zstd,
    },
];

/// The path of a fixture.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The bytes of a fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `data` written with `options`, in memory.
pub fn written(data: &TraceData<'_>, options: &WriteOptions) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    kscope_tracedat::write(data, options, &mut out)
        .unwrap_or_else(|e| panic!("write {options:?}: {e}"));
    out.into_inner()
}

/// A directory for this test's files, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("kscope-tracedat-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The trace-cmd that reads `compression`, when this machine has one:
/// Debian's trace-cmd 3.1.6 is built with zstd only, so zlib needs the
/// one named by `KSCOPE_TRACE_CMD_ZLIB` (see tests/data/README.md). Live
/// gate: no trace-cmd at all fails under `KSCOPE_REQUIRE_LIVE=1`; a missing
/// zlib build only prints why that comparison is skipped.
pub fn trace_cmd_for(compression: Compression) -> Option<PathBuf> {
    let installed = Command::new("trace-cmd").args(["list", "-c"]).output().ok();
    let missing = match &installed {
        Some(out) if out.status.success() => None,
        _ => Some("trace-cmd is not installed (apt-get install trace-cmd)".to_string()),
    };
    if !kscope_testkit::live("trace-cmd as the oracle", missing) {
        return None;
    }
    let algorithms = String::from_utf8_lossy(&installed?.stdout).into_owned();
    let name = match compression {
        Compression::None => return Some("trace-cmd".into()),
        Compression::Zlib => "zlib",
        Compression::Zstd => "zstd",
    };
    if algorithms.contains(name) {
        return Some("trace-cmd".into());
    }
    if let Some(other) = std::env::var_os("KSCOPE_TRACE_CMD_ZLIB").filter(|_| name == "zlib") {
        return Some(other.into());
    }
    eprintln!(
        "skipped: trace-cmd here cannot read {name} files (`trace-cmd list -c`); set KSCOPE_TRACE_CMD_ZLIB to a trace-cmd built with zlib"
    );
    None
}

/// `trace-cmd report -i path`, which must succeed.
pub fn report(trace_cmd: &Path, path: &Path) -> String {
    let out = Command::new(trace_cmd)
        .args(["report", "-i"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", trace_cmd.display()));
    assert!(
        out.status.success(),
        "trace-cmd report -i {} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fields in which `a` and `b` differ, the version and compression
/// left out; empty when they hold the same trace.
pub fn differences(a: &TraceData<'_>, b: &TraceData<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, same: bool| {
        if !same {
            out.push(field.to_string());
        }
    };
    check("big_endian", a.big_endian == b.big_endian);
    check("long_size", a.long_size == b.long_size);
    check("page_size", a.page_size == b.page_size);
    check("header_page", a.header_page == b.header_page);
    check("header_event", a.header_event == b.header_event);
    check("ftrace_formats", a.ftrace_formats == b.ftrace_formats);
    check("event_formats", a.event_formats == b.event_formats);
    check("kallsyms", a.kallsyms == b.kallsyms);
    check("printk_formats", a.printk_formats == b.printk_formats);
    check("cmdlines", a.cmdlines == b.cmdlines);
    check("cpus", a.cpus == b.cpus);
    check("options", a.options == b.options);
    check(
        &format!("buffer names {:?} {:?}", names(a), names(b)),
        names(a) == names(b),
    );
    for (x, y) in a.buffers.iter().zip(&b.buffers) {
        check(&format!("buffer {:?} clock", x.name), x.clock == y.clock);
        check(
            &format!("buffer {:?} page size", x.name),
            x.page_size == y.page_size,
        );
        check(&format!("buffer {:?} cpus", x.name), x.cpus == y.cpus);
    }
    out
}

/// The buffers' names.
pub fn names<'a>(data: &'a TraceData<'_>) -> Vec<&'a str> {
    data.buffers.iter().map(|b| b.name.as_str()).collect()
}
