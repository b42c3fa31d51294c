//! The records of a trace.dat in time order: one cursor per CPU of each
//! buffer, decoding its sub-buffers as the merge reaches them
//! (`kscope_traceevent::merge`), and giving back to the kernel the pages
//! it has left far behind, so that memory does not grow with the file.

use std::cell::RefCell;
use std::rc::Rc;

use kscope_tracedat::{TraceData, TraceFile};
use kscope_traceevent::merge::Merge;
use kscope_traceevent::{PageError, PageLayout, Records, SubBuffer};

/// One record of the merged trace.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Its buffer's index in the file (0: the first, usually the top).
    pub buffer: usize,
    /// Its CPU.
    pub cpu: u32,
    /// Its timestamp, in trace clock units.
    pub ts: u64,
    /// Its payload (the event's fields, `common_type` first).
    pub data: &'a [u8],
    /// The kernel dropped events on this CPU before this record (the
    /// sub-buffer it starts says so), and how many when it counted them.
    pub lost: Option<Option<u64>>,
}

/// A sub-buffer that did not decode whole; the records before the
/// damage were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The buffer's name (empty for the top buffer).
    pub buffer: String,
    /// The CPU.
    pub cpu: u32,
    /// What is wrong.
    pub error: PageError,
}

/// How far behind a cursor pages stay mapped: records in batches being
/// formatted point into the last 8 MiB read; older pages are given back.
const KEEP: usize = 8 << 20;

/// One CPU of one buffer: its pages, decoded as they are reached.
struct Cursor<'a> {
    buffer: usize,
    cpu: u32,
    name: &'a str,
    pages: std::slice::ChunksExact<'a, u8>,
    /// The CPU's data, and how much of its start was released.
    all: &'a [u8],
    released: usize,
    /// The mapped file, whose pages behind the cursor are released.
    file: Option<&'a TraceFile>,
    layout: &'a PageLayout,
    records: Option<Records<'a>>,
    /// A lost-events mark for the next record.
    lost: Option<Option<u64>>,
    damage: Rc<RefCell<Vec<Damage>>>,
}

impl<'a> Cursor<'a> {
    fn damaged(&self, error: PageError) {
        self.damage.borrow_mut().push(Damage {
            buffer: self.name.to_string(),
            cpu: self.cpu,
            error,
        });
    }
}

impl<'a> Iterator for Cursor<'a> {
    type Item = (u64, Event<'a>);

    fn next(&mut self) -> Option<(u64, Event<'a>)> {
        loop {
            if let Some(records) = self.records.as_mut() {
                match records.next() {
                    Some(Ok(r)) => {
                        let event = Event {
                            buffer: self.buffer,
                            cpu: self.cpu,
                            ts: r.timestamp,
                            data: r.data,
                            lost: self.lost.take(),
                        };
                        return Some((r.timestamp, event));
                    }
                    Some(Err(error)) => self.damaged(error),
                    None => {}
                }
                self.records = None;
            }
            let page = self.pages.next()?;
            if let Some(file) = self.file {
                let at = (page.as_ptr() as usize).saturating_sub(self.all.as_ptr() as usize);
                if at > self.released + 2 * KEEP {
                    let upto = (at - KEEP).min(self.all.len());
                    file.release(&self.all[self.released..upto]);
                    self.released = upto;
                }
            }
            match SubBuffer::parse(page, self.layout) {
                Ok(sub) => {
                    let lost = sub.missed.lost();
                    self.records = Some(sub.records());
                    if lost.is_some() {
                        self.lost = lost;
                    }
                }
                Err(error) => self.damaged(error),
            }
        }
    }
}

/// The records of every CPU of every buffer (or of some CPUs), ordered
/// by (time, buffer, CPU), as trace-cmd orders them.
pub struct Events<'a> {
    merge: Merge<Cursor<'a>, Event<'a>>,
    damage: Rc<RefCell<Vec<Damage>>>,
}

impl<'a> Events<'a> {
    /// The records of `data` on the CPUs `only` names (every CPU when it
    /// is empty); the pages of `file`, when given, are released behind.
    pub fn new(
        data: &'a TraceData<'a>,
        layout: &'a PageLayout,
        only: &[u32],
        file: Option<&'a TraceFile>,
    ) -> Events<'a> {
        let damage = Rc::new(RefCell::new(Vec::new()));
        let mut cursors = Vec::new();
        for (index, buffer) in data.buffers.iter().enumerate() {
            let page_size = (buffer.page_size as usize).max(1);
            for cpu in &buffer.cpus {
                if !only.is_empty() && !only.contains(&cpu.cpu) {
                    continue;
                }
                cursors.push(Cursor {
                    buffer: index,
                    cpu: cpu.cpu,
                    name: &buffer.name,
                    pages: cpu.data.chunks_exact(page_size),
                    all: &cpu.data,
                    released: 0,
                    file,
                    layout,
                    records: None,
                    lost: None,
                    damage: damage.clone(),
                });
            }
        }
        // Ties go to the earlier buffer, then the lower CPU.
        cursors.sort_by_key(|c| (c.buffer, c.cpu));
        Events {
            merge: Merge::new(cursors),
            damage,
        }
    }

    /// The sub-buffers found damaged so far, in the order found.
    pub fn damage(&self) -> Vec<Damage> {
        self.damage.borrow().clone()
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        self.merge.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kscope_traceevent::HeaderPage;

    const V6: &[u8] = include_bytes!("../../tracedat/tests/data/v6.dat");

    fn layout(data: &TraceData<'_>) -> PageLayout {
        let text = std::str::from_utf8(&data.header_page).unwrap();
        PageLayout::from_header(&HeaderPage::parse(text).unwrap())
    }

    #[test]
    fn every_record_of_every_cpu_comes_once_in_time_order() {
        let data = kscope_tracedat::parse(V6).unwrap();
        let layout = layout(&data);
        let mut events = Events::new(&data, &layout, &[], None);
        let all: Vec<(u64, u32)> = events.by_ref().map(|e| (e.ts, e.cpu)).collect();
        assert!(events.damage().is_empty());
        assert!(all.windows(2).all(|w| w[0] <= w[1]), "out of order");
        let cpus: Vec<u32> = data.buffers[0].cpus.iter().map(|c| c.cpu).collect();
        assert!(cpus.len() > 1, "the fixture has several CPUs");
        let mut per_cpu = 0;
        for cpu in cpus {
            let only: Vec<Event<'_>> = Events::new(&data, &layout, &[cpu], None).collect();
            assert!(only.iter().all(|e| e.cpu == cpu));
            assert_eq!(only.len(), all.iter().filter(|(_, c)| *c == cpu).count());
            per_cpu += only.len();
        }
        assert_eq!(per_cpu, all.len());
    }

    #[test]
    fn a_damaged_sub_buffer_is_named_and_the_other_records_kept() {
        let mut data = kscope_tracedat::parse(V6).unwrap();
        let layout = layout(&data);
        let whole = Events::new(&data, &layout, &[], None).count();
        let name = data.buffers[0].name.clone();
        let cpu = &mut data.buffers[0].cpus[0];
        let number = cpu.cpu;
        let mut bytes = cpu.data.to_vec();
        // The first sub-buffer's commit, far past its end.
        bytes[8..16].copy_from_slice(&0x00ff_ffffu64.to_le_bytes());
        cpu.data = std::borrow::Cow::Owned(bytes);
        let mut events = Events::new(&data, &layout, &[], None);
        let left = events.by_ref().count();
        let damage = events.damage();
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert_eq!((&damage[0].buffer, damage[0].cpu), (&name, number));
        assert!(left < whole && left > 0, "{left} of {whole}");
    }
}
