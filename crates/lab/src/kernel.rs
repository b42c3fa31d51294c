//! Debian's own kernel for the guest: the package that `linux-image-amd64`
//! depends on, fetched with `apt-get download` (never installed on the
//! host), unpacked with `dpkg-deb -x` into the lab's cache, with a
//! `modules.dep` made by `depmod` (the package leaves that to its postinst).
//! A kernel already in the cache is used without asking apt again.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};
use crate::tools::run_tool;

/// The metapackage whose dependency names the current kernel.
pub const METAPACKAGE: &str = "linux-image-amd64";

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct DebianKernel {
    /// The package name, e.g. `linux-image-ABI-amd64`.
    pub package: String,
    /// `uname -r` of the kernel, e.g. `ABI-amd64`.
    pub release: String,
    /// The unpacked package.
    pub root: PathBuf,
}

impl DebianKernel {
    /// The compressed kernel image QEMU boots.
    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }

    /// The kernel's build configuration.
    pub fn config(&self) -> PathBuf {
        self.root.join(format!("boot/config-{}", self.release))
    }

    /// `lib/modules/RELEASE` of the package.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.release))
    }

    /// The module files (relative to `modules_dir`) to insmod, in order,
    /// so that each named module loads after what it depends on.
    pub fn module_load_order(&self, names: &[&str]) -> Result<Vec<String>> {
        let path = self.modules_dir().join("modules.dep");
        let text = std::fs::read_to_string(&path).map_err(LabError::io(&path))?;
        let mut order = Vec::new();
        for name in names {
            let (module, deps) =
                find_module(&text, name).ok_or_else(|| LabError::KernelLayout {
                    path: self.root.clone(),
                    missing: format!("module {name} in modules.dep"),
                })?;
            // modules.dep lists dependencies so that the last loads first.
            for file in deps.iter().rev().chain(std::iter::once(&module)) {
                if !order.contains(file) {
                    order.push(file.clone());
                }
            }
        }
        Ok(order)
    }

    /// Finds the kernel in `cache`, fetching and unpacking it first when
    /// apt names one the cache does not have.
    pub fn fetch(cache: &Path) -> Result<DebianKernel> {
        std::fs::create_dir_all(cache).map_err(LabError::io(cache))?;
        let package = match current_package() {
            Ok(package) => package,
            // No apt lists (or no apt): use what the cache has, if anything.
            Err(err) => return cached_any(cache).ok_or(err),
        };
        let root = cache.join(&package);
        if !root.join("boot").is_dir() {
            unpack(cache, &package, &root)?;
        }
        DebianKernel::at(package, root)
    }

    fn at(package: String, root: PathBuf) -> Result<DebianKernel> {
        let modules = root.join("lib/modules");
        let release = std::fs::read_dir(&modules)
            .map_err(LabError::io(&modules))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .ok_or_else(|| LabError::KernelLayout {
                path: root.clone(),
                missing: "lib/modules/RELEASE".into(),
            })?;
        let kernel = DebianKernel {
            package,
            release,
            root,
        };
        if !kernel.vmlinuz().is_file() {
            return Err(LabError::KernelLayout {
                path: kernel.root.clone(),
                missing: format!("boot/vmlinuz-{}", kernel.release),
            });
        }
        Ok(kernel)
    }
}

/// The `linux-image-*` package the metapackage depends on, from apt's
/// local lists (no network).
fn current_package() -> Result<String> {
    let output = run_tool(Command::new("apt-cache").args(["depends", METAPACKAGE]))?;
    parse_depends(&output).ok_or_else(|| LabError::Tool {
        what: format!("apt-cache depends {METAPACKAGE}"),
        detail: "no linux-image dependency listed; run apt-get update".into(),
    })
}

/// The first `Depends: linux-image-...` of `apt-cache depends` output.
pub fn parse_depends(output: &str) -> Option<String> {
    output
        .lines()
        .filter_map(|l| l.trim().trim_start_matches('|').strip_prefix("Depends: "))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && !p.starts_with('<'))
        .map(str::to_string)
}

fn cached_any(cache: &Path) -> Option<DebianKernel> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("linux-image-") && cache.join(n).join("boot").is_dir())
        .collect();
    names.sort();
    let package = names.pop()?;
    DebianKernel::at(package.clone(), cache.join(package)).ok()
}

fn unpack(cache: &Path, package: &str, root: &Path) -> Result<()> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).map_err(LabError::io(&debs))?;
    let deb = find_deb(&debs, package);
    let deb = match deb {
        Some(deb) => deb,
        None => {
            run_tool(
                Command::new("apt-get")
                    .args(["download", "-q", "-o", "APT::Sandbox::User=root", package])
                    .current_dir(&debs),
            )?;
            find_deb(&debs, package).ok_or_else(|| LabError::Tool {
                what: format!("apt-get download {package}"),
                detail: format!("no {package}_*.deb appeared in {}", debs.display()),
            })?
        }
    };
    let partial = cache.join(format!("{package}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    run_tool(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
    let kernel = DebianKernel::at(package.to_string(), partial.clone())?;
    run_tool(
        Command::new("depmod")
            .arg("-b")
            .arg(&partial)
            .arg(&kernel.release),
    )?;
    std::fs::rename(&partial, root).map_err(LabError::io(root))
}

fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

/// A module's line in modules.dep: its file and its dependencies' files.
fn find_module(modules_dep: &str, name: &str) -> Option<(String, Vec<String>)> {
    modules_dep.lines().find_map(|line| {
        let (file, deps) = line.split_once(':')?;
        let base = file.rsplit('/').next()?;
        let stem = base.split(".ko").next()?;
        (stem == name || stem.replace('-', "_") == name.replace('-', "_")).then(|| {
            (
                file.to_string(),
                deps.split_whitespace().map(str::to_string).collect(),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_is_read_from_apt_cache_depends() {
        // The package named after the running kernel's release: the
        // parser must not care which ABI Debian points at today.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let package = format!("linux-image-{}", release.trim());
        let output = format!("linux-image-amd64\n  Depends: {package}\n");
        assert_eq!(parse_depends(&output).as_deref(), Some(package.as_str()));
        let alternatives =
            format!("linux-image-amd64\n |Depends: <linux-image-virtual>\n  Depends: {package}\n");
        assert_eq!(
            parse_depends(&alternatives).as_deref(),
            Some(package.as_str())
        );
        assert_eq!(parse_depends("linux-image-amd64\n"), None);
    }

    #[test]
    fn modules_are_found_by_name_with_their_dependencies() {
        let dep = "kernel/drivers/misc/pvpanic/pvpanic.ko:\n\
                   kernel/drivers/misc/pvpanic/pvpanic-mmio.ko: kernel/drivers/misc/pvpanic/pvpanic.ko\n\
                   kernel/drivers/firmware/qemu_fw_cfg.ko.xz:\n";
        let (file, deps) = find_module(dep, "pvpanic-mmio").unwrap();
        assert_eq!(file, "kernel/drivers/misc/pvpanic/pvpanic-mmio.ko");
        assert_eq!(deps, ["kernel/drivers/misc/pvpanic/pvpanic.ko"]);
        assert!(find_module(dep, "qemu_fw_cfg").is_some());
        assert!(find_module(dep, "absent").is_none());
    }
}
