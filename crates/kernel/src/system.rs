//! What crash's `sys` command shows about the crashed system, read from
//! the dump: the kernel's `utsname` (release, version, machine, node
//! name), the panic message and the CPU that panicked, how many CPUs
//! there were and how many were still online, how much memory, how long
//! the system had been up, the load average, the processor's speed and
//! the wall-clock time.
//!
//! Each value comes from the kernel variable that holds it: `init_uts_ns`,
//! `panic_cpu`, `__cpu_present_mask` and `__cpu_online_mask`,
//! `node_data[]`'s `node_present_pages` (or `contig_page_data`'s),
//! `_totalram_pages`, `jiffies_64` with HZ taken from `tick_nsec`,
//! `avenrun`, `cpu_khz`, and the timekeeper's `xtime_sec` in `tk_core`.
//! A value the dump cannot give is `None`; only the `utsname` is
//! required. The `*_text` methods format values as crash 8 does.

use kscope_btf::{Btf, Kind, TypeId};
use kscope_vmcore::VmcoreInfo;

use crate::Error;
use crate::log::Log;
use crate::memory::KernelRead;
use crate::symbols::SymbolTable;

/// The length of each `struct new_utsname` field (`__NEW_UTS_LEN` + 1).
const UTS_FIELD: u64 = 65;

/// The most CPUs a cpumask is read for.
const MAX_CPUS: u64 = 1 << 16;

/// The most NUMA nodes summed.
const MAX_NODES: u64 = 1 << 12;

/// The kernel's `utsname`, as `uname` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utsname {
    /// `uname -s`: `Linux`.
    pub sysname: String,
    /// `uname -n`: the host name.
    pub nodename: String,
    /// `uname -r`: the release.
    pub release: String,
    /// `uname -v`: the build's version string.
    pub version: String,
    /// `uname -m`: the machine.
    pub machine: String,
    /// The NIS domain name.
    pub domainname: String,
}

/// The crashed system, as crash's `sys` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    /// `init_uts_ns.name`.
    pub utsname: Utsname,
    /// The panic message: the first log line holding one of the messages
    /// crash looks for, in crash's order (sysrq crash, `Kernel panic`,
    /// `BUG`, page faults, `general protection fault`, `Oops`...).
    pub panic_message: Option<String>,
    /// The CPU that called `panic()` (`panic_cpu`); None when none did.
    pub panic_cpu: Option<u32>,
    /// CPUs present (`__cpu_present_mask`): crash's `CPUS`.
    pub cpus_present: Option<u32>,
    /// CPUs still online (`__cpu_online_mask`): a panic takes the others
    /// offline.
    pub cpus_online: Option<u32>,
    /// CPUs possible (`__cpu_possible_mask`).
    pub cpus_possible: Option<u32>,
    /// Bytes in a page.
    pub page_size: u64,
    /// Pages present in every node (`node_present_pages`): crash's
    /// `MEMORY`.
    pub present_pages: Option<u64>,
    /// Pages the page allocator manages (`_totalram_pages`): `MemTotal`.
    pub totalram_pages: Option<u64>,
    /// `jiffies_64`.
    pub jiffies: Option<u64>,
    /// The timer frequency, from `tick_nsec` (nanoseconds per tick).
    pub hz: Option<u32>,
    /// The timestamp of the log's last record, in nanoseconds.
    pub last_log_nsec: Option<u64>,
    /// `avenrun`: the 1-, 5- and 15-minute load averages, fixed point
    /// with 11 fractional bits.
    pub avenrun: Option<[u64; 3]>,
    /// `cpu_khz`: the processor's measured speed.
    pub cpu_khz: Option<u64>,
    /// The wall-clock time at the crash in seconds since the epoch: the
    /// timekeeper's `xtime_sec`, what crash shows as `DATE`.
    pub date: Option<i64>,
    /// VMCOREINFO's `CRASHTIME` (written by a kdump kernel's crash path;
    /// QEMU's dumps have none).
    pub crash_time: Option<i64>,
}

/// `jiffies` starts 5 minutes before wrapping its low 32 bits.
fn initial_jiffies(hz: u32) -> u64 {
    u64::from(0u32.wrapping_sub(300u32.wrapping_mul(hz)))
}

impl SystemInfo {
    /// Seconds since boot: from `jiffies_64` and HZ, else the last log
    /// record's timestamp.
    pub fn uptime_secs(&self) -> Option<u64> {
        match (self.jiffies, self.hz) {
            (Some(jiffies), Some(hz)) if hz > 0 => {
                Some(jiffies.wrapping_sub(initial_jiffies(hz)) / u64::from(hz))
            }
            _ => self.last_log_nsec.map(|ns| ns / 1_000_000_000),
        }
    }

    /// The uptime as crash writes it: `00:00:02`, `3 days, 01:02:03`.
    pub fn uptime_text(&self) -> Option<String> {
        let secs = self.uptime_secs()?;
        let days = secs / 86_400;
        let clock = format!(
            "{:02}:{:02}:{:02}",
            secs % 86_400 / 3600,
            secs % 3600 / 60,
            secs % 60
        );
        Some(if days > 0 {
            format!("{days} days, {clock}")
        } else {
            clock
        })
    }

    /// The present pages in bytes; None when unknown or beyond 64 bits
    /// (a damaged dump).
    pub fn memory_bytes(&self) -> Option<u64> {
        self.present_pages?.checked_mul(self.page_size)
    }

    /// The memory as crash writes it: present pages, rounded up to the
    /// next GiB when that is at most 64 MiB away, in GB, MB or KB with
    /// one decimal (`127.5 MB`, `4 GB`).
    pub fn memory_text(&self) -> Option<String> {
        const GIB: u64 = 1 << 30;
        let mut total = self.memory_bytes()?;
        let next_gib = total.div_ceil(GIB).checked_mul(GIB)?;
        if next_gib - total <= 64 << 20 {
            total = next_gib;
        }
        if total == 0 {
            return Some("0".into());
        }
        let (value, unit) = if total >= GIB {
            (total as f64 / GIB as f64, "GB")
        } else if total >= 1 << 20 {
            (total as f64 / f64::from(1u32 << 20), "MB")
        } else {
            return Some(format!("{} KB", total / 1024));
        };
        let text = format!("{value:.1}");
        let text = text.strip_suffix(".0").unwrap_or(&text).to_string();
        Some(format!("{text} {unit}"))
    }

    /// The load averages as crash writes them: `0.00, 0.00, 0.00`.
    pub fn load_average_text(&self) -> Option<String> {
        const FIXED_1: u64 = 1 << 11;
        let parts: Vec<String> = self
            .avenrun?
            .iter()
            .map(|&a| {
                let a = a.wrapping_add(FIXED_1 / 200);
                format!("{}.{:02}", a >> 11, ((a & (FIXED_1 - 1)) * 100) >> 11)
            })
            .collect();
        Some(parts.join(", "))
    }

    /// [`SystemInfo::date`] as crash writes it, in UTC:
    /// `Wed Nov 25 16:18:28 UTC 2026`.
    pub fn date_text(&self) -> Option<String> {
        self.date.map(utc_text)
    }
}

/// Seconds since the epoch as `Wed Nov 25 16:18:28 UTC 2026` (C's
/// `%a %b %e %T %Z %Y` in UTC).
pub fn utc_text(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let time = secs.rem_euclid(86_400);
    // The civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The messages crash's `sys` takes as the panic message, most severe
/// first (older kernels wrote `SysRq : Trigger a crash`; 6.1 writes
/// `sysrq: Trigger a crash`, which is not among them).
const PANIC_MESSAGES: [&str; 17] = [
    "SysRq : Crash",
    "SysRq : Trigger a crash",
    "SysRq : Netdump",
    "Kernel panic: ",
    "Kernel panic - ",
    "Kernel BUG at",
    "kernel BUG at",
    "Unable to handle kernel paging request",
    "Unable to handle kernel NULL pointer dereference",
    "BUG: unable to handle kernel ",
    "general protection fault: ",
    "double fault: ",
    "divide error: ",
    "stack segment: ",
    "[Hardware Error]: ",
    "Bad mode in ",
    "Oops: ",
];

/// The panic message in the log, as crash finds it: the first line that
/// holds the most severe of the messages crash looks for (see
/// [`SystemInfo::panic_message`]).
pub fn panic_message(log: &Log) -> Option<String> {
    let lines: Vec<String> = log
        .records
        .iter()
        .flat_map(|r| {
            r.text_lossy()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    PANIC_MESSAGES.iter().find_map(|message| {
        lines
            .iter()
            .find(|line| line.contains(message))
            .map(|line| line.trim_end().to_string())
    })
}

/// Reads what `sys` shows. `symbols` locates the variables (kallsyms or a
/// System.map); `btf` gives the offsets VMCOREINFO lacks (without it the
/// memory and date are None, and `utsname` uses the fixed layout of
/// `struct new_utsname`); `log`, when read, gives the panic message and
/// the last timestamp.
///
/// # Errors
///
/// [`Error::MissingSymbol`] or [`Error::Memory`] when `init_uts_ns`
/// cannot be read; every other value is None when it cannot.
pub fn read_system(
    memory: &(impl KernelRead + ?Sized),
    info: &VmcoreInfo,
    symbols: &SymbolTable,
    btf: Option<&Btf<'_>>,
    log: Option<&Log>,
) -> Result<SystemInfo, Error> {
    let reader = Reader {
        memory,
        symbols,
        btf,
    };
    let utsname = reader.utsname(info)?;
    let panic_cpu = reader
        .u32("panic_cpu")
        .map(|v| v as i32)
        .and_then(|v| u32::try_from(v).ok());
    let page_size = info.page_size().unwrap_or(4096);
    let tick_nsec = reader.u64("tick_nsec").filter(|&t| t > 0);
    Ok(SystemInfo {
        utsname,
        panic_message: log.and_then(panic_message),
        panic_cpu,
        cpus_present: reader.cpus("__cpu_present_mask"),
        cpus_online: reader.cpus("__cpu_online_mask"),
        cpus_possible: reader.cpus("__cpu_possible_mask"),
        page_size,
        present_pages: reader.present_pages(info),
        totalram_pages: reader.u64("_totalram_pages"),
        jiffies: reader.u64("jiffies_64"),
        hz: tick_nsec.and_then(|t| u32::try_from((1_000_000_000 + t / 2) / t).ok()),
        last_log_nsec: log.and_then(|l| l.records.last()).map(|r| r.ts_nsec),
        avenrun: reader.symbol("avenrun").and_then(|a| {
            Some([
                memory.read_u64(a).ok()?,
                memory.read_u64(a.wrapping_add(8)).ok()?,
                memory.read_u64(a.wrapping_add(16)).ok()?,
            ])
        }),
        cpu_khz: reader.u32("cpu_khz").map(u64::from),
        date: reader.xtime_sec(),
        crash_time: info.crash_time(),
    })
}

struct Reader<'r, 'a, M: KernelRead + ?Sized> {
    memory: &'r M,
    symbols: &'r SymbolTable,
    btf: Option<&'r Btf<'a>>,
}

impl<M: KernelRead + ?Sized> Reader<'_, '_, M> {
    fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.address(name)
    }

    fn u32(&self, name: &str) -> Option<u32> {
        self.memory.read_u32(self.symbol(name)?).ok()
    }

    fn u64(&self, name: &str) -> Option<u64> {
        self.memory.read_u64(self.symbol(name)?).ok()
    }

    fn offset(&self, type_name: &str, path: &str) -> Option<u64> {
        let btf = self.btf?;
        let member = btf.member_path(btf.find(type_name)?, path)?;
        (member.bit_offset % 8 == 0).then_some(member.bit_offset / 8)
    }

    fn utsname(&self, info: &VmcoreInfo) -> Result<Utsname, Error> {
        let ns = self
            .symbol("init_uts_ns")
            .or_else(|| info.symbol("init_uts_ns"))
            .ok_or_else(|| Error::MissingSymbol("init_uts_ns".into()))?;
        let name = info
            .offset("uts_namespace", "name")
            .or_else(|| self.offset("struct uts_namespace", "name"))
            .unwrap_or(0);
        let base = ns.wrapping_add(name);
        let bytes = self
            .memory
            .read_vec(base, (UTS_FIELD * 6) as usize)
            .map_err(|source| Error::Memory {
                what: "init_uts_ns.name".into(),
                source,
            })?;
        let field = |index: u64, member: &str| {
            let at = self
                .offset("struct new_utsname", member)
                .unwrap_or(index * UTS_FIELD) as usize;
            let raw = bytes.get(at..).unwrap_or(&[]);
            let raw = &raw[..raw.len().min(UTS_FIELD as usize)];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        };
        Ok(Utsname {
            sysname: field(0, "sysname"),
            nodename: field(1, "nodename"),
            release: field(2, "release"),
            version: field(3, "version"),
            machine: field(4, "machine"),
            domainname: field(5, "domainname"),
        })
    }

    /// The number of CPUs in the cpumask variable `name`: the first
    /// `nr_cpu_ids` bits, or the whole `struct cpumask`.
    fn cpus(&self, name: &str) -> Option<u32> {
        let mask = self.symbol(name)?;
        let bits = self
            .u32("nr_cpu_ids")
            .map(u64::from)
            .or_else(|| self.btf?.type_size("struct cpumask").map(|s| s * 8))?;
        if bits == 0 || bits > MAX_CPUS {
            return None;
        }
        let bytes = self
            .memory
            .read_vec(mask, bits.div_ceil(64) as usize * 8)
            .ok()?;
        let mut count = 0;
        for (i, word) in bytes.chunks_exact(8).enumerate() {
            let mut word = u64::from_le_bytes(word.try_into().ok()?);
            let first = i as u64 * 64;
            if bits - first < 64 {
                word &= (1u64 << (bits - first)) - 1;
            }
            count += word.count_ones();
        }
        Some(count)
    }

    /// The pages present in every online node, or in the one node of a
    /// kernel without NUMA.
    fn present_pages(&self, info: &VmcoreInfo) -> Option<u64> {
        let present = self.offset("struct pglist_data", "node_present_pages")?;
        if let Some(node_data) = self
            .symbol("node_data")
            .or_else(|| info.symbol("node_data"))
        {
            let nodes = info.length("node_data").unwrap_or(1).clamp(1, MAX_NODES);
            let online = self
                .symbol("node_online_map")
                .or_else(|| info.symbol("node_online_map"));
            let mut total = 0u64;
            for node in 0..nodes {
                if let Some(map) = online {
                    let word = self.memory.read_u64(map.wrapping_add(node / 64 * 8)).ok()?;
                    if word >> (node % 64) & 1 == 0 {
                        continue;
                    }
                }
                let pgdat = self
                    .memory
                    .read_u64(node_data.wrapping_add(node * 8))
                    .ok()?;
                if pgdat == 0 {
                    continue;
                }
                total =
                    total.checked_add(self.memory.read_u64(pgdat.wrapping_add(present)).ok()?)?;
            }
            return Some(total);
        }
        let pgdat = self.symbol("contig_page_data")?;
        self.memory.read_u64(pgdat.wrapping_add(present)).ok()
    }

    /// `tk_core.timekeeper.xtime_sec`. `tk_core` is a static struct of no
    /// named type: a `seqcount_raw_spinlock_t`, then the `struct
    /// timekeeper` at its alignment.
    fn xtime_sec(&self) -> Option<i64> {
        let btf = self.btf?;
        let tk_core = self.symbol("tk_core")?;
        let seq = btf.type_size("seqcount_raw_spinlock_t")?;
        let timekeeper = btf.find("struct timekeeper")?;
        let align = alignment(btf, timekeeper, 0).max(1);
        let xtime = self.offset("struct timekeeper", "xtime_sec")?;
        let at = tk_core
            .wrapping_add(seq.div_ceil(align) * align)
            .wrapping_add(xtime);
        self.memory.read_u64(at).ok().map(|v| v as i64)
    }
}

/// A type's natural alignment on x86-64: its largest scalar's size, at
/// most 16 (BTF does not record `__aligned` attributes).
fn alignment(btf: &Btf<'_>, id: TypeId, depth: u32) -> u64 {
    if depth > 32 {
        return 1;
    }
    let id = btf.resolve(id);
    match btf.kind(id) {
        Some(Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float | Kind::Pointer) => {
            btf.size(id).unwrap_or(1).clamp(1, 16)
        }
        Some(Kind::Array) => btf
            .array(id)
            .map_or(1, |a| alignment(btf, a.element, depth + 1)),
        Some(Kind::Struct | Kind::Union) => btf
            .members(id)
            .unwrap_or_default()
            .iter()
            .map(|m| alignment(btf, m.type_id, depth + 1))
            .max()
            .unwrap_or(1),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogFormat, LogRecord};
    use crate::memory::MemoryImage;

    #[test]
    fn dates_print_in_utc_as_ctime_does() {
        assert_eq!(utc_text(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(utc_text(1_795_623_491), "Wed Nov 25 16:18:11 UTC 2026");
        assert_eq!(utc_text(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(utc_text(-1), "Wed Dec 31 23:59:59 UTC 1969");
    }

    fn with(present_pages: Option<u64>) -> SystemInfo {
        SystemInfo {
            page_size: 4096,
            present_pages,
            ..SystemInfo::default()
        }
    }

    #[test]
    fn memory_beyond_64_bits_is_unknown_not_a_panic() {
        // From a mutated dump: a page count that overflows when multiplied.
        assert_eq!(with(Some(u64::MAX / 2)).memory_bytes(), None);
        assert_eq!(with(Some(u64::MAX / 2)).memory_text(), None);
        // Within a GiB of 2^64: no next GiB to round up to.
        assert_eq!(with(Some(u64::MAX / 4096)).memory_text(), None);
        assert_eq!(with(Some(3)).memory_bytes(), Some(12_288));
    }

    #[test]
    fn memory_and_uptime_print_as_crash_prints_them() {
        assert_eq!(
            with(Some(32_640)).memory_text().as_deref(),
            Some("127.5 MB")
        );
        // Within 64 MiB of a GiB: rounded up.
        assert_eq!(with(Some(1_040_000)).memory_text().as_deref(), Some("4 GB"));
        assert_eq!(with(Some(2)).memory_text().as_deref(), Some("8 KB"));
        assert_eq!(with(Some(0)).memory_text().as_deref(), Some("0"));
        assert_eq!(with(None).memory_text(), None);
        let up = SystemInfo {
            jiffies: Some(4_294_892_869),
            hz: Some(250),
            ..SystemInfo::default()
        };
        assert_eq!(up.uptime_secs(), Some(2));
        assert_eq!(up.uptime_text().as_deref(), Some("00:00:02"));
        let long = SystemInfo {
            last_log_nsec: Some((3 * 86_400 + 3723) * 1_000_000_000),
            ..SystemInfo::default()
        };
        assert_eq!(long.uptime_text().as_deref(), Some("3 days, 01:02:03"));
        let load = SystemInfo {
            avenrun: Some([0, 2048 + 1024, 20_480]),
            ..SystemInfo::default()
        };
        assert_eq!(
            load.load_average_text().as_deref(),
            Some("0.00, 1.50, 10.00")
        );
    }

    fn log(lines: &[&str]) -> Log {
        Log {
            format: LogFormat::Ringbuffer,
            records: lines
                .iter()
                .map(|l| LogRecord {
                    seq: 0,
                    ts_nsec: 0,
                    level: None,
                    facility: None,
                    caller_id: None,
                    text: l.as_bytes().to_vec(),
                    subsystem: Vec::new(),
                    device: Vec::new(),
                })
                .collect(),
            skipped: 0,
        }
    }

    #[test]
    fn the_most_severe_message_is_the_panic_message() {
        let text = log(&[
            "Oops: 0002 [#1] SMP",
            "sysrq: Trigger a crash",
            "BUG: unable to handle kernel NULL pointer dereference\nmore",
            "Kernel panic - not syncing: Fatal exception",
        ]);
        assert_eq!(
            panic_message(&text).as_deref(),
            Some("Kernel panic - not syncing: Fatal exception")
        );
        assert_eq!(panic_message(&log(&["all well"])), None);
    }

    #[test]
    fn a_system_reads_from_bare_memory_without_btf() {
        let mut memory = MemoryImage::default();
        let mut uts = vec![0u8; 6 * 65];
        for (i, s) in ["Linux", "box", "6.1.0", "#1 SMP", "x86_64", "(none)"]
            .iter()
            .enumerate()
        {
            uts[i * 65..i * 65 + s.len()].copy_from_slice(s.as_bytes());
        }
        memory.insert(0x1000, uts);
        memory.insert(0x2000, (-1i32).to_le_bytes().to_vec());
        memory.insert(0x3000, 0b1011u64.to_le_bytes().to_vec());
        memory.insert(0x4000, 3u32.to_le_bytes().to_vec());
        memory.insert(0x5000, 4_000_000u64.to_le_bytes().to_vec());
        let symbols = SymbolTable::from_system_map(
            "1000 D init_uts_ns\n2000 D panic_cpu\n3000 D __cpu_present_mask\n\
             4000 D nr_cpu_ids\n5000 D tick_nsec\n",
            0,
        )
        .expect("map");
        let info = VmcoreInfo::parse("PAGESIZE=4096\nCRASHTIME=1795969091\n");
        let sys = read_system(
            &memory,
            &info,
            &symbols,
            None,
            Some(&log(&["Kernel panic - x"])),
        )
        .expect("reads");
        assert_eq!(sys.utsname.nodename, "box");
        assert_eq!(sys.utsname.machine, "x86_64");
        assert_eq!(sys.panic_cpu, None);
        // Bits 0 and 1 of the first three (bit 3 is past nr_cpu_ids).
        assert_eq!(sys.cpus_present, Some(2));
        assert_eq!(sys.cpus_online, None);
        assert_eq!(sys.hz, Some(250));
        assert_eq!(sys.crash_time, Some(1_795_969_091));
        assert_eq!(sys.panic_message.as_deref(), Some("Kernel panic - x"));
        assert_eq!((sys.present_pages, sys.date), (None, None));
        let err = read_system(&memory, &info, &SymbolTable::default(), None, None)
            .expect_err("no init_uts_ns");
        assert!(err.to_string().contains("init_uts_ns"), "{err}");
    }
}
