//! The printk log of every form of every dump, against makedumpfile's
//! `--dump-dmesg` of the same file (where it could read it), crash's
//! `log`, and the guest's serial console.

use kscope_btf::Btf;
use kscope_kernel::{read_btf, read_kallsyms, read_log};
use kscope_vmcore::KernelMemory;

use crate::dumps::{Dumps, variants};

/// The dmesg text as a console prints it: each line of a record with the
/// record's timestamp.
fn console_lines(dmesg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stamp = "";
    for line in dmesg.lines() {
        if line.starts_with('[') {
            stamp = &line[..line.find("] ").unwrap() + 2];
            out.push(line.to_string());
        } else {
            out.push(format!("{stamp}{}", &line[stamp.len()..]));
        }
    }
    out
}

#[test]
fn the_log_matches_makedumpfile_crash_and_the_console() {
    for variant in variants("the printk log of real dumps") {
        let crash = variant.file("oracle/crash-log.txt").unwrap();
        let console = variant.file("console.log").unwrap().replace('\r', "");
        for path in variant.forms() {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let dump = variant.open(&file);
            let memory = KernelMemory::new(&dump).unwrap();
            let info = dump.vmcoreinfo().unwrap();
            let log = read_log(&memory, info, None).unwrap();
            let dmesg = log.dmesg();

            // makedumpfile, where it could read this file.
            let form = file
                .trim_start_matches("vmcore")
                .trim_start_matches(['.', '-']);
            let oracle = format!("dmesg.makedumpfile.{form}.txt");
            let makedumpfile = variant.file(&oracle);
            if let Some(expected) = &makedumpfile {
                assert_eq!(&dmesg, expected, "{}/{file} vs {oracle}", variant.name);
            }
            // crash's `log` prints the same lines.
            assert_eq!(dmesg, crash, "{}/{file} vs crash-log.txt", variant.name);

            // Every kernel line of the console, in order, as a console
            // prints a record (its timestamp on each line).
            let ours = console_lines(&dmesg);
            let mut at = 0;
            let mut kernel_lines = 0;
            for line in console.lines().filter(|l| l.starts_with('[')) {
                kernel_lines += 1;
                let found = ours[at..].iter().position(|l| l == line);
                let Some(found) = found else {
                    panic!(
                        "{}/{file}: console line not in the log, in order: {line}",
                        variant.name
                    );
                };
                at += found + 1;
            }
            assert!(kernel_lines > 300, "{}: {kernel_lines}", variant.name);
            assert!(
                log.records
                    .iter()
                    .any(|r| r.text.starts_with(b"Kernel panic - not syncing"))
            );
            eprintln!(
                "{}/{file}: {} records, {} lines, {} skipped; console {kernel_lines} lines; makedumpfile {}",
                variant.name,
                log.records.len(),
                dmesg.lines().count(),
                log.skipped,
                makedumpfile.map_or("failed".to_string(), |t| format!(
                    "{} lines, equal",
                    t.lines().count()
                ))
            );
        }
        // With BTF, the levels: the panic is an emergency (0).
        let dump = variant.open("vmcore.elf");
        let memory = KernelMemory::new(&dump).unwrap();
        let symbols = read_kallsyms(&memory, dump.vmcoreinfo().unwrap()).unwrap();
        let blob = read_btf(&memory, &symbols).unwrap();
        let btf = Btf::parse(&blob).unwrap();
        let log = read_log(&memory, dump.vmcoreinfo().unwrap(), Some(&btf)).unwrap();
        let panic = log
            .records
            .iter()
            .find(|r| r.text.starts_with(b"Kernel panic - not syncing"))
            .unwrap();
        assert_eq!((panic.level, panic.facility), (Some(0), Some(0)));
        assert!(log.records.iter().all(|r| r.level.is_some_and(|l| l <= 7)));
        assert!(log.records.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
