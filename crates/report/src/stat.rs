//! `trace report --stat`: what trace-cmd prints (the kernel's per-CPU
//! statistics saved in the file as CPUSTAT options, then where each CPU's
//! data of the top buffer sits in the file), then how many records of
//! each event the file holds (per buffer with `--cpu` applied) and the
//! lost events it marks.

use std::collections::BTreeMap;

use kscope_tracedat::TraceFile;
use kscope_traceevent::Renderer;

use crate::{Damage, Report};

/// Where one CPU's data of the top buffer sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuData {
    /// The CPU.
    pub cpu: u32,
    /// Its offset in the file; 0 for data that was decompressed.
    pub offset: usize,
    /// Its size in bytes.
    pub size: usize,
}

/// What `--stat` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// The file's CPU count.
    pub cpus: u32,
    /// The kernel's per-CPU statistics, one text per CPU.
    pub cpu_stats: Vec<String>,
    /// The top buffer's data per CPU: a version 6 file without one shows
    /// an empty entry for each CPU, as trace-cmd shows it.
    pub cpu_data: Vec<CpuData>,
    /// Records per event name (`(unknown event)` for ids without a format).
    pub counts: BTreeMap<String, u64>,
    /// Events the kernel dropped and counted.
    pub lost: u64,
    /// Places where the kernel dropped events without counting them.
    pub unknown_lost: u64,
}

impl Report<'_> {
    /// The statistics of the file, records counted on the CPUs `cpus`
    /// (all when empty); and the sub-buffers found damaged. Offsets are
    /// known when the report was given the file.
    pub fn statistics(&self, cpus: &[u32]) -> (Statistics, Vec<Damage>) {
        let data = self.data;
        let file = self.file.map_or(&[][..], TraceFile::bytes);
        let mut cpu_data = Vec::new();
        let top = data.buffers.iter().find(|b| b.name.is_empty());
        if top.is_none() && data.version == 6 {
            cpu_data.extend((0..data.cpus).map(|cpu| CpuData {
                cpu,
                offset: 0,
                size: 0,
            }));
        }
        if let Some(top) = top {
            let base = file.as_ptr() as usize;
            for cpu in &top.cpus {
                // Borrowed data lies in the file, at its offset; data that
                // was decompressed has none.
                let at = cpu.data.as_ptr() as usize;
                let offset = if (base..base + file.len()).contains(&at) {
                    at - base
                } else {
                    0
                };
                cpu_data.push(CpuData {
                    cpu: cpu.cpu,
                    offset,
                    size: cpu.data.len(),
                });
            }
        }
        let renderer = Renderer::new(&self.formats);
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let (mut lost, mut unknown_lost) = (0u64, 0u64);
        let mut events = self.events(cpus);
        for event in events.by_ref() {
            let name = renderer
                .event_of(event.data)
                .map_or("(unknown event)", |f| f.name);
            match counts.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(name.to_string(), 1);
                }
            }
            match event.lost {
                Some(Some(n)) => lost += n,
                Some(None) => unknown_lost += 1,
                None => {}
            }
        }
        let statistics = Statistics {
            cpus: data.cpus,
            cpu_stats: data.cpu_stats().into_iter().map(str::to_string).collect(),
            cpu_data,
            counts,
            lost,
            unknown_lost,
        };
        (statistics, events.damage())
    }
}
