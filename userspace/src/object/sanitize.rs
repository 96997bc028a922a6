//! What a libbpf-based tool does to an object before a kernel that lacks something sees
//! it, done on the bytes aya reads:
//!
//! - BTF map definitions (`.maps`) lose their `__type(key/value, T)` type ids, becoming
//!   `key_size`/`value_size` of the same sizes, where the kernel cannot take BTF (below
//!   4.18, or where it refused them): libbpf retries map creation without BTF ids.
//! - A ring buffer map the programs also feed with `bpf_perf_event_output` (libbpf-tools'
//!   compat.bpf.h pattern) becomes a perf event array with 4-byte keys and values where
//!   the kernel has no ring buffers (below 5.8), as libbpf-tools' userspace does.
//! - CO-RE existence checks of `struct bpf_ringbuf` (`bpf_core_type_exists`) are answered
//!   where the kernel has no BTF of its own to answer them with (aya leaves every CO-RE
//!   relocation as compiled then, which would take the ring buffer path on any kernel).
//!
//! Pure: BTF in, BTF out.

use btf_reader::{kind, Btf, Writer};

/// One `.maps` definition to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEdit {
    /// The map (its `.maps` variable).
    pub name: String,
    /// `key`/`value` type members become `key_size`/`value_size`.
    pub drop_type_ids: bool,
    /// Becomes a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` with 4-byte keys and values and this
    /// many entries (0: the loader's default, the possible CPUs).
    pub to_perf: Option<u32>,
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
const PERF_EVENT_ARRAY: u32 = 4;

/// `BPF_CORE_TYPE_EXISTS` (`bpf_core_type_exists`).
pub const CORE_TYPE_EXISTS: u32 = 8;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The type id `id` names, past typedefs and qualifiers (bounded).
fn resolve_id(btf: &Btf<'_>, mut id: u32) -> Option<u32> {
    for _ in 0..32 {
        let t = btf.get(id)?;
        match t.kind {
            kind::TYPEDEF | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => {
                id = t.size_or_type
            }
            _ => return Some(id),
        }
    }
    None
}

/// The size in bytes of type `id` (None for kinds without one).
pub fn type_size(btf: &Btf<'_>, id: u32) -> Option<u32> {
    sized(btf, id, 0)
}

fn sized(btf: &Btf<'_>, id: u32, depth: u32) -> Option<u32> {
    if depth > 32 {
        return None;
    }
    let t = btf.get(resolve_id(btf, id)?)?;
    match t.kind {
        kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::FLOAT => {
            Some(t.size_or_type)
        }
        kind::PTR => Some(8),
        kind::ARRAY => {
            let (elem, _, n) = btf.array(&t)?;
            sized(btf, elem, depth + 1)?.checked_mul(n)
        }
        _ => None,
    }
}

/// A member of a map definition as rewritten: its name and either a type id kept as is
/// or the N of `int (*name)[N]`.
enum Member {
    Keep(String, u32),
    Uint(String, u32),
}

/// `btf` with the `.maps` definitions of `edits` rewritten (see the module docs). Types
/// keep their ids (the definition's struct is rewritten where it stands, new types are
/// appended); strings keep their offsets (new ones are appended): `.BTF.ext` stays valid.
pub fn rewrite_btf_maps(data: &[u8], edits: &[MapEdit]) -> Result<Vec<u8>, String> {
    let btf = Btf::parse(data).map_err(|e| e.to_string())?;
    let strings: Vec<u8> = data
        .get(btf.strings_at..)
        .and_then(|s| s.get(..u32_at(data, 20)? as usize))
        .ok_or("BTF string section out of range")?
        .to_vec();
    let mut w = Writer::with_strings(strings);
    let mut added = Added {
        types: Vec::new(),
        next_id: btf.types.len() as u32,
    };
    let mut replaced: Vec<(u32, Vec<u8>)> = Vec::new();
    for sec in btf.types.iter().filter(|t| t.kind == kind::DATASEC) {
        if btf.name(sec.name_off) != ".maps" {
            continue;
        }
        for var_id in btf.datasec_vars(sec) {
            let var = btf
                .get(var_id)
                .ok_or(".maps entry refers to a missing type")?;
            let name = btf.name(var.name_off);
            let Some(edit) = edits.iter().find(|e| e.name == name) else {
                continue;
            };
            let def_id = resolve_id(&btf, var.size_or_type)
                .ok_or_else(|| format!("map {name}: definition type missing"))?;
            let def = btf
                .get(def_id)
                .filter(|t| t.kind == kind::STRUCT)
                .ok_or_else(|| format!("map {name}: its definition is not a struct"))?;
            if replaced.iter().any(|(id, _)| *id == def_id) {
                continue; // a definition type shared by two maps: rewritten once
            }
            let (members, int_array) = edited_members(&btf, &def, edit)?;
            let record = def_record(def.name_off, &members, int_array, &mut w, &mut added);
            replaced.push((def_id, record));
        }
    }
    for (id, t) in btf.types.iter().enumerate().skip(1) {
        match replaced.iter().find(|(r, _)| *r as usize == id) {
            Some((_, record)) => w.push_raw(record),
            None => {
                let end = t.offset + 12 + t.extra.len();
                w.push_raw(data.get(t.offset..end).ok_or("BTF type out of range")?)
            }
        };
    }
    for (k, size_or_type, extra) in &added.types {
        w.push(0, *k, 0, *size_or_type, extra);
    }
    Ok(w.finish())
}

/// Types appended after the old ones: (kind, size or type, extra words), and the id the
/// next one gets.
struct Added {
    types: Vec<(u32, u32, Vec<u32>)>,
    next_id: u32,
}

/// An `int[]` array type: element type, index type, count.
type IntArray = (u32, u32, u32);

/// The members of map definition `def` with `edit` applied, and the `int[]` array type
/// (element, index type, count) its `type` member points to, whose element and index
/// types the new `__uint()` members reuse.
fn edited_members(
    btf: &Btf<'_>,
    def: &btf_reader::Type<'_>,
    edit: &MapEdit,
) -> Result<(Vec<Member>, IntArray), String> {
    let name = &edit.name;
    let mut members = Vec::new();
    let mut int_array = None;
    for m in btf.members(def) {
        let mname = btf.name(m.name_off).to_owned();
        let pointee = btf
            .resolve(m.type_or_value)
            .filter(|p| p.kind == kind::PTR)
            .map(|p| p.size_or_type);
        if mname == "type" {
            let arr = pointee.and_then(|p| btf.resolve(p));
            int_array = arr.and_then(|a| btf.array(&a));
        }
        let is_kv = mname == "key" || mname == "value";
        let uint_edit = match (&*mname, edit.to_perf) {
            ("type", Some(_)) => Some(PERF_EVENT_ARRAY),
            ("max_entries", Some(n)) => Some(n),
            ("key" | "value" | "key_size" | "value_size", Some(_)) => Some(4),
            _ if is_kv && edit.drop_type_ids => {
                let size = pointee
                    .and_then(|p| type_size(btf, p))
                    .ok_or_else(|| format!("map {name}: size of its {mname} type"))?;
                Some(size)
            }
            _ => None,
        };
        let out_name = if is_kv && uint_edit.is_some() {
            format!("{mname}_size")
        } else {
            mname
        };
        members.push(match uint_edit {
            Some(n) => Member::Uint(out_name, n),
            None => Member::Keep(out_name, m.type_or_value),
        });
    }
    if let Some(max) = edit.to_perf {
        for wanted in ["key_size", "value_size", "max_entries"] {
            let has = members.iter().any(|m| match m {
                Member::Keep(n, _) | Member::Uint(n, _) => n == wanted,
            });
            if !has {
                let n = if wanted == "max_entries" { max } else { 4 };
                members.push(Member::Uint(wanted.to_owned(), n));
            }
        }
    }
    let int_array =
        int_array.ok_or_else(|| format!("map {name}: no `type` member (not a map definition)"))?;
    Ok((members, int_array))
}

/// The struct record of a rewritten definition: each `__uint(name, n)` member points at a
/// new `int[n]` (appended to `added`), kept members keep their types.
fn def_record(
    name_off: u32,
    members: &[Member],
    (elem, index, _): IntArray,
    w: &mut Writer,
    added: &mut Added,
) -> Vec<u8> {
    let mut record = Vec::new();
    let vlen = members.len() as u32;
    for word in [name_off, (kind::STRUCT << 24) | vlen, vlen * 8] {
        record.extend_from_slice(&word.to_le_bytes());
    }
    for (i, m) in members.iter().enumerate() {
        let (mname, ty) = match m {
            Member::Keep(n, t) => (n, *t),
            Member::Uint(n, count) => {
                // int[count], then a pointer to it: `__uint(name, count)`.
                added
                    .types
                    .push((kind::ARRAY, 0, vec![elem, index, *count]));
                added.types.push((kind::PTR, added.next_id, Vec::new()));
                added.next_id += 2;
                (n, added.next_id - 1)
            }
        };
        let name_off = w.string(mname);
        for word in [name_off, ty, i as u32 * 64] {
            record.extend_from_slice(&word.to_le_bytes());
        }
    }
    record
}

/// One CO-RE relocation of `.BTF.ext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelo {
    /// The program section it patches.
    pub section: String,
    /// Byte offset of the instruction in that section.
    pub insn_off: u32,
    /// `BPF_CORE_*`
    pub kind: u32,
    /// The local type's name (`bpf_ringbuf`), empty when anonymous.
    pub type_name: String,
}

/// The CO-RE relocations of an object (`.BTF.ext`'s core_relo part, read with the
/// object's `.BTF` for names). None: `.BTF.ext` has no such part (older LLVM or none).
pub fn core_relocations(btf: &[u8], ext: &[u8]) -> Result<Vec<CoreRelo>, String> {
    let btf = Btf::parse(btf).map_err(|e| e.to_string())?;
    if ext.get(0..2) != Some(&[0x9f, 0xeb]) {
        return Err("BTF.ext magic missing".into());
    }
    let hdr_len = u32_at(ext, 4).ok_or(".BTF.ext header truncated")? as usize;
    if hdr_len < 32 {
        return Ok(Vec::new());
    }
    let field = |at| u32_at(ext, at).ok_or(".BTF.ext header truncated");
    let (off, len) = (field(24)? as usize, field(28)? as usize);
    let start = hdr_len + off;
    let part = ext
        .get(start..start + len)
        .ok_or(".BTF.ext core_relo out of range")?;
    if part.is_empty() {
        return Ok(Vec::new());
    }
    let rec_size = u32_at(part, 0).ok_or("core_relo truncated")? as usize;
    if rec_size < 16 {
        return Err(format!("core_relo record size {rec_size}"));
    }
    let mut out = Vec::new();
    let mut at = 4;
    while at < part.len() {
        let sec = u32_at(part, at).ok_or("core_relo truncated")?;
        let n = u32_at(part, at + 4).ok_or("core_relo truncated")? as usize;
        at += 8;
        for _ in 0..n {
            let word = |i: usize| u32_at(part, at + i * 4).ok_or("core_relo truncated");
            let (insn_off, type_id, kind) = (word(0)?, word(1)?, word(3)?);
            let type_name = resolve_id(&btf, type_id)
                .and_then(|id| btf.get(id))
                .map(|t| btf.name(t.name_off).to_owned())
                .unwrap_or_default();
            out.push(CoreRelo {
                section: btf.name(sec).to_owned(),
                insn_off,
                kind,
                type_name,
            });
            at += rec_size;
        }
    }
    Ok(out)
}

/// Writes `value` into the immediate of the instruction at `at` of `code` (a `mov` or
/// the two halves of a 64-bit load), as a resolved CO-RE relocation is written.
pub fn patch_imm(code: &mut [u8], at: usize, value: u32) -> Result<(), String> {
    let op = *code.get(at).ok_or("instruction out of range")?;
    let imm = code
        .get_mut(at + 4..at + 8)
        .ok_or("instruction out of range")?;
    imm.copy_from_slice(&value.to_le_bytes());
    if op == 0x18 {
        code.get_mut(at + 12..at + 16)
            .ok_or("64-bit load out of range")?
            .copy_from_slice(&[0; 4]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use btf_reader::kind::{ARRAY, DATASEC, INT, PTR, STRUCT, TYPEDEF, VAR};

    /// BTF of `struct { __uint(type, 27); __uint(max_entries, 4096); } events` and
    /// `struct { __uint(type, 1); __type(key, u32); __type(value, struct ev); } counts`
    /// (struct ev: 24 bytes).
    fn maps_btf() -> Vec<u8> {
        let mut w = btf_reader::Writer::new();
        let [int, ty, max, key, value, events, counts, maps, u32_, ev] = [
            "int",
            "type",
            "max_entries",
            "key",
            "value",
            "events",
            "counts",
            ".maps",
            "u32",
            "ev",
        ]
        .map(|n| w.string(n));
        w.push(int, INT, 0, 4, &[32]); // 1
        w.push(0, ARRAY, 0, 0, &[1, 1, 27]); // 2: int[27]
        w.push(0, PTR, 0, 2, &[]); // 3
        w.push(0, ARRAY, 0, 0, &[1, 1, 4096]); // 4
        w.push(0, PTR, 0, 4, &[]); // 5
        w.push(0, STRUCT, 2, 16, &[ty, 3, 0, max, 5, 64]); // 6
        w.push(events, VAR, 0, 6, &[1]); // 7
        w.push(u32_, TYPEDEF, 0, 1, &[]); // 8
        w.push(ev, STRUCT, 0, 24, &[]); // 9
        w.push(0, ARRAY, 0, 0, &[1, 1, 1]); // 10: int[1]
        w.push(0, PTR, 0, 10, &[]); // 11
        w.push(0, PTR, 0, 8, &[]); // 12: u32 *
        w.push(0, PTR, 0, 9, &[]); // 13: struct ev *
        w.push(0, STRUCT, 3, 24, &[ty, 11, 0, key, 12, 64, value, 13, 128]); // 14
        w.push(counts, VAR, 0, 14, &[1]); // 15
        w.push(maps, DATASEC, 2, 40, &[7, 0, 16, 15, 16, 24]); // 16
        w.finish()
    }

    fn uint(btf: &Btf<'_>, def: u32, member: &str) -> Option<u32> {
        let def = btf.get(def)?;
        let m = btf
            .members(&def)
            .into_iter()
            .find(|m| btf.name(m.name_off) == member)?;
        let arr = btf.resolve(btf.resolve(m.type_or_value)?.size_or_type)?;
        btf.array(&arr).map(|(_, _, n)| n)
    }

    fn names(btf: &Btf<'_>, def: u32) -> Vec<String> {
        let def = btf.get(def).unwrap();
        btf.members(&def)
            .into_iter()
            .map(|m| btf.name(m.name_off).to_owned())
            .collect()
    }

    #[test]
    fn type_ids_become_sizes() {
        let b = maps_btf();
        let edit = MapEdit {
            name: "counts".into(),
            drop_type_ids: true,
            to_perf: None,
        };
        let out = rewrite_btf_maps(&b, &[edit]).unwrap();
        let btf = Btf::parse(&out).unwrap();
        assert_eq!(names(&btf, 14), ["type", "key_size", "value_size"]);
        assert_eq!(uint(&btf, 14, "type"), Some(1));
        assert_eq!(uint(&btf, 14, "key_size"), Some(4));
        assert_eq!(uint(&btf, 14, "value_size"), Some(24));
        // Untouched: the other map, every type id, the old strings.
        assert_eq!(uint(&btf, 6, "type"), Some(27));
        assert_eq!(btf.name(btf.get(15).unwrap().name_off), "counts");
        let maps = crate::check::btf::maps(&out).unwrap();
        assert_eq!(maps[1].key, None);
    }

    #[test]
    fn ring_buffer_becomes_a_perf_array() {
        let b = maps_btf();
        let edit = MapEdit {
            name: "events".into(),
            drop_type_ids: false,
            to_perf: Some(2),
        };
        let out = rewrite_btf_maps(&b, &[edit]).unwrap();
        let btf = Btf::parse(&out).unwrap();
        assert_eq!(
            names(&btf, 6),
            ["type", "max_entries", "key_size", "value_size"]
        );
        assert_eq!(
            ["type", "max_entries", "key_size", "value_size"].map(|m| uint(&btf, 6, m)),
            [Some(4), Some(2), Some(4), Some(4)]
        );
        assert_eq!(uint(&btf, 14, "type"), Some(1));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(rewrite_btf_maps(b"nope", &[]).is_err());
        let b = maps_btf();
        assert!(rewrite_btf_maps(&b[..40], &[]).is_err());
        assert!(core_relocations(&b, b"xx").is_err());
    }

    #[test]
    fn core_relocations_name_their_type() {
        let b = maps_btf();
        // .BTF.ext: 32-byte header, core_relo part: record size 16, section ".maps" (any
        // string), one TYPE_EXISTS on type 9 (`ev`) at insn byte 8.
        let mut ext = vec![0x9f, 0xeb, 1, 0];
        let part: Vec<u32> = vec![16, 46, 1, 8, 9, 0, CORE_TYPE_EXISTS];
        for w in [32u32, 0, 0, 0, 0, 0, part.len() as u32 * 4] {
            ext.extend_from_slice(&w.to_le_bytes());
        }
        for w in part {
            ext.extend_from_slice(&w.to_le_bytes());
        }
        let r = core_relocations(&b, &ext).unwrap();
        assert_eq!(
            r,
            [CoreRelo {
                section: ".maps".into(),
                insn_off: 8,
                kind: CORE_TYPE_EXISTS,
                type_name: "ev".into(),
            }]
        );
        let mut code = [0xb7, 1, 0, 0, 1, 0, 0, 0];
        patch_imm(&mut code, 0, 0).unwrap();
        assert_eq!(code, [0xb7, 1, 0, 0, 0, 0, 0, 0]);
        assert!(patch_imm(&mut code, 8, 0).is_err());
    }
}
