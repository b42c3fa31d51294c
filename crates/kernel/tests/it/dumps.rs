//! The real dumps: one directory per variant (4- and 5-level paging, with
//! and without KASLR) under `$KSCOPE_VMCORES` or `target/vmcores`, each
//! with its dump files, `variant.env`, the console log and the oracles
//! of crash, drgn and makedumpfile.

use std::collections::HashMap;
use std::path::PathBuf;

use kscope_kernel::SymbolTable;
use kscope_vmcore::Vmcore;

/// One variant's directory.
pub struct Variant {
    pub name: String,
    pub dir: PathBuf,
    env: HashMap<String, String>,
}

impl Variant {
    /// A `variant.env` value.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{}: no {key} in variant.env", self.dir.display()))
    }

    /// The dump files: `vmcore.elf`, `vmcore-*.flat`, `vmcore-*.kdump`.
    pub fn forms(&self) -> Vec<PathBuf> {
        let mut forms: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("vmcore")
                    && [".elf", ".flat", ".kdump"]
                        .iter()
                        .any(|e| name.ends_with(e))
            })
            .collect();
        forms.sort();
        forms
    }

    /// Opens the dump file `name` (`vmcore.elf`...).
    pub fn open(&self, name: &str) -> Vmcore {
        let path = self.dir.join(name);
        Vmcore::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// How far KASLR moved the kernel.
    pub fn kaslr_offset(&self) -> u64 {
        u64::from_str_radix(self.var("KERNELOFFSET"), 16).unwrap()
    }

    /// A file of the variant's directory (`console.log`,
    /// `oracle/crash-sys.txt`), if it is there.
    pub fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(name)).ok()
    }

    /// The text of the kernel's real System.map (the -dbg package's;
    /// the image package's is a stub).
    pub fn system_map_text(&self) -> String {
        let name = format!("System.map-{}", self.var("KERNEL_RELEASE"));
        let path = vmcores_dir().join("dbg/usr/lib/debug/boot").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The System.map's symbols at their addresses in this dump.
    pub fn system_map(&self) -> SymbolTable {
        SymbolTable::from_system_map(&self.system_map_text(), self.kaslr_offset()).unwrap()
    }
}

pub fn vmcores_dir() -> PathBuf {
    kscope_testkit::vmcores_dir()
}

fn find_variants() -> Result<Vec<Variant>, String> {
    let dir = vmcores_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "no real dumps ({}: {e}); scripts/make-vmcore --oracles makes them",
            dir.display()
        )
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Ok(text) = std::fs::read_to_string(path.join("variant.env")) else {
            continue;
        };
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let variant = Variant {
            name,
            dir: path,
            env,
        };
        if !variant.forms().is_empty() && variant.dir.join("oracle/commands.txt").exists() {
            out.push(variant);
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    if out.is_empty() {
        return Err(format!(
            "no variant with dumps and oracles under {}; scripts/make-vmcore --oracles makes them",
            dir.display()
        ));
    }
    Ok(out)
}

/// Every variant, or none after the live gate said why.
pub fn variants(what: &str) -> Vec<Variant> {
    match find_variants() {
        Ok(v) => v,
        Err(reason) => {
            kscope_testkit::live(what, Some(reason));
            Vec::new()
        }
    }
}
