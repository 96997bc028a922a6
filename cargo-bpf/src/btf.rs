//! Makes the `.BTF` that LLVM derives from Rust debug info acceptable to the kernel.
//!
//! Rust type names such as `PerfMap<probes::execsnoop::ExecEvent>` or `&[u8]` are not C
//! identifiers and the kernel's BTF loader rejects them ("Invalid name"). Names are rewritten
//! in place in the string table (every byte outside `[A-Za-z0-9_]` becomes `_`), so no
//! offset changes. DATASEC names are ELF section names (`maps/COUNTS`) and stay as they are.
//! The DWARF sections are untouched: they keep the real Rust names for the loader.

use object::{Object, ObjectSection};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not an ELF object: {0}")]
    Elf(String),
    #[error(".BTF section is malformed: {0}")]
    Malformed(&'static str),
}

const KIND_DATASEC: u32 = 15;

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off.checked_add(4)?)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Offsets into the string table of every name that must be a C identifier.
fn identifier_names(types: &[u8]) -> Result<Vec<u32>, BtfError> {
    let mut names = Vec::new();
    let mut at = 0usize;
    while at < types.len() {
        let (name, info) = match (u32_at(types, at), u32_at(types, at + 4)) {
            (Some(n), Some(i)) => (n, i),
            _ => return Err(BtfError::Malformed("truncated type")),
        };
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        at += 12;
        if kind != KIND_DATASEC {
            names.push(name);
        }
        // (bytes per member, offset of the member's name or None)
        let (extra, member, member_name) = match kind {
            1 | 14 | 17 => (4, 0, false), // INT, VAR, DECL_TAG
            3 => (12, 0, false),          // ARRAY
            4 | 5 => (0, 12, true),       // STRUCT, UNION
            6 => (0, 8, true),            // ENUM
            13 => (0, 8, true),           // FUNC_PROTO (parameter names)
            15 => (0, 12, false),         // DATASEC
            19 => (0, 12, true),          // ENUM64
            2 | 7..=12 | 16 | 18 => (0, 0, false),
            _ => return Err(BtfError::Malformed("unknown type kind")),
        };
        if member_name {
            for m in 0..vlen {
                let off = at + m * member;
                names.push(u32_at(types, off).ok_or(BtfError::Malformed("truncated members"))?);
            }
        }
        at += extra + vlen * member;
    }
    if at != types.len() {
        return Err(BtfError::Malformed("type section length"));
    }
    Ok(names)
}

fn sanitize_string(strings: &mut [u8], start: usize) {
    for b in strings.iter_mut().skip(start) {
        match *b {
            0 => break,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => {}
            _ => *b = b'_',
        }
    }
}

/// Rewrites a raw `.BTF` section in place. Returns how many names changed.
pub fn sanitize_btf(btf: &mut [u8]) -> Result<usize, BtfError> {
    if btf.get(0..2) != Some(&[0x9f, 0xeb]) {
        return Err(BtfError::Malformed(
            "bad magic (only little-endian BTF is handled)",
        ));
    }
    let field = |i: usize| {
        u32_at(btf, 4 + 4 * i)
            .map(|v| v as usize)
            .ok_or(BtfError::Malformed("header"))
    };
    let (hdr_len, type_off, type_len, str_off, str_len) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    let types = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or(BtfError::Malformed("type section out of bounds"))?;
    let names = identifier_names(types)?;
    let strings = btf
        .get_mut(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or(BtfError::Malformed("string section out of bounds"))?;
    let before = strings.to_vec();
    for name in names {
        if (name as usize) < strings.len() {
            sanitize_string(strings, name as usize);
        }
    }
    let changed = before
        .iter()
        .zip(strings.iter())
        .filter(|(a, b)| a != b)
        .count();
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
        .ok_or(BtfError::Malformed("section outside the file"))?;
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
