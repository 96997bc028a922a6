//! Stack traces: the ids a program stores with `bpf_get_stackid` into its records, turned
//! into symbolized frames. A record field holds a stack id when its name says so (`stack`,
//! `stack_id`, `kstack`, `user_stack_id`: an integer field with `stack` in its name) in an
//! object with a STACK_TRACE map, or when `--stack FIELD=MAP` names it. Kernel addresses
//! are resolved through /proc/kallsyms, user addresses through the mappings of the record's
//! process (`pid`/`tgid` field) and the ELF symbols of its files, with blazesym; neither
//! needs BTF nor build ids, so 4.x kernels get them too.

use std::os::fd::BorrowedFd;

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};

use crate::dwarf::{Field, Type};
use crate::json;
use crate::sys;

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// the instruction address
    pub addr: u64,
    /// the function, when known
    pub sym: Option<String>,
    /// bytes into the function
    pub offset: u64,
    /// the binary or library (user frames)
    pub module: Option<String>,
}

/// A record field holding a stack id, and the STACK_TRACE map it indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackField {
    /// the field (its frames are written as `<name without _id>` or `<name>_frames`)
    pub name: String,
    offset: usize,
    size: usize,
    /// the STACK_TRACE map
    pub map: String,
}

impl StackField {
    /// The key its frames are written under: `stack_id` -> `stack`, else `<name>_frames`.
    pub fn frames_key(&self) -> String {
        match self.name.strip_suffix("_id") {
            Some(base) => base.to_owned(),
            None => format!("{}_frames", self.name),
        }
    }

    /// The stack id in `record`, when it holds one (negative ids are the helper's errors).
    pub fn id(&self, record: &[u8]) -> Option<u32> {
        let b = record.get(self.offset..self.offset.checked_add(self.size)?)?;
        let v = b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x));
        let signed_negative = v >> (self.size * 8 - 1) & 1 == 1;
        (!signed_negative).then(|| u32::try_from(v).ok())?
    }
}

/// The stack id fields of record type `ty`: `--stack FIELD=MAP` pairs first, then integer
/// fields with `stack` in their name when the object has exactly one STACK_TRACE map.
pub fn stack_fields(
    ty: Option<&Type>,
    stack_maps: &[String],
    named: &[(String, String)],
) -> Vec<StackField> {
    let Some(Type::Struct { fields, .. }) = ty else {
        return Vec::new();
    };
    let int = |f: &Field| match f.ty {
        Type::Int { size, .. } if matches!(size, 4 | 8) => Some(size as usize),
        _ => None,
    };
    fields
        .iter()
        .filter_map(|f| {
            let size = int(f)?;
            let map = match named.iter().find(|(field, _)| *field == f.name) {
                Some((_, map)) => map.clone(),
                None if f.name.contains("stack") && stack_maps.len() == 1 => stack_maps[0].clone(),
                None => return None,
            };
            Some(StackField {
                name: f.name.clone(),
                offset: f.offset as usize,
                size,
                map,
            })
        })
        .collect()
}

/// The instruction pointers of stack `id` in STACK_TRACE map `fd` (values of
/// `value_size` bytes: up to value_size / 8 addresses, zero-terminated).
pub fn read_stack(fd: BorrowedFd<'_>, id: u32, value_size: usize) -> Option<Vec<u64>> {
    let mut value = vec![0u8; value_size];
    // SAFETY: a STACK_TRACE map's keys are u32 stack ids and its values `value_size`
    // bytes (the definition it was created from, which the caller passes).
    let map = unsafe { sys::MapRef::new(fd, 4, value_size) };
    if !sys::map_lookup(&map, &id.to_ne_bytes(), &mut value).ok()? {
        return None;
    }
    Some(
        value
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
            .take_while(|&ip| ip != 0)
            .collect(),
    )
}

/// Kernel addresses on x86_64 and arm64 have the top bit set.
pub fn is_kernel(addr: u64) -> bool {
    addr >> 63 == 1
}

/// Symbolizes addresses (kallsyms for kernel ones, the process's mappings for user ones).
pub struct Symbols {
    symbolizer: Symbolizer,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            symbolizer: Symbolizer::new(),
        }
    }
}

impl Symbols {
    /// The frames of `ips`; user frames need `pid` (else they stay bare addresses).
    pub fn frames(&self, pid: Option<u32>, ips: &[u64]) -> Vec<Frame> {
        let (kernel, user): (Vec<u64>, Vec<u64>) = ips.iter().partition(|&&a| is_kernel(a));
        let mut resolved = Vec::with_capacity(ips.len());
        if !kernel.is_empty() {
            let src = Source::Kernel(Kernel::default());
            resolved.extend(self.resolve(&src, &kernel));
        }
        if !user.is_empty() {
            match pid {
                Some(pid) => {
                    let src = Source::Process(Process::new(pid.into()));
                    resolved.extend(self.resolve(&src, &user));
                }
                None => resolved.extend(user.iter().map(|&addr| bare(addr))),
            }
        }
        // Back in the stack's own order.
        ips.iter()
            .filter_map(|a| {
                resolved
                    .iter()
                    .position(|f| f.addr == *a)
                    .map(|i| resolved[i].clone())
            })
            .collect()
    }

    fn resolve(&self, src: &Source<'_>, addrs: &[u64]) -> Vec<Frame> {
        match self.symbolizer.symbolize(src, Input::AbsAddr(addrs)) {
            Ok(syms) => addrs
                .iter()
                .zip(syms)
                .map(|(&addr, s)| match s {
                    Symbolized::Sym(sym) => Frame {
                        addr,
                        sym: Some(sym.name.into_owned()),
                        offset: sym.offset as u64,
                        module: sym.module.map(|m| m.to_string_lossy().into_owned()),
                    },
                    Symbolized::Unknown(_) => bare(addr),
                })
                .collect(),
            Err(_) => addrs.iter().map(|&a| bare(a)).collect(),
        }
    }
}

fn bare(addr: u64) -> Frame {
    Frame {
        addr,
        sym: None,
        offset: 0,
        module: None,
    }
}

/// `[{"addr":"0x...","sym":"malloc","offset":16,"module":"/usr/lib/.../libc.so.6"}]`.
pub fn write_frames(out: &mut Vec<u8>, frames: &[Frame]) {
    out.push(b'[');
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"addr\":");
        json::str(out, &format!("{:#x}", f.addr));
        if let Some(sym) = &f.sym {
            out.extend_from_slice(b",\"sym\":");
            json::str(out, sym);
            out.extend_from_slice(b",\"offset\":");
            json::uint(out, u128::from(f.offset));
        }
        if let Some(m) = &f.module {
            out.extend_from_slice(b",\"module\":");
            json::str(out, m);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// The entries of a STACK_TRACE map dump (keys of 4 bytes, values of `value_size`):
/// `{"key":ID,"pid":P,"stack":[frames]}` per stack id, innermost frame first. Kernel
/// addresses are symbolized through kallsyms; user ones through the process `pid_of` says
/// last sent a record with that id (`pid`), else they stay addresses and the entry says
/// so (`"user":"no process known: addresses not symbolized"`).
pub fn dump_stack_map(
    fd: BorrowedFd<'_>,
    value_size: usize,
    symbols: &Symbols,
    pid_of: &dyn Fn(u32) -> Option<u32>,
    out: &mut Vec<u8>,
) -> Result<usize, sys::SyscallError> {
    // SAFETY: a STACK_TRACE map's keys are u32 stack ids; lookups are made by read_stack
    // with the value size of the map's definition.
    let map = unsafe { sys::MapRef::new(fd, 4, value_size) };
    let mut key = [0u8; 4];
    let mut next = [0u8; 4];
    let mut have_key = false;
    let mut n = 0;
    while n < crate::maps::MAX_DUMP_ENTRIES {
        if !sys::map_next_key(&map, have_key.then_some(&key[..]), &mut next)? {
            break;
        }
        key = next;
        have_key = true;
        let id = u32::from_ne_bytes(key);
        let Some(ips) = read_stack(fd, id, value_size) else {
            continue;
        };
        let pid = pid_of(id);
        if n > 0 {
            out.push(b',');
        }
        n += 1;
        out.extend_from_slice(b"{\"key\":");
        json::uint(out, u128::from(id));
        if let Some(p) = pid {
            out.extend_from_slice(b",\"pid\":");
            json::uint(out, u128::from(p));
        } else if ips.iter().any(|&a| !is_kernel(a)) {
            out.extend_from_slice(b",\"user\":");
            json::str(out, "no process known: addresses not symbolized");
        }
        out.extend_from_slice(b",\"stack\":");
        write_frames(out, &symbols.frames(pid, &ips));
        out.push(b'}');
    }
    Ok(n)
}

/// A frame as the table prints it: `sym+0x10 (module)` or the bare address.
pub fn frame_text(f: &Frame) -> String {
    match (&f.sym, &f.module) {
        (Some(s), Some(m)) => format!("{s}+{:#x} ({m})", f.offset),
        (Some(s), None) => format!("{s}+{:#x}", f.offset),
        _ => format!("{:#x}", f.addr),
    }
}

/// [`frame_text`] of a frame as [`write_frames`] wrote it (a map dump's entry).
pub fn json_frame_text(v: &serde_json::Value) -> String {
    let addr = v["addr"]
        .as_str()
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    frame_text(&Frame {
        addr,
        sym: v["sym"].as_str().map(str::to_owned),
        offset: v["offset"].as_u64().unwrap_or(0),
        module: v["module"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty() -> Type {
        let field = |name: &str, offset, size| Field {
            name: name.into(),
            offset,
            ty: Type::Int { size, signed: true },
        };
        Type::Struct {
            name: "e".into(),
            size: 16,
            fields: vec![
                field("pid", 0, 4),
                field("kstack", 4, 4),
                field("user_stack_id", 8, 8),
            ],
        }
    }

    #[test]
    fn stack_fields_by_name_or_flag_and_their_ids() {
        let t = ty();
        let one = vec!["STACKS".to_owned()];
        let found = stack_fields(Some(&t), &one, &[]);
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["kstack", "user_stack_id"]);
        assert_eq!(found[0].frames_key(), "kstack_frames");
        assert_eq!(found[1].frames_key(), "user_stack");
        // Two stack maps: only --stack says which.
        let two = vec!["A".to_owned(), "B".to_owned()];
        assert!(stack_fields(Some(&t), &two, &[]).is_empty());
        let named = stack_fields(Some(&t), &two, &[("pid".into(), "B".into())]);
        assert_eq!(
            (named[0].name.as_str(), named[0].map.as_str()),
            ("pid", "B")
        );
        let mut rec = [0u8; 16];
        rec[4..8].copy_from_slice(&7i32.to_le_bytes());
        rec[8..16].copy_from_slice(&(-14i64).to_le_bytes());
        assert_eq!(found[0].id(&rec), Some(7));
        assert_eq!(found[1].id(&rec), None, "-EFAULT is no stack id");
    }

    #[test]
    fn frames_render_as_json_and_text() {
        let frames = [
            Frame {
                addr: 0x1000,
                sym: Some("main".into()),
                offset: 16,
                module: Some("/bin/x".into()),
            },
            bare(0xffff_ffff_8100_0000),
        ];
        let mut out = Vec::new();
        write_frames(&mut out, &frames);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"addr":"0x1000","sym":"main","offset":16,"module":"/bin/x"},{"addr":"0xffffffff81000000"}])
        );
        assert_eq!(frame_text(&frames[0]), "main+0x10 (/bin/x)");
        assert_eq!(json_frame_text(&v[0]), "main+0x10 (/bin/x)");
        assert_eq!(json_frame_text(&v[1]), "0xffffffff81000000");
        assert!(is_kernel(frames[1].addr) && !is_kernel(frames[0].addr));
    }

    #[test]
    fn this_process_symbolizes_its_own_function() {
        let addr = this_process_symbolizes_its_own_function as *const () as usize as u64;
        let frames = Symbols::default().frames(Some(std::process::id()), &[addr]);
        let sym = frames[0].sym.as_deref().unwrap_or("");
        assert!(
            sym.contains("this_process_symbolizes_its_own_function"),
            "{frames:?}"
        );
    }
}
