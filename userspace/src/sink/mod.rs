//! Where messages go: [`json::JsonSink`] (JSON lines, `--json`) or [`table::TableSink`]
//! (the human table). Each writes only to the two writers it is given: `out` for the
//! lines a user pipes on (stdout), `diag` for diagnostics (stderr), so tests capture both.

mod attached;
pub(crate) use attached::AttachBlock;
pub mod json;
pub mod table;

use std::io::{self, Write};

use crate::message::{Message, Record};

/// A renderer of messages, records and map dumps.
pub trait Sink {
    /// A message (everything but records and map dumps).
    fn message(&mut self, m: &Message<'_>) -> io::Result<()>;
    /// One perf record.
    fn record(&mut self, r: &Record<'_>) -> io::Result<()>;
    /// A map dump: `entries` writes the JSON elements of the `entries` array.
    fn map_dump(
        &mut self,
        object: &str,
        map: &str,
        map_type: &str,
        entries: &mut dyn FnMut(&mut Vec<u8>),
    ) -> io::Result<()>;
    /// Writes out everything buffered.
    fn flush(&mut self) -> io::Result<()>;
    /// `out` is gone (a closed pipe): from now on only diagnostics are written.
    fn close_out(&mut self);
}

/// The sink `--json` (and `--folded`) ask for, writing to `out` (stdout or `--output`)
/// and stderr.
pub fn new(json: bool, folded: bool, out: Box<dyn Write>) -> Box<dyn Sink> {
    if json {
        Box::new(json::JsonSink::new(out, Stderr))
    } else if folded {
        Box::new(crate::folded::FoldedText::new(out, Stderr))
    } else {
        Box::new(table::TableSink::new(out, Stderr))
    }
}

/// `--output FILE`: appended to, and reopened (same path, created again if logrotate
/// moved it away) before the first write after a SIGHUP.
pub struct OutputFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    reopens_seen: u32,
}

impl OutputFile {
    fn open_append(path: &std::path::Path) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    /// Opens (creates) `path` for appending.
    pub fn open(path: &std::path::Path) -> io::Result<OutputFile> {
        Ok(OutputFile {
            path: path.to_owned(),
            file: Self::open_append(path)?,
            reopens_seen: crate::sys::stop::reopens(),
        })
    }

    fn reopen_if_asked(&mut self) -> io::Result<()> {
        let asked = crate::sys::stop::reopens();
        if asked != self.reopens_seen {
            self.reopens_seen = asked;
            self.file.flush()?;
            self.file = Self::open_append(&self.path)?;
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.reopen_if_asked()?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.reopen_if_asked()?;
        self.file.flush()
    }
}

/// stderr, never panicking and never failing the caller: a closed stderr
/// (`loader 2>&1 | head -1`) loses diagnostics instead of stopping the loader before it
/// detaches its programs.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write_all(buf).ok();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush().ok();
        Ok(())
    }
}

/// Buffer flushed to the writer once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

/// A buffered line writer that can be closed.
pub(crate) struct Out<W: Write> {
    w: W,
    pub(crate) buf: Vec<u8>,
    closed: bool,
}

impl<W: Write> Out<W> {
    pub(crate) fn new(w: W) -> Self {
        Out {
            w,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            closed: false,
        }
    }

    /// Ends the line being written; flushes when the buffer is full.
    pub(crate) fn end_line(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered; false once closed (the buffer is dropped then).
    fn write_buffered(&mut self) -> io::Result<bool> {
        if self.closed {
            self.buf.clear();
            return Ok(false);
        }
        if !self.buf.is_empty() {
            let r = self.w.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(true)
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.write_buffered()? {
            self.w.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered, then `bytes`, straight to the writer (a sink's own batch
    /// of lines, without copying it into the buffer first); nothing once closed.
    pub(crate) fn write_after(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.write_buffered()? {
            self.w.write_all(bytes)?;
        }
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.buf.clear();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The writer (tests read what was written).
    #[cfg(test)]
    pub(crate) fn into_inner(mut self) -> W {
        self.flush().ok();
        self.w
    }
}

/// The human text of a message, as both sinks print it on `diag` (JSON only for errors and
/// the summary); None for messages without one.
pub fn human(m: &Message<'_>) -> Option<String> {
    Some(match *m {
        Message::Kernel(k) => {
            if !(k.legacy || k.kprobes != "perf_pmu" || k.leftovers > 0) {
                return None;
            }
            let reason = if k.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", k.reason)
            };
            format!(
                "loader: kernel {} ({}): legacy={} kprobes={} btf={} memlock={} leftovers_removed={}{reason}",
                k.release, k.version, k.legacy, k.kprobes, k.btf, k.memlock, k.leftovers
            )
        }
        Message::Attached {
            object,
            program,
            section,
            kind,
            target,
        } => format!("loader: attached {object}/{program} ({section}) to {kind} {target}"),
        Message::Loaded {
            object,
            program,
            section,
        } => format!("loader: verified {object}/{program} ({section})"),
        Message::Program {
            object,
            program,
            section,
            kind,
            target,
        } => format!("{object:<18} {program:<28} {kind:<14} {target:<34} {section}"),
        Message::Error {
            object,
            program,
            section,
            error,
            verifier_log,
        } => {
            let where_ = match (program, section) {
                (Some(p), Some(s)) => format!("{object}/{p} ({s})"),
                (Some(p), None) => format!("{object}/{p}"),
                (None, Some(s)) => format!("{object} ({s})"),
                (None, None) => object.to_owned(),
            };
            match verifier_log {
                Some(log) => {
                    format!("loader: error: {where_}: {error}\nloader: verifier log:\n{log}")
                }
                None => format!("loader: error: {where_}: {error}"),
            }
        }
        Message::Lost {
            object,
            map,
            cpu,
            count,
        } => format!("loader: lost {count} records of {object}/{map} on CPU {cpu}"),
        Message::Packets {
            object,
            program,
            iface,
            count,
        } => format!("loader: {object}/{program} passed {count} packets on {iface}"),
        Message::Printk {
            pid,
            comm,
            msg,
            origin,
            ..
        } => match origin {
            Some((object, _)) => format!("printk: {object}: {comm}[{pid}]: {msg}"),
            None => format!("printk: {comm}[{pid}]: {msg}"),
        },
        Message::Summary(s) => format!(
            "loader: summary: {} events, {} lost, {}{} programs attached, {} errors, {} ms",
            s.events,
            s.lost,
            match s.filtered {
                0 => String::new(),
                n => format!("{n} filtered out, "),
            },
            s.attached,
            s.errors,
            s.duration_ms
        ),
        Message::Decode {
            object,
            map,
            records,
            key,
            value,
        } => match (records, value) {
            (true, Some((t, from))) => format!("loader: {object}/{map}: records are {t} ({from})"),
            (true, None) => format!(
                "loader: {object}/{map}: records print as hex: no type known (--event-type {map}=STRUCT names one)"
            ),
            (false, _) => {
                let part = |what: &str, t: Option<(&str, &str)>| {
                    t.map(|(t, from)| format!(" {what} {t} ({from})")).unwrap_or_default()
                };
                format!("loader: {object}/{map}:{}{}", part("keys", key), part("values", value))
            }
        },
        Message::Hist {
            object,
            map,
            key,
            buckets,
        } => {
            let key = key.map(|k| format!(" {k}")).unwrap_or_default();
            format!(
                "@{object}/{map}{key}:\n{}",
                crate::hist::bars(buckets).trim_end()
            )
        }
        Message::Folded { stack, count, .. } => format!("{stack} {count}"),
        Message::Check { .. } | Message::CheckSummary { .. } => return None,
    })
}
