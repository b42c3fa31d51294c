//! DWARF for address lookups, decompressed only as far as lookups need.
//!
//! Separate debug files compress every section with zlib, and `.debug_info`
//! is the largest: libc's is 2.3 MB compressed, 5.8 MB inflated, and
//! inflating it is most of the time a backtrace takes. A backtrace needs a
//! few compilation units, and `.debug_aranges` (small) says which: so
//! `.debug_info` is inflated as a stream, only up to the end of the last
//! unit a lookup needs, and the `addr2line` context is rebuilt over that
//! prefix, which is itself well-formed DWARF (whole units). Most crashes
//! look up libc's startup code, whose unit comes first. The other sections
//! are inflated whole, on a second thread while the first unit inflates.

use std::ops::Range;
use std::sync::Arc;

use object::{CompressionFormat, Object, ObjectSection, SectionKind};

use crate::names::Scopes;
use crate::{Error, ObjectFile};

/// The `gimli` reader over sections copied out of the file (and
/// decompressed, for `SHF_COMPRESSED` sections).
pub(crate) type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// The DWARF sections address lookups read. The rest (location lists,
/// call frames, macros) can be as large as these and are left unread.
const LOOKUP_SECTIONS: [gimli::SectionId; 10] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
    gimli::SectionId::DebugTypes,
];

/// How much more of `.debug_info` one inflate step produces at least.
const INFLATE_STEP: usize = 64 << 10;

/// The most one inflate step reserves: the compression header's size is
/// only a claim, so the buffer grows with the bytes that really come.
const MAX_RESERVE: usize = 16 << 20;

/// The largest `.debug_info` inflated; a bomb stops here.
const MAX_INFO: usize = 1 << 31;

/// The DWARF of one file, with `.debug_info` possibly inflated only in part.
pub(crate) struct LazyDwarf {
    endian: gimli::RunTimeEndian,
    sections: Vec<(gimli::SectionId, Arc<[u8]>)>,
    info: Info,
    /// From `.debug_aranges`: address ranges and the offset of the unit
    /// that covers each, sorted by start address.
    aranges: Vec<(Range<u64>, usize)>,
    /// The context and the length of the `.debug_info` prefix it was built
    /// over.
    context: Option<(usize, addr2line::Context<Reader>)>,
    scopes: Scopes,
}

/// `.debug_info`: whole, or a zlib stream being inflated.
enum Info {
    Whole(Arc<[u8]>),
    Inflating(Inflating),
}

/// A zlib-compressed section inflated on demand.
struct Inflating {
    /// The compressed bytes' range in the file.
    input: Range<usize>,
    state: flate2::Decompress,
    output: Vec<u8>,
    /// The inflated size from the section's compression header.
    size: usize,
    /// Set when the stream ended or failed: nothing more will come.
    done: bool,
}

impl Inflating {
    /// Inflates until at least `len` bytes are out (or the stream ends).
    fn ensure(&mut self, file: &[u8], len: usize) {
        let len = len.min(self.size);
        let Some(input) = file.get(self.input.clone()) else {
            self.done = true;
            return;
        };
        while !self.done && self.output.len() < len {
            let want = (len - self.output.len()).clamp(INFLATE_STEP, MAX_RESERVE);
            self.output
                .reserve(want.min(self.size - self.output.len()).max(1));
            let consumed = usize::try_from(self.state.total_in()).unwrap_or(usize::MAX);
            let rest = input.get(consumed..).unwrap_or_default();
            let before = self.output.len();
            match self
                .state
                .decompress_vec(rest, &mut self.output, flate2::FlushDecompress::None)
            {
                Ok(flate2::Status::StreamEnd) => self.done = true,
                Ok(_) if self.output.len() == before && rest.is_empty() => self.done = true,
                Ok(_) => {}
                Err(_) => self.done = true,
            }
            if self.output.len() >= self.size {
                self.output.truncate(self.size);
                self.done = true;
            }
        }
    }

    fn complete(&self) -> bool {
        self.done || self.output.len() >= self.size
    }
}

impl LazyDwarf {
    /// Reads the lookup sections of `file` (`object`, parsed); `.debug_info`
    /// is set up to inflate on demand when zlib-compressed.
    pub(crate) fn load(object: &ObjectFile, file: &object::File<'_>) -> Result<LazyDwarf, Error> {
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let load = |id: gimli::SectionId| -> Result<Option<Arc<[u8]>>, Error> {
            match file.section_by_name(id.name()) {
                Some(section) if section.kind() != SectionKind::UninitializedData => {
                    let data = section
                        .uncompressed_data()
                        .map_err(|e| object.parse_error(&format!("section {}", id.name()), e))?;
                    Ok(Some(Arc::from(&*data)))
                }
                _ => Ok(None),
            }
        };
        let (info, rest) = std::thread::scope(|scope| {
            let rest = scope.spawn(|| {
                LOOKUP_SECTIONS
                    .iter()
                    .filter_map(|id| {
                        load(*id)
                            .map(|data| data.map(|data| (*id, data)))
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, Error>>()
            });
            let mut info = Self::info(object, file, &load);
            if let Ok(Info::Inflating(inflating)) = &mut info {
                // The first units: libc's startup code, in most backtraces.
                inflating.ensure(object.bytes(), INFLATE_STEP);
            }
            let rest = rest
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (info, rest)
        });
        let sections = rest?;
        let info = info?;
        let aranges = sections
            .iter()
            .find(|(id, _)| *id == gimli::SectionId::DebugAranges)
            .map(|(_, data)| read_aranges(data, endian))
            .unwrap_or_default();
        Ok(LazyDwarf {
            endian,
            sections,
            info,
            aranges,
            context: None,
            scopes: Scopes::default(),
        })
    }

    fn info(
        object: &ObjectFile,
        file: &object::File<'_>,
        load: &dyn Fn(gimli::SectionId) -> Result<Option<Arc<[u8]>>, Error>,
    ) -> Result<Info, Error> {
        let id = gimli::SectionId::DebugInfo;
        let range = file
            .section_by_name(id.name())
            .and_then(|section| section.compressed_file_range().ok());
        if let Some(range) = range
            && range.format == CompressionFormat::Zlib
            && let (Ok(start), Ok(len), Ok(size)) = (
                usize::try_from(range.offset),
                usize::try_from(range.compressed_size),
                usize::try_from(range.uncompressed_size),
            )
            && let Some(end) = start.checked_add(len)
            && end <= object.bytes().len()
        {
            return Ok(Info::Inflating(Inflating {
                input: start..end,
                state: flate2::Decompress::new(true),
                output: Vec::new(),
                size: size.min(MAX_INFO),
                done: false,
            }));
        }
        Ok(Info::Whole(load(id)?.unwrap_or_else(|| Arc::from(&[][..]))))
    }

    /// The context for a lookup of `address`, after inflating `.debug_info`
    /// far enough to hold its unit, with the scopes that qualify function
    /// names. `file` is the bytes of the file the DWARF came from. `None`
    /// when the DWARF cannot be indexed.
    pub(crate) fn context_for(
        &mut self,
        file: &[u8],
        address: u64,
    ) -> Option<(&addr2line::Context<Reader>, &mut Scopes)> {
        if let Info::Inflating(inflating) = &mut self.info
            && !inflating.complete()
        {
            match unit_at(&self.aranges, address) {
                Some(offset) => {
                    // The unit header's length field, then the whole unit;
                    // at least doubling what is out, so that a backtrace
                    // rebuilds the context a few times, not once a frame.
                    inflating.ensure(file, offset.saturating_add(12));
                    let end =
                        unit_end(&inflating.output, offset, self.endian).unwrap_or(usize::MAX);
                    if end > inflating.output.len() {
                        inflating.ensure(file, end.max(inflating.output.len() * 2));
                    }
                }
                // `.debug_aranges` lists the units of this file, and none
                // covers the address: no unit will (assembly without
                // debug info, a PLT stub).
                None if !self.aranges.is_empty() => {}
                None => inflating.ensure(file, usize::MAX),
            }
        }
        let (len, info) = match &self.info {
            Info::Whole(data) => (data.len(), None),
            Info::Inflating(inflating) => {
                let len = whole_units(&inflating.output, self.endian);
                (len, Some(&inflating.output[..len]))
            }
        };
        if self.context.as_ref().is_none_or(|(built, _)| *built != len) {
            let info: Arc<[u8]> = match (&self.info, info) {
                (Info::Whole(data), _) => Arc::clone(data),
                (_, Some(prefix)) => Arc::from(prefix),
                (_, None) => Arc::from(&[][..]),
            };
            let endian = self.endian;
            let sections = &self.sections;
            let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
                let data = if id == gimli::SectionId::DebugInfo {
                    Arc::clone(&info)
                } else {
                    sections
                        .iter()
                        .find(|(section, _)| *section == id)
                        .map_or_else(|| Arc::from(&[][..]), |(_, data)| Arc::clone(data))
                };
                Ok(gimli::EndianArcSlice::new(data, endian))
            };
            let dwarf = gimli::Dwarf::load(load).ok()?;
            let context = addr2line::Context::from_dwarf(dwarf).ok()?;
            self.context = Some((len, context));
        }
        let scopes = &mut self.scopes;
        self.context
            .as_ref()
            .map(move |(_, context)| (context, scopes))
    }
}

/// The ranges of `.debug_aranges`, sorted by start; malformed sets end the
/// reading (lookups then inflate all of `.debug_info`).
fn read_aranges(data: &Arc<[u8]>, endian: gimli::RunTimeEndian) -> Vec<(Range<u64>, usize)> {
    let section = gimli::DebugAranges::new(data, endian);
    let mut ranges = Vec::new();
    let mut headers = section.headers();
    while let Ok(Some(header)) = headers.next() {
        let offset = header.debug_info_offset().0;
        let mut entries = header.entries();
        while let Ok(Some(entry)) = entries.next() {
            if entry.length() > 0 {
                let range = entry.range();
                ranges.push((range.begin..range.end, offset));
            }
        }
    }
    ranges.sort_unstable_by_key(|(range, _)| range.start);
    ranges
}

/// The offset of the unit whose range holds `address`.
fn unit_at(aranges: &[(Range<u64>, usize)], address: u64) -> Option<usize> {
    let after = aranges.partition_point(|(range, _)| range.start <= address);
    aranges[..after]
        .iter()
        .rev()
        .take(64)
        .find(|(range, _)| range.contains(&address))
        .map(|(_, offset)| *offset)
}

/// The end of the unit at `offset` of `info`, from its length field.
fn unit_end(info: &[u8], offset: usize, endian: gimli::RunTimeEndian) -> Option<usize> {
    let word = |at: usize, len: usize| -> Option<u64> {
        let bytes = info.get(at..at.checked_add(len)?)?;
        let mut value = [0u8; 8];
        match endian {
            gimli::RunTimeEndian::Little => {
                value[..len].copy_from_slice(bytes);
                Some(u64::from_le_bytes(value))
            }
            gimli::RunTimeEndian::Big => {
                value[8 - len..].copy_from_slice(bytes);
                Some(u64::from_be_bytes(value))
            }
        }
    };
    let length = word(offset, 4)?;
    let (length, header) = if length == 0xffff_ffff {
        (word(offset + 4, 8)?, 12)
    } else {
        (length, 4)
    };
    offset
        .checked_add(header)?
        .checked_add(usize::try_from(length).ok()?)
}

/// The length of the longest prefix of `info` made of whole units.
fn whole_units(info: &[u8], endian: gimli::RunTimeEndian) -> usize {
    let mut offset = 0;
    while let Some(end) = unit_end(info, offset, endian) {
        if end > info.len() || end == offset {
            break;
        }
        offset = end;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::{unit_at, unit_end, whole_units};

    const LE: gimli::RunTimeEndian = gimli::RunTimeEndian::Little;

    #[test]
    fn units_are_found_by_address() {
        let aranges = vec![(0x10..0x20, 0), (0x20..0x30, 100), (0x40..0x50, 200)];
        assert_eq!(unit_at(&aranges, 0x10), Some(0));
        assert_eq!(unit_at(&aranges, 0x2f), Some(100));
        assert_eq!(unit_at(&aranges, 0x30), None);
        assert_eq!(unit_at(&aranges, 0x45), Some(200));
        assert_eq!(unit_at(&aranges, 0x5), None);
    }

    #[test]
    fn unit_lengths_in_both_formats() {
        let mut info = vec![8, 0, 0, 0];
        info.extend([0; 8]);
        info.extend([0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(unit_end(&info, 0, LE), Some(12));
        assert_eq!(unit_end(&info, 12, LE), Some(26));
        assert_eq!(whole_units(&info, LE), 26);
        // A unit cut off at the end is not whole.
        assert_eq!(whole_units(&info[..20], LE), 12);
        assert_eq!(whole_units(&[], LE), 0);
        // A huge claimed length neither overflows nor counts.
        let huge = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(whole_units(&huge, LE), 0);
    }
}
