//! The map types of BTF-defined maps (the `.maps` section), read with the project's one
//! BTF reader (`btf-reader`):
//! `struct { __uint(type, N); ... } name SEC(".maps")` encodes N as the element count of
//! the array that the `type` member points to.

/// A `.maps` variable and its `BPF_MAP_TYPE_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfMap {
    /// Variable name.
    pub name: String,
    /// Map type, if the definition has a `type` member.
    pub map_type: Option<u32>,
    /// The names of the key and value types (`__type(key, u32)`, `__type(value, struct
    /// event)`: the types the `key`/`value` members point to), where the definition has them.
    pub key: Option<String>,
    /// See `key`.
    pub value: Option<String>,
    /// Key and value sizes (`__uint(key_size, ..)`, or the size of the `__type(key, ..)`),
    /// max_entries and map_flags, where the definition gives them: what the map is created
    /// with (aya fills in the rest: max_entries of perf event arrays).
    pub key_size: Option<u32>,
    /// See `key_size`.
    pub value_size: Option<u32>,
    /// See `key_size`.
    pub max_entries: Option<u32>,
    /// See `key_size`.
    pub map_flags: Option<u32>,
}

use btf_reader::{kind, Btf, Type};

/// The type id member `member` of map definition `def` points to (`__uint`/`__type`
/// members are pointers).
fn pointee(btf: &Btf<'_>, def: Type<'_>, member: &str) -> Option<u32> {
    if def.kind != kind::STRUCT {
        return None;
    }
    let m = btf
        .members(&def)
        .into_iter()
        .find(|m| btf.name(m.name_off) == member)?;
    let ptr = btf.resolve(m.type_or_value)?;
    (ptr.kind == kind::PTR).then_some(ptr.size_or_type)
}

/// The name of the type member `member` of a map definition points to: `u32` for
/// `__type(key, u32)` (the typedef's name, else the struct's).
fn type_member(btf: &Btf<'_>, def: Type<'_>, member: &str) -> Option<String> {
    let mut id = pointee(btf, def, member)?;
    for _ in 0..8 {
        let t = btf.get(id)?;
        let name = btf.name(t.name_off);
        if !name.is_empty() {
            return Some(name.to_owned());
        }
        match t.kind {
            kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => id = t.size_or_type,
            _ => return None,
        }
    }
    None
}

/// N in `int (*type)[N]`, the member `member` of a map definition struct.
fn uint_member(btf: &Btf<'_>, def: Type<'_>, member: &str) -> Option<u32> {
    let array = btf.resolve(pointee(btf, def, member)?)?;
    btf.array(&array).map(|(_, _, count)| count)
}

/// The maps declared in the `.maps` data section of this BTF.
pub fn maps(data: &[u8]) -> Result<Vec<BtfMap>, String> {
    let btf = Btf::parse(data).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for sec in btf.types.iter().filter(|t| t.kind == kind::DATASEC) {
        if btf.name(sec.name_off) != ".maps" {
            continue;
        }
        for id in btf.datasec_vars(sec) {
            let Some(var) = btf.get(id) else {
                return Err(".maps entry refers to a missing BTF type".into());
            };
            if var.kind != kind::VAR {
                continue;
            }
            let def = btf.resolve(var.size_or_type);
            let map_type = def.and_then(|def| uint_member(&btf, def, "type"));
            let size = |sized: &str, typed: &str| {
                let def = def?;
                uint_member(&btf, def, sized).or_else(|| {
                    let id = pointee(&btf, def, typed)?;
                    crate::object::sanitize::type_size(&btf, id)
                })
            };
            out.push(BtfMap {
                name: btf.name(var.name_off).to_owned(),
                map_type,
                key: def.and_then(|d| type_member(&btf, d, "key")),
                value: def.and_then(|d| type_member(&btf, d, "value")),
                key_size: size("key_size", "key"),
                value_size: size("value_size", "value"),
                max_entries: def.and_then(|d| uint_member(&btf, d, "max_entries")),
                map_flags: def.and_then(|d| uint_member(&btf, d, "map_flags")),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use btf_reader::kind::{ARRAY, DATASEC, INT, PTR, STRUCT, VAR};

    /// Builds BTF for `struct { int (*type)[27]; } rb SEC(".maps");`.
    fn ringbuf_btf() -> Vec<u8> {
        let mut w = btf_reader::Writer::with_strings(
            b"\0int\0type\0rb\0.maps\0__ARRAY_SIZE_TYPE__\0".to_vec(),
        );
        w.push(1, INT, 0, 4, &[32]); // 1: int
        w.push(0, ARRAY, 0, 0, &[1, 1, 27]); // 2: int[27]
        w.push(0, PTR, 0, 2, &[]); // 3: int (*)[27]
        w.push(0, STRUCT, 1, 8, &[5, 3, 0]); // 4: struct { type }
        w.push(10, VAR, 0, 4, &[1]); // 5: rb
        w.push(13, DATASEC, 1, 8, &[5, 0, 8]); // 6: .maps
        w.finish()
    }

    #[test]
    fn map_type_from_pointer_to_array() {
        assert_eq!(
            maps(&ringbuf_btf()).unwrap(),
            vec![BtfMap {
                name: "rb".into(),
                map_type: Some(27),
                key: None,
                value: None,
                key_size: None,
                value_size: None,
                max_entries: None,
                map_flags: None,
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
