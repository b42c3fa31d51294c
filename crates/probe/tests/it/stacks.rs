//! Stack symbolization against the running system: a kernel address from
//! /proc/kallsyms, and the frames of a real process (a PIE, a fixed-address
//! executable, and libc in it), read after the process is gone and its
//! file deleted; `nm` is the oracle for the symbols' starts and sizes.

// Test helpers outside #[test] functions: a failure is the test's.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use kscope_probe::stacks::{
    Folded, KernelSymbols, Symbols, UserStacks, backtrace_string, print_stack,
};
use kscope_testkit::{live, missing_root};

/// Every nonzero address in /proc/kallsyms, sorted, and `name`'s.
fn kallsyms_address(name: &str) -> (u64, Vec<u64>) {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let mut addresses = Vec::new();
    let mut wanted = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = u64::from_str_radix(fields[0], 16).unwrap();
        if address == 0 {
            continue;
        }
        addresses.push(address);
        if fields[2] == name && fields.len() == 3 && wanted.is_none() {
            wanted = Some(address);
        }
    }
    addresses.sort_unstable();
    (wanted.unwrap(), addresses)
}

#[test]
fn a_live_kernel_address_symbolizes_as_print_backtrace_prints_it() {
    if !live("kernel stack symbols from /proc/kallsyms", missing_root()) {
        return;
    }
    let (schedule, addresses) = kallsyms_address("schedule");
    let next = addresses.iter().find(|&&a| a > schedule).unwrap();
    let size = next - schedule;
    let kernel = KernelSymbols::read().unwrap();
    assert_eq!(
        kernel.kernel_frame(schedule),
        format!(" {schedule:#x} : schedule+0x0/{size:#x} [kernel]")
    );
    assert_eq!(
        kernel.kernel_frame(schedule + 5),
        format!(" {:#x} : schedule+0x5/{size:#x} [kernel]", schedule + 5)
    );
    let s = backtrace_string(&[schedule + 5, 0], 511);
    assert_eq!(s, format!("{:#x} ", schedule + 5));
    assert_eq!(
        print_stack(&kernel, &s),
        format!(" {:#x} : schedule+0x5/{size:#x} [kernel]\n", schedule + 5)
    );
}

/// A program that prints where `spin` and libc's `pause` are (through
/// dlsym: in a fixed-address executable `(void *)pause` is its PLT
/// entry), then waits in `spin` until it is killed.
const PROGRAM: &str = r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) void spin(void)
{
	for (;;)
		pause();
}

int main(void)
{
	printf("%p %p\n", (void *)spin, dlsym(RTLD_DEFAULT, "pause"));
	fflush(stdout);
	spin();
	return 0;
}
"#;

use kscope_testkit::run_tool as run;

/// The symbols `nm ARGS FILE` lists: address, size and name (without
/// a version, `pause@@GLIBC_2.2.5` being `pause`).
fn nm(args: &[&str], file: &Path) -> Vec<(u64, u64, String)> {
    let mut all = args.to_vec();
    all.push(file.to_str().unwrap());
    run("nm", &all)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [start, size, _, name] = fields[..] else {
                return None;
            };
            let name = name.split('@').next().unwrap_or(name).to_string();
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(size, 16).ok()?,
                name,
            ))
        })
        .collect()
}

/// The address and size `nm ARGS FILE` gives `name`.
fn nm_symbol(args: &[&str], file: &Path, name: &str) -> (u64, u64) {
    nm(args, file)
        .into_iter()
        .find_map(|(address, size, n)| (n == name).then_some((address, size)))
        .unwrap_or_else(|| panic!("nm {args:?} lists no {name} in {}", file.display()))
}

/// The started program and the two addresses it printed; the program is
/// killed when this is dropped, a failed assertion included.
struct Started {
    child: Child,
    spin: u64,
    pause: u64,
}

impl Started {
    /// Kills the program and waits for it to be gone.
    fn end(&mut self) {
        // It may have been ended already: killing it again fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.end();
    }
}

fn start(binary: &Path) -> Started {
    let mut child = Command::new(binary).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take();
    let mut started = Started {
        child,
        spin: 0,
        pause: 0,
    };
    let mut line = String::new();
    BufReader::new(stdout.unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut addresses = line
        .split_whitespace()
        .map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).unwrap());
    started.spin = addresses.next().unwrap();
    started.pause = addresses.next().unwrap();
    started
}

/// The path the process's maps give the file holding `address`.
fn mapped_path(pid: u32, address: u64) -> PathBuf {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines()
        .find_map(|line| {
            let (range, rest) = line.split_once(' ')?;
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            let path = rest.split_whitespace().nth(4)?;
            (start <= address && address < end).then(|| PathBuf::from(path))
        })
        .unwrap()
}

/// The separate debug file of `file` by build-id, if installed: the
/// symbolizer reads its symbol table too, and it may name an address
/// differently (`__libc_pause` for `pause`).
fn debug_file(file: &Path) -> Option<PathBuf> {
    let object = kscope_symbols::ObjectFile::open(file).ok()?;
    let hex: String = object
        .build_id()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &hex[..2],
        &hex[2..]
    ));
    path.exists().then_some(path)
}

#[test]
fn user_frames_symbolize_after_the_process_and_its_file_are_gone() {
    if !live("user stack symbols of a C program", missing_root()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("spin.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let mut stacks = UserStacks::new();
    let variants: [(&str, &[&str]); 2] = [
        ("pie", &["-O1", "-fPIE", "-pie"]),
        ("fixed", &["-O1", "-fno-PIE", "-no-pie"]),
    ];
    for (name, flags) in variants {
        let binary = dir.path().join(name);
        let mut args = flags.to_vec();
        args.extend(["-o", binary.to_str().unwrap(), source.to_str().unwrap()]);
        run("cc", &args);
        let (_, spin_size) = nm_symbol(&["-S"], &binary, "spin");
        check_process(&mut stacks, &binary, spin_size);
    }
}

/// Starts `binary`, remembers it, kills it, deletes it, and checks its
/// frames in `spin` (of `spin_size` bytes) and in libc's `pause`.
fn check_process(stacks: &mut UserStacks, binary: &Path, spin_size: u64) {
    let mut started = start(binary);
    let (spin, pause) = (started.spin, started.pause);
    let pid = started.child.id();
    let libc = mapped_path(pid, pause);
    stacks.remember(pid).unwrap();
    started.end();
    std::fs::remove_file(binary).unwrap();

    assert_eq!(
        stacks.user_frame(pid, spin + 4),
        format!(
            " {:#x} : spin+0x4/{spin_size:#x} [{}]",
            spin + 4,
            binary.display()
        )
    );

    // libc: a shared library mapped at an offset. The names nm gives
    // pause's address (in the debug file's table too, when installed)
    // are the ones the line may carry.
    let (vaddr, _) = nm_symbol(&["-D", "-S"], &libc, "pause");
    let mut tables = nm(&["-D", "-S"], &libc);
    if let Some(debug) = debug_file(&libc) {
        tables.extend(nm(&["-S"], &debug));
    }
    let frame = stacks.user_frame(pid, pause + 1);
    let expected: Vec<String> = tables
        .iter()
        .filter(|(address, _, _)| *address == vaddr)
        .map(|(_, size, name)| {
            format!(
                " {:#x} : {name}+0x1/{size:#x} [{}]",
                pause + 1,
                libc.display()
            )
        })
        .collect();
    assert!(
        expected.contains(&frame),
        "{frame:?} is none of {expected:?}"
    );

    // The two as one stack, folded: outermost first, names only.
    let process = stacks.process(pid);
    let leaf = process.locate(pause + 1).function_name(pause + 1);
    let mut folded = Folded::new();
    folded.add_stack(&process, &[pause + 1, spin + 4, 0], 2);
    let mut out = Vec::new();
    folded.write_to(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), format!("spin;{leaf} 2\n"));
}
