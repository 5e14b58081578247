//! Taking the JSON object out of a model reply, or saying exactly why there is none.
//!
//! Models rarely answer with bare JSON. They wrap it in Markdown code fences, put prose before
//! and after it, prefix reasoning blocks (`<think>…</think>`) or chat-template tokens, and stop
//! mid-object when they hit their token limit. The original implementation coped by stripping
//! characters it did not like, which corrupted legitimate content such as `Vec<T>` or
//! `a < b && c > d` inside strings, and by replacing output it still could not parse with made-up
//! defaults, so a broken reply silently became a plausible-looking, invented result.
//!
//! [`extract_json_object`] never rewrites the reply. It finds candidates with a real JSON parser,
//! accepts only strict JSON (RFC 8259: no trailing commas, comments, single quotes, `NaN` or
//! unquoted keys), and otherwise returns a typed [`ExtractError`] that says what was wrong and
//! where, so the caller can re-ask the model or fail loudly instead of acting on invented data.
//! Error messages never quote the reply, which may hold secrets or the user's code.
//!
//! # Algorithm
//!
//! 1. Replies over [`MAX_REPLY_BYTES`] are refused; a leading UTF-8 BOM is ignored.
//! 2. **Reasoning is skipped.** A reply that opens (after whitespace) with `<think>` is read
//!    only after the first `</think>` that follows, and so on for consecutive blocks. What a
//!    reasoning model writes there is not its answer, and may quote the user's code, which can
//!    hold a planted, schema-valid object; a draft left unclosed there no longer hides the
//!    answer either. A reply whose reasoning block never closes is
//!    [`ExtractError::UnfinishedReasoning`]: the model stopped while reasoning, before answering.
//!    A `</think>` quoted inside the reasoning still ends it early; tags anywhere but the start
//!    are left alone, since they may be content (code that handles such tags, say).
//! 3. **Fenced blocks first.** A fence opens on a line holding three or more backticks or tildes
//!    (indentation allowed) and an info string whose first word is `json` in any case, or none;
//!    it closes on a line of at least as many of the same character, or at the end of the reply.
//!    Each such block whose content starts with `{` is parsed as exactly one JSON value, in order;
//!    the first object wins. Fences are recognised per line, and a valid JSON string cannot hold a
//!    raw line break, so backticks inside JSON strings never end a block early. Fenced blocks win
//!    over prose because the prose before them often shows an example object. A reply that is
//!    one whole object needs no rule of its own: no fence can open inside it, because a line of
//!    valid JSON never starts with a backtick or tilde outside a string and a string cannot hold
//!    a raw line break, and the scan's first `{` is its start. So a fence quoted in one of its
//!    strings never beats it.
//! 4. **Then a scan.** For each `{` in the reply, in order, serde_json parses one value starting
//!    there and stops after it, so nesting, braces inside strings and prose after the object are
//!    handled by the parser itself. The first `{` that starts a valid object wins, except that a
//!    `{` inside a candidate that failed is never tried (see below).
//!
//! A top-level array or scalar is never returned, but the scan does find an object *inside* an
//! array, because its `{` is a candidate: `[{"a": 1}]` yields `{"a": 1}`.
//!
//! # A broken object hides everything inside it
//!
//! When a scan candidate fails with a syntax error, the scan resumes after the candidate's whole
//! extent: its matching `}`, found by counting braces outside JSON strings, or the end of the
//! reply when it has none. So an object nested in a malformed one is never returned as if it were
//! the answer: `{"x": [1, 2,], "inner": {"ok": true}}` (a trailing comma) and
//! `{"a": 1 "b": {"c": 2}}` (a missing comma) are both [`ExtractError::Invalid`], not
//! `{"ok": true}` or `{"c": 2}`. The price is that a stray `{` in prose with no matching `}`, such
//! as an abandoned draft in a reasoning block, hides every object after it too; that reply is
//! reported as [`ExtractError::Invalid`] rather than guessed at, since no brace count can tell an
//! object after the stray `{` from one inside it. A stray `{` that is closed (`use {braces}`)
//! hides nothing but itself, and one in a leading reasoning block is never seen (step 2).
//!
//! # Work bound
//!
//! The extents of failed candidates are disjoint stretches of the reply, each read once by the
//! parser and once by the brace count; an end-of-input failure reads to the end and so ends the
//! scan. Fenced blocks are disjoint too, so each byte is read a small constant number of times:
//! the work is linear in the reply length, and serde_json's nesting limit (128) bounds the stack.
//! Skipping reasoning blocks reads each byte up to the answer once more.
//! On top of that, at most [`MAX_CANDIDATES`] scan start positions are parsed, whatever the number
//! of stray braces.

use serde_json::{Map, Value};
use std::ops::Range;

/// Largest reply, in bytes, that [`extract_json_object`] examines; longer ones are refused with
/// [`ExtractError::TooLarge`] before any parsing, so a runaway model cannot cost unbounded work.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// Most `{` start positions the scan parses before giving up (see the module docs for the bound).
///
/// A reply with more stray braces than this before its object (for example unfenced source code)
/// yields [`ExtractError::Invalid`] for the best failed candidate; fenced JSON is unaffected.
pub const MAX_CANDIDATES: usize = 64;

/// JSON's own whitespace (RFC 8259); anything else around a fenced object is an error.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Opens a reasoning block, as DeepSeek-R1, QwQ, Qwen3 and other reasoning models write them.
const THINK_OPEN: &str = "<think>";
/// Closes a reasoning block.
const THINK_CLOSE: &str = "</think>";

/// Why no JSON object could be taken from a model reply.
///
/// Messages say what was wrong and where; they never contain the reply's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The reply was empty or held only whitespace, after an optional leading BOM.
    #[error("model reply is empty; ask the model again for a JSON object")]
    Empty,
    /// The reply contains no `{` (after any leading reasoning block), so nothing in it can start
    /// a JSON object.
    #[error("model reply ({reply_len} bytes) contains no JSON object; ask the model again for one")]
    NoJsonObject {
        /// Length of the reply in bytes.
        reply_len: usize,
    },
    /// Candidates were found but none is a valid JSON object; this describes the one the parser
    /// got furthest into, which is the most useful to show.
    #[error("model reply holds malformed JSON at line {line}, column {column}: {reason}")]
    Invalid {
        /// 1-based line of the reply (after any BOM) where the parser stopped.
        line: usize,
        /// 1-based column, in characters rather than bytes, where the parser stopped.
        column: usize,
        /// What the parser found wrong there: a category such as "trailing comma", never reply
        /// text.
        reason: String,
    },
    /// The reply opens with a reasoning block (`<think>`) that never closes: the model stopped
    /// while reasoning, so there is no answer, only objects it quoted or drafted.
    #[error(
        "model reply ({reply_len} bytes) ends inside its reasoning block, before any answer; ask the model again, with more tokens if it ran out"
    )]
    UnfinishedReasoning {
        /// Length of the reply in bytes.
        reply_len: usize,
    },
    /// The reply is longer than the limit and was not examined.
    #[error("model reply is {len} bytes, over the {max}-byte limit; it was not parsed")]
    TooLarge {
        /// Length of the reply in bytes.
        len: usize,
        /// The limit, [`MAX_REPLY_BYTES`].
        max: usize,
    },
}

/// Extracts the first JSON object a model reply contains.
///
/// Leading reasoning blocks are skipped, then fenced `json` (or unlabelled) blocks are tried,
/// then every `{` in the rest of the reply; see the module docs for the rules and the work bound. Only strict JSON is accepted and the returned
/// strings are exactly those in the reply.
///
/// # Errors
///
/// [`ExtractError::TooLarge`] over [`MAX_REPLY_BYTES`], [`ExtractError::Empty`] for a blank reply,
/// [`ExtractError::UnfinishedReasoning`] when a leading reasoning block never closes,
/// [`ExtractError::NoJsonObject`] when the answer has no `{`, and [`ExtractError::Invalid`] when
/// every candidate failed to parse.
pub fn extract_json_object(reply: &str) -> Result<Map<String, Value>, ExtractError> {
    if reply.len() > MAX_REPLY_BYTES {
        return Err(ExtractError::TooLarge {
            len: reply.len(),
            max: MAX_REPLY_BYTES,
        });
    }
    // Positions are reported after the BOM because editors do not show it as a character.
    let text = reply.strip_prefix('\u{feff}').unwrap_or(reply);
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    let Some(offset) = answer_start(text) else {
        return Err(ExtractError::UnfinishedReasoning {
            reply_len: reply.len(),
        });
    };
    let answer = text.get(offset..).unwrap_or_default();
    let mut best: Option<Failure> = None;
    if let Some(map) = find_object(answer, &mut best) {
        return Ok(map);
    }
    Err(match best {
        // Positions are counted in the whole reply, reasoning included, as a reader sees it.
        Some(failure) => failure.shifted(offset).into_error(text),
        None => ExtractError::NoJsonObject {
            reply_len: reply.len(),
        },
    })
}

/// Where the answer starts in `text`: after the reasoning blocks it opens with, or `None` when
/// the last of them never closes. Tags after the start are content, not reasoning.
fn answer_start(text: &str) -> Option<usize> {
    let mut start = 0;
    loop {
        let rest = text.get(start..)?;
        let Some(reasoning) = rest
            .trim_start_matches(JSON_WHITESPACE)
            .strip_prefix(THINK_OPEN)
        else {
            return Some(start);
        };
        let close = reasoning.find(THINK_CLOSE)?;
        start = text.len() - reasoning.len() + close + THINK_CLOSE.len();
    }
}

/// Steps 3 and 4 over the answer: the first object in a fenced block, else the scan's.
fn find_object(text: &str, best: &mut Option<Failure>) -> Option<Map<String, Value>> {
    for block in fenced_json_blocks(text) {
        let Some(content) = text.get(block.clone()) else {
            continue;
        };
        let body = content.trim_start_matches(JSON_WHITESPACE);
        let start = block.start + (content.len() - body.len());
        let body = body.trim_end_matches(JSON_WHITESPACE);
        // Arrays, scalars and prose are not candidates here; the scan still sees their `{`s.
        if !body.starts_with('{') {
            continue;
        }
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(map)) => return Some(map),
            Ok(_) => {}
            Err(error) => record(best, start, progress_of(body, &error), error),
        }
    }
    scan(text, best)
}

/// A candidate that failed to parse.
struct Failure {
    /// Byte offset in the text where the candidate starts.
    start: usize,
    /// Bytes of the candidate the parser consumed, the offending byte included (at least 1).
    progress: usize,
    error: serde_json::Error,
}

impl Failure {
    /// The same failure, `offset` bytes further into the reply.
    fn shifted(self, offset: usize) -> Self {
        Self {
            start: self.start + offset,
            ..self
        }
    }

    fn into_error(self, text: &str) -> ExtractError {
        let (line, column) = line_column(text, self.start + self.progress - 1);
        ExtractError::Invalid {
            line,
            column,
            reason: reason(&self.error),
        }
    }
}

/// Keeps the failure that got furthest; on a tie the earlier one, which a reader meets first.
fn record(best: &mut Option<Failure>, start: usize, progress: usize, error: serde_json::Error) {
    if best.as_ref().is_none_or(|b| progress > b.progress) {
        *best = Some(Failure {
            start,
            progress,
            error,
        });
    }
}

/// Step 4: tries each `{` in order, resuming after the stopping point of each failed candidate.
fn scan(text: &str, best: &mut Option<Failure>) -> Option<Map<String, Value>> {
    let bytes = text.as_bytes();
    let mut from = 0;
    for _ in 0..MAX_CANDIDATES {
        let start = from + bytes.get(from..)?.iter().position(|&b| b == b'{')?;
        // `start` is at an ASCII `{`, hence on a character boundary.
        let candidate = text.get(start..)?;
        match serde_json::Deserializer::from_str(candidate)
            .into_iter::<Value>()
            .next()
        {
            Some(Ok(Value::Object(map))) => return Some(map),
            Some(Err(error)) => {
                let progress = progress_of(candidate, &error);
                // A syntax error leaves the rest of the candidate unread, and an object nested in
                // it is part of a broken answer, never the answer: skip the whole candidate. The
                // parser's stopping point is kept as a floor so the scan always moves forward.
                let extent = if error.is_eof() {
                    progress
                } else {
                    object_extent(candidate.as_bytes())
                };
                from = start + extent.max(progress);
                record(best, start, progress, error);
            }
            // A value starting with `{` is an object or an error; move on rather than loop.
            Some(Ok(_)) | None => from = start + 1,
        }
    }
    None
}

/// Length of the object that starts at `bytes[0]` (a `{`), up to and including its matching `}`,
/// or all of `bytes` when it has none (a truncated object runs to the end of the reply).
///
/// Braces are counted outside strings only; a string runs from `"` to the next `"` not escaped by
/// a backslash, as in JSON. Brackets are not counted: a mismatched `[` or `]` does not change
/// where the object's braces say it ends.
fn object_extent(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    bytes.len()
}

/// Turns serde_json's line/column (relative to `candidate`) into the number of bytes consumed.
///
/// serde_json counts columns in bytes, and its column is the 1-based position of the offending
/// byte (or the length of the last line at end of input), so the result includes that byte.
fn progress_of(candidate: &str, error: &serde_json::Error) -> usize {
    let line_start = match error.line() {
        0 | 1 => 0,
        line => candidate
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .nth(line - 2)
            .map_or(candidate.len(), |(i, _)| i + 1),
    };
    line_start
        .saturating_add(error.column())
        .clamp(1, candidate.len().max(1))
}

/// 1-based line and character column of the byte at `at`.
///
/// Works on bytes because serde_json may stop on the first byte of a multi-byte character, where
/// slicing the `str` would not be allowed.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.as_bytes().get(..at).unwrap_or(text.as_bytes());
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let chars_before = before
        .get(line_start..)
        .map_or(0, |l| l.iter().filter(|&&b| b & 0xC0 != 0x80).count());
    (line, chars_before + 1)
}

/// The parser's message without its position, which we report reply-relative instead.
fn reason(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        // Syntax and end-of-input messages are fixed descriptions that never echo the input.
        Category::Syntax | Category::Eof => {
            let message = error.to_string();
            message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(head, _)| head)
                .to_owned()
        }
        Category::Data | Category::Io => "not a valid JSON value".to_owned(),
    }
}

/// A fence that has been opened and not yet closed.
struct OpenFence {
    marker: u8,
    len: usize,
    json: bool,
    content_start: usize,
}

/// Step 3: content ranges of the fenced blocks labelled `json` or unlabelled, in order.
///
/// Fences of every language are tracked, so the closing line of a `python` block is not mistaken
/// for the opening of a new one.
fn fenced_json_blocks(text: &str) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    let mut open: Option<OpenFence> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        let bare = line.trim_matches([' ', '\t', '\r', '\n']);
        match &open {
            None => {
                open = fence_opener(bare).map(|(marker, len, json)| OpenFence {
                    marker,
                    len,
                    json,
                    content_start: line_end,
                });
            }
            Some(fence) => {
                if bare.len() >= fence.len && bare.bytes().all(|b| b == fence.marker) {
                    if fence.json {
                        blocks.push(fence.content_start..line_start);
                    }
                    open = None;
                }
            }
        }
        line_start = line_end;
    }
    // As in CommonMark an unclosed fence runs to the end: that is how a cut-off reply ends.
    if let Some(fence) = open
        && fence.json
    {
        blocks.push(fence.content_start..text.len());
    }
    blocks
}

/// Recognises an opening fence line: its marker, its length and whether it is JSON or unlabelled.
fn fence_opener(bare: &str) -> Option<(u8, usize, bool)> {
    let marker = *bare.as_bytes().first()?;
    if marker != b'`' && marker != b'~' {
        return None;
    }
    let len = bare.bytes().take_while(|&b| b == marker).count();
    let info = bare.get(len..)?.trim();
    // CommonMark forbids backticks in a backtick fence's info string; that rule is what keeps a
    // one-line ```json {"a": 1}``` from being read as an opener.
    if len < 3 || (marker == b'`' && info.contains('`')) {
        return None;
    }
    let json = info
        .split_whitespace()
        .next()
        .is_none_or(|lang| lang.eq_ignore_ascii_case("json"));
    Some((marker, len, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// One named test per reply: `name: reply => expected result;`.
    macro_rules! replies {
        ($($name:ident: $reply:expr => $expected:expr;)+) => {$(
            #[test]
            fn $name() {
                let reply: &str = &$reply;
                let expected: Result<Value, ExtractError> = $expected;
                assert_eq!(extract_json_object(reply).map(Value::Object), expected, "{reply:?}");
            }
        )+};
    }

    fn bad(line: usize, column: usize, reason: &str) -> Result<Value, ExtractError> {
        Err(ExtractError::Invalid {
            line,
            column,
            reason: reason.to_owned(),
        })
    }

    const CODE: &str =
        "fn first<T: Clone>(v: Vec<Option<T>>) -> Option<T> { v.into_iter().next()? }";
    const HTML: &str = "<div class=\"x\">a < b && c > d</div>";

    /// An answer quoting, in a string, a docstring that holds a fenced, schema-valid object.
    fn planted() -> Value {
        json!({"summary": "Its docstring says:\n```json\n{\"v\": \"planted\"}\n```\n", "v": "real"})
    }

    fn backticks() -> Value {
        json!({"code": "Use:\n```rust\nfn main() {}\n```\n", "fence": "```", "tilde": "~~~"})
    }

    replies! {
        plain_object: r#"{"verdict": "approve", "score": 9}"#
            => Ok(json!({"verdict": "approve", "score": 9}));
        fenced_json: "```json\n{\"a\": 1}\n```" => Ok(json!({"a": 1}));
        fenced_without_language: "```\n  {\"a\": 1}  \n```\n" => Ok(json!({"a": 1}));
        fence_variants_beat_prose_example: "e.g. {\"v\": 0}\n```JSON\n{\"v\": 1,}\n```\n\
            ~~~\n{\"v\": 2,}\n~~~~\n````json\n{\"v\": 3}\n````" => Ok(json!({"v": 3}));
        indented_fence_with_info_words: "Like {\"v\": 0}:\n   ```json title=\"r\"\n   \
            {\"v\": 1}\n   ```" => Ok(json!({"v": 1}));
        prose_before_and_after: "Here is the analysis:\n```json\n{\"bugs\": 2}\n```\n\
            Let me know {if} you want fixes." => Ok(json!({"bugs": 2}));
        prose_around_bare_object: "Sure! {\"a\": 1} Hope that helps." => Ok(json!({"a": 1}));
        fence_beats_example_in_prose: "The format is {\"v\": \"...\"}.\n~~~\n\
            {\"v\": \"reject\"}\n~~~" => Ok(json!({"v": "reject"}));
        first_fence_invalid_second_valid: "Try:\n```json\n{\"a\": 1, \"b\": {\"c\": 2},}\n```\n\
            Fixed:\n```json\n{\"a\": 1}\n```" => Ok(json!({"a": 1}));
        other_language_fence_not_taken: "```python\nd = {\"x\": 1}\n```\n```json\n{\"y\": 2}\n```"
            => Ok(json!({"y": 2}));
        stray_brace_in_sentence: "Use {braces} carefully. Result: {\"ok\": true}"
            => Ok(json!({"ok": true}));
        stray_brace_on_earlier_line: "Use {braces} carefully.\n\n{\n  \"ok\": true\n}\n"
            => Ok(json!({"ok": true}));
        braces_and_escaped_quotes_in_strings: r#"{"code": "fn m() { f(\"{}\", x); }", "q": "}{"}"#
            => Ok(json!({"code": "fn m() { f(\"{}\", x); }", "q": "}{"}));
        generics_and_markup_byte_for_byte:
            format!("```json\n{}\n```", json!({"code": CODE, "html": HTML}))
            => Ok(json!({"code": CODE, "html": HTML}));
        nested_objects_and_arrays: "```json\n{\n  \"issues\": [\n    {\"line\": 3, \"tags\": \
            [\"a\", {\"deep\": null}]}\n  ],\n  \"meta\": {\"n\": -1.5}\n}\n```"
            => Ok(json!({"issues": [{"line": 3, "tags": ["a", {"deep": null}]}],
                "meta": {"n": -1.5}}));
        unicode_and_emoji: "Voilà 🎉 {\"résumé\": \"naïve 日本語 🦀\", \"e\": \"\\u00e9\"}"
            => Ok(json!({"résumé": "naïve 日本語 🦀", "e": "é"}));
        backticks_in_fenced_strings: format!("Here:\n```json\n{}\n```\nDone.", backticks())
            => Ok(backticks());
        backticks_in_pretty_unlabelled_fence: format!("```\n{:#}\n```", backticks())
            => Ok(backticks());
        one_line_fence_falls_back_to_scan: format!("```json {} ```", backticks())
            => Ok(backticks());
        closing_fence_glued_to_object: format!("```json\n{}```", backticks()) => Ok(backticks());
        think_block_before_object: "<think>\nThey want {x, y}. Maybe {\"draft\": tru}\nNo.\n\
            </think>\n{\"verdict\": \"approve\"}" => Ok(json!({"verdict": "approve"}));
        unclosed_draft_in_think_block_is_skipped: "<think>\nMaybe {\"draft\": tru\n\
            </think>\n{\"verdict\": \"approve\"}" => Ok(json!({"verdict": "approve"}));
        planted_fence_in_think_block_loses_to_bare_answer:
            "<think>\n```json\n{\"v\":\"planted\"}\n```\n</think>\n{\"v\":\"real\"}"
            => Ok(json!({"v": "real"}));
        bare_object_in_think_block_loses_to_fenced_answer: "  <think>The file says {\"v\": 0}\
            </think>\nHere:\n```json\n{\"v\": 1}\n```" => Ok(json!({"v": 1}));
        consecutive_think_blocks_are_skipped: "<think>{\"v\": 0}</think>\n<think>\n\
            ```json\n{\"v\": 1}\n```\n</think>{\"v\": 2}" => Ok(json!({"v": 2}));
        think_tags_in_the_answer_are_content: "<think>x</think>\n\
            {\"s\": \"strips <think> and </think> tags\"}"
            => Ok(json!({"s": "strips <think> and </think> tags"}));
        think_tag_after_prose_is_not_reasoning: "Result: <think> {\"v\": 1}"
            => Ok(json!({"v": 1}));
        whole_object_with_a_fence_in_a_string_is_returned_whole: format!("{:#}", planted())
            => Ok(planted());
        llama_chat_tokens: "<|start_header_id|>assistant<|end_header_id|>\n\n{\"v\": 1}<|eot_id|>"
            => Ok(json!({"v": 1}));
        bom_and_whitespace: "\u{feff}  \n\t{\"a\": 1}\n  " => Ok(json!({"a": 1}));
        bom_before_fence: "\u{feff}```json\n{\"a\": 1}\n```" => Ok(json!({"a": 1}));
        object_inside_top_level_array: "[{\"a\": 1}, {\"b\": 2}]" => Ok(json!({"a": 1}));
        fenced_array_is_skipped: "```json\n[1, 2]\n```\nand {\"c\": 3}" => Ok(json!({"c": 3}));

        trailing_comma_only: "```json\n{\n  \"a\": 1,\n  \"b\": {\"c\": [1]},\n}\n```"
            => bad(5, 1, "trailing comma");
        single_quoted_pseudo_json: "{'verdict': 'ok'}" => bad(1, 2, "key must be a string");
        unquoted_keys: "Result: {verdict: \"ok\"}" => bad(1, 10, "key must be a string");
        line_comment: "{\"a\": 1 // why\n}" => bad(1, 9, "expected `,` or `}`");
        nan_value: "{\"a\": NaN}" => bad(1, 7, "expected value");
        trailing_comma_in_array: "{\"a\": [1, 2,]}" => bad(1, 13, "trailing comma");
        truncated_at_max_tokens: "```json\n{\"issues\": [{\"line\": 3}, {\"line\": 7, \
            \"msg\": \"sha"
            => bad(2, 48, "EOF while parsing a string");
        column_counts_characters_after_bom: "\u{feff}→ {\"é\": 1,}" => bad(1, 11, "trailing comma");
        offending_multibyte_character: "{\"é\": é}" => bad(1, 7, "expected value");
        prose_with_stray_brace_only: "Use {braces} carefully." => bad(1, 6, "key must be a string");
        missing_comma_gives_no_inner_object: "{\"issues\": [{\"a\": 1} {\"b\": 2}]}"
            => bad(1, 22, "expected `,` or `]`");
        brace_right_before_object: "{ {\"a\": 1}" => bad(1, 3, "key must be a string");
        trailing_comma_gives_no_inner_object: r#"{"x":[1,2,],"inner":{"ok":true}}"#
            => bad(1, 11, "trailing comma");
        missing_comma_gives_no_nested_object: r#"{"a":1 "b":{"c":2}}"#
            => bad(1, 8, "expected `,` or `}`");
        fenced_broken_outer_gives_no_inner_object:
            "```json\n{\"x\": [1,], \"inner\": {\"ok\": true}}\n```"
            => bad(2, 10, "trailing comma");
        unclosed_broken_outer_gives_no_inner_object: r#"{"a":1 "b":{"c":2}"#
            => bad(1, 8, "expected `,` or `}`");
        strings_do_not_end_a_broken_object_early:
            r#"{"s": "}\"{", "x": [1,], "in": {"ok": 1}} then {"b": 2}"#
            => Ok(json!({"b": 2}));
        unclosed_draft_in_prose_hides_later_object: "Maybe {\"draft\": tru\n\
            {\"verdict\": \"approve\"}" => bad(1, 20, "expected ident");
        positions_after_a_think_block_count_the_whole_reply: "<think>\n{\"x\": 1}\n</think>\n\
            {\"a\": 1,}" => bad(4, 9, "trailing comma");

        empty_reply: "" => Err(ExtractError::Empty);
        whitespace_and_bom_only: "\u{feff} \n\t\r\n" => Err(ExtractError::Empty);
        prose_only: "I'm sorry, I can't review this file."
            => Err(ExtractError::NoJsonObject { reply_len: 36 });
        scalar_only: "42" => Err(ExtractError::NoJsonObject { reply_len: 2 });
        think_block_only: "<think>{\"v\": 1}</think>\n"
            => Err(ExtractError::NoJsonObject { reply_len: 24 });
        unclosed_think_block_has_no_answer: "\u{feff}\n<think>\nAnswer: {\"v\": 1}"
            => Err(ExtractError::UnfinishedReasoning { reply_len: 28 });
        array_only: "```json\n[1, \"x\"]\n```" => Err(ExtractError::NoJsonObject { reply_len: 20 });
        size_limit_is_inclusive: format!("{{\"a\": 1}}{}", " ".repeat(MAX_REPLY_BYTES - 8))
            => Ok(json!({"a": 1}));
        over_size_limit: " ".repeat(MAX_REPLY_BYTES + 1)
            => Err(ExtractError::TooLarge { len: MAX_REPLY_BYTES + 1, max: MAX_REPLY_BYTES });
        candidates_up_to_limit: format!("{}{{\"a\": 1}}", "{x} ".repeat(MAX_CANDIDATES - 1))
            => Ok(json!({"a": 1}));
        candidates_past_limit: format!("{}{{\"a\": 1}}", "{x} ".repeat(MAX_CANDIDATES))
            => bad(1, 2, "key must be a string");
    }
    #[test]
    fn hostile_inputs_finish() {
        let n = MAX_REPLY_BYTES;
        for reply in [
            "{".repeat(n),
            "{\"a\":".repeat(n / 5),
            format!("{{\"a\": \"{}", "x".repeat(n - 8)),
            format!("{}{{", "[".repeat(n - 1)),
            "```\n".repeat(n / 4),
            "{\"a\":[".repeat(n / 6),
            "<think>".repeat(n / 7),
            "<think></think>".repeat(n / 15),
            format!("<think>{}", "</think".repeat(n / 8 - 1)),
        ] {
            assert!(extract_json_object(&reply).is_err(), "{}", reply.len());
        }
    }

    #[test]
    fn messages_never_contain_the_reply() {
        for reply in [
            "{\"t\": \"sk-SECRET\",}",
            "sk-SECRET",
            "{'sk-SECRET': 1}",
            "{\"k\": sk-SECRET}",
            "<think>sk-SECRET {\"a\": 1}",
            "<think>{}</think>{\"sk-SECRET\": 1,}",
        ] {
            let message = extract_json_object(reply).err().map(|e| e.to_string());
            assert!(message.is_some_and(|m| !m.contains("SECRET")), "{reply}");
        }
    }

    /// Arbitrary Unicode, or fragments that matter to fences, strings and the scan.
    fn tricky_text() -> impl Strategy<Value = String> {
        let pieces = "{ } \" ``` ~~~ <|x|> < > \\ \n [ ] , : ' <think> é 🦀 \u{feff} \u{0} \r\n";
        let piece =
            prop::sample::select(pieces.split(' ').collect::<Vec<_>>()).prop_map(str::to_owned);
        let text =
            prop::collection::vec(prop_oneof![piece, "\\PC{0,6}"], 0..12).prop_map(|p| p.concat());
        prop_oneof![any::<String>(), text]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            tricky_text().prop_map(Value::String)
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((tricky_text(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Whether a reply starting with `before` opens with a reasoning block, as the extractor
    /// sees it: after a BOM and whitespace.
    fn opens_with_reasoning(before: &str) -> bool {
        before
            .strip_prefix('\u{feff}')
            .unwrap_or(before)
            .trim_start_matches(JSON_WHITESPACE)
            .starts_with(THINK_OPEN)
    }

    proptest! {
        #[test]
        fn any_object_in_prose_and_fences_comes_back_exactly(
            object in prop::collection::vec((tricky_text(), json_value()), 0..6),
            (before, after) in (tricky_text(), tricky_text()),
            fence in prop::sample::select(vec![None, Some(("```json", "```")),
                Some(("```JSON", "```")), Some(("```", "```")), Some(("~~~", "~~~")),
                Some(("  ```json extra words", "  ```"))]),
            pretty in any::<bool>(),
        ) {
            let object = Value::Object(object.into_iter().collect());
            let (before, after) = (before.replace('{', ""), after.replace('{', ""));
            // A reply opening with a reasoning block is read after it; that has tests of its own.
            prop_assume!(!opens_with_reasoning(&before));
            let json = if pretty { format!("{object:#}") } else { object.to_string() };
            let reply = match fence {
                Some((open, close)) => format!("{before}\n{open}\n{json}\n{close}\n{after}"),
                None => format!("{before}{json}{after}"),
            };
            prop_assert_eq!(extract_json_object(&reply).map(Value::Object), Ok(object));
        }

        #[test]
        fn object_inside_an_outer_object_with_a_trailing_comma_is_not_returned(
            inner in prop::collection::vec((tricky_text(), json_value()), 0..6),
            (key, other) in (tricky_text(), tricky_text()),
            (before, after) in (tricky_text(), tricky_text()),
            comma_first in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let inner = Value::Object(inner.into_iter().collect());
            let (before, after) = (before.replace('{', ""), after.replace('{', ""));
            prop_assume!(!opens_with_reasoning(&before));
            let inner_json = if pretty { format!("{inner:#}") } else { inner.to_string() };
            let (key, other) = (Value::String(key), Value::String(other));
            // The trailing comma either precedes the embedded object or follows it.
            let outer = if comma_first {
                format!("{{{other}: [1, 2,], {key}: {inner_json}}}")
            } else {
                format!("{{{other}: 1, {key}: {inner_json},}}")
            };
            let reply = format!("{before}{outer}{after}");
            let result = extract_json_object(&reply);
            prop_assert!(
                matches!(result, Err(ExtractError::Invalid { .. })),
                "{reply:?} gave {result:?}"
            );
        }

        #[test]
        fn arbitrary_text_never_panics(reply in prop_oneof![
            any::<String>(),
            prop::collection::vec(tricky_text(), 0..200).prop_map(|p| p.concat()),
        ]) {
            let result = extract_json_object(&reply);
            if let Err(ExtractError::Invalid { line, column, reason }) = result {
                prop_assert!(line >= 1 && line <= reply.lines().count() + 1 && column >= 1);
                prop_assert!(!reason.is_empty());
            }
        }
    }
}
