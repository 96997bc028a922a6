//! Every raw syscall the loader makes itself (aya covers program load/attach).
//!
//! Kept in one place so the unsafe surface is easy to audit: each `unsafe` block
//! states why it is sound, and every descriptor is an [`OwnedFd`].

pub mod netlink;
pub mod perf;
pub mod probe_event;
pub mod prog;
pub mod run_lock;
pub mod stop;

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A syscall that failed, with its name.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed")]
pub struct SyscallError {
    /// The syscall (or libc wrapper) that failed.
    pub call: &'static str,
    /// The OS error it returned.
    #[source]
    pub source: io::Error,
}

pub(crate) fn last_error(call: &'static str) -> SyscallError {
    SyscallError {
        call,
        source: io::Error::last_os_error(),
    }
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// The `map_elem` member of `union bpf_attr` (BPF_MAP_*_ELEM commands).
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value_or_next_key: u64,
    flags: u64,
}

/// A map fd with the key and value sizes of the map behind it: what the element calls
/// check their buffers against before the kernel reads or writes them.
#[derive(Debug, Clone, Copy)]
pub struct MapRef<'a> {
    fd: BorrowedFd<'a>,
    key_size: usize,
    /// Bytes the kernel writes on lookup: the value size, or for per-CPU maps the value
    /// size rounded up to 8, times the possible CPUs.
    value_len: usize,
}

impl<'a> MapRef<'a> {
    /// A map whose keys are `key_size` bytes and whose lookups write `value_len` bytes.
    ///
    /// # Safety
    /// `key_size` and `value_len` must be those of the map behind `fd` (as created: the
    /// definition it was created from, times the possible CPUs for per-CPU maps): the
    /// kernel reads and writes that many bytes through the buffers the element calls pass.
    pub unsafe fn new(fd: BorrowedFd<'a>, key_size: usize, value_len: usize) -> Self {
        MapRef {
            fd,
            key_size,
            value_len,
        }
    }

    fn check(&self, call: &'static str, key: usize, value: usize) -> Result<(), SyscallError> {
        if key != self.key_size || value < self.value_len {
            return Err(SyscallError {
                call,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "buffers of {key} and {value} bytes for a map of {}-byte keys and {}-byte values",
                        self.key_size, self.value_len
                    ),
                ),
            });
        }
        Ok(())
    }
}

fn bpf_map_cmd(cmd: libc::c_long, attr: &mut MapElemAttr) -> libc::c_long {
    // SAFETY: `attr` is a valid, initialised `bpf_attr` prefix of the size we pass; the
    // pointers it carries come from live slices that `MapRef::check` found at least as
    // long as the map's key and value sizes (which `MapRef::new`'s contract guarantees).
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut MapElemAttr,
            size_of::<MapElemAttr>() as libc::c_uint,
        )
    }
}

/// The `map_create` prefix of `union bpf_attr` that every kernel since 3.19 knows.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// Whether `BPF_MAP_CREATE` makes a one-page `BPF_MAP_TYPE_RINGBUF` map (5.8+); the map
/// is closed again at once.
pub fn can_create_ring_buffer() -> bool {
    let mut attr = MapCreateAttr {
        map_type: 27,
        key_size: 0,
        value_size: 0,
        max_entries: page_size() as u32,
        map_flags: 0,
    };
    // SAFETY: `attr` is a valid, initialised `bpf_attr` prefix of the size passed; the
    // kernel reads it and returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0 as libc::c_long, // BPF_MAP_CREATE
            &mut attr as *mut MapCreateAttr,
            size_of::<MapCreateAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    true
}

/// `BPF_MAP_UPDATE_ELEM`.
pub fn map_update(map: &MapRef<'_>, key: &[u8], value: &[u8]) -> Result<(), SyscallError> {
    map.check("bpf(BPF_MAP_UPDATE_ELEM)", key.len(), value.len())?;
    let mut attr = MapElemAttr {
        map_fd: map.fd.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value_or_next_key: value.as_ptr() as u64,
        ..Default::default()
    };
    if bpf_map_cmd(BPF_MAP_UPDATE_ELEM, &mut attr) < 0 {
        return Err(last_error("bpf(BPF_MAP_UPDATE_ELEM)"));
    }
    Ok(())
}

/// `BPF_MAP_LOOKUP_ELEM`; `Ok(false)` when the key is absent.
pub fn map_lookup(map: &MapRef<'_>, key: &[u8], value: &mut [u8]) -> Result<bool, SyscallError> {
    map.check("bpf(BPF_MAP_LOOKUP_ELEM)", key.len(), value.len())?;
    let mut attr = MapElemAttr {
        map_fd: map.fd.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value_or_next_key: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    if bpf_map_cmd(BPF_MAP_LOOKUP_ELEM, &mut attr) < 0 {
        let err = last_error("bpf(BPF_MAP_LOOKUP_ELEM)");
        if err.source.raw_os_error() == Some(libc::ENOENT) {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(true)
}

/// `BPF_MAP_GET_NEXT_KEY`; `Ok(false)` at the end. `key = None` starts from the first.
pub fn map_next_key(
    map: &MapRef<'_>,
    key: Option<&[u8]>,
    next: &mut [u8],
) -> Result<bool, SyscallError> {
    let call = "bpf(BPF_MAP_GET_NEXT_KEY)";
    map.check(call, next.len(), map.value_len)?;
    if let Some(k) = key {
        map.check(call, k.len(), map.value_len)?;
    }
    let mut attr = MapElemAttr {
        map_fd: map.fd.as_raw_fd() as u32,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value_or_next_key: next.as_mut_ptr() as u64,
        ..Default::default()
    };
    if bpf_map_cmd(BPF_MAP_GET_NEXT_KEY, &mut attr) < 0 {
        let err = last_error("bpf(BPF_MAP_GET_NEXT_KEY)");
        if err.source.raw_os_error() == Some(libc::ENOENT) {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(true)
}

/// Index of a network interface by name.
pub fn if_index(name: &str) -> Result<u32, SyscallError> {
    let c = CString::new(name).map_err(|_| SyscallError {
        call: "if_nametoindex",
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(last_error("if_nametoindex"));
    }
    Ok(index)
}

/// A raw `AF_PACKET` socket receiving every protocol, bound to interface `ifindex`
/// (non-blocking, close-on-exec).
pub fn packet_socket(ifindex: u32) -> Result<OwnedFd, SyscallError> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call with constant arguments.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(last_error("socket(AF_PACKET)"));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: `addr` is a valid sockaddr_ll and we pass its exact size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(last_error("bind(AF_PACKET)"));
    }
    Ok(fd)
}

/// Reads and discards every datagram queued on a non-blocking socket; returns
/// how many there were.
pub fn drain_socket(fd: BorrowedFd<'_>, scratch: &mut [u8]) -> u64 {
    let mut n = 0;
    loop {
        // SAFETY: `scratch` is a live writable buffer of the length we pass.
        let rc = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                scratch.as_mut_ptr().cast(),
                scratch.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if rc < 0 {
            return n;
        }
        n += 1;
    }
}

/// `mount -t <fstype> none <target>`.
pub fn mount_fs(fstype: &str, target: &str) -> Result<(), SyscallError> {
    let err = || SyscallError {
        call: "mount",
        source: io::Error::from(io::ErrorKind::InvalidInput),
    };
    let src = CString::new("none").map_err(|_| err())?;
    let t = CString::new(target).map_err(|_| err())?;
    let f = CString::new(fstype).map_err(|_| err())?;
    // SAFETY: all pointers are valid NUL-terminated strings living across the call.
    let rc = unsafe { libc::mount(src.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    if rc < 0 {
        return Err(last_error("mount"));
    }
    Ok(())
}

/// Effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Whether this process may load BPF programs: root, or CAP_SYS_ADMIN, or CAP_BPF (5.8+)
/// in its effective set (read from /proc/self/status; assumed yes where it cannot be
/// read, so the kernel has the last word).
pub fn may_load_bpf() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    if euid() == 0 {
        return true;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
    else {
        return true;
    };
    eff & ((1 << CAP_SYS_ADMIN) | (1 << CAP_BPF)) != 0
}

/// Size of a memory page.
pub fn page_size() -> usize {
    // SAFETY: sysconf with a constant name has no memory-safety requirements.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v <= 0 {
        4096
    } else {
        v as usize
    }
}

/// Whether stdout is a pipe/socket whose reader has gone away (`| head -1`).
pub fn stdout_closed() -> bool {
    let mut pfd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    rc > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// What [`raise_memlock`] managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memlock {
    /// Soft and hard limit are infinity.
    Unlimited,
    /// Without CAP_SYS_RESOURCE (containers often drop it, even for root) the hard limit
    /// cannot be raised: the soft limit was raised to it, this many bytes.
    HardLimit(u64),
}

/// Raises RLIMIT_MEMLOCK to infinity: before 5.11 every map and program is charged against
/// it, and the default (64 KiB on many distributions) fails BPF_MAP_CREATE with EPERM.
/// Where the hard limit may not be raised, raises the soft limit as far as it goes.
pub fn raise_memlock() -> Result<Memlock, SyscallError> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `unlimited` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return Ok(Memlock::Unlimited);
    }
    let denied = last_error("setrlimit(RLIMIT_MEMLOCK, infinity)");
    if denied.source.raw_os_error() != Some(libc::EPERM) {
        return Err(denied);
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Err(last_error("getrlimit(RLIMIT_MEMLOCK)"));
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above; lowering nothing, raising the soft limit up to the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
        return Err(last_error("setrlimit(RLIMIT_MEMLOCK, hard limit)"));
    }
    Ok(if lim.rlim_max == libc::RLIM_INFINITY {
        Memlock::Unlimited
    } else {
        Memlock::HardLimit(lim.rlim_max)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_syscall_error_names_the_call_and_carries_its_cause_once() {
        let e = SyscallError {
            call: "bpf(BPF_MAP_CREATE)",
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert_eq!(e.to_string(), "bpf(BPF_MAP_CREATE) failed");
        assert_eq!(
            crate::error_chain(&e),
            "bpf(BPF_MAP_CREATE) failed: Operation not permitted (os error 1)"
        );
        assert_eq!(crate::errno_of(&e), Some(libc::EPERM));
    }

    #[test]
    fn element_calls_refuse_buffers_shorter_than_the_map_before_any_syscall() {
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: no syscall is made: every call below fails the length check first.
        let map = unsafe { MapRef::new(null.as_fd(), 4, 16) };
        let mut short = [0u8; 8];
        let e = map_lookup(&map, &[0; 4], &mut short).unwrap_err();
        assert!(e.to_string().contains("BPF_MAP_LOOKUP_ELEM"), "{e}");
        assert!(
            format!("{:?}", e.source).contains("16-byte values"),
            "{e:?}"
        );
        assert!(map_lookup(&map, &[0; 2], &mut [0; 16]).is_err());
        assert!(map_update(&map, &[0; 4], &[0; 3]).is_err());
        assert!(map_next_key(&map, Some(&[0; 8]), &mut [0; 4]).is_err());
        assert!(map_next_key(&map, None, &mut [0; 3]).is_err());
    }
}
