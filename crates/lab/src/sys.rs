//! The lab's one direct syscall: prctl(PR_SET_PDEATHSIG) in a QEMU child
//! between fork and exec, so that QEMU dies with the process that started
//! it, even when that process is killed with SIGKILL.

// pre_exec runs in the forked child before exec; prctl is async-signal-safe
// and touches no memory of ours.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the command's process receive SIGKILL when its parent thread ends.
pub(crate) fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure only calls prctl(2), which is async-signal-safe,
    // and reads errno through io::Error.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_with_the_parent_death_signal_still_runs() {
        let mut command = Command::new("true");
        die_with_parent(&mut command);
        assert!(command.status().unwrap().success());
    }
}
