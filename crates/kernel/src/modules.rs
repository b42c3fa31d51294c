//! The loaded modules (`mod`): the kernel's `modules` list of `struct
//! module`, each with its name, state, taints, where its code and data
//! are, and where its ORC table is (for [`crate::stack::Unwinder`]).
//!
//! Where a module's memory is changed in Linux 6.4: before, one
//! `core_layout` (and `init_layout`) with `base`, `size` and
//! `text_size`; since, `mem[]`, one `struct module_memory` (`base`,
//! `size`) per kind of memory (`enum mod_mem_type`: `MOD_TEXT`,
//! `MOD_DATA`, `MOD_RODATA`, `MOD_RO_AFTER_INIT`, then the init kinds).
//! [`ModuleLayout::from_btf`] picks by which member BTF has. The size is
//! that of the module's core memory, all of it, as crash's `mod` shows.

use kscope_btf::Btf;

use crate::tasks::{c_string, le_u32, le_u64, walk_list};
use crate::{Error, KernelRead, SymbolTable};

/// The most modules read.
pub const MAX_MODULES: usize = 1 << 16;

/// The most bytes of one `struct module` read (6.1's is 1,280).
const MAX_MODULE_STRUCT: u64 = 64 << 10;

/// `MODULE_NAME_LEN` when BTF does not say: 64 less a `long`.
const DEFAULT_NAME_LEN: u64 = 56;

/// The taint flags a module may carry (the kernel has fewer than 32).
const MAX_TAINT_BITS: u32 = 32;

/// Where a module's memory is described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleMemoryLayout {
    /// `core_layout` (up to Linux 6.3).
    CoreLayout {
        /// `module.core_layout`.
        core_layout: u64,
        /// `module_layout.base`.
        base: u64,
        /// `module_layout.size`.
        size: u64,
        /// `module_layout.text_size`.
        text_size: u64,
    },
    /// `mem[]` (Linux 6.4+).
    Mem {
        /// `module.mem`.
        mem: u64,
        /// `sizeof(struct module_memory)`.
        stride: u64,
        /// `module_memory.base`.
        base: u64,
        /// `module_memory.size`.
        size: u64,
        /// The index of `MOD_TEXT`.
        text: u64,
        /// The indexes of the core kinds (text, data, rodata, ro after
        /// init).
        core: Vec<u64>,
    },
}

/// Where `struct module`'s fields are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLayout {
    /// `sizeof(struct module)`.
    pub size: u64,
    /// `module.list`.
    pub list: u64,
    /// `module.name`.
    pub name: u64,
    /// `MODULE_NAME_LEN`.
    pub name_len: u64,
    /// `module.state`.
    pub state: u64,
    /// `module.taints`.
    pub taints: u64,
    /// The module's memory.
    pub memory: ModuleMemoryLayout,
    /// `module.arch.num_orcs`, `.orc_unwind_ip`, `.orc_unwind` (x86-64
    /// with ORC).
    pub orc: Option<(u64, u64, u64)>,
    /// `enum module_state`: LIVE, COMING, GOING, UNFORMED.
    pub states: [Option<i64>; 4],
    /// `sizeof(struct taint_flag)` and `taint_flag.c_true`, for the
    /// letters of `taint_flags[]`.
    pub taint_flag: Option<(u64, u64)>,
}

fn member(btf: &Btf<'_>, ty: &str, name: &str) -> Result<u64, Error> {
    btf.member_offset(ty, name)
        .ok_or_else(|| Error::Corrupt(format!("the kernel's BTF has no member {name} in {ty}")))
}

impl ModuleLayout {
    /// Finds the layout in the kernel's BTF.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the first member BTF lacks.
    pub fn from_btf(btf: &Btf<'_>) -> Result<ModuleLayout, Error> {
        const MODULE: &str = "struct module";
        let size = btf
            .type_size(MODULE)
            .ok_or_else(|| Error::Corrupt("the kernel's BTF has no struct module".into()))?;
        let memory = if let Some(core_layout) = btf.member_offset(MODULE, "core_layout") {
            const LAYOUT: &str = "struct module_layout";
            ModuleMemoryLayout::CoreLayout {
                core_layout,
                base: member(btf, LAYOUT, "base")?,
                size: member(btf, LAYOUT, "size")?,
                text_size: member(btf, LAYOUT, "text_size")?,
            }
        } else {
            const MEM: &str = "struct module_memory";
            let index = |name: &str| {
                btf.enum_value(name)
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| Error::Corrupt(format!("the kernel's BTF has no {name}")))
            };
            ModuleMemoryLayout::Mem {
                mem: member(btf, MODULE, "mem")?,
                stride: btf.type_size(MEM).ok_or_else(|| {
                    Error::Corrupt("the kernel's BTF has no struct module_memory".into())
                })?,
                base: member(btf, MEM, "base")?,
                size: member(btf, MEM, "size")?,
                text: index("MOD_TEXT")?,
                core: ["MOD_TEXT", "MOD_DATA", "MOD_RODATA", "MOD_RO_AFTER_INIT"]
                    .iter()
                    .map(|name| index(name))
                    .collect::<Result<_, _>>()?,
            }
        };
        let orc = btf.member_offset(MODULE, "arch").and_then(|arch| {
            const ARCH: &str = "struct mod_arch_specific";
            Some((
                arch + btf.member_offset(ARCH, "num_orcs")?,
                arch + btf.member_offset(ARCH, "orc_unwind_ip")?,
                arch + btf.member_offset(ARCH, "orc_unwind")?,
            ))
        });
        let name_len = btf
            .find(MODULE)
            .and_then(|id| btf.member_path(id, "name"))
            .and_then(|m| btf.array(m.type_id))
            .map_or(DEFAULT_NAME_LEN, |a| u64::from(a.count));
        let states = [
            "MODULE_STATE_LIVE",
            "MODULE_STATE_COMING",
            "MODULE_STATE_GOING",
            "MODULE_STATE_UNFORMED",
        ]
        .map(|name| btf.enum_value(name));
        let taint_flag = btf
            .type_size("struct taint_flag")
            .zip(btf.member_offset("struct taint_flag", "c_true"));
        Ok(ModuleLayout {
            size,
            list: member(btf, MODULE, "list")?,
            name: member(btf, MODULE, "name")?,
            name_len,
            state: member(btf, MODULE, "state")?,
            taints: member(btf, MODULE, "taints")?,
            memory,
            orc,
            states,
            taint_flag,
        })
    }
}

/// A module's state (`enum module_state`).
/// Serialized as its variant's name in lower case (`live`), `{"unknown":
/// 7}` for a value BTF does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    /// Loaded and initialized.
    Live,
    /// Being loaded: its init function runs.
    Coming,
    /// Being unloaded.
    Going,
    /// Still being set up.
    Unformed,
    /// A value BTF does not name.
    Unknown(i64),
}

/// Where a module's ORC table is (`module.arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleOrc {
    /// `num_orcs`.
    pub count: u64,
    /// `orc_unwind_ip`.
    pub ip_table: u64,
    /// `orc_unwind`.
    pub entries: u64,
}

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The `struct module`'s address.
    pub address: u64,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: ModuleState,
    /// Where its core memory starts (its text).
    pub base: u64,
    /// The size of its core memory, text and data.
    pub size: u64,
    /// The size of its text.
    pub text_size: u64,
    /// `taints`: a bit per `TAINT_*` flag.
    pub taints: u64,
    /// The taint letters, as `/proc/modules` shows them, when
    /// `taint_flags[]` is readable.
    pub taint_letters: Option<String>,
    /// Its ORC table.
    pub orc: Option<ModuleOrc>,
}

/// Every module, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleList {
    /// The modules in list order (the last loaded first).
    pub modules: Vec<Module>,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// Reads the `modules` list with offsets from BTF.
///
/// # Errors
///
/// As [`ModuleLayout::from_btf`] and [`ModuleList::read`].
pub fn read_modules(
    memory: &dyn KernelRead,
    symbols: &SymbolTable,
    btf: &Btf<'_>,
) -> Result<ModuleList, Error> {
    ModuleList::read(memory, symbols, &ModuleLayout::from_btf(btf)?)
}

impl ModuleList {
    /// Reads every module on the `modules` list.
    ///
    /// # Errors
    ///
    /// [`Error::MissingSymbol`] without `modules`; [`Error::Corrupt`] for
    /// an implausible `struct module` size. A broken list or module is
    /// in [`ModuleList::problems`].
    pub fn read(
        memory: &dyn KernelRead,
        symbols: &SymbolTable,
        layout: &ModuleLayout,
    ) -> Result<ModuleList, Error> {
        let head = symbols.required("modules")?;
        if layout.size == 0 || layout.size > MAX_MODULE_STRUCT {
            return Err(Error::Corrupt(format!(
                "struct module is {} bytes, expected 1 to {MAX_MODULE_STRUCT}",
                layout.size
            )));
        }
        let (nodes, problem) = walk_list(memory, head, MAX_MODULES, "the module list (modules)");
        let mut list = ModuleList {
            modules: Vec::new(),
            problems: problem.into_iter().collect(),
        };
        let taint_flags = symbols.address("taint_flags");
        for node in nodes {
            let address = node.wrapping_sub(layout.list);
            match read_module(memory, layout, address, taint_flags) {
                Ok(module) => list.modules.push(module),
                Err(e) => list
                    .problems
                    .push(format!("struct module at {address:#x}: {e}")),
            }
        }
        Ok(list)
    }
}

fn read_module(
    memory: &dyn KernelRead,
    layout: &ModuleLayout,
    address: u64,
    taint_flags: Option<u64>,
) -> Result<Module, Error> {
    let bytes = memory
        .read_vec(address, layout.size as usize)
        .map_err(|source| Error::Memory {
            what: "it".into(),
            source,
        })?;
    let past = |what: &str| Error::Corrupt(format!("its {what} is past its end"));
    let field = |off: u64, what: &str| le_u64(&bytes, off).ok_or_else(|| past(what));
    let field32 =
        |off: u64, what: &str| le_u32(&bytes, off).map(u64::from).ok_or_else(|| past(what));
    let name_at = usize::try_from(layout.name).unwrap_or(usize::MAX);
    let name = bytes
        .get(name_at..)
        .map(|rest| c_string(&rest[..rest.len().min(layout.name_len as usize)]))
        .unwrap_or_default();
    let raw_state = i64::from(field32(layout.state, "state")? as u32 as i32);
    let state = match layout.states.iter().position(|&s| s == Some(raw_state)) {
        Some(0) => ModuleState::Live,
        Some(1) => ModuleState::Coming,
        Some(2) => ModuleState::Going,
        Some(_) => ModuleState::Unformed,
        None => ModuleState::Unknown(raw_state),
    };
    let (base, size, text_size) = match &layout.memory {
        ModuleMemoryLayout::CoreLayout {
            core_layout,
            base,
            size,
            text_size,
        } => (
            field(core_layout + base, "core_layout.base")?,
            field32(core_layout + size, "core_layout.size")?,
            field32(core_layout + text_size, "core_layout.text_size")?,
        ),
        ModuleMemoryLayout::Mem {
            mem,
            stride,
            base,
            size,
            text,
            core,
        } => {
            let at = |i: u64| mem.wrapping_add(stride.wrapping_mul(i));
            let mut total = 0u64;
            for &i in core {
                total = total.saturating_add(field32(at(i) + size, "mem[].size")?);
            }
            (
                field(at(*text) + base, "mem[MOD_TEXT].base")?,
                total,
                field32(at(*text) + size, "mem[MOD_TEXT].size")?,
            )
        }
    };
    let taints = field(layout.taints, "taints")?;
    let taint_letters = taint_flags
        .zip(layout.taint_flag)
        .and_then(|(table, (stride, c_true))| {
            (0..MAX_TAINT_BITS)
                .filter(|bit| taints & (1 << bit) != 0)
                .map(|bit| {
                    let mut c = [0u8; 1];
                    memory
                        .read_virt(
                            table
                                .wrapping_add(stride * u64::from(bit))
                                .wrapping_add(c_true),
                            &mut c,
                        )
                        .ok()?;
                    Some(char::from(c[0]))
                })
                .collect::<Option<String>>()
        });
    let orc = match layout.orc {
        Some((count, ip_table, entries)) => {
            let count = field32(count, "arch.num_orcs")?;
            let ip_table = field(ip_table, "arch.orc_unwind_ip")?;
            let entries = field(entries, "arch.orc_unwind")?;
            (count > 0 && ip_table != 0 && entries != 0).then_some(ModuleOrc {
                count,
                ip_table,
                entries,
            })
        }
        None => None,
    };
    Ok(Module {
        address,
        name,
        state,
        base,
        size,
        text_size,
        taints,
        taint_letters,
        orc,
    })
}
