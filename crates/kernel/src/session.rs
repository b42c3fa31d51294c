//! [`Kernel`]: a dump opened once for a session of commands, as drgn's
//! `Program` is. It decides where the kernel's symbols come from (the
//! kallsyms tables in the dump, a System.map, or a vmlinux whose
//! build-id is checked; VMCOREINFO's `SYMBOL()`s added to each) and reads
//! them, and the BTF, at the first command that needs them, once: every
//! later command of the session uses the same table and the same parsed
//! [`Btf`].

use std::cell::OnceCell;
use std::path::PathBuf;

use kscope_btf::Btf;
use kscope_vmcore::{KernelMemory, Vmcore, VmcoreInfo};

use crate::log::{Log, read_log};
use crate::tasks::{Task, TaskList, read_tasks};
use crate::{Error, KernelSymbol, SymbolTable, read_btf, read_kallsyms};

/// Where the kernel's symbols come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolSource {
    /// The kallsyms tables in the dump's memory.
    Kallsyms,
    /// A System.map, moved by the dump's KASLR offset.
    SystemMap(PathBuf),
    /// A vmlinux's `.symtab`, after checking its build-id against the
    /// dump's.
    Vmlinux(PathBuf),
}

impl SymbolSource {
    /// Where the symbols come from, as `sys` names it: the file's path,
    /// or `kallsyms in the dump`.
    pub fn describe(&self) -> String {
        match self {
            SymbolSource::Kallsyms => "kallsyms in the dump".to_string(),
            SymbolSource::SystemMap(path) | SymbolSource::Vmlinux(path) => {
                path.display().to_string()
            }
        }
    }
}

self_cell::self_cell!(
    /// The kernel's BTF blob with the view parsed over it.
    struct ParsedBtf {
        owner: Vec<u8>,
        #[covariant]
        dependent: Btf,
    }
);

/// A crashed kernel: its dump, where its symbols come from, and the
/// symbols and BTF once read.
pub struct Kernel<'a> {
    dump: &'a Vmcore,
    info: &'a VmcoreInfo,
    memory: KernelMemory<'a>,
    source: SymbolSource,
    /// Read at the first command that needs them (`log` does not); the
    /// error says why there are none.
    symbols: OnceCell<Result<SymbolTable, String>>,
    /// Read and parsed at the first command that needs types.
    btf: OnceCell<Result<ParsedBtf, String>>,
}

impl<'a> Kernel<'a> {
    /// Opens the kernel in `dump`, its symbols to be taken from `source`.
    /// Nothing but VMCOREINFO and the address translation is read yet.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the dump has no VMCOREINFO note, and
    /// [`Error::Translation`] when its kernel addresses cannot be
    /// translated.
    pub fn open(dump: &'a Vmcore, source: SymbolSource) -> Result<Kernel<'a>, Error> {
        let info = dump.vmcoreinfo().ok_or_else(|| {
            Error::Corrupt(
                "the dump has no VMCOREINFO note, which kscope needs to find the kernel in it"
                    .into(),
            )
        })?;
        let memory = KernelMemory::new(dump).map_err(Error::Translation)?;
        Ok(Kernel {
            dump,
            info,
            memory,
            source,
            symbols: OnceCell::new(),
            btf: OnceCell::new(),
        })
    }

    /// The dump.
    pub fn dump(&self) -> &'a Vmcore {
        self.dump
    }

    /// The dump's VMCOREINFO.
    pub fn info(&self) -> &'a VmcoreInfo {
        self.info
    }

    /// The kernel's virtual memory.
    pub fn memory(&self) -> &KernelMemory<'a> {
        &self.memory
    }

    /// Where the symbols come from.
    pub fn source(&self) -> &SymbolSource {
        &self.source
    }

    /// The kernel's symbols, read at the first call: from the System.map
    /// (moved by the KASLR offset) or the vmlinux, else decoded from
    /// kallsyms; checked against VMCOREINFO's `SYMBOL()`s (a file of
    /// another build, or a wrong KASLR offset, is refused), which are
    /// then added where the table lacks them.
    ///
    /// # Errors
    ///
    /// [`Error::Earlier`] with why the symbols could not be read, the
    /// same at every call.
    pub fn symbols(&self) -> Result<&SymbolTable, Error> {
        self.symbols
            .get_or_init(|| self.read_symbols().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::Earlier(e.clone()))
    }

    fn read_symbols(&self) -> Result<SymbolTable, Error> {
        let offset = self.info.kernel_offset().unwrap_or(0);
        let table = match &self.source {
            SymbolSource::SystemMap(path) => SymbolTable::read_system_map(path, offset)?,
            SymbolSource::Vmlinux(path) => {
                SymbolTable::read_vmlinux(path, offset, self.info.build_id().as_deref())?
            }
            SymbolSource::Kallsyms => read_kallsyms(&self.memory, self.info).map_err(|e| {
                Error::Corrupt(format!(
                    "cannot decode the kernel's symbols from the dump ({e}); give a System.map with -s"
                ))
            })?,
        };
        table.check_against(&vmcoreinfo_symbols(self.info))?;
        Ok(with_vmcoreinfo_symbols(table, self.info))
    }

    /// The kernel's BTF, read and parsed at the first call.
    ///
    /// # Errors
    ///
    /// [`Error::Earlier`] with why there is none (no symbols, no BTF in
    /// the kernel, or a blob that does not parse), the same at every
    /// call.
    pub fn btf(&self) -> Result<&Btf<'_>, Error> {
        self.btf
            .get_or_init(|| {
                let blob = self
                    .symbols()
                    .and_then(|symbols| read_btf(&self.memory, symbols))
                    .map_err(|e| format!("the dump's BTF cannot be read: {e}"))?;
                ParsedBtf::try_new(blob, |blob| Btf::parse(blob))
                    .map_err(|e| format!("the dump's BTF: {e}"))
            })
            .as_ref()
            .map(ParsedBtf::borrow_dependent)
            .map_err(|e| Error::Earlier(e.clone()))
    }

    /// The printk log; with `levels`, read with the BTF when there is one
    /// (the records' levels and facilities), else with VMCOREINFO alone,
    /// which needs no symbols.
    ///
    /// # Errors
    ///
    /// As [`read_log`], in the context `cannot read the kernel's log`.
    pub fn log(&self, levels: bool) -> Result<Log, Error> {
        let btf = if levels { self.btf().ok() } else { None };
        read_log(&self.memory, self.info, btf)
            .map_err(|e| e.context("cannot read the kernel's log"))
    }

    /// Every task.
    ///
    /// # Errors
    ///
    /// As [`Kernel::btf`] and [`read_tasks`], in the context `cannot read
    /// the task list`.
    pub fn tasks(&self) -> Result<TaskList, Error> {
        let btf = self.btf()?;
        read_tasks(&self.memory, self.symbols()?, btf)
            .map_err(|e| e.context("cannot read the task list"))
    }

    /// An address given as a symbol name or as hex (with or without
    /// `0x`).
    ///
    /// # Errors
    ///
    /// As [`Kernel::symbols`], and [`Error::Argument`] when `word` is
    /// neither.
    pub fn address(&self, word: &str) -> Result<u64, Error> {
        if let Some(address) = self.symbols()?.address(word) {
            return Ok(address);
        }
        parse_hex(word).ok_or_else(|| {
            Error::Argument(format!("{word:?} is neither a symbol nor a hex address"))
        })
    }

    /// `name+0xoff` for an address, or the address alone.
    pub fn describe(&self, address: u64) -> String {
        match self
            .symbols()
            .ok()
            .and_then(|symbols| symbols.lookup(address))
        {
            Some((symbol, 0)) => symbol.name.clone(),
            Some((symbol, offset)) => format!("{}+{offset:#x}", symbol.name),
            None => format!("{address:#x}"),
        }
    }

    /// The tasks a `PID|TASK` word names: every task of a pid (decimal;
    /// the idle tasks share pid 0), or the task whose `task_struct` is at
    /// an address (hex, or a symbol).
    ///
    /// # Errors
    ///
    /// As [`Kernel::address`].
    pub fn tasks_named<'l>(&self, list: &'l TaskList, word: &str) -> Result<Vec<&'l Task>, Error> {
        Ok(match word.parse::<i32>() {
            Ok(pid) if !word.starts_with("0x") => list.with_pid(pid).collect(),
            _ => list.at(self.address(word)?).into_iter().collect(),
        })
    }

    /// The task an optional `PID|TASK` word names (the first of a pid),
    /// by default the one that panicked, else CPU 0's current task.
    ///
    /// # Errors
    ///
    /// [`Error::Argument`] when no task is so named, or none panicked and
    /// CPU 0 has none.
    pub fn task<'l>(&self, list: &'l TaskList, word: Option<&str>) -> Result<&'l Task, Error> {
        let Some(word) = word else {
            return list
                .panic_task()
                .or_else(|| list.current_on(0))
                .ok_or_else(|| {
                    Error::Argument("no task panicked and CPU 0 has no current task".into())
                });
        };
        self.tasks_named(list, word)?
            .first()
            .copied()
            .ok_or_else(|| {
                Error::Argument(format!("no task {word} (a pid, or a task_struct address)"))
            })
    }
}

/// A hex number, with or without `0x`.
pub(crate) fn parse_hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x").unwrap_or(word), 16).ok()
}

/// The `SYMBOL()` entries of VMCOREINFO that are symbol addresses
/// (`mem_section` is the pointer's value).
fn vmcoreinfo_symbols(info: &VmcoreInfo) -> Vec<(String, u64)> {
    info.entries()
        .filter_map(|(key, _)| key.strip_prefix("SYMBOL(")?.strip_suffix(')'))
        .filter(|name| *name != "mem_section")
        .filter_map(|name| Some((name.to_string(), info.symbol(name)?)))
        .collect()
}

/// `symbols` and the `SYMBOL()` entries of VMCOREINFO it lacks: kallsyms
/// leaves out its own tables (`kallsyms_names`...), which VMCOREINFO
/// names. Their kind is unknown: `?`.
fn with_vmcoreinfo_symbols(symbols: SymbolTable, info: &VmcoreInfo) -> SymbolTable {
    let extra: Vec<KernelSymbol> = vmcoreinfo_symbols(info)
        .into_iter()
        .filter(|(name, _)| symbols.address(name).is_none())
        .map(|(name, address)| KernelSymbol {
            name,
            address,
            kind: '?',
        })
        .collect();
    if extra.is_empty() {
        return symbols;
    }
    let mut all = symbols.symbols().to_vec();
    all.extend(extra);
    SymbolTable::new(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "OSRELEASE=6.1.0\nSYMBOL(init_uts_ns)=ffffffff82a0b2e0\n\
        SYMBOL(kallsyms_names)=ffffffff82400000\nSYMBOL(mem_section)=ffff888007ffb000\n";

    fn table() -> SymbolTable {
        SymbolTable::new(vec![KernelSymbol {
            name: "init_uts_ns".into(),
            address: 0xffff_ffff_82a0_b2e0,
            kind: 'D',
        }])
    }

    #[test]
    fn vmcoreinfo_adds_the_symbols_kallsyms_lacks_but_not_mem_section() {
        let info = VmcoreInfo::parse(INFO);
        let symbols = with_vmcoreinfo_symbols(table(), &info);
        assert_eq!(symbols.len(), 2);
        assert_eq!(symbols.get("init_uts_ns").map(|s| s.kind), Some('D'));
        let names = symbols.get("kallsyms_names").expect("added");
        assert_eq!((names.address, names.kind), (0xffff_ffff_8240_0000, '?'));
        assert_eq!(symbols.address("mem_section"), None);
    }

    #[test]
    fn a_table_that_disagrees_with_vmcoreinfo_is_refused() {
        let info = VmcoreInfo::parse(&INFO.replace("ffffffff82a0b2e0", "ffffffff82a0b2f0"));
        let err = table()
            .check_against(&vmcoreinfo_symbols(&info))
            .expect_err("moved");
        assert!(err.to_string().contains("do not match"), "{err}");
    }

    #[test]
    fn hex_words_take_an_optional_0x() {
        assert_eq!(parse_hex("0xff"), Some(255));
        assert_eq!(parse_hex("ff"), Some(255));
        assert_eq!(parse_hex("xyz"), None);
    }

    #[test]
    fn the_source_is_named_as_sys_names_it() {
        assert_eq!(SymbolSource::Kallsyms.describe(), "kallsyms in the dump");
        let map = SymbolSource::SystemMap(PathBuf::from("/boot/System.map"));
        assert_eq!(map.describe(), "/boot/System.map");
    }
}
