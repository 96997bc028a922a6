//! The loader's filters, applied in the kernel where a probe has the fields at hand: a
//! probe declaring `LOADER_FILTER` (an array of one [`LoaderFilter`]) gets the loader's
//! `--pid`, `--uid`, `--comm` and `--failed` written there before its programs attach,
//! and sends only the records that pass; the loader filters every record again anyway, so
//! a probe that ignores the map, or a loader that does not fill it, changes nothing but
//! the traffic.

use redbpf_probes::kprobe::prelude::*;

/// `LoaderFilter::set` bits.
pub const PID: u32 = 1;
/// See [`PID`].
pub const UID: u32 = 2;
/// See [`PID`].
pub const COMM: u32 = 4;
/// See [`PID`].
pub const FAILED: u32 = 8;

/// What the loader asks for: the filters named in `set`, with their values. 32 bytes;
/// `comm` is NUL-padded, at most 15 characters, as the kernel keeps a command name.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoaderFilter {
    pub set: u32,
    pub pid: u32,
    pub uid: u32,
    pub pad: u32,
    pub comm: [u8; 16],
}

/// Whether a record of `pid`, `uid`, `comm` and result `ret` passes the loader's filter
/// (everything passes when the loader wrote none).
#[inline(always)]
pub fn passes(
    filter: &mut Array<LoaderFilter>,
    pid: u32,
    uid: u32,
    comm: &[u8; 16],
    ret: i64,
) -> bool {
    let Some(f) = filter.get(0) else {
        return true;
    };
    if f.set & PID != 0 && f.pid != pid
        || f.set & UID != 0 && f.uid != uid
        || f.set & FAILED != 0 && ret >= 0
    {
        return false;
    }
    if f.set & COMM != 0 {
        for (want, got) in f.comm.iter().zip(comm) {
            if want != got {
                return false;
            }
            if *got == 0 {
                break;
            }
        }
    }
    true
}
