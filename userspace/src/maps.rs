//! Dumping hash/array maps (per-CPU ones per CPU and summed) as JSON entries.

use std::os::fd::BorrowedFd;

use crate::decode;
use crate::dwarf::Type;
use crate::elf::{map_type, MapDef};
use crate::json;
use crate::sys::{self, SyscallError};

/// At most this many entries are printed per dump.
pub const MAX_DUMP_ENTRIES: usize = 65_536;

/// A map whose contents are dumped.
#[derive(Debug, Clone)]
pub struct DumpMap {
    /// Object name.
    pub object: String,
    /// Map name.
    pub name: String,
    /// Definition from the ELF.
    pub def: MapDef,
    /// Key type from debug info.
    pub key: Option<Type>,
    /// Value type from debug info (or `--event-type`).
    pub value: Option<Type>,
    /// The key field holding a log2 bucket, when the map is a histogram.
    pub hist: Option<String>,
}

/// Writes a key or value: typed when the type fits the bytes, else an unsigned integer for
/// 1/2/4/8-byte data, else hex.
pub fn write_typed(out: &mut Vec<u8>, ty: Option<&Type>, bytes: &[u8]) {
    match ty {
        Some(t) if t.size() as usize == bytes.len() && t.size() > 0 => decode::value(out, t, bytes),
        _ => match bytes.len() {
            1 | 2 | 4 | 8 => {
                let v = bytes
                    .iter()
                    .rev()
                    .fold(0u128, |acc, &x| (acc << 8) | u128::from(x));
                json::uint(out, v);
            }
            _ => json::hex(out, bytes),
        },
    }
}

fn int_value(ty: Option<&Type>, bytes: &[u8]) -> Option<i128> {
    let signed = match ty {
        Some(Type::Int { signed, size }) if *size as usize == bytes.len() => *signed,
        None if matches!(bytes.len(), 1 | 2 | 4 | 8) => false,
        _ => return None,
    };
    let u = bytes
        .iter()
        .rev()
        .fold(0u128, |acc, &x| (acc << 8) | u128::from(x));
    if signed {
        let shift = 128 - bytes.len() as u32 * 8;
        Some(((u << shift) as i128) >> shift)
    } else {
        Some(u as i128)
    }
}

/// Writes the `entries` array elements of map `m` (read through `fd`). `ncpus` is the
/// number of possible CPUs (per-CPU value layout); a per-CPU map is not read without it.
pub fn dump_entries(
    fd: BorrowedFd<'_>,
    m: &DumpMap,
    ncpus: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<usize, SyscallError> {
    let ks = m.def.key_size as usize;
    let vs = m.def.value_size as usize;
    let per_cpu = map_type::per_cpu(m.def.map_type);
    let stride = if per_cpu { (vs + 7) & !7 } else { vs };
    let nvals = match (per_cpu, ncpus) {
        (false, _) => 1,
        (true, Some(n)) => n.max(1),
        (true, None) => {
            return Err(SyscallError {
                call: "reading /sys/devices/system/cpu/possible (per-CPU values need the count)",
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    };
    let mut key = vec![0u8; ks];
    let mut next = vec![0u8; ks];
    let mut value = vec![0u8; stride * nvals];
    // SAFETY: aya created the map behind `fd` from this very definition (the aya-ready
    // copy of the object only fills in perf arrays, never dumped), so its keys are
    // `key_size` bytes and a lookup writes `value_size` bytes, per possible CPU and rounded
    // to 8 for per-CPU maps; `ncpus` is the kernel's own possible-CPU count.
    let map = unsafe { sys::MapRef::new(fd, ks, stride * nvals) };
    let mut have_key = false;
    let mut n = 0;
    while n < MAX_DUMP_ENTRIES {
        let more = sys::map_next_key(&map, have_key.then_some(key.as_slice()), &mut next)?;
        if !more {
            break;
        }
        std::mem::swap(&mut key, &mut next);
        have_key = true;
        if !sys::map_lookup(&map, &key, &mut value)? {
            continue;
        }
        if n > 0 {
            out.push(b',');
        }
        n += 1;
        out.extend_from_slice(b"{\"key\":");
        write_typed(out, m.key.as_ref(), &key);
        if per_cpu {
            out.extend_from_slice(b",\"values\":[");
            let mut sum: Option<i128> = Some(0);
            for (i, chunk) in value.chunks_exact(stride.max(1)).take(nvals).enumerate() {
                let v = chunk.get(..vs).unwrap_or(chunk);
                if i > 0 {
                    out.push(b',');
                }
                write_typed(out, m.value.as_ref(), v);
                sum = sum.and_then(|s| int_value(m.value.as_ref(), v).map(|x| s + x));
            }
            out.push(b']');
            if let Some(s) = sum {
                out.extend_from_slice(b",\"sum\":");
                json::int(out, s);
            }
        } else {
            out.extend_from_slice(b",\"value\":");
            write_typed(out, m.value.as_ref(), &value);
        }
        out.push(b'}');
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_small_values_are_numbers_and_big_ones_hex() {
        let mut out = Vec::new();
        write_typed(&mut out, None, &7u32.to_le_bytes());
        out.push(b' ');
        write_typed(&mut out, None, &[1, 2, 3]);
        assert_eq!(out, b"7 \"010203\"");
    }

    #[test]
    fn per_cpu_sums_only_integers() {
        assert_eq!(int_value(None, &5u64.to_le_bytes()), Some(5));
        let s = Type::Int {
            size: 4,
            signed: true,
        };
        assert_eq!(int_value(Some(&s), &(-2i32).to_le_bytes()), Some(-2));
        assert_eq!(int_value(Some(&Type::Opaque { size: 4 }), &[0; 4]), None);
    }
}
