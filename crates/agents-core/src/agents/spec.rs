//! The run every built-in agent shares, written once.
//!
//! An agent is described by an [`AgentSpec`]: its types, its prompt, its token estimate and how
//! its output is assembled from the model's reply. [`SpecAgent`] runs any spec through the same
//! pipeline: limits, schema validation, code facts, prompt, provider call (cancellable,
//! deadline-bound), JSON extraction, reply validation, events.
//!
//! With a [`FactsAnalyzer`] the run is grounded: facts are computed before the prompt, the prompt
//! carries them, and the output takes its counts from them. When every provider fails (or none is
//! configured) and the input allows it, the answer is built from the facts alone and marked
//! `degraded`, so a model outage costs quality, not availability. Without an analyzer, or when the
//! analyzer fails, the run behaves as before: provider errors stay errors.

use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::{Either, select};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::{AgentContext, ExecutionMetadata, micros, millis};
use super::prompt::system_message;
use super::{AgentConfig, Capability, Language};
use crate::error::{AgentError, ProviderAttempt, ProviderError};
use crate::events::{AgentCompleted, AgentFailed, AgentStarted, DeferredEvent, EventPayload};
use crate::extract::extract_json_object;
use crate::facts::{CodeFacts, FactsAnalyzer};
use crate::provider::{GenerateRequest, Generation, Message, ResponseFormat};
use crate::redact::redact;
use crate::schema::{CompiledSchema, schema_of};

/// What makes one agent different from another.
pub(crate) trait AgentSpec: Send + Sync + 'static {
    /// The agent's id, e.g. `code-analysis`.
    const ID: &'static str;
    /// What it does.
    const CAPABILITY: Capability;
    /// One sentence for ListAgents.
    const DESCRIPTION: &'static str;
    /// Who the model is asked to be: the first line of the system message.
    const ROLE: &'static str;
    /// The input document.
    type Input: DeserializeOwned + JsonSchema + Send + Sync;
    /// What the model must answer.
    type Reply: DeserializeOwned + JsonSchema;
    /// What the agent returns.
    type Output: Serialize + JsonSchema;

    /// Checks the schema cannot express (e.g. a framework that fits the language).
    fn check(_input: &Self::Input) -> Result<(), AgentError> {
        Ok(())
    }
    /// The code to compute facts for, and its language.
    fn source(input: &Self::Input) -> (Language, &str);
    /// Whether the caller accepts an answer built from the facts alone when no model answers.
    fn allow_degraded(input: &Self::Input) -> bool;
    /// The conversation to send: `system` (the agent's system message, built once) and the
    /// user message for `input`; `facts`, when known, ground it.
    fn prompt(input: &Self::Input, system: &str, facts: Option<&CodeFacts>) -> Vec<Message>;
    /// Completion tokens this input probably needs.
    fn estimate_tokens(input: &Self::Input) -> u32;
    /// The caller's `max_tokens`, if set.
    fn requested_tokens(input: &Self::Input) -> Option<u32>;
    /// The caller's `seed`, if set.
    fn seed(input: &Self::Input) -> Option<u64>;
    /// The output, from the input, the validated reply and the facts when known.
    fn finish(input: Self::Input, reply: Self::Reply, facts: Option<&CodeFacts>) -> Self::Output;
    /// The output when no model answered: built from the facts alone, marked degraded with
    /// `reason`, valid against the output schema.
    fn offline(
        input: Self::Input,
        facts: &CodeFacts,
        reason: &str,
        config: &AgentConfig,
    ) -> Self::Output;
}

/// An [`AgentSpec`] with its compiled schemas and config.
pub(crate) struct SpecAgent<S> {
    config: AgentConfig,
    analyzer: Option<Arc<dyn FactsAnalyzer>>,
    input: CompiledSchema,
    reply: CompiledSchema,
    /// The reply schema as every request sends it: shared, not copied per request (it was a
    /// deep copy of a JSON tree per call, and again per retry and fallback attempt).
    reply_shared: Arc<Value>,
    /// The system message (role and reply schema), built once: it is the same for every call,
    /// and formatting it per call copied the whole schema text again.
    system: String,
    output: Value,
    spec: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for SpecAgent<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecAgent")
            .field("config", &self.config)
            .field("analyzer", &self.analyzer)
            .finish_non_exhaustive()
    }
}

impl<S: AgentSpec> SpecAgent<S> {
    pub(crate) fn new(config: AgentConfig) -> Result<Self, AgentError> {
        let internal = |message| AgentError::Internal { message };
        let reply = CompiledSchema::for_type::<S::Reply>().map_err(internal)?;
        let reply_shared = Arc::new(reply.document().clone());
        let reply_text = serde_json::to_string(reply.document()).unwrap_or_default();
        let system = system_message(S::ROLE, &reply_text);
        Ok(Self {
            config,
            analyzer: None,
            input: CompiledSchema::for_type::<S::Input>().map_err(internal)?,
            reply,
            reply_shared,
            system,
            output: schema_of::<S::Output>(),
            spec: PhantomData,
        })
    }

    /// Grounds every run in the facts `analyzer` computes.
    pub(crate) fn with_facts(mut self, analyzer: Arc<dyn FactsAnalyzer>) -> Self {
        self.analyzer = Some(analyzer);
        self
    }

    pub(crate) fn input_schema(&self) -> &Value {
        self.input.document()
    }

    pub(crate) fn reply_schema(&self) -> &Value {
        self.reply.document()
    }

    pub(crate) fn output_schema(&self) -> &Value {
        &self.output
    }

    /// Validates the input document and decodes it.
    pub(crate) fn parse_input(&self, input: Value) -> Result<S::Input, AgentError> {
        if !input.is_object() {
            return Err(AgentError::invalid("", "the input must be a JSON object"));
        }
        // Refuse oversized code before any schema or prompt work is spent on it.
        if let Some(code) = input.get("source_code").and_then(Value::as_str) {
            let limit = self.config.max_source_bytes;
            if code.len() > limit {
                return Err(AgentError::invalid(
                    "/source_code",
                    format!(
                        "source_code is {} bytes, over the limit of {limit} bytes; send a smaller file or raise max_source_bytes",
                        code.len()
                    ),
                ));
            }
        }
        if let Some(error) = AgentError::from_violations(self.input.violations(&input)) {
            return Err(error);
        }
        let typed: S::Input = serde_json::from_value(input).map_err(|e| {
            // Unreachable while the schema and the type agree (a test checks they do); the
            // serde message is left out because it can quote the value.
            AgentError::invalid(
                "",
                format!(
                    "the input does not match the input schema ({:?})",
                    e.classify()
                ),
            )
        })?;
        S::check(&typed)?;
        Ok(typed)
    }

    /// The provider request for a validated input.
    pub(crate) fn request(
        &self,
        ctx: &AgentContext,
        input: &S::Input,
        facts: Option<&CodeFacts>,
    ) -> GenerateRequest {
        let budget = self
            .config
            .token_budget(S::requested_tokens(input), S::estimate_tokens(input));
        GenerateRequest::new(S::prompt(input, &self.system, facts))
            .with_max_tokens(budget)
            .with_temperature(self.config.temperature)
            .with_seed(S::seed(input))
            .with_response_format(ResponseFormat::JsonSchema {
                name: S::ID.replace('-', "_"),
                schema: Arc::clone(&self.reply_shared),
            })
            .with_deadline(ctx.deadline)
            .with_trace(ctx.trace.child())
    }

    /// Reads the output from a model's answer, in form `F`.
    pub(crate) fn parse_reply<F: OutputForm>(
        &self,
        input: S::Input,
        text: &str,
        facts: Option<&CodeFacts>,
    ) -> Result<F::Output, AgentError> {
        let reply = extract_json_object(text).map_err(|e| AgentError::OutputInvalid {
            path: String::new(),
            message: e.to_string(),
        })?;
        let reply = Value::Object(reply);
        if let Some(first) = self.reply.violations(&reply).into_iter().next() {
            return Err(AgentError::OutputInvalid {
                path: first.path,
                message: first.message,
            });
        }
        let typed: S::Reply =
            serde_json::from_value(reply).map_err(|e| AgentError::OutputInvalid {
                path: String::new(),
                message: format!(
                    "the answer does not match the reply schema ({:?})",
                    e.classify()
                ),
            })?;
        F::encode(&S::finish(input, typed, facts))
    }

    /// The facts of the input's code: `None` without an analyzer, `Err` (redacted) saying why
    /// the analyzer gave none. The analyzer decides where it runs
    /// ([`FactsAnalyzer::analyze_in_run`]); the run's cancellation ends the wait for it (the
    /// outer error).
    async fn facts(
        &self,
        ctx: &AgentContext,
        input: &S::Input,
    ) -> Result<Option<Result<CodeFacts, String>>, AgentError> {
        let Some(analyzer) = self.analyzer.as_ref() else {
            return Ok(None);
        };
        let (language, source) = S::source(input);
        let analysis = analyzer.analyze_in_run(language, source, ctx.deadline);
        let cancelled = std::pin::pin!(ctx.cancel.cancelled());
        match futures_util::future::select(analysis, cancelled).await {
            futures_util::future::Either::Left((facts, _)) => {
                Ok(Some(facts.map_err(|e| redact(&e.to_string()).into_owned())))
            }
            futures_util::future::Either::Right(_) => Err(AgentError::Cancelled),
        }
    }

    /// Runs the agent, emitting its start and its end, with the output in form `F`.
    pub(crate) async fn execute<F: OutputForm>(
        &self,
        ctx: &AgentContext,
        input: Value,
    ) -> Result<(F::Output, ExecutionMetadata), AgentError> {
        let started = Instant::now();
        let input_bytes = input
            .get("source_code")
            .and_then(Value::as_str)
            .map_or(0, str::len);
        self.emit(
            ctx,
            AgentStarted {
                agent_id: S::ID.to_owned(),
                request_id: ctx.request_id.clone(),
                tenant: ctx.tenant.clone(),
                input_bytes: input_bytes as u64,
            },
        );
        let result = self.run::<F>(ctx, input, started).await;
        match &result {
            Ok((_, metadata)) => self.emit(
                ctx,
                AgentCompleted {
                    agent_id: S::ID.to_owned(),
                    request_id: ctx.request_id.clone(),
                    provider: metadata.provider.clone(),
                    fallbacks: u32::try_from(metadata.fallbacks.len()).unwrap_or(u32::MAX),
                    prompt_tokens: metadata.usage.prompt_tokens,
                    completion_tokens: metadata.usage.completion_tokens,
                    latency_ms: metadata.latency_ms,
                    degraded: metadata.degraded,
                },
            ),
            Err(error) => self.emit(
                ctx,
                AgentFailed {
                    agent_id: S::ID.to_owned(),
                    request_id: ctx.request_id.clone(),
                    error_kind: error.kind().as_str().to_owned(),
                    message: error.to_string(),
                    latency_ms: millis(started.elapsed()),
                },
            ),
        }
        result
    }

    async fn run<F: OutputForm>(
        &self,
        ctx: &AgentContext,
        input: Value,
        started: Instant,
    ) -> Result<(F::Output, ExecutionMetadata), AgentError> {
        let input = self.parse_input(input)?;
        if ctx.cancel.is_cancelled() {
            return Err(AgentError::Cancelled);
        }
        if ctx.deadline_passed() {
            return Err(AgentError::DeadlineExceeded);
        }
        // A failed analysis never fails the run: the agent carries on ungrounded and says so.
        let (facts, facts_error) = match self.facts(ctx, &input).await? {
            None => (None, None),
            Some(Ok(facts)) => (Some(facts), None),
            Some(Err(reason)) => (None, Some(reason)),
        };
        let mut metadata = ExecutionMetadata::new(S::ID, ctx);
        metadata.grounded = facts.is_some();
        metadata.facts_error = facts_error;
        let request = self.request(ctx, &input, facts.as_ref());
        let provider_started = Instant::now();
        let generation = match self.call_provider(ctx, request).await {
            Ok(generation) => generation,
            Err(AgentError::AllProvidersFailed { attempts }) => {
                let (Some(facts), true) = (facts, S::allow_degraded(&input)) else {
                    return Err(AgentError::AllProvidersFailed { attempts });
                };
                let reason = degraded_reason(&attempts);
                let output = F::encode(&S::offline(input, &facts, &reason, &self.config))?;
                metadata.fallbacks = fallbacks("", attempts);
                let (waited, elapsed) = (provider_started.elapsed(), started.elapsed());
                metadata.provider_latency_ms = millis(waited);
                metadata.latency_ms = millis(elapsed);
                metadata.provider_latency_us = micros(waited);
                metadata.latency_us = micros(elapsed);
                metadata.degraded = true;
                metadata.degraded_reason = Some(reason);
                return Ok((output, metadata));
            }
            Err(error) => return Err(error),
        };
        let output = self.parse_reply::<F>(input, &generation.text, facts.as_ref())?;
        metadata.fallbacks = fallbacks(&generation.provider_id, generation.failed_attempts);
        metadata.provider = Some(generation.provider_id);
        metadata.model = Some(generation.model);
        metadata.usage = generation.usage;
        let elapsed = started.elapsed();
        metadata.provider_latency_ms = millis(generation.latency);
        metadata.latency_ms = millis(elapsed);
        metadata.provider_latency_us = micros(generation.latency);
        // 0 means "not measured": a measured exchange under a microsecond still counts as 1.
        metadata.upstream_latency_us = generation
            .upstream_latency
            .map_or(0, |upstream| micros(upstream).max(1));
        metadata.latency_us = micros(elapsed);
        Ok((output, metadata))
    }

    /// Calls the provider, stopping at once when the caller cancels.
    async fn call_provider(
        &self,
        ctx: &AgentContext,
        request: GenerateRequest,
    ) -> Result<Generation, AgentError> {
        let generate = pin!(ctx.provider.generate(request));
        let cancelled = pin!(ctx.cancel.cancelled());
        let result = match select(generate, cancelled).await {
            Either::Left((result, _)) => result,
            // Dropping the provider future here is what stops its HTTP call.
            Either::Right(((), _)) => return Err(AgentError::Cancelled),
        };
        result.map_err(|error| match error {
            ProviderError::Cancelled => AgentError::Cancelled,
            _ if ctx.deadline_passed() => AgentError::DeadlineExceeded,
            ProviderError::AllFailed { attempts } => AgentError::AllProvidersFailed { attempts },
            error => AgentError::AllProvidersFailed {
                attempts: vec![ProviderAttempt::new(ctx.provider.id(), error)],
            },
        })
    }

    /// Emits `payload` deferred: the sink builds the envelope (JSON data, redaction, id), so
    /// a queueing sink does that work off the request path.
    fn emit<P: EventPayload + Send + 'static>(&self, ctx: &AgentContext, payload: P) {
        let event = DeferredEvent::new(format!("/agents/{}", S::ID), payload)
            .with_subject(ctx.request_id.clone())
            .with_trace_context(&ctx.trace);
        ctx.events.emit_deferred(event);
    }
}

/// The form a run hands its output back in: a JSON tree ([`Tree`], for `Agent::execute`) or
/// JSON text ([`Text`], for `Agent::execute_json`). Text is written straight from the typed
/// output: a server that only writes the JSON to the wire skips building a tree (an allocation
/// per key and string) and walking it again.
pub(crate) trait OutputForm {
    type Output: Send;
    fn encode<T: Serialize>(output: &T) -> Result<Self::Output, AgentError>;
}

/// The output as a [`Value`].
pub(crate) struct Tree;

impl OutputForm for Tree {
    type Output = Value;

    fn encode<T: Serialize>(output: &T) -> Result<Value, AgentError> {
        serde_json::to_value(output).map_err(serialize_failed)
    }
}

/// The output as compact JSON text: the same JSON value as the [`Tree`] form (a test holds
/// them equal), with object keys in the output types' declaration order. (A tree's keys come
/// out sorted, unless serde_json's `preserve_order` is on; the output types have no maps, so
/// the text's order is fixed.)
pub(crate) struct Text;

impl OutputForm for Text {
    type Output = String;

    fn encode<T: Serialize>(output: &T) -> Result<String, AgentError> {
        serde_json::to_string(output).map_err(serialize_failed)
    }
}

fn serialize_failed(e: serde_json::Error) -> AgentError {
    AgentError::Internal {
        message: format!("serializing the output failed: {e}"),
    }
}

/// Why an answer is degraded, for the output and the metadata: which providers failed and how,
/// never their messages (those can quote upstream bodies).
pub(crate) fn degraded_reason(attempts: &[ProviderAttempt]) -> String {
    if attempts.is_empty() {
        return "no model provider is configured; this answer was built from code facts alone"
            .to_owned();
    }
    let mut failures: Vec<String> = Vec::new();
    for attempt in attempts {
        let failure = format!("{} ({})", attempt.provider, attempt.error.kind());
        if !failures.contains(&failure) {
            failures.push(failure);
        }
    }
    let reason = format!(
        "every model provider failed: {}; this answer was built from code facts alone",
        failures.join(", ")
    );
    redact(&reason).into_owned()
}

/// The providers given up on before `answered` answered: each failed provider once, in the order
/// of its first failure. `failed_attempts` also holds retries, so a provider that was retried and
/// then answered is not a fallback, and one retried before the chain moved on counts once.
fn fallbacks(answered: &str, failed_attempts: Vec<ProviderAttempt>) -> Vec<String> {
    let mut providers: Vec<String> = Vec::new();
    for attempt in failed_attempts {
        if attempt.provider != answered && !providers.contains(&attempt.provider) {
            providers.push(attempt.provider);
        }
    }
    providers
}
