//! The event catalogue: every event type and its typed payload.
//!
//! The list below is the single place that ties a type name to its payload,
//! so [`EVENT_TYPES`], [`catalogue`] and the [`EventPayload`] impls cannot
//! disagree. To evolve a payload, add a field with `#[serde(default)]` (old
//! producers omit it) and never remove or rename one (old consumers need it).

mod agent;
mod mcp;
mod provider;
mod system;
mod task;

use schemars::{JsonSchema, Schema};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

pub use agent::{AgentCompleted, AgentFailed, AgentStarted};
pub use mcp::{McpServerConnected, McpServerDisconnected};
pub use provider::{
    CircuitClosed, CircuitOpened, ProviderFailure, ProviderFallback, ProviderRequest,
    ProviderSuccess,
};
pub use system::{MemoryPressure, PressureLevel, ThermalThrottle};
pub use task::{TaskCompleted, TaskDeadLettered, TaskFailed, TaskQueued, TaskStarted};

mod sealed {
    /// Keeps [`super::EventPayload`] implemented only by the catalogue.
    pub trait Sealed {}
}

/// A typed event payload: the `data` of a [`CloudEvent`](super::CloudEvent)
/// whose `type` is [`Self::TYPE`].
///
/// Sealed: a new event type is added here, with its committed schema, so that
/// consumers outside Rust can rely on the catalogue being complete.
pub trait EventPayload: Serialize + DeserializeOwned + JsonSchema + sealed::Sealed {
    /// The CloudEvents `type` attribute for this payload, e.g. `agent.started`.
    const TYPE: &'static str;

    /// The payload as JSON, for the event's `data`.
    fn to_data(&self) -> Value {
        // Cannot fail for the sealed set: catalogue payloads are plain structs
        // of strings, numbers, booleans, options and vectors, all of which JSON
        // represents (serde_json writes non-finite floats as null). The
        // `every_payload_round_trips` test covers every implementor, so the
        // fallback is unreachable rather than a hidden error path, and keeps
        // emitting infallible for producers on the hot path.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

macro_rules! catalogue {
    ($($payload:ty => $name:literal,)+) => {
        $(
            impl sealed::Sealed for $payload {}
            impl EventPayload for $payload {
                const TYPE: &'static str = $name;
            }
        )+

        /// Every event type of the catalogue, in catalogue order.
        pub const EVENT_TYPES: &[&str] = &[$($name),+];

        /// Every event type with the JSON schema of its payload, in catalogue
        /// order; the crate commits each as `schemas/events/<type>.json`.
        pub fn catalogue() -> Vec<(&'static str, Schema)> {
            vec![$(($name, schemars::schema_for!($payload))),+]
        }

        #[cfg(test)]
        fn round_trip_all() -> Result<(), Box<dyn std::error::Error>> {
            $(tests::round_trip::<$payload>()?;)+
            Ok(())
        }
    };
}

catalogue! {
    AgentStarted => "agent.started",
    AgentCompleted => "agent.completed",
    AgentFailed => "agent.failed",
    ProviderRequest => "provider.request",
    ProviderSuccess => "provider.success",
    ProviderFailure => "provider.failure",
    ProviderFallback => "provider.fallback",
    CircuitOpened => "provider.circuit_opened",
    CircuitClosed => "provider.circuit_closed",
    MemoryPressure => "system.memory_pressure",
    ThermalThrottle => "system.thermal_throttle",
    McpServerConnected => "mcp.server_connected",
    McpServerDisconnected => "mcp.server_disconnected",
    TaskQueued => "task.queued",
    TaskStarted => "task.started",
    TaskCompleted => "task.completed",
    TaskFailed => "task.failed",
    TaskDeadLettered => "task.dead_lettered",
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fmt::Debug;

    use super::super::CloudEvent;
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Fills a default `P` with non-default values (each empty string becomes
    /// its field name, numbers 7, flags true, levels critical; options stay
    /// `None` as their type is unknown here), sends it through an encoded
    /// event and checks envelope and payload come back unchanged.
    pub(super) fn round_trip<P: EventPayload + Default + PartialEq + Debug>() -> TestResult {
        let Value::Object(mut data) = P::default().to_data() else {
            return Err(format!("{} data is not an object", P::TYPE).into());
        };
        for (name, value) in &mut data {
            match value {
                Value::String(s) if s.is_empty() => *s = name.clone(),
                Value::String(s) if s == "normal" => *s = "critical".into(),
                Value::Number(_) => *value = 7.into(),
                Value::Bool(b) => *b = true,
                Value::Array(items) => items.push(name.as_str().into()),
                _ => {}
            }
        }
        let payload: P = serde_json::from_value(Value::Object(data))?;
        assert_ne!(payload, P::default(), "{} was not filled", P::TYPE);
        let event = CloudEvent::new("/agents/test", &payload);
        let decoded = CloudEvent::from_json(&serde_json::to_vec(&event)?)?;
        assert_eq!(decoded, event);
        assert_eq!(decoded.payload::<P>()?, payload);
        Ok(())
    }

    #[test]
    fn every_payload_round_trips() -> TestResult {
        round_trip_all()
    }

    #[test]
    fn types_are_unique_dotted_and_match_the_catalogue() {
        let unique: BTreeSet<_> = EVENT_TYPES.iter().collect();
        assert_eq!(unique.len(), EVENT_TYPES.len());
        let names: Vec<_> = catalogue().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, EVENT_TYPES);
        for name in EVENT_TYPES {
            let family = name.split_once('.').map(|(family, _)| family);
            assert!(
                matches!(
                    family,
                    Some("agent" | "provider" | "system" | "mcp" | "task")
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn schemas_describe_payload_fields() {
        for (name, schema) in catalogue() {
            let properties = schema.get("properties").and_then(Value::as_object);
            assert!(properties.is_some_and(|p| !p.is_empty()), "{name}");
        }
    }
}
