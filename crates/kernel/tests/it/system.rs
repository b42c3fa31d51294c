//! `sys` of every dump against crash's `sys` (oracle/crash-sys.txt) and
//! what scripts/make-vmcore recorded of the crash (variant.env).

use std::collections::HashMap;

use kscope_btf::Btf;
use kscope_kernel::{read_btf, read_kallsyms, read_log, read_system};
use kscope_vmcore::KernelMemory;

use crate::dumps::{Dumps, variants};

#[test]
fn sys_matches_crash() {
    for variant in variants("sys of real dumps") {
        let crash: HashMap<String, String> = variant
            .file("oracle/crash-sys.txt")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let dump = variant.open("vmcore-zlib.kdump");
        let memory = KernelMemory::new(&dump).unwrap();
        let info = dump.vmcoreinfo().unwrap();
        let symbols = read_kallsyms(&memory, info).unwrap();
        let blob = read_btf(&memory, &symbols).unwrap();
        let btf = Btf::parse(&blob).unwrap();
        let log = read_log(&memory, info, Some(&btf)).unwrap();
        let sys = read_system(&memory, info, &symbols, Some(&btf), Some(&log)).unwrap();
        let name = &variant.name;

        let present = sys.cpus_present.unwrap();
        let online = sys.cpus_online.unwrap();
        assert_eq!(
            format!("{present} [OFFLINE: {}]", present - online),
            crash["CPUS"],
            "{name}"
        );
        assert_eq!(sys.cpus_possible, Some(present), "{name}");
        assert_eq!(sys.date_text().unwrap(), crash["DATE"], "{name}");
        assert_eq!(sys.hz, Some(250), "{name}: Debian's CONFIG_HZ");
        assert_eq!(sys.uptime_text().unwrap(), crash["UPTIME"], "{name}");
        assert_eq!(
            sys.load_average_text().unwrap(),
            crash["LOAD AVERAGE"],
            "{name}"
        );
        assert_eq!(sys.utsname.nodename, crash["NODENAME"], "{name}");
        assert_eq!(sys.utsname.release, crash["RELEASE"], "{name}");
        assert_eq!(sys.utsname.release, variant.var("KERNEL_RELEASE"), "{name}");
        assert_eq!(sys.utsname.version, crash["VERSION"], "{name}");
        assert_eq!(sys.utsname.sysname, "Linux", "{name}");
        assert_eq!(
            format!(
                "{}  ({} Mhz)",
                sys.utsname.machine,
                sys.cpu_khz.unwrap() / 1000
            ),
            crash["MACHINE"],
            "{name}"
        );
        assert_eq!(sys.memory_text().unwrap(), crash["MEMORY"], "{name}");
        assert_eq!(
            format!("\"{}\"", sys.panic_message.as_deref().unwrap()),
            crash["PANIC"],
            "{name}"
        );
        assert_eq!(
            sys.panic_cpu.map(|c| c.to_string()).as_deref(),
            Some(variant.var("PANIC_CPU")),
            "{name}"
        );
        // The guest had 128 MiB; the allocator manages less of it.
        let total = sys.totalram_pages.unwrap() * sys.page_size;
        assert!(
            total > 64 << 20 && total < sys.present_pages.unwrap() * 4096,
            "{name}"
        );
        // Uptime from jiffies and from the log agree to the second.
        let from_log = sys.last_log_nsec.unwrap() / 1_000_000_000;
        assert!(sys.uptime_secs().unwrap().abs_diff(from_log) <= 1, "{name}");
        assert_eq!(
            sys.crash_time, None,
            "{name}: QEMU dumps carry no CRASHTIME"
        );
        eprintln!(
            "{name}: CPUS {present} [OFFLINE: {}], DATE {}, UPTIME {}, MEMORY {} ({} pages present, {} totalram), MACHINE {} ({} kHz), PANIC on cpu {:?}: {:?}",
            present - online,
            sys.date_text().unwrap(),
            sys.uptime_text().unwrap(),
            sys.memory_text().unwrap(),
            sys.present_pages.unwrap(),
            sys.totalram_pages.unwrap(),
            sys.utsname.machine,
            sys.cpu_khz.unwrap(),
            sys.panic_cpu,
            sys.panic_message
        );
    }
}
