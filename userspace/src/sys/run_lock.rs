//! Which loaders are alive, for the kprobe_events clean-up: a loader that creates kprobe
//! events first takes an exclusive `flock` on `/run/redbpf-loader/<pid>.lock` and holds it
//! until it exits. The kernel drops the lock when the process dies however it dies, so a
//! file that can be locked belongs to a dead loader even if its pid has been reused since,
//! whatever the binary is called.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::legacy::LockState;

/// Where the lock files live (a tmpfs: nothing survives a reboot, nor should it).
pub const DIR: &str = "/run/redbpf-loader";

fn path_of(dir: &Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.lock"))
}

/// This process's lock; dropping it removes the file (the lock goes with the descriptor).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other loader can take it for a dead one's.
        if let Err(e) = std::fs::remove_file(&self.path) {
            crate::say!("loader: removing {}: {e}", self.path.display());
        }
    }
}

/// Takes this process's lock in `dir`, creating `dir` (0700) if needed.
pub fn claim(dir: &Path) -> io::Result<RunLock> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = path_of(dir, std::process::id());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)?;
    // Blocking: only a loader judging this file stale (its pid's previous owner is dead)
    // can hold it, and only for as long as it takes to unlink it.
    file.lock()?;
    Ok(RunLock { path, _file: file })
}

/// The state of `pid`'s lock in `dir`.
pub fn probe(dir: &Path, pid: u32) -> LockState {
    let Ok(file) = File::open(path_of(dir, pid)) else {
        return LockState::Missing;
    };
    match file.try_lock() {
        Ok(()) => LockState::Free, // unlocked again when `file` is dropped
        Err(TryLockError::WouldBlock) => LockState::Held,
        Err(TryLockError::Error(_)) => LockState::Missing,
    }
}

/// Removes the lock files in `dir` nobody holds (loaders killed before they could remove
/// their own). Returns how many.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(file) = File::open(&path) {
            // Locked by us while it is unlinked: a new owner cannot slip in between.
            if file.try_lock().is_ok() && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_free_missing_and_stale_files() {
        let d = std::env::temp_dir().join(format!("run-lock-test-{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        assert_eq!(probe(&d, 1), LockState::Missing);
        let me = claim(&d).unwrap();
        let pid = std::process::id();
        assert!(path_of(&d, pid).exists());
        // flock is per open file description: a second open in this process conflicts too.
        assert_eq!(probe(&d, pid), LockState::Held);
        // A killed loader's file: present, nobody holds it.
        std::fs::write(path_of(&d, 4_000_001), b"").unwrap();
        assert_eq!(probe(&d, 4_000_001), LockState::Free);
        assert_eq!(remove_stale(&d), 1);
        assert_eq!(probe(&d, 4_000_001), LockState::Missing);
        assert!(path_of(&d, pid).exists(), "our own lock is never stale");
        drop(me);
        assert!(!path_of(&d, pid).exists());
        std::fs::remove_dir(&d).unwrap();
    }
}
