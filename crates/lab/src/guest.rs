//! Booting the guest: Debian's kernel under QEMU (software emulation),
//! with the lab's initramfs and a batch appended, the console on the first
//! serial port (a file) and results on the second. One boot runs a whole
//! batch; a guest that passes its deadline is killed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::build::{StaticBinaries, build_static};
use crate::error::{LabError, Result};
use crate::initramfs::{self, GuestCommand, Mode};
use crate::kernel::DebianKernel;
use crate::results::{self, CommandResult, ResultStream};
use crate::sys;
use crate::tools::{describe, missing_prerequisite, workspace_root};

/// The kernel command line. `panic=-1` reboots at once on a panic, which
/// `-no-reboot` turns into QEMU's exit; `crashkernel=` reserves memory so
/// that the guest is ready for kdump.
pub const KERNEL_CMDLINE: &str = "console=ttyS0 panic=-1 quiet crashkernel=128M";

/// How many lines of the console an error shows.
pub const CONSOLE_TAIL_LINES: usize = 40;

/// Guests boot one at a time: two TCG guests on a 2-core machine would each
/// run at half speed and blur every deadline.
static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());
static RUN_NUMBER: AtomicU32 = AtomicU32::new(0);

/// How a guest's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every command ran and the guest powered off.
    Completed,
    /// The guest kernel panicked.
    Panicked,
    /// The deadline passed and the guest was killed.
    TimedOut(Duration),
    /// QEMU ended before the batch did, for another reason.
    Stopped(String),
}

impl Outcome {
    fn explain(&self) -> String {
        match self {
            Outcome::Completed => "the batch completed".into(),
            Outcome::Panicked => "the guest kernel panicked".into(),
            Outcome::TimedOut(after) => {
                format!(
                    "the guest was killed at its deadline, after {} s",
                    after.as_secs()
                )
            }
            Outcome::Stopped(why) => format!("the guest stopped early: {why}"),
        }
    }
}

/// What a batch left behind.
#[derive(Debug, Clone)]
pub struct Batch {
    /// How the run ended.
    pub outcome: Outcome,
    /// What each command did.
    pub results: ResultStream,
    /// Everything the guest printed on its console.
    pub console: String,
    /// The run's directory (initrd, console, results, QEMU's own log).
    pub run_dir: PathBuf,
    /// From QEMU's start to its end.
    pub elapsed: Duration,
}

impl Batch {
    /// The last `lines` lines of the console.
    pub fn console_tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.console.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How the batch ended, with the kernel's own panic line when it
    /// panicked: the console's tail may be all call trace.
    fn explain(&self) -> String {
        let outcome = self.outcome.explain();
        let panic_line = self
            .console
            .lines()
            .find(|l| l.contains("Kernel panic - not syncing"))
            .filter(|_| self.outcome == Outcome::Panicked);
        match panic_line {
            Some(line) => format!("{outcome} ({})", line.trim()),
            None => outcome,
        }
    }

    /// A command's result, whatever it was.
    pub fn result(&self, name: &str) -> Option<&CommandResult> {
        self.results.get(name)
    }

    /// The result of a command that ran to the end with status 0; otherwise
    /// an error saying what happened instead, with its stderr and the end
    /// of the console.
    pub fn success(&self, name: &str) -> Result<&CommandResult> {
        let result = self.result(name);
        let detail = match result.map(|r| r.status) {
            Some(Some(0)) => return result.ok_or_else(|| unreachable_result(name)),
            Some(Some(status)) => format!("exited with status {status}"),
            Some(None) => format!("started but never finished: {}", self.explain()),
            None => format!("never started: {}", self.explain()),
        };
        Err(LabError::Command {
            name: name.to_string(),
            detail,
            stderr: result.map(CommandResult::stderr_text).unwrap_or_default(),
            console_tail: self.console_tail(CONSOLE_TAIL_LINES),
        })
    }
}

fn unreachable_result(name: &str) -> LabError {
    LabError::Command {
        name: name.to_string(),
        detail: "vanished from the results".into(),
        stderr: String::new(),
        console_tail: String::new(),
    }
}

/// A prepared lab: a kernel, static kscope binaries, and the base
/// initramfs built from them.
#[derive(Debug)]
pub struct Lab {
    kernel: DebianKernel,
    binaries: StaticBinaries,
    base: Vec<u8>,
    dir: PathBuf,
}

impl Lab {
    /// Fetches the kernel (or finds it cached under target/lab/kernel),
    /// builds the static binaries and the base initramfs.
    pub fn prepare() -> Result<Lab> {
        if let Some(missing) = missing_prerequisite() {
            return Err(missing);
        }
        let dir = workspace_root().join("target/lab");
        let kernel = DebianKernel::fetch(&dir.join("kernel"))?;
        let binaries = build_static(workspace_root())?;
        let base = initramfs::base(&kernel, &binaries)?;
        Ok(Lab {
            kernel,
            binaries,
            base,
            dir,
        })
    }

    /// The guest's kernel.
    pub fn kernel(&self) -> &DebianKernel {
        &self.kernel
    }

    /// The static binaries put into the guest.
    pub fn binaries(&self) -> &StaticBinaries {
        &self.binaries
    }

    /// Boots a guest that runs `commands` in order and powers off; kills
    /// it at `deadline`. Errors only when the guest could not be started;
    /// how it ended is in the batch.
    pub fn run(&self, name: &str, commands: &[GuestCommand], deadline: Duration) -> Result<Batch> {
        let _one = ONE_GUEST_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let run_dir = self.dir.join("runs").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            RUN_NUMBER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&run_dir).map_err(LabError::io(&run_dir))?;
        let nonce = nonce();
        let initrd = self.initrd(&run_dir, &nonce, Mode::Batch, commands)?;
        let console_path = run_dir.join("console.log");
        let results_path = run_dir.join("results.raw");
        let log_path = run_dir.join("qemu.log");
        let mut command = self.qemu(&initrd);
        command
            .arg("-chardev")
            .arg(format!("file,id=console,path={}", console_path.display()))
            .args(["-serial", "chardev:console"])
            .arg("-chardev")
            .arg(format!("file,id=results,path={}", results_path.display()))
            .args(["-serial", "chardev:results"])
            .stdin(Stdio::null())
            .stdout(File::create(&log_path).map_err(LabError::io(&log_path))?)
            .stderr(File::create(&log_path).map_err(LabError::io(&log_path))?);
        std::fs::write(run_dir.join("qemu.cmdline"), describe(&command))
            .map_err(LabError::io(&run_dir))?;

        let started = Instant::now();
        let mut guest = RunningGuest::spawn(&mut command)?;
        let status = guest.wait_until(started + deadline)?;
        let elapsed = started.elapsed();

        let console = read_lossy(&console_path);
        let results = results::parse(&std::fs::read(&results_path).unwrap_or_default(), &nonce);
        let outcome = match status {
            None => Outcome::TimedOut(elapsed),
            Some(_) if console.contains("Kernel panic") => Outcome::Panicked,
            Some(status) if status.success() && results.done => Outcome::Completed,
            Some(status) => Outcome::Stopped(format!(
                "QEMU {status}; its log: {}",
                read_lossy(&log_path).trim()
            )),
        };
        Ok(Batch {
            outcome,
            results,
            console,
            run_dir,
            elapsed,
        })
    }

    /// Boots a guest with a shell on this terminal, until the person in it
    /// powers it off (`poweroff -f`) or leaves QEMU (Ctrl-A X).
    pub fn shell(&self) -> Result<ExitStatus> {
        let run_dir = self
            .dir
            .join("runs")
            .join(format!("shell-{}", std::process::id()));
        std::fs::create_dir_all(&run_dir).map_err(LabError::io(&run_dir))?;
        let initrd = self.initrd(&run_dir, &nonce(), Mode::Shell, &[])?;
        let mut command = self.qemu(&initrd);
        command.args(["-serial", "mon:stdio"]);
        sys::die_with_parent(&mut command);
        command.status().map_err(|err| LabError::Tool {
            what: describe(&command),
            detail: err.to_string(),
        })
    }

    fn initrd(
        &self,
        run_dir: &Path,
        nonce: &str,
        mode: Mode,
        commands: &[GuestCommand],
    ) -> Result<PathBuf> {
        let mut bytes = self.base.clone();
        bytes.extend(initramfs::batch(nonce, mode, commands)?);
        let path = run_dir.join("initrd.img");
        std::fs::write(&path, bytes).map_err(LabError::io(&path))?;
        Ok(path)
    }

    /// QEMU with everything but the serial ports. TCG, not KVM: /dev/kvm
    /// on our development machines is a nested hypervisor on which
    /// Debian's kernel hangs at boot.
    fn qemu(&self, initrd: &Path) -> Command {
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args([
                "-machine",
                "q35,accel=tcg",
                "-cpu",
                "max",
                "-smp",
                "2",
                "-m",
                "1024",
            ])
            .args(["-display", "none", "-no-reboot", "-nic", "none"])
            .args(["-device", "vmcoreinfo", "-device", "pvpanic"])
            .args(["-action", "panic=exit-failure"])
            .arg("-kernel")
            .arg(self.kernel.vmlinuz())
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", KERNEL_CMDLINE]);
        command
    }
}

/// A random token from the kernel, to tell this run's result lines from
/// anything else on the port.
fn nonce() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|u| u.trim().replace('-', ""))
        .unwrap_or_else(|_| {
            format!(
                "{}x{}",
                std::process::id(),
                RUN_NUMBER.load(Ordering::Relaxed)
            )
        })
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// A QEMU process that is killed when dropped, so that no guest outlives
/// a failing test.
struct RunningGuest {
    child: Child,
    finished: bool,
}

impl RunningGuest {
    fn spawn(command: &mut Command) -> Result<RunningGuest> {
        sys::die_with_parent(command);
        let child = command.spawn().map_err(|err| LabError::Tool {
            what: describe(command),
            detail: err.to_string(),
        })?;
        Ok(RunningGuest {
            child,
            finished: false,
        })
    }

    /// Waits for QEMU to end; at `deadline`, kills it and returns `None`.
    fn wait_until(&mut self, deadline: Instant) -> Result<Option<ExitStatus>> {
        loop {
            let polled = self.child.try_wait().map_err(|err| LabError::Tool {
                what: "waiting for QEMU".into(),
                detail: err.to_string(),
            })?;
            if let Some(status) = polled {
                self.finished = true;
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished = true;
    }
}

impl Drop for RunningGuest {
    fn drop(&mut self) {
        if !self.finished {
            self.kill();
        }
    }
}
