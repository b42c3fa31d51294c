//! The text report and its JSON form. The merge, the `-F` selection and
//! the task names (which trace-cmd's sched plugin learns in record order)
//! are settled on the calling thread, in order; batches of records are
//! formatted on other threads, each with its own renderer, and written
//! back in order.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, mpsc};

use kscope_traceevent::printfmt::Env;
use kscope_traceevent::{EventFormat, Renderer, common_pid};
use serde::Serialize;

use crate::plugins::{self, Plugin};
use crate::{Damage, Report, render_text};

/// The layout of a report's lines, up to where an event's text starts.
pub trait LineLayout: Sync {
    /// Appends the columns of a record's line: its task, pid, CPU, time
    /// and event name.
    fn columns(&self, out: &mut String, comm: &str, pid: i32, cpu: u32, ts: u64, event: &str);
    /// Appends the line (without its newline) that says the kernel
    /// dropped events on `cpu`, and how many when it counted them.
    fn lost(&self, out: &mut String, cpu: u32, count: Option<u64>);
}

/// What the text of a report holds.
#[derive(Debug, Clone, Default)]
pub struct TextOptions {
    /// Only these CPUs (all when empty).
    pub cpus: Vec<u32>,
    /// Raw fields (`-R`) instead of each event's text.
    pub raw: bool,
}

/// One record of `--json`. The fields are in the order of their names.
#[derive(Debug, Clone, Serialize)]
pub struct RecordText<'a> {
    /// Its buffer's name (empty for the top buffer).
    pub buffer: &'a str,
    /// Its task's name, as known before this record.
    pub comm: &'a str,
    /// Its CPU.
    pub cpu: u32,
    /// Its event's name.
    pub event: &'a str,
    /// Events the kernel dropped on the CPU before it (0: uncounted).
    pub lost_before: Option<u64>,
    /// Its task's pid.
    pub pid: i32,
    /// Its text, as the text report prints it.
    pub text: &'a str,
    /// Its timestamp.
    pub ts: u64,
}

/// A record to format, with everything the order of records decides
/// (its task's name as known at that point) already settled.
struct Job<'a> {
    buffer: usize,
    lost: Option<Option<u64>>,
    cpu: u32,
    ts: u64,
    pid: i32,
    comm: JobComm<'a>,
    plugin: Option<Plugin>,
    format: &'a EventFormat<'a>,
    data: &'a [u8],
}

/// A task's name as known when its record came.
enum JobComm<'a> {
    /// From the file's saved cmdlines, which do not change.
    Saved(&'a str),
    /// Learned from an earlier record, copied (task names have at most
    /// 16 bytes): the names learned change as the report goes on.
    Learned([u8; 24], u8),
}

impl JobComm<'_> {
    fn as_str(&self) -> &str {
        match self {
            JobComm::Saved(name) => name,
            JobComm::Learned(bytes, len) => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("<...>")
            }
        }
    }
}

/// How many records go to a formatting thread at a time.
const BATCH: usize = 8192;

impl<'a> Report<'a> {
    /// Writes the text report's records (the `cpus=` line is the
    /// caller's) to `out`, each line laid out by `layout`; returns the
    /// sub-buffers found damaged.
    pub fn write_text(
        &self,
        options: &TextOptions,
        selection: &crate::Selection<'_>,
        layout: &impl LineLayout,
        out: &mut impl Write,
    ) -> io::Result<Vec<Damage>> {
        let prefixes = self.prefixes();
        let renderer = Renderer::new(&self.formats);
        let mut comms = self.comms();
        let mut events = self.events(&options.cpus);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        std::thread::scope(|scope| -> io::Result<()> {
            let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<Job<'_>>)>(threads * 2);
            let job_rx = Arc::new(Mutex::new(job_rx));
            let (done_tx, done_rx) = mpsc::channel::<(usize, String)>();
            for _ in 0..threads {
                let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
                let prefixes = &prefixes;
                scope.spawn(move || {
                    let renderer = Renderer::new(&self.formats);
                    let env = self.env();
                    loop {
                        let next = job_rx.lock().ok().and_then(|rx| rx.recv().ok());
                        let Some((index, jobs)) = next else { break };
                        let mut text = String::with_capacity(jobs.len() * 128);
                        for job in &jobs {
                            format_job(
                                job,
                                prefixes,
                                options.raw,
                                &env,
                                &renderer,
                                layout,
                                &mut text,
                            );
                        }
                        if done_tx.send((index, text)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut pending = BTreeMap::new();
            let mut next_out = 0;
            let write_ready = |pending: &mut BTreeMap<usize, String>,
                               next_out: &mut usize,
                               out: &mut dyn Write|
             -> io::Result<()> {
                while let Some(text) = pending.remove(next_out) {
                    out.write_all(text.as_bytes())?;
                    *next_out += 1;
                }
                Ok(())
            };
            let mut batch = Vec::with_capacity(BATCH);
            let mut sent = 0;
            let mut finished = false;
            while !finished {
                match events.next() {
                    Some(event) => {
                        let Some(format) = renderer.event_of(event.data) else {
                            continue;
                        };
                        let pid = common_pid(event.data);
                        let name = comms.comm(pid);
                        if !selection.accepts(format, event.data, name) {
                            continue;
                        }
                        // trace-cmd prints the task before the event's
                        // text: a name learned from this record counts
                        // from the next.
                        let comm = match comms.saved(pid) {
                            Some(saved) => JobComm::Saved(saved),
                            None => {
                                let name = name.as_bytes();
                                let len = name.len().min(24);
                                let mut bytes = [0u8; 24];
                                bytes[..len].copy_from_slice(&name[..len]);
                                JobComm::Learned(bytes, len as u8)
                            }
                        };
                        let plugin = self.plugins.of(format);
                        plugins::learn(plugin, format, event.data, &mut comms);
                        batch.push(Job {
                            plugin,
                            buffer: event.buffer,
                            lost: event.lost,
                            cpu: event.cpu,
                            ts: event.ts,
                            pid,
                            comm,
                            format,
                            data: event.data,
                        });
                        if batch.len() < BATCH {
                            continue;
                        }
                    }
                    None => finished = true,
                }
                if !batch.is_empty() {
                    let jobs = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if job_tx.send((sent, jobs)).is_err() {
                        break;
                    }
                    sent += 1;
                }
                while let Ok((index, text)) = done_rx.try_recv() {
                    pending.insert(index, text);
                }
                write_ready(&mut pending, &mut next_out, out)?;
            }
            drop(job_tx);
            for (index, text) in done_rx {
                pending.insert(index, text);
                write_ready(&mut pending, &mut next_out, out)?;
            }
            write_ready(&mut pending, &mut next_out, out)
        })?;
        Ok(events.damage())
    }

    /// Calls `each` with every selected record of the CPUs of `options`,
    /// formatted, in order (`--json`); returns the sub-buffers found
    /// damaged.
    pub fn for_each_record<E>(
        &self,
        options: &TextOptions,
        selection: &crate::Selection<'_>,
        mut each: impl FnMut(&RecordText<'_>) -> Result<(), E>,
    ) -> Result<Vec<Damage>, E> {
        let renderer = Renderer::new(&self.formats);
        let env = self.env();
        let mut comms = self.comms();
        let mut events = self.events(&options.cpus);
        let names: Vec<&str> = self.data.buffers.iter().map(|b| b.name.as_str()).collect();
        let mut text = String::new();
        for event in events.by_ref() {
            let Some(format) = renderer.event_of(event.data) else {
                continue;
            };
            let pid = common_pid(event.data);
            if !selection.accepts(format, event.data, comms.comm(pid)) {
                continue;
            }
            let comm = comms.comm(pid).to_string();
            let plugin = self.plugins.of(format);
            plugins::learn(plugin, format, event.data, &mut comms);
            text.clear();
            render_text(
                options.raw,
                plugin,
                format,
                event.data,
                &env,
                &renderer,
                &mut text,
            );
            each(&RecordText {
                buffer: names.get(event.buffer).copied().unwrap_or(""),
                comm: &comm,
                cpu: event.cpu,
                event: format.name,
                lost_before: event.lost.map(|n| n.unwrap_or(0)),
                pid,
                text: &text,
                ts: event.ts,
            })?;
        }
        Ok(events.damage())
    }
}

/// Appends one record's line (and a lost-events line before it).
fn format_job(
    job: &Job<'_>,
    prefixes: &[String],
    raw: bool,
    env: &Env<'_>,
    renderer: &Renderer<'_>,
    layout: &impl LineLayout,
    out: &mut String,
) {
    out.push_str(&prefixes[job.buffer]);
    if let Some(count) = job.lost {
        // trace-cmd puts the mark after the prefix, on its own line, and
        // the record's line then has no prefix.
        layout.lost(out, job.cpu, count);
        out.push('\n');
    }
    layout.columns(
        out,
        job.comm.as_str(),
        job.pid,
        job.cpu,
        job.ts,
        job.format.name,
    );
    render_text(raw, job.plugin, job.format, job.data, env, renderer, out);
    out.push('\n');
}
