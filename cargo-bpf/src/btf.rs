//! Makes the `.BTF` that LLVM derives from Rust debug info acceptable to the kernel.
//!
//! Rust type names such as `PerfMap<probes::execsnoop::ExecEvent>` or `&[u8]` are not C
//! identifiers and the kernel's BTF loader rejects them ("Invalid name"). Types the kernel
//! wants anonymous (pointers, arrays, const/volatile/restrict, function prototypes) get no
//! name at all, as clang emits them; every other name is rewritten in place in the string
//! table (every byte outside `[A-Za-z0-9_]` becomes `_`), so no offset changes. DATASEC
//! names are ELF section names (`maps/COUNTS`) and stay as they are. The DWARF sections
//! are untouched: they keep the real Rust names for the loader. Read with the project's
//! one BTF reader (`btf-reader`).

use btf_reader::{kind, Btf};
use object::{Object, ObjectSection};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not an ELF object: {0}")]
    Elf(String),
    #[error(".BTF section is malformed")]
    Malformed(#[source] btf_reader::BtfError),
}

/// Kinds whose name must be empty (the kernel refuses a named pointer, array,
/// qualifier or prototype).
fn must_be_anonymous(k: u32) -> bool {
    matches!(
        k,
        kind::PTR | kind::ARRAY | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::FUNC_PROTO
    )
}

/// What to change: offsets in the section of `name_off` fields to clear, and offsets in
/// the string table of names that must be C identifiers.
fn plan(btf: &Btf<'_>) -> (Vec<usize>, Vec<u32>) {
    let mut clear = Vec::new();
    let mut names = Vec::new();
    for t in btf.types.iter().skip(1) {
        if must_be_anonymous(t.kind) {
            if t.name_off != 0 {
                clear.push(t.offset);
            }
        } else if t.kind != kind::DATASEC {
            names.push(t.name_off);
        }
        names.extend(btf.members(t).iter().map(|m| m.name_off));
    }
    (clear, names)
}

fn sanitize_string(strings: &mut [u8], start: usize) -> usize {
    let mut changed = 0;
    for b in strings.iter_mut().skip(start) {
        match *b {
            0 => break,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => {}
            _ => {
                *b = b'_';
                changed += 1;
            }
        }
    }
    changed
}

/// Rewrites a raw `.BTF` section in place. Returns how many names (cleared) and bytes
/// (rewritten) changed.
pub fn sanitize_btf(data: &mut [u8]) -> Result<usize, BtfError> {
    let (clear, names, strings_at) = {
        let btf = Btf::parse(data).map_err(BtfError::Malformed)?;
        let (clear, names) = plan(&btf);
        (clear, names, btf.strings_at)
    };
    for at in &clear {
        if let Some(field) = data.get_mut(*at..*at + 4) {
            field.copy_from_slice(&0u32.to_le_bytes());
        }
    }
    let strings = data.get_mut(strings_at..).unwrap_or(&mut []);
    let mut changed = clear.len();
    let mut done = std::collections::HashSet::new();
    for name in names {
        if (name as usize) < strings.len() && done.insert(name) {
            changed += sanitize_string(strings, name as usize);
        }
    }
    Ok(changed)
}

/// Sanitises the `.BTF` section of an ELF object, if it has one.
pub fn sanitize_object(elf: &mut [u8]) -> Result<usize, BtfError> {
    let range = {
        let file = object::File::parse(&*elf).map_err(|e| BtfError::Elf(e.to_string()))?;
        match file.section_by_name(".BTF").and_then(|s| s.file_range()) {
            Some((off, len)) => off as usize..(off + len) as usize,
            None => return Ok(0),
        }
    };
    let btf = elf
        .get_mut(range)
        .ok_or_else(|| BtfError::Elf(".BTF section lies outside the file".into()))?;
    sanitize_btf(btf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF blob: STRUCT "PerfMap<a::B>" with member "x<y>" of INT "u8", plus a
    /// DATASEC "maps/EVENTS".
    fn blob() -> Vec<u8> {
        let strings = b"\0PerfMap<a::B>\0x<y>\0u8\0maps/EVENTS\0".to_vec();
        let mut types = Vec::new();
        let mut put = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // [1] INT u8
        put(20);
        put(1 << 24);
        put(1);
        put(8);
        // [2] STRUCT PerfMap<a::B> { x<y>: [1] }
        put(1);
        put((4 << 24) | 1);
        put(1);
        put(15);
        put(1);
        put(0);
        // [3] DATASEC maps/EVENTS, no vars
        put(23);
        put(15 << 24);
        put(0);
        let mut out = Vec::new();
        for v in [
            0xeb9f_u16 as u32 | (1 << 16),
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend(types);
        out.extend(strings);
        out
    }

    #[test]
    fn rewrites_type_and_member_names_but_not_datasec() {
        let mut b = blob();
        let changed = sanitize_btf(&mut b).unwrap();
        let text = String::from_utf8_lossy(&b);
        assert!(
            text.contains("PerfMap_a__B_\0x_y_\0u8\0maps/EVENTS\0"),
            "{text:?}"
        );
        assert_eq!(changed, 6);
        let btf = Btf::parse(&b).unwrap();
        assert!(btf.types.iter().skip(1).all(|t| t.name_off != 0));
    }

    #[test]
    fn pointer_names_are_cleared_not_rewritten() {
        // [1] INT u8, [2] PTR "&u8" -> [1], [3] ARRAY "[u8; 4]" of [1]
        let strings = b"\0u8\0&u8\0[u8; 4]\0".to_vec();
        let mut types = Vec::new();
        let mut put = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        for v in [1, 1 << 24, 1, 8, 4, 2 << 24, 1, 8, 3 << 24, 0, 1, 1, 4] {
            put(v);
        }
        let mut b = Vec::new();
        for v in [
            0x0001_eb9f_u32,
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend(types);
        b.extend(strings);
        sanitize_btf(&mut b).unwrap();
        let btf = Btf::parse(&b).unwrap();
        assert_eq!(btf.name(btf.types[1].name_off), "u8");
        assert_eq!(
            btf.types[2].name_off, 0,
            "a named pointer is refused by the kernel"
        );
        assert_eq!(
            btf.types[3].name_off, 0,
            "a named array is refused by the kernel"
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let b = blob();
        for cut in 0..b.len() {
            let mut short = b[..cut].to_vec();
            assert!(sanitize_btf(&mut short).is_err() || cut == b.len());
        }
        let mut bad = b.clone();
        bad[12] = 0xff; // absurd type_len
        assert!(sanitize_btf(&mut bad).is_err());
        assert!(sanitize_object(&mut [0u8; 10]).is_err());
    }
}
