//! Raw record bytes + a [`Type`] -> JSON, written straight into the output buffer.
//!
//! Rules: integers (u64/i64 beyond 2^53 as strings), bools, enums by variant name, nested
//! structs, arrays; arrays of 1-byte integers/chars (`[u8; N]`, `[i8; N]`, `char[N]`) as
//! strings cut at the first NUL (invalid UTF-8 kept as `\xNN`); pointers as numbers; unions,
//! data-carrying enums and unknown layouts as hex strings. Fields that do not fit in a short
//! record are omitted, and `"_missing_bytes"` says how many bytes it lacked. A record LONGER than its struct type (the kernel pads to 8 bytes; many
//! probes append argv strings) has its extra bytes split at NUL into strings (empty pieces
//! dropped). If the struct ends in a zero-length array (a flexible member such as
//! `argv: [u8; 0]`, as in the goebpf execsnoop layout), that field holds the list;
//! otherwise a `"tail"` field does, and all-zero padding adds nothing. Without a flexible
//! member, a tail shorter than 8 bytes is the kernel's alignment padding, which perf skips
//! rather than zeroes (after a LOST record it holds old ring bytes), and is ignored too.

use crate::dwarf::Type;
use crate::json;

fn le_uint(b: &[u8]) -> u128 {
    b.iter()
        .rev()
        .fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

fn le_int(b: &[u8]) -> i128 {
    let u = le_uint(b);
    let bits = (b.len() * 8) as u32;
    if bits == 0 || bits >= 128 {
        return u as i128;
    }
    let shift = 128 - bits;
    ((u << shift) as i128) >> shift
}

/// A little-endian integer of at most 8 bytes, zero-extended (the common case, without
/// 128-bit arithmetic).
fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// A little-endian integer of 1 to 8 bytes, sign-extended.
fn le_i64(b: &[u8]) -> i64 {
    let shift = 64 - 8 * b.len().clamp(1, 8) as u32;
    ((le_u64(b) << shift) as i64) >> shift
}

fn is_byte_like(t: &Type) -> bool {
    matches!(t, Type::Int { size: 1, .. } | Type::Char { size: 1 })
}

/// Writes `bytes` (exactly `ty.size()` long, or shorter) decoded as `ty`.
pub fn value(out: &mut Vec<u8>, ty: &Type, bytes: &[u8]) {
    let size = ty.size() as usize;
    let Some(b) = bytes.get(..size) else {
        json::hex(out, bytes);
        return;
    };
    match ty {
        Type::Int { signed, .. } => match (b.len(), signed) {
            (1 | 2 | 4 | 8, true) => json::int(out, i128::from(le_i64(b))),
            (1 | 2 | 4 | 8, false) => json::uint(out, u128::from(le_u64(b))),
            (16, true) => json::int(out, le_int(b)),
            (16, false) => json::uint(out, le_uint(b)),
            _ => json::hex(out, b),
        },
        Type::Bool { .. } => {
            let t = b.iter().any(|&x| x != 0);
            out.extend_from_slice(if t { b"true" } else { b"false" });
        }
        Type::Char { size: 4 } => {
            let c = char::from_u32(le_uint(b) as u32).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut tmp = [0u8; 4];
            json::str(out, c.encode_utf8(&mut tmp));
        }
        Type::Char { .. } => json::int(out, le_int(b)),
        Type::Float { size: 4 } => {
            json::float(out, f64::from(f32::from_bits(le_uint(b) as u32)));
        }
        Type::Float { size: 8 } => json::float(out, f64::from_bits(le_uint(b) as u64)),
        Type::Enum {
            signed, variants, ..
        } => {
            let v = if *signed {
                le_int(b)
            } else {
                le_uint(b) as i128
            };
            match variants.iter().find(|(x, _)| *x == v) {
                Some((_, name)) => json::str(out, name),
                None => json::int(out, v),
            }
        }
        Type::Struct { fields, .. } => {
            out.push(b'{');
            struct_fields(out, fields, b);
            out.push(b'}');
        }
        Type::Array { elem, count } => {
            if is_byte_like(elem) {
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                json::bytes_str(out, b.get(..end).unwrap_or(&[]));
            } else {
                let esize = elem.size() as usize;
                out.push(b'[');
                if esize > 0 {
                    for (i, chunk) in b.chunks_exact(esize).take(*count as usize).enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        value(out, elem, chunk);
                    }
                }
                out.push(b']');
            }
        }
        Type::Pointer { .. } => json::uint(out, le_uint(b)),
        Type::Float { .. } | Type::Opaque { .. } => json::hex(out, b),
    }
}

fn is_flexible(f: &crate::dwarf::Field) -> bool {
    matches!(f.ty, Type::Array { count: 0, .. })
}

/// Writes `"name":value` pairs for every field that fits in `b` (flexible members are
/// left to [`record`]); returns whether any was written.
fn struct_fields(out: &mut Vec<u8>, fields: &[crate::dwarf::Field], b: &[u8]) -> bool {
    let mut first = true;
    for f in fields.iter().filter(|f| !is_flexible(f)) {
        let start = f.offset as usize;
        let Some(fb) = b.get(start..start + f.ty.size() as usize) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        json::key(out, &f.name);
        value(out, &f.ty, fb);
    }
    !first
}

/// Whether the bytes after a fixed-size record are only the kernel's padding: zeros, or
/// fewer than 8 bytes (perf pads raw samples to 8 bytes without clearing the padding).
fn is_padding(tail: &[u8]) -> bool {
    tail.len() < 8 || tail.iter().all(|&x| x == 0)
}

/// redbpf's `MapData<T>` (XDP captures, `MapData::with_payload`): `data`, `offset` and
/// `size` fields and a flexible `payload`, after which the kernel appended `size` bytes of
/// the packet. Where the two u32 fields sit, when `fields` is that shape.
fn payload_fields(fields: &[crate::dwarf::Field]) -> Option<(usize, usize)> {
    let u32_at = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name && matches!(f.ty, Type::Int { size: 4, .. }))
            .map(|f| f.offset as usize)
    };
    let flexible = fields.iter().rev().find(|f| is_flexible(f))?;
    let bytes = matches!(&flexible.ty, Type::Array { elem, .. } if is_byte_like(elem));
    (flexible.name == "payload" && bytes).then_some(())?;
    Some((u32_at("offset")?, u32_at("size")?))
}

/// The packet bytes of a `MapData<T>` record, as redbpf's `MapData::payload()` gives them:
/// `tail[offset..size]` (clamped to what arrived), written as a hex string.
fn payload(out: &mut Vec<u8>, record: &[u8], tail: &[u8], at: (usize, usize)) {
    let word = |o: usize| {
        record
            .get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let size = word(at.1).min(tail.len());
    let offset = word(at.0).min(size);
    json::hex(out, &tail[offset..size]);
}

/// Writes the NUL-separated strings of `tail` as a JSON array.
pub fn tail_strings(out: &mut Vec<u8>, tail: &[u8]) {
    out.push(b'[');
    let mut first = true;
    for piece in tail.split(|&x| x == 0).filter(|p| !p.is_empty()) {
        if !first {
            out.push(b',');
        }
        first = false;
        json::bytes_str(out, piece);
    }
    out.push(b']');
}

/// Writes a whole perf record as the `data` value: the decoded type (plus `tail`) or, with
/// no type, `{"hex":"..."}`.
pub fn record(out: &mut Vec<u8>, ty: Option<&Type>, bytes: &[u8]) {
    let Some(ty) = ty.filter(|t| t.size() > 0) else {
        out.extend_from_slice(b"{\"hex\":");
        json::hex(out, bytes);
        out.push(b'}');
        return;
    };
    let size = ty.size() as usize;
    let tail = bytes.get(size..).unwrap_or(&[]);
    match ty {
        Type::Struct { fields, .. } => {
            out.push(b'{');
            let mut any = struct_fields(out, fields, bytes);
            let flexible = fields.iter().rev().find(|f| is_flexible(f));
            if flexible.is_some() || !is_padding(tail) {
                if any {
                    out.push(b',');
                }
                json::key(out, flexible.map_or("tail", |f| f.name.as_str()));
                match payload_fields(fields).filter(|_| bytes.len() >= size) {
                    Some(at) => payload(out, bytes, tail, at),
                    None => tail_strings(out, tail),
                }
                any = true;
            }
            if bytes.len() < size {
                // Fields past the end were left out; say how many bytes were missing.
                if any {
                    out.push(b',');
                }
                json::key(out, "_missing_bytes");
                json::uint(out, (size - bytes.len()) as u128);
            }
            out.push(b'}');
        }
        other => value(out, other, bytes),
    }
}

/// A struct record type compiled once for the hot path, as a template: the static JSON
/// text (keys with their commas, braces, and an optional prefix and suffix such as an
/// event line's `{"type":"event",...,"data":` and `}`) merged into pieces, interleaved
/// with field writers that read the record's bytes at fixed offsets. Nested structs and
/// arrays of numbers are flattened into the same list. Output is byte for byte that of
/// the prefix, [`record`] and the suffix; records shorter than the type are left to
/// [`record`].
#[derive(Debug, Clone)]
pub struct RecordPlan {
    size: usize,
    steps: Vec<Step>,
    /// Room set aside up to the first generic step's text (all a plan that renders needs).
    room: usize,
    /// `"argv":` (the last flexible member) or `"tail":`, with its comma when needed.
    tail_key: Vec<u8>,
    flexible: bool,
    /// `MapData<T>`: the offsets of its `offset` and `size` fields.
    payload: Option<(usize, usize)>,
    /// The record's closing brace and the suffix.
    close: json::Text,
    /// No generic step and no flexible member: [`RecordPlan::render`] can take records.
    fast_only: bool,
}

/// Static text, then one value.
#[derive(Debug, Clone)]
struct Step {
    text: json::Text,
    op: Op,
    /// Room the steps after this one need on the fast path, up to the next generic step's
    /// text (or the close).
    room_after: usize,
}

#[derive(Debug, Clone)]
enum Op {
    /// No value (the text closing the fields).
    End,
    /// Unsigned integers of 1, 2, 4 and 8 bytes at `at` (one variant per width: no
    /// second dispatch on the size).
    U8(usize),
    U16(usize),
    U32(usize),
    U64(usize),
    /// Signed integers of 1, 2, 4 and 8 bytes at `at`.
    I8(usize),
    I16(usize),
    I32(usize),
    I64(usize),
    /// `[u8; N]` / `char[N]` at `at`: a string cut at NUL.
    Bytes {
        at: usize,
        len: usize,
    },
    /// Anything else: the generic [`value`] of the `ty.size()` bytes at `at` (boxed: a
    /// `Type` inline would make the step kind a niche that takes work to decode).
    Other {
        at: usize,
        ty: Box<Type>,
    },
}

/// Arrays longer than this stay one generic step (the plan would grow with them).
const MAX_FLAT_ARRAY: u32 = 256;
/// Byte arrays longer than this stay generic steps (the room set aside per record grows
/// with them).
const MAX_FAST_BYTES: usize = 256;
/// A type needing more steps than this gets no plan.
const MAX_STEPS: usize = 4096;

/// Collects the steps, static text merged into the value after it.
#[derive(Default)]
struct Builder {
    ops: Vec<(json::Text, Op)>,
    text: Vec<u8>,
}

impl Builder {
    fn op(&mut self, op: Op) {
        let text = json::Text::new(&self.text);
        self.text.clear();
        self.ops.push((text, op));
    }

    fn end_text(&mut self) {
        if !self.text.is_empty() {
            self.op(Op::End);
        }
    }

    /// The steps of [`value`] for `ty` at `at` (its bytes known to be in the record).
    fn value(&mut self, ty: &Type, at: usize) {
        let size = ty.size() as usize;
        if self.ops.len() > MAX_STEPS {
            // Too big to flatten (the plan is dropped): stop growing it.
            return self.op(Op::Other {
                at,
                ty: Box::new(ty.clone()),
            });
        }
        match ty {
            Type::Int { signed, .. } if matches!(size, 1 | 2 | 4 | 8) => {
                self.op(int_op(at, size, *signed));
            }
            Type::Pointer { .. } if matches!(size, 1 | 2 | 4 | 8) => {
                self.op(int_op(at, size, false));
            }
            Type::Array { elem, .. } if is_byte_like(elem) && size <= MAX_FAST_BYTES => {
                self.op(Op::Bytes { at, len: size });
            }
            Type::Array { elem, count } if *count <= MAX_FLAT_ARRAY => {
                let esize = elem.size() as usize;
                self.text.push(b'[');
                // As `value`: `count` elements, fewer when the size saturated, none of size 0.
                let n = size.checked_div(esize).unwrap_or(0).min(*count as usize);
                for i in 0..n {
                    if i > 0 {
                        self.text.push(b',');
                    }
                    self.value(elem, at + i * esize);
                }
                self.text.push(b']');
            }
            Type::Struct { fields, .. } => {
                self.text.push(b'{');
                let mut first = true;
                for f in fields.iter().filter(|f| !is_flexible(f)) {
                    let (offset, fsize) = (f.offset as usize, f.ty.size() as usize);
                    if offset.checked_add(fsize).is_none_or(|end| end > size) {
                        continue; // as `struct_fields`: a field that does not fit is left out
                    }
                    if !first {
                        self.text.push(b',');
                    }
                    first = false;
                    json::key(&mut self.text, &f.name);
                    self.value(&f.ty, at + offset);
                }
                self.text.push(b'}');
            }
            other => self.op(Op::Other {
                at,
                ty: Box::new(other.clone()),
            }),
        }
    }
}

/// The step of an integer of `size` (1, 2, 4 or 8) bytes at `at`.
fn int_op(at: usize, size: usize, signed: bool) -> Op {
    match (size, signed) {
        (1, false) => Op::U8(at),
        (2, false) => Op::U16(at),
        (4, false) => Op::U32(at),
        (_, false) => Op::U64(at),
        (1, true) => Op::I8(at),
        (2, true) => Op::I16(at),
        (4, true) => Op::I32(at),
        (_, true) => Op::I64(at),
    }
}

/// Bytes a step's value touches at most on the fast path.
fn fast_room(op: &Op) -> usize {
    match op {
        Op::End | Op::Other { .. } => 0,
        Op::Bytes { len, .. } => len + 2,
        _ => json::NUMBER_ROOM,
    }
}

/// The width of an integer step.
fn op_size(op: &Op) -> usize {
    match op {
        Op::U8(_) | Op::I8(_) => 1,
        Op::U16(_) | Op::I16(_) => 2,
        Op::U32(_) | Op::I32(_) => 4,
        _ => 8,
    }
}

/// The `N` bytes at `at`.
#[inline(always)]
fn word<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

impl RecordPlan {
    /// The plan for `ty` alone (what [`record`] writes), when it is a struct.
    pub fn new(ty: &Type) -> Option<Self> {
        Self::framed(ty, b"", b"")
    }

    /// The plan writing `prefix`, what [`record`] writes for `ty`, then `suffix`, when
    /// `ty` is a struct (other types gain nothing).
    pub fn framed(ty: &Type, prefix: &[u8], suffix: &[u8]) -> Option<Self> {
        let Type::Struct { fields, size, .. } = ty else {
            return None;
        };
        let size = *size as usize;
        if size == 0 {
            return None;
        }
        let mut b = Builder::default();
        b.text.extend_from_slice(prefix);
        b.text.push(b'{');
        let mut any = false;
        for f in fields.iter().filter(|f| !is_flexible(f)) {
            let fsize = f.ty.size() as usize;
            if (f.offset as usize)
                .checked_add(fsize)
                .is_none_or(|end| end > size)
            {
                // Odd debug info: leave the bounds checks to `record`.
                return None;
            }
            if any {
                b.text.push(b',');
            }
            any = true;
            json::key(&mut b.text, &f.name);
            b.value(&f.ty, f.offset as usize);
            if b.ops.len() > MAX_STEPS {
                return None;
            }
        }
        b.end_text();
        let flexible = fields.iter().rev().find(|f| is_flexible(f));
        let mut tail_key = Vec::new();
        if any {
            tail_key.push(b',');
        }
        json::key(&mut tail_key, flexible.map_or("tail", |f| f.name.as_str()));
        let mut close = b"}".to_vec();
        close.extend_from_slice(suffix);
        let close = json::Text::new(&close);
        // Room is set aside per run of fast steps: up to the text of the next generic step
        // (written fast, then again by the general writers), or the close.
        let mut room_after = close.room();
        let mut steps: Vec<Step> = b
            .ops
            .into_iter()
            .rev()
            .map(|(text, op)| {
                // The text's chunk padding may reach into the value's room, never past it
                // by more than its own room.
                let generic = matches!(op, Op::Other { .. });
                let room = text.room() + fast_room(&op);
                let step = Step {
                    text,
                    op,
                    room_after,
                };
                room_after = if generic {
                    step.text.room()
                } else {
                    room_after + room
                };
                step
            })
            .collect();
        steps.reverse();
        let fast_only =
            flexible.is_none() && !steps.iter().any(|s| matches!(s.op, Op::Other { .. }));
        Some(RecordPlan {
            fast_only,
            size,
            steps,
            room: room_after,
            tail_key,
            flexible: flexible.is_some(),
            payload: payload_fields(fields),
            close,
        })
    }

    /// One value through the slice writers; None when it needs the general ones.
    #[inline]
    fn fast(op: &Op, dst: &mut [u8], pos: usize, bytes: &[u8]) -> Option<usize> {
        match op {
            Op::End => Some(pos),
            Op::U8(at) => json::put_u32(dst, pos, u32::from(*bytes.get(*at)?)),
            Op::U16(at) => json::put_u32(dst, pos, u16::from_le_bytes(word(bytes, *at)?).into()),
            Op::U32(at) => json::put_u32(dst, pos, u32::from_le_bytes(word(bytes, *at)?)),
            Op::U64(at) => json::put_uint(dst, pos, u64::from_le_bytes(word(bytes, *at)?)),
            Op::I8(at) => json::put_i32(dst, pos, i8::from_le_bytes(word(bytes, *at)?).into()),
            Op::I16(at) => json::put_i32(dst, pos, i16::from_le_bytes(word(bytes, *at)?).into()),
            Op::I32(at) => json::put_i32(dst, pos, i32::from_le_bytes(word(bytes, *at)?)),
            Op::I64(at) => json::put_int(dst, pos, i64::from_le_bytes(word(bytes, *at)?)),
            Op::Bytes { at, len } => json::put_plain_cstr(dst, pos, bytes.get(*at..at + len)?),
            Op::Other { .. } => None,
        }
    }

    /// One step through the general writers (what [`value`] writes).
    fn general(op: &Op, out: &mut Vec<u8>, bytes: &[u8]) {
        let field = |at: usize, len: usize| bytes.get(at..at.saturating_add(len)).unwrap_or(&[]);
        match op {
            Op::End => {}
            Op::U8(at) | Op::U16(at) | Op::U32(at) | Op::U64(at) => {
                json::uint(out, u128::from(le_u64(field(*at, op_size(op)))));
            }
            Op::I8(at) | Op::I16(at) | Op::I32(at) | Op::I64(at) => {
                json::int(out, i128::from(le_i64(field(*at, op_size(op)))));
            }
            Op::Bytes { at, len } => {
                let b = field(*at, *len);
                let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                json::bytes_str(out, &b[..end]);
            }
            Op::Other { at, ty } => value(out, ty, field(*at, ty.size() as usize)),
        }
    }

    /// Whether [`RecordPlan::render`] can take records of this type (no generic step, no
    /// flexible member).
    pub fn renders(&self) -> bool {
        self.fast_only
    }

    /// Bytes [`RecordPlan::render`] may touch past `pos`.
    pub fn room(&self) -> usize {
        self.room
    }

    /// The fast path alone: writes the prefix, `bytes` as [`record`] would write them and
    /// the suffix at `dst[pos..]` (bytes past the returned end are scribbled on) and
    /// returns the end; None when a step needs the general writers (an escape, invalid
    /// UTF-8, a float, an enum, a tail, a record shorter than the type, too little room),
    /// for [`RecordPlan::write`] to do it.
    #[inline]
    pub fn render(&self, dst: &mut [u8], mut pos: usize, bytes: &[u8]) -> Option<usize> {
        if !self.fast_only || bytes.len() < self.size {
            return None;
        }
        for step in &self.steps {
            pos = json::put_text(dst, pos, &step.text)?;
            pos = Self::fast(&step.op, dst, pos, bytes)?;
        }
        if !is_padding(bytes.get(self.size..).unwrap_or(&[])) {
            return None;
        }
        json::put_text(dst, pos, &self.close)
    }

    /// Appends the prefix, `bytes` as [`record`] would write them and the suffix; returns
    /// false (writing nothing) when the record is shorter than the type, which [`record`]
    /// handles field by field.
    pub fn write(&self, out: &mut Vec<u8>, bytes: &[u8]) -> bool {
        if bytes.len() < self.size {
            return false;
        }
        // The fast writers fill set-aside room; a step they cannot take goes through the
        // general writers at the end of `out`, after which room is set aside again.
        let mut pos = out.len();
        out.resize(pos + self.room, 0);
        for step in &self.steps {
            let fast = json::put_text(out, pos, &step.text)
                .and_then(|at| Self::fast(&step.op, out, at, bytes));
            match fast {
                Some(end) => pos = end,
                None => {
                    out.truncate(pos);
                    step.text.extend(out);
                    Self::general(&step.op, out, bytes);
                    pos = out.len();
                    out.resize(pos + step.room_after, 0);
                }
            }
        }
        let tail = bytes.get(self.size..).unwrap_or(&[]);
        if self.flexible || !is_padding(tail) {
            out.truncate(pos);
            out.extend_from_slice(&self.tail_key);
            match self.payload {
                Some(at) => payload(out, bytes, tail, at),
                None => tail_strings(out, tail),
            }
            self.close.extend(out);
            return true;
        }
        match json::put_text(out, pos, &self.close) {
            Some(end) => out.truncate(end),
            None => {
                out.truncate(pos);
                self.close.extend(out);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dwarf::Field;

    fn u(size: u32) -> Type {
        Type::Int {
            size,
            signed: false,
        }
    }

    fn exec_event() -> Type {
        Type::Struct {
            name: "ExecEvent".into(),
            size: 32,
            fields: vec![
                Field {
                    name: "pid".into(),
                    offset: 0,
                    ty: u(4),
                },
                Field {
                    name: "neg".into(),
                    offset: 4,
                    ty: Type::Int {
                        size: 4,
                        signed: true,
                    },
                },
                Field {
                    name: "ts".into(),
                    offset: 8,
                    ty: u(8),
                },
                Field {
                    name: "comm".into(),
                    offset: 16,
                    ty: Type::Array {
                        elem: Box::new(Type::Char { size: 1 }),
                        count: 8,
                    },
                },
                Field {
                    name: "ok".into(),
                    offset: 24,
                    ty: Type::Bool { size: 1 },
                },
                Field {
                    name: "kind".into(),
                    offset: 28,
                    ty: Type::Enum {
                        size: 4,
                        signed: false,
                        variants: vec![(0, "Exec".into()), (1, "Exit".into())],
                    },
                },
            ],
        }
    }

    fn bytes() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&42u32.to_le_bytes());
        b.extend_from_slice(&(-7i32).to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(b"bash\0xyz");
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&1u32.to_le_bytes());
        b
    }

    fn render(ty: Option<&Type>, b: &[u8]) -> serde_json::Value {
        let mut out = Vec::new();
        record(&mut out, ty, b);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn struct_record_decodes_every_field_kind() {
        let v = render(Some(&exec_event()), &bytes());
        assert_eq!(
            v,
            serde_json::json!({"pid":42,"neg":-7,"ts":"18446744073709551615","comm":"bash","ok":true,"kind":"Exit"})
        );
    }

    #[test]
    fn longer_record_gets_tail_strings_and_padding_adds_nothing() {
        let mut b = bytes();
        b.extend_from_slice(b"/usr/bin/ls\0ls\0-l\0\0\0");
        let v = render(Some(&exec_event()), &b);
        assert_eq!(v["tail"], serde_json::json!(["/usr/bin/ls", "ls", "-l"]));
        let mut b = bytes();
        b.extend_from_slice(&[0; 4]);
        assert!(render(Some(&exec_event()), &b).get("tail").is_none());
        // Stale padding bytes (perf does not clear them) are not a tail either.
        let mut b = bytes();
        b.extend_from_slice(&[1, 0, 0, 7]);
        assert!(render(Some(&exec_event()), &b).get("tail").is_none());
    }

    /// `exec_event` plus a flexible `argv: [u8; 0]` member at its end.
    fn exec_event_with_argv() -> Type {
        let Type::Struct { mut fields, .. } = exec_event() else {
            unreachable!()
        };
        fields.push(Field {
            name: "argv".into(),
            offset: 32,
            ty: Type::Array {
                elem: Box::new(u(1)),
                count: 0,
            },
        });
        Type::Struct {
            name: "ExecEvent".into(),
            size: 32,
            fields,
        }
    }

    #[test]
    fn flexible_member_takes_the_tail() {
        let ty = exec_event_with_argv();
        let mut b = bytes();
        b.extend_from_slice(b"ls\0-l\0");
        let v = render(Some(&ty), &b);
        assert_eq!(v["argv"], serde_json::json!(["ls", "-l"]));
        assert!(v.get("tail").is_none());
        assert_eq!(render(Some(&ty), &bytes())["argv"], serde_json::json!([]));
    }

    #[test]
    fn integers_of_every_width_and_sign() {
        let int = |size, signed, b: &[u8]| {
            let mut out = Vec::new();
            value(&mut out, &Type::Int { size, signed }, b);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(int(1, true, &[0xff]), "-1");
        assert_eq!(int(1, false, &[0xff]), "255");
        assert_eq!(int(2, true, &(-300i16).to_le_bytes()), "-300");
        assert_eq!(int(4, true, &i32::MIN.to_le_bytes()), "-2147483648");
        assert_eq!(int(4, false, &u32::MAX.to_le_bytes()), "4294967295");
        assert_eq!(int(8, true, &(-5i64).to_le_bytes()), "-5");
        assert_eq!(
            int(8, true, &i64::MIN.to_le_bytes()),
            "\"-9223372036854775808\""
        );
        assert_eq!(int(16, true, &(-2i128).to_le_bytes()), "-2");
        assert_eq!(
            int(16, false, &u128::MAX.to_le_bytes()),
            format!("\"{}\"", u128::MAX)
        );
    }

    #[test]
    fn plan_writes_exactly_what_record_writes() {
        let flexible = exec_event_with_argv();
        let mut tailed = bytes();
        tailed.extend_from_slice(b"ls\0-l\0\0");
        let mut padded = bytes();
        padded.extend_from_slice(&[0, 3, 0, 0]);
        let mut odd = bytes();
        odd[16..24].copy_from_slice(b"q\"\\\n\xff\x01\0z");
        for ty in [exec_event(), flexible] {
            let plan = RecordPlan::new(&ty).unwrap();
            for b in [bytes(), tailed.clone(), padded.clone(), odd.clone()] {
                let mut want = Vec::new();
                record(&mut want, Some(&ty), &b);
                let mut got = Vec::new();
                assert!(plan.write(&mut got, &b));
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
            let mut got = Vec::new();
            assert!(!plan.write(&mut got, &bytes()[..10]));
            assert!(got.is_empty());
        }
        assert!(RecordPlan::new(&u(4)).is_none());
    }

    /// Record layouts covering every step kind of a plan: integers of every width and
    /// sign, the other scalars, byte arrays of many lengths, nested structs (one with a
    /// field past its end and a flexible member), arrays of numbers, structs and empty
    /// elements, a long array, and flexible tails.
    fn layouts() -> Vec<Type> {
        let f = |name: &str, offset, ty| Field {
            name: name.into(),
            offset,
            ty,
        };
        let int = |size, signed| Type::Int { size, signed };
        let bytes = |count| Type::Array {
            elem: Box::new(u(1)),
            count,
        };
        let chars = |count| Type::Array {
            elem: Box::new(Type::Char { size: 1 }),
            count,
        };
        let array = |elem: Type, count| Type::Array {
            elem: Box::new(elem),
            count,
        };
        let st = |name: &str, size, fields| Type::Struct {
            name: name.into(),
            size,
            fields,
        };
        let mut scalars = Vec::new();
        let mut at = 0;
        for size in [1, 2, 4, 8, 16] {
            for signed in [false, true] {
                scalars.push(f(&format!("i{size}{signed}"), at, int(size, signed)));
                at += size;
            }
        }
        for (name, ty) in [
            ("b", Type::Bool { size: 1 }),
            ("c", Type::Char { size: 1 }),
            ("wc", Type::Char { size: 4 }),
            ("f4", Type::Float { size: 4 }),
            ("f8", Type::Float { size: 8 }),
            (
                "e",
                Type::Enum {
                    size: 4,
                    signed: true,
                    variants: vec![(-1, "Neg".into()), (0, "Zero".into())],
                },
            ),
            ("p", Type::Pointer { size: 8 }),
            ("p4", Type::Pointer { size: 4 }),
            ("o", Type::Opaque { size: 3 }),
            ("odd", int(3, false)),
        ] {
            let size = ty.size();
            scalars.push(f(name, at, ty));
            at += size;
        }
        let scalars = st("Scalars", at, scalars);

        let mut strings = Vec::new();
        let mut at = 0;
        for n in [1, 7, 8, 9, 15, 16, 17, 33] {
            strings.push(f(&format!("s{n}"), at, bytes(n)));
            strings.push(f(&format!("c{n}"), at + n, chars(n)));
            at += 2 * n;
        }
        let strings = st("Strings", at, strings);

        let inner = st(
            "Inner",
            12,
            vec![
                f("a", 0, u(4)),
                f("name", 4, chars(4)),
                f("past_end", 10, u(4)),
                f("flex", 12, bytes(0)),
                f("deep", 8, st("Deep", 2, vec![f("x", 0, int(2, true))])),
            ],
        );
        let nested = st(
            "Nested",
            48,
            vec![
                f("first", 0, inner.clone()),
                f("pairs", 12, array(int(2, true), 3)),
                f("inners", 18, array(inner.clone(), 2)),
                f("empty", 42, array(st("Empty", 0, vec![]), 4)),
                f("none", 42, array(u(8), 0)),
                f("last", 42, u(2)),
                f("x", 44, int(4, true)),
            ],
        );
        let long = st(
            "Long",
            8 + 300 * 2,
            vec![f("n", 0, u(8)), f("many", 8, array(u(2), 300))],
        );
        let mut mixed = Vec::new();
        for i in 0..6u32 {
            let e = Type::Enum {
                size: 4,
                signed: false,
                variants: vec![(0, "A".into()), (1, "B".into())],
            };
            mixed.push(f(&format!("n{i}"), 8 * i, u(4)));
            mixed.push(f(
                &format!("e{i}"),
                8 * i + 4,
                if i % 2 == 0 {
                    e
                } else {
                    Type::Float { size: 4 }
                },
            ));
        }
        mixed.push(f("path", 48, bytes(300)));
        mixed.push(f("after", 348, u(4)));
        let mixed = st("Mixed", 352, mixed);
        let no_fields = st("NoFields", 8, vec![]);
        let only_flex = st("OnlyFlex", 8, vec![f("argv", 8, bytes(0))]);
        vec![
            exec_event(),
            exec_event_with_argv(),
            map_data(),
            scalars,
            strings,
            nested,
            long,
            mixed,
            no_fields,
            only_flex,
        ]
    }

    /// Byte patterns for a record of `size` bytes plus `extra`: zeros, ones, counting,
    /// pseudo-random, printable text, and text with escapes and invalid UTF-8.
    fn patterns(size: usize, extra: usize) -> Vec<Vec<u8>> {
        let n = size + extra;
        let mut seed = 0x2545_f491_4f6c_dd1du64 ^ n as u64;
        let mut random = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        let text = b"loadgen\0/usr/bin/ls\0-l\0 \"q\" \\ \x01\x7f\xc3\xa9\xff end\0";
        vec![
            vec![0; n],
            vec![0xff; n],
            (0..n).map(|i| i as u8).collect(),
            (0..n).map(|_| random()).collect(),
            (0..n).map(|i| b'a' + (i % 26) as u8).collect(),
            (0..n).map(|i| text[i % text.len()]).collect(),
        ]
    }

    #[test]
    fn plans_write_what_the_general_decoder_writes_for_every_layout() {
        let prefix = br#"{"type":"event","object":"o","map":"M","cpu":3,"data":"#;
        for ty in layouts() {
            let size = ty.size() as usize;
            let plan = RecordPlan::new(&ty).expect("a plan for every struct layout");
            let framed = RecordPlan::framed(&ty, prefix, b"}").unwrap();
            for extra in [0, 3, 4, 8, 13, 40] {
                for bytes in patterns(size, extra) {
                    let mut want = Vec::new();
                    record(&mut want, Some(&ty), &bytes);
                    // Earlier output in the buffer stays as it was.
                    let mut got = b"before".to_vec();
                    assert!(plan.write(&mut got, &bytes));
                    assert_eq!(
                        String::from_utf8_lossy(&got[6..]),
                        String::from_utf8_lossy(&want),
                        "{ty:?} {bytes:?}"
                    );
                    assert_eq!(&got[..6], b"before");
                    let mut got = Vec::new();
                    assert!(framed.write(&mut got, &bytes));
                    let mut line = prefix.to_vec();
                    line.extend_from_slice(&want);
                    line.push(b'}');
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&line)
                    );
                    serde_json::from_slice::<serde_json::Value>(&got).unwrap();
                }
            }
            // Records shorter than their type are left to `record`, untouched.
            for len in 0..size {
                let mut got = b"x".to_vec();
                assert!(!framed.write(&mut got, &patterns(len, 0)[3]));
                assert_eq!(got, b"x");
            }
        }
    }

    #[test]
    fn types_too_big_to_flatten_get_no_plan() {
        let row = Type::Array {
            elem: Box::new(u(4)),
            count: 256,
        };
        let grid = Type::Array {
            elem: Box::new(row),
            count: 256,
        };
        let ty = Type::Struct {
            name: "Grid".into(),
            size: grid.size(),
            fields: vec![Field {
                name: "cells".into(),
                offset: 0,
                ty: grid,
            }],
        };
        assert!(RecordPlan::new(&ty).is_none());
    }

    #[test]
    fn short_record_omits_fields_that_do_not_fit() {
        let v = render(Some(&exec_event()), &bytes()[..10]);
        let missing = exec_event().size() - 10;
        assert_eq!(
            v,
            serde_json::json!({"pid":42,"neg":-7,"_missing_bytes":missing})
        );
    }

    #[test]
    fn unknown_layout_is_hex_and_arrays_are_lists() {
        assert_eq!(render(None, &[1, 0xff]), serde_json::json!({"hex":"01ff"}));
        let arr = Type::Array {
            elem: Box::new(u(2)),
            count: 3,
        };
        let mut out = Vec::new();
        value(&mut out, &arr, &[1, 0, 2, 0, 3, 0]);
        assert_eq!(out, b"[1,2,3]");
        let mut out = Vec::new();
        value(&mut out, &Type::Opaque { size: 2 }, &[0xde, 0xad]);
        assert_eq!(out, b"\"dead\"");
        let mut out = Vec::new();
        value(
            &mut out,
            &Type::Pointer { size: 8 },
            &0x1000u64.to_le_bytes(),
        );
        assert_eq!(out, b"4096");
    }

    /// redbpf's `MapData<Packet>`: `data: Packet { saddr, len }`, `offset`, `size`,
    /// `payload: [u8; 0]`, then the packet bytes the kernel appended.
    fn map_data() -> Type {
        let field = |name: &str, offset, ty| Field {
            name: name.into(),
            offset,
            ty,
        };
        let packet = Type::Struct {
            name: "Packet".into(),
            size: 8,
            fields: vec![field("saddr", 0, u(4)), field("len", 4, u(4))],
        };
        let bytes = Type::Array {
            elem: Box::new(u(1)),
            count: 0,
        };
        Type::Struct {
            name: "MapData<compat::Packet>".into(),
            size: 16,
            fields: vec![
                field("data", 0, packet),
                field("offset", 8, u(4)),
                field("size", 12, u(4)),
                field("payload", 16, bytes),
            ],
        }
    }

    #[test]
    fn map_data_payload_is_bytes_from_offset_to_size() {
        let ty = map_data();
        let mut rec = [7u32, 60, 2, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        // Six packet bytes (with a NUL, which strings would split on), then perf padding.
        rec.extend_from_slice(&[0xaa, 0xbb, 0x00, 0x45, 0x01, 0xff, 0, 0]);
        let mut out = Vec::new();
        record(&mut out, Some(&ty), &rec);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"data":{"saddr":7,"len":60},"offset":2,"size":6,"payload":"004501ff"})
        );
        let mut planned = Vec::new();
        assert!(RecordPlan::new(&ty).unwrap().write(&mut planned, &rec));
        assert_eq!(planned, out, "the hot path writes the same");
        // A size beyond what arrived is clamped, an offset beyond the size gives nothing.
        let mut rec2 = rec.clone();
        rec2[12..16].copy_from_slice(&1000u32.to_le_bytes());
        rec2[8..12].copy_from_slice(&2000u32.to_le_bytes());
        let mut out = Vec::new();
        record(&mut out, Some(&ty), &rec2);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with(r#""payload":""}"#));
    }
}
