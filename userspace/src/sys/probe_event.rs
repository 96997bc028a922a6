//! Kprobes the way every kernel since 4.1 can attach them: an entry written to tracefs
//! `kprobe_events`, opened as a tracepoint perf event, with the BPF program set on it.
//! (The perf kprobe PMU, 4.17+, goes through aya instead.)
//!
//! The entry outlives the process if it is killed: [`remove_leftovers`] deletes those of
//! loaders that are gone (told apart by their `sys::run_lock`), and [`ProbeEvent`] removes
//! its own on drop.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{last_error, run_lock, SyscallError};
use crate::legacy::{self, LeftoverEvent, LockState};

use super::perf::PERF_EVENT_IOC_ENABLE;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
/// `_IOW('$', 8, __u32)`
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// Errors creating a kprobe event.
#[derive(Debug, thiserror::Error)]
pub enum ProbeEventError {
    /// Writing or reading a tracefs file failed.
    #[error("{path}")]
    Tracefs {
        /// the file
        path: PathBuf,
        /// the error
        source: io::Error,
    },
    /// A syscall failed.
    #[error(transparent)]
    Sys(#[from] SyscallError),
}

fn tracefs_err(path: &Path) -> impl FnOnce(io::Error) -> ProbeEventError + '_ {
    move |source| ProbeEventError::Tracefs {
        path: path.to_owned(),
        source,
    }
}

/// The tracefs files whose entries outlive their creator: kprobes, and aya's uprobes on
/// kernels without the uprobe PMU (< 4.17).
const EVENT_FILES: [&str; 2] = ["kprobe_events", "uprobe_events"];

/// Appends one command to `kprobe_events` (append: a plain write would clear the file).
fn write_events(tracefs: &Path, cmd: &str) -> Result<(), ProbeEventError> {
    write_events_to(tracefs, "kprobe_events", cmd)
}

/// Appends one command to the tracefs events file `file`.
fn write_events_to(tracefs: &Path, file: &str, cmd: &str) -> Result<(), ProbeEventError> {
    let path = tracefs.join(file);
    let mut f = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(tracefs_err(&path))?;
    f.write_all(format!("{cmd}\n").as_bytes())
        .map_err(tracefs_err(&path))
}

/// A kprobe event with a BPF program attached; dropping it detaches and deletes the event.
pub struct ProbeEvent {
    tracefs: PathBuf,
    /// `group/event`
    id: String,
    perf: Option<OwnedFd>,
}

impl ProbeEvent {
    /// `group/event` in tracefs.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for ProbeEvent {
    fn drop(&mut self) {
        if let Some(fd) = self.perf.take() {
            // SAFETY: ioctl without argument on our own perf fd.
            unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_DISABLE, 0) };
            drop(fd); // the event is busy while a perf fd holds it
        }
        if let Err(e) = write_events(&self.tracefs, &format!("-:{}", self.id)) {
            crate::say!(
                "loader: removing kprobe event {}: {}",
                self.id,
                crate::error_chain(&e)
            );
        }
    }
}

/// Creates `p:`/`r:` `redbpf_loader/<name> <symbol>` and attaches `prog` to it on every CPU
/// (a tracepoint perf event with pid -1 on CPU 0 fires for all tasks everywhere).
pub fn attach_kprobe(
    tracefs: &Path,
    prog: BorrowedFd<'_>,
    retprobe: bool,
    symbol: &str,
    index: usize,
) -> Result<ProbeEvent, ProbeEventError> {
    let name = legacy::event_name(std::process::id(), index, retprobe, symbol);
    let id = format!("{}/{name}", legacy::EVENT_GROUP);
    let kind = if retprobe { 'r' } else { 'p' };
    write_events(tracefs, &format!("{kind}:{id} {symbol}"))?;
    // From here on, dropping `event` deletes the entry again.
    let mut event = ProbeEvent {
        tracefs: tracefs.to_owned(),
        id,
        perf: None,
    };
    let id_path = tracefs.join("events").join(&event.id).join("id");
    let tp_id: u64 = std::fs::read_to_string(&id_path)
        .map_err(tracefs_err(&id_path))?
        .trim()
        .parse()
        .map_err(|e| ProbeEventError::Tracefs {
            path: id_path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
    let perf = super::perf::open_tracepoint(tp_id)?;
    // SAFETY: PERF_EVENT_IOC_SET_BPF takes the program fd by value; both fds are live.
    if unsafe { libc::ioctl(perf.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } < 0 {
        return Err(last_error("ioctl(PERF_EVENT_IOC_SET_BPF)").into());
    }
    // SAFETY: ioctl without argument on our own perf fd.
    if unsafe { libc::ioctl(perf.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0 {
        return Err(last_error("ioctl(PERF_EVENT_IOC_ENABLE)").into());
    }
    event.perf = Some(perf);
    Ok(event)
}

/// Deletes the kprobe and uprobe events of loaders that are no longer running (killed
/// with -9, or crashed), judged by [`legacy::is_leftover`] from `/proc/<pid>` and the run
/// locks in `locks` (so call [`run_lock::remove_stale`] only after this), and this
/// process's own (at start a dead loader's whose pid came round; at exit those aya left
/// behind). Returns what was removed; failures are reported and skipped.
pub fn remove_leftovers(tracefs: &Path, locks: &Path) -> Vec<LeftoverEvent> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for file in EVENT_FILES {
        let Ok(text) = std::fs::read_to_string(tracefs.join(file)) else {
            continue;
        };
        for ev in legacy::loader_events(&text) {
            let running = Path::new(&format!("/proc/{}", ev.pid)).exists();
            let lock = if running {
                run_lock::probe(locks, ev.pid)
            } else {
                LockState::Missing
            };
            if !legacy::is_leftover(&ev, me, running, lock) {
                continue;
            }
            match write_events_to(tracefs, file, &format!("-:{}", ev.id)) {
                Ok(()) => removed.push(ev),
                Err(e) => crate::say!(
                    "loader: cannot remove leftover event {}: {}",
                    ev.id,
                    crate::error_chain(&e)
                ),
            }
        }
    }
    removed
}
