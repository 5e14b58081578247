use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use agents_core::{CloudEvent, async_trait};

use super::writer::{AuditWriter, Clock, sync_handle};
use super::{AuditConfig, FsyncPolicy};
use crate::{BusMetrics, Delivery, Error, EventBus, Subscription, TypeFilter, edge};

/// The durable, hash-chained audit log (see the [crate docs](crate#audit-log)).
///
/// Clones share one log. It is an [`EventBus`] that only publishes, so it can sit next to a
/// transport in a [`Tee`](crate::Tee); subscribing to it is refused.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Arc<Mutex<AuditWriter>>,
    metrics: Arc<BusMetrics>,
    closed: AtomicBool,
    flusher: Mutex<Option<Flusher>>,
    write_timeout: Duration,
}

/// The interval-fsync thread and its stop signal.
#[derive(Debug)]
struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Flusher {
    fn start(
        writer: &Arc<Mutex<AuditWriter>>,
        metrics: &Arc<BusMetrics>,
        every: Duration,
    ) -> Result<Self, Error> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (writer, metrics, signal) =
            (Arc::clone(writer), Arc::clone(metrics), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("audit-fsync".into())
            .spawn(move || {
                let (lock, wake) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                while !*stopped {
                    stopped = wake
                        .wait_timeout(stopped, every)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    // Take the handles under the writer lock, fsync without it: appends go on.
                    let target = lock_writer(&writer).sync_target();
                    if let Some((file, dirty)) = target
                        && let Err(error) = sync_handle(&file, &dirty, &metrics)
                    {
                        tracing::error!(%error, "audit log: interval fsync failed; will retry");
                    }
                }
            })
            .map_err(Error::io("start audit fsync thread", "audit-fsync"))?;
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if self.thread.join().is_err() {
            tracing::error!("audit log: the fsync thread panicked");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(flusher) = self
            .flusher
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            flusher.stop();
        }
        if let Err(error) = lock_writer(&self.writer).sync() {
            tracing::error!(%error, "audit log: final fsync failed");
        }
    }
}

fn lock_writer(writer: &Mutex<AuditWriter>) -> MutexGuard<'_, AuditWriter> {
    // Every critical section either completes a line or cuts it back, so the state behind a
    // poisoned lock is consistent.
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditLog {
    /// Opens the log in `config.dir`: continues today's newest file after repairing a torn
    /// last line, or starts a new one; starts the fsync thread for the interval policy.
    ///
    /// The log holds the directory until it is closed or its last clone is dropped; while it
    /// does, another open of the directory, in this process or another, is
    /// [`Error::AuditDirInUse`]: give each process its own directory.
    pub fn open(config: AuditConfig) -> Result<Self, Error> {
        Self::open_with_metrics(config, Arc::new(BusMetrics::new()))
    }

    /// Like [`open`](Self::open), counting into `metrics`.
    pub fn open_with_metrics(config: AuditConfig, metrics: Arc<BusMetrics>) -> Result<Self, Error> {
        Self::open_with_clock(config, metrics, Arc::new(chrono::Utc::now))
    }

    pub(crate) fn open_with_clock(
        config: AuditConfig,
        metrics: Arc<BusMetrics>,
        clock: Clock,
    ) -> Result<Self, Error> {
        let write_timeout = config.write_timeout();
        let writer = Arc::new(Mutex::new(AuditWriter::open(
            config,
            clock,
            Arc::clone(&metrics),
        )?));
        let flusher = match lock_writer(&writer).policy() {
            FsyncPolicy::Interval { interval_ms } => Some(Flusher::start(
                &writer,
                &metrics,
                Duration::from_millis(interval_ms),
            )?),
            FsyncPolicy::EveryEvent | FsyncPolicy::Never => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                metrics,
                closed: AtomicBool::new(false),
                flusher: Mutex::new(flusher),
                write_timeout,
            }),
        })
    }

    /// Redacts `event` and appends it, synchronously; with [`FsyncPolicy::EveryEvent`] the
    /// line is on disk when this returns.
    pub fn append(&self, event: CloudEvent) -> Result<(), Error> {
        let result = self.append_inner(&edge::redact(event));
        self.count(&result);
        result
    }

    fn append_inner(&self, event: &CloudEvent) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        lock_writer(&self.inner.writer).append(event)
    }

    fn count(&self, result: &Result<(), Error>) {
        let counter = match result {
            Ok(()) => &self.inner.metrics.published,
            Err(_) => &self.inner.metrics.publish_errors,
        };
        BusMetrics::inc(counter);
    }

    /// Forces what was written to disk now.
    pub fn sync(&self) -> Result<(), Error> {
        lock_writer(&self.inner.writer).sync()
    }

    /// The file being appended to.
    pub fn current_file(&self) -> Option<PathBuf> {
        lock_writer(&self.inner.writer).current_path()
    }

    /// The configuration in use.
    pub fn config(&self) -> AuditConfig {
        lock_writer(&self.inner.writer).config().clone()
    }

    /// Refuses further appends, stops the fsync thread, syncs and releases the directory, so
    /// another log may open it. Idempotent; after a failed sync, calling it again retries.
    pub fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::Release);
        let flusher = self
            .inner
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            flusher.stop();
        }
        lock_writer(&self.inner.writer).close()
    }

    /// The log's counters.
    pub fn metrics(&self) -> Arc<BusMetrics> {
        Arc::clone(&self.inner.metrics)
    }
}

#[async_trait]
impl EventBus for AuditLog {
    /// Appends the event. With [`FsyncPolicy::EveryEvent`] the write and fsync run on the
    /// blocking pool and the wait is bounded by `write_timeout_ms`; otherwise the append is
    /// one `write` to the page cache, done inline.
    async fn publish(&self, event: CloudEvent) -> Result<Delivery, Error> {
        let every_event = lock_writer(&self.inner.writer).policy() == FsyncPolicy::EveryEvent;
        let runtime = tokio::runtime::Handle::try_current();
        let result = match runtime {
            Ok(runtime) if every_event => {
                let log = self.clone();
                let event = edge::redact(event);
                let write = runtime.spawn_blocking(move || log.append_inner(&event));
                match tokio::time::timeout(self.inner.write_timeout, write).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(Error::Io {
                        operation: "append to audit file",
                        path: self.current_file().unwrap_or_default(),
                        source: std::io::Error::other("the write task did not finish"),
                    }),
                    Err(_) => Err(Error::Timeout {
                        operation: "audit append",
                        after_ms: self.inner.write_timeout.as_millis() as u64,
                    }),
                }
            }
            _ => self.append_inner(&edge::redact(event)),
        };
        self.count(&result);
        result.map(|()| Delivery::Accepted)
    }

    async fn subscribe(&self, _filter: TypeFilter) -> Result<Subscription, Error> {
        Err(Error::Unsupported {
            operation: "subscribe",
            bus: "audit log",
        })
    }

    async fn shutdown(&self) -> Result<(), Error> {
        self.close()
    }

    fn metrics(&self) -> Arc<BusMetrics> {
        AuditLog::metrics(self)
    }
}
