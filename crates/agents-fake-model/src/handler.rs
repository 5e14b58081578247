//! One HTTP request: route it, record it, then act out its behaviour.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::behavior::Behavior;
use crate::canned::{Agent, CANNED, estimate_tokens};
use crate::server::{RecordedRequest, Shared};
use crate::sse::{DONE, Envelope, Usage};

/// Request bodies larger than this get a 413: the fake holds whole bodies in memory.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// The model named in answers to requests that name none.
const DEFAULT_MODEL: &str = r#""fake-model""#;

/// The body of every response.
pub(crate) type Body = UnsyncBoxBody<Bytes, Abort>;

/// Ends the connection without (the rest of) a response. Returned from the service, hyper
/// closes the connection without writing anything; yielded by a body, it cuts the body short.
#[derive(Debug)]
pub(crate) struct Abort;

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the fake model closed the connection on purpose")
    }
}

impl std::error::Error for Abort {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Models,
    Health,
    NotFound,
}

fn route(method: &Method, path: &str) -> Route {
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Route::Chat,
        (&Method::GET, "/v1/models") => Route::Models,
        (&Method::GET, "/health") => Route::Health,
        _ => Route::NotFound,
    }
}

/// What answering a chat request needs to know about it, read before its body moves into the
/// log.
#[derive(Debug)]
struct ChatRequest {
    /// The model as a JSON string literal.
    model: Cow<'static, str>,
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
    agent: Option<Agent>,
}

impl ChatRequest {
    fn of(body: &Value) -> Self {
        let model = match body.get("model").and_then(Value::as_str) {
            Some(model) => Cow::Owned(Value::from(model).to_string()),
            None => Cow::Borrowed(DEFAULT_MODEL),
        };
        Self {
            model,
            stream: body.get("stream").and_then(Value::as_bool) == Some(true),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true),
            prompt_tokens: estimate_tokens(prompt_chars(body)),
            agent: Agent::of_request(body),
        }
    }
}

/// The characters of every message's text content.
fn prompt_chars(body: &Value) -> usize {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    let text_chars = |content: &Value| match content {
        Value::String(text) => text.chars().count(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(|t| t.chars().count())
            .sum(),
        _ => 0,
    };
    messages
        .iter()
        .filter_map(|m| m.get("content"))
        .map(text_chars)
        .sum()
}

/// The service function of every connection.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Abort> {
    let (parts, body) = request.into_parts();
    let route = route(&parts.method, parts.uri.path());
    let head = &parts;
    let log = |body: Value| {
        move || RecordedRequest {
            method: head.method.as_str().to_owned(),
            path: head.uri.path().to_owned(),
            headers: head
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        }
    };
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            shared.record(log(Value::Null), false);
            return Ok(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than the fake model accepts (32 MiB).",
            ));
        }
        // The client went away mid-body: nobody is left to answer.
        Err(_) => return Err(Abort),
    };
    let json = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    match route {
        Route::Chat => match json {
            Some(json) if json.is_object() => {
                let chat = ChatRequest::of(&json);
                let (seq, behavior) = shared.record(log(json), true);
                match behavior {
                    Some(behavior) => {
                        let _answering = Answering::new(&shared);
                        act(&behavior, &chat, seq, &shared.stop).await
                    }
                    None => Err(Abort),
                }
            }
            json => {
                shared.record(log(json.unwrap_or(Value::Null)), false);
                Ok(error(
                    StatusCode::BAD_REQUEST,
                    "We could not parse the JSON body of your request: it must be a JSON object.",
                ))
            }
        },
        Route::Models => {
            shared.record(log(json.unwrap_or(Value::Null)), false);
            Ok(full(
                StatusCode::OK,
                "application/json",
                Bytes::from_static(
                    br#"{"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"agents-fake-model"}]}"#,
                ),
            ))
        }
        Route::Health => {
            shared.record(log(json.unwrap_or(Value::Null)), false);
            Ok(full(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"ok"),
            ))
        }
        Route::NotFound => {
            let message = format!("Invalid URL ({} {})", parts.method, parts.uri.path());
            shared.record(log(json.unwrap_or(Value::Null)), false);
            Ok(error(StatusCode::NOT_FOUND, &message))
        }
    }
}

/// Counts a chat request in [`Shared::answering`] while it lives: hyper drops the request's
/// future when the client closes the connection, and the count goes down with it.
struct Answering<'a>(&'a Shared);

impl<'a> Answering<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared
            .answering
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0
            .answering
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Acts out a behaviour for one chat request.
async fn act(
    behavior: &Behavior,
    chat: &ChatRequest,
    seq: u64,
    stop: &CancellationToken,
) -> Result<Response<Body>, Abort> {
    let mut behavior = behavior;
    while let Behavior::Delay { delay, then } = behavior {
        tokio::select! {
            () = stop.cancelled() => return Err(Abort),
            () = tokio::time::sleep(*delay) => {}
        }
        behavior = then;
    }
    let envelope = Envelope {
        id: seq,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: chat.model.clone(),
    };
    match behavior {
        Behavior::Answer => {
            let answer = CANNED.for_agent(chat.agent);
            Ok(text(
                &envelope,
                chat,
                &answer.text,
                &answer.escaped,
                answer.tokens,
            ))
        }
        Behavior::Reply { text: reply } => {
            let escaped = Value::from(reply.as_str()).to_string();
            let tokens = estimate_tokens(reply.chars().count());
            Ok(text(&envelope, chat, reply, &escaped, tokens))
        }
        Behavior::Status {
            code,
            retry_after,
            message,
        } => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = error(status, message);
            if let Some(value) = retry_after
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            Ok(response)
        }
        Behavior::Drop => Err(Abort),
        Behavior::Hang => {
            stop.cancelled().await;
            Err(Abort)
        }
        Behavior::Malformed { body } => Ok(full(
            StatusCode::OK,
            "application/json",
            Bytes::from(body.clone()),
        )),
        Behavior::Stream {
            pieces,
            gap,
            stall_after,
        } => Ok(stream_pieces(
            &envelope,
            chat,
            pieces,
            *gap,
            *stall_after,
            stop,
        )),
        Behavior::MalformedStream { data } => {
            let mut body = Vec::with_capacity(data.len() + 24);
            body.extend_from_slice(b"data: ");
            body.extend_from_slice(data.as_bytes());
            body.extend_from_slice(b"\n\n");
            body.extend_from_slice(DONE);
            Ok(sse(full_body(Bytes::from(body))))
        }
        // Unreachable: the loop above unwrapped every delay.
        Behavior::Delay { .. } => Err(Abort),
    }
}

/// A text answer, whole or streamed as the request asked.
fn text(
    envelope: &Envelope,
    chat: &ChatRequest,
    text: &str,
    escaped: &str,
    tokens: u64,
) -> Response<Body> {
    let usage = Usage {
        prompt: chat.prompt_tokens,
        completion: tokens,
    };
    if chat.stream {
        sse(full_body(envelope.stream(text, usage, chat.include_usage)))
    } else {
        full(
            StatusCode::OK,
            "application/json",
            envelope.completion(escaped, usage),
        )
    }
}

/// The events of [`Behavior::Stream`], sent one by one with `gap` between pieces.
fn stream_pieces(
    envelope: &Envelope,
    chat: &ChatRequest,
    pieces: &[String],
    gap: Duration,
    stall_after: Option<usize>,
    stop: &CancellationToken,
) -> Response<Body> {
    let sent = stall_after.map_or(pieces.len(), |n| n.min(pieces.len()));
    let mut events: Vec<(Duration, Bytes)> = Vec::with_capacity(sent + 2);
    for (i, piece) in pieces[..sent].iter().enumerate() {
        let mut event = Vec::with_capacity(piece.len() + 200);
        envelope.push_delta(&mut event, i == 0, piece);
        let wait = if i == 0 { Duration::ZERO } else { gap };
        events.push((wait, Bytes::from(event)));
    }
    if stall_after.is_none() {
        let completion = estimate_tokens(pieces.iter().map(|p| p.chars().count()).sum());
        let mut event = Vec::with_capacity(300);
        envelope.push_finish(
            &mut event,
            Some(Usage {
                prompt: chat.prompt_tokens,
                completion,
            }),
        );
        event.extend_from_slice(DONE);
        events.push((Duration::ZERO, Bytes::from(event)));
    }
    let state = Events {
        events: events.into_iter(),
        stall: stall_after.is_some(),
        stop: stop.clone(),
        done: false,
    };
    let body = stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let Some((wait, event)) = state.events.next() else {
            if !state.stall {
                return None;
            }
            // Stall: the stream stays open, silent, until the client or the server gives up.
            state.stop.cancelled().await;
            state.done = true;
            return Some((Err(Abort), state));
        };
        if !wait.is_zero() {
            tokio::select! {
                () = state.stop.cancelled() => {
                    state.done = true;
                    return Some((Err(Abort), state));
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        Some((Ok(Frame::data(event)), state))
    });
    sse(StreamBody::new(body).boxed_unsync())
}

/// Where a [`Behavior::Stream`] body is.
#[derive(Debug)]
struct Events {
    events: std::vec::IntoIter<(Duration, Bytes)>,
    stall: bool,
    stop: CancellationToken,
    done: bool,
}

fn full_body(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn full(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(full_body(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn sse(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    response
}

/// An OpenAI-style error response.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let body = json!({
        "error": {"message": message, "type": kind, "param": null, "code": null}
    });
    full(status, "application/json", Bytes::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::POST, "/v1/chat/completions"), Route::Chat);
        assert_eq!(route(&Method::GET, "/v1/chat/completions"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/v1/models"), Route::Models);
        assert_eq!(route(&Method::GET, "/health"), Route::Health);
        assert_eq!(route(&Method::POST, "/v1/completions"), Route::NotFound);
    }

    #[test]
    fn a_chat_request_is_read_for_what_the_answer_needs() {
        let body = json!({
            "model": "qwen \"coder\"",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "You are a technical writer."},
                {"role": "user", "content": [{"type": "text", "text": "abcd"}]}
            ]
        });
        let chat = ChatRequest::of(&body);
        assert_eq!(chat.model, r#""qwen \"coder\"""#);
        assert!(chat.stream);
        assert!(chat.include_usage);
        assert_eq!(chat.prompt_tokens, (27 + 4) / 4);
        assert_eq!(chat.agent, Some(Agent::Documentation));

        let bare = ChatRequest::of(&json!({}));
        assert_eq!(bare.model, DEFAULT_MODEL);
        assert!(!bare.stream && !bare.include_usage);
        assert_eq!(bare.prompt_tokens, 1);
    }

    #[test]
    fn error_bodies_are_openai_shaped() {
        let response = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
