//! `kscope crash`: a kernel crash dump read with nothing but the dump.
//!
//! `kscope crash VMCORE CMD [ARGS]` runs one command; `kscope crash VMCORE`
//! opens a shell (line editing and history on a terminal; one command a
//! line from a pipe). The dump's own VMCOREINFO, kallsyms and BTF give the
//! symbols and types; a System.map given with `-s` replaces kallsyms.
//!
//! This module parses arguments and each command line (clap, so each
//! command has its usage and `--help`), runs the shell, and calls one
//! method of the session's [`Kernel`] per command; `render::crash`
//! prints the reply.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use clap::error::ErrorKind;
use kscope_kernel::commands::{BacktraceOf, LogReport, MAX_COUNT};
use kscope_kernel::{Kernel, SymbolSource};
use kscope_vmcore::Vmcore;

use crate::render;
use crate::render::crash::Reply;

/// Arguments of `kscope crash`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = COMMANDS_HELP)]
pub struct Args {
    /// The dump: an ELF vmcore (/proc/vmcore saved by kdump, QEMU's
    /// dump-guest-memory), a kdump-compressed file (makedumpfile), or
    /// makedumpfile's flattened stream.
    vmcore: PathBuf,

    /// A command and its arguments (see below); without one, a shell.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,

    /// Take the kernel's symbols from this System.map (moved by the dump's
    /// KASLR offset) instead of the kallsyms tables in the dump.
    #[arg(
        short = 's',
        long,
        value_name = "SYSTEM_MAP",
        conflicts_with = "vmlinux"
    )]
    system_map: Option<PathBuf>,

    /// Take the kernel's symbols from this vmlinux (its .symtab), after
    /// checking its build-id against the dump's.
    #[arg(long, value_name = "VMLINUX")]
    vmlinux: Option<PathBuf>,

    /// Print the command's result as one JSON document (with a command
    /// only).
    #[arg(long)]
    json: bool,
}

const COMMANDS_HELP: &str = "\
Commands:
  sys                 the crashed system: CPUs, date, uptime, release, memory, panic
  log                 the kernel's printk log, as dmesg prints it
  ps                  every task: pid, ppid, CPU, task address, state, memory, name
                      (\">\" marks each CPU's current task)
  bt [PID|TASK|-a]    the kernel stack of a task (default: the one that panicked),
                      or of every CPU's current task (-a)
  mod                 the loaded modules: address, name, base, size
  task [PID|TASK]     a task's task_struct, every member (default: the one that panicked)
  files [PID|TASK]    a task's root, working directory and open files with their paths
  vm [PID|TASK]       a task's memory map: each VMA's start, end, flags and file
  kmem -i             memory: total, free, used, shared, buffers, cache, slab, huge pages,
                      swap, commit limit
  struct TYPE [ADDR|SYMBOL]
                      a struct's layout, or the one at ADDR, from the kernel's BTF
  sym ADDR|NAME       the symbol at an address, or a symbol's address
  rd [-p] ADDR|NAME [COUNT]
                      memory as 64-bit words (-p: a physical address)
  dis ADDR|NAME [COUNT]
                      x86-64 disassembly (a whole function by name)
  help                this list
  quit                leave the shell

Examples:
  kscope crash /var/crash/vmcore sym sysrq_handle_crash
  kscope crash vmcore.kdump --json sys
  kscope crash vmcore                  # a shell";

/// Runs `kscope crash`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    super::input::check_file(&args.vmcore, &super::input::VMCORE)?;
    let dump = Vmcore::open(&args.vmcore)
        .with_context(|| format!("cannot read the dump {}", args.vmcore.display()))?;
    let source = match (&args.system_map, &args.vmlinux) {
        (Some(path), _) => SymbolSource::SystemMap(path.clone()),
        (None, Some(path)) => SymbolSource::Vmlinux(path.clone()),
        (None, None) => SymbolSource::Kallsyms,
    };
    let kernel = Kernel::open(&dump, source)?;
    let session = Session {
        kernel,
        json: args.json,
    };
    if args.command.is_empty() {
        if args.json {
            bail!("--json needs a command (`kscope crash VMCORE --json sys`)");
        }
        return session.shell();
    }
    let reply = session.run(&args.command)?;
    if args.json {
        render::json::print(&render::crash::json(&reply)?)?;
    } else {
        print!("{}", render::crash::text(&reply));
    }
    Ok(ExitCode::SUCCESS)
}

/// A command line of the shell (or of `kscope crash VMCORE CMD ...`),
/// its first word the command.
#[derive(Debug, clap::Parser)]
#[command(multicall = true, disable_help_subcommand = true)]
struct Line {
    #[command(subcommand)]
    command: Command,
}

/// crash's commands, as `help` lists them.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The crashed system: CPUs, date, uptime, release, memory, panic.
    Sys,
    /// The kernel's printk log, as dmesg prints it.
    Log,
    /// Every task: pid, ppid, CPU, task address, state, memory, name
    /// (">" marks each CPU's current task).
    Ps,
    /// The kernel stack of a task (default: the one that panicked), or of
    /// every CPU's current task (-a).
    Bt {
        /// Every CPU's current task.
        #[arg(short = 'a', conflicts_with = "task")]
        all: bool,
        /// A pid, or a task_struct's address.
        #[arg(value_name = "PID|TASK")]
        task: Option<String>,
    },
    /// The loaded modules: address, name, base, size.
    Mod,
    /// A task's task_struct, every member (default: the one that
    /// panicked).
    Task {
        /// A pid, or a task_struct's address.
        #[arg(value_name = "PID|TASK")]
        task: Option<String>,
    },
    /// A task's root, working directory and open files with their paths.
    Files {
        /// A pid, or a task_struct's address.
        #[arg(value_name = "PID|TASK")]
        task: Option<String>,
    },
    /// A task's memory map: each VMA's start, end, flags and file.
    Vm {
        /// A pid, or a task_struct's address.
        #[arg(value_name = "PID|TASK")]
        task: Option<String>,
    },
    /// Memory: total, free, used, shared, buffers, cache, slab, huge
    /// pages, swap, commit limit (-i; the other kmem views are not there
    /// yet).
    Kmem {
        /// The memory summary.
        #[arg(short = 'i', required = true)]
        info: bool,
    },
    /// A struct's layout, or the one at ADDR, from the kernel's BTF.
    Struct {
        /// The struct's name (`task_struct`, `list_head`...).
        #[arg(value_name = "TYPE")]
        name: String,
        /// Its address: hex, or a symbol.
        #[arg(value_name = "ADDR|SYMBOL")]
        address: Option<String>,
    },
    /// The symbol at an address, or a symbol's address.
    Sym {
        /// An address (hex) or a symbol's name.
        #[arg(value_name = "ADDR|NAME")]
        word: String,
    },
    /// Memory as 64-bit words.
    Rd {
        /// ADDR is a physical address.
        #[arg(short = 'p')]
        physical: bool,
        /// An address (hex) or a symbol's name.
        #[arg(value_name = "ADDR|NAME")]
        word: String,
        /// How many words (decimal, or hex with 0x): 1 to 65536.
        #[arg(value_name = "COUNT", value_parser = parse_count)]
        count: Option<u64>,
    },
    /// x86-64 disassembly (a whole function by name).
    Dis {
        /// An address (hex) or a symbol's name.
        #[arg(value_name = "ADDR|NAME")]
        word: String,
        /// How many instructions (decimal, or hex with 0x): 1 to 65536.
        #[arg(value_name = "COUNT", value_parser = parse_count)]
        count: Option<u64>,
    },
    /// This list.
    #[command(alias = "?")]
    Help,
}

/// What a command line asks for: a command to run, or text clap made
/// (a command's `--help`).
#[derive(Debug)]
enum Parsed {
    Command(Command),
    Help(String),
}

/// Parses a command line's words, the first the command.
fn parse(words: &[String]) -> anyhow::Result<Parsed> {
    match Line::try_parse_from(words) {
        Ok(line) => Ok(Parsed::Command(line.command)),
        Err(err) => match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Parsed::Help(
                err.render().to_string().trim_end().to_string(),
            )),
            ErrorKind::InvalidSubcommand => {
                let name = words.first().map_or("", String::as_str);
                bail!("no command {name:?}: `help` lists them")
            }
            _ => {
                let text = err.render().to_string();
                bail!(
                    "{}",
                    text.trim_start_matches("error: ")
                        .trim_end()
                        .trim_end_matches("For more information, try '--help'.")
                        .trim_end()
                )
            }
        },
    }
}

/// A count argument: decimal, or hex with 0x; 1 to [`MAX_COUNT`].
fn parse_count(word: &str) -> Result<u64, String> {
    let count = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    }
    .map_err(|_| format!("{word:?} is not a count"))?;
    if count == 0 || count > MAX_COUNT {
        return Err(format!("a count is 1 to {MAX_COUNT}"));
    }
    Ok(count)
}

/// The kernel and how replies are printed.
struct Session<'a> {
    kernel: Kernel<'a>,
    /// Whether replies are printed as JSON: `log` then reads the BTF for
    /// the records' levels, which the text does not show.
    json: bool,
}

impl Session<'_> {
    /// Runs one command line's command.
    fn run(&self, words: &[String]) -> anyhow::Result<Reply> {
        let command = match parse(words)? {
            Parsed::Command(command) => command,
            Parsed::Help(help) => return Ok(Reply::Help { help }),
        };
        let kernel = &self.kernel;
        Ok(match command {
            Command::Sys => Reply::System(Box::new(kernel.system()?)),
            Command::Log => Reply::Log(LogReport(kernel.log(self.json)?)),
            Command::Ps => Reply::Tasks(kernel.ps()?),
            Command::Bt { all, task } => {
                Reply::Backtraces(kernel.backtraces(match (all, &task) {
                    (true, _) => BacktraceOf::EveryCpu,
                    (false, Some(word)) => BacktraceOf::Named(word),
                    (false, None) => BacktraceOf::Panicked,
                })?)
            }
            Command::Mod => Reply::Modules(kernel.modules()?),
            Command::Task { task } => Reply::Task(kernel.task_struct(task.as_deref())?),
            Command::Files { task } => Reply::Files(kernel.files(task.as_deref())?),
            Command::Vm { task } => Reply::Vm {
                report: kernel.vm(task.as_deref())?,
                page_size: kernel.dump().page_size(),
            },
            Command::Kmem { .. } => Reply::MemoryInfo(kernel.memory_info()?),
            Command::Struct { name, address } => {
                Reply::Struct(kernel.structure(&name, address.as_deref())?)
            }
            Command::Sym { word } => Reply::Symbol(kernel.symbol(&word)?),
            Command::Rd {
                physical,
                word,
                count,
            } => Reply::Words(kernel.read_words(&word, count.unwrap_or(1), physical)?),
            Command::Dis { word, count } => Reply::Disassembly(kernel.disassemble(&word, count)?),
            Command::Help => Reply::Help {
                help: COMMANDS_HELP.to_string(),
            },
        })
    }

    /// The interactive shell: a prompt with line editing on a terminal,
    /// else one command a line from stdin.
    fn shell(&self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::stdout();
        if !std::io::stdin().is_terminal() {
            for line in std::io::stdin().lines() {
                if !self.shell_line(&line?, &mut out)? {
                    break;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut editor = rustyline::DefaultEditor::new()?;
        println!(
            "kscope crash: {:?} dump ({}); `help` lists the commands.",
            self.kernel.dump().format(),
            self.kernel.source().describe()
        );
        loop {
            match editor.readline("crash> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        editor.add_history_entry(line.as_str())?;
                    }
                    if !self.shell_line(&line, &mut out)? {
                        break;
                    }
                }
                // Ctrl-C drops the line; Ctrl-D leaves.
                Err(rustyline::error::ReadlineError::Interrupted) => {}
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Runs one shell line; `false` to leave.
    fn shell_line(&self, line: &str, out: &mut impl Write) -> anyhow::Result<bool> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let Some(name) = words.first() else {
            return Ok(true);
        };
        if matches!(name.as_str(), "quit" | "exit" | "q") {
            return Ok(false);
        }
        match self.run(&words) {
            Ok(reply) => out.write_all(render::crash::text(&reply).as_bytes())?,
            Err(err) => writeln!(out, "{name}: {err:#}")?,
        }
        out.flush()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn command(line: &str) -> Command {
        match parse(&words(line)) {
            Ok(Parsed::Command(command)) => command,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse(&words(line)) {
            Err(err) => err.to_string(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn each_command_parses_its_arguments() {
        assert!(matches!(
            command("bt"),
            Command::Bt {
                all: false,
                task: None
            }
        ));
        assert!(matches!(
            command("bt -a"),
            Command::Bt {
                all: true,
                task: None
            }
        ));
        assert!(
            matches!(command("bt 0xffff888003a1c000"), Command::Bt { all: false, task: Some(t) } if t == "0xffff888003a1c000")
        );
        assert!(matches!(command("kmem -i"), Command::Kmem { info: true }));
        assert!(
            matches!(command("rd -p 1000 0x10"), Command::Rd { physical: true, word, count: Some(16) } if word == "1000")
        );
        assert!(
            matches!(command("struct task_struct init_task"), Command::Struct { name, address: Some(a) } if name == "task_struct" && a == "init_task")
        );
        assert!(matches!(command("?"), Command::Help));
        assert!(matches!(command("help"), Command::Help));
    }

    #[test]
    fn help_is_text_to_print_with_the_usage() {
        for line in ["bt --help", "sym -h", "rd --help"] {
            let Ok(Parsed::Help(help)) = parse(&words(line)) else {
                panic!("{line}: no help");
            };
            let name = line.split(' ').next().unwrap_or_default();
            assert!(help.contains(&format!("Usage: {name} ")), "{help}");
        }
        let Ok(Parsed::Help(help)) = parse(&words("bt --help")) else {
            panic!("bt --help");
        };
        assert!(
            help.contains("[PID|TASK]") && help.contains("-a "),
            "{help}"
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong_and_the_usage() {
        let err = error("sym");
        assert!(
            err.contains("<ADDR|NAME>") && err.contains("Usage: sym <ADDR|NAME>"),
            "{err}"
        );
        let err = error("bt -a 1");
        assert!(err.contains("'-a' cannot be used with"), "{err}");
        let err = error("kmem");
        assert!(
            err.contains("-i") && err.contains("Usage: kmem -i"),
            "{err}"
        );
        let err = error("sys extra");
        assert!(err.starts_with("unexpected argument 'extra'"), "{err}");
        assert!(!err.contains("For more information"), "{err}");
        let err = error("dis panic 0");
        assert!(err.contains("a count is 1 to 65536"), "{err}");
        let err = error("rd linux_banner ten");
        assert!(err.contains("\"ten\" is not a count"), "{err}");
    }

    #[test]
    fn an_unknown_command_points_at_help() {
        assert_eq!(
            error("frobnicate 1"),
            "no command \"frobnicate\": `help` lists them"
        );
    }

    #[test]
    fn counts_are_decimal_or_0x_hex_within_the_limit() {
        assert_eq!(parse_count("16"), Ok(16));
        assert_eq!(parse_count("0x10"), Ok(16));
        assert_eq!(parse_count("65536"), Ok(MAX_COUNT));
        assert!(parse_count("65537").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_count("-1").is_err());
    }
}
