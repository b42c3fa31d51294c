//! Stack unwinding of a core's threads: from a thread's registers, walk the
//! caller frames with the `.eh_frame` call-frame information (CFI) of the
//! module that holds each pc, read from the module's file on disk (the core
//! does not hold code or unwind tables of file mappings), and fall back to
//! the frame-pointer chain where no CFI covers the pc. x86-64 only; the
//! register set is an array indexed by DWARF register number so another
//! architecture adds its numbering and its first-frame registers. A file
//! whose build-id is not the one the core holds for its module (rebuilt
//! since the crash) is not used: its CFI would unwind other code, and its
//! addresses would name other functions.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, EvaluationResult, LittleEndian,
    Register, RegisterRule, UnwindContext, UnwindSection,
};
use object::{Object, ObjectSection, ObjectSegment};

use crate::{Core, Module, Registers};

/// The most frames one backtrace holds: enough for the deepest recursion
/// an 8 MiB stack allows at the usual frame sizes (a stack overflow in a
/// function with a 256-byte frame is about 30,000 frames deep).
pub const MAX_FRAMES: usize = 100_000;

/// DWARF register numbers of x86-64 (System V psABI, figure 3.36).
const RBP: usize = 6;
const RSP: usize = 7;
const RA: usize = 16;
/// rbx, rbp, r12-r15: the registers a callee must preserve.
const CALLEE_SAVED: [usize; 6] = [3, RBP, 12, 13, 14, 15];
const REGISTER_COUNT: usize = 17;

/// How the unwinder found a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameSource {
    /// The innermost frame: the thread's own registers.
    Registers,
    /// Recovered with the caller's `.eh_frame` CFI.
    Cfi,
    /// Recovered by following the saved frame pointer.
    FramePointer,
    /// Recovered from the return address on top of the stack: the
    /// innermost pc is outside every module (a call through a NULL or
    /// stray function pointer), so nothing was pushed since the call.
    CallThroughBadPointer,
    /// Recovered from the signal frame the kernel pushed (the CFI of a
    /// signal trampoline such as `__restore_rt`): the registers at the
    /// interruption, so the pc is the interrupted instruction, not a
    /// return address.
    Signal,
}

impl FrameSource {
    /// Whether the frame's pc is a return address (the call is the
    /// instruction before it) rather than the instruction it was at.
    pub fn is_return_address(self) -> bool {
        matches!(
            self,
            FrameSource::Cfi | FrameSource::FramePointer | FrameSource::CallThroughBadPointer
        )
    }

    /// The name reports give it: "registers", "cfi", "frame-pointer",
    /// "signal", or "return-address" for a call through a bad pointer.
    pub fn name(self) -> &'static str {
        match self {
            FrameSource::Registers => "registers",
            FrameSource::Cfi => "cfi",
            FrameSource::FramePointer => "frame-pointer",
            FrameSource::Signal => "signal",
            FrameSource::CallThroughBadPointer => "return-address",
        }
    }
}

/// One frame of a backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwoundFrame {
    /// The program counter: the faulting instruction in the innermost
    /// frame, a return address in the others (look those up at `pc - 1`).
    pub pc: u64,
    /// The stack pointer in this frame.
    pub sp: u64,
    /// How this frame was found.
    pub source: FrameSource,
}

/// A module whose file on disk is not the one the process had mapped:
/// the build-id in the core (read from the ELF headers dumped with the
/// process's memory) is not the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildIdMismatch {
    /// The module's path as the core names it.
    pub path: PathBuf,
    /// The file that was read for it (a replacement, or the path itself).
    pub file: PathBuf,
    /// The build-id the core holds.
    pub in_core: Vec<u8>,
    /// The file's build-id; `None` when it has none.
    pub in_file: Option<Vec<u8>>,
}

/// The unwind tables of one module's file, kept as byte ranges of it.
struct Tables {
    bytes: memmap2::Mmap,
    /// The file's `NT_GNU_BUILD_ID`.
    build_id: Option<Vec<u8>>,
    /// The file's link-time address of its lowest `PT_LOAD`, page aligned.
    lowest_vaddr: u64,
    eh_frame: Option<(u64, Range<usize>)>,
    eh_frame_hdr: Option<(u64, Range<usize>)>,
    text: u64,
}

impl Tables {
    fn load(path: &Path) -> Option<Tables> {
        let bytes = crate::sys::map(&std::fs::File::open(path).ok()?).ok()?;
        let file = object::File::parse(&*bytes).ok()?;
        let range = |name: &str| {
            let s = file.section_by_name(name)?;
            let (offset, size) = s.file_range()?;
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            Some((s.address(), start..end))
        };
        let eh_frame = range(".eh_frame");
        let eh_frame_hdr = range(".eh_frame_hdr");
        let text = file.section_by_name(".text").map_or(0, |s| s.address());
        let lowest_vaddr = file.segments().map(|s| s.address()).min().unwrap_or(0) & !0xfff;
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        drop(file);
        Some(Tables {
            bytes,
            build_id,
            lowest_vaddr,
            eh_frame,
            eh_frame_hdr,
            text,
        })
    }

    /// The caller's registers given this frame's, at the file-relative
    /// `address`, from CFI, and whether this frame is a signal frame (its
    /// caller's pc is the interrupted instruction, not a return address);
    /// `None` when no CFI covers it or a rule cannot be evaluated.
    fn unwind(
        &self,
        core: &Core<'_>,
        ctx: &mut UnwindContext<usize>,
        address: u64,
        regs: &[Option<u64>; REGISTER_COUNT],
    ) -> Option<([Option<u64>; REGISTER_COUNT], bool)> {
        let (eh_addr, eh_range) = self.eh_frame.clone()?;
        let eh_frame = EhFrame::new(self.bytes.get(eh_range)?, LittleEndian);
        let mut bases = BaseAddresses::default()
            .set_eh_frame(eh_addr)
            .set_text(self.text);
        let hdr = self.eh_frame_hdr.clone().and_then(|(addr, range)| {
            bases = bases.clone().set_eh_frame_hdr(addr);
            EhFrameHdr::new(self.bytes.get(range)?, LittleEndian)
                .parse(&bases, 8)
                .ok()
        });
        let fde = match hdr.as_ref().and_then(|h| h.table()) {
            Some(table) => table
                .fde_for_address(&eh_frame, &bases, address, EhFrame::cie_from_offset)
                .ok(),
            None => None,
        };
        let fde = match fde {
            Some(fde) => fde,
            None => eh_frame
                .fde_for_address(&bases, address, EhFrame::cie_from_offset)
                .ok()?,
        };
        let row = fde
            .unwind_info_for_address(&eh_frame, &bases, ctx, address)
            .ok()?;
        let encoding = fde.cie().encoding();
        let evaluate = |expression: &gimli::UnwindExpression<usize>, cfa: Option<u64>| {
            let expression = expression.get(&eh_frame).ok()?;
            evaluate(core, expression, encoding, regs, cfa)
        };
        let cfa = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => regs
                .get(usize::from(register.0))?
                .as_ref()?
                .checked_add_signed(*offset)?,
            CfaRule::Expression(expression) => evaluate(expression, None)?,
        };
        let mut caller = [None; REGISTER_COUNT];
        for (n, slot) in caller.iter_mut().enumerate() {
            let number = u16::try_from(n).ok()?;
            let rule = row.register(Register(number));
            *slot = match rule {
                // Callee-saved registers keep their value unless a rule
                // says where it went; the others are lost.
                None => CALLEE_SAVED.contains(&n).then_some(regs[n]).flatten(),
                Some(RegisterRule::SameValue) => regs[n],
                Some(RegisterRule::Offset(off)) => core.read_u64(cfa.checked_add_signed(off)?),
                Some(RegisterRule::ValOffset(off)) => cfa.checked_add_signed(off),
                Some(RegisterRule::Register(r)) => regs.get(usize::from(r.0)).copied().flatten(),
                Some(RegisterRule::Expression(e)) => core.read_u64(evaluate(&e, Some(cfa))?),
                Some(RegisterRule::ValExpression(e)) => evaluate(&e, Some(cfa)),
                Some(RegisterRule::Constant(v)) => Some(v),
                Some(_) => None,
            };
        }
        // A signal frame's rules restore every register, rsp included.
        if caller[RSP].is_none() || !fde.cie().is_signal_trampoline() {
            caller[RSP] = Some(cfa);
        }
        Some((caller, fde.cie().is_signal_trampoline()))
    }
}

/// The most operations one CFI expression may run; real ones run a few.
const MAX_EXPRESSION_STEPS: u32 = 1000;

/// Evaluates a CFI expression (`cfa` pushed first for register rules) to
/// the address or value it computes, reading registers from `regs` and
/// memory from the core; `None` for what a core cannot answer.
fn evaluate(
    core: &Core<'_>,
    expression: gimli::Expression<EndianSlice<'_, LittleEndian>>,
    encoding: gimli::Encoding,
    regs: &[Option<u64>; REGISTER_COUNT],
    cfa: Option<u64>,
) -> Option<u64> {
    let mut evaluation = expression.evaluation(encoding);
    evaluation.set_max_iterations(MAX_EXPRESSION_STEPS);
    if let Some(cfa) = cfa {
        evaluation.set_initial_value(cfa);
    }
    let mut result = evaluation.evaluate().ok()?;
    loop {
        result = match result {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresMemory {
                address, size: 8, ..
            } => {
                let value = core.read_u64(address)?;
                evaluation
                    .resume_with_memory(gimli::Value::Generic(value))
                    .ok()?
            }
            EvaluationResult::RequiresRegister { register, .. } => {
                let value = regs.get(usize::from(register.0)).copied().flatten()?;
                evaluation
                    .resume_with_register(gimli::Value::Generic(value))
                    .ok()?
            }
            _ => return None,
        };
    }
    match evaluation.result().first()?.location {
        gimli::Location::Address { address } => Some(address),
        gimli::Location::Value {
            value: gimli::Value::Generic(value),
        } => Some(value),
        _ => None,
    }
}

/// Walks the stacks of one core, caching each module's unwind tables.
pub struct Unwinder<'c, 'a> {
    core: &'c Core<'a>,
    modules: Vec<Module<'a>>,
    replacements: HashMap<PathBuf, PathBuf>,
    tables: HashMap<usize, Option<Tables>>,
    mismatches: HashMap<usize, BuildIdMismatch>,
    ctx: UnwindContext<usize>,
    max_frames: usize,
}

impl<'c, 'a> Unwinder<'c, 'a> {
    /// An unwinder for `core`'s threads.
    pub fn new(core: &'c Core<'a>) -> Unwinder<'c, 'a> {
        Unwinder {
            core,
            modules: core.modules(),
            replacements: HashMap::new(),
            tables: HashMap::new(),
            mismatches: HashMap::new(),
            ctx: UnwindContext::new(),
            max_frames: MAX_FRAMES,
        }
    }

    /// Cuts backtraces at `max_frames` frames (at least one) instead of
    /// [`MAX_FRAMES`].
    pub fn set_max_frames(&mut self, max_frames: usize) {
        self.max_frames = max_frames.max(1);
    }

    /// Reads the module mapped from `original` from `replacement` instead
    /// (an executable moved since the crash, or a copy with symbols).
    pub fn replace_path(&mut self, original: &Path, replacement: &Path) {
        self.replacements
            .insert(original.to_path_buf(), replacement.to_path_buf());
    }

    /// The module whose mappings hold `pc`.
    pub fn module_at(&self, pc: u64) -> Option<&Module<'a>> {
        self.modules.iter().find(|m| m.start <= pc && pc < m.end)
    }

    /// The file read for the module mapped from `path`: its replacement
    /// or `path` itself.
    pub fn file_of(&self, path: &Path) -> PathBuf {
        self.replacements
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.to_path_buf())
    }

    /// The frames of the thread whose registers are `registers`, innermost
    /// first; empty when they are not decoded. It stops after
    /// [`MAX_FRAMES`] (or [`Unwinder::set_max_frames`]), at a zero or unmapped return address, or when the
    /// stack pointer stops increasing.
    pub fn backtrace(&mut self, registers: &Registers<'_>) -> Vec<UnwoundFrame> {
        let Registers::X86_64(r) = registers else {
            return Vec::new();
        };
        let mut regs = [None; REGISTER_COUNT];
        for (n, v) in [
            r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15, r.rip,
        ]
        .into_iter()
        .enumerate()
        {
            regs[n] = Some(v);
        }
        let mut frames = vec![UnwoundFrame {
            pc: r.rip,
            sp: r.rsp,
            source: FrameSource::Registers,
        }];
        while frames.len() < self.max_frames {
            let Some(frame) = frames.last() else { break };
            let pc = frame.pc;
            let sp = frame.sp;
            // A return address points after the call; the call itself is
            // what the CFI of the caller's row must cover.
            let lookup = if frame.source.is_return_address() {
                pc.wrapping_sub(1)
            } else {
                pc
            };
            let bad_call = frame.source == FrameSource::Registers && self.module_at(pc).is_none();
            let found = if bad_call {
                self.unwind_bad_call(&regs)
                    .map(|caller| (caller, FrameSource::CallThroughBadPointer))
            } else {
                None
            };
            let (caller, source) = match found {
                Some(found) => found,
                None => match self.unwind_cfi(lookup, &regs) {
                    Some((caller, false)) => (caller, FrameSource::Cfi),
                    Some((caller, true)) => (caller, FrameSource::Signal),
                    None => match self.unwind_frame_pointer(&regs) {
                        Some(caller) => (caller, FrameSource::FramePointer),
                        None => break,
                    },
                },
            };
            let (Some(ra), Some(caller_sp)) = (caller[RA], caller[RSP]) else {
                break;
            };
            // Below a signal frame the stack may be another one (an
            // alternate signal stack), so only the pc must be known.
            let returns = source != FrameSource::Signal;
            if ra == 0 || self.module_at(ra).is_none() || (returns && caller_sp <= sp) {
                break;
            }
            regs = caller;
            frames.push(UnwoundFrame {
                pc: ra,
                sp: caller_sp,
                source,
            });
        }
        frames
    }

    /// The modules whose file is not the build the core holds, in
    /// address order; every module's file is read to tell. A module whose
    /// file cannot be read, or whose build-id the core does not hold, is
    /// not one.
    pub fn build_id_mismatches(&mut self) -> Vec<BuildIdMismatch> {
        let starts: Vec<u64> = self.modules.iter().map(|m| m.start).collect();
        starts
            .into_iter()
            .filter_map(|start| self.build_id_mismatch(start).cloned())
            .collect()
    }

    /// The mismatch of the module holding `pc`, if its file is not the
    /// build the core holds.
    pub fn build_id_mismatch(&mut self, pc: u64) -> Option<&BuildIdMismatch> {
        let index = self.load(pc)?;
        self.mismatches.get(&index)
    }

    /// The address of `pc` as its module's file spells it (pc minus the
    /// load bias), with the module; `None` outside every module, and in a
    /// module whose file is another build ([`Unwinder::build_id_mismatch`]).
    /// The bias comes from the ELF header in the core, else from the file
    /// on disk.
    pub fn relative_address(&mut self, pc: u64) -> Option<(&Module<'a>, u64)> {
        let index = self.load(pc)?;
        if self.mismatches.contains_key(&index) {
            return None;
        }
        let module = &self.modules[index];
        let bias = match module.load_bias {
            Some(bias) => bias,
            None => {
                let tables = self.tables.get(&index)?.as_ref()?;
                module.start.wrapping_sub(tables.lowest_vaddr)
            }
        };
        Some((module, pc.wrapping_sub(bias)))
    }

    /// The index of the module holding `pc`, its tables loaded.
    fn load(&mut self, pc: u64) -> Option<usize> {
        let index = self
            .modules
            .iter()
            .position(|m| m.start <= pc && pc < m.end)?;
        if !self.tables.contains_key(&index) {
            let module = &self.modules[index];
            let file = self.file_of(module.path);
            let mut tables = Tables::load(&file);
            if let (Some(loaded), Some(in_core)) = (&tables, module.build_id)
                && loaded.build_id.as_deref() != Some(in_core)
            {
                self.mismatches.insert(
                    index,
                    BuildIdMismatch {
                        path: module.path.to_path_buf(),
                        file,
                        in_core: in_core.to_vec(),
                        in_file: loaded.build_id.clone(),
                    },
                );
                // Another build's CFI describes other code.
                tables = None;
            }
            self.tables.insert(index, tables);
        }
        Some(index)
    }

    fn unwind_cfi(
        &mut self,
        pc: u64,
        regs: &[Option<u64>; REGISTER_COUNT],
    ) -> Option<([Option<u64>; REGISTER_COUNT], bool)> {
        let (_, address) = self.relative_address(pc)?;
        let index = self.load(pc)?;
        let tables = self.tables.get(&index)?.as_ref()?;
        tables.unwind(self.core, &mut self.ctx, address, regs)
    }

    /// The caller of a function entered through a bad pointer: the call
    /// left the return address at the stack pointer, and the callee ran
    /// no instruction, so every other register is the caller's.
    fn unwind_bad_call(
        &self,
        regs: &[Option<u64>; REGISTER_COUNT],
    ) -> Option<[Option<u64>; REGISTER_COUNT]> {
        let rsp = regs[RSP]?;
        let ra = self.core.read_u64(rsp)?;
        self.module_at(ra)?;
        let mut caller = *regs;
        caller[RA] = Some(ra);
        caller[RSP] = Some(rsp.checked_add(8)?);
        Some(caller)
    }

    /// The caller by the frame-pointer chain: `[rbp]` is the caller's rbp
    /// and `[rbp + 8]` the return address.
    fn unwind_frame_pointer(
        &self,
        regs: &[Option<u64>; REGISTER_COUNT],
    ) -> Option<[Option<u64>; REGISTER_COUNT]> {
        let rbp = regs[RBP]?;
        let mut caller = [None; REGISTER_COUNT];
        caller[RBP] = Some(self.core.read_u64(rbp)?);
        caller[RA] = Some(self.core.read_u64(rbp.checked_add(8)?)?);
        caller[RSP] = Some(rbp.checked_add(16)?);
        Some(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kscope_elf::{NT_FILE, NT_PRSTATUS, PT_LOAD, PT_NOTE};
    use kscope_testkit::elf::{NoteBuilder, elf_header, file_note, phdr, prstatus};

    const STACK: u64 = 0x7f_0000;
    const STACK_SIZE: usize = 0x2000;

    /// A core of one thread at `rip` with `rsp` and `rbp`, a program
    /// mapped at 0x400000..0x402000 from a file that does not exist (so no
    /// CFI: the frame-pointer chain is all there is), and a dumped stack
    /// of `STACK_SIZE` bytes at `STACK` holding `words` as (address, value).
    fn core_with_stack(rip: u64, rsp: u64, rbp: u64, words: &[(u64, u64)]) -> Vec<u8> {
        let mut status = prstatus(10, 11, rip, rsp);
        status[112 + 4 * 8..112 + 5 * 8].copy_from_slice(&rbp.to_le_bytes());
        let notes = NoteBuilder::default()
            .note("CORE", NT_PRSTATUS, &status)
            .note(
                "CORE",
                NT_FILE,
                &file_note(4096, &[(0x400000, 0x402000, 0, "/nonexistent/kscope/prog")]),
            )
            .bytes;
        let notes_at = 64 + 2 * 56;
        let stack_at = (notes_at + notes.len()).next_multiple_of(0x1000);
        let mut core = elf_header(4, 62, 64, 2);
        core.extend(phdr((
            PT_NOTE,
            0,
            notes_at as u64,
            0,
            notes.len() as u64,
            0,
            4,
        )));
        let size = STACK_SIZE as u64;
        core.extend(phdr((
            PT_LOAD,
            6,
            stack_at as u64,
            STACK,
            size,
            size,
            0x1000,
        )));
        core.extend(notes);
        core.resize(stack_at + STACK_SIZE, 0);
        for &(address, value) in words {
            let at = stack_at + (address - STACK) as usize;
            core[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        core
    }

    fn walk(bytes: &[u8]) -> Vec<(u64, u64, FrameSource)> {
        let core = Core::parse(bytes).expect("the core parses");
        let mut unwinder = Unwinder::new(&core);
        unwinder
            .backtrace(&core.threads()[0].registers)
            .into_iter()
            .map(|f| (f.pc, f.sp, f.source))
            .collect()
    }

    #[test]
    fn follows_the_frame_pointer_chain_to_a_zero_return_address() {
        let core = core_with_stack(
            0x400100,
            STACK + 0x100,
            STACK + 0x200,
            &[
                (STACK + 0x200, STACK + 0x300),
                (STACK + 0x208, 0x400500),
                (STACK + 0x300, STACK + 0x400),
                (STACK + 0x308, 0x401000),
            ],
        );
        assert_eq!(
            walk(&core),
            [
                (0x400100, STACK + 0x100, FrameSource::Registers),
                (0x400500, STACK + 0x210, FrameSource::FramePointer),
                (0x401000, STACK + 0x310, FrameSource::FramePointer),
            ]
        );
    }

    #[test]
    fn stops_at_an_unmapped_return_address() {
        let core = core_with_stack(
            0x400100,
            STACK + 0x100,
            STACK + 0x200,
            &[(STACK + 0x200, STACK + 0x300), (STACK + 0x208, 0xdead_0000)],
        );
        assert_eq!(walk(&core).len(), 1);
    }

    #[test]
    fn stops_when_the_stack_pointer_stops_increasing() {
        // rbp points at itself: the second step would not move the stack.
        let core = core_with_stack(
            0x400100,
            STACK + 0x100,
            STACK + 0x200,
            &[(STACK + 0x200, STACK + 0x200), (STACK + 0x208, 0x400500)],
        );
        assert_eq!(walk(&core).len(), 2);
    }

    #[test]
    fn stops_where_the_stack_is_not_dumped() {
        let core = core_with_stack(0x400100, STACK + 0x100, 0x10_0000, &[]);
        assert_eq!(walk(&core).len(), 1);
    }

    #[test]
    fn a_chain_longer_than_the_limit_is_cut() {
        // 300 frames of 16 bytes, each rbp pointing at the next.
        let words: Vec<(u64, u64)> = (0..300u64)
            .flat_map(|i| {
                let rbp = STACK + 0x10 * i;
                [(rbp, rbp + 0x10), (rbp + 8, 0x400100 + i)]
            })
            .collect();
        let bytes = core_with_stack(0x400100, STACK, STACK, &words);
        let core = Core::parse(&bytes).expect("the core parses");
        let mut unwinder = Unwinder::new(&core);
        unwinder.set_max_frames(256);
        let frames = unwinder.backtrace(&core.threads()[0].registers);
        assert_eq!(frames.len(), 256);
    }

    #[test]
    fn a_missing_file_leaves_no_relative_address_without_a_bias() {
        let bytes = core_with_stack(0x400100, STACK + 0x100, STACK + 0x200, &[]);
        let core = Core::parse(&bytes).expect("the core parses");
        let mut unwinder = Unwinder::new(&core);
        assert!(unwinder.module_at(0x400100).is_some());
        assert_eq!(unwinder.relative_address(0x400100), None);
        unwinder.replace_path(Path::new("/nonexistent/kscope/prog"), Path::new("/x"));
        assert_eq!(
            unwinder.file_of(Path::new("/nonexistent/kscope/prog")),
            PathBuf::from("/x")
        );
    }
}
