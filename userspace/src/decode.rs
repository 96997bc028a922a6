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

/// A struct record type compiled once for the hot path: every key pre-rendered with its
/// comma, integers and byte strings decoded without walking the [`Type`] tree. The output
/// is byte-for-byte that of [`record`]; records shorter than the type are left to it.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    size: usize,
    fields: Vec<PlannedField>,
    /// `"argv":` (the last flexible member) or `"tail":`, and whether it is flexible.
    tail_key: Vec<u8>,
    flexible: bool,
    /// `MapData<T>`: the offsets of its `offset` and `size` fields.
    payload: Option<(usize, usize)>,
}

#[derive(Debug, Clone)]
struct PlannedField {
    /// `"name":`, or `,"name":` after the first field.
    key: Vec<u8>,
    offset: usize,
    kind: FieldKind,
}

#[derive(Debug, Clone)]
enum FieldKind {
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// `[u8; N]` / `char[N]`: a string cut at NUL.
    Bytes(usize),
    /// Anything else: the generic [`value`].
    Other(Type),
}

impl RecordPlan {
    /// The plan for `ty`, when it is a struct (other types gain nothing).
    pub fn new(ty: &Type) -> Option<Self> {
        let Type::Struct { fields, size, .. } = ty else {
            return None;
        };
        if *size == 0 {
            return None;
        }
        let mut planned = Vec::new();
        for f in fields.iter().filter(|f| !is_flexible(f)) {
            let mut key = Vec::new();
            if !planned.is_empty() {
                key.push(b',');
            }
            json::key(&mut key, &f.name);
            let fsize = f.ty.size() as usize;
            if f.offset as usize + fsize > *size as usize {
                // Odd debug info: leave the bounds checks to `record`.
                return None;
            }
            let kind = match &f.ty {
                Type::Int { signed: false, .. } if matches!(fsize, 1 | 2 | 4 | 8) => {
                    FieldKind::Uint(fsize)
                }
                Type::Int { signed: true, .. } if matches!(fsize, 1 | 2 | 4 | 8) => {
                    FieldKind::Int(fsize)
                }
                Type::Array { elem, .. } if is_byte_like(elem) => FieldKind::Bytes(fsize),
                other => FieldKind::Other(other.clone()),
            };
            planned.push(PlannedField {
                key,
                offset: f.offset as usize,
                kind,
            });
        }
        let flexible = fields.iter().rev().find(|f| is_flexible(f));
        let mut tail_key = Vec::new();
        if !planned.is_empty() {
            tail_key.push(b',');
        }
        json::key(&mut tail_key, flexible.map_or("tail", |f| f.name.as_str()));
        Some(RecordPlan {
            size: *size as usize,
            fields: planned,
            tail_key,
            flexible: flexible.is_some(),
            payload: payload_fields(fields),
        })
    }

    /// Writes `bytes` as [`record`] would; returns false (writing nothing) when the record
    /// is shorter than the type, which [`record`] handles field by field.
    pub fn write(&self, out: &mut Vec<u8>, bytes: &[u8]) -> bool {
        if bytes.len() < self.size {
            return false;
        }
        out.push(b'{');
        for f in &self.fields {
            out.extend_from_slice(&f.key);
            let at = &bytes[f.offset..];
            match &f.kind {
                FieldKind::Uint(n) => json::uint(out, u128::from(le_u64(&at[..*n]))),
                FieldKind::Int(n) => json::int(out, i128::from(le_i64(&at[..*n]))),
                FieldKind::Bytes(n) => {
                    let b = &at[..*n];
                    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
                    json::bytes_str(out, &b[..end]);
                }
                FieldKind::Other(ty) => value(out, ty, &at[..ty.size() as usize]),
            }
        }
        let tail = &bytes[self.size..];
        if self.flexible || !is_padding(tail) {
            out.extend_from_slice(&self.tail_key);
            match self.payload {
                Some(at) => payload(out, bytes, tail, at),
                None => tail_strings(out, tail),
            }
        }
        out.push(b'}');
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
