//! The one buffered writer every message goes through, as JSON lines (`--json`) or a
//! human table. Generic over `Write` so tests capture it in a `Vec<u8>`.
//!
//! JSON schema (one object per line, tagged by `type`):
//! - `{"type":"attached","object":O,"program":P,"section":S,"kind":K,"target":T}`
//! - `{"type":"error","object":O,"program":P|null,"section":S|null,"error":E,"verifier_log":L?}`
//! - `{"type":"event","object":O,"map":M,"cpu":C,"data":{...}}`
//! - `{"type":"lost","object":O,"map":M,"cpu":C,"count":N}`
//! - `{"type":"map","object":O,"map":M,"map_type":T,"entries":[{"key":K,"value":V}]}`
//!   (per-CPU maps: `{"key":K,"values":[per CPU],"sum":S}`, `sum` for integer values)
//! - `{"type":"packets","object":O,"program":P,"iface":I,"count":N}` (socket filters)
//! - `{"type":"printk","pid":N,"comm":C,"cpu":N,"msg":M}`
//! - `{"type":"summary","events":N,"lost":N,"attached":N,"errors":N,"duration_ms":N,"maps":[...]}`

use std::io::{self, Write};

use crate::decode;
use crate::dwarf::Type;
use crate::json;

const FLUSH_AT: usize = 64 * 1024;

/// The `kernel` line: version, legacy decisions, leftovers cleaned.
pub struct KernelLine<'a> {
    /// `uname -r`
    pub release: &'a str,
    /// upstream version (`4.19.316`)
    pub version: &'a str,
    /// LINUX_VERSION_CODE written into kprobe programs
    pub version_code: u32,
    /// legacy mode on
    pub legacy: bool,
    /// `perf_pmu` or `kprobe_events`
    pub kprobes: &'a str,
    /// object BTF may be loaded
    pub btf: bool,
    /// `raised`, `unchanged` or an error
    pub memlock: &'a str,
    /// leftover kprobe events of dead loaders removed at start
    pub leftovers: usize,
    /// why legacy / fallback
    pub reason: &'a str,
}

/// Buffered output.
pub struct Printer<W: Write> {
    out: W,
    buf: Vec<u8>,
    json: bool,
    header_done: bool,
    /// `{"type":"event","object":..,"map":..,"cpu":..,"data":` of the last event, and what
    /// it was built from: consecutive records come from the same ring, so this is reused.
    event_prefix: EventPrefix,
}

/// What [`Printer::event`] keeps between calls. A perf map's record type is assumed
/// fixed for the run (the plan is rebuilt when the object, map, CPU or type changes).
#[derive(Default)]
struct EventPrefix {
    bytes: Vec<u8>,
    object: String,
    map: String,
    cpu: Option<u32>,
    /// Address of the `Type` the plan was compiled from (0: none).
    ty: usize,
    plan: Option<decode::RecordPlan>,
}

/// Counters for one perf map, for the summary.
#[derive(Debug, Clone, Default)]
pub struct MapCount {
    /// object name
    pub object: String,
    /// map name
    pub map: String,
    /// records delivered
    pub events: u64,
    /// records the kernel reported lost
    pub lost: u64,
}

/// The final summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// records delivered
    pub events: u64,
    /// records lost
    pub lost: u64,
    /// programs attached
    pub attached: u64,
    /// errors reported
    pub errors: u64,
    /// run time
    pub duration_ms: u64,
    /// per perf map
    pub maps: Vec<MapCount>,
}

/// A JSON field value of a non-event line.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Str(&'a str),
    U64(u64),
    Bool(bool),
    Null,
}

impl<'a> Field<'a> {
    /// A string, or `null`.
    fn opt(v: Option<&'a str>) -> Self {
        v.map_or(Field::Null, Field::Str)
    }
}

impl<W: Write> Printer<W> {
    /// A printer writing JSON lines (`json`) or human text to `out`.
    pub fn new(out: W, json: bool) -> Self {
        Printer {
            out,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            json,
            header_done: false,
            event_prefix: EventPrefix::default(),
        }
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = self.out.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        self.out.flush()
    }

    fn end_line(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn begin(&mut self, ty: &str) {
        self.buf.extend_from_slice(b"{\"type\":");
        json::str(&mut self.buf, ty);
    }

    fn field_str(&mut self, k: &str, v: &str) {
        self.field(k, Field::Str(v));
    }

    fn field_u64(&mut self, k: &str, v: u64) {
        self.field(k, Field::U64(v));
    }

    fn field(&mut self, k: &str, v: Field<'_>) {
        self.buf.push(b',');
        json::key(&mut self.buf, k);
        match v {
            Field::Str(v) => json::str(&mut self.buf, v),
            Field::U64(v) => json::uint(&mut self.buf, u128::from(v)),
            Field::Bool(v) => {
                self.buf
                    .extend_from_slice(if v { b"true" as &[u8] } else { b"false" })
            }
            Field::Null => self.buf.extend_from_slice(b"null"),
        }
    }

    /// One whole JSON line: `{"type":ty, fields...}`.
    fn line(&mut self, ty: &str, fields: &[(&str, Field<'_>)]) -> io::Result<()> {
        self.begin(ty);
        for (k, v) in fields {
            self.field(k, *v);
        }
        self.buf.push(b'}');
        self.end_line()
    }

    /// What the loader found out about the running kernel and the paths it chose.
    pub fn kernel(&mut self, k: &KernelLine<'_>) -> io::Result<()> {
        if !self.json {
            if k.legacy || k.kprobes != "perf_pmu" || k.leftovers > 0 {
                crate::say!(
                    "loader: kernel {} ({}): legacy={} kprobes={} btf={} memlock={} leftovers_removed={}{}",
                    k.release,
                    k.version,
                    k.legacy,
                    k.kprobes,
                    k.btf,
                    k.memlock,
                    k.leftovers,
                    if k.reason.is_empty() { String::new() } else { format!(" ({})", k.reason) }
                );
            }
            return Ok(());
        }
        self.line(
            "kernel",
            &[
                ("release", Field::Str(k.release)),
                ("version", Field::Str(k.version)),
                ("version_code", Field::U64(u64::from(k.version_code))),
                ("legacy", Field::Bool(k.legacy)),
                ("kprobes", Field::Str(k.kprobes)),
                ("btf", Field::Bool(k.btf)),
                ("memlock", Field::Str(k.memlock)),
                ("leftovers_removed", Field::U64(k.leftovers as u64)),
                ("reason", Field::Str(k.reason)),
            ],
        )
    }

    /// A program was attached.
    pub fn attached(
        &mut self,
        object: &str,
        program: &str,
        section: &str,
        kind: &str,
        target: &str,
    ) -> io::Result<()> {
        if !self.json {
            crate::say!("loader: attached {object}/{program} ({section}) to {kind} {target}");
            return Ok(());
        }
        self.line(
            "attached",
            &[
                ("object", Field::Str(object)),
                ("program", Field::Str(program)),
                ("section", Field::Str(section)),
                ("kind", Field::Str(kind)),
                ("target", Field::Str(target)),
            ],
        )
    }

    /// A program passed the verifier (`--verify`).
    pub fn loaded(&mut self, object: &str, program: &str, section: &str) -> io::Result<()> {
        if !self.json {
            crate::say!("loader: verified {object}/{program} ({section})");
            return Ok(());
        }
        self.line(
            "loaded",
            &[
                ("object", Field::Str(object)),
                ("program", Field::Str(program)),
                ("section", Field::Str(section)),
            ],
        )
    }

    /// Something failed (a program, a map, an object).
    pub fn error(
        &mut self,
        object: &str,
        program: Option<&str>,
        section: Option<&str>,
        error: &str,
        verifier_log: Option<&str>,
    ) -> io::Result<()> {
        let where_ = match (program, section) {
            (Some(p), Some(s)) => format!("{object}/{p} ({s})"),
            (Some(p), None) => format!("{object}/{p}"),
            _ => object.to_owned(),
        };
        crate::say!("loader: error: {where_}: {error}");
        if let Some(log) = verifier_log {
            crate::say!("loader: verifier log:\n{log}");
        }
        if !self.json {
            return Ok(());
        }
        let fields = [
            ("object", Field::Str(object)),
            ("program", Field::opt(program)),
            ("section", Field::opt(section)),
            ("error", Field::Str(error)),
            ("verifier_log", Field::opt(verifier_log)),
        ];
        // No verifier log: no key at all.
        let n = if verifier_log.is_some() { 5 } else { 4 };
        self.line("error", &fields[..n])
    }

    /// One perf record.
    pub fn event(
        &mut self,
        object: &str,
        map: &str,
        cpu: u32,
        ty: Option<&Type>,
        data: &[u8],
    ) -> io::Result<()> {
        if !self.json {
            return self.human_event(object, map, cpu, ty, data);
        }
        let p = &mut self.event_prefix;
        let ty_addr = ty.map_or(0, |t| t as *const Type as usize);
        if p.ty != ty_addr {
            p.plan = ty.and_then(decode::RecordPlan::new);
            p.ty = ty_addr;
        }
        if p.cpu != Some(cpu) || p.object != object || p.map != map {
            let start = self.buf.len();
            self.begin("event");
            self.field_str("object", object);
            self.field_str("map", map);
            self.field_u64("cpu", u64::from(cpu));
            self.buf.extend_from_slice(b",\"data\":");
            let p = &mut self.event_prefix;
            p.bytes.clear();
            p.bytes.extend_from_slice(&self.buf[start..]);
            object.clone_into(&mut p.object);
            map.clone_into(&mut p.map);
            p.cpu = Some(cpu);
        } else {
            self.buf.extend_from_slice(&p.bytes);
        }
        let planned = match &self.event_prefix.plan {
            Some(plan) => plan.write(&mut self.buf, data),
            None => false,
        };
        if !planned {
            decode::record(&mut self.buf, ty, data);
        }
        self.buf.push(b'}');
        self.end_line()
    }

    fn human_event(
        &mut self,
        object: &str,
        map: &str,
        cpu: u32,
        ty: Option<&Type>,
        data: &[u8],
    ) -> io::Result<()> {
        use std::io::Write as _;
        if !self.header_done {
            self.header_done = true;
            self.buf.extend_from_slice(
                b"TIME          PCOMM            PID     UID     GID     DESC\n",
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs() % 86_400;
        write!(
            self.buf,
            "{:02}:{:02}:{:02}.{:03}  ",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            now.subsec_millis()
        )?;
        let fields = match ty {
            Some(Type::Struct { fields, .. }) => fields.as_slice(),
            _ => &[],
        };
        let get = |name: &str| {
            fields.iter().find(|f| f.name == name).and_then(|f| {
                let start = f.offset as usize;
                data.get(start..start + f.ty.size() as usize)
                    .map(|b| (f, b))
            })
        };
        let mut cell = Vec::new();
        for (name, width) in [("comm", 16usize), ("pid", 7), ("uid", 7), ("gid", 7)] {
            cell.clear();
            match get(name) {
                Some((f, b)) => decode::value(&mut cell, &f.ty, b),
                None => cell.push(b'-'),
            }
            let text = String::from_utf8_lossy(&cell);
            let text = text.trim_matches('"');
            write!(self.buf, "{text:<width$} ")?;
        }
        // DESC: the other fields as name=value, then tail strings.
        let mut first = true;
        for f in fields {
            if f.ty.size() == 0 || ["comm", "pid", "uid", "gid"].contains(&f.name.as_str()) {
                continue;
            }
            let start = f.offset as usize;
            let Some(b) = data.get(start..start + f.ty.size() as usize) else {
                continue;
            };
            if !first {
                self.buf.push(b' ');
            }
            first = false;
            write!(self.buf, "{}=", f.name)?;
            decode::value(&mut self.buf, &f.ty, b);
        }
        match ty {
            Some(t) if t.size() > 0 => {
                let tail = data.get(t.size() as usize..).unwrap_or(&[]);
                for piece in tail.split(|&x| x == 0).filter(|p| !p.is_empty()) {
                    self.buf.push(b' ');
                    self.buf.extend_from_slice(piece);
                }
                if fields.is_empty() {
                    decode::value(&mut self.buf, t, data);
                }
            }
            _ => {
                write!(self.buf, "{object}/{map} cpu{cpu} ")?;
                json::hex(&mut self.buf, data);
            }
        }
        self.end_line()
    }

    /// The kernel dropped records.
    pub fn lost(&mut self, object: &str, map: &str, cpu: u32, count: u64) -> io::Result<()> {
        if !self.json {
            crate::say!("loader: lost {count} records of {object}/{map} on CPU {cpu}");
            return Ok(());
        }
        self.line(
            "lost",
            &[
                ("object", Field::Str(object)),
                ("map", Field::Str(map)),
                ("cpu", Field::U64(u64::from(cpu))),
                ("count", Field::U64(count)),
            ],
        )
    }

    /// Packets seen by a socket filter's socket.
    pub fn packets(
        &mut self,
        object: &str,
        program: &str,
        iface: &str,
        count: u64,
    ) -> io::Result<()> {
        if !self.json {
            crate::say!("loader: {object}/{program} passed {count} packets on {iface}");
            return Ok(());
        }
        self.line(
            "packets",
            &[
                ("object", Field::Str(object)),
                ("program", Field::Str(program)),
                ("iface", Field::Str(iface)),
                ("count", Field::U64(count)),
            ],
        )
    }

    /// A bpf_trace_printk line.
    pub fn printk(&mut self, pid: u32, comm: &str, cpu: Option<u32>, msg: &str) -> io::Result<()> {
        if !self.json {
            use std::io::Write as _;
            writeln!(self.buf, "printk: {comm}[{pid}]: {msg}")?;
            return Ok(());
        }
        let pid = ("pid", Field::U64(u64::from(pid)));
        let comm = ("comm", Field::Str(comm));
        let msg = ("msg", Field::Str(msg));
        match cpu {
            Some(cpu) => self.line(
                "printk",
                &[pid, comm, ("cpu", Field::U64(u64::from(cpu))), msg],
            ),
            None => self.line("printk", &[pid, comm, msg]),
        }
    }

    /// A map dump. `entries` writes the elements of the `entries` array (JSON) into the
    /// buffer; in human mode the same JSON is printed after the map name.
    pub fn map_dump(
        &mut self,
        object: &str,
        map: &str,
        map_type: &str,
        entries: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        if self.json {
            self.begin("map");
            self.field_str("object", object);
            self.field_str("map", map);
            self.field_str("map_type", map_type);
        } else {
            use std::io::Write as _;
            write!(self.buf, "map {object}/{map} ({map_type}): ")?;
        }
        if self.json {
            self.buf.extend_from_slice(b",\"entries\":[");
        } else {
            self.buf.push(b'[');
        }
        entries(&mut self.buf);
        self.buf.push(b']');
        if self.json {
            self.buf.push(b'}');
        }
        self.end_line()
    }

    /// The final summary: a JSON line (when JSON and `to_stdout`), always a line on stderr.
    pub fn summary(&mut self, s: &Summary, to_stdout: bool) -> io::Result<()> {
        crate::say!(
            "loader: summary: {} events, {} lost, {} programs attached, {} errors, {} ms",
            s.events,
            s.lost,
            s.attached,
            s.errors,
            s.duration_ms
        );
        if !self.json || !to_stdout {
            return Ok(());
        }
        self.begin("summary");
        self.field_u64("events", s.events);
        self.field_u64("lost", s.lost);
        self.field_u64("attached", s.attached);
        self.field_u64("errors", s.errors);
        self.field_u64("duration_ms", s.duration_ms);
        self.buf.extend_from_slice(b",\"maps\":[");
        for (i, m) in s.maps.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(b"{\"object\":");
            json::str(&mut self.buf, &m.object);
            self.field_str("map", &m.map);
            self.field_u64("events", m.events);
            self.field_u64("lost", m.lost);
            self.buf.push(b'}');
        }
        self.buf.extend_from_slice(b"]}");
        self.end_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: Printer<Vec<u8>>) -> Vec<serde_json::Value> {
        let mut p = p;
        p.flush().unwrap();
        String::from_utf8(p.out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn messages_are_type_tagged_json_lines() {
        let mut p = Printer::new(Vec::new(), true);
        p.attached("o", "prog", "tracepoint/a/b", "tracepoint", "a:b")
            .unwrap();
        p.event("o", "EVENTS", 1, None, &[0xab]).unwrap();
        p.event("o", "EVENTS", 1, None, &[0xcd]).unwrap();
        p.event("o", "OTHER", 1, None, &[0xef]).unwrap();
        p.lost("o", "EVENTS", 0, 3).unwrap();
        p.error("o", Some("prog"), None, "bad \"thing\"", Some("log\nline"))
            .unwrap();
        p.printk(7, "sh", Some(1), "hi").unwrap();
        p.map_dump("o", "COUNTS", "hash", |b| {
            b.extend_from_slice(b"{\"key\":1,\"value\":2}")
        })
        .unwrap();
        p.summary(
            &Summary {
                events: 1,
                lost: 3,
                maps: vec![MapCount {
                    object: "o".into(),
                    map: "EVENTS".into(),
                    events: 1,
                    lost: 3,
                }],
                ..Default::default()
            },
            true,
        )
        .unwrap();
        let v = lines(p);
        assert_eq!(v[0]["type"], "attached");
        assert_eq!(
            v[1],
            serde_json::json!({"type":"event","object":"o","map":"EVENTS","cpu":1,"data":{"hex":"ab"}})
        );
        assert_eq!(v[2]["data"]["hex"], "cd");
        assert_eq!(
            v[3],
            serde_json::json!({"type":"event","object":"o","map":"OTHER","cpu":1,"data":{"hex":"ef"}})
        );
        let v = &v[2..];
        assert_eq!(v[2]["count"], 3);
        assert_eq!(v[3]["section"], serde_json::Value::Null);
        assert_eq!(v[3]["verifier_log"], "log\nline");
        assert_eq!(v[4]["msg"], "hi");
        assert_eq!(v[5]["entries"][0]["value"], 2);
        assert_eq!(v[6]["maps"][0]["lost"], 3);
    }
}
