//! What formatting records needs from the running kernel besides the
//! records: kallsyms for `%pS`, BTF for enum constants and type sizes,
//! CONFIG_HZ, and the values of kernel variables that print fmts read:
//! `jiffies` (from /proc/timer_list, at print time as the kernel reads it)
//! and `vmemmap_base` (read through BPF where kallsyms gives its address,
//! with CONFIG_KALLSYMS_ALL; otherwise worked out from one record the
//! kernel itself prints in a short-lived instance of ours).

use std::io::Write;

use kscope_btf::Btf;
use kscope_outfile::PrivateDir;
use kscope_traceevent::printfmt::Env;
use kscope_traceevent::{Kallsyms, PrintkFormats};
use kscope_tracefs::{StateGuard, Tracefs, control};

use crate::sys;

/// The running kernel's symbols, types and variables.
#[derive(Debug, Default)]
pub struct KernelContext {
    /// Symbols from /proc/kallsyms.
    pub kallsyms: Kallsyms,
    /// CONFIG_HZ (250 when unknown).
    pub hz: u64,
    /// Values of kernel variables that could be learned.
    pub variables: Vec<(String, u64)>,
    /// Strings at kernel addresses (tracefs's printk_formats).
    pub strings: PrintkFormats,
}

impl KernelContext {
    /// Reads the symbols; variables come with [`KernelContext::resolve`],
    /// types with [`read_btf`].
    pub fn load(hz: u64) -> KernelContext {
        KernelContext {
            kallsyms: Kallsyms::parse(&String::from_utf8_lossy(
                &sys::kallsyms().unwrap_or_default(),
            )),
            hz,
            variables: Vec::new(),
            strings: PrintkFormats::default(),
        }
    }

    /// Reads the strings that records point at (trace_printk formats,
    /// tracepoint_string()s) from `printk_formats`.
    pub fn read_strings(&mut self, fs: &Tracefs) {
        if let Ok(text) = control::read(&fs.root().join("printk_formats")) {
            self.strings = PrintkFormats::parse(&text);
        }
    }

    /// Learns the values of the kernel variables `names` that it can
    /// (the print fmts of the events in use need them). What it cannot
    /// learn prints as `?`.
    pub fn resolve(&mut self, fs: &Tracefs, names: &[&str]) {
        for name in names {
            if self.variables.iter().any(|(n, _)| n == name) {
                continue;
            }
            let value = match *name {
                "jiffies" => current_jiffies(),
                "vmemmap_base" => {
                    read_by_address(fs, name).or_else(|| vmemmap_base_from_the_kernel(fs))
                }
                other => read_by_address(fs, other),
            };
            if let Some(value) = value {
                self.variables.push((name.to_string(), value));
            }
        }
    }

    /// Reads `jiffies` again, for records printed now (the kernel's `trace`
    /// file uses its value at the time it prints).
    pub fn refresh_jiffies(&mut self) {
        if let Some(slot) = self.variables.iter_mut().find(|(n, _)| n == "jiffies")
            && let Some(now) = current_jiffies()
        {
            slot.1 = now;
        }
    }

    /// An evaluation environment over this context and `btf` (parsed from
    /// [`read_btf`]'s blob, once).
    pub fn env<'s>(&'s self, btf: Option<&'s Btf<'s>>) -> Env<'s> {
        Env {
            symbols: &self.kallsyms,
            hz: self.hz,
            types: btf,
            variables: &self.variables,
            strings: Some(&self.strings),
            dialect: kscope_traceevent::printfmt::Dialect::Kernel,
        }
    }
}

/// The running kernel's BTF blob (empty when it has none); parse it once
/// with `kscope_btf::Btf::parse` and keep it beside the context.
pub fn read_btf() -> Vec<u8> {
    sys::vmlinux_btf().unwrap_or_default()
}

/// `jiffies` now, from /proc/timer_list.
fn current_jiffies() -> Option<u64> {
    jiffies_in(&sys::timer_list().ok()?)
}

/// The `jiffies: N` line of a /proc/timer_list text.
fn jiffies_in(timer_list: &str) -> Option<u64> {
    timer_list
        .lines()
        .find_map(|l| l.strip_prefix("jiffies: "))
        .and_then(|v| v.trim().parse().ok())
}

/// The address kallsyms gives `name`; None when it lists no such symbol
/// or hides addresses (zeros, for a caller without CAP_SYSLOG).
fn address_in(kallsyms: &[u8], name: &[u8]) -> Option<u64> {
    let line = kallsyms.split(|&b| b == b'\n').find(|l| {
        l.len() > name.len() && l.ends_with(name) && l[l.len() - name.len() - 1] == b' '
    })?;
    let address = std::str::from_utf8(line.split(|&b| b == b' ').next()?).ok()?;
    u64::from_str_radix(address, 16).ok().filter(|&a| a != 0)
}

/// A variable whose address kallsyms lists (CONFIG_KALLSYMS_ALL), read
/// with BPF while this process calls getpid.
fn read_by_address(fs: &Tracefs, name: &str) -> Option<u64> {
    let address = address_in(&sys::kallsyms().ok()?, name.as_bytes())?;
    let id = control::read(&fs.root().join("events/syscalls/sys_enter_getpid/id"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let values = kscope_bpf::read_kernel_u64s(&[address], id, || {
        let _ = std::process::id();
    })
    .ok()?;
    values.first().copied().filter(|v| *v != 0)
}

/// The struct page array's base, from one `mm_page_alloc` record as the
/// kernel prints it with pointer hashing off: `page=ADDR pfn=0xPFN` where
/// ADDR is vmemmap_base + PFN * sizeof(struct page). The instance lives
/// only for this look, under a guard of its own.
fn vmemmap_base_from_the_kernel(fs: &Tracefs) -> Option<u64> {
    let blob = read_btf();
    let page_size = Btf::parse(&blob).ok()?.type_size("struct page")?;
    let guard = StateGuard::new();
    let found = (|| {
        let instance = guard
            .create_instance(fs, &format!("kscope-{}-vmemmap", std::process::id()))
            .ok()?;
        guard.set(&instance, "options/hash-ptr", "0").ok()?;
        guard
            .enable_event(&instance, "kmem", "mm_page_alloc")
            .ok()?;
        // New page-cache pages: the kernel allocates them for the file.
        // (Heap memory may come from pages this process already has.)
        // The file is made in a new private directory (removed with it),
        // never at a name someone could plant a link at.
        if let Ok(dir) = PrivateDir::create_temporary(&std::env::temp_dir(), ".kscope-vmemmap-")
            && let Ok(mut file) = dir.create_file("pages")
        {
            let _ = file.write_all(&vec![1u8; 1 << 20]);
        }
        guard.set_tracing_on(&instance, false).ok()?;
        let text = instance.read("trace").ok()?;
        text.lines().find_map(|line| {
            let page = line.split("page=").nth(1)?.split_whitespace().next()?;
            let pfn = line.split("pfn=0x").nth(1)?.split_whitespace().next()?;
            let page = u64::from_str_radix(page, 16).ok()?;
            let pfn = u64::from_str_radix(pfn, 16).ok()?;
            page.checked_sub(pfn.checked_mul(page_size)?)
        })
    })();
    if let Err(err) = guard.restore() {
        eprintln!("kscope: {err}");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiffies_are_read_from_the_timer_list() {
        let text =
            "Timer List Version: v0.9\nnow at 123 nsecs\n\njiffies: 4295067296\njiffies: 1\n";
        assert_eq!(jiffies_in(text), Some(4_295_067_296));
        assert_eq!(jiffies_in("now at 123 nsecs\n"), None);
        assert_eq!(jiffies_in("jiffies: many\n"), None);
    }

    #[test]
    fn a_variable_s_address_is_its_own_line_s_and_hidden_ones_are_none() {
        let kallsyms = b"ffffffff81000000 T _stext\n\
ffffffff82a0b000 D vmemmap_base_extra\n\
ffffffff82a0a000 D vmemmap_base\n\
0000000000000000 D jiffies\n";
        assert_eq!(
            address_in(kallsyms, b"vmemmap_base"),
            Some(0xffff_ffff_82a0_a000)
        );
        assert_eq!(address_in(kallsyms, b"_stext"), Some(0xffff_ffff_8100_0000));
        assert_eq!(address_in(kallsyms, b"jiffies"), None);
        assert_eq!(address_in(kallsyms, b"base"), None);
        assert_eq!(address_in(b"", b"jiffies"), None);
    }
}
