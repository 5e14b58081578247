//! HTTP outcomes as `ProviderError`s, in one place.

use std::time::{Duration, SystemTime};

use agents_core::ProviderError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Longest provider message kept in an error: enough to act on, never a whole body.
const MAX_MESSAGE_CHARS: usize = 300;

/// The error for a non-success status, from its headers and (a bounded prefix of) its body.
pub(super) fn from_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    let message = error_message(body);
    let code = Some(status.as_u16());
    if provider_specific(status.as_u16(), body) {
        return ProviderError::Unsupported {
            status: code,
            message,
        };
    }
    match status.as_u16() {
        429 => ProviderError::RateLimited {
            retry_after: retry_after(headers),
        },
        401 | 403 => ProviderError::Unauthorized {
            status: code,
            message,
        },
        408 => ProviderError::Timeout {
            elapsed: Duration::ZERO,
        },
        500..=599 => ProviderError::Unavailable {
            status: code,
            reason: message,
        },
        _ => ProviderError::BadRequest {
            status: code,
            message,
        },
    }
}

/// Whether a 4xx says "not here" rather than "not like this": the model is unknown to this
/// gateway (404), the prompt is over this model's context window, or the account's quota is
/// spent (a 429 that waiting does not cure). Another provider of the chain may serve it.
fn provider_specific(status: u16, body: &[u8]) -> bool {
    if status == 404 {
        return true;
    }
    if !(400..500).contains(&status) {
        return false;
    }
    // Error codes of OpenAI, vLLM and LiteLLM, then the phrases llama.cpp and Ollama use.
    const MARKERS: [&str; 6] = [
        "context_length_exceeded",
        "insufficient_quota",
        "maximum context length",
        "context window",
        "exceeds the available context size",
        "too many tokens",
    ];
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_lowercase();
    if status == 429 {
        // Only a spent quota: a 429 about tokens is a per-minute rate limit ("Rate limit
        // reached ... too many tokens per min"), which waiting cures.
        return text.contains("insufficient_quota");
    }
    MARKERS.iter().any(|marker| text.contains(marker))
}

/// The error for a failed HTTP exchange (no usable status).
pub(super) fn from_transport(error: &reqwest::Error, elapsed: Duration) -> ProviderError {
    if error.is_timeout() {
        return ProviderError::Timeout { elapsed };
    }
    // `without_url`: a base URL may carry a tenant or key in its query.
    let detail = bounded(&source_chain(error));
    if error.is_connect() {
        return ProviderError::Unavailable {
            status: None,
            reason: format!("cannot connect: {detail}"),
        };
    }
    if error.is_decode() {
        return ProviderError::InvalidResponse {
            message: format!("unreadable body: {detail}"),
        };
    }
    ProviderError::Unavailable {
        status: None,
        reason: format!("the connection failed: {detail}"),
    }
}

/// The error and its causes, without the URL.
fn source_chain(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = error.source();
    while let Some(cause) = current {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        current = cause.source();
    }
    if text.is_empty() {
        text = if error.is_body() {
            "the body was cut off".into()
        } else {
            "no detail".into()
        };
    }
    text
}

/// `error.message` of an OpenAI-style error body, or the start of a plain body.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("error"))
        })
        .and_then(|m| m.as_str().map(str::to_owned));
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        return "no message".into();
    }
    bounded(&text)
}

/// Redacted first, then cut: cutting first could leave part of a key too short to recognise.
pub(super) fn bounded(text: &str) -> String {
    crate::upstream_text::quote_upstream(text, MAX_MESSAGE_CHARS)
}

/// The error an SSE `error` event stands for (vLLM and LiteLLM send one, then `[DONE]`).
pub(super) fn from_stream_error(error: &serde_json::Value) -> ProviderError {
    let field = |name: &str| {
        error.get(name).and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    };
    let message = bounded(&field("message").unwrap_or_else(|| error.to_string()));
    let code = field("code").unwrap_or_default();
    let kind = field("type").unwrap_or_default();
    let status = code.parse::<u16>().ok();
    if code == "429" || kind.contains("rate_limit") {
        return ProviderError::RateLimited { retry_after: None };
    }
    if status.is_some_and(|s| (400..500).contains(&s)) || kind.contains("invalid_request") {
        return ProviderError::BadRequest { status, message };
    }
    ProviderError::Unavailable {
        status,
        reason: format!("the stream reported an error: {message}"),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    // `retry-after-ms` (OpenAI, Azure) is more precise than `Retry-After` when both are sent.
    let precise = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    if let Some(ms) = precise {
        return Some(Duration::from_secs_f64(ms.min(86_400_000.0) / 1000.0));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn refusals_another_provider_may_not_give_fall_back_without_retry() {
        let quiet = HeaderMap::new();
        let cases: [(StatusCode, &[u8]); 5] = [
            (
                StatusCode::NOT_FOUND,
                br#"{"error": {"message": "model 'x' not found"}}"#,
            ),
            (
                StatusCode::BAD_REQUEST,
                br#"{"error": {"code": "context_length_exceeded", "message": "too long"}}"#,
            ),
            (
                StatusCode::BAD_REQUEST,
                b"the request exceeds the available context size",
            ),
            (
                StatusCode::TOO_MANY_REQUESTS,
                br#"{"error": {"type": "insufficient_quota", "message": "billing"}}"#,
            ),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                b"This model's maximum context length is 4096 tokens",
            ),
        ];
        for (status, body) in cases {
            let error = from_status(status, &quiet, body);
            assert!(
                matches!(error, ProviderError::Unsupported { status: Some(s), .. } if s == status.as_u16()),
                "{status}: {error:?}"
            );
            assert!(error.should_fall_back() && !error.is_retryable());
        }
        // A plain malformed request stays a BadRequest: every provider would refuse it.
        assert!(matches!(
            from_status(
                StatusCode::BAD_REQUEST,
                &quiet,
                br#"{"error": {"message": "temperature must be <= 2"}}"#
            ),
            ProviderError::BadRequest { .. }
        ));
        assert!(matches!(
            from_status(StatusCode::INTERNAL_SERVER_ERROR, &quiet, b"context window"),
            ProviderError::Unavailable { .. }
        ));
        // A tokens-per-minute rate limit is waited out, not routed around for good.
        assert!(matches!(
            from_status(
                StatusCode::TOO_MANY_REQUESTS,
                &quiet,
                b"Rate limit reached: too many tokens per min; try again in 2s"
            ),
            ProviderError::RateLimited { .. }
        ));
    }

    #[test]
    fn statuses_map_to_the_errors_the_policies_act_on() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let body = br#"{"error": {"message": "slow down", "type": "rate_limit"}}"#;
        assert!(
            matches!(from_status(StatusCode::TOO_MANY_REQUESTS, &headers, body), ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7))
        );
        assert!(matches!(
            from_status(StatusCode::UNAUTHORIZED, &headers, body),
            ProviderError::Unauthorized {
                status: Some(401),
                ..
            }
        ));
        assert!(matches!(
            from_status(StatusCode::FORBIDDEN, &headers, body),
            ProviderError::Unauthorized {
                status: Some(403),
                ..
            }
        ));
        assert!(matches!(
            from_status(StatusCode::REQUEST_TIMEOUT, &headers, body),
            ProviderError::Timeout { .. }
        ));
        assert!(
            matches!(from_status(StatusCode::SERVICE_UNAVAILABLE, &headers, body), ProviderError::Unavailable { status: Some(503), ref reason } if reason == "slow down")
        );
        assert!(
            matches!(from_status(StatusCode::BAD_REQUEST, &headers, b"plain text"), ProviderError::BadRequest { status: Some(400), ref message } if message == "plain text")
        );
        assert!(
            matches!(from_status(StatusCode::NOT_FOUND, &HeaderMap::new(), b""), ProviderError::Unsupported { ref message, .. } if message == "no message")
        );
    }

    #[test]
    fn messages_are_bounded_and_redacted() {
        let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "x".repeat(5000));
        let ProviderError::BadRequest { message, .. } =
            from_status(StatusCode::BAD_REQUEST, &HeaderMap::new(), long.as_bytes())
        else {
            panic!()
        };
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        let leaky =
            br#"{"error": {"message": "Incorrect API key provided: sk-abcdefghijklmnopqrstuvwx"}}"#;
        let ProviderError::Unauthorized { message, .. } =
            from_status(StatusCode::UNAUTHORIZED, &HeaderMap::new(), leaky)
        else {
            panic!()
        };
        assert!(
            !message.contains("sk-abcdefghijklmnopqrstuvwx"),
            "{message}"
        );
    }

    #[test]
    fn a_key_across_the_cut_is_masked_whole() {
        let key = "sk-canary-0123456789abcdefghij";
        let body = format!(
            r#"{{"error": {{"message": "{}{key} is wrong"}}}}"#,
            "x".repeat(MAX_MESSAGE_CHARS - 10)
        );
        let ProviderError::Unauthorized { message, .. } =
            from_status(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body.as_bytes())
        else {
            panic!()
        };
        assert!(!message.contains("sk-canary-0123"), "{message}");
    }

    #[test]
    fn stream_error_events_map_to_errors() {
        let rate = serde_json::json!({"message": "slow", "type": "rate_limit_error", "code": 429});
        assert!(matches!(
            from_stream_error(&rate),
            ProviderError::RateLimited { .. }
        ));
        let bad = serde_json::json!({"message": "too long", "type": "invalid_request_error", "code": 400});
        assert!(matches!(
            from_stream_error(&bad),
            ProviderError::BadRequest {
                status: Some(400),
                ..
            }
        ));
        let other = serde_json::json!({"message": "engine died"});
        assert!(matches!(
            from_stream_error(&other),
            ProviderError::Unavailable { .. }
        ));
    }

    #[test]
    fn retry_after_as_seconds_fraction_or_date() {
        let header = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
            h
        };
        assert_eq!(retry_after(&header("120")), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(&header("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&header("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(retry_after(&header("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
        let mut both = header("120");
        both.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&both), Some(Duration::from_millis(1500)));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&future).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
    }
}
