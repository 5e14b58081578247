//! The CloudEvents 1.0 envelope, structured JSON mode.
//!
//! Decoding is strict about the context attributes and lenient about the
//! rest: a consumer that accepted an event without `id` or `source` could not
//! de-duplicate it, while one that dropped unknown extension attributes would
//! break tracing and routing for everyone downstream of it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::EventPayload;
use super::error::EventError;
use crate::redact::Redactor;
use crate::trace::TraceContext;

/// Largest encoded event [`CloudEvent::from_json`] accepts: 1 MiB.
///
/// Events carry metadata, not documents; the bound stops a hostile or buggy
/// producer from making every consumer buffer and parse arbitrary input.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

const JSON: &str = "application/json";

/// The CloudEvents specification version of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub enum SpecVersion {
    /// CloudEvents 1.0, the only version this crate reads or writes.
    #[default]
    #[serde(rename = "1.0")]
    V1_0,
}

/// One event in CloudEvents 1.0 structured JSON form.
///
/// Build events with [`CloudEvent::new`]; read untrusted bytes with
/// [`CloudEvent::from_json`], which validates what plain `Deserialize` does
/// not (non-empty `id`, `source` and `type`, the size bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct CloudEvent {
    /// Unique with `source`, so consumers use the pair to drop redeliveries;
    /// a UUID v4 by default.
    pub id: String,
    /// URI-reference of the producer, e.g. `/agents/code-analysis` or
    /// `urn:agents:server:host1`.
    pub source: String,
    /// Always 1.0.
    pub specversion: SpecVersion,
    /// The catalogue type, one of `EVENT_TYPES`, e.g. `agent.completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the occurrence happened (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    /// Media type of `data`: `application/json` for every event we produce.
    #[serde(default = "json_content_type")]
    pub datacontenttype: String,
    /// What the event is about within `source`, e.g. a request or task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// URI of the schema that `data` follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// W3C `traceparent` of the span that emitted the event (Distributed
    /// Tracing extension), so the event joins the request's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` accompanying `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The payload; decode it with [`CloudEvent::payload`].
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// Extension attributes this crate does not know, kept so that forwarding
    /// an event does not drop them. Keys must not be core attribute names.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

fn json_content_type() -> String {
    JSON.to_owned()
}

/// A fresh event id: a random (v4) UUID.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl CloudEvent {
    /// An event of `payload`'s type from `source`, with a fresh UUID v4 id and
    /// the current time.
    ///
    /// The payload's data passes through [`Redactor::global`] here, once, so
    /// an emitter that forgot to redact a message still cannot publish a
    /// registered secret or a credential-shaped string.
    pub fn new<P: EventPayload>(source: impl Into<String>, payload: &P) -> Self {
        Self::from_data(
            new_id(),
            source.into(),
            P::TYPE,
            payload.to_data(),
            Utc::now(),
        )
    }

    /// [`new`](Self::new) for a payload already turned into `data`, of catalogue type
    /// `event_type`, that happened at `time`, with `id` (see [`new_id`]); `data` is redacted
    /// here.
    pub(super) fn from_data(
        id: String,
        source: String,
        event_type: &str,
        mut data: Value,
        time: DateTime<Utc>,
    ) -> Self {
        Redactor::global().redact_json(&mut data);
        Self {
            id,
            source,
            specversion: SpecVersion::V1_0,
            event_type: event_type.to_owned(),
            time,
            datacontenttype: json_content_type(),
            subject: None,
            dataschema: None,
            traceparent: None,
            tracestate: None,
            data,
            extensions: BTreeMap::new(),
        }
    }

    /// Sets `subject`, redacted with [`Redactor::global`] like the data.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        let subject = subject.into();
        self.subject = Some(match Redactor::global().redact(&subject) {
            Cow::Borrowed(_) => subject,
            Cow::Owned(redacted) => redacted,
        });
        self
    }

    /// Sets the W3C trace context of the emitting span.
    #[must_use]
    pub fn with_trace(
        mut self,
        traceparent: impl Into<String>,
        tracestate: Option<String>,
    ) -> Self {
        self.traceparent = Some(traceparent.into());
        self.tracestate = tracestate;
        self
    }

    /// [`with_trace`](Self::with_trace) from a [`TraceContext`]: its `traceparent` and
    /// `tracestate` headers.
    #[must_use]
    pub fn with_trace_context(self, trace: &TraceContext) -> Self {
        self.with_trace(trace.traceparent(), trace.tracestate().map(str::to_owned))
    }

    /// Replaces the generated id, e.g. to make a retried emission idempotent.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Replaces the time, e.g. with when the occurrence really happened.
    #[must_use]
    pub fn with_time(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }

    /// Decodes `data` as payload `P`, after checking the event is of `P`'s type.
    pub fn payload<P: EventPayload>(&self) -> Result<P, EventError> {
        if self.event_type != P::TYPE {
            return Err(EventError::TypeMismatch { expected: P::TYPE });
        }
        // The serde error is dropped on purpose: its message can quote `data`.
        P::deserialize(&self.data).map_err(|_| EventError::InvalidData {
            event_type: P::TYPE,
        })
    }

    /// Reads and validates one structured-mode event from untrusted bytes.
    ///
    /// Attributes whose value is `null` count as absent, as the JSON format
    /// requires; unknown attributes are kept in `extensions`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size: bytes.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| EventError::Syntax {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(mut map) = value else {
            return Err(EventError::NotAnObject);
        };
        map.retain(|_, v| !v.is_null());
        // specversion first: it decides how everything else is read.
        if require(&mut map, "specversion")? != "1.0" {
            return Err(EventError::InvalidAttribute {
                attribute: "specversion",
                problem: "must be \"1.0\"",
            });
        }
        let id = require(&mut map, "id")?;
        let source = require(&mut map, "source")?;
        let event_type = require(&mut map, "type")?;
        let time = DateTime::parse_from_rfc3339(&require(&mut map, "time")?)
            .map_err(|_| EventError::InvalidAttribute {
                attribute: "time",
                problem: "must be an RFC 3339 timestamp",
            })?
            .with_timezone(&Utc);
        Ok(Self {
            id,
            source,
            specversion: SpecVersion::V1_0,
            event_type,
            time,
            datacontenttype: take(&mut map, "datacontenttype")?.unwrap_or_else(json_content_type),
            subject: take(&mut map, "subject")?,
            dataschema: take(&mut map, "dataschema")?,
            traceparent: take(&mut map, "traceparent")?,
            tracestate: take(&mut map, "tracestate")?,
            data: map.remove("data").unwrap_or_default(),
            extensions: map.into_iter().collect(),
        })
    }
}

/// Removes attribute `name`; it must be a non-empty string when present.
fn take(map: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>, EventError> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(EventError::InvalidAttribute {
            attribute: name,
            problem: "must be a non-empty string",
        }),
    }
}

/// Like [`take`], for a required attribute.
fn require(map: &mut Map<String, Value>, name: &'static str) -> Result<String, EventError> {
    take(map, name)?.ok_or(EventError::MissingAttribute { attribute: name })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::{AgentFailed, AgentStarted, McpServerConnected};
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn started() -> CloudEvent {
        CloudEvent::new("/agents/code-analysis", &AgentStarted::default())
    }

    fn reject(value: &Value) -> Result<EventError, Box<dyn std::error::Error>> {
        match CloudEvent::from_json(&serde_json::to_vec(value)?) {
            Ok(_) => Err("event was accepted".into()),
            Err(e) => Ok(e),
        }
    }

    #[test]
    fn serializes_exactly_the_cloudevents_attribute_names() -> TestResult {
        let event = started().with_subject("req-1").with_trace(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("vendor=1".into()),
        );
        let Value::Object(map) = serde_json::to_value(&event)? else {
            return Err("envelope is not an object".into());
        };
        // serde_json's map is sorted, so the keys come out in this order.
        let keys: Vec<_> = map.keys().map(String::as_str).collect();
        let expected = "data datacontenttype id source specversion subject time traceparent";
        assert_eq!(keys.join(" "), format!("{expected} tracestate type"));
        assert_eq!(map["specversion"], "1.0");
        assert_eq!(map["type"], "agent.started");
        assert_eq!(map["datacontenttype"], JSON);
        assert!(uuid::Uuid::parse_str(&event.id).is_ok_and(|id| id.get_version_num() == 4));
        Ok(())
    }

    #[test]
    fn from_json_rejects_invalid_envelopes() -> TestResult {
        let good = serde_json::to_value(started())?;
        let with = |key: &str, value: Value| {
            let mut event = good.clone();
            event[key] = value;
            event
        };
        let invalid = |attribute, problem| EventError::InvalidAttribute { attribute, problem };
        let checks = [
            (
                with("specversion", json!("0.3")),
                invalid("specversion", "must be \"1.0\""),
            ),
            (
                with("id", Value::Null),
                EventError::MissingAttribute { attribute: "id" },
            ),
            (
                with("type", json!("")),
                invalid("type", "must be a non-empty string"),
            ),
            (
                with("source", json!(7)),
                invalid("source", "must be a non-empty string"),
            ),
            (
                with("time", json!("yesterday")),
                invalid("time", "must be an RFC 3339 timestamp"),
            ),
            (json!([good]), EventError::NotAnObject),
        ];
        for (input, expected) in checks {
            assert_eq!(reject(&input)?, expected);
        }
        let syntax = CloudEvent::from_json(b"{\"id\": ");
        assert!(matches!(syntax, Err(EventError::Syntax { line: 1, .. })));
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        let too_large = CloudEvent::from_json(&huge);
        assert!(matches!(too_large, Err(EventError::TooLarge { size, .. }) if size == huge.len()));
        Ok(())
    }

    #[test]
    fn typed_decode_checks_type_and_never_echoes_data() {
        let mut event = started();
        let mismatch = EventError::TypeMismatch {
            expected: "agent.failed",
        };
        assert_eq!(event.payload::<AgentFailed>(), Err(mismatch));
        event.data = json!({ "agent_id": ["SECRET prompt"], "input_bytes": "SECRET" });
        let bad = event.payload::<AgentStarted>();
        let invalid = EventError::InvalidData {
            event_type: "agent.started",
        };
        assert_eq!(bad, Err(invalid));
        if let Err(error) = bad {
            assert!(!format!("{error} {error:?}").contains("SECRET"));
        }
    }

    #[test]
    fn new_and_with_subject_redact_registered_secrets() -> TestResult {
        // Unique to this test and shaped like no built-in pattern, so only registration masks it.
        let secret = "envelope-leak-canary-51d2e8";
        Redactor::global().register(secret)?;
        let failed = AgentFailed {
            agent_id: "code-analysis".into(),
            message: format!("upstream refused key {secret}"),
            ..Default::default()
        };
        let event =
            CloudEvent::new("/agents/code-analysis", &failed).with_subject(format!("req-{secret}"));
        let encoded = serde_json::to_string(&event)?;
        assert!(!encoded.contains(secret), "{encoded}");
        assert_eq!(
            event.payload::<AgentFailed>()?.message,
            "upstream refused key ***"
        );
        assert_eq!(event.subject.as_deref(), Some("req-***"));
        // Text with nothing to mask is kept as it is.
        let plain = started().with_subject("req-1");
        assert_eq!(plain.subject.as_deref(), Some("req-1"));
        Ok(())
    }

    #[test]
    fn keeps_unknown_extension_attributes_of_the_spec_example() -> TestResult {
        // The JSON format spec's example, plus distributed tracing attributes.
        let spec = br#"{
            "specversion": "1.0", "type": "com.example.someevent", "source": "/mycontext",
            "id": "A234-1234-1234", "time": "2018-04-05T17:31:00Z",
            "comexampleextension1": "value", "comexampleothervalue": 5,
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "datacontenttype": "application/json",
            "data": { "appinfoA": "abc", "appinfoB": 123, "appinfoC": true }
        }"#;
        let event = CloudEvent::from_json(spec)?;
        assert_eq!(event.extensions["comexampleextension1"], "value");
        assert_eq!(event.extensions["comexampleothervalue"], 5);
        assert_eq!(event.data["appinfoB"], 123);
        assert_eq!(event, serde_json::from_slice::<CloudEvent>(spec)?);
        let original: Value = serde_json::from_slice(spec)?;
        assert_eq!(serde_json::to_value(&event)?, original);
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_strings_round_trip(
            id in ".+", source in ".+", subject in proptest::option::of(".+"),
            agent in ".*", message in ".*", tenant in proptest::option::of(".*"),
            tools in proptest::collection::vec(".*", 0..4), nanos in any::<u32>(),
        ) {
            let time = DateTime::from_timestamp(1_700_000_000, nanos % 1_000_000_000)
                .unwrap_or_default();
            let failed = AgentFailed { agent_id: agent.clone(), message, ..Default::default() };
            let started = AgentStarted { agent_id: agent.clone(), tenant, ..Default::default() };
            let mcp = McpServerConnected { server: agent, tools, ..Default::default() };
            for event in [
                CloudEvent::new(source.clone(), &failed),
                CloudEvent::new(source.clone(), &started),
                CloudEvent::new(source.clone(), &mcp),
            ] {
                let mut event = event.with_id(id.clone()).with_time(time);
                event.subject = subject.clone();
                let decoded = CloudEvent::from_json(&serde_json::to_vec(&event)?)?;
                prop_assert_eq!(&decoded, &event);
                if let Ok(payload) = decoded.payload::<AgentFailed>() {
                    // `new` redacts, so a string that happens to look like a secret is masked.
                    let mut expected = serde_json::to_value(&failed)?;
                    Redactor::global().redact_json(&mut expected);
                    prop_assert_eq!(serde_json::to_value(&payload)?, expected);
                }
            }
        }
    }
}
