//! `--folded`: stacks counted into the folded format flame graph tools read
//! (`comm;outer;...;inner COUNT`, one line per distinct stack). Two sources, as bcc's and
//! bpftrace's profilers keep them:
//!
//! - records whose type has stack id fields ([`crate::stacks::stack_fields`]): each counts 1;
//! - hash maps whose key struct has stack id fields and whose value is a number (bcc's
//!   `profile`/`offcputime` shape, `{pid, user_stack_id, kernel_stack_id, comm} -> count`):
//!   each key adds its count.
//!
//! A line starts with the command (the record's or key's `comm`/`name` field, else
//! `/proc/PID/comm` of its `tgid`/`pid` field while that process lives), then the user
//! frames from the outermost (`_start`, `main`) in, then the kernel frames from the
//! syscall entry in. A frame is its function's name, `[unknown]` when none is known; a
//! record all of whose stack ids are missing (the helper's -EFAULT/-EEXIST) counts as
//! `[missing stack]`. Each print holds the counts since the previous print, so a whole
//! run's output is itself the run's profile.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::os::fd::BorrowedFd;

use crate::dwarf::Type;
use crate::elf::{map_type, MapDef};
use crate::message::{Message, Record};
use crate::sink::{human, AttachBlock, Out, Sink};
use crate::stacks::{self, Frame, StackField, Symbols};
use crate::sys::{self, SyscallError};

/// Folded lines remembered (by process, command and stack ids) before the cache starts over.
const MAX_CACHED_LINES: usize = 100_000;

/// The process fields of a record or key: whose stacks, and under which command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Who {
    /// `(offset, size)` of the `tgid` (or `pid`) field
    pid: Option<(usize, usize)>,
    /// `(offset, size)` of the `comm` (or `name`) byte array
    comm: Option<(usize, usize)>,
}

impl Who {
    /// The fields of struct `ty` naming the process: `tgid`/`pid`, `comm`/`name`.
    pub fn new(ty: Option<&Type>) -> Who {
        let Some(Type::Struct { fields, .. }) = ty else {
            return Who::default();
        };
        let find = |names: &[&str], fits: &dyn Fn(&Type) -> bool| {
            names.iter().find_map(|n| {
                fields
                    .iter()
                    .find(|f| f.name == *n && fits(&f.ty))
                    .map(|f| (f.offset as usize, f.ty.size() as usize))
            })
        };
        Who {
            pid: find(&["tgid", "pid"], &|t| {
                matches!(t, Type::Int { size: 4 | 8, .. })
            }),
            comm: find(
                &["comm", "name"],
                &|t| matches!(t, Type::Array { elem, .. } if elem.size() == 1),
            ),
        }
    }

    /// The process id in `data`, when it has a nonzero one.
    pub fn pid(&self, data: &[u8]) -> Option<u32> {
        let (off, size) = self.pid?;
        let b = data.get(off..off.checked_add(size)?)?;
        let v = b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x));
        u32::try_from(v).ok().filter(|&p| p != 0)
    }

    /// The command bytes in `data` (up to the first NUL).
    pub fn comm<'d>(&self, data: &'d [u8]) -> &'d [u8] {
        let Some(b) = self
            .comm
            .and_then(|(off, size)| data.get(off..off.checked_add(size)?))
        else {
            return &[];
        };
        &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
    }
}

/// A frame's part of a folded line: `;` and line breaks, which the format cannot carry,
/// become `_`.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == ';' || c.is_control() { '_' } else { c })
        .collect()
}

/// `comm;user outer...inner;kernel outer...inner` of the frames of a record's (or key's)
/// stacks, each innermost first as the kernel stores them.
pub fn line(comm: &str, stacks: &[Vec<Frame>]) -> String {
    let all: Vec<&Frame> = stacks.iter().flatten().collect();
    let mut parts: Vec<String> = Vec::with_capacity(all.len() + 1);
    if !comm.is_empty() {
        parts.push(clean(comm));
    }
    let name = |f: &&Frame| {
        f.sym
            .as_deref()
            .map_or_else(|| "[unknown]".to_owned(), clean)
    };
    let user = all.iter().filter(|f| !stacks::is_kernel(f.addr)).rev();
    let kernel = all.iter().filter(|f| stacks::is_kernel(f.addr)).rev();
    let before = parts.len();
    parts.extend(user.chain(kernel).map(name));
    if parts.len() == before {
        parts.push("[missing stack]".to_owned());
    }
    parts.join(";")
}

/// What a folded line was made from: the same process, command and stack ids make the
/// same line, so each is symbolized once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sight {
    object: usize,
    map: String,
    pid: Option<u32>,
    comm: Vec<u8>,
    ids: Vec<Option<u32>>,
}

/// Reads the instruction pointers of stack `id` of STACK_TRACE map `map` (its values
/// `value_size` bytes).
pub type ReadStack<'a> = dyn FnMut(&str, u32, usize) -> Option<Vec<u64>> + 'a;

/// A hash map folded instead of dumped: its key's stack id fields and process fields.
#[derive(Debug, Clone)]
pub struct MapPlan {
    fields: Vec<(StackField, usize)>,
    who: Who,
}

/// The plan of a map of definition `def`, key type `key` and value type `value` in an
/// object with STACK_TRACE maps `stack_maps` (`(name, value size)`): Some for a hash map
/// whose key has stack id fields and whose value is a number.
pub fn map_plan(
    def: &MapDef,
    key: Option<&Type>,
    value: Option<&Type>,
    stack_maps: &[(String, usize)],
    named: &[(String, String)],
) -> Option<MapPlan> {
    let hash = matches!(
        def.map_type,
        map_type::HASH | map_type::LRU_HASH | map_type::PERCPU_HASH | map_type::LRU_PERCPU_HASH
    );
    let number = match value {
        Some(Type::Int { size, .. }) => *size == def.value_size && *size <= 8,
        Some(_) => false,
        None => matches!(def.value_size, 1 | 2 | 4 | 8),
    };
    if !hash || !number {
        return None;
    }
    let names: Vec<String> = stack_maps.iter().map(|(n, _)| n.clone()).collect();
    let fields: Vec<(StackField, usize)> = stacks::stack_fields(key, &names, named)
        .into_iter()
        .filter_map(|f| {
            let size = stack_maps.iter().find(|(n, _)| *n == f.map)?.1;
            Some((f, size))
        })
        .collect();
    (!fields.is_empty()).then(|| MapPlan {
        fields,
        who: Who::new(key),
    })
}

/// The folded counts of a run.
#[derive(Default)]
pub struct Folder {
    /// `(object, map, line)` -> count since the last print
    pending: BTreeMap<(String, String, String), u64>,
    /// the line of each process, command and stack ids seen
    lines: HashMap<Sight, String>,
    /// per folded map (`(object index, map)`), its keys' counts at the last print
    last: HashMap<(usize, String), HashMap<Vec<u8>, u64>>,
}

impl Folder {
    /// The line of `data` (a record or a key) whose `fields` hold stack ids; made (read,
    /// symbolized) the first time its process, command and ids are seen.
    #[allow(clippy::too_many_arguments)]
    fn line_of(
        &mut self,
        object: usize,
        map: &str,
        who: &Who,
        fields: &[(StackField, usize)],
        data: &[u8],
        read: &mut ReadStack<'_>,
        symbols: &Symbols,
    ) -> String {
        let sight = Sight {
            object,
            map: map.to_owned(),
            pid: who.pid(data),
            comm: who.comm(data).to_vec(),
            ids: fields.iter().map(|(f, _)| f.id(data)).collect(),
        };
        if let Some(l) = self.lines.get(&sight) {
            return l.clone();
        }
        let stacks: Vec<Vec<Frame>> = fields
            .iter()
            .zip(&sight.ids)
            .filter_map(|((f, size), id)| {
                let ips = read(&f.map, (*id)?, *size)?;
                Some(symbols.frames(sight.pid, &ips))
            })
            .collect();
        let comm = match (sight.comm.is_empty(), sight.pid) {
            (false, _) => String::from_utf8_lossy(&sight.comm).into_owned(),
            (true, Some(pid)) => std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default(),
            (true, None) => String::new(),
        };
        let l = line(&comm, &stacks);
        if self.lines.len() >= MAX_CACHED_LINES {
            self.lines.clear();
        }
        self.lines.insert(sight, l.clone());
        l
    }

    /// One record of `object`'s perf array (or ring buffer) `map` whose `fields` hold
    /// stack ids: counted once under its line.
    #[allow(clippy::too_many_arguments)]
    pub fn add_record(
        &mut self,
        object_idx: usize,
        object: &str,
        map: &str,
        who: &Who,
        fields: &[(StackField, usize)],
        data: &[u8],
        read: &mut ReadStack<'_>,
        symbols: &Symbols,
    ) {
        let l = self.line_of(object_idx, map, who, fields, data, read, symbols);
        *self
            .pending
            .entry((object.to_owned(), map.to_owned(), l))
            .or_default() += 1;
    }

    /// Every key of hash map `map` (read through `fd`, definition `def`, `ncpus`
    /// possible CPUs for per-CPU values): what its count grew by since the last print,
    /// under its line. A key whose count fell (the map was cleared) counts anew.
    #[allow(clippy::too_many_arguments)]
    pub fn add_map(
        &mut self,
        object_idx: usize,
        object: &str,
        map: &str,
        fd: BorrowedFd<'_>,
        def: &MapDef,
        ncpus: Option<usize>,
        plan: &MapPlan,
        read: &mut ReadStack<'_>,
        symbols: &Symbols,
    ) -> Result<(), SyscallError> {
        let entries = counts(fd, def, ncpus)?;
        let before = self
            .last
            .remove(&(object_idx, map.to_owned()))
            .unwrap_or_default();
        let mut now = HashMap::with_capacity(entries.len());
        for (key, count) in entries {
            let grew = match before.get(&key) {
                Some(&was) if was <= count => count - was,
                _ => count,
            };
            if grew > 0 {
                let l = self.line_of(
                    object_idx,
                    map,
                    &plan.who,
                    &plan.fields,
                    &key,
                    read,
                    symbols,
                );
                *self
                    .pending
                    .entry((object.to_owned(), map.to_owned(), l))
                    .or_default() += grew;
            }
            now.insert(key, count);
        }
        self.last.insert((object_idx, map.to_owned()), now);
        Ok(())
    }

    /// The counts since the last call, by object, map and line; forgotten here.
    pub fn take(&mut self) -> BTreeMap<(String, String, String), u64> {
        std::mem::take(&mut self.pending)
    }
}

/// The keys of hash map `fd` and their number values (per-CPU ones summed).
fn counts(
    fd: BorrowedFd<'_>,
    def: &MapDef,
    ncpus: Option<usize>,
) -> Result<Vec<(Vec<u8>, u64)>, SyscallError> {
    let ks = def.key_size as usize;
    let vs = def.value_size as usize;
    let per_cpu = map_type::per_cpu(def.map_type);
    let stride = if per_cpu { (vs + 7) & !7 } else { vs };
    let nvals = match (per_cpu, ncpus) {
        (false, _) => 1,
        (true, Some(n)) => n.max(1),
        (true, None) => {
            return Err(SyscallError {
                call: "reading /sys/devices/system/cpu/possible (per-CPU values need the count)",
                source: io::Error::from(io::ErrorKind::NotFound),
            })
        }
    };
    // SAFETY: the map behind `fd` was created from `def` (the loader's own definition or
    // what the kernel reported for it), so its keys are `key_size` bytes and a lookup
    // writes `value_size` bytes per possible CPU (rounded to 8 for per-CPU maps).
    let map = unsafe { sys::MapRef::new(fd, ks, stride * nvals) };
    let (mut key, mut next) = (vec![0u8; ks], vec![0u8; ks]);
    let mut value = vec![0u8; stride * nvals];
    let mut have_key = false;
    let mut out = Vec::new();
    while out.len() < crate::maps::MAX_DUMP_ENTRIES {
        if !sys::map_next_key(&map, have_key.then_some(key.as_slice()), &mut next)? {
            break;
        }
        std::mem::swap(&mut key, &mut next);
        have_key = true;
        if !sys::map_lookup(&map, &key, &mut value)? {
            continue;
        }
        let sum = value
            .chunks_exact(stride.max(1))
            .take(nvals)
            .map(|c| {
                c.iter()
                    .take(vs)
                    .rev()
                    .fold(0u64, |a, &x| (a << 8) | u64::from(x))
            })
            .fold(0u64, u64::saturating_add);
        out.push((key.clone(), sum));
    }
    Ok(out)
}

/// `--folded` without `--json`: the folded lines alone on `out` (for `flamegraph.pl`),
/// everything else people read on `diag`; records and map dumps are left out.
pub struct FoldedText<W: Write, D: Write> {
    out: Out<W>,
    diag: D,
    attached: AttachBlock,
}

impl<W: Write, D: Write> FoldedText<W, D> {
    /// Folded lines to `out`, diagnostics to `diag`.
    pub fn new(out: W, diag: D) -> Self {
        FoldedText {
            out: Out::new(out),
            diag,
            attached: AttachBlock::default(),
        }
    }

    /// Both writers (tests read them).
    #[cfg(test)]
    fn into_parts(self) -> (W, D) {
        (self.out.into_inner(), self.diag)
    }
}

impl<W: Write, D: Write> Sink for FoldedText<W, D> {
    fn message(&mut self, m: &Message<'_>) -> io::Result<()> {
        if self.attached.hold(m, &mut self.diag)? {
            return Ok(());
        }
        let Some(text) = human(m) else {
            return Ok(());
        };
        if let Message::Folded { .. } = m {
            self.out.buf.extend_from_slice(text.as_bytes());
            return self.out.end_line();
        }
        writeln!(self.diag, "{text}")
    }

    fn record(&mut self, _: &Record<'_>) -> io::Result<()> {
        self.attached.end(&mut self.diag)
    }

    fn map_dump(
        &mut self,
        _: &str,
        _: &str,
        _: &str,
        _: &mut dyn FnMut(&mut Vec<u8>),
    ) -> io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dwarf::Field;

    fn frame(addr: u64, sym: Option<&str>) -> Frame {
        Frame {
            addr,
            sym: sym.map(str::to_owned),
            offset: 0,
            module: None,
        }
    }

    #[test]
    fn lines_put_user_frames_outermost_first_then_kernel_ones() {
        let k = |n: u64| 0xffff_ffff_8100_0000 + n;
        let user = vec![
            frame(0x1010, Some("leaf")),
            frame(0x1020, Some("middle")),
            frame(0x1030, Some("main")),
        ];
        let kernel = vec![
            frame(k(1), Some("__x64_sys_getppid")),
            frame(k(2), None),
            frame(k(3), Some("entry_SYSCALL_64")),
        ];
        // Whichever field comes first, user frames lead.
        assert_eq!(
            line("a;b", &[kernel.clone(), user.clone()]),
            "a_b;main;middle;leaf;entry_SYSCALL_64;[unknown];__x64_sys_getppid"
        );
        assert_eq!(line("", &[user]), "main;middle;leaf");
        assert_eq!(line("x", &[]), "x;[missing stack]");
        assert_eq!(line("x", &[vec![frame(1, Some("a\nb"))]]), "x;a_b");
    }

    fn key_type() -> Type {
        let int = |name: &str, offset, size| Field {
            name: name.into(),
            offset,
            ty: Type::Int { size, signed: true },
        };
        Type::Struct {
            name: "key_t".into(),
            size: 28,
            fields: vec![
                int("pid", 0, 4),
                int("user_stack_id", 4, 4),
                int("kernel_stack_id", 8, 4),
                Field {
                    name: "name".into(),
                    offset: 12,
                    ty: Type::Array {
                        elem: Box::new(Type::Char { size: 1 }),
                        count: 16,
                    },
                },
            ],
        }
    }

    #[test]
    fn who_reads_pid_and_comm() {
        let t = key_type();
        let who = Who::new(Some(&t));
        let mut key = [0u8; 28];
        key[0..4].copy_from_slice(&42u32.to_le_bytes());
        key[12..16].copy_from_slice(b"bash");
        assert_eq!(who.pid(&key), Some(42));
        assert_eq!(who.comm(&key), b"bash");
        assert_eq!(Who::new(None).pid(&key), None);
        assert_eq!(Who::new(None).comm(&key), b"");
    }

    fn def(map_type: u32, value_size: u32) -> MapDef {
        MapDef {
            map_type,
            key_size: 28,
            value_size,
            max_entries: 1024,
            flags: 0,
        }
    }

    #[test]
    fn only_hash_maps_of_stack_keys_and_number_values_fold() {
        let t = key_type();
        let stacks = vec![("stacks".to_owned(), 1016)];
        let u64t = Type::Int {
            size: 8,
            signed: false,
        };
        let plan = map_plan(&def(map_type::HASH, 8), Some(&t), Some(&u64t), &stacks, &[]);
        let names: Vec<&str> = plan
            .as_ref()
            .map(|p| p.fields.iter().map(|(f, _)| f.name.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["user_stack_id", "kernel_stack_id"]);
        assert!(map_plan(&def(map_type::PERCPU_HASH, 8), Some(&t), None, &stacks, &[]).is_some());
        assert!(map_plan(&def(map_type::ARRAY, 8), Some(&t), None, &stacks, &[]).is_none());
        assert!(map_plan(&def(map_type::HASH, 16), Some(&t), None, &stacks, &[]).is_none());
        assert!(map_plan(&def(map_type::HASH, 8), Some(&t), None, &[], &[]).is_none());
        assert!(map_plan(&def(map_type::HASH, 8), None, None, &stacks, &[]).is_none());
    }

    #[test]
    fn records_of_one_stack_fold_into_one_line_read_once() {
        let t = key_type();
        let who = Who::new(Some(&t));
        let stacks = vec![("stacks".to_owned(), 1016)];
        let plan = map_plan(&def(map_type::HASH, 8), Some(&t), None, &stacks, &[]).unwrap();
        let rec = |pid: u32, ustack: i32| {
            let mut r = [0u8; 28];
            r[0..4].copy_from_slice(&pid.to_le_bytes());
            r[4..8].copy_from_slice(&ustack.to_le_bytes());
            r[8..12].copy_from_slice(&(-14i32).to_le_bytes());
            r[12..15].copy_from_slice(b"app");
            r
        };
        let mut reads = Vec::new();
        let mut read = |map: &str, id: u32, _: usize| {
            reads.push((map.to_owned(), id));
            Some(vec![0x1000 + u64::from(id)])
        };
        let symbols = Symbols::default();
        let mut f = Folder::default();
        for r in [rec(0, 3), rec(0, 3), rec(0, 4), rec(0, -14)] {
            f.add_record(
                0,
                "o",
                "events",
                &who,
                &plan.fields,
                &r,
                &mut read,
                &symbols,
            );
        }
        assert_eq!(reads, [("stacks".to_owned(), 3), ("stacks".to_owned(), 4)]);
        let got: Vec<(String, u64)> = f.take().into_iter().map(|((_, _, l), n)| (l, n)).collect();
        assert_eq!(
            got,
            [
                ("app;[missing stack]".to_owned(), 1),
                ("app;[unknown]".to_owned(), 3)
            ]
        );
        assert!(f.take().is_empty(), "a print forgets what it printed");
    }

    #[test]
    fn the_text_sink_prints_folded_lines_alone() {
        let mut s = FoldedText::new(Vec::new(), Vec::new());
        s.message(&Message::Folded {
            object: "o",
            map: "m",
            stack: "bash;main;read",
            count: 3,
        })
        .unwrap();
        s.message(&Message::Summary(&crate::message::Summary::default()))
            .unwrap();
        let (out, diag) = s.into_parts();
        assert_eq!(String::from_utf8(out).unwrap(), "bash;main;read 3\n");
        assert!(String::from_utf8(diag).unwrap().contains("summary"));
    }
}
