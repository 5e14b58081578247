//! A server-sent-events reader with a bounded buffer.
//!
//! Written here rather than taken from a crate because the property that matters is the bound:
//! a server that sends an endless line (or an endless event) must not make us buffer it, and the
//! SSE crates we looked at buffer without limit. The format itself is small: lines end at `\n`
//! (optionally `\r\n`); events end at a blank line; `data:` lines are joined with newlines;
//! other fields and comments are ignored.

/// Splits a byte stream into SSE `data` payloads.
#[derive(Debug)]
pub(super) struct SseReader {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    /// The `data` of the event being read.
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
            partial: Vec::new(),
            data: String::new(),
            max_event_bytes,
        }
    }

    /// Feeds bytes; returns the `data` of every event they complete. Linear in the input: each
    /// byte is looked at once, and the unfinished tail is kept once per call.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(line, &mut events)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole, &mut events)?;
            }
        }
        if self.partial.len() + rest.len() + self.data.len() > self.max_event_bytes {
            return Err(SseError::TooLarge);
        }
        self.partial.extend_from_slice(rest);
        Ok(events)
    }

    /// The event left when the stream ended without a final blank line, if any.
    pub(super) fn finish(&mut self) -> Result<Option<String>, SseError> {
        let mut events = Vec::new();
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut events)?;
        }
        self.line(b"", &mut events)?;
        Ok(events.pop())
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<String>) -> Result<(), SseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !self.data.is_empty() {
                events.push(std::mem::take(&mut self.data));
            }
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if let Some(value) = line.strip_prefix("data:") {
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            if self.data.len() > self.max_event_bytes {
                return Err(SseError::TooLarge);
            }
        }
        Ok(())
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
    fn a_last_event_without_a_blank_line_is_kept() {
        let mut reader = SseReader::new(1024);
        assert!(reader.feed(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(reader.finish().unwrap().as_deref(), Some("[DONE]"));
        let mut reader = SseReader::new(1024);
        assert!(reader.feed(b"data: x\n").unwrap().is_empty());
        assert_eq!(reader.finish().unwrap().as_deref(), Some("x"));
        assert_eq!(SseReader::new(8).finish().unwrap(), None);
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

    #[test]
    fn a_large_chunk_of_blank_lines_is_linear() {
        // 4 MiB of newlines in one read: one pass, no quadratic draining.
        let mut reader = SseReader::new(1024);
        assert!(reader.feed(&vec![b'\n'; 4 << 20]).unwrap().is_empty());
    }
}
