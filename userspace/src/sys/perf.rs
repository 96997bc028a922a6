//! Per-CPU perf ring buffers for `BPF_MAP_TYPE_PERF_EVENT_ARRAY` maps, opened with a
//! wakeup WATERMARK (the kernel wakes the reader once that many bytes are queued, not on
//! every record) and drained in batches.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{last_error, SyscallError};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
const PERF_ATTR_FLAG_WATERMARK: u64 = 1 << 14;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `PERF_EVENT_IOC_ENABLE`
pub(crate) const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
/// `read()` also returns the event's lost-sample count (kernel >= 6.0).
const PERF_FORMAT_LOST: u64 = 1 << 4;

/// `PERF_RECORD_LOST`
pub const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`
pub const RECORD_SAMPLE: u32 = 9;

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_watermark: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

/// Records one [`PerfBuffer::drain`] call must have taken before it polls an empty ring
/// (the producer is busy) instead of returning to sleep.
pub const SPIN_AFTER_RECORDS: usize = 256;
/// How long [`PerfBuffer::drain`] polls an empty ring after a busy stretch.
pub const SPIN_FOR: Duration = Duration::from_micros(50);

/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD_OFFSET: usize = 1024;
const DATA_TAIL_OFFSET: usize = 1032;

/// One record taken from a ring.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// The raw bytes a BPF program passed to `bpf_perf_event_output` (kernel padding
    /// to 8 bytes included).
    Sample(&'a [u8]),
    /// The kernel dropped this many records because the ring was full.
    Lost(u64),
    /// Any other record type (ignored).
    Other(u32),
}

/// Parses one complete perf record (header included). `None` when malformed.
pub fn parse_record(rec: &[u8]) -> Option<Record<'_>> {
    let ty = u32::from_ne_bytes(rec.get(0..4)?.try_into().ok()?);
    match ty {
        RECORD_SAMPLE => {
            let size = u32::from_ne_bytes(rec.get(8..12)?.try_into().ok()?) as usize;
            Some(Record::Sample(rec.get(12..12usize.checked_add(size)?)?))
        }
        RECORD_LOST => {
            let lost = u64::from_ne_bytes(rec.get(16..24)?.try_into().ok()?);
            Some(Record::Lost(lost))
        }
        other => Some(Record::Other(other)),
    }
}

const PERF_TYPE_TRACEPOINT: u32 = 2;

/// Opens tracepoint `id` (from tracefs `events/<group>/<name>/id`) for every task, on CPU 0:
/// what a BPF program is set on with PERF_EVENT_IOC_SET_BPF. The program then runs on every
/// CPU; the perf event itself only anchors it.
pub fn open_tracepoint(id: u64) -> Result<OwnedFd, SyscallError> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: id,
        sample_period: 1,
        wakeup_watermark: 1,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid perf_event_attr whose `size` field is its real size;
    // pid -1 with cpu 0 and group -1 are valid arguments.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(last_error("perf_event_open(tracepoint)"));
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// A perf event of type `PERF_COUNT_SW_BPF_OUTPUT` on one CPU plus its mmap'd ring.
pub struct PerfBuffer {
    // Field order matters: the mapping is released (Drop) before the fd is closed.
    base: *mut u8,
    mmap_len: usize,
    data_size: usize,
    page: usize,
    has_lost_counter: bool,
    fd: OwnedFd,
}

// SAFETY: the mapping is owned exclusively by this value; it is only read/written
// through `&mut self` (drain) and the kernel side synchronises via head/tail atomics.
unsafe impl Send for PerfBuffer {}

impl PerfBuffer {
    /// Opens the event on `cpu` with a ring of `pages` data pages (a power of two) and a
    /// wakeup after `watermark` bytes.
    pub fn open(cpu: u32, pages: usize, watermark: u32) -> Result<Self, SyscallError> {
        let page = super::page_size();
        let data_size = pages.checked_mul(page).ok_or(SyscallError {
            call: "perf_event_open",
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            read_format: PERF_FORMAT_LOST,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_SW_BPF_OUTPUT,
            sample_period: 1,
            sample_type: PERF_SAMPLE_RAW,
            flags: PERF_ATTR_FLAG_WATERMARK,
            wakeup_watermark: watermark.clamp(1, (data_size / 2).max(1) as u32),
            ..Default::default()
        };
        let open = |attr: &PerfEventAttr| {
            // SAFETY: `attr` is a valid perf_event_attr whose `size` field is its real size;
            // pid -1 + a cpu and group -1 are valid arguments.
            unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    attr as *const PerfEventAttr,
                    -1 as libc::pid_t,
                    cpu as libc::c_int,
                    -1 as libc::c_int,
                    PERF_FLAG_FD_CLOEXEC,
                )
            }
        };
        let mut raw = open(&attr);
        let has_lost_counter = raw >= 0;
        if raw < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            // Kernels before 6.0 do not know PERF_FORMAT_LOST.
            attr.read_format = 0;
            raw = open(&attr);
        }
        if raw < 0 {
            return Err(last_error("perf_event_open"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let mmap_len = data_size + page;
        // SAFETY: mapping a perf fd with a length of 1 + 2^n pages, shared, as perf requires;
        // the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mmap_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(last_error("mmap(perf ring)"));
        }
        let buf = PerfBuffer {
            base: base.cast(),
            mmap_len,
            data_size,
            page,
            has_lost_counter,
            fd,
        };
        // SAFETY: ioctl on our own perf fd with a request that takes no argument pointer.
        if unsafe { libc::ioctl(buf.fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0 {
            return Err(last_error("ioctl(PERF_EVENT_IOC_ENABLE)"));
        }
        Ok(buf)
    }

    /// Total records the kernel failed to write into this ring since it was opened
    /// (kernel >= 6.0). LOST records report the same drops, but only once there is room
    /// again, so after the producers stop this is the only way to see the last ones.
    pub fn lost_total(&self) -> Option<u64> {
        if !self.has_lost_counter {
            return None;
        }
        let mut buf = [0u64; 2];
        // SAFETY: reading at most 16 bytes into a 16-byte buffer from our own perf fd;
        // with read_format = PERF_FORMAT_LOST the kernel writes {value, lost}.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 16) };
        (n == 16).then_some(buf[1])
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: data_head is an 8-byte aligned u64 inside the first (metadata) page of
        // our live mapping; the kernel updates it atomically.
        unsafe { &*self.base.add(DATA_HEAD_OFFSET).cast::<AtomicU64>() }
    }

    fn tail(&self) -> &AtomicU64 {
        // SAFETY: as for `head`; data_tail is written only by us.
        unsafe { &*self.base.add(DATA_TAIL_OFFSET).cast::<AtomicU64>() }
    }

    /// Copies `out.len()` bytes starting at ring position `pos` (wrapping).
    fn copy_out(&self, pos: u64, out: &mut [u8]) {
        let size = self.data_size;
        let start = (pos % size as u64) as usize;
        let first = out.len().min(size - start);
        // SAFETY: [start, start+first) and [0, len-first) lie inside the data area of our
        // mapping (len <= size, checked by the caller), in the region between tail and
        // head that the kernel does not write until we advance the tail.
        unsafe {
            let data = self.base.add(self.page);
            std::ptr::copy_nonoverlapping(data.add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), out.len() - first);
        }
    }

    /// Hands every queued record to `f`, releasing the space as it goes. Records are read
    /// in place; only one that wraps around the end of the ring is copied, into `scratch`
    /// (reused, so no allocation once it has grown). Returns the number of records seen.
    ///
    /// A busy producer is followed rather than slept on: once this call has taken
    /// [`SPIN_AFTER_RECORDS`], it keeps polling the ring for up to [`SPIN_FOR`] after it
    /// runs dry. Going to sleep and being woken by the next watermark costs an idle CPU's
    /// wake-up (milliseconds in a VM), during which a small ring overflows. Each call takes
    /// at most half a ring, so the other rings and the event loop get their turn.
    pub fn drain(&mut self, scratch: &mut Vec<u8>, mut f: impl FnMut(Record<'_>)) -> usize {
        let mut tail = self.tail().load(Ordering::Relaxed);
        let budget = tail + (self.data_size / 2).max(1) as u64;
        let mut n = 0;
        let mut dry_since: Option<Instant> = None;
        loop {
            let head = self.head().load(Ordering::Acquire);
            if tail >= head {
                if n < SPIN_AFTER_RECORDS {
                    break;
                }
                let since = *dry_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= SPIN_FOR {
                    break;
                }
                std::hint::spin_loop();
                continue;
            }
            dry_since = None;
            tail = self.take(tail, head, scratch, &mut f, &mut n);
            self.tail().store(tail, Ordering::Release);
            if tail >= budget {
                break;
            }
        }
        n
    }

    /// Hands the records in [tail, head) to `f`; returns the new tail.
    fn take(
        &self,
        mut tail: u64,
        head: u64,
        scratch: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>),
        n: &mut usize,
    ) -> u64 {
        while tail < head {
            let start = (tail % self.data_size as u64) as usize;
            let mut hdr = [0u8; 8];
            if start + 8 <= self.data_size {
                // SAFETY: [start, start+8) lies inside the data area of our mapping, in the
                // region between tail and head (a queued record's header) that the kernel
                // does not write until the tail is advanced.
                let h = unsafe { std::slice::from_raw_parts(self.base.add(self.page + start), 8) };
                hdr.copy_from_slice(h);
            } else {
                self.copy_out(tail, &mut hdr);
            }
            let size = u16::from_ne_bytes([hdr[6], hdr[7]]) as usize;
            if size < 8 || size > self.data_size || tail + size as u64 > head {
                // Corrupt ring: skip everything queued.
                return head;
            }
            let rec = if start + size <= self.data_size {
                // SAFETY: [start, start+size) lies inside the data area of our mapping, in
                // the region between tail and head that the kernel does not write until
                // the tail is advanced (by our caller, after the last use of this slice).
                unsafe { std::slice::from_raw_parts(self.base.add(self.page + start), size) }
            } else {
                // The record wraps around the end of the ring: reassemble it.
                scratch.resize(size, 0);
                self.copy_out(tail, scratch);
                &scratch[..]
            };
            if let Some(rec) = parse_record(rec) {
                f(rec);
            }
            *n += 1;
            tail += size as u64;
        }
        tail
    }
}

#[cfg(test)]
impl PerfBuffer {
    /// A ring of `pages` data pages in anonymous memory, with /dev/null as its fd: the
    /// drain logic on a ring the test writes itself (no perf event, no root).
    fn fake(pages: usize) -> PerfBuffer {
        let page = super::page_size();
        let mmap_len = (pages + 1) * page;
        // SAFETY: a fresh private anonymous mapping, checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mmap_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        PerfBuffer {
            base: base.cast(),
            mmap_len,
            data_size: pages * page,
            page,
            has_lost_counter: false,
            fd: std::fs::File::open("/dev/null").unwrap().into(),
        }
    }

    /// Writes `bytes` at ring position `pos` as the kernel would (wrapping at the end).
    fn produce(&self, pos: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let at = ((pos + i as u64) % self.data_size as u64) as usize;
            // SAFETY: `at` < data_size: inside the data area of the test's own mapping.
            unsafe { *self.base.add(self.page + at) = b };
        }
    }
}

impl AsFd for PerfBuffer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mmap returned; no references into it outlive
        // `self`.
        unsafe { libc::munmap(self.base.cast(), self.mmap_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut v = ty.to_ne_bytes().to_vec();
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&((8 + body.len()) as u16).to_ne_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn sample_and_lost_records_parse() {
        let mut body = 4u32.to_ne_bytes().to_vec();
        body.extend_from_slice(b"abcd");
        assert_eq!(
            parse_record(&rec(RECORD_SAMPLE, &body)),
            Some(Record::Sample(b"abcd"))
        );
        let mut body = 7u64.to_ne_bytes().to_vec();
        body.extend_from_slice(&42u64.to_ne_bytes());
        assert_eq!(
            parse_record(&rec(RECORD_LOST, &body)),
            Some(Record::Lost(42))
        );
    }

    fn sample(body: &[u8]) -> Vec<u8> {
        let mut b = (body.len() as u32).to_ne_bytes().to_vec();
        b.extend_from_slice(body);
        rec(RECORD_SAMPLE, &b)
    }

    #[test]
    fn records_wrapping_around_the_end_of_the_ring_are_reassembled() {
        let mut ring = PerfBuffer::fake(1);
        let size = ring.data_size as u64;
        // Start 20 bytes before the end: the second record straddles it, header included
        // on a later lap.
        let mut pos = size - 20;
        ring.tail().store(pos, Ordering::Relaxed);
        let bodies: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![b'a' + i; 6 + 4 * i as usize])
            .collect();
        for b in &bodies {
            let r = sample(b);
            ring.produce(pos, &r);
            pos += r.len() as u64;
        }
        let lost = rec(
            RECORD_LOST,
            &[7u64.to_ne_bytes(), 3u64.to_ne_bytes()].concat(),
        );
        ring.produce(pos, &lost);
        pos += lost.len() as u64;
        ring.head().store(pos, Ordering::Release);

        let mut scratch = Vec::new();
        let mut seen = Vec::new();
        let n = ring.drain(&mut scratch, |r| match r {
            Record::Sample(d) => seen.push(d.to_vec()),
            Record::Lost(k) => seen.push(format!("lost {k}").into_bytes()),
            Record::Other(t) => panic!("record type {t}"),
        });
        assert_eq!(n, 6);
        let mut want = bodies.clone();
        want.push(b"lost 3".to_vec());
        assert_eq!(seen, want);
        assert!(!scratch.is_empty(), "a record wrapped, so scratch was used");
        assert_eq!(
            ring.tail().load(Ordering::Relaxed),
            pos,
            "all space released"
        );
        // Nothing new: nothing handed out.
        assert_eq!(ring.drain(&mut scratch, |_| panic!("no record")), 0);
    }

    #[test]
    fn a_corrupt_header_skips_what_is_queued_instead_of_reading_out_of_bounds() {
        let mut ring = PerfBuffer::fake(1);
        let mut bad = rec(RECORD_SAMPLE, &[0; 8]);
        bad[6..8].copy_from_slice(&u16::MAX.to_ne_bytes());
        ring.produce(0, &bad);
        ring.head().store(bad.len() as u64, Ordering::Release);
        let n = ring.drain(&mut Vec::new(), |_| panic!("corrupt record handed out"));
        assert_eq!(n, 0);
        assert_eq!(ring.tail().load(Ordering::Relaxed), bad.len() as u64);
    }

    #[test]
    fn truncated_records_are_rejected_not_panicking() {
        let mut body = 100u32.to_ne_bytes().to_vec();
        body.extend_from_slice(b"ab");
        assert_eq!(parse_record(&rec(RECORD_SAMPLE, &body)), None);
        assert_eq!(parse_record(&[1, 2]), None);
        assert_eq!(parse_record(&rec(RECORD_LOST, &[0; 3])), None);
    }
}
