//! The OpenAI chat-completions wire format: what we send and the parts of the answers we read.

use std::sync::Arc;

use agents_core::{GenerateRequest, ResponseFormat, Role};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::JsonMode;
use super::encoded::Encoded;

/// The request body.
#[derive(Debug, Serialize)]
pub(super) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireFormat<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
}

/// `response_format`, borrowing the request's schema: building it as a `Value` copied the whole
/// schema tree on every call.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat<'a> {
    JsonSchema { json_schema: WireSchema<'a> },
    JsonObject,
}

#[derive(Debug, Serialize)]
struct WireSchema<'a> {
    name: &'a str,
    schema: &'a Value,
    strict: bool,
}

#[derive(Debug, Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Content<'a>,
}

/// A message's text, or the same text already encoded as a JSON string (see `encoded`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Encoded(&'a RawValue),
}

impl<'a> ChatRequest<'a> {
    /// The body for `request`; `encoded[i]`, when set, is message `i` already encoded.
    pub(super) fn new(
        request: &'a GenerateRequest,
        default_model: &'a str,
        json_mode: JsonMode,
        stream: bool,
        encoded: &'a [Option<Arc<Encoded>>],
    ) -> Self {
        let response_format = match (&request.response_format, json_mode) {
            (ResponseFormat::Text, _) | (_, JsonMode::Off) => None,
            (ResponseFormat::JsonSchema { name, schema }, JsonMode::JsonSchema) => {
                Some(WireFormat::JsonSchema {
                    json_schema: WireSchema {
                        name,
                        schema,
                        strict: false,
                    },
                })
            }
            _ => Some(WireFormat::JsonObject),
        };
        Self {
            model: request.model.as_deref().unwrap_or(default_model),
            messages: request
                .messages
                .iter()
                .enumerate()
                .map(|(i, m)| ChatMessage {
                    role: match m.role {
                        Role::System => "system",
                        Role::Assistant => "assistant",
                        _ => "user",
                    },
                    content: match encoded.get(i).and_then(Option::as_ref) {
                        Some(encoded) => Content::Encoded(encoded.json()),
                        None => Content::Text(&m.content),
                    },
                })
                .collect(),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stop: &request.stop,
            seed: request.seed,
            response_format,
            stream,
            stream_options: stream.then(|| json!({"include_usage": true})),
        }
    }
}

/// A non-streamed answer.
#[derive(Debug, Deserialize)]
pub(super) struct ChatResponse {
    #[serde(default)]
    pub(super) model: Option<String>,
    pub(super) choices: Vec<Choice>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    pub(super) message: AnswerMessage,
    /// Why the model stopped: `stop`, or `length`, `content_filter`, `tool_calls`.
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerMessage {
    #[serde(default)]
    pub(super) content: Option<String>,
}

/// Token counts as the server reports them.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) prompt_tokens: u64,
    #[serde(default)]
    pub(super) completion_tokens: u64,
}

/// One streamed chunk.
#[derive(Debug, Deserialize)]
pub(super) struct ChatChunk {
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(default)]
    pub(super) choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    /// Set when the server reports a failure inside the stream.
    #[serde(default)]
    pub(super) error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChunkChoice {
    #[serde(default)]
    pub(super) delta: Delta,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub(super) content: Option<String>,
}
