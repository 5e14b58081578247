use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agents_core::CloudEvent;

use super::OutboxConfig;
use crate::{BusMetrics, Error};

const DATA: &str = "outbox.jsonl";
const POSITION: &str = "outbox.pos";
/// Compaction rewrites the file once the sent part is at least this big (or `max_bytes`).
const MIN_COMPACT: u64 = 1024 * 1024;

/// One waiting event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) event_type: String,
    /// The encoded (redacted) event, without the newline.
    pub(crate) payload: Vec<u8>,
}

/// A bounded FIFO of events, mirrored in memory and on disk.
#[derive(Debug)]
pub(crate) struct Outbox {
    config: OutboxConfig,
    metrics: Arc<BusMetrics>,
    data_path: PathBuf,
    data: File,
    position: File,
    entries: VecDeque<Entry>,
    /// Sum of the payload sizes of `entries`.
    bytes: u64,
    /// File offset of the first entry.
    head: u64,
    /// File length.
    len: u64,
}

impl Outbox {
    /// Opens (or creates) the outbox in `config.dir` and loads what a previous run left.
    pub(crate) fn open(config: OutboxConfig, metrics: Arc<BusMetrics>) -> Result<Self, Error> {
        config.validate()?;
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(Error::io("create outbox directory", &dir))?;
        let data_path = dir.join(DATA);
        let pos_path = dir.join(POSITION);
        let mut data = open_rw(&data_path)?;
        let mut position = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&pos_path)
            .map_err(Error::io("open outbox position", &pos_path))?;
        let mut content = Vec::new();
        data.read_to_end(&mut content)
            .map_err(Error::io("read outbox", &data_path))?;
        let mut saved = String::new();
        position
            .read_to_string(&mut saved)
            .map_err(Error::io("read outbox position", &pos_path))?;

        // A torn last line is the event being written when the process died: cut it.
        let complete = content
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        if complete < content.len() {
            data.set_len(complete as u64)
                .map_err(Error::io("repair outbox", &data_path))?;
            content.truncate(complete);
        }
        let head = valid_position(&saved, &content).unwrap_or_else(|| {
            if !saved.trim().is_empty() && complete > 0 {
                tracing::warn!(path = %data_path.display(), "outbox position is stale; re-sending the whole outbox (the stream drops duplicates by id)");
            }
            0
        });
        let mut outbox = Self {
            config,
            metrics,
            data_path,
            data,
            position,
            entries: VecDeque::new(),
            bytes: 0,
            head: head as u64,
            len: content.len() as u64,
        };
        for line in content[head..]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match CloudEvent::from_json(line) {
                Ok(event) => outbox.remember(Entry {
                    id: event.id,
                    event_type: event.event_type,
                    payload: line.to_vec(),
                }),
                Err(error) => {
                    BusMetrics::inc(&outbox.metrics.decode_errors);
                    tracing::error!(%error, "outbox: skipping a line that is not a CloudEvent");
                }
            }
        }
        outbox.gauge();
        if !outbox.entries.is_empty() {
            tracing::info!(
                events = outbox.entries.len(),
                "outbox: events from a previous run will be re-sent"
            );
        }
        Ok(outbox)
    }

    fn remember(&mut self, entry: Entry) {
        self.bytes += entry.payload.len() as u64;
        self.entries.push_back(entry);
    }

    fn gauge(&self) {
        BusMetrics::set(&self.metrics.outbox_depth, self.entries.len() as u64);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// Whether one more event of `size` bytes fits.
    pub(crate) fn has_room(&self, size: usize) -> bool {
        self.entries.len() < self.config.max_events
            && self.bytes + size as u64 <= self.config.max_bytes
    }

    /// Appends an event at the back, or refuses it when the outbox is full.
    pub(crate) fn push(&mut self, entry: Entry) -> Result<(), Error> {
        if !self.has_room(entry.payload.len()) {
            let (limit, unit) = if self.entries.len() >= self.config.max_events {
                (self.config.max_events as u64, "events")
            } else {
                (self.config.max_bytes, "bytes")
            };
            return Err(Error::Full {
                queue: "outbox",
                limit,
                unit,
            });
        }
        let mut line = Vec::with_capacity(entry.payload.len() + 1);
        line.extend_from_slice(&entry.payload);
        line.push(b'\n');
        if let Err(source) = self.data.write_all(&line) {
            // Cut a partial line so the next push does not follow garbage.
            let _ = self.data.set_len(self.len);
            return Err(Error::Io {
                operation: "append to outbox",
                path: self.data_path.clone(),
                source,
            });
        }
        self.len += line.len() as u64;
        self.remember(entry);
        BusMetrics::inc(&self.metrics.outbox_enqueued);
        self.gauge();
        Ok(())
    }

    /// Removes the front event once the transport acknowledged it.
    pub(crate) fn pop(&mut self) -> Result<(), Error> {
        let Some(entry) = self.entries.pop_front() else {
            return Ok(());
        };
        self.bytes -= entry.payload.len() as u64;
        self.head += entry.payload.len() as u64 + 1;
        self.gauge();
        if self.entries.is_empty() {
            // Truncate first: a crash before the position is reset leaves a position past
            // the end, which reads as "start from 0" of an empty file.
            self.data
                .set_len(0)
                .map_err(Error::io("truncate outbox", &self.data_path))?;
            self.head = 0;
            self.len = 0;
            return self.save_position();
        }
        if self.head >= self.config.max_bytes.max(MIN_COMPACT) {
            return self.compact();
        }
        self.save_position()
    }

    /// Rewrites the unsent events to a fresh file, so the sent part does not grow forever.
    fn compact(&mut self) -> Result<(), Error> {
        let tmp = self.config.dir.join(format!("{DATA}.tmp"));
        let mut out = File::create(&tmp).map_err(Error::io("compact outbox", &tmp))?;
        let mut len = 0u64;
        for entry in &self.entries {
            out.write_all(&entry.payload)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(Error::io("compact outbox", &tmp))?;
            len += entry.payload.len() as u64 + 1;
        }
        out.sync_data().map_err(Error::io("compact outbox", &tmp))?;
        std::fs::rename(&tmp, &self.data_path)
            .map_err(Error::io("compact outbox", &self.data_path))?;
        self.data = open_rw(&self.data_path)?;
        self.head = 0;
        self.len = len;
        self.save_position()
    }

    /// Records the offset and id of the front event.
    fn save_position(&mut self) -> Result<(), Error> {
        let id = self.entries.front().map_or("", |e| e.id.as_str());
        let record = format!("{} {}\n", self.head, serde_json::Value::from(id));
        let path = self.config.dir.join(POSITION);
        self.position
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.position.write_all(record.as_bytes()))
            .and_then(|()| self.position.set_len(record.len() as u64))
            .map_err(Error::io("save outbox position", &path))
    }

    /// Forces the outbox to disk, for shutdown.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        self.data
            .sync_data()
            .and_then(|()| self.position.sync_data())
            .map_err(Error::io("sync outbox", &self.data_path))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.config.dir
    }
}

fn open_rw(path: &Path) -> Result<File, Error> {
    File::options()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(Error::io("open outbox", path))
}

/// The saved offset, if it is a line start of `content` whose event has the saved id.
fn valid_position(saved: &str, content: &[u8]) -> Option<usize> {
    let first = saved.lines().next()?;
    let (offset, id) = first.split_once(' ')?;
    let offset: usize = offset.parse().ok()?;
    let id: String = serde_json::from_str(id).ok()?;
    if offset > content.len() || (offset > 0 && content[offset - 1] != b'\n') {
        return None;
    }
    if offset == content.len() {
        return Some(offset);
    }
    let line = content[offset..].split(|&b| b == b'\n').next()?;
    let event = CloudEvent::from_json(line).ok()?;
    (event.id == id).then_some(offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use agents_core::TaskQueued;

    use super::*;

    fn entry(i: usize) -> Entry {
        let event = CloudEvent::new("/t", &TaskQueued::default()).with_id(format!("id-{i}"));
        Entry {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            payload: serde_json::to_vec(&event).unwrap(),
        }
    }

    fn open(dir: &Path, max_events: usize, max_bytes: u64) -> Outbox {
        let config = OutboxConfig::new(dir)
            .with_max_events(max_events)
            .with_max_bytes(max_bytes);
        Outbox::open(config, Arc::new(BusMetrics::new())).unwrap()
    }

    fn ids(outbox: &Outbox) -> Vec<String> {
        outbox.entries.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn fifo_survives_reopen_and_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(dir.path(), 10, 1 << 20);
        for i in 0..5 {
            outbox.push(entry(i)).unwrap();
        }
        outbox.pop().unwrap();
        outbox.pop().unwrap();
        assert_eq!(outbox.front().unwrap().id, "id-2");
        outbox.sync().unwrap();
        drop(outbox);

        let mut outbox = open(dir.path(), 10, 1 << 20);
        assert_eq!(ids(&outbox), ["id-2", "id-3", "id-4"]);
        assert_eq!(outbox.metrics.snapshot().outbox_depth, 3);
        while !outbox.is_empty() {
            outbox.pop().unwrap();
        }
        outbox.pop().unwrap();
        assert_eq!(std::fs::metadata(dir.path().join(DATA)).unwrap().len(), 0);
        drop(outbox);
        assert!(open(dir.path(), 10, 1 << 20).is_empty());
    }

    #[test]
    fn bounds_refuse_and_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(dir.path(), 2, 1 << 20);
        outbox.push(entry(0)).unwrap();
        outbox.push(entry(1)).unwrap();
        let full = outbox.push(entry(2)).unwrap_err();
        assert!(
            matches!(
                full,
                Error::Full {
                    limit: 2,
                    unit: "events",
                    ..
                }
            ),
            "{full}"
        );
        let size = entry(0).payload.len() as u64;
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(dir.path(), 100, size);
        outbox.push(entry(0)).unwrap();
        let full = outbox.push(entry(1)).unwrap_err();
        assert!(matches!(full, Error::Full { unit: "bytes", .. }), "{full}");
        assert_eq!(outbox.len(), 1);
        assert!(!outbox.has_room(1));
    }

    #[test]
    fn torn_lines_stale_positions_and_garbage_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = open(dir.path(), 10, 1 << 20);
        for i in 0..3 {
            outbox.push(entry(i)).unwrap();
        }
        outbox.pop().unwrap();
        drop(outbox);
        let data = dir.path().join(DATA);
        // A torn line at the end: cut.
        let mut file = File::options().append(true).open(&data).unwrap();
        file.write_all(b"{\"id\":\"torn").unwrap();
        let outbox = open(dir.path(), 10, 1 << 20);
        assert_eq!(ids(&outbox), ["id-1", "id-2"]);
        drop(outbox);
        // A position naming another id: everything is re-sent.
        std::fs::write(dir.path().join(POSITION), "0 \"id-9\"\n").unwrap();
        let outbox = open(dir.path(), 10, 1 << 20);
        assert_eq!(ids(&outbox), ["id-0", "id-1", "id-2"]);
        drop(outbox);
        // A position that is not a line start, or not a number: likewise.
        for saved in ["5 \"id-1\"\n", "x\n", ""] {
            std::fs::write(dir.path().join(POSITION), saved).unwrap();
            assert_eq!(open(dir.path(), 10, 1 << 20).len(), 3, "{saved:?}");
        }
        // A line that is not a CloudEvent is skipped and counted.
        let mut file = File::options().append(true).open(&data).unwrap();
        file.write_all(b"not json\n").unwrap();
        let outbox = open(dir.path(), 10, 1 << 20);
        assert_eq!(outbox.len(), 3);
        assert_eq!(outbox.metrics.snapshot().decode_errors, 1);
        assert_eq!(outbox.dir(), dir.path());
    }

    #[test]
    fn compaction_keeps_order_and_bounds_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let size = entry(0).payload.len() as u64 + 1;
        let mut outbox = open(dir.path(), 100_000, MIN_COMPACT);
        let mut next = 0;
        // Keep ~10 events waiting while pushing far more than the compaction threshold.
        while next < 10 {
            outbox.push(entry(next)).unwrap();
            next += 1;
        }
        for _ in 0..(3 * MIN_COMPACT / size) {
            outbox.push(entry(next)).unwrap();
            next += 1;
            outbox.pop().unwrap();
        }
        let len = std::fs::metadata(dir.path().join(DATA)).unwrap().len();
        assert!(len <= MIN_COMPACT + 20 * size, "{len}");
        let expected: Vec<_> = (next - 10..next).map(|i| format!("id-{i}")).collect();
        assert_eq!(ids(&outbox), expected);
        drop(outbox);
        assert_eq!(ids(&open(dir.path(), 100_000, MIN_COMPACT)), expected);
    }

    #[test]
    fn config_is_validated() {
        let bad = OutboxConfig::new("").validate().map_err(|e| e.path);
        assert_eq!(bad, Err("dir".into()));
        let zero = OutboxConfig::new("x")
            .with_max_events(0)
            .validate()
            .map_err(|e| e.path);
        assert_eq!(zero, Err("max_events".into()));
        let zero = OutboxConfig::new("x")
            .with_max_bytes(0)
            .validate()
            .map_err(|e| e.path);
        assert_eq!(zero, Err("max_bytes".into()));
    }
}
