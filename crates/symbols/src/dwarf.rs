//! DWARF for address lookups, decompressed and parsed only as far as the
//! lookups need.
//!
//! Separate debug files compress every section with zlib, and `.debug_info`
//! is the largest: libc's is 2.3 MB compressed, 5.8 MB inflated, in 8,000
//! units. Inflating it all, and then having `addr2line` parse every unit's
//! abbreviations, was most of the time a backtrace took. A backtrace needs
//! a few units, and `.debug_aranges` (small) says which. So `.debug_info`
//! is inflated as a stream, only up to the end of the last unit a lookup
//! needs, and each needed unit gets an `addr2line` context of its own over
//! a copy of `.debug_info` that holds only that unit, at its own offset:
//! everything before it is one placeholder type unit (`addr2line` skips
//! type units without parsing them), so unit-relative references and the
//! other sections' offsets stay right. Addresses no arange covers go to a
//! context over all of `.debug_info`. The other sections are inflated
//! whole, on a second thread while the first units inflate; with a
//! [`DwarfCache`], all of them come inflated from the cache instead.

use std::collections::HashMap;
use std::ops::Range;

use object::{CompressionFormat, Object, ObjectSection, SectionKind};

use crate::names::Scopes;
use crate::sys::SharedBytes;
use crate::{DwarfCache, Error, ObjectFile, Reader};

/// The size of the placeholder unit header: a DWARF 5 type unit.
const PLACEHOLDER_HEADER: usize = 24;

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
    sections: Vec<(gimli::SectionId, SharedBytes)>,
    info: Info,
    /// From `.debug_aranges`: address ranges and the offset of the unit
    /// that covers each, sorted by start address.
    aranges: Vec<(Range<u64>, usize)>,
    /// A context per unit looked up, by the unit's offset; `None` for a
    /// unit that cannot be read.
    units: HashMap<usize, Option<addr2line::Context<Reader>>>,
    /// The context over all of `.debug_info`, for addresses no arange
    /// covers.
    whole: Option<Option<addr2line::Context<Reader>>>,
    scopes: Scopes,
    /// Where to keep the inflated sections once lookups have needed most
    /// of `.debug_info`, and the build-id that names them.
    store_to: Option<(DwarfCache, Vec<u8>)>,
}

/// `.debug_info`: whole, or a zlib stream being inflated.
enum Info {
    Whole(SharedBytes),
    Inflating(Inflating),
}

impl Info {
    /// The bytes of `.debug_info` there are so far.
    fn bytes(&self) -> &[u8] {
        match self {
            Info::Whole(data) => data,
            Info::Inflating(inflating) => &inflating.output,
        }
    }
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
}

impl LazyDwarf {
    /// Reads the lookup sections of `file` (`object`, parsed), from
    /// `cache` when it holds them; `.debug_info` is set up to inflate on
    /// demand when zlib-compressed.
    pub(crate) fn load(
        object: &ObjectFile,
        file: &object::File<'_>,
        cache: Option<&DwarfCache>,
    ) -> Result<LazyDwarf, Error> {
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let build_id = object.build_id().filter(|id| !id.is_empty());
        if let (Some(cache), Some(build_id)) = (cache, build_id)
            && let Some(dwarf) = Self::cached(cache, build_id, file, endian)
        {
            return Ok(dwarf);
        }
        let load = |id: gimli::SectionId| -> Result<Option<SharedBytes>, Error> {
            match file.section_by_name(id.name()) {
                Some(section) if section.kind() != SectionKind::UninitializedData => {
                    let data = section
                        .uncompressed_data()
                        .map_err(|e| object.parse_error(&format!("section {}", id.name()), e))?;
                    Ok(Some(SharedBytes::new(data.into_owned())))
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
        let store_to = match (&info, cache, build_id) {
            (Info::Inflating(_), Some(cache), Some(build_id)) => {
                Some((cache.clone(), build_id.to_vec()))
            }
            _ => None,
        };
        Ok(LazyDwarf {
            endian,
            sections,
            info,
            aranges,
            units: HashMap::new(),
            whole: None,
            scopes: Scopes::default(),
            store_to,
        })
    }

    /// The DWARF from `cache`, if it holds this build's sections and their
    /// `.debug_info` is as long as the file's says.
    fn cached(
        cache: &DwarfCache,
        build_id: &[u8],
        file: &object::File<'_>,
        endian: gimli::RunTimeEndian,
    ) -> Option<LazyDwarf> {
        let mut sections = Vec::new();
        let mut info = None;
        for (name, data) in cache.load(build_id)? {
            let id = LOOKUP_SECTIONS
                .iter()
                .chain([&gimli::SectionId::DebugInfo])
                .find(|id| id.name() == name)?;
            if *id == gimli::SectionId::DebugInfo {
                info = Some(data);
            } else {
                sections.push((*id, data));
            }
        }
        let info = info?;
        let expected = file
            .section_by_name(gimli::SectionId::DebugInfo.name())?
            .compressed_file_range()
            .ok()?
            .uncompressed_size;
        if u64::try_from(info.len()).ok()? != expected {
            return None;
        }
        let aranges = sections
            .iter()
            .find(|(id, _)| *id == gimli::SectionId::DebugAranges)
            .map(|(_, data)| read_aranges(data, endian))
            .unwrap_or_default();
        Some(LazyDwarf {
            endian,
            sections,
            info: Info::Whole(info),
            aranges,
            units: HashMap::new(),
            whole: None,
            scopes: Scopes::default(),
            store_to: None,
        })
    }

    /// At the first lookup, inflates all of `.debug_info` and stores every
    /// section in the cache, so that later runs (on any program using
    /// this library) skip the inflation: the first costs more, a few tens
    /// of ms for libc, and every later one reads its units at once.
    fn store_if_worth_it(&mut self, file: &[u8]) {
        let Info::Inflating(inflating) = &mut self.info else {
            return;
        };
        if self.store_to.is_none() {
            return;
        }
        inflating.ensure(file, usize::MAX);
        if let Some((cache, build_id)) = self.store_to.take()
            && inflating.output.len() == inflating.size
        {
            let mut sections: Vec<(&str, &[u8])> = self
                .sections
                .iter()
                .map(|(id, data)| (id.name(), &data[..]))
                .collect();
            sections.push((gimli::SectionId::DebugInfo.name(), &inflating.output));
            cache.store(&build_id, &sections);
        }
    }

    fn info(
        object: &ObjectFile,
        file: &object::File<'_>,
        load: &dyn Fn(gimli::SectionId) -> Result<Option<SharedBytes>, Error>,
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
        Ok(Info::Whole(
            load(id)?.unwrap_or_else(|| SharedBytes::new(Vec::new())),
        ))
    }

    /// The context for a lookup of `address` (its unit's, after inflating
    /// `.debug_info` far enough to hold it), with the scopes that qualify
    /// function names. `file` is the bytes of the file the DWARF came
    /// from. `None` when no unit covers the address or the DWARF cannot be
    /// indexed.
    pub(crate) fn context_for(
        &mut self,
        file: &[u8],
        address: u64,
    ) -> Option<(&addr2line::Context<Reader>, &mut Scopes)> {
        let unit = unit_at(&self.aranges, address);
        if unit.is_none() && !self.aranges.is_empty() {
            // `.debug_aranges` lists the units of this file, and none
            // covers the address: no unit will (assembly without debug
            // info, a PLT stub).
            return None;
        }
        let context = match unit {
            Some(offset) => {
                if !self.units.contains_key(&offset) {
                    let context = self.unit_context(file, offset);
                    self.units.insert(offset, context);
                }
                self.units.get(&offset)?.as_ref()
            }
            None => {
                if self.whole.is_none() {
                    if let Info::Inflating(inflating) = &mut self.info {
                        inflating.ensure(file, usize::MAX);
                    }
                    let info = match &self.info {
                        Info::Whole(data) => data.clone(),
                        Info::Inflating(inflating) => SharedBytes::new(inflating.output.clone()),
                    };
                    self.whole = Some(self.context_over(info));
                }
                self.whole.as_ref()?.as_ref()
            }
        };
        Some((context?, &mut self.scopes))
    }

    /// The context of the unit at `offset` alone.
    fn unit_context(&mut self, file: &[u8], offset: usize) -> Option<addr2line::Context<Reader>> {
        if let Info::Inflating(inflating) = &mut self.info {
            // The unit header's length field, then the whole unit.
            inflating.ensure(file, offset.saturating_add(12));
            let end = unit_end(&inflating.output, offset, self.endian)?;
            inflating.ensure(file, end);
        }
        self.store_if_worth_it(file);
        let info = self.info.bytes();
        let end = unit_end(info, offset, self.endian).filter(|end| *end <= info.len())?;
        let buffer = unit_alone(info, offset, end, self.endian)?;
        self.context_over(SharedBytes::new(buffer))
    }

    /// An `addr2line` context over `info` and the other sections.
    fn context_over(&self, info: SharedBytes) -> Option<addr2line::Context<Reader>> {
        let endian = self.endian;
        let sections = &self.sections;
        let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
            let data = if id == gimli::SectionId::DebugInfo {
                info.clone()
            } else {
                sections
                    .iter()
                    .find(|(section, _)| *section == id)
                    .map_or_else(|| SharedBytes::new(Vec::new()), |(_, data)| data.clone())
            };
            Ok(gimli::EndianReader::new(data, endian))
        };
        let dwarf = gimli::Dwarf::load(load).ok()?;
        addr2line::Context::from_dwarf(dwarf).ok()
    }
}

/// A `.debug_info` of `end` bytes that holds only the unit at
/// `offset..end` of `info`: before it one placeholder type unit (zeros
/// that are never touched, so the allocation costs no more than the
/// unit), or the real bytes where there is no room for a placeholder
/// header.
fn unit_alone(
    info: &[u8],
    offset: usize,
    end: usize,
    endian: gimli::RunTimeEndian,
) -> Option<Vec<u8>> {
    let mut buffer = vec![0u8; end];
    buffer
        .get_mut(offset..end)?
        .copy_from_slice(info.get(offset..end)?);
    if offset >= PLACEHOLDER_HEADER {
        let length = u32::try_from(offset - 4).ok()?;
        let mut header = Vec::with_capacity(PLACEHOLDER_HEADER);
        let u32_bytes = |v: u32| match endian {
            gimli::RunTimeEndian::Little => v.to_le_bytes(),
            gimli::RunTimeEndian::Big => v.to_be_bytes(),
        };
        header.extend(u32_bytes(length));
        header.extend(match endian {
            gimli::RunTimeEndian::Little => 5u16.to_le_bytes(),
            gimli::RunTimeEndian::Big => 5u16.to_be_bytes(),
        });
        header.push(gimli::DW_UT_type.0);
        header.push(8);
        header.extend(u32_bytes(0)); // abbreviations: never read
        header.extend([0; 8]); // type signature
        header.extend(u32_bytes(u32::try_from(PLACEHOLDER_HEADER).ok()?));
        buffer[..PLACEHOLDER_HEADER].copy_from_slice(&header);
    } else {
        buffer[..offset].copy_from_slice(info.get(..offset)?);
    }
    Some(buffer)
}

/// The ranges of `.debug_aranges`, sorted by start; malformed sets end the
/// reading (lookups then inflate all of `.debug_info`).
fn read_aranges(data: &[u8], endian: gimli::RunTimeEndian) -> Vec<(Range<u64>, usize)> {
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

#[cfg(test)]
mod tests {
    use super::{PLACEHOLDER_HEADER, unit_alone, unit_at, unit_end};

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
        assert_eq!(unit_end(&info, 26, LE), None);
        // A huge claimed length does not overflow.
        let huge = [0xff; 12];
        assert_eq!(unit_end(&huge, usize::MAX - 8, LE), None);
    }

    #[test]
    fn a_unit_alone_keeps_its_offset_behind_a_placeholder() {
        let mut info = vec![0xaa; 40];
        info.extend([8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let alone = unit_alone(&info, 40, 52, LE).unwrap();
        assert_eq!(alone.len(), 52);
        assert_eq!(&alone[40..], &info[40..]);
        // A DWARF 5 type unit covering 0..40.
        assert_eq!(&alone[..4], &36u32.to_le_bytes());
        assert_eq!(&alone[4..7], &[5, 0, gimli::DW_UT_type.0]);
        assert_eq!(&alone[20..24], &(PLACEHOLDER_HEADER as u32).to_le_bytes());
        assert!(alone[24..40].iter().all(|b| *b == 0));
        let mut units = gimli::DebugInfo::new(&alone, gimli::LittleEndian).units();
        let first = units.next().unwrap().unwrap();
        assert!(matches!(first.type_(), gimli::UnitType::Type { .. }));
        // Too little room for a placeholder: the real bytes stay.
        let short = unit_alone(&info[28..], 12, 24, LE).unwrap();
        assert_eq!(short, &info[28..52]);
    }
}
