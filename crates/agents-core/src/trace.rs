//! W3C Trace Context (`traceparent` / `tracestate`) carried through every request.
//!
//! The trace a client starts must reach the provider's HTTP request, every CloudEvent and the
//! queued worker, so the header is parsed once at the edge and travels as this validated type.
//! A malformed header is not fatal: the W3C spec says to start a new trace instead.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated W3C `traceparent` (version 00) and the optional `tracestate` that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TraceContext {
    traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

/// Why a `traceparent` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// Not `version-traceid-parentid-flags` with the right lengths and lowercase hex.
    #[error("traceparent must be `00-<32 hex>-<16 hex>-<2 hex>` in lowercase")]
    Malformed,
    /// The trace id or the parent id is all zeros, which the spec forbids.
    #[error("traceparent has an all-zero trace id or parent id")]
    ZeroId,
    /// Version `ff` is forbidden by the spec.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
}

/// `tracestate` longer than this is dropped, as the spec allows (it caps list members at 32).
const MAX_TRACESTATE_LEN: usize = 512;

impl TraceContext {
    /// Parses a `traceparent` header and its `tracestate`.
    ///
    /// Versions above 00 are accepted when their first four fields are well formed, as the spec
    /// requires for forward compatibility. An over-long `tracestate` is dropped, not refused.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<Self, TraceContextError> {
        let traceparent = traceparent.trim();
        let mut fields = traceparent.split('-');
        let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TraceContextError::Malformed);
        };
        let well_formed = is_lower_hex(version, 2)
            && is_lower_hex(trace_id, 32)
            && is_lower_hex(parent_id, 16)
            && is_lower_hex(flags, 2);
        if !well_formed || (version == "00" && fields.next().is_some()) {
            return Err(TraceContextError::Malformed);
        }
        if version == "ff" {
            return Err(TraceContextError::InvalidVersion);
        }
        if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
            return Err(TraceContextError::ZeroId);
        }
        Ok(Self {
            // Downstream we speak version 00: keep only its four fields.
            traceparent: format!("00-{trace_id}-{parent_id}-{flags}"),
            tracestate: kept_tracestate(tracestate),
        })
    }

    /// The context of a span known by its ids, e.g. from an OpenTelemetry `SpanContext`,
    /// without writing a header to parse it back. `tracestate` is kept as [`parse`](Self::parse)
    /// keeps it.
    ///
    /// # Errors
    /// [`TraceContextError::ZeroId`] when either id is all zeros.
    pub fn from_ids(
        trace_id: [u8; 16],
        parent_id: [u8; 8],
        flags: u8,
        tracestate: Option<&str>,
    ) -> Result<Self, TraceContextError> {
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return Err(TraceContextError::ZeroId);
        }
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        push_hex(&mut traceparent, &trace_id);
        traceparent.push('-');
        push_hex(&mut traceparent, &parent_id);
        traceparent.push('-');
        push_hex(&mut traceparent, &[flags]);
        Ok(Self {
            traceparent,
            tracestate: kept_tracestate(tracestate),
        })
    }

    /// Parses the header, or starts a new sampled trace when it is absent or malformed.
    pub fn parse_or_new(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        traceparent
            .and_then(|header| Self::parse(header, tracestate).ok())
            .unwrap_or_else(Self::new_root)
    }

    /// Starts a new trace with random ids, sampled.
    pub fn new_root() -> Self {
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span = uuid::Uuid::new_v4().simple().to_string();
        Self {
            traceparent: format!("00-{trace_id}-{}-01", &span[..16]),
            tracestate: None,
        }
    }

    /// The same trace with a new parent span id: what a component sends downstream for the
    /// span it opened.
    pub fn child(&self) -> Self {
        // The first 8 bytes of a v4 UUID: random, and never all zeros (byte 6 holds the
        // version bits).
        let random = uuid::Uuid::new_v4();
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str("00-");
        traceparent.push_str(self.trace_id());
        traceparent.push('-');
        push_hex(&mut traceparent, &random.as_bytes()[..8]);
        traceparent.push('-');
        traceparent.push_str(self.flags());
        Self {
            traceparent,
            tracestate: self.tracestate.clone(),
        }
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` header value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// The 16-hex-digit parent (span) id.
    pub fn parent_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }

    /// Whether the caller sampled this trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(self.flags(), 16).is_ok_and(|flags| flags & 1 == 1)
    }

    fn flags(&self) -> &str {
        self.traceparent.get(53..55).unwrap_or("00")
    }
}

/// `tracestate` as it is kept: trimmed, and dropped when empty, over-long or not ASCII.
fn kept_tracestate(tracestate: Option<&str>) -> Option<String> {
    tracestate
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN && s.is_ascii())
        .map(str::to_owned)
}

/// Appends `bytes` as lowercase hex, two digits each.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent)
    }
}

fn is_lower_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let trace = TraceContext::parse(EXAMPLE, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id(), "00f067aa0ba902b7");
        assert!(trace.sampled());
        assert_eq!(trace.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(trace.to_string(), EXAMPLE);
    }

    #[test]
    fn from_ids_is_what_parsing_the_header_of_those_ids_gives() {
        let trace_id = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128.to_be_bytes();
        let parent_id = 0x00f0_67aa_0ba9_02b7_u64.to_be_bytes();
        for (flags, state) in [
            (1, Some(" congo=t61rcWkgMzE ")),
            (0, Some("")),
            (0xa5, None),
        ] {
            let header =
                format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags:02x}");
            assert_eq!(
                TraceContext::from_ids(trace_id, parent_id, flags, state),
                TraceContext::parse(&header, state)
            );
        }
        let long = "a=b,".repeat(200);
        let kept = TraceContext::from_ids(trace_id, parent_id, 1, Some(&long)).unwrap();
        assert_eq!(kept.tracestate(), None);
        assert_eq!(
            TraceContext::from_ids([0; 16], parent_id, 1, None),
            Err(TraceContextError::ZeroId)
        );
        assert_eq!(
            TraceContext::from_ids(trace_id, [0; 8], 1, None),
            Err(TraceContextError::ZeroId)
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for (header, error) in [
            ("", TraceContextError::Malformed),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                TraceContextError::Malformed,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                TraceContextError::Malformed,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                TraceContextError::Malformed,
            ),
            (&format!("{EXAMPLE}-extra"), TraceContextError::Malformed),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                TraceContextError::ZeroId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                TraceContextError::ZeroId,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                TraceContextError::InvalidVersion,
            ),
        ] {
            assert_eq!(TraceContext::parse(header, None), Err(error), "{header}");
        }
    }

    #[test]
    fn future_versions_keep_the_known_fields() {
        let header =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-the-future-holds";
        let trace = TraceContext::parse(header, None).unwrap();
        assert_eq!(
            trace.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        assert!(!trace.sampled());
    }

    #[test]
    fn bad_headers_start_a_new_trace_and_children_keep_the_trace() {
        let fresh = TraceContext::parse_or_new(Some("garbage"), Some("a=b"));
        assert!(TraceContext::parse(fresh.traceparent(), None).is_ok());
        assert!(fresh.sampled());
        assert_eq!(fresh.tracestate(), None);

        let parent = TraceContext::parse_or_new(Some(EXAMPLE), Some("a=b"));
        let child = parent.child();
        assert_eq!(
            TraceContext::parse(child.traceparent(), child.tracestate()).as_ref(),
            Ok(&child)
        );
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.parent_id(), parent.parent_id());
        assert_eq!(child.tracestate(), Some("a=b"));
        assert!(child.sampled());

        let long_state = "k=".repeat(400);
        assert_eq!(
            TraceContext::parse(EXAMPLE, Some(&long_state))
                .unwrap()
                .tracestate(),
            None
        );
    }
}
