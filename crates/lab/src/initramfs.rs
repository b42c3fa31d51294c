//! The guest's initramfs: newc cpio archives (the format the kernel
//! unpacks at boot) written with the `cpio` crate. The base archive holds
//! busybox, /init, the static kscope binaries, the modules the guest
//! loads and the kernel's config; each batch is a second, small archive
//! appended to it (the kernel unpacks concatenated archives in order), so
//! the base is built once per lab.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::build::StaticBinaries;
use crate::error::{LabError, Result};
use crate::kernel::DebianKernel;
use crate::tools::{BUSYBOX, run_tool};

/// The guest's /init.
const INIT: &str = include_str!("../guest/init.sh");

/// Modules the guest loads: qemu_fw_cfg (VMCOREINFO reaches a dump through
/// it) and pvpanic-mmio (the kernel tells QEMU it panicked, so QEMU exits
/// with a failure status at once).
pub const GUEST_MODULES: &[&str] = &["qemu_fw_cfg", "pvpanic-mmio"];

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// A newc archive being written into memory.
pub struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

impl Default for Archive {
    fn default() -> Self {
        Self::new()
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive {
            bytes: Vec::new(),
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| LabError::Tool {
            what: format!("initramfs entry {name}"),
            detail: "larger than 4 GiB".into(),
        })?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut writer = cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(mode)
            .nlink(if mode & S_IFDIR != 0 { 2 } else { 1 })
            .write(&mut self.bytes, size);
        writer
            .write_all(data)
            .and_then(|()| writer.finish().map(drop))
            .map_err(LabError::io(name))
    }

    /// Adds a directory and any missing parents.
    pub fn dir(&mut self, name: &str) -> Result<()> {
        let mut path = String::new();
        for part in name.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            if self.dirs.insert(path.clone()) {
                self.entry(&path.clone(), S_IFDIR | 0o755, &[])?;
            }
        }
        Ok(())
    }

    fn parent_of(&mut self, name: &str) -> Result<()> {
        match name.rsplit_once('/') {
            Some((parent, _)) => self.dir(parent),
            None => Ok(()),
        }
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> Result<()> {
        self.parent_of(name)?;
        self.entry(name, S_IFREG | permissions, data)
    }

    /// Adds a file copied from the host.
    pub fn copy(&mut self, name: &str, permissions: u32, from: &Path) -> Result<()> {
        let data = std::fs::read(from).map_err(LabError::io(from))?;
        self.file(name, permissions, &data)
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.parent_of(name)?;
        self.entry(name, S_IFLNK | 0o777, target.as_bytes())
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        cpio::newc::trailer(&mut self.bytes).map_err(LabError::io("TRAILER!!!"))?;
        Ok(self.bytes)
    }
}

/// The base archive of a lab.
pub fn base(kernel: &DebianKernel, binaries: &StaticBinaries) -> Result<Vec<u8>> {
    let mut archive = Archive::new();
    for dir in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "etc/kscope",
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
    ] {
        archive.dir(dir)?;
    }
    archive.file("init", 0o755, INIT.as_bytes())?;
    archive.copy("bin/busybox", 0o755, Path::new(BUSYBOX))?;
    let applets = run_tool(Command::new(BUSYBOX).arg("--list-full"))?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        if applet != "bin/busybox" {
            archive.symlink(applet, "/bin/busybox")?;
        }
    }
    archive.copy("bin/kscope", 0o755, &binaries.kscope())?;
    archive.copy("bin/kscope-lab-guest", 0o755, &binaries.guest())?;
    let release = &kernel.release;
    let modules = kernel.module_load_order(GUEST_MODULES)?;
    for module in &modules {
        archive.copy(
            &format!("lib/modules/{release}/{module}"),
            0o644,
            &kernel.modules_dir().join(module),
        )?;
    }
    archive.file(
        "etc/kscope/modules",
        0o644,
        (modules.join("\n") + "\n").as_bytes(),
    )?;
    // Debian's kernel has no /proc/config.gz: doctor finds it here.
    archive.copy(&format!("boot/config-{release}"), 0o644, &kernel.config())?;
    archive.finish()
}

/// One command of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    /// A name made of letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Shell text, run by busybox `sh` with kscope on PATH.
    pub script: String,
}

impl GuestCommand {
    /// A command named `name` running `script`.
    pub fn new(name: impl Into<String>, script: impl Into<String>) -> GuestCommand {
        GuestCommand {
            name: name.into(),
            script: script.into(),
        }
    }
}

/// What the guest does with its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the commands, report on ttyS1, power off.
    Batch,
    /// Give a person a shell on the console.
    Shell,
}

/// The archive that carries a batch.
pub fn batch(nonce: &str, mode: Mode, commands: &[GuestCommand]) -> Result<Vec<u8>> {
    let mut archive = Archive::new();
    archive.dir("batch")?;
    archive.file("batch/nonce", 0o644, nonce.as_bytes())?;
    let mode = match mode {
        Mode::Batch => "batch",
        Mode::Shell => "shell",
    };
    archive.file("batch/mode", 0o644, mode.as_bytes())?;
    for (i, command) in commands.iter().enumerate() {
        let valid = !command.name.is_empty()
            && command
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            return Err(LabError::Tool {
                what: format!("batch command {:?}", command.name),
                detail: "a name may hold only letters, digits, '-', '_' and '.'".into(),
            });
        }
        archive.file(
            &format!("batch/{i:03}.name"),
            0o644,
            command.name.as_bytes(),
        )?;
        archive.file(
            &format!("batch/{i:03}.sh"),
            0o755,
            command.script.as_bytes(),
        )?;
    }
    archive.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        loop {
            let reader = cpio::newc::Reader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                return out;
            }
            let name = reader.entry().name().to_string();
            let mode = reader.entry().mode();
            let mut reader = reader;
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
            out.push((name, mode, data));
            rest = reader.finish().unwrap();
        }
    }

    #[test]
    fn parents_come_before_children_once_each() {
        let mut archive = Archive::new();
        archive.file("a/b/c.txt", 0o644, b"hi").unwrap();
        archive.file("a/b/d.txt", 0o644, b"yo").unwrap();
        archive.symlink("a/link", "/a/b/c.txt").unwrap();
        let listed = entries(&archive.finish().unwrap());
        let names: Vec<&str> = listed.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c.txt", "a/b/d.txt", "a/link"]);
        assert_eq!(listed[2].2, b"hi");
        assert_eq!(listed[4].1 & 0o170000, S_IFLNK);
        assert_eq!(listed[4].2, b"/a/b/c.txt");
    }

    #[test]
    fn a_batch_lists_its_commands_in_order() {
        let commands = [
            GuestCommand::new("first", "true"),
            GuestCommand::new("second", "exit 3"),
        ];
        let listed = entries(&batch("n0nce", Mode::Batch, &commands).unwrap());
        let find = |name: &str| {
            listed
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, _, d)| d.clone())
        };
        assert_eq!(find("batch/nonce").unwrap(), b"n0nce");
        assert_eq!(find("batch/mode").unwrap(), b"batch");
        assert_eq!(find("batch/000.name").unwrap(), b"first");
        assert_eq!(find("batch/001.sh").unwrap(), b"exit 3");
    }

    #[test]
    fn command_names_that_could_break_the_protocol_are_refused() {
        for name in ["", "two words", "a/b", "new\nline"] {
            assert!(
                batch("n", Mode::Batch, &[GuestCommand::new(name, "true")]).is_err(),
                "{name:?}"
            );
        }
    }
}
