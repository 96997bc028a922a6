//! JSON lines (`--json`): one flat object per line, tagged by `type` (the shapes are listed
//! in [`crate::message`]). Errors and the summary are also said on `diag`.

use std::io::{self, Write};

use super::{human, Out, Sink};
use crate::decode;
use crate::dwarf::Type;
use crate::json;
use crate::message::{Message, Record};

/// A JSON field value.
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

fn begin(buf: &mut Vec<u8>, ty: &str) {
    buf.extend_from_slice(b"{\"type\":");
    json::str(buf, ty);
}

fn field(buf: &mut Vec<u8>, k: &str, v: Field<'_>) {
    buf.push(b',');
    json::key(buf, k);
    match v {
        Field::Str(v) => json::str(buf, v),
        Field::U64(v) => json::uint(buf, u128::from(v)),
        Field::Bool(v) => buf.extend_from_slice(if v { b"true" as &[u8] } else { b"false" }),
        Field::Null => buf.extend_from_slice(b"null"),
    }
}

fn fields(buf: &mut Vec<u8>, list: &[(&str, Field<'_>)]) {
    for (k, v) in list {
        field(buf, k, *v);
    }
}

/// Writes `m` as one JSON object (no newline).
pub fn render(buf: &mut Vec<u8>, m: &Message<'_>) {
    use Field::{Str, U64};
    begin(buf, m.type_name());
    match *m {
        Message::Kernel(k) => render_kernel(buf, k),
        Message::Attached {
            object,
            program,
            section,
            kind,
            target,
        }
        | Message::Program {
            object,
            program,
            section,
            kind,
            target,
        } => fields(
            buf,
            &[
                ("object", Str(object)),
                ("program", Str(program)),
                ("section", Str(section)),
                ("kind", Str(kind)),
                ("target", Str(target)),
            ],
        ),
        Message::Loaded {
            object,
            program,
            section,
        } => fields(
            buf,
            &[
                ("object", Str(object)),
                ("program", Str(program)),
                ("section", Str(section)),
            ],
        ),
        Message::Error {
            object,
            program,
            section,
            error,
            verifier_log,
        } => {
            fields(
                buf,
                &[
                    ("object", Str(object)),
                    ("program", Field::opt(program)),
                    ("section", Field::opt(section)),
                    ("error", Str(error)),
                ],
            );
            // No verifier log: no key at all.
            if let Some(log) = verifier_log {
                field(buf, "verifier_log", Str(log));
            }
        }
        Message::Lost {
            object,
            map,
            cpu,
            count,
        } => fields(
            buf,
            &[
                ("object", Str(object)),
                ("map", Str(map)),
                ("cpu", U64(u64::from(cpu))),
                ("count", U64(count)),
            ],
        ),
        Message::Packets {
            object,
            program,
            iface,
            count,
        } => fields(
            buf,
            &[
                ("object", Str(object)),
                ("program", Str(program)),
                ("iface", Str(iface)),
                ("count", U64(count)),
            ],
        ),
        Message::Printk {
            pid,
            comm,
            cpu,
            msg,
            origin,
        } => {
            fields(buf, &[("pid", U64(u64::from(pid))), ("comm", Str(comm))]);
            if let Some(cpu) = cpu {
                field(buf, "cpu", U64(u64::from(cpu)));
            }
            field(buf, "msg", Str(msg));
            match origin {
                Some((object, program)) => {
                    fields(buf, &[("object", Str(object)), ("program", Str(program))])
                }
                None => field(buf, "foreign", Field::Bool(true)),
            }
        }
        Message::Summary(s) => render_summary(buf, s),
        Message::Hist {
            object,
            map,
            key,
            buckets,
        } => {
            fields(buf, &[("object", Str(object)), ("map", Str(map))]);
            buf.extend_from_slice(b",\"key\":");
            match key {
                Some(k) => buf.extend_from_slice(k.to_string().as_bytes()),
                None => buf.extend_from_slice(b"null"),
            }
            buf.extend_from_slice(b",\"buckets\":[");
            for (i, b) in buckets.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"min\":");
                json::uint(buf, u128::from(b.min));
                fields(buf, &[("max", U64(b.max)), ("count", U64(b.count))]);
                buf.push(b'}');
            }
            buf.push(b']');
        }
        Message::Folded {
            object,
            map,
            stack,
            count,
        } => fields(
            buf,
            &[
                ("object", Str(object)),
                ("map", Str(map)),
                ("stack", Str(stack)),
                ("count", U64(count)),
            ],
        ),
        Message::Decode {
            object,
            map,
            records,
            key,
            value,
        } => {
            fields(buf, &[("object", Str(object)), ("map", Str(map))]);
            let typed = |buf: &mut Vec<u8>, k: &str, t: Option<(&str, &str)>| {
                buf.push(b',');
                json::key(buf, k);
                match t {
                    Some((ty, from)) => {
                        buf.extend_from_slice(b"{\"type\":");
                        json::str(buf, ty);
                        field(buf, "from", Str(from));
                        buf.push(b'}');
                    }
                    None => buf.extend_from_slice(b"null"),
                }
            };
            if records {
                typed(buf, "record", value);
            } else {
                typed(buf, "key", key);
                typed(buf, "value", value);
            }
        }
        Message::Check {
            object,
            analysis,
            kernel,
        } => render_check(buf, object, analysis, kernel),
        Message::CheckSummary { kernel, summary } => fields(
            buf,
            &[
                ("kernel", Str(&kernel.to_string())),
                ("objects", U64(summary.objects as u64)),
                ("programs", U64(summary.programs as u64)),
                ("ok", U64(summary.ok as u64)),
                ("incompatible", U64(summary.incompatible as u64)),
                ("errors", U64(summary.errors as u64)),
            ],
        ),
    }
    buf.push(b'}');
}

fn render_kernel(buf: &mut Vec<u8>, k: &crate::message::KernelLine<'_>) {
    use Field::{Bool, Str, U64};
    fields(
        buf,
        &[
            ("release", Str(k.release)),
            ("version", Str(k.version)),
            ("version_code", U64(u64::from(k.version_code))),
            ("legacy", Bool(k.legacy)),
            ("kprobes", Str(k.kprobes)),
            ("btf", Bool(k.btf)),
            ("memlock", Str(k.memlock)),
            ("leftovers_removed", U64(k.leftovers as u64)),
            ("reason", Str(k.reason)),
        ],
    );
}

fn render_summary(buf: &mut Vec<u8>, s: &crate::message::Summary) {
    use Field::{Str, U64};
    fields(
        buf,
        &[
            ("events", U64(s.events)),
            ("lost", U64(s.lost)),
            ("filtered", U64(s.filtered)),
            ("attached", U64(s.attached)),
            ("errors", U64(s.errors)),
            ("duration_ms", U64(s.duration_ms)),
        ],
    );
    buf.extend_from_slice(b",\"maps\":[");
    for (i, m) in s.maps.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"object\":");
        json::str(buf, &m.object);
        fields(
            buf,
            &[
                ("map", Str(&m.map)),
                ("events", U64(m.events)),
                ("lost", U64(m.lost)),
            ],
        );
        buf.push(b'}');
    }
    buf.push(b']');
}

fn render_check(
    buf: &mut Vec<u8>,
    object: &str,
    a: &crate::check::ProgramAnalysis,
    kernel: crate::check::Version,
) {
    use Field::{Bool, Str, U64};
    let problems = a.problems(kernel);
    let min = a.min_kernel().map(|n| n.to_string());
    fields(
        buf,
        &[
            ("object", Str(object)),
            ("program", Str(&a.program)),
            ("section", Str(&a.section)),
            ("kernel", Str(&kernel.to_string())),
            ("insns", U64(a.insns as u64)),
            ("min_kernel", Field::opt(min.as_deref())),
            ("ok", Bool(problems.is_empty())),
        ],
    );
    buf.extend_from_slice(b",\"problems\":[");
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"kind\":");
        json::str(buf, p.kind.as_str());
        fields(
            buf,
            &[("what", Str(&p.what)), ("needs", Str(&p.needs.to_string()))],
        );
        buf.push(b'}');
    }
    buf.push(b']');
}

/// The event line of one ring, compiled: the rendered
/// `{"type":"event","object":..,"map":..,"cpu":..,"data":` and, for a struct record type,
/// the template writing that prefix, the record's data and the closing brace in one go.
struct EventTemplate {
    object: String,
    map: String,
    cpu: u32,
    /// Address of the `Type` the plan was compiled from (0: none).
    ty: usize,
    prefix: Vec<u8>,
    plan: Option<decode::RecordPlan>,
    /// Whether the plan renders into the stage (no generic step, room to spare).
    renders: bool,
}

impl EventTemplate {
    fn new(r: &Record<'_>, ty: usize) -> Self {
        let mut prefix = Vec::new();
        begin(&mut prefix, "event");
        field(&mut prefix, "object", Field::Str(r.object));
        field(&mut prefix, "map", Field::Str(r.map));
        field(&mut prefix, "cpu", Field::U64(u64::from(r.cpu)));
        prefix.extend_from_slice(b",\"data\":");
        let plan =
            r.ty.and_then(|t| decode::RecordPlan::framed(t, &prefix, b"}\n"));
        EventTemplate {
            object: r.object.to_owned(),
            map: r.map.to_owned(),
            cpu: r.cpu,
            ty,
            renders: plan
                .as_ref()
                .is_some_and(|p| p.renders() && p.room() <= STAGE / 4),
            plan,
            prefix,
        }
    }

    #[inline(always)]
    fn is_for(&self, r: &Record<'_>, ty: usize) -> bool {
        self.cpu == r.cpu && self.ty == ty && same(&self.map, r.map) && same(&self.object, r.object)
    }
}

/// `a == b`, without a `memcmp` call for the short names objects and maps have: the
/// first and last 4 or 8 bytes compared as words (they overlap or meet, so together
/// they cover every byte).
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn words<const N: usize>(a: &[u8], b: &[u8]) -> Option<bool> {
        let head = |s: &[u8]| <[u8; N]>::try_from(s.get(..N)?).ok();
        let tail = |s: &[u8]| <[u8; N]>::try_from(s.get(s.len().checked_sub(N)?..)?).ok();
        Some(head(a)? == head(b)? && tail(a)? == tail(b)?)
    }
    match n {
        4..=8 => words::<4>(a, b),
        9..=16 => words::<8>(a, b),
        _ => None,
    }
    .unwrap_or_else(|| a == b)
}

/// Templates kept at most (one per ring: a perf map has one per CPU); past it they are
/// compiled again as needed.
const MAX_TEMPLATES: usize = 1024;

/// What [`JsonSink::record`] keeps between calls: a template per ring seen, and which one
/// served the last record (consecutive records mostly come from the same ring).
#[derive(Default)]
struct EventTemplates {
    all: Vec<EventTemplate>,
    last: usize,
}

impl EventTemplates {
    #[inline]
    fn get(&mut self, r: &Record<'_>) -> &EventTemplate {
        let ty = r.ty.map_or(0, |t| t as *const Type as usize);
        if !self.all.get(self.last).is_some_and(|t| t.is_for(r, ty)) {
            self.last = self.find(r, ty);
        }
        &self.all[self.last]
    }

    /// The index of the template for `r`, compiled now if there is none.
    #[cold]
    #[inline(never)]
    fn find(&mut self, r: &Record<'_>, ty: usize) -> usize {
        if let Some(i) = self.all.iter().position(|t| t.is_for(r, ty)) {
            return i;
        }
        if self.all.len() >= MAX_TEMPLATES {
            self.all.clear();
        }
        self.all.push(EventTemplate::new(r, ty));
        self.all.len() - 1
    }
}

/// Bytes of event lines [`JsonSink`] renders through templates before moving them to
/// `out` (whose own buffer is written out at the same size).
const STAGE: usize = 64 * 1024;
/// Staged bytes below this are copied into `out`'s buffer rather than written at once.
const SPILL_COPY: usize = 4 * 1024;

/// [`JsonSink::spill`], on the fields it needs.
fn spill<W: Write>(out: &mut Out<W>, stage: &[u8], staged: &mut usize) -> io::Result<()> {
    let lines = stage.get(..*staged).unwrap_or(&[]);
    *staged = 0;
    if lines.len() < SPILL_COPY {
        out.buf.extend_from_slice(lines);
        Ok(())
    } else {
        out.write_after(lines)
    }
}

/// JSON lines on `out`; errors and the summary also as text on `diag`.
pub struct JsonSink<W: Write, D: Write> {
    out: Out<W>,
    diag: D,
    templates: EventTemplates,
    /// Event lines rendered by the templates' fast path, `staged` bytes of it, not yet
    /// moved to `out`: zeroed once (at the first record), so that rendering a record
    /// needs no set-up of its room. Moved to `out` before anything else is written there.
    stage: Vec<u8>,
    staged: usize,
}

impl<W: Write, D: Write> JsonSink<W, D> {
    /// A sink writing JSON lines to `out` and diagnostics to `diag`.
    pub fn new(out: W, diag: D) -> Self {
        JsonSink {
            out: Out::new(out),
            diag,
            templates: EventTemplates::default(),
            stage: Vec::new(),
            staged: 0,
        }
    }

    /// Both writers (tests read them).
    #[cfg(test)]
    pub fn into_parts(mut self) -> (W, D) {
        self.spill().ok();
        (self.out.into_inner(), self.diag)
    }

    /// Hands the staged lines to `out`: a few are copied into its buffer (records the
    /// templates cannot take may alternate with those they take), many are written
    /// straight through.
    fn spill(&mut self) -> io::Result<()> {
        spill(&mut self.out, &self.stage, &mut self.staged)
    }

    /// A record whose stack ids were symbolized: decoded the generic way, each stack's
    /// frames added to its data.
    fn record_with_stacks(&mut self, r: &Record<'_>) -> io::Result<()> {
        let buf = &mut self.out.buf;
        begin(buf, "event");
        field(buf, "object", Field::Str(r.object));
        field(buf, "map", Field::Str(r.map));
        field(buf, "cpu", Field::U64(u64::from(r.cpu)));
        buf.extend_from_slice(b",\"data\":");
        decode::record(buf, r.ty, r.data);
        if buf.last() == Some(&b'}') {
            buf.pop();
            for (key, frames) in r.stacks {
                buf.push(b',');
                json::key(buf, key);
                crate::stacks::write_frames(buf, frames);
            }
            buf.push(b'}');
        }
        buf.push(b'}');
        self.out.end_line()
    }
}

impl<W: Write, D: Write> Sink for JsonSink<W, D> {
    fn message(&mut self, m: &Message<'_>) -> io::Result<()> {
        if matches!(m, Message::Error { .. } | Message::Summary(_)) {
            if let Some(text) = human(m) {
                writeln!(self.diag, "{text}")?;
            }
        }
        self.spill()?;
        if self.out.is_closed() {
            return Ok(());
        }
        render(&mut self.out.buf, m);
        self.out.end_line()
    }

    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        if !r.stacks.is_empty() {
            self.spill()?;
            return self.record_with_stacks(r);
        }
        let t = self.templates.get(r);
        if let Some(plan) = t.plan.as_ref().filter(|_| t.renders) {
            if self.staged + plan.room() > self.stage.len() {
                if self.stage.is_empty() {
                    self.stage = vec![0; STAGE];
                } else {
                    let staged = self.stage.get(..self.staged).unwrap_or(&[]);
                    self.staged = 0;
                    self.out.write_after(staged)?;
                }
            }
            if let Some(end) = plan.render(&mut self.stage, self.staged, r.data) {
                self.staged = end;
                return Ok(());
            }
        }
        // The general way, after what is staged. The template's lines end in a newline.
        spill(&mut self.out, &self.stage, &mut self.staged)?;
        let buf = &mut self.out.buf;
        if !t.plan.as_ref().is_some_and(|plan| plan.write(buf, r.data)) {
            buf.extend_from_slice(&t.prefix);
            decode::record(buf, r.ty, r.data);
            buf.extend_from_slice(b"}\n");
        }
        if buf.len() >= STAGE {
            self.out.flush()?;
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
        self.spill()?;
        let buf = &mut self.out.buf;
        begin(buf, "map");
        field(buf, "object", Field::Str(object));
        field(buf, "map", Field::Str(map));
        field(buf, "map_type", Field::Str(map_type));
        buf.extend_from_slice(b",\"entries\":[");
        entries(buf);
        buf.extend_from_slice(b"]}");
        self.out.end_line()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.diag.flush()?;
        self.spill()?;
        self.out.flush()
    }

    fn close_out(&mut self) {
        self.staged = 0;
        self.out.close();
    }
}

#[cfg(test)]
mod tests;
