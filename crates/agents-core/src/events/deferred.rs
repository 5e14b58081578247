//! An event whose envelope is built by the sink that keeps it, not by the producer.
//!
//! Why: building a [`CloudEvent`] means serializing the payload into a JSON tree, running every
//! key and string through the [`Redactor`](crate::Redactor), and making a UUID. An agent emits
//! two events per call, and that work sat on the request path although nothing on it reads the
//! result: the bus queue only carries the event to a background task. A [`DeferredEvent`] holds
//! the typed payload and the attributes known at emission (source, subject, trace context,
//! time), and [`build`](DeferredEvent::build) makes the same `CloudEvent` later, redaction
//! included, wherever the sink chooses to run it.

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::catalogue::EventPayload;
use super::envelope::{CloudEvent, new_id};
use crate::trace::TraceContext;

/// An event not built yet: the payload and the attributes known when it happened.
///
/// [`build`](Self::build) returns what [`CloudEvent::new`] and its `with_*` setters would have
/// returned at emission: the same `source`, `type`, `subject`, trace context and `time`, the
/// data redacted, and a fresh id. Hand it to [`EventSink::emit_deferred`](super::EventSink::emit_deferred).
pub struct DeferredEvent {
    source: String,
    subject: Option<String>,
    trace: Option<(String, Option<String>)>,
    time: DateTime<Utc>,
    payload: Box<dyn Payload>,
    /// The id of the first envelope built from it: every later build carries the same one, so
    /// a sink shown the event ([`to_event`](Self::to_event)) and the sink that keeps it
    /// ([`build`](Self::build)) hold the same event.
    id: OnceLock<String>,
}

impl DeferredEvent {
    /// An event of `payload`'s type from `source`, happening now.
    pub fn new<P: EventPayload + Send + 'static>(source: impl Into<String>, payload: P) -> Self {
        Self {
            source: source.into(),
            subject: None,
            trace: None,
            time: Utc::now(),
            payload: Box::new(payload),
            id: OnceLock::new(),
        }
    }

    /// Sets `subject` (redacted when the event is built, as [`CloudEvent::with_subject`] does).
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the W3C trace context of the emitting span.
    #[must_use]
    pub fn with_trace(
        mut self,
        traceparent: impl Into<String>,
        tracestate: Option<String>,
    ) -> Self {
        self.trace = Some((traceparent.into(), tracestate));
        self
    }

    /// [`with_trace`](Self::with_trace) from a [`TraceContext`], as
    /// [`CloudEvent::with_trace_context`] does.
    #[must_use]
    pub fn with_trace_context(self, trace: &TraceContext) -> Self {
        self.with_trace(trace.traceparent(), trace.tracestate().map(str::to_owned))
    }

    /// The CloudEvents `type` it will have, e.g. `agent.started`: enough for a sink to decide
    /// whether it wants the event at all without building it.
    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }

    /// The payload, when it is a `P`: for a sink that reads a few fields on the spot (metrics)
    /// without building the envelope. It is **not redacted**: a reader that passes any of it
    /// on (a label, a log line) redacts it at its own edge, as the metrics do with labels.
    pub fn payload<P: EventPayload + 'static>(&self) -> Option<&P> {
        self.payload.as_any().downcast_ref::<P>()
    }

    /// The event, built now: payload to JSON, redaction, an id (fresh, or the one an earlier
    /// [`to_event`](Self::to_event) gave it); the time is when the deferred event was made.
    pub fn build(self) -> CloudEvent {
        let id = self.id.into_inner().unwrap_or_else(new_id);
        self.payload
            .envelope(id, self.source, self.time, self.subject, self.trace)
    }

    /// [`build`](Self::build) from a borrowed event (its strings copied), for a sink that sees
    /// the event while another one keeps it. Every build of one deferred event has the same
    /// id.
    pub fn to_event(&self) -> CloudEvent {
        let id = self.id.get_or_init(new_id).clone();
        self.payload.envelope(
            id,
            self.source.clone(),
            self.time,
            self.subject.clone(),
            self.trace.clone(),
        )
    }
}

impl fmt::Debug for DeferredEvent {
    // The payload is left out: it is not redacted until the event is built.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredEvent")
            .field("type", &self.event_type())
            .field("source", &self.source)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// A catalogue payload with its type erased, so one queue can hold events of every type.
trait Payload: Send {
    fn event_type(&self) -> &'static str;
    fn to_data(&self) -> Value;
    fn as_any(&self) -> &dyn Any;

    /// The envelope of this payload, its optional attributes set through the setters that
    /// redact them.
    fn envelope(
        &self,
        id: String,
        source: String,
        time: DateTime<Utc>,
        subject: Option<String>,
        trace: Option<(String, Option<String>)>,
    ) -> CloudEvent {
        let mut event = CloudEvent::from_data(id, source, self.event_type(), self.to_data(), time);
        if let Some(subject) = subject {
            event = event.with_subject(subject);
        }
        if let Some((traceparent, tracestate)) = trace {
            event = event.with_trace(traceparent, tracestate);
        }
        event
    }
}

impl<P: EventPayload + Send + 'static> Payload for P {
    fn event_type(&self) -> &'static str {
        P::TYPE
    }

    fn to_data(&self) -> Value {
        EventPayload::to_data(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::{AgentFailed, AgentStarted};
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn builds_what_new_would_have_built_at_emission() {
        let started = AgentStarted {
            agent_id: "code-analysis".into(),
            request_id: "req-1".into(),
            ..AgentStarted::default()
        };
        let deferred = DeferredEvent::new("/agents/code-analysis", started.clone())
            .with_subject("req-1")
            .with_trace(PARENT, Some("congo=t61rcWkgMzE".into()));
        assert_eq!(deferred.event_type(), "agent.started");
        let when = deferred.time;
        let built = deferred.build();
        let direct = CloudEvent::new("/agents/code-analysis", &started)
            .with_subject("req-1")
            .with_trace(PARENT, Some("congo=t61rcWkgMzE".into()))
            .with_time(when)
            .with_id(built.id.clone());
        assert_eq!(built, direct);
        assert_eq!(built.payload::<AgentStarted>().unwrap(), started);
    }

    #[test]
    fn building_redacts_the_data_and_the_subject_and_debug_shows_neither() {
        let failed = AgentFailed {
            message: "upstream said Authorization: Bearer abcdefghijklmnopqrstu".into(),
            ..AgentFailed::default()
        };
        let deferred = DeferredEvent::new("/agents/x", failed).with_subject("password=hunter2");
        let debug = format!("{deferred:?}");
        assert!(debug.contains("agent.failed") && !debug.contains("abcdefghijklmnopqrstu"));
        assert!(!debug.contains("hunter2"), "{debug}");
        let text = serde_json::to_string(&deferred.build()).unwrap();
        for secret in ["abcdefghijklmnopqrstu", "hunter2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn a_borrowed_event_builds_the_same_envelope_and_its_payload_reads_typed() {
        let started = AgentStarted {
            agent_id: "code-analysis".into(),
            ..AgentStarted::default()
        };
        let deferred = DeferredEvent::new("/agents/code-analysis", started.clone())
            .with_subject("req-1")
            .with_trace(PARENT, None);
        assert_eq!(deferred.payload::<AgentStarted>(), Some(&started));
        assert_eq!(deferred.payload::<AgentFailed>(), None);
        let seen = deferred.to_event();
        let seen_again = deferred.to_event();
        let kept = deferred.build();
        // One event, whoever builds it: the same id too, so sinks can match what they hold.
        assert_eq!(seen, kept);
        assert_eq!(seen_again, kept);
    }

    #[test]
    fn different_events_get_different_ids() {
        let a = DeferredEvent::new("/a", AgentStarted::default()).build();
        let b = DeferredEvent::new("/a", AgentStarted::default()).build();
        assert_ne!(a.id, b.id);
        assert!(a.subject.is_none() && a.traceparent.is_none());
    }
}
