//! A reader of raw `.BTF` sections (little-endian, as BPF objects for x86_64 and arm64
//! are): the header, every type with the bytes that follow it, and the string table.
//! Pure and allocation-light; it borrows the section it reads and remembers where each
//! type sits, so a caller can patch names in place.
//!
//! Used by cargo-bpf (to make the BTF LLVM derives from Rust acceptable to the kernel) and
//! by the loader's checker (to read the map types of BTF-defined `.maps`).

mod write;
pub use write::Writer;

/// `BTF_KIND_*` values.
pub mod kind {
    /// integer
    pub const INT: u32 = 1;
    /// pointer
    pub const PTR: u32 = 2;
    /// array
    pub const ARRAY: u32 = 3;
    /// struct
    pub const STRUCT: u32 = 4;
    /// union
    pub const UNION: u32 = 5;
    /// enum (32-bit values)
    pub const ENUM: u32 = 6;
    /// forward declaration
    pub const FWD: u32 = 7;
    /// typedef
    pub const TYPEDEF: u32 = 8;
    /// volatile
    pub const VOLATILE: u32 = 9;
    /// const
    pub const CONST: u32 = 10;
    /// restrict
    pub const RESTRICT: u32 = 11;
    /// function
    pub const FUNC: u32 = 12;
    /// function prototype
    pub const FUNC_PROTO: u32 = 13;
    /// variable
    pub const VAR: u32 = 14;
    /// data section
    pub const DATASEC: u32 = 15;
    /// float
    pub const FLOAT: u32 = 16;
    /// declaration tag
    pub const DECL_TAG: u32 = 17;
    /// type tag
    pub const TYPE_TAG: u32 = 18;
    /// enum (64-bit values)
    pub const ENUM64: u32 = 19;
}

/// Why a `.BTF` section could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// No BTF magic (or big-endian BTF, which is not read).
    #[error("BTF magic missing (only little-endian BTF is read)")]
    Magic,
    /// A header, type or section reaches past the data.
    #[error("BTF {0} truncated or out of range")]
    Truncated(&'static str),
    /// A kind this reader does not know.
    #[error("unknown BTF kind {0}")]
    UnknownKind(u32),
}

/// One type.
#[derive(Debug, Clone, Copy)]
pub struct Type<'a> {
    /// `BTF_KIND_*`
    pub kind: u32,
    /// Offset of its name in the string table (0: none).
    pub name_off: u32,
    /// Members, parameters, variables or enumerators that follow.
    pub vlen: usize,
    /// Size, or the id of the type referred to, by kind.
    pub size_or_type: u32,
    /// The bytes after the 12-byte header (members, array info...).
    pub extra: &'a [u8],
    /// Offset of its 12-byte header in the data given to [`Btf::parse`].
    pub offset: usize,
}

/// A struct/union member, enumerator or parameter: its name and the u32 after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Offset of its name in the string table.
    pub name_off: u32,
    /// Offset of `name_off` itself in the data given to [`Btf::parse`].
    pub at: usize,
    /// The member's type id (struct, union, parameter), or the value (enum).
    pub type_or_value: u32,
}

/// A parsed `.BTF` section.
#[derive(Debug, Clone)]
pub struct Btf<'a> {
    /// Types by id (0 is `void`).
    pub types: Vec<Type<'a>>,
    strings: &'a [u8],
    /// Where the string table sits in the data given to [`Btf::parse`].
    pub strings_at: usize,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Bytes that follow a type's 12-byte header.
fn extra_len(kind: u32, vlen: usize) -> Result<usize, BtfError> {
    Ok(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => vlen * 12,
        kind::ENUM | kind::FUNC_PROTO => vlen * 8,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        other => return Err(BtfError::UnknownKind(other)),
    })
}

impl<'a> Btf<'a> {
    /// Reads a whole `.BTF` section.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err(BtfError::Magic);
        }
        let field = |at| u32_at(data, at).ok_or(BtfError::Truncated("header"));
        let hdr_len = field(4)? as usize;
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let range = |off: usize, len: usize, what| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Truncated(what))?;
            let end = start.checked_add(len).ok_or(BtfError::Truncated(what))?;
            data.get(start..end)
                .map(|_| start..end)
                .ok_or(BtfError::Truncated(what))
        };
        let type_range = range(type_off, type_len, "type section")?;
        let str_range = range(str_off, str_len, "string section")?;
        let mut types = vec![Type {
            kind: 0,
            name_off: 0,
            vlen: 0,
            size_or_type: 0,
            extra: &[],
            offset: 0,
        }];
        let mut at = type_range.start;
        while at < type_range.end {
            let word = |i: usize| u32_at(data, at + i * 4).ok_or(BtfError::Truncated("type"));
            let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let start = at + 12;
            let end = start + extra_len(kind, vlen)?;
            if end > type_range.end {
                return Err(BtfError::Truncated("type"));
            }
            types.push(Type {
                kind,
                name_off,
                vlen,
                size_or_type,
                extra: data.get(start..end).ok_or(BtfError::Truncated("type"))?,
                offset: at,
            });
            at = end;
        }
        Ok(Btf {
            types,
            strings: data.get(str_range.clone()).unwrap_or(&[]),
            strings_at: str_range.start,
        })
    }

    /// The string at `off` (empty when out of range or not UTF-8).
    pub fn name(&self, off: u32) -> &'a str {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(rest.get(..end).unwrap_or(&[])).unwrap_or("")
    }

    /// The type with id `id`.
    pub fn get(&self, id: u32) -> Option<Type<'a>> {
        self.types.get(id as usize).copied()
    }

    /// Follows typedefs and qualifiers (bounded, in case of a cycle).
    pub fn resolve(&self, mut id: u32) -> Option<Type<'a>> {
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// The named entries after a type: struct/union members, enumerators, function
    /// parameters (empty for other kinds).
    pub fn members(&self, t: &Type<'a>) -> Vec<Member> {
        let stride = match t.kind {
            kind::STRUCT | kind::UNION | kind::ENUM64 => 12,
            kind::ENUM | kind::FUNC_PROTO => 8,
            _ => return Vec::new(),
        };
        (0..t.vlen)
            .filter_map(|i| {
                Some(Member {
                    name_off: u32_at(t.extra, i * stride)?,
                    at: t.offset + 12 + i * stride,
                    type_or_value: u32_at(t.extra, i * stride + 4)?,
                })
            })
            .collect()
    }

    /// The variables of DATASEC `t`: their type ids.
    pub fn datasec_vars(&self, t: &Type<'a>) -> Vec<u32> {
        if t.kind != kind::DATASEC {
            return Vec::new();
        }
        (0..t.vlen)
            .filter_map(|i| u32_at(t.extra, i * 12))
            .collect()
    }

    /// For an ARRAY: `(element type, index type, count)`.
    pub fn array(&self, t: &Type<'a>) -> Option<(u32, u32, u32)> {
        (t.kind == kind::ARRAY).then(|| {
            Some((
                u32_at(t.extra, 0)?,
                u32_at(t.extra, 4)?,
                u32_at(t.extra, 8)?,
            ))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct { int (*type)[27]; } rb SEC(".maps");` and an enum.
    fn sample() -> Vec<u8> {
        let mut w = Writer::with_strings(b"\0int\0type\0rb\0.maps\0e\0A\0".to_vec());
        w.push(1, kind::INT, 0, 4, &[32]); // 1
        w.push(0, kind::ARRAY, 0, 0, &[1, 1, 27]); // 2
        w.push(0, kind::PTR, 0, 2, &[]); // 3
        w.push(0, kind::STRUCT, 1, 8, &[5, 3, 0]); // 4
        w.push(10, kind::VAR, 0, 4, &[1]); // 5
        w.push(13, kind::DATASEC, 1, 8, &[5, 0, 8]); // 6
        w.push(19, kind::ENUM, 1, 4, &[21, 7]); // 7
        w.finish()
    }

    #[test]
    fn types_members_and_names() {
        let data = sample();
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.types.len(), 8);
        let def = btf.get(4).unwrap();
        let m = btf.members(&def);
        assert_eq!(btf.name(m[0].name_off), "type");
        assert_eq!(m[0].at, def.offset + 12);
        let ptr = btf.resolve(m[0].type_or_value).unwrap();
        assert_eq!(ptr.kind, kind::PTR);
        assert_eq!(
            btf.array(&btf.get(ptr.size_or_type).unwrap()),
            Some((1, 1, 27))
        );
        let sec = btf.get(6).unwrap();
        assert_eq!(btf.name(sec.name_off), ".maps");
        assert_eq!(btf.datasec_vars(&sec), vec![5]);
        let e = btf.members(&btf.get(7).unwrap());
        assert_eq!((btf.name(e[0].name_off), e[0].type_or_value), ("A", 7));
        // Offsets point at the name fields in the input.
        let at = btf.get(5).unwrap().offset;
        assert_eq!(u32_at(&data, at), Some(10));
    }

    #[test]
    fn truncated_or_foreign_data_is_an_error() {
        let b = sample();
        for cut in 0..b.len() - 1 {
            assert!(Btf::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = b.clone();
        bad[24 + 7] = 30; // kind 30 in the first type's info
        assert!(matches!(Btf::parse(&bad), Err(BtfError::UnknownKind(_))));
    }
}
