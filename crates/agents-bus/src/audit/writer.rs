//! The synchronous core of the audit log: one open file, its chain value, rotation.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agents_core::CloudEvent;
use chrono::{DateTime, Utc};

use super::chain::{self, GENESIS};
use super::files::{self, Slot};
use super::lock::DirLock;
use super::{AuditConfig, FsyncPolicy};
use crate::{BusMetrics, Error, edge};

/// Where "now" comes from; replaced in tests to cross midnight.
pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The file being appended to.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    slot: Slot,
    size: u64,
    last: [u8; 32],
    /// Written since the last fsync; shared with the interval flusher.
    pub(crate) dirty: Arc<AtomicBool>,
}

pub(crate) struct AuditWriter {
    config: AuditConfig,
    clock: Clock,
    metrics: Arc<BusMetrics>,
    current: Option<Current>,
    /// Held from open to close: no other writer appends to this directory meanwhile.
    lock: Option<DirLock>,
    /// Set by [`close`](Self::close); appends are refused from then on.
    closed: bool,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("config", &self.config)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl AuditWriter {
    /// Locks the directory, then opens the newest file of the day (repairing a torn last line)
    /// or starts one.
    pub(crate) fn open(
        config: AuditConfig,
        clock: Clock,
        metrics: Arc<BusMetrics>,
    ) -> Result<Self, Error> {
        config.validate()?;
        std::fs::create_dir_all(&config.dir)
            .map_err(Error::io("create audit directory", &config.dir))?;
        // Before anything is read or repaired: another writer's chain must not be touched.
        let lock = DirLock::acquire(&config.dir)?;
        let mut writer = Self {
            config,
            clock,
            metrics,
            current: None,
            lock: Some(lock),
            closed: false,
        };
        let today = (writer.clock)().date_naive();
        let latest = files::latest(&writer.config.dir, &writer.config.file_prefix)
            .map_err(Error::io("list audit directory", &writer.config.dir))?;
        match latest {
            Some(slot) if slot.date >= today || !writer.config.rotate_daily => {
                if !writer.resume(slot)? {
                    writer.start(slot.next(today))?;
                }
            }
            Some(slot) => writer.start(slot.next(today))?,
            None => writer.start(Slot {
                date: today,
                index: 0,
            })?,
        }
        Ok(writer)
    }

    /// Continues `slot`'s file after repairing it; `false` when its last line has no valid
    /// chain suffix, so the chain cannot be continued and a new file is needed.
    fn resume(&mut self, slot: Slot) -> Result<bool, Error> {
        let path = self
            .config
            .dir
            .join(slot.file_name(&self.config.file_prefix));
        let mut file = File::options()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("open audit file", &path))?;
        let tail = files::repair(&mut file).map_err(Error::io("repair audit file", &path))?;
        if tail.removed > 0 {
            BusMetrics::inc(&self.metrics.audit_repaired);
            tracing::warn!(path = %path.display(), bytes = tail.removed, "audit log: removed a torn last line left by a crash");
        }
        let last = match &tail.last_line {
            None => GENESIS,
            Some(line) => match chain::stored_hash(line) {
                Some(hash) => hash,
                None => {
                    tracing::warn!(path = %path.display(), "audit log: the last line has no chain hash; starting a new file");
                    return Ok(false);
                }
            },
        };
        self.current = Some(Current {
            file: Arc::new(file),
            path,
            slot,
            size: tail.len,
            last,
            dirty: Arc::new(AtomicBool::new(false)),
        });
        Ok(true)
    }

    /// Starts a new, empty file at `slot` (or the next free slot after it).
    fn start(&mut self, mut slot: Slot) -> Result<(), Error> {
        let prefix = &self.config.file_prefix;
        while self.config.dir.join(slot.file_name(prefix)).exists() {
            slot.index += 1;
        }
        let path = self.config.dir.join(slot.file_name(prefix));
        let file = File::options()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("create audit file", &path))?;
        if self.config.fsync != FsyncPolicy::Never {
            files::sync_dir(&self.config.dir)
                .map_err(Error::io("sync audit directory", &self.config.dir))?;
        }
        self.current = Some(Current {
            file: Arc::new(file),
            path,
            slot,
            size: 0,
            last: GENESIS,
            dirty: Arc::new(AtomicBool::new(false)),
        });
        Ok(())
    }

    /// Syncs and leaves the current file, then starts the next one.
    fn rotate(&mut self, today: chrono::NaiveDate) -> Result<(), Error> {
        let next = match self.current.take() {
            Some(current) => {
                if self.config.fsync != FsyncPolicy::Never {
                    Self::sync_file(&current, &self.metrics)?;
                }
                current.slot.next(today)
            }
            None => Slot {
                date: today,
                index: 0,
            },
        };
        BusMetrics::inc(&self.metrics.audit_rotations);
        self.start(next)
    }

    /// Appends one event (already redacted) as a chained line.
    pub(crate) fn append(&mut self, event: &CloudEvent) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        let body = if event.extensions.contains_key(chain::ATTRIBUTE) {
            // A forwarded audit line: its old hash would clash with ours.
            let mut event = event.clone();
            event.extensions.remove(chain::ATTRIBUTE);
            edge::encode(&event)?
        } else {
            edge::encode(event)?
        };
        let today = (self.clock)().date_naive();
        let grown = (body.len() + chain::SUFFIX_LEN + 1) as u64;
        let must_rotate = match &self.current {
            None => true,
            Some(current) => {
                (self.config.rotate_daily && today > current.slot.date)
                    || (self.config.max_file_bytes > 0
                        && current.size > 0
                        && current.size + grown > self.config.max_file_bytes)
            }
        };
        if must_rotate {
            self.rotate(today)?;
        }
        let Some(current) = self.current.as_mut() else {
            return Err(Error::Closed);
        };
        let (line, hash) = chain::seal(&current.last, &body).ok_or(Error::InvalidEvent {
            reason: "the event did not encode as a JSON object",
        })?;
        // One write per line: a crash leaves at most this line torn, which `repair` removes.
        if let Err(source) = (&*current.file).write_all(&line) {
            let path = current.path.clone();
            // Cut a partial line so that the next append does not land after garbage; if even
            // that fails, leave the file and start a new one on the next append.
            if current.file.set_len(current.size).is_err() {
                self.current = None;
            }
            return Err(Error::Io {
                operation: "append to audit file",
                path,
                source,
            });
        }
        current.size += line.len() as u64;
        current.last = hash;
        current.dirty.store(true, Ordering::Release);
        BusMetrics::inc(&self.metrics.audit_appended);
        if self.config.fsync == FsyncPolicy::EveryEvent {
            Self::sync_file(current, &self.metrics)?;
        }
        Ok(())
    }

    /// Refuses further appends, syncs, then releases the directory lock, so another writer
    /// may open the directory. If the sync fails the lock is kept, and calling this again
    /// retries the sync. The file stays known for [`current_path`](Self::current_path).
    pub(crate) fn close(&mut self) -> Result<(), Error> {
        self.closed = true;
        self.sync()?;
        self.lock = None;
        Ok(())
    }

    /// fsyncs the current file if anything was written since the last sync.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        match &self.current {
            Some(current) => Self::sync_file(current, &self.metrics),
            None => Ok(()),
        }
    }

    pub(crate) fn sync_file(current: &Current, metrics: &BusMetrics) -> Result<(), Error> {
        sync_handle(&current.file, &current.dirty, metrics)
            .map_err(Error::io("sync audit file", &current.path))
    }

    /// The handles the interval flusher syncs without holding the writer.
    pub(crate) fn sync_target(&self) -> Option<(Arc<File>, Arc<AtomicBool>)> {
        self.current
            .as_ref()
            .map(|c| (Arc::clone(&c.file), Arc::clone(&c.dirty)))
    }

    pub(crate) fn current_path(&self) -> Option<PathBuf> {
        self.current.as_ref().map(|c| c.path.clone())
    }

    pub(crate) fn policy(&self) -> FsyncPolicy {
        self.config.fsync
    }

    pub(crate) fn config(&self) -> &AuditConfig {
        &self.config
    }
}

/// fsyncs `file` if `dirty`; on failure it stays dirty for the next attempt.
pub(crate) fn sync_handle(
    file: &File,
    dirty: &AtomicBool,
    metrics: &BusMetrics,
) -> std::io::Result<()> {
    if dirty.swap(false, Ordering::AcqRel) {
        if let Err(error) = file.sync_data() {
            dirty.store(true, Ordering::Release);
            return Err(error);
        }
        BusMetrics::inc(&metrics.audit_fsyncs);
    }
    Ok(())
}
