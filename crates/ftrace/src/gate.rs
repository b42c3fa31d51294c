//! A command started held at a gate, so that tracing can be set up for its
//! pid (and its children) before it runs: `trace stream -- CMD` and, later,
//! `trace record` and `probe -c`.

use std::io::{self, Write};

/// A command started behind a gate: `sh` waits to read a line from a FIFO
/// of ours, then execs the command in its own process, so that tracing can
/// be set up for that pid (and its children) before the command runs.
/// std's spawn waits for exec, so the wait cannot sit between fork and
/// exec; a FIFO and `read` in sh need no code of ours in the child.
pub struct GatedCommand {
    /// Until the gate opens; a command dropped at its gate is killed.
    child: Option<std::process::Child>,
    fifo: std::path::PathBuf,
}

impl GatedCommand {
    /// Starts `command` (program and arguments) held at its gate.
    pub fn start(command: &[String]) -> io::Result<GatedCommand> {
        let dir = std::env::temp_dir().join(format!("kscope-{}-gate", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let fifo = dir.join("gate");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
        if !made.success() {
            return Err(io::Error::other(format!(
                "mkfifo {} failed",
                fifo.display()
            )));
        }
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg("read -r _ < \"$0\" && exec \"$@\"")
            .arg(&fifo)
            .args(command)
            .spawn()?;
        Ok(GatedCommand {
            child: Some(child),
            fifo,
        })
    }

    /// The pid the command will have.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// Lets the command run.
    pub fn open(mut self) -> io::Result<std::process::Child> {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.fifo)
            .and_then(|mut gate| gate.write_all(b"go\n"));
        self.remove_fifo();
        opened?;
        self.child
            .take()
            .ok_or_else(|| io::Error::other("the gated command was already handed over"))
    }

    /// Lets a command that was let through the gate end: if `terminate`
    /// and it still runs, it gets SIGTERM at once; if it still runs 2 s
    /// later, SIGKILL. Returns once it is reaped.
    pub fn finish(mut child: std::process::Child, terminate: bool) -> io::Result<()> {
        if terminate
            && child.try_wait()?.is_none()
            && let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while child.try_wait()?.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if child.try_wait()?.is_none() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    fn remove_fifo(&self) {
        let _ = std::fs::remove_file(&self.fifo);
        if let Some(dir) = self.fifo.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Drop for GatedCommand {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_fifo();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_runs_only_once_the_gate_opens_and_dies_if_it_never_does() {
        let marker = std::env::temp_dir().join(format!("kscope-gate-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let touch = |m: &std::path::Path| vec!["touch".to_string(), m.display().to_string()];
        let gated = GatedCommand::start(&touch(&marker)).unwrap();
        assert!(gated.id() > 0);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!marker.exists(), "the command ran before the gate opened");
        assert!(gated.open().unwrap().wait().unwrap().success());
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
        drop(GatedCommand::start(&touch(&marker)).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!marker.exists(), "a command dropped at its gate ran");
    }
}
