//! Why an event could not be read.

/// An event could not be decoded or failed CloudEvents validation.
///
/// Messages name the attribute and the problem but never repeat attribute
/// values or `data`: events carry user content, and these errors end up in
/// logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The encoded event is larger than [`MAX_EVENT_BYTES`](super::MAX_EVENT_BYTES).
    #[error("event is {size} bytes, over the {limit}-byte limit; send large content by reference")]
    TooLarge {
        /// Size of the input, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The input is not well-formed JSON.
    #[error("event is not valid JSON (syntax error at line {line}, column {column})")]
    Syntax {
        /// Line of the error, 1-based.
        line: usize,
        /// Column of the error, 1-based.
        column: usize,
    },
    /// The input is JSON but not an object, so not a structured-mode event.
    #[error("event must be a JSON object (CloudEvents structured mode)")]
    NotAnObject,
    /// A required context attribute is absent or null.
    #[error("required attribute `{attribute}` is missing")]
    MissingAttribute {
        /// Name of the attribute, e.g. `id`.
        attribute: &'static str,
    },
    /// A context attribute has the wrong type or value.
    #[error("attribute `{attribute}` {problem}")]
    InvalidAttribute {
        /// Name of the attribute, e.g. `specversion`.
        attribute: &'static str,
        /// What is wrong, phrased to follow the attribute name.
        problem: &'static str,
    },
    /// A typed decode asked for a different event type than the event has.
    #[error("event is not of type `{expected}`; check its `type` before decoding")]
    TypeMismatch {
        /// The type the caller asked for.
        expected: &'static str,
    },
    /// The event has the right type but its `data` does not fit the payload.
    #[error("data does not match the `{event_type}` payload schema")]
    InvalidData {
        /// The event type whose payload failed to decode.
        event_type: &'static str,
    },
}
