//! The kernel crash dumps `scripts/make-vmcore` makes, as the vmcore,
//! kernel and crash tests find them: one directory per variant (4- and
//! 5-level paging, with and without KASLR) with its dump files,
//! `variant.env`, the guest's console and kallsyms, and with `--oracles`
//! crash's and drgn's views in `oracle/`.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::live;

/// Where the dumps are: `$KSCOPE_VMCORES`, else the workspace's
/// `target/vmcores`.
pub fn vmcores_dir() -> PathBuf {
    std::env::var_os("KSCOPE_VMCORES").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/vmcores"),
        PathBuf::from,
    )
}

/// The dumps on which kscope once failed, each with its README and
/// oracles: `$KSCOPE_REGRESSIONS`, else `shared/regressions` beside the
/// workspace (where CI keeps it, next to the clone).
pub fn regressions_dir() -> PathBuf {
    std::env::var_os("KSCOPE_REGRESSIONS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/regressions"),
        PathBuf::from,
    )
}

/// Every regression (a directory of [`regressions_dir`]) that holds all
/// of `files`, whatever kernel it came from, sorted by name; empty after
/// the live gate said there is none (a failure under
/// `KSCOPE_REQUIRE_LIVE=1`).
pub fn regressions_with(what: &str, files: &[&str]) -> Vec<PathBuf> {
    let root = regressions_dir();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|dir| files.iter().all(|f| dir.join(f).is_file()));
    found.sort();
    let missing = found.is_empty().then(|| {
        format!(
            "no directory of {} holds {} (CI keeps ../shared/regressions beside the clone; KSCOPE_REGRESSIONS names another directory)",
            root.display(),
            files.join(", ")
        )
    });
    if live(what, missing) {
        found
    } else {
        Vec::new()
    }
}

/// One variant's directory and its `variant.env`; it displays as its
/// name.
#[derive(Debug, Clone)]
pub struct VmcoreVariant {
    /// The variant's name (`4level-kaslr`...).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    env: HashMap<String, String>,
}

impl std::fmt::Display for VmcoreVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl VmcoreVariant {
    /// A `variant.env` value (`KERNELOFFSET`, `PANIC_PID`...).
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{}: no {key} in variant.env", self.dir.display()))
    }

    /// How far KASLR moved the kernel (`KERNELOFFSET`).
    pub fn kaslr_offset(&self) -> u64 {
        u64::from_str_radix(self.var("KERNELOFFSET"), 16)
            .unwrap_or_else(|e| panic!("{}: KERNELOFFSET: {e}", self.name))
    }

    /// The dump files: `vmcore.elf`, `vmcore-*.flat`, `vmcore-*.kdump`.
    pub fn forms(&self) -> Vec<PathBuf> {
        let mut forms: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        forms.retain(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|name| {
                name.starts_with("vmcore")
                    && [".elf", ".flat", ".kdump"]
                        .iter()
                        .any(|e| name.ends_with(e))
            })
        });
        forms.sort();
        forms
    }

    /// A file of the variant's directory (`console.log`...), if it is
    /// there.
    pub fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(name)).ok()
    }

    /// A file of `oracle/`; panics, naming the command that makes it,
    /// when it is missing.
    pub fn oracle(&self, name: &str) -> String {
        let path = self.dir.join("oracle").join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} (scripts/make-vmcore --oracles): {e}", path.display()))
    }

    /// The guest's own `/proc/kallsyms` (saved gzipped before the panic):
    /// address and name of each symbol of the kernel image, module
    /// symbols left out, in the guest's order.
    pub fn guest_kallsyms(&self) -> Vec<(u64, String)> {
        let path = self.dir.join("kallsyms.gz");
        let output = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("gzip -dc {}: {e}", path.display()));
        assert!(
            output.status.success(),
            "gzip -dc {} (scripts/make-vmcore saves it)",
            path.display()
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.contains('['))
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                let name = fields.nth(1)?;
                Some((address, name.to_string()))
            })
            .collect()
    }

    /// The run-time address of `name` in the guest's kallsyms (the first,
    /// where several symbols share the name).
    pub fn guest_symbol(&self, kallsyms: &[(u64, String)], name: &str) -> u64 {
        kallsyms
            .iter()
            .find(|(_, n)| n == name)
            .map(|(address, _)| *address)
            .unwrap_or_else(|| panic!("{}: no {name} in the guest's kallsyms", self.name))
    }
}

/// The variants with dumps (and, with `oracles`, with crash's and drgn's
/// views too), by name; none after the live gate said why they are
/// missing (a failure under `KSCOPE_REQUIRE_LIVE=1`).
pub fn vmcore_variants(what: &str, oracles: bool) -> Vec<VmcoreVariant> {
    let made_by = if oracles {
        "scripts/make-vmcore --oracles"
    } else {
        "scripts/make-vmcore"
    };
    let dir = vmcores_dir();
    let mut out = Vec::new();
    for path in std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        let Ok(text) = std::fs::read_to_string(path.join("variant.env")) else {
            continue;
        };
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let variant = VmcoreVariant {
            name,
            dir: path,
            env,
        };
        if !variant.forms().is_empty()
            && (!oracles || variant.dir.join("oracle/commands.txt").exists())
        {
            out.push(variant);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        live(
            what,
            Some(format!(
                "no variant with dumps under {}: {made_by} makes them",
                dir.display()
            )),
        );
    }
    out
}
