//! Live tests: compile a C program with gcc in a temp dir, run it with
//! `ulimit -c unlimited` so that the kernel writes `core` (or `core.PID`)
//! there, parse that core and compare it with what the test knows: pid,
//! command line, signal, threads, and the build-ids of the executable and
//! libc as the `object` crate reads them from the files on disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use kscope_coredump::{Core, FrameSource, Unwinder};
use object::Object;

const NULL_WRITE: &str = r#"
int main(int argc, char **argv) {
    (void)argc; (void)argv;
    *(volatile int *)0 = 1;
    return 0;
}
"#;

const FOUR_THREADS: &str = r#"
#include <pthread.h>
#include <unistd.h>
static pthread_barrier_t all_started;
static void *worker(void *arg) {
    long n = (long)arg;
    pthread_barrier_wait(&all_started);
    if (n == 2) {
        usleep(100000);
        *(volatile int *)0 = 1;
    }
    for (;;) pause();
    return 0;
}
int main(void) {
    pthread_t t[4];
    pthread_barrier_init(&all_started, 0, 5);
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, (void *)i);
    pthread_barrier_wait(&all_started);
    for (;;) pause();
}
"#;

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why this machine cannot make cores, or `None`.
fn missing_core_support() -> Option<String> {
    if Command::new("gcc").arg("--version").output().is_err() {
        return Some("gcc is not installed (apt-get install gcc)".into());
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') || pattern.contains('/') {
        return Some(format!(
            "core_pattern is {:?}: cores do not land in the program's cwd",
            pattern.trim()
        ));
    }
    let out = Command::new("sh")
        .args(["-c", "ulimit -c unlimited && ulimit -c"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        _ => Some("the hard RLIMIT_CORE forbids raising the core size limit".into()),
    }
}

/// Compiles `source`, runs it with `args` and returns the dir, the
/// executable's path, the pid and the core's bytes.
fn crash(
    name: &str,
    source: &str,
    args: &[&str],
    flags: &[&str],
) -> (TempDir, PathBuf, u32, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("kscope-coredump-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = TempDir(dir.canonicalize().unwrap());
    let src = dir.0.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let exe = dir.0.join(name);
    let status = Command::new("gcc")
        .args(["-O0", "-g", "-Wl,--build-id", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(flags)
        .status()
        .unwrap();
    assert!(status.success(), "gcc failed on {}", src.display());
    let script = format!("ulimit -c unlimited; exec ./{name} \"$@\"");
    let child = Command::new("sh")
        .args(["-c", &script, "sh"])
        .args(args)
        .current_dir(&dir.0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{name} did not crash");
    let core = [dir.0.join("core"), dir.0.join(format!("core.{pid}"))]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "no core in {} after {name} crashed: {:?}",
                dir.0.display(),
                out.status
            )
        });
    let bytes = std::fs::read(core).unwrap();
    (dir, exe, pid, bytes)
}

fn build_id_on_disk(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.build_id().unwrap().unwrap().to_vec()
}

/// The checks both programs share: signal, executable and libc modules.
fn check_common(core: &Core<'_>, exe: &Path) {
    let sig = core.siginfo().expect("NT_SIGINFO");
    assert_eq!(sig.describe(), "SIGSEGV: address not mapped, at 0x0");
    let crashing = &core.threads()[0];
    assert_eq!(crashing.signal, 11);
    assert!(crashing.has_fpregset && crashing.has_xstate);
    let modules = core.modules();
    let exe_module = modules
        .iter()
        .find(|m| m.path == exe)
        .unwrap_or_else(|| panic!("{exe:?} not in {modules:#?}"));
    let pc = crashing.registers.pc().unwrap();
    assert!(
        exe_module.start <= pc && pc < exe_module.end,
        "rip {pc:#x} outside {exe_module:x?}"
    );
    assert_eq!(exe_module.build_id, Some(&build_id_on_disk(exe)[..]));
    assert!(exe_module.load_bias.is_some());
    let entry = core.aux_value(kscope_coredump::AT_ENTRY).unwrap();
    assert!(exe_module.start <= entry && entry < exe_module.end);
    let libc = modules
        .iter()
        .find(|m| {
            m.path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
        })
        .unwrap_or_else(|| panic!("no libc in {modules:#?}"));
    assert_eq!(
        libc.build_id,
        Some(&build_id_on_disk(libc.path)[..]),
        "{}",
        libc.path.display()
    );
    assert_eq!(libc.load_bias, Some(libc.start), "libc is linked at 0");
}

#[test]
fn null_write() {
    if !kscope_testkit::live("core dumps of a gcc-built program", missing_core_support()) {
        return;
    }
    let (_dir, exe, pid, bytes) = crash("nullwrite", NULL_WRITE, &["hello", "world"], &[]);
    let core = Core::parse(&bytes).unwrap();
    let process = core.process().unwrap();
    assert_eq!(process.pid, pid as i32);
    assert_eq!(process.fname, b"nullwrite");
    assert_eq!(process.psargs, b"./nullwrite hello world");
    assert_eq!(core.threads().len(), 1);
    assert_eq!(core.threads()[0].tid, pid as i32);
    check_common(&core, &exe);
    let rsp = core.threads()[0].registers.sp().unwrap();
    assert!(core.read_u64(rsp).is_some(), "the stack is dumped");
    check_backtrace(&core, &exe);
}

/// main crashed: its caller's frames are libc's __libc_start_call_main
/// and __libc_start_main, then the executable's _start, all found by the
/// CFI of the files on disk, the stack pointer rising at each.
fn check_backtrace(core: &Core<'_>, exe: &Path) {
    let mut unwinder = Unwinder::new(core);
    let frames = unwinder.backtrace(&core.threads()[0].registers);
    let paths: Vec<PathBuf> = frames
        .iter()
        .map(|f| unwinder.module_at(f.pc).unwrap().path.to_path_buf())
        .collect();
    assert_eq!(paths.len(), 4, "{frames:x?} in {paths:?}");
    assert_eq!(paths[0], exe);
    assert!(paths[1].to_string_lossy().contains("libc.so"), "{paths:?}");
    assert_eq!(paths[1], paths[2]);
    assert_eq!(paths[3], exe);
    assert_eq!(frames[0].source, FrameSource::Registers);
    assert!(
        frames[1..].iter().all(|f| f.source == FrameSource::Cfi),
        "{frames:x?}"
    );
    assert!(frames.windows(2).all(|w| w[0].sp < w[1].sp), "{frames:x?}");
}

#[test]
fn four_threads() {
    if !kscope_testkit::live("core dumps of a gcc-built program", missing_core_support()) {
        return;
    }
    let (_dir, exe, pid, bytes) = crash("fourthreads", FOUR_THREADS, &[], &["-pthread"]);
    let core = Core::parse(&bytes).unwrap();
    assert_eq!(core.process().unwrap().pid, pid as i32);
    assert_eq!(core.process().unwrap().psargs, b"./fourthreads");
    let tids: Vec<i32> = core.threads().iter().map(|t| t.tid).collect();
    assert_eq!(tids.len(), 5, "main + 4: {tids:?}");
    assert_ne!(tids[0], pid as i32, "a worker crashed, not main");
    assert!(tids.contains(&(pid as i32)));
    check_common(&core, &exe);
}
