//! BPF_PROG_LOAD of the loader's own, for what aya cannot load (XDP below 4.17): only the
//! `bpf_attr` fields every kernel since 4.1 knows, so no kernel sees an attribute it
//! refuses.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;

/// `BPF_PROG_TYPE_XDP`.
pub const PROG_TYPE_XDP: u32 = 6;

/// The `BPF_PROG_LOAD` prefix of `union bpf_attr` up to `prog_flags` (4.12; zero is what
/// older kernels' tail check wants).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// A refused load: the errno and, when the kernel gave one, the verifier's log.
#[derive(Debug, thiserror::Error)]
#[error("BPF_PROG_LOAD failed")]
pub struct ProgLoadError {
    /// The OS error.
    #[source]
    pub source: io::Error,
    /// The verifier log (empty if the kernel wrote none).
    pub log: String,
}

fn load_once(
    prog_type: u32,
    insns: &[u8],
    license: &CStr,
    kern_version: u32,
    log: Option<&mut [u8]>,
) -> Result<OwnedFd, io::Error> {
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        kern_version,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is a valid bpf_attr prefix of the size passed; the instruction,
    // license and log buffers it points to are live for the call, of the sizes given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &mut attr as *mut ProgLoadAttr,
            size_of::<ProgLoadAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads `insns` (8 bytes each) as a program of `prog_type`. On failure loads again with a
/// 1 MiB verifier log, as libbpf does, so the error carries the log.
pub fn prog_load(
    prog_type: u32,
    insns: &[u8],
    license: &CStr,
    kern_version: u32,
) -> Result<OwnedFd, ProgLoadError> {
    if insns.is_empty() || !insns.len().is_multiple_of(8) {
        return Err(ProgLoadError {
            source: io::Error::from_raw_os_error(libc::EINVAL),
            log: format!("{} bytes of instructions", insns.len()),
        });
    }
    match load_once(prog_type, insns, license, kern_version, None) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let mut buf = vec![0u8; 1 << 20];
            let source = match load_once(prog_type, insns, license, kern_version, Some(&mut buf)) {
                Ok(fd) => return Ok(fd),
                Err(e) => e,
            };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Err(ProgLoadError {
                source,
                log: String::from_utf8_lossy(&buf[..end]).into_owned(),
            })
        }
    }
}
