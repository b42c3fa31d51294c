//! Decoding a batch of sub-buffers and ordering their records by time
//! across CPUs. Records are not copied: an [`Item`] points into the page
//! it came from.

use kscope_traceevent::{Missed, PageError, PageLayout, SubBuffer};

use crate::session::RawPage;

/// A record or a lost-events mark, in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// One record: `pages[page].bytes[start..start + len]` is its payload.
    Record {
        /// Its timestamp, in trace clock units.
        ts: u64,
        /// Its CPU.
        cpu: u32,
        /// Index of its page in the batch.
        page: usize,
        /// Where its payload starts in the page.
        start: usize,
        /// Payload length.
        len: usize,
    },
    /// The kernel dropped events on `cpu` before this page.
    Lost {
        /// The page's timestamp.
        ts: u64,
        /// The CPU.
        cpu: u32,
        /// How many, when the kernel counted them.
        count: Option<u64>,
    },
}

impl Item {
    fn key(&self) -> (u64, u32) {
        match *self {
            Item::Record { ts, cpu, .. } | Item::Lost { ts, cpu, .. } => (ts, cpu),
        }
    }
}

/// A merged batch.
#[derive(Debug, Default)]
pub struct Merged {
    /// Records and lost-event marks in time order.
    pub items: Vec<Item>,
    /// Pages that did not decode whole, with their CPU; the records
    /// before the damage are kept.
    pub errors: Vec<(u32, PageError)>,
}

/// Decodes `pages` and orders everything by (timestamp, CPU). Pages of
/// one CPU must come in the order they were read.
pub fn merge(pages: &[RawPage], layout: &PageLayout) -> Merged {
    let mut merged = Merged::default();
    for (index, page) in pages.iter().enumerate() {
        let sub = match SubBuffer::parse(&page.bytes, layout) {
            Ok(sub) => sub,
            Err(err) => {
                merged.errors.push((page.cpu, err));
                continue;
            }
        };
        let lost = match sub.missed {
            Missed::None => None,
            Missed::Count(n) => Some(Some(n)),
            Missed::Unknown => Some(None),
        };
        if let Some(count) = lost {
            merged.items.push(Item::Lost {
                ts: sub.timestamp,
                cpu: page.cpu,
                count,
            });
        }
        let base = page.bytes.as_ptr() as usize;
        for record in sub.records() {
            match record {
                Ok(record) => merged.items.push(Item::Record {
                    ts: record.timestamp,
                    cpu: page.cpu,
                    page: index,
                    start: record.data.as_ptr() as usize - base,
                    len: record.data.len(),
                }),
                Err(err) => {
                    merged.errors.push((page.cpu, err));
                    break;
                }
            }
        }
    }
    // Stable: records of one CPU with equal timestamps keep their order.
    merged.items.sort_by_key(Item::key);
    merged
}
