//! File names, finding the file to continue, and repairing a torn last line.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::NaiveDate;

/// Where a file sits in the rotation: its UTC date and its index within the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub(crate) date: NaiveDate,
    pub(crate) index: u32,
}

impl Slot {
    /// `<prefix>-<date>.jsonl` for the first file of a day, `<prefix>-<date>.<n>.jsonl` after.
    pub(crate) fn file_name(self, prefix: &str) -> String {
        match self.index {
            0 => format!("{prefix}-{}.jsonl", self.date),
            n => format!("{prefix}-{}.{n}.jsonl", self.date),
        }
    }

    pub(crate) fn parse(prefix: &str, name: &str) -> Option<Self> {
        let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
        let rest = rest.strip_suffix(".jsonl")?;
        let (date, index) = match rest.split_once('.') {
            Some((date, index)) => (date, index.parse().ok().filter(|&n| n > 0)?),
            None => (rest, 0),
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        // Round-trip so that `2026-5-1` or `.01` are not taken for ours.
        let slot = Self { date, index };
        (slot.file_name(prefix) == name).then_some(slot)
    }

    /// The slot after this one for a write on `today`.
    pub(crate) fn next(self, today: NaiveDate) -> Self {
        if today > self.date {
            Self {
                date: today,
                index: 0,
            }
        } else {
            Self {
                date: self.date,
                index: self.index + 1,
            }
        }
    }
}

/// The newest audit file of `prefix` in `dir`.
pub(crate) fn latest(dir: &Path, prefix: &str) -> io::Result<Option<Slot>> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(slot) = Slot::parse(prefix, &name) {
            newest = newest.max(Some(slot));
        }
    }
    Ok(newest)
}

/// An existing file after [`repair`]: its length and its last complete line (without the
/// newline), if it has one.
#[derive(Debug)]
pub(crate) struct Tail {
    pub(crate) len: u64,
    pub(crate) removed: u64,
    pub(crate) last_line: Option<Vec<u8>>,
}

const CHUNK: u64 = 64 * 1024;

/// Position of the last `\n` before `end`.
fn last_newline_before(file: &mut File, end: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK as usize];
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(lo + at as u64));
        }
        hi = lo;
    }
    Ok(None)
}

/// Cuts a torn last line (bytes after the last newline: the event being written when the
/// process died) and returns what is left. Complete lines are never touched.
pub(crate) fn repair(file: &mut File) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    let complete = last_newline_before(file, len)?.map_or(0, |at| at + 1);
    let removed = len - complete;
    if removed > 0 {
        file.set_len(complete)?;
        file.sync_data()?;
    }
    let last_line = if complete == 0 {
        None
    } else {
        let start = last_newline_before(file, complete - 1)?.map_or(0, |at| at + 1);
        let mut line = vec![0u8; (complete - 1 - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut line)?;
        Some(line)
    };
    Ok(Tail {
        len: complete,
        removed,
        last_line,
    })
}

/// Makes a new directory entry durable (Unix); elsewhere a no-op.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let day = date("2026-05-01");
        let first = Slot {
            date: day,
            index: 0,
        };
        assert_eq!(first.file_name("audit"), "audit-2026-05-01.jsonl");
        let third = Slot {
            date: day,
            index: 2,
        };
        assert_eq!(third.file_name("audit"), "audit-2026-05-01.2.jsonl");
        for slot in [first, third] {
            assert_eq!(Slot::parse("audit", &slot.file_name("audit")), Some(slot));
        }
        for stranger in [
            "audit-2026-05-01.0.jsonl",
            "audit-2026-5-1.jsonl",
            "audit-2026-05-01.x.jsonl",
            "other-2026-05-01.jsonl",
            "audit-2026-05-01.json",
            ".lock",
        ] {
            assert_eq!(Slot::parse("audit", stranger), None, "{stranger}");
        }
        assert_eq!(
            first.next(day),
            Slot {
                date: day,
                index: 1
            }
        );
        let tomorrow = date("2026-05-02");
        assert_eq!(
            third.next(tomorrow),
            Slot {
                date: tomorrow,
                index: 0
            }
        );
    }

    #[test]
    fn latest_picks_the_newest_slot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest(dir.path(), "audit").unwrap(), None);
        for name in [
            "audit-2026-05-01.3.jsonl",
            "audit-2026-05-02.jsonl",
            "audit-x.jsonl",
            ".lock",
        ] {
            File::create(dir.path().join(name)).unwrap();
        }
        let newest = latest(dir.path(), "audit").unwrap().unwrap();
        assert_eq!(newest.file_name("audit"), "audit-2026-05-02.jsonl");
    }

    #[test]
    fn repair_cuts_only_the_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let long = "y".repeat(200_000);
        let cases: [(&str, u64, Option<&str>); 5] = [
            ("", 0, None),
            ("torn", 4, None),
            ("a\nb\n", 0, Some("b")),
            ("a\nbb\ncc", 2, Some("bb")),
            ("only\n", 0, Some("only")),
        ];
        for (content, removed, last) in cases {
            std::fs::write(&path, content).unwrap();
            let mut file = File::options().read(true).append(true).open(&path).unwrap();
            let tail = repair(&mut file).unwrap();
            assert_eq!(tail.removed, removed, "{content:?}");
            assert_eq!(
                tail.last_line.as_deref(),
                last.map(str::as_bytes),
                "{content:?}"
            );
            assert_eq!(tail.len, content.len() as u64 - removed);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), tail.len);
        }
        // A last line longer than one read chunk, and a torn tail longer than one too.
        let mut file = File::create(&path).unwrap();
        write!(file, "first\n{long}\n{long}").unwrap();
        let mut file = File::options().read(true).append(true).open(&path).unwrap();
        let tail = repair(&mut file).unwrap();
        assert_eq!(tail.removed, long.len() as u64);
        assert_eq!(tail.last_line.unwrap().len(), long.len());
        sync_dir(dir.path()).unwrap();
    }
}
