//! Just enough ELF reading to tell whether an executable can run in the guest: an x86-64
//! ELF64 file without a `PT_INTERP` program header (no dynamic loader in the initramfs).

use std::path::Path;

use thiserror::Error;

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;

#[derive(Debug, Error)]
pub enum ElfError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not an x86-64 ELF64 little-endian file ({why})")]
    NotElf { path: String, why: &'static str },
    #[error(
        "{path}: dynamically linked (interpreter {interp}); the guest has no libc. Build it \
         with RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
         --target x86_64-unknown-linux-gnu"
    )]
    Dynamic { path: String, interp: String },
}

/// Checks that `path` is a static x86-64 executable.
pub fn check_static(path: &Path) -> Result<(), ElfError> {
    let bytes = std::fs::read(path).map_err(|source| ElfError::Read {
        path: path.display().to_string(),
        source,
    })?;
    match interpreter(&bytes) {
        Ok(None) => Ok(()),
        Ok(Some(interp)) => Err(ElfError::Dynamic {
            path: path.display().to_string(),
            interp,
        }),
        Err(why) => Err(ElfError::NotElf {
            path: path.display().to_string(),
            why,
        }),
    }
}

/// The `PT_INTERP` path of an x86-64 ELF64 image, `None` if it has none.
pub fn interpreter(bytes: &[u8]) -> Result<Option<String>, &'static str> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("bad magic");
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not ELF64 little-endian");
    }
    if u16_at(bytes, 0x12) != Some(EM_X86_64) {
        return Err("machine is not x86-64");
    }
    let phoff = u64_at(bytes, 0x20).ok_or("truncated header")? as usize;
    let phentsize = u16_at(bytes, 0x36).ok_or("truncated header")? as usize;
    let phnum = u16_at(bytes, 0x38).ok_or("truncated header")? as usize;
    if phentsize < 56 {
        return Err("bad program header size");
    }
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32_at(bytes, ph).ok_or("truncated program headers")?;
        if p_type != PT_INTERP {
            continue;
        }
        let off = u64_at(bytes, ph + 8).ok_or("truncated program headers")? as usize;
        let size = u64_at(bytes, ph + 32).ok_or("truncated program headers")? as usize;
        let raw = bytes
            .get(off..off.saturating_add(size))
            .ok_or("PT_INTERP out of bounds")?;
        let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(raw).into_owned()));
    }
    Ok(None)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header with `phdrs` program headers of (type, offset, size) at 64.
    fn image(phdrs: &[(u32, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x12..0x14].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(ty, off, size) in phdrs {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&ty.to_le_bytes());
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&ph);
        }
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn static_image_has_no_interpreter() {
        assert_eq!(interpreter(&image(&[(1, 0, 0), (6, 0, 0)], b"")), Ok(None));
    }

    #[test]
    fn dynamic_image_names_its_interpreter() {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let off = 64 + 2 * 56;
        let img = image(&[(6, 0, 0), (3, off, interp.len() as u64)], interp);
        assert_eq!(
            interpreter(&img),
            Ok(Some("/lib64/ld-linux-x86-64.so.2".to_owned()))
        );
    }

    #[test]
    fn rejects_non_elf_and_wrong_machine() {
        assert!(interpreter(b"#!/bin/sh\n").is_err());
        let mut img = image(&[], b"");
        img[0x12] = 183; // aarch64
        assert_eq!(interpreter(&img), Err("machine is not x86-64"));
        let bad = image(&[(3, 4096, 10)], b"");
        assert_eq!(interpreter(&bad), Err("PT_INTERP out of bounds"));
    }

    #[test]
    fn this_test_binary_is_elf() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        assert!(interpreter(&bytes).is_ok(), "{}", exe.display());
    }
}
