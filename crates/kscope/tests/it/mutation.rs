//! Mutation runs: real inputs (the trace.dat fixtures, a user core made
//! here, the dumps of `scripts/make-vmcore`, the probe corpus) cut short,
//! bit-flipped, zeroed, grown by inserted bytes and overwritten with
//! boundary integers at places a seeded generator picks, each given to
//! the kscope binary under a time and an address-space limit. Every
//! outcome must be a result or a clean error (`kscope: error:` or a
//! script diagnostic, status 1): no panic, no hang, no allocation beyond
//! the limit, no crash. A run is repeatable from its seed; each input
//! that fails is saved with its command under the build tree for
//! reproduction. `fuzz/mutate` runs larger passes
//! (`KSCOPE_MUTATE_SEED`, `KSCOPE_MUTATE_COUNT`, `KSCOPE_MUTATE_KINDS`,
//! `KSCOPE_MUTATE_MUTATIONS`); the counts of recorded passes are in
//! docs/ARCHITECTURE.md ("Hostile input").

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kscope_testkit::vmcore_variants;

/// The seed when `KSCOPE_MUTATE_SEED` does not give one.
const DEFAULT_SEED: u64 = 20_261_207;

/// How many inputs CI runs when `KSCOPE_MUTATE_COUNT` does not say.
const DEFAULT_COUNT: usize = 1000;

/// The time one run may take before it counts as a hang (a debug build
/// reads a whole dump's kallsyms in about 2 s here).
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// The address space one run may map (`prlimit --as`): a whole 130 MB
/// dump mapped, the per-CPU threads' stacks and malloc arenas fit well
/// inside; an allocation sized by a damaged length does not.
const MEMORY_LIMIT: u64 = 2 << 30;

/// Where most mutations of a large file land: its headers, tables and
/// first pages; the rest land anywhere.
const HEAD: u64 = 64 << 10;

/// Files up to this size are mutated in memory; larger ones (dumps) are
/// copied and patched in place.
const SMALL: u64 = 8 << 20;

/// splitmix64: small, seedable, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An offset in a file of `len` bytes, mostly within [`HEAD`].
    fn offset(&mut self, len: u64) -> u64 {
        if len > HEAD && self.below(4) != 0 {
            self.below(HEAD)
        } else {
            self.below(len)
        }
    }
}

/// What a seed file is, and so which command reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    TraceDat,
    Core,
    Vmcore,
    Probe,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::TraceDat, Kind::Core, Kind::Vmcore, Kind::Probe];

    fn name(self) -> &'static str {
        match self {
            Kind::TraceDat => "tracedat",
            Kind::Core => "core",
            Kind::Vmcore => "vmcore",
            Kind::Probe => "probe",
        }
    }

    /// The arguments that read `file`: one of the kind's commands.
    fn command(self, file: &str, rng: &mut Rng, tracefs: bool) -> Vec<String> {
        let args: Vec<&str> = match self {
            Kind::TraceDat => rng
                .pick(&[
                    &["trace", "report", "-i", file][..],
                    &["trace", "report", "--stat", "-i", file],
                    &["trace", "report", "-R", "-i", file],
                ])
                .to_vec(),
            Kind::Core => rng
                .pick(&[
                    &["core", "info", file][..],
                    &["core", "info", "--json", file],
                ])
                .to_vec(),
            Kind::Vmcore => rng
                .pick(&[&["crash", file, "log"][..], &["crash", file, "sys"]])
                .to_vec(),
            // Pass 3 resolves points against tracefs (reads only) and
            // generates BPF; nothing is loaded or attached.
            Kind::Probe if tracefs && rng.below(2) == 0 => vec!["probe", "-p", "3", file],
            Kind::Probe => vec!["probe", "-p", "1", file],
        };
        args.into_iter().map(str::to_string).collect()
    }
}

/// How an input is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    /// Cut at an offset.
    Cut,
    /// 1 to 8 bits flipped.
    Flip,
    /// 1 to 4096 bytes zeroed.
    Zero,
    /// 1 to 64 random bytes inserted.
    Insert,
    /// A 2-, 4- or 8-byte boundary integer (0, -1, 0x7f.., 0x80..) written.
    Value,
}

impl Mutation {
    const ALL: [Mutation; 5] = [
        Mutation::Cut,
        Mutation::Flip,
        Mutation::Zero,
        Mutation::Insert,
        Mutation::Value,
    ];

    fn name(self) -> &'static str {
        match self {
            Mutation::Cut => "cut",
            Mutation::Flip => "flip",
            Mutation::Zero => "zero",
            Mutation::Insert => "insert",
            Mutation::Value => "value",
        }
    }
}

/// One change to a file.
enum Edit {
    /// Keep this many bytes.
    Cut(u64),
    /// XOR these bytes at their offsets.
    Xor(Vec<(u64, u8)>),
    /// Write these bytes at this offset (within the file).
    Write(u64, Vec<u8>),
    /// Insert these bytes at this offset.
    Insert(u64, Vec<u8>),
}

impl Edit {
    fn plan(mutation: Mutation, len: u64, rng: &mut Rng) -> Edit {
        match mutation {
            Mutation::Cut => Edit::Cut(rng.offset(len)),
            Mutation::Flip => Edit::Xor(
                (0..=rng.below(8))
                    .map(|_| (rng.offset(len), 1u8 << rng.below(8)))
                    .collect(),
            ),
            Mutation::Zero => {
                let at = rng.offset(len);
                let n = (1 + rng.below(4096)).min(len - at.min(len));
                Edit::Write(at, vec![0; n as usize])
            }
            Mutation::Insert => {
                let bytes = (0..=rng.below(64)).map(|_| rng.next() as u8).collect();
                Edit::Insert(rng.offset(len), bytes)
            }
            Mutation::Value => {
                let width = *rng.pick(&[2usize, 4, 8]);
                let value: u64 = *rng.pick(&[
                    0,
                    u64::MAX,
                    1,
                    i64::MAX as u64,
                    1 << 63,
                    0xffff_ffff,
                    0x8000_0000,
                    0x7fff_ffff,
                ]);
                let at = rng.offset(len.saturating_sub(width as u64));
                let mut bytes = value.to_le_bytes()[..width].to_vec();
                bytes.truncate(len.saturating_sub(at) as usize);
                Edit::Write(at, bytes)
            }
        }
    }

    /// `original` changed into a new file at `out`.
    fn apply(&self, original: &Original, out: &Path) -> std::io::Result<()> {
        match original {
            Original::Bytes(bytes) => {
                let mut data = bytes.clone();
                match self {
                    Edit::Cut(at) => data.truncate(*at as usize),
                    Edit::Xor(flips) => {
                        for &(at, mask) in flips {
                            if let Some(b) = data.get_mut(at as usize) {
                                *b ^= mask;
                            }
                        }
                    }
                    Edit::Write(at, bytes) => {
                        let at = *at as usize;
                        data[at..at + bytes.len()].copy_from_slice(bytes);
                    }
                    Edit::Insert(at, bytes) => {
                        let at = *at as usize;
                        data.splice(at..at, bytes.iter().copied());
                    }
                }
                std::fs::write(out, data)
            }
            Original::Large(path) => {
                if let Edit::Insert(at, bytes) = self {
                    let mut from = File::open(path)?;
                    let mut to = File::create(out)?;
                    std::io::copy(&mut (&mut from).take(*at), &mut to)?;
                    to.write_all(bytes)?;
                    from.seek(SeekFrom::Start(*at))?;
                    std::io::copy(&mut from, &mut to)?;
                    return Ok(());
                }
                std::fs::copy(path, out)?;
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .read(true)
                    .open(out)?;
                match self {
                    Edit::Cut(at) => file.set_len(*at),
                    Edit::Xor(flips) => {
                        for &(at, mask) in flips {
                            let mut byte = [0u8];
                            file.read_exact_at(&mut byte, at)?;
                            file.write_all_at(&[byte[0] ^ mask], at)?;
                        }
                        Ok(())
                    }
                    Edit::Write(at, bytes) => file.write_all_at(bytes, *at),
                    Edit::Insert(..) => Ok(()),
                }
            }
        }
    }
}

/// A seed file: small ones held in memory, dumps read from their path.
enum Original {
    Bytes(Vec<u8>),
    Large(PathBuf),
}

struct Seed {
    kind: Kind,
    path: PathBuf,
    len: u64,
    original: Original,
}

impl Seed {
    fn new(kind: Kind, path: PathBuf) -> Seed {
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        let original = if len <= SMALL {
            Original::Bytes(std::fs::read(&path).expect("read a seed"))
        } else {
            Original::Large(path.clone())
        };
        Seed {
            kind,
            path,
            len,
            original,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Error,
    Panic,
    Hang,
    OutOfMemory,
    Crash,
    Other,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Panic,
        Outcome::Hang,
        Outcome::OutOfMemory,
        Outcome::Crash,
        Outcome::Other,
    ];

    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Hang => "hang",
            Outcome::OutOfMemory => "oom",
            Outcome::Crash => "crash",
            Outcome::Other => "other",
        }
    }

    fn classify(status: std::process::ExitStatus, stderr: &str) -> Outcome {
        if stderr.contains("panicked at") || status.code() == Some(101) {
            return Outcome::Panic;
        }
        match (status.code(), status.signal()) {
            (Some(0), _) => Outcome::Ok,
            (Some(1), _) if stderr.contains("kscope: error:") || stderr.contains(": error: ") => {
                Outcome::Error
            }
            (None, _) if stderr.contains("memory allocation of") => Outcome::OutOfMemory,
            // SIGKILL: the kernel's OOM killer (the harness kills only
            // what passed the time limit, counted as a hang).
            (None, Some(9)) => Outcome::OutOfMemory,
            (None, _) => Outcome::Crash,
            _ => Outcome::Other,
        }
    }

    fn failed(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Error)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} does not parse")),
        Err(_) => default,
    }
}

/// The names in `KSCOPE_MUTATE_KINDS`-style lists, or all.
fn chosen<T: Copy>(var: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Vec<T> {
    let Ok(list) = std::env::var(var) else {
        return all.to_vec();
    };
    list.split(',')
        .map(|word| {
            *all.iter()
                .find(|item| name(**item) == word.trim())
                .unwrap_or_else(|| panic!("{var}: no {word:?}"))
        })
        .collect()
}

/// Whether tracefs is mounted where `probe -p 3` reads it (so that the
/// run mounts nothing).
fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" /sys/kernel/tracing ") && l.contains(" - tracefs "))
}

/// The seeds of each kind asked for; a kind this machine cannot provide
/// is skipped through the live gate.
fn seeds(kinds: &[Kind], core: Option<&crate::core::Crash>) -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = |dir: &Path, ext: &str| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("a seed directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        found.sort();
        found
    };
    let mut seeds = Vec::new();
    for &kind in kinds {
        let paths = match kind {
            Kind::TraceDat => files(&root.join("crates/tracedat/tests/data"), "dat"),
            Kind::Probe => files(&root.join("crates/kscope/tests/corpus"), "stp"),
            Kind::Core => core.map(|c| vec![c.core.clone()]).unwrap_or_default(),
            Kind::Vmcore => vmcore_variants("mutated dumps", false)
                .first()
                .map(|v| {
                    ["vmcore-zlib.kdump", "vmcore.elf"]
                        .iter()
                        .map(|f| v.dir.join(f))
                        .filter(|p| p.exists())
                        .collect()
                })
                .unwrap_or_default(),
        };
        seeds.extend(paths.into_iter().map(|p| Seed::new(kind, p)));
    }
    seeds
}

/// A failing input, kept for reproduction.
struct Failure {
    outcome: Outcome,
    saved: PathBuf,
    args: Vec<String>,
    stderr: String,
}

/// Runs kscope with `args` under the limits; its stderr goes to a file
/// (a pipe could fill and stall it).
fn run(args: &[String], stderr_path: &Path) -> (Outcome, String) {
    let stderr_file = File::create(stderr_path).expect("stderr file");
    let mut child = Command::new("prlimit")
        .arg(format!("--as={MEMORY_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .env(
            "KSCOPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kscope-cache"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .expect("run prlimit (util-linux) and kscope");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kscope") {
            break Some(status);
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr =
        String::from_utf8_lossy(&std::fs::read(stderr_path).unwrap_or_default()).into_owned();
    match status {
        Some(status) => (Outcome::classify(status, &stderr), stderr),
        None => (Outcome::Hang, stderr),
    }
}

#[test]
fn mutated_inputs_give_results_or_clean_errors() {
    let seed: u64 = env_or("KSCOPE_MUTATE_SEED", DEFAULT_SEED);
    let count: usize = env_or("KSCOPE_MUTATE_COUNT", DEFAULT_COUNT);
    let kinds = chosen("KSCOPE_MUTATE_KINDS", &Kind::ALL, Kind::name);
    let mutations = chosen("KSCOPE_MUTATE_MUTATIONS", &Mutation::ALL, Mutation::name);
    let core = if kinds.contains(&Kind::Core) {
        crate::core::crash("mutation", crate::core::NULL_WRITE, &["-O0", "-g"])
    } else {
        None
    };
    let seeds = seeds(&kinds, core.as_ref());
    let kinds: Vec<Kind> = kinds
        .into_iter()
        .filter(|k| seeds.iter().any(|s| s.kind == *k))
        .collect();
    assert!(!kinds.is_empty(), "no seeds for any kind");
    let tracefs = tracefs_mounted();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutate");
    let failures_dir = work.join("failures");
    eprintln!(
        "mutation run: seed {seed}, {count} inputs, kinds {:?}, mutations {:?}, {} seeds; failures go to {}",
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        mutations.iter().map(|m| m.name()).collect::<Vec<_>>(),
        seeds.len(),
        failures_dir.display()
    );

    let next = AtomicUsize::new(0);
    let counts: Mutex<BTreeMap<(Kind, Outcome), usize>> = Mutex::default();
    let failures: Mutex<Vec<Failure>> = Mutex::default();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let dir = work.join(format!("worker{worker}"));
            std::fs::create_dir_all(&dir).expect("worker dir");
            let (next, counts, failures) = (&next, &counts, &failures);
            let (seeds, kinds, mutations, failures_dir) =
                (&seeds, &kinds, &mutations, &failures_dir);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    // Each input from its own generator, so that one case
                    // repeats alone: the seed and its index.
                    let mut rng = Rng(seed ^ (index as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
                    let kind = kinds[index % kinds.len()];
                    let of_kind: Vec<&Seed> = seeds.iter().filter(|s| s.kind == kind).collect();
                    let source = *rng.pick(&of_kind);
                    let mutation = *rng.pick(mutations);
                    let edit = Edit::plan(mutation, source.len, &mut rng);
                    let input = dir.join(format!("input-{}", kind.name()));
                    edit.apply(&source.original, &input)
                        .expect("write a mutated input");
                    let args = kind.command(input.to_str().expect("utf-8 path"), &mut rng, tracefs);
                    let (outcome, stderr) = run(&args, &dir.join("stderr"));
                    *counts
                        .lock()
                        .expect("counts")
                        .entry((kind, outcome))
                        .or_default() += 1;
                    if outcome.failed() {
                        std::fs::create_dir_all(failures_dir).expect("failures dir");
                        let name = format!(
                            "{}-{index}-{}-{}",
                            kind.name(),
                            mutation.name(),
                            source
                                .path
                                .file_name()
                                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                        );
                        let saved = failures_dir.join(name);
                        std::fs::rename(&input, &saved).expect("keep the failing input");
                        let args = args
                            .iter()
                            .map(|a| {
                                if *a == input.to_string_lossy() {
                                    saved.to_string_lossy().into_owned()
                                } else {
                                    a.clone()
                                }
                            })
                            .collect();
                        failures.lock().expect("failures").push(Failure {
                            outcome,
                            saved,
                            args,
                            stderr,
                        });
                    }
                    let _ = std::fs::remove_file(&input);
                }
            });
        }
    });
    let elapsed = started.elapsed();

    let counts = counts.into_inner().expect("counts");
    let mut table = format!("{:<10}", "kind");
    for outcome in Outcome::ALL {
        table.push_str(&format!("{:>8}", outcome.name()));
    }
    table.push_str(&format!("{:>8}\n", "total"));
    for kind in &kinds {
        table.push_str(&format!("{:<10}", kind.name()));
        let mut total = 0;
        for outcome in Outcome::ALL {
            let n = counts.get(&(*kind, outcome)).copied().unwrap_or(0);
            total += n;
            table.push_str(&format!("{n:>8}"));
        }
        table.push_str(&format!("{total:>8}\n"));
    }
    eprintln!(
        "{table}seed {seed}: {count} inputs in {:.1} s on {workers} workers",
        elapsed.as_secs_f64()
    );

    let failures = failures.into_inner().expect("failures");
    let report: Vec<String> = failures
        .iter()
        .map(|f| {
            format!(
                "{} ({}): kscope {}\n{}",
                f.outcome.name(),
                f.saved.display(),
                f.args.join(" "),
                // The message, not the whole backtrace.
                f.stderr.lines().take(6).collect::<Vec<_>>().join("\n")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} inputs failed (seed {seed}; saved in {}):\n{}",
        failures.len(),
        failures_dir.display(),
        report.join("\n\n")
    );
}
