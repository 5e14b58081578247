//! What the fake model does with one chat request.

use std::time::Duration;

/// What the fake model does with one `POST /v1/chat/completions` request.
///
/// Behaviours apply to chat requests with a JSON body only; `GET /v1/models`, `GET /health`,
/// unknown paths (404) and bodies that are not JSON (400) neither take one from the queue nor
/// use the default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behavior {
    /// A canned, schema-valid JSON answer for whichever agent asked.
    ///
    /// The agent is read from the request's `response_format.json_schema.name`
    /// (`code_analysis`, `documentation`, `test_generation`), otherwise from the system
    /// message; a request that names no agent gets `{"ok":true}`. See [`canned_answer`].
    /// Honours `stream: true` (SSE) and `stream_options.include_usage`.
    ///
    /// [`canned_answer`]: crate::canned_answer
    Answer,
    /// A fixed text answer; honours `stream: true` like [`Behavior::Answer`].
    Reply {
        /// The assistant message's content.
        text: String,
    },
    /// Wait, then behave as `then`. Stopping the server during the wait closes the connection.
    Delay {
        /// How long to wait before anything is sent.
        delay: Duration,
        /// What to do after the wait.
        then: Box<Behavior>,
    },
    /// An HTTP error status with an OpenAI-style body
    /// `{"error": {"message": ..., "type": ..., "param": null, "code": null}}`.
    ///
    /// A code outside `100..=999` is answered as 500.
    Status {
        /// The status code, e.g. 429 or 503.
        code: u16,
        /// The `Retry-After` header value exactly as given (seconds or an HTTP date); the header
        /// is left out when `None` or when the value is not a valid header value.
        retry_after: Option<String>,
        /// The error message.
        message: String,
    },
    /// Close the connection without any response: the client sees an incomplete message or a
    /// connection reset, never a status.
    Drop,
    /// Never answer: hold the connection open until the client gives up or the server stops.
    Hang,
    /// `200 OK` with exactly this body and `content-type: application/json` (e.g. truncated or
    /// not JSON at all).
    Malformed {
        /// The response body.
        body: String,
    },
    /// A streamed (SSE) answer, whatever the request's `stream` flag says.
    ///
    /// Each piece is one `chat.completion.chunk` event (the first also carries the assistant
    /// role), with `gap` before every piece but the first. With `stall_after: Some(n)` the
    /// server sends the first `n` pieces and then stalls without closing the stream; otherwise it
    /// finishes with a chunk carrying `finish_reason: "stop"` and `usage`, then `data: [DONE]`.
    Stream {
        /// The content pieces, in order.
        pieces: Vec<String>,
        /// The pause before each piece after the first.
        gap: Duration,
        /// Stall (forever, until the client or the server gives up) after this many pieces.
        stall_after: Option<usize>,
    },
    /// An SSE stream whose one event is `data: {data}` verbatim (a malformed chunk), followed
    /// by `data: [DONE]`.
    MalformedStream {
        /// The raw text of the event's `data:` line.
        data: String,
    },
}
