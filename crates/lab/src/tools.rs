//! Running the host programs the lab is built from (apt, dpkg-deb, depmod,
//! cargo, QEMU), with errors that say which one failed and how.

use std::path::Path;
use std::process::Command;

use crate::error::{LabError, Result};

/// The host programs the lab needs, with the Debian package of each.
pub const PREREQUISITES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("apt-get", "apt"),
];

/// The statically linked busybox of the busybox-static package.
pub const BUSYBOX: &str = "/bin/busybox";

/// The first prerequisite that is missing, as an error.
pub fn missing_prerequisite() -> Option<LabError> {
    for (program, package) in PREREQUISITES {
        if find_in_path(program).is_none() {
            return Some(LabError::MissingTool { program, package });
        }
    }
    if !busybox_is_static() {
        return Some(LabError::MissingTool {
            program: "a static busybox (/bin/busybox)",
            package: "busybox-static",
        });
    }
    None
}

fn find_in_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// busybox-static's binary has no program interpreter (PT_INTERP): it
/// runs in a guest that has no C library.
fn busybox_is_static() -> bool {
    std::fs::read(BUSYBOX).is_ok_and(|bytes| is_static_elf(&bytes))
}

/// True for a 64-bit ELF executable without a PT_INTERP segment.
pub fn is_static_elf(bytes: &[u8]) -> bool {
    use object::read::elf::{FileHeader, ProgramHeader};
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(bytes) else {
        return false;
    };
    let Ok(endian) = header.endian() else {
        return false;
    };
    header.program_headers(endian, bytes).is_ok_and(|headers| {
        headers
            .iter()
            .all(|h| h.p_type(endian) != object::elf::PT_INTERP)
    })
}

/// Runs a command to completion; its stdout on success, else an error
/// with its status and the end of its stderr.
pub fn run_tool(command: &mut Command) -> Result<String> {
    let what = describe(command);
    let output = command.output().map_err(|err| LabError::Tool {
        what: what.clone(),
        detail: err.to_string(),
    })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(LabError::Tool {
        what,
        detail: format!(
            "{}\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ),
    })
}

/// `program arg arg` for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The workspace this crate was built in: the lab builds kscope from it.
pub fn workspace_root() -> &'static Path {
    // crates/lab -> the workspace root, fixed at compile time.
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_tool_reports_its_command_and_stderr() {
        let err =
            run_tool(Command::new("sh").args(["-c", "echo bad thing >&2; exit 4"])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("bad thing"), "{text}");
        assert!(text.contains('4'), "{text}");
    }

    #[test]
    fn a_dynamic_executable_is_not_static() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(!is_static_elf(&sh), "/bin/sh has a program interpreter");
        assert!(!is_static_elf(b"not elf"));
        assert!(!is_static_elf(&sh[..100]));
    }

    #[test]
    fn a_missing_tool_is_an_error_not_a_panic() {
        assert!(run_tool(&mut Command::new("/nonexistent/kscope-tool")).is_err());
    }
}
