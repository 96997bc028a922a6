//! The human table (no `--json`): records as aligned columns, one header per record
//! layout, a PROBE column naming the object; printk lines and map dumps on `out` too;
//! attach and error lines on `diag`.
//!
//! Columns of a record: TIME, PROBE, then the record's own scalar fields in order (byte
//! arrays as text, `*flags*` fields in hex), then the strings after the fixed part (an
//! exec's arguments). TIME is the record's own timestamp when it has one (a `ktime_ns`,
//! `ts`, `ts_ns`, `timestamp` or `time_ns` field, CLOCK_MONOTONIC nanoseconds as
//! `bpf_ktime_get_ns` returns them, turned into wall-clock time), else when it was read.

use std::io::{self, Write};

use super::AttachBlock;
use super::{human, Out, Sink};
use crate::decode;
use crate::dwarf::{Field, Type};
use crate::message::{Message, Record};

/// Field names taken as the record's CLOCK_MONOTONIC timestamp.
const TIME_FIELDS: &[&str] = &["ktime_ns", "ts", "ts_ns", "timestamp", "time_ns"];

/// The human table on `out`, diagnostics on `diag`.
pub struct TableSink<W: Write, D: Write> {
    out: Out<W>,
    diag: D,
    /// The header printed last (records of another layout print theirs).
    header: Vec<u8>,
    cell: Vec<u8>,
    /// The attached block, held until attaching is over.
    attached: AttachBlock,
}

impl<W: Write, D: Write> TableSink<W, D> {
    /// A sink writing the table to `out` and diagnostics to `diag`.
    pub fn new(out: W, diag: D) -> Self {
        TableSink {
            out: Out::new(out),
            diag,
            header: Vec::new(),
            cell: Vec::new(),
            attached: AttachBlock::default(),
        }
    }

    /// Both writers (tests read them).
    #[cfg(test)]
    pub fn into_parts(self) -> (W, D) {
        (self.out.into_inner(), self.diag)
    }
}

/// A column of a record layout.
struct Column<'a> {
    field: &'a Field,
    width: usize,
}

fn is_bytes(t: &Type) -> bool {
    matches!(t, Type::Array { elem, .. } if matches!(**elem, Type::Int { size: 1, .. } | Type::Char { size: 1 }))
}

/// The fields shown as columns: scalars and byte strings (nested structs and arrays are
/// left to `--json`), the timestamp excepted.
fn columns(fields: &[Field]) -> Vec<Column<'_>> {
    fields
        .iter()
        .filter(|f| !TIME_FIELDS.contains(&f.name.as_str()) && f.ty.size() > 0)
        .filter_map(|f| {
            let width = match &f.ty {
                Type::Int { size, .. } | Type::Enum { size, .. } => match size {
                    1 | 2 => 5,
                    4 => 7,
                    _ => 12,
                },
                Type::Bool { .. } => 5,
                Type::Char { .. } => 4,
                Type::Pointer { .. } => 18,
                t if is_bytes(t) => (t.size() as usize).clamp(8, 16),
                _ => return None,
            };
            let errno = if f.name == "ret" || f.name == "retval" {
                12
            } else {
                0
            };
            Some(Column {
                field: f,
                width: width.max(f.name.len()).max(errno),
            })
        })
        .collect()
}

/// Wall-clock seconds since the epoch of CLOCK_MONOTONIC `ns`, or of now.
fn wall_time(mono_ns: Option<u64>) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let Some(ns) = mono_ns else {
        return now;
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return now;
    }
    let mono_now = ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
    now - (mono_now - ns as f64 / 1e9)
}

fn time_of_day(buf: &mut Vec<u8>, wall: f64) -> io::Result<()> {
    let secs = wall as u64 % 86_400;
    let millis = ((wall.fract()) * 1000.0) as u64 % 1000;
    write!(
        buf,
        "{:02}:{:02}:{:02}.{millis:03} ",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The name of errno `e` (the common ones; others print as the number).
fn errno_name(e: i64) -> Option<&'static str> {
    const NAMES: [&str; 41] = [
        "",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
    ];
    match e {
        1..=40 => NAMES.get(e as usize).copied(),
        110 => Some("ETIMEDOUT"),
        111 => Some("ECONNREFUSED"),
        113 => Some("EHOSTUNREACH"),
        _ => None,
    }
}

/// `cell` as the table shows it: JSON strings unquoted, `*flags*` integers in hex, a
/// negative `ret`/`retval` with its errno name (`-2 ENOENT`).
fn cell_text(cell: &[u8], f: &Field) -> String {
    if f.name == "ret" || f.name == "retval" {
        if let Some(v) = std::str::from_utf8(cell)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            if let Some(name) = v.checked_neg().and_then(errno_name).filter(|_| v < 0) {
                return format!("{v} {name}");
            }
        }
    }
    if f.name.contains("flags") {
        if let Ok(v) = std::str::from_utf8(cell).unwrap_or("").parse::<u64>() {
            return format!("{v:#x}");
        }
    }
    if cell.first() == Some(&b'"') {
        if let Ok(s) = serde_json::from_slice::<String>(cell) {
            return s;
        }
    }
    if cell.starts_with(b"{\"bytes\":") {
        // Not UTF-8: shown with replacement characters (`--json` keeps the bytes).
        use base64::Engine as _;
        let v: serde_json::Value = serde_json::from_slice(cell).unwrap_or_default();
        if let Some(b) = v["bytes"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        {
            return String::from_utf8_lossy(&b).into_owned();
        }
    }
    String::from_utf8_lossy(cell).into_owned()
}

fn record_time(fields: &[Field], data: &[u8]) -> Option<u64> {
    let f = fields
        .iter()
        .find(|f| TIME_FIELDS.contains(&f.name.as_str()) && f.ty.size() == 8)?;
    let at = f.offset as usize;
    let b: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b)).filter(|&ns| ns > 0)
}

impl<W: Write, D: Write> TableSink<W, D> {
    fn header_for(&mut self, probe_width: usize, cols: &[Column<'_>], tail: Option<&str>) {
        let mut h = Vec::new();
        write!(h, "{:<13}{:<probe_width$} ", "TIME", "PROBE").ok();
        for c in cols {
            write!(h, "{:<w$} ", c.field.name.to_uppercase(), w = c.width).ok();
        }
        if let Some(t) = tail {
            h.extend_from_slice(t.to_uppercase().as_bytes());
        }
        while h.last() == Some(&b' ') {
            h.pop();
        }
        if h != self.header {
            self.out.buf.extend_from_slice(&h);
            self.out.buf.push(b'\n');
            self.header = h;
        }
    }

    fn struct_record(&mut self, r: &Record<'_>, fields: &[Field], size: usize) -> io::Result<()> {
        let cols = columns(fields);
        let tail = r.data.get(size..).unwrap_or(&[]);
        let strings: Vec<&[u8]> = tail.split(|&x| x == 0).filter(|p| !p.is_empty()).collect();
        let flexible = fields
            .iter()
            .find(|f| matches!(f.ty, Type::Array { count: 0, .. }));
        let tail_name = match (flexible, strings.is_empty()) {
            (Some(f), _) => Some(f.name.as_str()),
            (None, false) => Some("args"),
            (None, true) => None,
        };
        let probe_width = r.object.len().max(12);
        self.header_for(probe_width, &cols, tail_name);
        time_of_day(&mut self.out.buf, wall_time(record_time(fields, r.data)))?;
        write!(self.out.buf, "{:<probe_width$} ", r.object)?;
        for c in &cols {
            let at = c.field.offset as usize;
            let text = match r.data.get(at..at + c.field.ty.size() as usize) {
                Some(b) => {
                    self.cell.clear();
                    decode::value(&mut self.cell, &c.field.ty, b);
                    cell_text(&self.cell, c.field)
                }
                None => "-".to_owned(),
            };
            write!(self.out.buf, "{text:<w$} ", w = c.width)?;
        }
        for (i, s) in strings.iter().enumerate() {
            if i > 0 {
                self.out.buf.push(b' ');
            }
            self.out
                .buf
                .extend_from_slice(&String::from_utf8_lossy(s).into_owned().into_bytes());
        }
        while self.out.buf.last() == Some(&b' ') {
            self.out.buf.pop();
        }
        self.out.end_line()
    }
}

impl<W: Write, D: Write> Sink for TableSink<W, D> {
    fn message(&mut self, m: &Message<'_>) -> io::Result<()> {
        if self.attached.hold(m, &mut self.diag)? {
            return Ok(());
        }
        let Some(text) = human(m) else {
            return Ok(());
        };
        if matches!(m, Message::Program { .. }) && self.header.is_empty() {
            let h = format!(
                "{:<18} {:<28} {:<14} {:<34} SECTION",
                "OBJECT", "PROGRAM", "KIND", "TARGET"
            );
            self.out.buf.extend_from_slice(h.as_bytes());
            self.out.buf.push(b'\n');
            self.header = h.into_bytes();
        }
        if matches!(
            m,
            Message::Printk { .. } | Message::Program { .. } | Message::Hist { .. }
        ) {
            self.out.buf.extend_from_slice(text.as_bytes());
            return self.out.end_line();
        }
        writeln!(self.diag, "{text}")
    }

    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        self.attached.end(&mut self.diag)?;
        self.record_row(r)?;
        for (key, frames) in r.stacks {
            writeln!(self.out.buf, "    {key}:")?;
            for f in frames {
                writeln!(self.out.buf, "        {}", crate::stacks::frame_text(f))?;
            }
        }
        Ok(())
    }

    fn map_dump(
        &mut self,
        object: &str,
        map: &str,
        map_type: &str,
        entries: &mut dyn FnMut(&mut Vec<u8>),
    ) -> io::Result<()> {
        self.attached.end(&mut self.diag)?;
        self.dump(object, map, map_type, entries)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.attached.end(&mut self.diag)?;
        self.diag.flush()?;
        self.out.flush()
    }

    fn close_out(&mut self) {
        self.out.close();
    }
}

impl<W: Write, D: Write> TableSink<W, D> {
    /// One record's row (header first when its layout is new).
    fn record_row(&mut self, r: &Record<'_>) -> io::Result<()> {
        match r.ty {
            Some(Type::Struct { fields, size, .. }) if *size > 0 => {
                self.struct_record(r, fields, *size as usize)
            }
            Some(t) if t.size() > 0 => {
                time_of_day(&mut self.out.buf, wall_time(None))?;
                write!(self.out.buf, "{}/{} ", r.object, r.map)?;
                decode::value(&mut self.out.buf, t, r.data);
                self.out.end_line()
            }
            _ => {
                time_of_day(&mut self.out.buf, wall_time(None))?;
                write!(self.out.buf, "{}/{} cpu{} ", r.object, r.map, r.cpu)?;
                for b in r.data {
                    write!(self.out.buf, "{b:02x}")?;
                }
                self.out.end_line()
            }
        }
    }

    fn dump(
        &mut self,
        object: &str,
        map: &str,
        map_type: &str,
        entries: &mut dyn FnMut(&mut Vec<u8>),
    ) -> io::Result<()> {
        let mut json = b"[".to_vec();
        entries(&mut json);
        json.push(b']');
        let list: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap_or_default();
        let nonzero: Vec<&serde_json::Value> = list.iter().filter(|e| !is_zero_entry(e)).collect();
        writeln!(
            self.out.buf,
            "map {object}/{map} ({map_type}): {} entries{}",
            list.len(),
            match list.len() - nonzero.len() {
                0 => String::new(),
                n => format!(", {n} zero ones not shown"),
            }
        )?;
        for e in nonzero {
            let key = e.get("key").map_or(String::new(), text_of);
            if let Some(frames) = e.get("stack").and_then(|s| s.as_array()) {
                writeln!(self.out.buf, "  stack {key}:")?;
                for f in frames {
                    writeln!(
                        self.out.buf,
                        "        {}",
                        crate::stacks::json_frame_text(f)
                    )?;
                }
                continue;
            }
            let value = e
                .get("sum")
                .or_else(|| e.get("value"))
                .or_else(|| e.get("values"))
                .map_or(String::new(), text_of);
            writeln!(self.out.buf, "@{map}[{key}]: {value}")?;
        }
        self.header.clear();
        self.out.flush()
    }
}

/// An entry whose value (or per-CPU sum) is 0: array maps have many.
fn is_zero_entry(e: &serde_json::Value) -> bool {
    let v = e.get("sum").or_else(|| e.get("value"));
    v.is_some_and(|v| v.as_u64() == Some(0) || v.as_i64() == Some(0))
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
