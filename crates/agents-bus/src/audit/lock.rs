//! One writer per audit directory.
//!
//! Why: two processes appending to one directory (the server's `serve` and `worker` commands
//! read the same config, so by default both write `./data/audit`) would each continue the
//! newest file from the same last hash and keep separate chains. Their interleaved lines then
//! fail verification, the torn-line repair of one at start can cut a line the other is still
//! writing, and both rotate at once. An exclusive advisory lock on [`LOCK_FILE`], held for the
//! writer's life, refuses the second writer before it touches any audit file.

use std::fs::{File, TryLockError};
use std::path::Path;

use crate::Error;

/// The lock file's name in the audit directory. It starts with a dot and does not end in
/// `.jsonl`, so it never parses as an audit file's name (`<prefix>-<date>[.<n>].jsonl`).
pub(crate) const LOCK_FILE: &str = ".lock";

/// The exclusive lock on an audit directory; released when dropped, or by the operating
/// system when the process dies, so a crash leaves no stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Held open only for the lock on it.
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, without waiting: another writer holding it is
    /// [`Error::AuditDirInUse`].
    pub(crate) fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(LOCK_FILE);
        // Never truncated and never removed: removing it on release would let one process
        // lock the removed file while another creates and locks a new one, two writers again.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open audit lock file", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::AuditDirInUse {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io {
                operation: "lock audit directory",
                path,
                source,
            }),
        }
    }
}
