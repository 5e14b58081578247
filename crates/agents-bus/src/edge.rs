//! The edge of the process: what every event goes through before any transport sees it.
//!
//! Redaction happens here, once, for every bus: a secret that reached an event payload (an API
//! key in an error message, a token in a tool argument) would otherwise be fanned out to every
//! subscriber, written to the audit log forever and shipped to NATS. Encoding happens here too,
//! so that the audit log and NATS carry byte-identical structured-mode CloudEvents and refuse
//! the same oversized ones.

use std::borrow::Cow;

use agents_core::{CloudEvent, MAX_EVENT_BYTES, Redactor};

use crate::Error;

/// `event` with its `data`, `subject` and extension attributes redacted by the global
/// [`Redactor`]. Identity attributes (`id`, `source`, `type`, `time`) are left as they are:
/// they are chosen by our code, not copied from user content.
pub(crate) fn redact(mut event: CloudEvent) -> CloudEvent {
    let redactor = Redactor::global();
    redactor.redact_json(&mut event.data);
    if let Some(subject) = &mut event.subject
        && let Cow::Owned(redacted) = redactor.redact(subject)
    {
        *subject = redacted;
    }
    for value in event.extensions.values_mut() {
        redactor.redact_json(value);
    }
    event
}

/// Structured-mode JSON of an (already redacted) event, refused above [`MAX_EVENT_BYTES`]
/// because every consumer refuses to read such an event.
pub(crate) fn encode(event: &CloudEvent) -> Result<Vec<u8>, Error> {
    let bytes = serde_json::to_vec(event).map_err(|_| Error::InvalidEvent {
        reason: "the event cannot be encoded as JSON",
    })?;
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Error::InvalidEvent {
            reason: "the encoded event is larger than 1 MiB; send large content by reference",
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use agents_core::{AgentFailed, CloudEvent};
    use serde_json::json;

    use super::*;

    #[test]
    fn data_subject_and_extensions_are_redacted() {
        let mut failed = AgentFailed::default();
        failed.message = "provider said: Authorization: Bearer abcdefghijklmnopqrstu".into();
        let mut event = CloudEvent::new("/agents/x", &failed).with_subject("password=hunter2");
        event
            .extensions
            .insert("note".into(), json!({"api_key": "k-123456"}));
        let event = redact(event);
        let text = String::from_utf8(encode(&event).unwrap_or_default()).unwrap_or_default();
        for secret in ["abcdefghijklmnopqrstu", "hunter2", "k-123456"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("agent.failed"));
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut event = CloudEvent::new("/a", &AgentFailed::default());
        event.data = json!({ "blob": "x".repeat(MAX_EVENT_BYTES) });
        assert!(matches!(encode(&event), Err(Error::InvalidEvent { .. })));
    }
}
