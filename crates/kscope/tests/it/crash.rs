//! `kscope crash` on the real dumps `scripts/make-vmcore` makes (Debian's
//! 6.1 kernel panicked with sysrq under QEMU: 4- and 5-level paging, with
//! and without KASLR, in ELF, flattened and kdump-compressed forms). The
//! oracles are the dumps' own: the kernel's VMCOREINFO names the addresses
//! of some of its symbols, with KASLR applied, and its banner.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kscope_testkit::{VmcoreVariant, vmcore_variants};
use serde_json::Value;

use crate::{kscope, kscope_ok, stderr, stdout};

/// The forms of one dump.
const FORMS: [&str; 3] = ["vmcore.elf", "vmcore-zlib.flat", "vmcore-zlib.kdump"];

/// The dumps' directory.
fn vmcores() -> PathBuf {
    kscope_testkit::vmcores_dir()
}

/// Every dump file of every variant (made with the oracles), variant by
/// variant in `FORMS` order; empty after the live gate said why.
fn dumps(what: &str) -> Option<Vec<(VmcoreVariant, PathBuf)>> {
    let variants = vmcore_variants(what, true);
    if variants.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for variant in variants {
        for form in FORMS {
            let path = variant.dir.join(form);
            assert!(path.exists(), "{} is missing", path.display());
            all.push((variant.clone(), path));
        }
    }
    Some(all)
}

/// `kscope crash DUMP --json ARGS`, parsed.
fn crash_json(dump: &Path, args: &[&str]) -> Value {
    let dump = dump.to_str().expect("utf-8 path");
    let mut all = vec!["crash", dump, "--json"];
    all.extend(args);
    let output = kscope_ok(&all);
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// The `SYMBOL(name)=hex` entries of a dump's VMCOREINFO, from the text
/// `scripts/make-vmcore` saved beside it. `mem_section` is left out: the
/// kernel writes the pointer's value there, not the variable's address.
fn vmcoreinfo_symbols(variant: &VmcoreVariant) -> HashMap<String, u64> {
    let text = variant
        .file("vmcoreinfo.txt")
        .expect("vmcoreinfo.txt beside the dump");
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.strip_prefix("SYMBOL(")?.split_once(")=")?;
            Some((name.to_string(), u64::from_str_radix(value, 16).ok()?))
        })
        .filter(|(name, _)| name != "mem_section")
        .collect()
}

/// Runs `commands` (one a line) in the shell of `kscope crash DUMP`, and
/// returns what it printed.
fn shell(dump: &Path, commands: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kscope"))
        .arg("crash")
        .arg(dump)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kscope crash");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(commands.as_bytes())
            .expect("write commands");
    }
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn sym_gives_the_addresses_vmcoreinfo_names_in_every_dump() {
    let Some(dumps) = dumps("kscope crash sym") else {
        return;
    };
    for (variant, dump) in &dumps {
        let expected = vmcoreinfo_symbols(variant);
        assert!(expected.len() >= 15, "{variant}: {expected:?}");
        // By name, then one byte in by address: `ADDRESS (KIND) NAME` and
        // `ADDRESS (KIND) SYMBOL+0x1`.
        let mut commands = String::new();
        let mut wanted = Vec::new();
        for (name, address) in &expected {
            commands.push_str(&format!("sym {name}\nsym {:x}\n", address + 1));
            wanted.push(format!("{address:016x} "));
            wanted.push(format!(" {name}"));
            // Another symbol may share the address (init_top_pgt is
            // swapper_pg_dir): the offset is what must be right.
            wanted.push(format!("{:016x} ", address + 1));
            wanted.push("+0x1".to_string());
        }
        let text = shell(dump, &commands);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 * expected.len(), "{text}");
        for (line, pair) in lines.iter().zip(wanted.chunks(2)) {
            assert!(
                line.starts_with(&pair[0]) && line.ends_with(&pair[1]),
                "{} in {}: {line:?}, expected {pair:?}",
                variant,
                dump.display()
            );
        }
        let sys = crash_json(dump, &["sys"]);
        assert_eq!(sys["release"], variant.var("KERNEL_RELEASE"), "{sys}");
        assert_eq!(sys["cpus"], 2);
        assert!(sys["symbols"].as_u64() > Some(90_000), "{sys}");
    }
}

/// The guest's own kallsyms (`scripts/make-vmcore` saves it before the
/// panic): the core kernel's symbols whose name is unique.
fn unique_guest_kallsyms(variant: &VmcoreVariant) -> Vec<(u64, String)> {
    let symbols = variant.guest_kallsyms();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, name) in &symbols {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let unique: Vec<(u64, String)> = symbols
        .iter()
        .filter(|(_, name)| count[name.as_str()] == 1)
        .cloned()
        .collect();
    unique
}

#[test]
fn sym_agrees_with_the_guests_own_kallsyms() {
    let Some(dumps) = dumps("kscope crash sym against the guest's kallsyms") else {
        return;
    };
    for (variant, dump) in dumps.iter().step_by(FORMS.len()) {
        let symbols = unique_guest_kallsyms(variant);
        assert!(
            symbols.len() > 80_000,
            "{variant}: {} symbols",
            symbols.len()
        );
        // Every 40th, by name: about 2,300 a dump.
        let sample: Vec<&(u64, String)> = symbols.iter().step_by(40).collect();
        let commands: String = sample
            .iter()
            .map(|(_, name)| format!("sym {name}\n"))
            .collect();
        let text = shell(dump, &commands);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), sample.len(), "{variant}");
        for (line, (address, name)) in lines.iter().zip(&sample) {
            let expected = format!("{address:016x} ");
            assert!(
                line.starts_with(&expected) && line.ends_with(&format!(" {name}")),
                "{variant}: {line:?}, the guest says {address:016x} {name}"
            );
        }
    }
}

#[test]
fn rd_and_dis_read_the_kernel_through_its_symbols() {
    let Some(dumps) = dumps("kscope crash rd and dis") else {
        return;
    };
    for (_, dump) in &dumps {
        let text = shell(dump, "rd linux_banner 4\ndis sysrq_handle_crash\n");
        let (banner, dis) = text.split_at(text.find("0xffffffff").unwrap_or(0));
        assert!(banner.contains("Linux version 6."), "{text}");
        assert_eq!(banner.lines().count(), 2, "{text}");
        assert!(dis.contains(" <sysrq_handle_crash>:"), "{dis}");
        assert!(dis.contains("call   0xffffffff"), "{dis}");
        assert!(dis.contains(" <panic>"), "{dis}");
    }
    let json = crash_json(&dumps[0].1, &["dis", "sysrq_handle_crash", "2"]);
    assert_eq!(json["instructions"].as_array().map(Vec::len), Some(2));
}

/// objdump 2.40's AT&T text and kscope's (iced-x86's GAS formatter) in one
/// form: numbers by value; a RIP-relative operand by the address objdump
/// puts in its comment (kscope prints the address); no symbol after a
/// target, no zero displacement, no scale of 1, no `%es:` on string
/// operands, no prefixes objdump spells out on padding (`data16 cs
/// nopw`).
fn normalized_instruction(text: &str) -> String {
    let (text, comment) = text.split_once('#').unwrap_or((text, ""));
    let mut text = text.split(" <").next().unwrap_or(text).trim().to_string();
    if let Some(target) = comment.split_whitespace().next()
        && let Some(rip) = text.find("(%rip)")
    {
        let start = text[..rip].rfind([',', ' ', ':']).map_or(0, |at| at + 1);
        text.replace_range(start..rip + "(%rip)".len(), target);
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    while words.len() > 1 && ["data16", "cs", "ds"].contains(&words[0]) {
        words.remove(0);
    }
    let text = words.join(" ").replace("%es:", "");
    // Each number (not a register's digits) by its value.
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let starts_number = c.is_ascii_digit()
            || (c == '-' && text[at + 1..].starts_with(|d: char| d.is_ascii_digit()));
        let after = out.chars().last();
        if !starts_number || after.is_some_and(|p| p.is_ascii_alphanumeric() || p == '%') {
            out.push(c);
            continue;
        }
        let mut end = at + 1;
        while let Some(&(i, d)) = chars.peek() {
            if !(d.is_ascii_hexdigit() || d == 'x') {
                break;
            }
            end = i + 1;
            chars.next();
        }
        let token = &text[at..end];
        let (negative, digits) = token
            .strip_prefix('-')
            .map_or((false, token), |rest| (true, rest));
        let value = match digits.strip_prefix("0x") {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => digits.parse(),
        }
        .unwrap_or_else(|e| panic!("{token} in {text:?}: {e}"));
        let value = if negative { -value } else { value };
        // A zero displacement says nothing.
        if value != 0 || !text[end..].starts_with('(') {
            out.push_str(&value.to_string());
        }
    }
    out.replace(",1)", ")")
}

#[test]
fn dis_decodes_the_kernels_code_as_objdump_does() {
    let Some(dumps) = dumps("kscope crash dis against objdump") else {
        return;
    };
    let objdump = Command::new("objdump").arg("--version").output();
    assert!(
        objdump.is_ok_and(|o| o.status.success()),
        "objdump (binutils) is the oracle: apt-get install binutils"
    );
    // The forms agree; different instructions stay different.
    for (objdump, kscope) in [
        ("cmpb   $0xa,-0x1(%rdx,%rax,1)", "cmpb   $0xa,-1(%rdx,%rax)"),
        (
            "mov    0x2581782(%rip),%rax        # 0xffffffff88183538",
            "mov    0xffffffff88183538,%rax",
        ),
        (
            "incl   %gs:0x7aab88e0(%rip)        # 0x1fb40",
            "incl   %gs:0x1fb40",
        ),
        (
            "je     0xffffffff85c01d9c",
            "je     0xffffffff85c01d9c <panic+0xec>",
        ),
        ("data16 cs nopw 0x0(%rax,%rax,1)", "nopw   (%rax,%rax)"),
        ("rep stos %rax,%es:(%rdi)", "rep stos %rax,(%rdi)"),
    ] {
        assert_eq!(
            normalized_instruction(objdump),
            normalized_instruction(kscope),
            "{objdump}"
        );
    }
    for (a, b) in [
        ("mov    $0x1,%edi", "mov    $0x2,%edi"),
        ("je     0xffffffff85c01d9c", "jne    0xffffffff85c01d9c"),
        ("mov    0x8(%r8),%rax", "mov    (%r8),%rax"),
        ("mov    %r8,%rax", "mov    %r9,%rax"),
    ] {
        assert_ne!(normalized_instruction(a), normalized_instruction(b), "{a}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for (variant, dump) in dumps.iter().filter(|(_, d)| d.ends_with("vmcore.elf")) {
        for function in [
            "sysrq_handle_crash",
            "__handle_sysrq",
            "panic",
            "vfs_write",
            "ksys_write",
            "schedule",
        ] {
            let dis = crash_json(dump, &["dis", function]);
            let instructions = dis["instructions"].as_array().expect("instructions");
            let start = dis["address"].as_u64().expect("address");
            let length: u64 = instructions
                .iter()
                .map(|i| i["length"].as_u64().expect("length"))
                .sum();
            // The same bytes, read with rd, disassembled by objdump.
            let words = crash_json(dump, &["rd", function, &length.div_ceil(8).to_string()]);
            let mut code: Vec<u8> = words["words"]
                .as_array()
                .expect("words")
                .iter()
                .flat_map(|w| w.as_u64().expect("a word").to_le_bytes())
                .collect();
            code.truncate(usize::try_from(length).expect("a length"));
            let bin = dir.path().join(format!("{function}.bin"));
            std::fs::write(&bin, &code).expect("write the code");
            let output = Command::new("objdump")
                .args([
                    "-D",
                    "-b",
                    "binary",
                    "-m",
                    "i386:x86-64",
                    "--no-show-raw-insn",
                ])
                .arg(format!("--adjust-vma={start:#x}"))
                .arg(&bin)
                .output()
                .expect("run objdump");
            assert!(output.status.success(), "{}", stderr(&output));
            let theirs: Vec<(u64, String)> = stdout(&output)
                .lines()
                .filter_map(|line| {
                    let (address, text) = line.trim_start().split_once(":\t")?;
                    Some((
                        u64::from_str_radix(address, 16).ok()?,
                        normalized_instruction(text),
                    ))
                })
                .collect();
            let ours: Vec<(u64, String)> = instructions
                .iter()
                .map(|i| {
                    (
                        i["address"].as_u64().expect("address"),
                        normalized_instruction(i["text"].as_str().expect("text")),
                    )
                })
                .collect();
            assert!(ours.len() > 4, "{variant} {function}: {ours:?}");
            assert_eq!(ours, theirs, "{variant} {function}");
        }
    }
}

#[test]
fn log_holds_the_console_and_equals_makedumpfile() {
    let Some(dumps) = dumps("kscope crash log") else {
        return;
    };
    for (variant, dump) in &dumps {
        let log = stdout(&kscope_ok(&[
            "crash",
            dump.to_str().expect("utf-8 path"),
            "log",
        ]));
        // Every line the kernel printed on the serial console (the lines
        // with a timestamp; /init's own have none), in order.
        let console = variant.file("console.log").expect("console.log");
        let mut rest = log.as_str();
        for line in console.lines().map(|l| l.trim_end_matches('\r')) {
            if !line.starts_with('[') || !line.contains("] ") {
                continue;
            }
            // A continuation line repeats its record's timestamp on the
            // console; in the log it is indented under the first.
            let text = line.split_once("] ").map_or(line, |(_, text)| text);
            let at = rest.find(text).unwrap_or_else(|| {
                panic!("{}: console line {line:?} not in the log", dump.display())
            });
            rest = &rest[at + text.len()..];
        }
        // makedumpfile, where it could read the dump, prints the same.
        let oracle = variant.dir.join("dmesg.makedumpfile.zlib.kdump.txt");
        if let Ok(expected) = std::fs::read_to_string(&oracle) {
            assert_eq!(
                log,
                expected,
                "{} against {}",
                dump.display(),
                oracle.display()
            );
        }
    }
    // The variants makedumpfile reads (no KASLR) are compared above.
    assert!(
        vmcores()
            .join("4level-nokaslr/dmesg.makedumpfile.zlib.kdump.txt")
            .exists()
    );
}

#[test]
fn sys_names_the_kernel_the_panic_and_its_cpu() {
    let Some(dumps) = dumps("kscope crash sys") else {
        return;
    };
    for (variant, dump) in &dumps {
        let sys = crash_json(dump, &["sys"]);
        assert_eq!(sys["release"], variant.var("KERNEL_RELEASE"), "{sys}");
        assert_eq!(sys["machine"], "x86_64");
        assert_eq!(
            sys["panic"], "Kernel panic - not syncing: sysrq triggered crash",
            "{sys}"
        );
        let panic_cpu: u64 = variant.var("PANIC_CPU").parse().expect("a CPU");
        assert_eq!(sys["panic_cpu"].as_u64(), Some(panic_cpu), "{sys}");
        assert_eq!(sys["cpus"], 2);
        let memory = sys["memory_bytes"].as_u64().expect("memory");
        assert!((120 << 20..=128 << 20).contains(&memory), "{memory}");
        let offset = variant.kaslr_offset();
        assert_eq!(sys["kaslr_offset"].as_u64(), Some(offset));
    }
}

#[test]
fn struct_shows_types_and_values_from_the_dumps_btf() {
    let Some(dumps) = dumps("kscope crash struct") else {
        return;
    };
    let dump = &dumps[0].1;
    let layout = crash_json(dump, &["struct", "list_head"]);
    assert_eq!(layout["size"], 16);
    assert_eq!(layout["fields"][1]["name"], "prev");
    assert_eq!(layout["fields"][1]["offset"], 8);
    let text = shell(dump, "struct task_struct init_task\n");
    assert!(
        text.contains("comm = \"swapper/0"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(
        text.contains("pid = 0,"),
        "{}",
        &text[..text.len().min(2000)]
    );
}

#[test]
fn ps_bt_and_mod_show_the_panicking_task_and_its_sysrq_path() {
    let Some(dumps) = dumps("kscope crash ps, bt and mod") else {
        return;
    };
    for (variant, dump) in dumps.iter().step_by(FORMS.len()) {
        let ps = crash_json(dump, &["ps"]);
        let tasks = ps["tasks"].as_array().expect("tasks");
        assert!(tasks.len() > 40, "{variant}: {} tasks", tasks.len());
        let pid: i64 = variant.var("PANIC_PID").parse().expect("a pid");
        let cpu: u64 = variant.var("PANIC_CPU").parse().expect("a CPU");
        let panicking = tasks
            .iter()
            .find(|t| t["pid"] == pid)
            .unwrap_or_else(|| panic!("{variant}: no pid {pid} in {tasks:?}"));
        assert_eq!(panicking["comm"], "sh");
        assert_eq!(panicking["current"], true);
        assert_eq!(panicking["cpu"].as_u64(), Some(cpu));
        for comm in [
            "swapper/0",
            "swapper/1",
            "kthreadd",
            "ksoftirqd/0",
            "ksoftirqd/1",
        ] {
            assert!(
                tasks.iter().any(|t| t["comm"] == comm),
                "{variant}: no {comm}"
            );
        }
        // bt with no argument: the task that panicked, down the sysrq path.
        let bt = crash_json(dump, &["bt"]);
        let trace = &bt["backtraces"][0];
        assert_eq!(trace["pid"], pid);
        let names: Vec<&str> = trace["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .filter_map(|f| f["symbol"].as_str())
            .collect();
        let path = [
            "panic",
            "sysrq_handle_crash",
            "__handle_sysrq",
            "write_sysrq_trigger",
            "proc_reg_write",
            "vfs_write",
            "ksys_write",
            "do_syscall_64",
            "entry_SYSCALL_64",
        ];
        let mut at = 0;
        for step in path {
            let found = names[at..]
                .iter()
                .position(|n| n.starts_with(step))
                .unwrap_or_else(|| panic!("{variant}: no {step} after #{at} in {names:?}"));
            at += found + 1;
        }
        assert!(trace["user_rip"].is_u64(), "{variant}: {trace}");
        let modules = crash_json(dump, &["mod"]);
        assert_eq!(modules["modules"][0]["name"], "qemu_fw_cfg", "{modules}");
        assert_eq!(modules["modules"][0]["size"], 20480, "{modules}");
    }
}

#[test]
fn task_prints_the_task_struct_as_crash_does() {
    let Some(dumps) = dumps("kscope crash task") else {
        return;
    };
    for (variant, dump) in dumps
        .iter()
        .filter(|(_, d)| d.ends_with("vmcore-zlib.kdump"))
    {
        let init_task = crash_json(dump, &["sym", "init_task"])["address"]
            .as_u64()
            .expect("init_task");
        let task = crash_json(dump, &["task", &format!("{init_task:x}")]);
        assert_eq!(task["pid"], 0);
        // crash's `struct task_struct` of init_task on the same dump, made
        // by scripts/make-vmcore --oracles: all 1019 lines.
        let crash = variant.oracle("crash-struct-task_struct-init_task.txt");
        assert_eq!(task["text"].as_str(), Some(crash.as_str()), "{variant}");
        // Without an argument: the task that panicked.
        let text = stdout(&kscope_ok(&[
            "crash",
            dump.to_str().expect("utf-8"),
            "task",
        ]));
        let pid = variant.var("PANIC_PID");
        assert!(
            text.starts_with(&format!("PID: {pid} ")),
            "{}",
            &text[..200]
        );
        assert!(text.contains("\n  comm = \"sh\\000"), "{variant}");
    }
}

#[test]
fn files_lists_the_panicking_tasks_files_as_crash_does() {
    let Some(dumps) = dumps("kscope crash files") else {
        return;
    };
    for (variant, dump) in dumps
        .iter()
        .filter(|(_, d)| d.ends_with("vmcore-zlib.kdump"))
    {
        let ours = stdout(&kscope_ok(&[
            "crash",
            dump.to_str().expect("utf-8"),
            "files",
        ]));
        // crash's `files PID` on the same dump (scripts/make-vmcore
        // --oracles): from the ROOT line on, the same text.
        let crash = variant.oracle("crash-files-panicking.txt");
        let table = |text: &str| -> Vec<String> {
            text.lines()
                .skip_while(|l| !l.starts_with("ROOT:"))
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        assert_eq!(table(&ours), table(&crash), "{variant}");
        assert!(ours.contains(" REG  /proc/sysrq-trigger\n"), "{ours}");
    }
}

#[test]
fn kmem_i_sums_memory_as_crash_does() {
    let Some(dumps) = dumps("kscope crash kmem -i") else {
        return;
    };
    for (variant, dump) in dumps
        .iter()
        .filter(|(_, d)| d.ends_with("vmcore-zlib.kdump"))
    {
        let ours = stdout(&kscope_ok(&[
            "crash",
            dump.to_str().expect("utf-8"),
            "kmem",
            "-i",
        ]));
        let crash = variant.oracle("crash-kmem-i.txt");
        // SHARED and SLAB are counted differently (KNOWN-DIFFERENCES):
        // every other line is crash's.
        let rows = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| !l.contains(" SHARED ") && !l.contains(" SLAB "))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(rows(&ours), rows(&crash), "{variant}");
        assert_eq!(rows(&ours).len(), 13, "{ours}");
    }
}

/// The System.map and vmlinux of the -dbg package of the kernel a
/// variant's dump is of, by the release its `variant.env` names
/// (`scripts/make-vmcore --oracles` unpacks it).
fn dbg_files(variant: &VmcoreVariant) -> (String, String) {
    let release = variant.var("KERNEL_RELEASE");
    let boot = vmcores().join("dbg/usr/lib/debug/boot");
    let map = boot.join(format!("System.map-{release}"));
    let vmlinux = boot.join(format!("vmlinux-{release}"));
    assert!(
        map.exists() && vmlinux.exists(),
        "{variant}: {} and {} (scripts/make-vmcore --oracles)",
        map.display(),
        vmlinux.display()
    );
    let utf8 = |p: PathBuf| p.to_str().expect("utf-8").to_string();
    (utf8(map), utf8(vmlinux))
}

#[test]
fn a_system_map_or_vmlinux_is_checked_against_the_dump() {
    let Some(dumps) = dumps("kscope crash -s and --vmlinux") else {
        return;
    };
    for (variant, dump) in dumps.iter().step_by(FORMS.len()) {
        let (map, vmlinux) = dbg_files(variant);
        let path = dump.to_str().expect("utf-8");
        let kallsyms = crash_json(dump, &["sym", "sysrq_handle_crash"]);
        for given in [["-s", map.as_str()], ["--vmlinux", vmlinux.as_str()]] {
            let output = kscope_ok(&[
                "crash",
                given[0],
                given[1],
                path,
                "--json",
                "sym",
                "sysrq_handle_crash",
            ]);
            let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
            assert_eq!(json["address"], kallsyms["address"], "{given:?} {path}");
        }
    }
    let (map, _) = dbg_files(&dumps[0].0);
    let path = dumps[0].1.to_str().expect("utf-8");
    // Another ELF file: its build-id is not the dump's kernel's.
    let output = kscope(&["crash", "--vmlinux", "/bin/true", path, "sym", "panic"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("another build"),
        "{}",
        stderr(&output)
    );
    // A System.map of another layout: VMCOREINFO's addresses disagree.
    let dir = tempfile::tempdir().expect("temp dir");
    let shifted = dir.path().join("System.map");
    let text = std::fs::read_to_string(&map).expect("System.map");
    std::fs::write(&shifted, text.replace("ffffffff81", "ffffffff82")).expect("write");
    let output = kscope(&[
        "crash",
        "-s",
        shifted.to_str().expect("utf-8"),
        path,
        "sym",
        "panic",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the symbols do not match the dump"),
        "{}",
        stderr(&output)
    );
}

/// `kscope crash DUMP --json vm` as drgn-vm.txt has it: a line
/// `start end flags file` per VMA (hex, as scripts/make-vmcore's drgn
/// script prints them).
fn vm_lines(dump: &Path) -> Vec<String> {
    let vm = crash_json(dump, &["vm"]);
    vm["vmas"]
        .as_array()
        .expect("vmas")
        .iter()
        .map(|v| {
            format!(
                "{:x} {:x} {:x} {}",
                v["start"].as_u64().unwrap_or(0),
                v["end"].as_u64().unwrap_or(0),
                v["flags"].as_u64().unwrap_or(0),
                v["file"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn vm_lists_the_panicking_tasks_vmas_as_drgn_does() {
    let Some(dumps) = dumps("kscope crash vm") else {
        return;
    };
    for (variant, dump) in dumps.iter().filter(|(_, d)| d.ends_with("vmcore.elf")) {
        let ours = vm_lines(dump);
        // drgn's for_each_vma on the same dump (scripts/make-vmcore
        // --oracles; crash 8.0.2's `vm` cannot read 6.1's maple tree).
        let drgn = variant.oracle("drgn-vm.txt");
        let drgn: Vec<String> = drgn.lines().map(str::to_string).collect();
        assert_eq!(ours, drgn, "{variant}");
        assert!(
            ours.iter().any(|l| l.ends_with(" /bin/busybox")),
            "{ours:?}"
        );
    }
}

#[test]
fn vm_reads_the_dump_whose_leaf_keeps_its_metadata_in_its_last_slot() {
    // Every regression dump with drgn's `vm` beside it: the first was one
    // where `vm` read the metadata in the last slot of a maple leaf (end
    // 13) as a VMA at 0xd: "cannot read vma->vm_file: virtual address 0x7d
    // is not mapped".
    let dumps = kscope_testkit::regressions_with(
        "kscope crash vm on the regression dumps",
        &["vmcore.elf.zst", "drgn-vm.txt"],
    );
    for dir in dumps {
        let temp = tempfile::tempdir().expect("temp dir");
        let dump = temp.path().join("vmcore.elf");
        let compressed = std::fs::File::open(dir.join("vmcore.elf.zst")).expect("vmcore.elf.zst");
        let mut out = std::fs::File::create(&dump).expect("create vmcore.elf");
        zstd::stream::copy_decode(compressed, &mut out).expect("decompress vmcore.elf.zst");
        let drgn = std::fs::read_to_string(dir.join("drgn-vm.txt")).expect("drgn-vm.txt");
        let drgn: Vec<String> = drgn.lines().map(str::to_string).collect();
        assert!(!drgn.is_empty(), "{}: empty drgn-vm.txt", dir.display());
        assert_eq!(vm_lines(&dump), drgn, "{}", dir.display());
    }
}

#[test]
fn the_shell_reads_commands_from_a_pipe() {
    let Some(dumps) = dumps("kscope crash shell") else {
        return;
    };
    let text = shell(
        &dumps[0].1,
        "sym panic\n\nnot-a-command\nhelp\nquit\nsym panic\n",
    );
    // One answer before quit, none after; an unknown command says so and
    // the shell goes on.
    assert_eq!(text.matches(" (T) panic").count(), 1, "{text}");
    assert!(text.contains("not-a-command: no command"), "{text}");
    assert!(text.contains("Commands:"), "{text}");
}

#[test]
fn bad_input_is_refused_in_one_sentence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x5a; 4096]).expect("write");
    let output = kscope(&["crash", garbage.to_str().expect("utf-8"), "sys"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not a kernel crash dump: it starts with the text \"ZZZZ"),
        "{}",
        stderr(&output)
    );
    let output = kscope(&["crash", "/nonexistent/vmcore", "sys"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/nonexistent/vmcore"),
        "{}",
        stderr(&output)
    );
    let Some(dumps) = dumps("kscope crash errors") else {
        return;
    };
    let dump = dumps[0].1.to_str().expect("utf-8 path");
    let output = kscope(&["crash", dump, "frobnicate"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no command \"frobnicate\""),
        "{}",
        stderr(&output)
    );
    let output = kscope(&["crash", dump, "sym", "no_such_symbol_here"]);
    assert!(!output.status.success());
    let output = kscope(&["crash", dump, "--json"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--json needs a command"),
        "{}",
        stderr(&output)
    );
    // A dump cut short: its header still opens or is refused, but nothing
    // panics.
    let cut = dir.path().join("cut");
    let bytes = std::fs::read(&dumps[0].1).expect("read the dump");
    std::fs::write(&cut, &bytes[..bytes.len().min(64 << 10)]).expect("write");
    let output = kscope(&["crash", cut.to_str().expect("utf-8"), "sys"]);
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn shell_commands_have_usage_and_help() {
    let Some(dumps) = dumps("kscope crash usage and --help") else {
        return;
    };
    let dump = &dumps[0].1;
    let text = shell(dump, "bt --help\nsym\nbt -a 1\nsym panic\n");
    assert!(text.contains("Usage: bt [OPTIONS] [PID|TASK]"), "{text}");
    assert!(
        text.contains("sym: the following required arguments"),
        "{text}"
    );
    assert!(text.contains("Usage: sym <ADDR|NAME>"), "{text}");
    assert!(
        text.contains("bt: the argument '-a' cannot be used with"),
        "{text}"
    );
    // The shell went on after each error.
    assert_eq!(text.matches(" (T) panic").count(), 1, "{text}");
    let path = dump.to_str().expect("utf-8");
    let help = stdout(&kscope_ok(&["crash", path, "rd", "--help"]));
    assert!(
        help.contains("Usage: rd [OPTIONS] <ADDR|NAME> [COUNT]"),
        "{help}"
    );
    let output = kscope(&["crash", path, "kmem"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("Usage: kmem -i"),
        "{}",
        stderr(&output)
    );
}
