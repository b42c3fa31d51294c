//! `kscope-lab-guest`: runs inside the guest lab (or on a host that has
//! the features), where it exercises `StateGuard` with the changes this
//! development host cannot make: a kprobe definition, the function tracer
//! in a private instance, `set_ftrace_filter` and `set_ftrace_pid`. Then
//! it checks that tracefs is byte for byte as before.
//!
//! `kscope-lab-guest guard MODE` (MODE: normal, panic, sigterm) snapshots
//! tracefs, starts `kscope-lab-guest guard-child MODE`, which makes the
//! changes, says "ready", and then returns, panics, or waits for the
//! SIGTERM its parent sends; the parent then compares tracefs. Exit status
//! 0 means the changes were seen while the child lived and undone after.
//!
//! `kscope-lab-guest top-buffer`, in a guest whose top-level buffer was
//! never used, checks what the guard leaves there on kernels before 6.2,
//! where using an instance flips the top buffer's global "expanded" flag:
//! the buffer must end at its expanded size, not at its 7 KiB placeholder.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use kscope_testkit::{snapshot_differences, tracefs_snapshot};
use kscope_tracefs::{ProbeFile, StateGuard, Tracefs, control, restore_on_signals};

const PROBE: &str = "p:kscope_lab/vfs_read vfs_read";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["guard", mode] => guard(mode),
        ["guard-child", mode] => guard_child(mode),
        ["top-buffer"] => top_buffer(),
        _ => Err(
            "usage: kscope-lab-guest guard|guard-child normal|panic|sigterm, or top-buffer"
                .to_string(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kscope-lab-guest: {err}");
            ExitCode::FAILURE
        }
    }
}

fn guard_child(mode: &str) -> Result<(), String> {
    restore_on_signals().map_err(|e| e.to_string())?;
    let guard = StateGuard::new();
    let fs = guard.tracefs().map_err(|e| e.to_string())?;
    let top = fs.top();
    let step = |result: kscope_tracefs::Result<()>| result.map_err(|e| e.to_string());
    guard
        .add_probe(&fs, ProbeFile::Kprobe, PROBE)
        .map_err(|e| e.to_string())?;
    let mine = guard.private_instance(&fs).map_err(|e| e.to_string())?;
    step(guard.set(&mine, "set_ftrace_filter", "vfs_read"))?;
    step(guard.set(&mine, "current_tracer", "function"))?;
    step(guard.enable_event(&mine, "kscope_lab", "vfs_read"))?;
    step(guard.set(&top, "set_ftrace_filter", "vfs_write"))?;
    step(guard.set(&top, "set_ftrace_pid", &std::process::id().to_string()))?;
    println!("ready {}", mine.name().unwrap_or_default());
    // Hold the changes until the parent has looked at them.
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .map_err(|e| e.to_string())?;
    match mode {
        // Returning drops the guard, as a program that ends normally does.
        "normal" => Ok(()),
        "panic" => panic!("guard-child panics on purpose"),
        "sigterm" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        other => Err(format!("unknown mode {other}")),
    }
}

fn mounted_tracefs() -> Result<Tracefs, String> {
    Tracefs::find()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "tracefs is not mounted".to_string())
}

fn spawn_child(mode: &str) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(["guard-child", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())
}

fn top_buffer() -> Result<(), String> {
    let fs = mounted_tracefs()?;
    let file = fs.top().file("buffer_size_kb");
    let before = control::read(&file).map_err(|e| e.to_string())?;
    let size = control::unexpanded_size(&before).ok_or_else(|| {
        format!("the top buffer is already expanded ({before:?}): run this first")
    })?;
    let mut child = spawn_child("normal")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "go").map_err(|e| e.to_string())?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let after = control::read(&file).map_err(|e| e.to_string())?;
    println!("top-level buffer_size_kb: before {before:?}, after {after:?} ({status})");
    let kb: u64 = after.trim().parse().unwrap_or(0);
    let wanted: u64 = size.parse().unwrap_or(u64::MAX);
    if status.success() && (control::unexpanded_size(&after).is_some() || kb >= wanted) {
        println!("the top buffer is left as its next user would find it");
        Ok(())
    } else {
        Err(format!(
            "the top buffer was left at {after:?}, below its expanded size {size}"
        ))
    }
}

fn guard(mode: &str) -> Result<(), String> {
    let fs = mounted_tracefs()?;
    // Set-up, not under test: before 6.2 the first use of any instance
    // expands the top buffer for good (see top-buffer), which would
    // differ from a fresh boot's "7 (expanded: 1408)" whatever we do.
    let top_size = fs.top().file("buffer_size_kb");
    if let Some(size) = control::read(&top_size)
        .ok()
        .and_then(|t| control::unexpanded_size(&t))
    {
        control::write(&top_size, &size, control::WriteMode::Replace, None)
            .map_err(|e| e.to_string())?;
        println!("set-up: expanded the top buffer to {size} KiB");
    }
    let before = tracefs_snapshot(fs.root());
    let mut child = spawn_child(mode)?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let instance = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("ready ").map(str::to_string));
    let Some(instance) = instance else {
        let status = child.wait().map_err(|e| e.to_string())?;
        return Err(format!("the child never got ready ({status})"));
    };

    // The changes must be visible while the child holds them.
    let read = |relative: &str| fs.top().read(relative).unwrap_or_default();
    let tracer = fs
        .instance(&instance)
        .and_then(|i| i.read("current_tracer").ok())
        .unwrap_or_default();
    let pid = child.id().to_string();
    let seen = [
        (
            "kprobe_events",
            read("kprobe_events").contains("kscope_lab/vfs_read"),
        ),
        ("the instance's current_tracer", tracer.trim() == "function"),
        (
            "set_ftrace_filter",
            read("set_ftrace_filter").contains("vfs_write"),
        ),
        (
            "set_ftrace_pid",
            read("set_ftrace_pid").lines().any(|l| l.trim() == pid),
        ),
    ];
    for (what, ok) in &seen {
        println!("while the child ran: {what} changed: {ok}");
    }
    if !seen[3].1 {
        println!(
            "set_ftrace_pid held {:?}, the child is {pid}",
            read("set_ftrace_pid")
        );
    }
    // Let the child go on: to its end, its panic, or its wait for SIGTERM.
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "go").map_err(|e| e.to_string())?;
    }
    if mode == "sigterm" {
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !killed.success() {
            return Err("kill -TERM failed".into());
        }
    }
    lines.for_each(drop);
    let status = child.wait().map_err(|e| e.to_string())?;
    let expected = match mode {
        "normal" => status.success(),
        "panic" => status.code() == Some(101),
        _ => status.signal() == Some(15),
    };
    println!("the child ended: {status} (expected for {mode}: {expected})");

    let after = tracefs_snapshot(fs.root());
    let differences = snapshot_differences(&before, &after);
    for line in &differences {
        println!("changed: {line}");
    }
    if seen.iter().all(|(_, ok)| *ok) && expected && differences.is_empty() {
        println!(
            "tracefs unchanged ({} control files compared)",
            before.len()
        );
        Ok(())
    } else {
        Err("the guard did not restore tracefs (see above)".into())
    }
}
