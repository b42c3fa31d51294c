//! What formatting records needs from the running kernel besides the
//! records: kallsyms for `%pS`, BTF for enum constants and type sizes,
//! CONFIG_HZ, and the values of kernel variables that print fmts read
//! (`vmemmap_base`), read through BPF where kallsyms gives their address
//! (kernels with CONFIG_KALLSYMS_ALL).

use kscope_btf::Btf;
use kscope_traceevent::Kallsyms;
use kscope_traceevent::printfmt::Env;
use kscope_tracefs::{Tracefs, control};

/// Kernel variables that print fmts of this era use.
const VARIABLES: &[&str] = &["vmemmap_base", "page_offset_base", "vmalloc_base"];

/// The running kernel's symbols, types and variables.
#[derive(Debug, Default)]
pub struct KernelContext {
    /// Symbols from /proc/kallsyms.
    pub kallsyms: Kallsyms,
    btf_blob: Vec<u8>,
    /// CONFIG_HZ (250 when unknown).
    pub hz: u64,
    /// Values of kernel variables that could be read.
    pub variables: Vec<(String, u64)>,
}

impl KernelContext {
    /// Reads everything it can; what it cannot read stays empty, and the
    /// records that need it print `?` or hex where the kernel prints more.
    pub fn load(fs: &Tracefs, hz: u64) -> KernelContext {
        let kallsyms_text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let kallsyms = Kallsyms::parse(&kallsyms_text);
        let btf_blob = std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_default();
        let variables = read_variables(fs, &kallsyms_text);
        KernelContext {
            kallsyms,
            btf_blob,
            hz,
            variables,
        }
    }

    /// The kernel's BTF, when it has any.
    pub fn btf(&self) -> Option<Btf<'_>> {
        Btf::parse(&self.btf_blob).ok()
    }

    /// An evaluation environment over this context and `btf` (from
    /// [`KernelContext::btf`]).
    pub fn env<'s>(&'s self, btf: Option<&'s Btf<'s>>) -> Env<'s> {
        Env {
            symbols: &self.kallsyms,
            hz: self.hz,
            types: btf,
            variables: &self.variables,
        }
    }
}

/// The variables whose addresses kallsyms lists, read with BPF while this
/// process calls getpid.
fn read_variables(fs: &Tracefs, kallsyms: &str) -> Vec<(String, u64)> {
    let found: Vec<(&str, u64)> = VARIABLES
        .iter()
        .filter_map(|name| {
            let line = kallsyms
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))?;
            let address = u64::from_str_radix(line.split_whitespace().next()?, 16).ok()?;
            (address != 0).then_some((*name, address))
        })
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    let Some(id) = control::read(&fs.root().join("events/syscalls/sys_enter_getpid/id"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
    else {
        return Vec::new();
    };
    let addresses: Vec<u64> = found.iter().map(|(_, a)| *a).collect();
    match kscope_bpf::read_kernel_u64s(&addresses, id, || {
        let _ = std::process::id();
    }) {
        Ok(values) => found
            .iter()
            .zip(values)
            .filter(|(_, v)| *v != 0)
            .map(|((name, _), value)| (name.to_string(), value))
            .collect(),
        Err(_) => Vec::new(),
    }
}
