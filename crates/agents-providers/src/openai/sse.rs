//! A server-sent-events reader with a bounded buffer.
//!
//! Written here rather than taken from a crate because the property that matters is the bound:
//! a server that sends an endless line (or an endless event) must not make us buffer it, and the
//! SSE crates we looked at buffer without limit. The format itself is small: events end at a
//! blank line; `data:` lines are joined with newlines; other fields and comments are ignored.

/// Splits a byte stream into SSE `data` payloads.
#[derive(Debug)]
pub(super) struct SseReader {
    buffer: Vec<u8>,
    data: String,
    max_event_bytes: usize,
}

/// Why the reader gave up.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SseError {
    /// An event grew past the limit.
    TooLarge,
    /// An event was not UTF-8.
    NotUtf8,
}

impl SseReader {
    pub(super) fn new(max_event_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            data: String::new(),
            max_event_bytes,
        }
    }

    /// Feeds bytes; returns the `data` of every event they complete.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data));
                }
                continue;
            }
            if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            if self.data.len() > self.max_event_bytes {
                return Err(SseError::TooLarge);
            }
        }
        if self.buffer.len() + self.data.len() > self.max_event_bytes {
            return Err(SseError::TooLarge);
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_multiline_data() {
        let mut reader = SseReader::new(1024);
        assert_eq!(reader.feed(b"data: {\"a\"").unwrap(), Vec::<String>::new());
        assert_eq!(
            reader
                .feed(b":1}\n\n: comment\n\nevent: x\ndata: one\r\ndata: two\r\n\r\n")
                .unwrap(),
            ["{\"a\":1}", "one\ntwo"]
        );
        assert_eq!(reader.feed(b"data:[DONE]\n\n").unwrap(), ["[DONE]"]);
    }

    #[test]
    fn an_endless_line_or_event_is_refused() {
        let mut reader = SseReader::new(64);
        assert_eq!(reader.feed(&[b'x'; 100]), Err(SseError::TooLarge));
        let mut reader = SseReader::new(64);
        let many = "data: 0123456789\n".repeat(10);
        assert_eq!(reader.feed(many.as_bytes()), Err(SseError::TooLarge));
        let mut reader = SseReader::new(64);
        assert_eq!(reader.feed(b"data: \xff\n\n"), Err(SseError::NotUtf8));
    }
}
