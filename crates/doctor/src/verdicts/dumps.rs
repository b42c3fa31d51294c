//! The verdicts on dumps of memory: user-space core dumps, kdump, and
//! /proc/kcore.

use super::{check, denied_or, parameter_evidence, setting};
use crate::facts::{Facts, KEXEC_CRASH_LOADED, KEXEC_CRASH_SIZE};
use crate::parse::core_pattern::{CorePattern, MAX_PATTERN_BYTES};
use crate::parse::limits;
use crate::{Check, Verdict};

pub(super) fn core_dumps(facts: &Facts) -> Check {
    let pattern_text = &facts.core_pattern;
    let pattern = CorePattern::parse(pattern_text);
    let pipe_limit = setting(&facts.settings.core_pipe_limit);
    let suid = setting(&facts.settings.suid_dumpable);
    let limit = facts.core_limit;
    let limit_evidence = match limit {
        Some(l) => format!(
            "RLIMIT_CORE of this process: soft {}, hard {}",
            limits::show(l.soft),
            limits::show(l.hard)
        ),
        None => "RLIMIT_CORE: not found in /proc/self/limits".to_string(),
    };
    let mut evidence = vec![
        format!("core_pattern: {pattern_text:?}"),
        pattern.describe(),
        limit_evidence,
        format!("core_pipe_limit={pipe_limit}, suid_dumpable={suid}"),
    ];
    if pattern_text.len() >= MAX_PATTERN_BYTES {
        evidence.push(format!(
            "the pattern is {} bytes: the kernel keeps only the first {MAX_PATTERN_BYTES}",
            pattern_text.len()
        ));
    }
    let soft = limit.and_then(|l| l.soft);
    let result = if pattern.is_handed_over() {
        if soft == Some(1) {
            check(
                "core_dumps",
                Verdict::Denied,
                "RLIMIT_CORE is 1, which turns off the core handler",
            )
            .needs("ulimit -c unlimited (any value but 1)")
        } else {
            let mut c = check("core_dumps", Verdict::Available, pattern.describe());
            if pipe_limit == "0" {
                c = c.evidence(
                    "core_pipe_limit=0: /proc/PID of the crashed process may vanish while the \
                     handler reads the core (set core_pipe_limit, or use %F on 6.16+)",
                );
            }
            c
        }
    } else if soft == Some(0) {
        check(
            "core_dumps",
            Verdict::Denied,
            "RLIMIT_CORE is 0 here: a crashing program started from this shell leaves no core",
        )
        .needs("ulimit -c unlimited in the shell that starts the program")
        .instead("a pipe handler in core_pattern, which runs whatever RLIMIT_CORE is (except 1)")
    } else {
        check("core_dumps", Verdict::Available, pattern.describe())
    };
    evidence.into_iter().fold(result, Check::evidence)
}

pub(super) fn kdump(facts: &Facts) -> Check {
    let reserved = facts
        .settings
        .kexec_crash_size
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok());
    let loaded = facts.settings.kexec_crash_loaded.as_deref();
    let cmdline_evidence = parameter_evidence(facts, "crashkernel=");
    let supported = reserved.is_some()
        || facts.config_enabled("CONFIG_CRASH_DUMP") == Some(true)
        || facts.config_enabled("CONFIG_KEXEC") == Some(true)
        || facts.config_enabled("CONFIG_KEXEC_FILE") == Some(true);
    if !supported {
        return check(
            "kdump",
            Verdict::Missing,
            "the kernel cannot load a crash kernel (no kexec)",
        )
        .evidence(format!("{KEXEC_CRASH_SIZE} does not exist"))
        .evidence(facts.config_says("CONFIG_KEXEC"))
        .evidence(facts.config_says("CONFIG_KEXEC_FILE"))
        .evidence(facts.config_says("CONFIG_CRASH_DUMP"))
        .evidence(cmdline_evidence)
        .needs("CONFIG_KEXEC_FILE=y (or CONFIG_KEXEC=y) with CONFIG_CRASH_DUMP=y, and crashkernel= at boot")
        .instead("kscope crash reads vmcores made elsewhere (a QEMU guest's dump-guest-memory, another machine's kdump)");
    }
    let reserved_mib = reserved.unwrap_or(0) / (1024 * 1024);
    let evidence_reserved = format!(
        "{KEXEC_CRASH_SIZE}: {}",
        reserved.map_or("unreadable".to_string(), |r| r.to_string())
    );
    let evidence_loaded = format!("{KEXEC_CRASH_LOADED}: {}", loaded.unwrap_or("unreadable"));
    let result = if reserved.unwrap_or(0) == 0 {
        check(
            "kdump",
            Verdict::Missing,
            "kexec is built in but no memory is reserved for a crash kernel",
        )
        .needs("boot with crashkernel=256M (kdump-tools sets it up)")
    } else if loaded == Some("1") {
        check(
            "kdump",
            Verdict::Available,
            format!("a crash kernel is loaded in {reserved_mib} MiB reserved memory"),
        )
    } else {
        check(
            "kdump",
            Verdict::Available,
            format!(
                "{reserved_mib} MiB reserved for a crash kernel; none loaded yet (kdump-config load)"
            ),
        )
    };
    result
        .evidence(evidence_reserved)
        .evidence(evidence_loaded)
        .evidence(cmdline_evidence)
        .evidence(facts.config_says("CONFIG_CRASH_DUMP"))
}

pub(super) fn kcore(facts: &Facts) -> Check {
    match &facts.kcore {
        Ok([0x7f, b'E', b'L', b'F']) => check(
            "kcore",
            Verdict::Available,
            "/proc/kcore exposes live kernel memory as an ELF core",
        )
        .evidence("/proc/kcore opens and starts with the ELF magic"),
        Ok(header) => check("kcore", Verdict::Unknown, "/proc/kcore is not an ELF file")
            .evidence(format!("first bytes {header:02x?}")),
        Err(failure) if failure.is_not_found() => {
            check("kcore", Verdict::Missing, "no /proc/kcore")
                .evidence("/proc/kcore does not exist")
                .evidence(facts.config_says("CONFIG_PROC_KCORE"))
                .needs("CONFIG_PROC_KCORE=y")
                .instead("BTF and kallsyms for types and symbols; a vmcore for memory")
        }
        Err(failure) => check(
            "kcore",
            denied_or(failure, Verdict::Unknown),
            format!("cannot read /proc/kcore: {}", failure.errno_name()),
        )
        .needs("root, and lockdown off (confidentiality mode refuses it)"),
    }
}
