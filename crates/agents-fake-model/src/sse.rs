//! The wire forms of answers: `chat.completion` objects and `chat.completion.chunk` events.
//!
//! Bodies are written straight into one buffer with `write!` rather than built as
//! `serde_json::Value` trees: the benchmark binary answers thousands of requests a second and
//! the canned texts are already JSON-escaped once ([`Prepared`](crate::canned::Prepared)).

use std::borrow::Cow;
use std::io::Write as _;

use bytes::Bytes;

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
}

impl Usage {
    fn write(self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}"#,
            self.prompt,
            self.completion,
            self.prompt + self.completion
        );
    }
}

/// What every object of one answer shares: its id, creation time and model.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// `chatcmpl-…`, unique within the server.
    pub(crate) id: u64,
    /// Unix seconds.
    pub(crate) created: u64,
    /// The model as a JSON string literal.
    pub(crate) model: Cow<'static, str>,
}

/// The terminating event of an OpenAI stream.
pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

impl Envelope {
    fn head(&self, out: &mut Vec<u8>, object: &str) {
        let _ = write!(
            out,
            r#"{{"id":"chatcmpl-fake{:08x}","object":"{object}","created":{},"model":{}"#,
            self.id, self.created, self.model
        );
    }

    /// A whole `chat.completion` object; `content` is a JSON string literal.
    pub(crate) fn completion(&self, content: &str, usage: Usage) -> Bytes {
        let mut out = Vec::with_capacity(content.len() + 320);
        self.head(&mut out, "chat.completion");
        out.extend_from_slice(
            br#","choices":[{"index":0,"message":{"role":"assistant","content":"#,
        );
        out.extend_from_slice(content.as_bytes());
        out.extend_from_slice(br#"},"finish_reason":"stop"}],"usage":"#);
        usage.write(&mut out);
        out.push(b'}');
        Bytes::from(out)
    }

    /// Appends one content event; the first of a stream also carries the assistant role.
    pub(crate) fn push_delta(&self, out: &mut Vec<u8>, first: bool, piece: &str) {
        out.extend_from_slice(b"data: ");
        self.head(out, "chat.completion.chunk");
        out.extend_from_slice(br#","choices":[{"index":0,"delta":{"#);
        if first {
            out.extend_from_slice(br#""role":"assistant","#);
        }
        out.extend_from_slice(br#""content":"#);
        // Writing into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, piece);
        out.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
    }

    /// Appends the event that ends the choice, with the usage when given.
    pub(crate) fn push_finish(&self, out: &mut Vec<u8>, usage: Option<Usage>) {
        out.extend_from_slice(b"data: ");
        self.head(out, "chat.completion.chunk");
        out.extend_from_slice(br#","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]"#);
        if let Some(usage) = usage {
            out.extend_from_slice(br#","usage":"#);
            usage.write(out);
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// Appends the usage-only event OpenAI sends last when `stream_options.include_usage` is set.
    pub(crate) fn push_usage(&self, out: &mut Vec<u8>, usage: Usage) {
        out.extend_from_slice(b"data: ");
        self.head(out, "chat.completion.chunk");
        out.extend_from_slice(br#","choices":[],"usage":"#);
        usage.write(out);
        out.extend_from_slice(b"}\n\n");
    }

    /// A whole stream, in one buffer: a role event, the text in a few pieces, the finish event,
    /// the usage event when asked for, and `[DONE]`.
    pub(crate) fn stream(&self, text: &str, usage: Usage, include_usage: bool) -> Bytes {
        let mut out = Vec::with_capacity(text.len() * 2 + 1500);
        let mut first = true;
        for piece in split(text, 4) {
            self.push_delta(&mut out, first, piece);
            first = false;
        }
        if first {
            self.push_delta(&mut out, true, "");
        }
        self.push_finish(&mut out, None);
        if include_usage {
            self.push_usage(&mut out, usage);
        }
        out.extend_from_slice(DONE);
        Bytes::from(out)
    }
}

/// `text` cut into at most `parts` non-empty pieces of about equal length, on char boundaries.
pub(crate) fn split(text: &str, parts: usize) -> impl Iterator<Item = &str> {
    let size = text.len().div_ceil(parts.max(1)).max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: 7,
            created: 1_700_000_000,
            model: Cow::Borrowed(r#""m""#),
        }
    }

    #[test]
    fn split_keeps_every_byte_and_char_boundaries() {
        for text in ["", "a", "abcdefghij", "héllo wörld ✓✓✓", "{\"ok\":true}"] {
            let pieces: Vec<&str> = split(text, 4).collect();
            assert_eq!(pieces.concat(), text);
            assert!(pieces.len() <= 4);
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
    }

    #[test]
    fn a_completion_is_an_openai_object() {
        let body = envelope().completion(
            r#""hi \"there\"""#,
            Usage {
                prompt: 3,
                completion: 1,
            },
        );
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["id"], "chatcmpl-fake00000007");
        assert_eq!(json["object"], "chat.completion");
        assert_eq!(json["model"], "m");
        assert_eq!(json["choices"][0]["message"]["content"], "hi \"there\"");
        assert_eq!(json["choices"][0]["finish_reason"], "stop");
        assert_eq!(json["usage"]["total_tokens"], 4);
    }

    #[test]
    fn a_stream_is_role_pieces_finish_usage_done() {
        let usage = Usage {
            prompt: 2,
            completion: 5,
        };
        let body = envelope().stream("héllo, wörld", usage, true);
        let text = std::str::from_utf8(&body).unwrap();
        let events: Vec<&str> = text
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").unwrap())
            .collect();
        assert_eq!(events.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "héllo, wörld");
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
        let last = &chunks[chunks.len() - 1];
        assert_eq!(last["choices"], serde_json::json!([]));
        assert_eq!(last["usage"]["total_tokens"], 7);

        let without = envelope().stream("x", usage, false);
        assert!(!std::str::from_utf8(&without).unwrap().contains("usage"));
    }
}
