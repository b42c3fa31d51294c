//! The event texts that `trace-cmd report` takes from libtraceevent's
//! plugins instead of the kernel's print fmt (sched_switch, sched_wakeup,
//! sched_wakeup_new, the kmem allocation events, hrtimer_start,
//! hrtimer_expire_entry, tlb_flush and sys_enter_futex), written from the plugins' documented output:
//! what kscope must print to match trace-cmd byte for byte. Fields are
//! read in place from the record, by the offsets its format gives.

use std::fmt::Write;

use kscope_traceevent::EventFormat;
use kscope_traceevent::printfmt::Env;

use crate::Comms;

/// The events a plugin prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plugin {
    SchedSwitch,
    SchedWakeup,
    /// kmalloc, kfree and the other kmem allocation events: a prefix.
    Kmem,
    HrtimerExpireEntry,
    HrtimerStart,
    Futex,
    TlbFlush,
}

impl Plugin {
    /// The plugin of the event named `name`, if one prints it.
    fn of(name: &str) -> Option<Plugin> {
        Some(match name {
            "sched_switch" => Plugin::SchedSwitch,
            "sched_wakeup" | "sched_wakeup_new" => Plugin::SchedWakeup,
            "kfree"
            | "kmalloc"
            | "kmalloc_node"
            | "kmem_cache_alloc"
            | "kmem_cache_alloc_node"
            | "kmem_cache_free" => Plugin::Kmem,
            "hrtimer_expire_entry" => Plugin::HrtimerExpireEntry,
            "hrtimer_start" => Plugin::HrtimerStart,
            "sys_enter_futex" => Plugin::Futex,
            "tlb_flush" => Plugin::TlbFlush,
            _ => return None,
        })
    }
}

/// The plugin of each event of a file, found once by name, looked up by
/// id for each record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plugins {
    by_id: Vec<Option<Plugin>>,
}

impl Plugins {
    /// The plugins of `formats`; of two formats with one id, the last
    /// counts (as in `Renderer`).
    pub(crate) fn new(formats: &[EventFormat<'_>]) -> Plugins {
        let mut by_id = Vec::new();
        for format in formats {
            let Ok(id) = u16::try_from(format.id) else {
                continue;
            };
            let id = usize::from(id);
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            by_id[id] = Plugin::of(format.name);
        }
        Plugins { by_id }
    }

    /// The plugin that prints records of `format`.
    pub(crate) fn of(&self, format: &EventFormat<'_>) -> Option<Plugin> {
        self.by_id.get(format.id as usize).copied().flatten()
    }
}

/// What trace-cmd's sched plugin learns from a record it prints: the
/// names of the tasks a sched_switch or sched_wakeup names.
pub(crate) fn learn(
    plugin: Option<Plugin>,
    format: &EventFormat<'_>,
    record: &[u8],
    comms: &mut Comms<'_>,
) {
    let fields = Fields { format, record };
    match plugin {
        Some(Plugin::SchedSwitch) => {
            comms.learn(
                fields.int("prev_pid").unwrap_or(0) as i32,
                fields.text("prev_comm"),
            );
            comms.learn(
                fields.int("next_pid").unwrap_or(0) as i32,
                fields.text("next_comm"),
            );
        }
        Some(Plugin::SchedWakeup) => {
            comms.learn(fields.int("pid").unwrap_or(0) as i32, fields.text("comm"));
        }
        _ => {}
    }
}

/// Renders `record` as trace-cmd's `plugin` for its event would, into
/// `out`. Returns false when no plugin takes the whole event (`out` may
/// then hold a prefix the plugin adds before the print fmt's text).
pub(crate) fn render(
    plugin: Option<Plugin>,
    format: &EventFormat<'_>,
    record: &[u8],
    env: &Env<'_>,
    out: &mut String,
) -> bool {
    let Some(plugin) = plugin else {
        return false;
    };
    let fields = Fields { format, record };
    match plugin {
        Plugin::SchedSwitch => sched_switch(&fields, out),
        Plugin::SchedWakeup => sched_wakeup(&fields, out),
        Plugin::Kmem => {
            // A prefix naming the call site, then the print fmt's text.
            if let Some(site) = fields.int("call_site")
                && let Some(sym) = env.symbols.symbol(site as u64)
            {
                let _ = write!(out, "({}+0x{:x}) ", sym.name, sym.offset);
            }
            false
        }
        Plugin::HrtimerExpireEntry => hrtimer(&fields, env, out, false),
        Plugin::HrtimerStart => hrtimer(&fields, env, out, true),
        Plugin::Futex => futex(&fields, out),
        Plugin::TlbFlush => {
            let reason = fields.int("reason").unwrap_or(0);
            let text = match reason {
                0 => "flush on task switch",
                1 => "remote shootdown",
                2 => "local shootdown",
                3 => "local mm shootdown",
                _ => "",
            };
            let _ = write!(
                out,
                "pages={} reason={text} ({reason})",
                fields.int("pages").unwrap_or(0)
            );
            true
        }
    }
}

/// A record's fields by name.
struct Fields<'a> {
    format: &'a EventFormat<'a>,
    record: &'a [u8],
}

impl Fields<'_> {
    fn has(&self, name: &str) -> bool {
        self.format.field(name).is_some()
    }

    /// An integer field, sign-extended when the format says signed.
    fn int(&self, name: &str) -> Option<i64> {
        let f = self.format.field(name)?;
        let bytes = self
            .record
            .get(f.offset as usize..(f.offset + f.size) as usize)?;
        let mut raw = [0u8; 8];
        if bytes.len() > 8 {
            return None;
        }
        raw[..bytes.len()].copy_from_slice(bytes);
        let value = u64::from_le_bytes(raw);
        let bits = 8 * bytes.len() as u32;
        Some(if f.signed && bits < 64 {
            ((value << (64 - bits)) as i64) >> (64 - bits)
        } else {
            value as i64
        })
    }

    /// A char-array field up to its first NUL.
    fn text(&self, name: &str) -> &str {
        let Some(f) = self.format.field(name) else {
            return "";
        };
        let bytes = self
            .record
            .get(f.offset as usize..(f.offset + f.size) as usize)
            .unwrap_or(&[]);
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).unwrap_or("")
    }
}

/// `prev_comm:prev_pid [prev_prio] STATE ==> next_comm:next_pid [next_prio]`;
/// the state letters are libtraceevent's table over the low 8 bits, `R`
/// when none is set.
fn sched_switch(fields: &Fields<'_>, out: &mut String) -> bool {
    const STATES: &[u8; 8] = b"SDTtZXxW";
    let prev_pid = fields.int("prev_pid").unwrap_or(0);
    let next_pid = fields.int("next_pid").unwrap_or(0);
    let (prev, next) = (fields.text("prev_comm"), fields.text("next_comm"));
    let _ = write!(
        out,
        "{prev}:{prev_pid} [{}] ",
        fields.int("prev_prio").unwrap_or(0)
    );
    let state = fields.int("prev_state").unwrap_or(0) as u64;
    let mut any = false;
    for (bit, letter) in STATES.iter().enumerate() {
        if state & (1 << bit) != 0 {
            if any {
                out.push('|');
            }
            out.push(char::from(*letter));
            any = true;
        }
    }
    if !any {
        out.push('R');
    }
    let _ = write!(
        out,
        " ==> {next}:{next_pid} [{}]",
        fields.int("next_prio").unwrap_or(0)
    );
    true
}

/// `comm:pid [prio] [success=N] CPU:NNN`.
fn sched_wakeup(fields: &Fields<'_>, out: &mut String) -> bool {
    let pid = fields.int("pid").unwrap_or(0);
    let comm = fields.text("comm");
    let _ = write!(out, "{comm}:{pid} [{}]", fields.int("prio").unwrap_or(0));
    if fields.has("success") {
        let _ = write!(out, " success={}", fields.int("success").unwrap_or(0));
    }
    let _ = write!(
        out,
        " CPU:{:03}",
        fields.int("target_cpu").unwrap_or(0) as u64
    );
    true
}

/// How libtraceevent's futex plugin shows one futex command's arguments:
/// its name, then which of val (hex or decimal), utime or val2, uaddr2
/// and val3 it prints.
struct FutexCommand {
    name: &'static str,
    val: Option<Radix>,
    utime_is_val2: Option<bool>,
    uaddr2: bool,
    val3: bool,
}

#[derive(Clone, Copy)]
enum Radix {
    Hex,
    Decimal,
}

/// The futex commands by number (include/uapi/linux/futex.h), as the
/// plugin prints them.
const FUTEX_COMMANDS: [FutexCommand; 13] = {
    use Radix::{Decimal as D, Hex as H};
    const fn c(
        name: &'static str,
        val: Option<Radix>,
        utime_is_val2: Option<bool>,
        uaddr2: bool,
        val3: bool,
    ) -> FutexCommand {
        FutexCommand {
            name,
            val,
            utime_is_val2,
            uaddr2,
            val3,
        }
    }
    [
        c("FUTEX_WAIT", Some(H), Some(false), false, false),
        c("FUTEX_WAKE", Some(D), None, false, false),
        c("FUTEX_FD", Some(D), None, false, false),
        c("FUTEX_REQUEUE", Some(D), Some(true), true, false),
        c("FUTEX_CMP_REQUEUE", Some(D), Some(true), true, true),
        c("FUTEX_WAKE_OP", Some(D), Some(true), true, true),
        c("FUTEX_LOCK_PI", None, Some(false), false, false),
        c("FUTEX_UNLOCK_PI", None, None, false, false),
        c("FUTEX_TRYLOCK_PI", None, None, false, false),
        c("FUTEX_WAIT_BITSET", Some(H), Some(false), false, true),
        c("FUTEX_WAKE_BITSET", Some(D), None, false, true),
        c("FUTEX_WAIT_REQUEUE_PI", Some(H), Some(false), true, true),
        c("FUTEX_CMP_REQUEUE_PI", Some(D), Some(true), true, true),
    ]
};

/// `op=FUTEX_WAKE|FUTEX_PRIVATE_FLAG uaddr=0x... val=N ...`; an unknown
/// command keeps the print fmt.
fn futex(fields: &Fields<'_>, out: &mut String) -> bool {
    const PRIVATE: u64 = 128;
    const CLOCK_REALTIME: u64 = 256;
    let get = |name: &str| fields.int(name).unwrap_or(0) as u64;
    let op = get("op");
    let Some(command) = FUTEX_COMMANDS.get((op & !(PRIVATE | CLOCK_REALTIME)) as usize) else {
        return false;
    };
    let _ = write!(out, "op={}", command.name);
    if op & PRIVATE != 0 {
        out.push_str("|FUTEX_PRIVATE_FLAG");
    }
    if op & CLOCK_REALTIME != 0 {
        out.push_str("|FUTEX_CLOCK_REALTIME");
    }
    let _ = write!(out, " uaddr=0x{:08x}", get("uaddr"));
    match command.val {
        Some(Radix::Hex) => {
            let _ = write!(out, " val=0x{:08x}", get("val"));
        }
        Some(Radix::Decimal) => {
            let _ = write!(out, " val={}", get("val"));
        }
        None => {}
    }
    match command.utime_is_val2 {
        Some(true) => {
            let _ = write!(out, " val2={}", get("utime"));
        }
        Some(false) => {
            let _ = write!(out, " utime=0x{:08x}", get("utime"));
        }
        None => {}
    }
    if command.uaddr2 {
        let _ = write!(out, " uaddr2=0x{:08x}", get("uaddr2"));
    }
    if command.val3 {
        let _ = write!(out, " val3=0x{:08x}", get("val3"));
    }
    true
}

/// `hrtimer=0x.. now=N function=F` (expire_entry) or
/// `hrtimer=0x.. function=F expires=N softexpires=N` (start).
fn hrtimer(fields: &Fields<'_>, env: &Env<'_>, out: &mut String, start: bool) -> bool {
    let timer = fields.int("hrtimer").unwrap_or(0) as u64;
    let function = fields.int("function").unwrap_or(0) as u64;
    let name = match env.symbols.symbol(function) {
        // The plugin prints the symbol's start minus the address.
        Some(sym) => format!("{}/0x{:x}", sym.name, sym.offset.wrapping_neg()),
        None => format!("0x{function:08x}"),
    };
    if start {
        let _ = write!(
            out,
            "hrtimer=0x{timer:x} function={name} expires={} softexpires={}",
            fields.int("expires").unwrap_or(0) as u64,
            fields.int("softexpires").unwrap_or(0) as u64
        );
    } else {
        let _ = write!(
            out,
            "hrtimer=0x{timer:x} now={} function={name}",
            fields.int("now").unwrap_or(0) as u64
        );
    }
    true
}
