//! The verdicts on the kernel's other interfaces: BPF, BTF, perf events,
//! kallsyms, its configuration, lockdown, modules and debuginfo.

use super::{check, denied_or, parameter_evidence, presence, setting};
use crate::debuginfo;
use crate::facts::{Facts, TRACEPOINT_PMU, VMLINUX_BTF, lockdown_file};
use crate::parse::config::KernelConfig;
use crate::{Check, Verdict};

pub(super) fn bpf(facts: &Facts) -> Check {
    let settings = format!(
        "bpf_jit_enable={}, unprivileged_bpf_disabled={}",
        setting(&facts.settings.bpf_jit_enable),
        setting(&facts.settings.unprivileged_bpf_disabled)
    );
    match &facts.bpf_load {
        Ok(()) => check("bpf", Verdict::Available, "BPF programs load")
            .evidence("loaded a 2-instruction tracepoint program and unloaded it")
            .evidence(settings),
        Err(failure) if failure.is_denial() => {
            check("bpf", Verdict::Denied, "bpf(2) refuses to load programs")
                .evidence(format!("BPF_PROG_LOAD: {}", failure.errno_name()))
                .evidence(settings)
                .needs("root (CAP_BPF and CAP_PERFMON), and lockdown off")
                .instead("tracefs events, which need no BPF")
        }
        Err(failure) => check("bpf", Verdict::Missing, "BPF programs cannot be loaded")
            .evidence(failure.message.clone())
            .evidence(facts.config_says("CONFIG_BPF_SYSCALL"))
            .needs("CONFIG_BPF_SYSCALL=y and CONFIG_BPF_EVENTS=y")
            .instead("tracefs events, which need no BPF"),
    }
}

/// The first bytes of a BTF blob: magic 0xeb9f, little-endian on x86.
const BTF_MAGIC: u16 = 0xeb9f;

pub(super) fn btf(facts: &Facts) -> Check {
    match &facts.btf {
        Ok(head) if u16::from_ne_bytes(head.magic) == BTF_MAGIC => check(
            "btf",
            Verdict::Available,
            format!(
                "kernel type information: {VMLINUX_BTF} ({:.1} MiB)",
                head.size as f64 / (1024.0 * 1024.0)
            ),
        )
        .evidence(format!(
            "{VMLINUX_BTF}: {} bytes, magic 0x{BTF_MAGIC:x}",
            head.size
        )),
        Ok(head) => check("btf", Verdict::Unknown, format!("{VMLINUX_BTF} is not BTF")).evidence(
            format!("first bytes {:02x} {:02x}", head.magic[0], head.magic[1]),
        ),
        Err(failure) if failure.is_not_found() => check("btf", Verdict::Missing, "no kernel BTF")
            .evidence(format!("{VMLINUX_BTF} does not exist"))
            .needs("CONFIG_DEBUG_INFO_BTF=y")
            .instead("a vmlinux with DWARF for types; kallsyms for symbols"),
        Err(failure) => check(
            "btf",
            denied_or(failure, Verdict::Unknown),
            format!("cannot read {VMLINUX_BTF}: {}", failure.errno_name()),
        )
        .needs("root"),
    }
}

pub(super) fn perf_events(facts: &Facts) -> Check {
    let paranoid_evidence = format!(
        "perf_event_paranoid={}",
        setting(&facts.settings.perf_event_paranoid)
    );
    match &facts.perf_open {
        Ok(()) => check("perf_events", Verdict::Available, "perf_event_open works")
            .evidence("opened and closed a software task-clock counter")
            .evidence(paranoid_evidence)
            .evidence(format!(
                "perf PMU {TRACEPOINT_PMU}: {}",
                presence(facts.pmus.tracepoint)
            )),
        Err(failure) if failure.is_denial() => check(
            "perf_events",
            Verdict::Denied,
            "perf_event_open refuses even a software counter",
        )
        .evidence(format!("perf_event_open: {}", failure.errno_name()))
        .evidence(paranoid_evidence)
        .needs("root, or a lower kernel.perf_event_paranoid")
        .instead("tracefs events"),
        Err(failure) => check(
            "perf_events",
            Verdict::Missing,
            "perf_event_open does not work",
        )
        .evidence(failure.message.clone())
        .needs("CONFIG_PERF_EVENTS=y")
        .instead("tracefs events"),
    }
}

pub(super) fn kallsyms(facts: &Facts) -> Check {
    let restrict_evidence = format!("kptr_restrict={}", setting(&facts.settings.kptr_restrict));
    let summary = match &facts.kallsyms {
        Ok(summary) => summary,
        Err(failure) => {
            return check(
                "kallsyms",
                denied_or(failure, Verdict::Missing),
                format!("cannot read /proc/kallsyms: {}", failure.errno_name()),
            )
            .needs("CONFIG_KALLSYMS=y")
            .instead("System.map of the running kernel");
        }
    };
    if summary.symbols == 0 {
        return check("kallsyms", Verdict::Missing, "/proc/kallsyms is empty")
            .needs("CONFIG_KALLSYMS=y")
            .instead("System.map of the running kernel");
    }
    if summary.addresses_hidden() {
        return check(
            "kallsyms",
            Verdict::Denied,
            format!(
                "{} symbols listed with their addresses hidden",
                summary.symbols
            ),
        )
        .evidence("every address in /proc/kallsyms reads 0")
        .evidence(restrict_evidence)
        .needs("root with kptr_restrict 0 or 1 (sysctl kernel.kptr_restrict)")
        .instead("System.map of the running kernel");
    }
    let stext = summary
        .stext
        .map_or_else(|| "not listed".to_string(), |a| format!("0x{a:x}"));
    check(
        "kallsyms",
        Verdict::Available,
        format!(
            "{} symbols with real addresses ({} text), _stext at {stext}",
            summary.symbols, summary.text_symbols
        ),
    )
    .evidence(format!(
        "/proc/kallsyms: {} symbols, {} with address 0, {} in modules",
        summary.symbols, summary.zero_addresses, summary.module_symbols
    ))
    .evidence(restrict_evidence)
}

pub(super) fn kernel_config(facts: &Facts) -> Check {
    match &facts.config {
        Some(config) => check(
            "kernel_config",
            Verdict::Available,
            format!("{} ({} options)", config.source.display(), config.options),
        )
        .evidence(format!("read {}", config.source.display())),
        None => {
            let tried: Vec<String> = KernelConfig::candidates(&facts.kernel.release)
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            check(
                "kernel_config",
                Verdict::Missing,
                "no configuration of the running kernel",
            )
            .evidence(format!("tried {}", tried.join(", ")))
            .needs("CONFIG_IKCONFIG_PROC=y, or the distribution's /boot/config-RELEASE")
            .instead("kscope doctor's direct probes, which do not need the config")
        }
    }
}

pub(super) fn lockdown(facts: &Facts) -> Check {
    let result = lockdown_verdict(facts);
    match &facts.securityfs {
        Some(securityfs) if securityfs.mounted_by_us => result.evidence(format!(
            "securityfs was not mounted: kscope mounted it at {} in a private mount namespace of its own for this check (nobody else sees that mount; it ends with doctor)",
            securityfs.path.display()
        )),
        _ => result,
    }
}

fn lockdown_verdict(facts: &Facts) -> Check {
    let path = lockdown_file(facts.securityfs.as_ref());
    match &facts.lockdown {
        Ok(text) => {
            let mode = text
                .split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map_or(text.as_str(), |(m, _)| m);
            let evidence = format!("{}: {text}", path.display());
            match mode {
                "none" => check("lockdown", Verdict::Available, "the kernel is not locked down")
                    .evidence(evidence),
                // The integrity level refuses changes to the running kernel
                // (unsigned modules and kexec images, /dev/mem, BPF writes to
                // user memory), not reading or tracing it.
                "integrity" => check(
                    "lockdown",
                    Verdict::Available,
                    "lockdown=integrity: writes to the kernel are refused; reading and tracing are allowed",
                )
                .evidence(evidence)
                .evidence("kdump needs a signed crash kernel loaded with kexec_file_load"),
                _ => check(
                    "lockdown",
                    Verdict::Denied,
                    format!("lockdown={mode}: kernel memory reads (BPF, /proc/kcore), kprobes, perf and tracefs are refused"),
                )
                .evidence(evidence)
                .needs("boot without lockdown (or with Secure Boot off)")
                .instead("tracepoints"),
            }
        }
        Err(failure) if failure.is_not_found() => {
            if facts.config_enabled("CONFIG_SECURITY_LOCKDOWN_LSM") == Some(false) {
                return check(
                    "lockdown",
                    Verdict::Available,
                    "no lockdown LSM in this kernel",
                )
                .evidence(facts.config_says("CONFIG_SECURITY_LOCKDOWN_LSM"));
            }
            let on_cmdline = parameter_evidence(facts, "lockdown=");
            check(
                "lockdown",
                Verdict::Unknown,
                "securityfs is not mounted, so the lockdown state cannot be read",
            )
            .evidence(format!("{} does not exist", path.display()))
            .evidence(facts.config_says("CONFIG_SECURITY_LOCKDOWN_LSM"))
            .evidence(on_cmdline)
            .needs("mount -t securityfs securityfs /sys/kernel/security, then run doctor again")
        }
        Err(failure) => check(
            "lockdown",
            Verdict::Unknown,
            format!("cannot read {}: {}", path.display(), failure.errno_name()),
        ),
    }
}

pub(super) fn modules(facts: &Facts) -> Check {
    let path = "/proc/modules";
    match &facts.modules {
        Ok(count) => check(
            "modules",
            Verdict::Available,
            format!("{count} modules loaded"),
        )
        .evidence(format!("{path} is readable")),
        Err(_) if facts.config_enabled("CONFIG_MODULES") != Some(true) => check(
            "modules",
            Verdict::Missing,
            "no loadable modules: SystemTap-style module probes cannot work here",
        )
        .evidence(format!("{path} does not exist"))
        .evidence(facts.config_says("CONFIG_MODULES"))
        .needs("CONFIG_MODULES=y")
        .instead("BPF (kscope probe needs no module)"),
        Err(failure) => check(
            "modules",
            Verdict::Unknown,
            format!("cannot read {path}: {}", failure.errno_name()),
        ),
    }
}

pub(super) fn debuginfo(facts: &Facts) -> Check {
    let Some(id) = facts.kernel.build_id.as_deref() else {
        return check(
            "debuginfo",
            Verdict::Unknown,
            "the running kernel's build-id is unknown (no /sys/kernel/notes)",
        )
        .needs("CONFIG_SYSFS=y to read /sys/kernel/notes");
    };
    let candidates = &facts.vmlinux;
    let matching = candidates
        .iter()
        .find(|c| c.has_dwarf && c.build_id.as_deref() == Some(id));
    let mut result = match matching {
        Some(found) => check(
            "debuginfo",
            Verdict::Available,
            format!("{} matches the running kernel", found.path.display()),
        ),
        None => check(
            "debuginfo",
            Verdict::Missing,
            format!("no vmlinux with DWARF matches the running kernel (build-id {id})"),
        )
        .needs("the distribution's kernel debug package for exactly this build (e.g. linux-image-RELEASE-dbg)")
        .instead("nothing is needed for kscope: BTF and kallsyms give types and symbols"),
    };
    result = result.evidence(format!("running kernel build-id {id} (/sys/kernel/notes)"));
    if candidates.is_empty() {
        result = result.evidence(format!(
            "no vmlinux in the usual places: {}",
            debuginfo::vmlinux_candidates(&facts.kernel.release, Some(id))
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for candidate in candidates {
        let their = candidate.build_id.as_deref().unwrap_or("no build-id");
        let line = match (
            candidate.build_id.as_deref() == Some(id),
            candidate.has_dwarf,
        ) {
            (true, true) => format!("{}: build-id {their}, has DWARF", candidate.path.display()),
            (true, false) => format!(
                "{}: build-id matches but it has no DWARF (.debug_info)",
                candidate.path.display()
            ),
            (false, _) => format!(
                "{}: build-id {their} differs from the running kernel's: a mismatched debug \
                 vmlinux, the mismatch that stops SystemTap",
                candidate.path.display()
            ),
        };
        result = result.evidence(line);
    }
    result
}
