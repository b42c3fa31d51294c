//! `kscope-lab` (run it through `scripts/lab`): kscope in a guest running
//! Debian's own kernel, for trying what this machine's kernel lacks
//! (kprobes, the function tracer, /proc/kcore, kdump).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kscope_lab::{GuestCommand, Lab, Outcome};

/// kscope in a QEMU guest running Debian's own kernel.
///
/// The first run downloads the kernel package with apt-get (about 70 MB,
/// cached under target/lab/kernel) and builds static kscope binaries
/// (cached under target/lab/static). A guest boots in about 5 seconds
/// under software emulation.
#[derive(Debug, Parser)]
#[command(name = "kscope-lab")]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// An interactive shell in a guest, with kscope on PATH.
    ///
    /// The kernel has kprobes, the function tracer, /proc/kcore and a crash
    /// kernel reservation. Leave with `poweroff -f`, or Ctrl-A X.
    Shell,
    /// Run commands in one guest and print what each printed.
    ///
    /// Each argument is one shell command. The exit status is 0 when every
    /// command exited 0.
    Run {
        /// Kill the guest after this many seconds.
        #[arg(long, default_value_t = 300)]
        deadline: u64,
        /// The commands, e.g. 'kscope doctor' 'cat /proc/cmdline'.
        #[arg(required = true)]
        commands: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kscope-lab: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    eprintln!("kscope-lab: preparing the guest (kernel package, static binaries, initramfs)...");
    let lab = Lab::prepare()?;
    eprintln!(
        "kscope-lab: kernel {} from {}",
        lab.kernel().release,
        lab.kernel().package
    );
    match cli.command {
        Action::Shell => {
            let status = lab.shell()?;
            Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Action::Run { deadline, commands } => {
            let batch: Vec<GuestCommand> = commands
                .iter()
                .enumerate()
                .map(|(i, script)| GuestCommand::new(format!("command-{}", i + 1), script.clone()))
                .collect();
            let result = lab.run("cli", &batch, Duration::from_secs(deadline))?;
            let mut all_ok = result.outcome == Outcome::Completed;
            for (command, script) in batch.iter().zip(&commands) {
                println!("$ {script}");
                match result.result(&command.name) {
                    Some(r) => {
                        print!("{}", r.stdout_text());
                        eprint!("{}", r.stderr_text());
                        match r.status {
                            Some(0) => {}
                            Some(status) => {
                                println!("[exit status {status}]");
                                all_ok = false;
                            }
                            None => {
                                println!("[did not finish]");
                                all_ok = false;
                            }
                        }
                    }
                    None => {
                        println!("[did not run]");
                        all_ok = false;
                    }
                }
            }
            if result.outcome != Outcome::Completed {
                eprintln!(
                    "kscope-lab: {:?}; the console's last lines:\n{}",
                    result.outcome,
                    result.console_tail(kscope_lab::CONSOLE_TAIL_LINES)
                );
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
