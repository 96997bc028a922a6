//! Just enough BTF to read the map types of BTF-defined maps (the `.maps` section):
//! `struct { __uint(type, N); ... } name SEC(".maps")` encodes N as the element count of
//! the array that the `type` member points to.

/// A `.maps` variable and its `BPF_MAP_TYPE_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfMap {
    /// Variable name.
    pub name: String,
    /// Map type, if the definition has a `type` member.
    pub map_type: Option<u32>,
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone, Copy)]
struct Type<'a> {
    kind: u32,
    name_off: u32,
    vlen: usize,
    size_or_type: u32,
    extra: &'a [u8],
}

struct Btf<'a> {
    types: Vec<Type<'a>>,
    strings: &'a [u8],
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> Result<Btf<'a>, String> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err("BTF magic missing (or big-endian BTF)".into());
        }
        let field = |at| u32_at(data, at).ok_or("BTF header truncated");
        let hdr_len = field(4)? as usize;
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let slice = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let type_data = slice(type_off, type_len).ok_or("BTF type section out of range")?;
        let strings = slice(str_off, str_len).ok_or("BTF string section out of range")?;
        // id 0 is void
        let mut types = vec![Type {
            kind: 0,
            name_off: 0,
            vlen: 0,
            size_or_type: 0,
            extra: &[],
        }];
        let mut at = 0usize;
        while at < type_data.len() {
            let word = |i: usize| u32_at(type_data, at + i * 4).ok_or("BTF type truncated");
            let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
                KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
                KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12
                | 16 | KIND_TYPE_TAG => 0,
                other => return Err(format!("unknown BTF kind {other}")),
            };
            let start = at + 12;
            let extra = type_data
                .get(start..start + extra_len)
                .ok_or("BTF type truncated")?;
            types.push(Type {
                kind,
                name_off,
                vlen,
                size_or_type,
                extra,
            });
            at = start + extra_len;
        }
        Ok(Btf { types, strings })
    }

    fn name(&self, off: u32) -> &'a str {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(rest.get(..end).unwrap_or(&[])).unwrap_or("")
    }

    fn get(&self, id: u32) -> Option<Type<'a>> {
        self.types.get(id as usize).copied()
    }

    /// Follows typedefs and qualifiers (bounded, in case of a cycle).
    fn resolve(&self, mut id: u32) -> Option<Type<'a>> {
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// N in `int (*type)[N]`, the member `member` of a map definition struct.
    fn uint_member(&self, def: Type<'a>, member: &str) -> Option<u32> {
        if def.kind != KIND_STRUCT {
            return None;
        }
        (0..def.vlen).find_map(|i| {
            let name_off = u32_at(def.extra, i * 12)?;
            if self.name(name_off) != member {
                return None;
            }
            let ptr = self.resolve(u32_at(def.extra, i * 12 + 4)?)?;
            if ptr.kind != KIND_PTR {
                return None;
            }
            let array = self.resolve(ptr.size_or_type)?;
            (array.kind == KIND_ARRAY).then(|| u32_at(array.extra, 8))?
        })
    }
}

/// The maps declared in the `.maps` data section of this BTF.
pub fn maps(btf: &[u8]) -> Result<Vec<BtfMap>, String> {
    let btf = Btf::parse(btf)?;
    let mut out = Vec::new();
    for sec in btf.types.iter().filter(|t| t.kind == KIND_DATASEC) {
        if btf.name(sec.name_off) != ".maps" {
            continue;
        }
        for i in 0..sec.vlen {
            let Some(var) = u32_at(sec.extra, i * 12).and_then(|id| btf.get(id)) else {
                return Err(".maps entry refers to a missing BTF type".into());
            };
            if var.kind != KIND_VAR {
                continue;
            }
            let map_type = btf
                .resolve(var.size_or_type)
                .and_then(|def| btf.uint_member(def, "type"));
            out.push(BtfMap {
                name: btf.name(var.name_off).to_owned(),
                map_type,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF for `struct { int (*type)[27]; } rb SEC(".maps");`.
    fn ringbuf_btf() -> Vec<u8> {
        let strings = b"\0int\0type\0rb\0.maps\0__ARRAY_SIZE_TYPE__\0";
        let mut t = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, sz: u32, extra: &[u32]| {
            for w in [name, (kind << 24) | vlen, sz].iter().chain(extra) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        ty(1, KIND_INT, 0, 4, &[32]); // 1: int
        ty(0, KIND_ARRAY, 0, 0, &[1, 1, 27]); // 2: int[27]
        ty(0, KIND_PTR, 0, 2, &[]); // 3: int (*)[27]
        ty(0, KIND_STRUCT, 1, 8, &[5, 3, 0]); // 4: struct { type }
        ty(10, KIND_VAR, 0, 4, &[1]); // 5: rb
        ty(13, KIND_DATASEC, 1, 8, &[5, 0, 8]); // 6: .maps
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn map_type_from_pointer_to_array() {
        assert_eq!(
            maps(&ringbuf_btf()).unwrap(),
            vec![BtfMap {
                name: "rb".into(),
                map_type: Some(27)
            }]
        );
    }

    #[test]
    fn truncated_btf_is_an_error() {
        let b = ringbuf_btf();
        for cut in [0, 3, 10, 30, b.len() - 10] {
            assert!(maps(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
