//! The three agents end to end against a scripted model: input validation with JSON paths,
//! prompts, token budgets, reply extraction and validation, errors, events and metadata.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agents_core::{
    Agent, AgentConfig, AgentContext, AgentError, CancellationToken, CodeAnalysisAgent,
    DocumentationAgent, GenerateRequest, Generation, MemorySink, Provider, ProviderAttempt,
    ProviderError, ProviderHealth, ResponseFormat, Role, TestGenerationAgent, TraceContext, Usage,
    builtin_agents,
};
use serde_json::{Value, json};

/// The one thing these tests fake: the model. It answers with a scripted reply and records
/// every request it was sent.
#[derive(Debug)]
struct ScriptedModel {
    reply: Result<String, ProviderError>,
    failed_before: Vec<ProviderAttempt>,
    requests: Mutex<Vec<GenerateRequest>>,
}

impl ScriptedModel {
    fn answering(reply: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            reply: Ok(reply.into()),
            failed_before: Vec::new(),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn failing(error: ProviderError) -> Arc<Self> {
        Arc::new(Self {
            reply: Err(error),
            failed_before: Vec::new(),
            requests: Mutex::new(Vec::new()),
        })
    }

    fn last_request(&self) -> GenerateRequest {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the model was called")
    }

    fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Provider for ScriptedModel {
    fn id(&self) -> &str {
        "scripted"
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        self.requests.lock().unwrap().push(request);
        let text = self.reply.clone()?;
        Ok(Generation::new("scripted", "test-model", text)
            .with_usage(Usage {
                prompt_tokens: 120,
                completion_tokens: 80,
            })
            .with_latency(Duration::from_millis(5))
            .with_failed_attempts(self.failed_before.clone()))
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

/// A model that never answers: only cancellation or a deadline ends a call to it.
#[derive(Debug)]
struct SilentModel;

#[async_trait::async_trait]
impl Provider for SilentModel {
    fn id(&self) -> &str {
        "silent"
    }

    async fn generate(&self, _: GenerateRequest) -> Result<Generation, ProviderError> {
        std::future::pending().await
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Unhealthy {
            reason: "never answers".into(),
        }
    }
}

const RUST_CODE: &str = "pub fn largest<T: PartialOrd + Copy>(items: &[T]) -> Option<T> {\n    let mut best = *items.first()?;\n    for &item in items { if item > best { best = item; } }\n    Some(best)\n}\n// a `backtick` and a fence: ```\n";

fn analysis_reply() -> Value {
    json!({
        "suggestions": [
            {"type": "improvement", "message": "Use iter().copied().fold", "line": 3, "severity": "low", "category": "maintainability"},
            {"type": "warning", "message": "NaN makes the result depend on order", "line": 3, "severity": "high", "category": "correctness"}
        ],
        "complexity": {"cyclomatic": 3, "cognitive": 2, "maintainability": "good"},
        "security": {"vulnerabilities": [], "risk_level": "none"},
        "performance": {"bottlenecks": [{"type": "cpu", "impact": "low", "description": "linear scan"}], "memory_usage": "low", "algorithmic_complexity": "O(n)"},
        "confidence": 0.8
    })
}

fn documentation_reply() -> Value {
    json!({
        "sections": [
            {"title": "largest", "type": "function", "content": "Returns the largest item of a slice.",
             "examples": ["assert_eq!(largest(&[1, 3, 2]), Some(3));"],
             "parameters": [{"name": "items", "type": "&[T]", "description": "the items"}],
             "return_type": "Option<T>"},
            {"title": "Overview", "type": "overview", "content": "One generic helper."}
        ],
        "confidence": 0.9
    })
}

fn tests_reply() -> Value {
    json!({
        "tests": [
            {"name": "largest_of_three", "code": "assert_eq!(largest(&[1, 3, 2]), Some(3));", "type": "positive"},
            {"name": "largest_of_none", "code": "assert_eq!(largest::<i32>(&[]), None);", "type": "edge"}
        ],
        "imports": ["use super::*;"],
        "coverage": {"estimated": 90, "branches": ["empty slice", "larger item"], "uncovered_paths": []},
        "confidence": 0.7
    })
}

fn fenced(value: &Value) -> String {
    format!(
        "Here is the result:\n```json\n{}\n```\nAnything else?",
        serde_json::to_string_pretty(value).unwrap()
    )
}

fn run<A: Agent>(
    agent: &A,
    model: Arc<ScriptedModel>,
    input: Value,
) -> Result<agents_core::AgentOutput, AgentError> {
    let ctx = AgentContext::new(model);
    futures_executor::block_on(agent.execute(&ctx, input))
}

fn agents() -> (CodeAnalysisAgent, DocumentationAgent, TestGenerationAgent) {
    let config = AgentConfig::default();
    (
        CodeAnalysisAgent::new(config.clone()).unwrap(),
        DocumentationAgent::new(config.clone()).unwrap(),
        TestGenerationAgent::new(config).unwrap(),
    )
}

fn assert_valid_against(schema: &Value, document: &Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "output does not match its schema: {errors:?}"
    );
}

#[test]
fn code_analysis_accepts_valid_input_and_returns_valid_output() {
    let (agent, ..) = agents();
    let model = ScriptedModel::answering(fenced(&analysis_reply()));
    let input = json!({
        "source_code": RUST_CODE, "language": "rust", "analysis_type": "security",
        "focus": ["security", "complexity"], "severity": "low", "include_metrics": true,
        "include_suggestions": true, "seed": 7, "max_tokens": 900
    });
    let done = run(&agent, model.clone(), input).unwrap();
    assert_valid_against(agent.output_schema(), &done.output);
    assert_eq!(done.output["suggestions"].as_array().unwrap().len(), 2);
    // Complexity comes from code facts only; this agent has none, and the model's is ignored.
    assert!(done.output.get("complexity").is_none());
    assert_eq!(done.output["degraded"], false);
    assert!(!done.metadata.grounded && !done.metadata.degraded);

    let request = model.last_request();
    assert_eq!(request.max_tokens, Some(900));
    assert_eq!(request.seed, Some(7));
    assert_eq!(request.temperature, Some(0.2));
    assert!(
        matches!(&request.response_format, ResponseFormat::JsonSchema { name, .. } if name == "code_analysis")
    );
    assert_eq!(request.messages[0].role, Role::System);
    assert_eq!(request.messages[1].role, Role::User);

    assert_eq!(done.metadata.agent_id, "code-analysis");
    assert_eq!(done.metadata.provider.as_deref(), Some("scripted"));
    assert_eq!(done.metadata.model.as_deref(), Some("test-model"));
    assert_eq!(done.metadata.usage.total(), 200);
    assert_eq!(done.metadata.provider_latency_ms, 5);
    assert_eq!(done.metadata.provider_latency_us, 5_000);
    assert!(done.metadata.latency_us >= done.metadata.latency_ms * 1_000);
    assert_eq!(done.metadata.trace_id.len(), 32);
}

/// `execute_json` writes the text straight from the typed output; it must be the JSON of what
/// `execute` returns (the same value; keys in declaration order), with the same metadata and
/// the same events.
#[test]
fn execute_json_is_the_json_of_execute() {
    let (code, docs, tests) = agents();
    let cases: [(&dyn Agent, Value, Value); 3] = [
        (
            &code,
            analysis_reply(),
            json!({"source_code": RUST_CODE, "language": "rust", "include_metrics": true}),
        ),
        (
            &docs,
            documentation_reply(),
            json!({"source_code": RUST_CODE, "language": "rust"}),
        ),
        (
            &tests,
            tests_reply(),
            json!({"source_code": RUST_CODE, "language": "rust"}),
        ),
    ];
    for (agent, reply, input) in cases {
        let events = MemorySink::new();
        let ctx = AgentContext::new(ScriptedModel::answering(fenced(&reply)))
            .with_events(Arc::new(events.clone()));
        let tree = futures_executor::block_on(agent.execute(&ctx, input.clone())).unwrap();
        let text = futures_executor::block_on(agent.execute_json(&ctx, input)).unwrap();
        let written: Value = serde_json::from_str(&text.output_json).unwrap();
        assert_eq!(written, tree.output, "{}", agent.id());
        assert_valid_against(agent.output_schema(), &written);
        assert_eq!(text.metadata.provider, tree.metadata.provider);
        assert_eq!(text.metadata.usage, tree.metadata.usage);
        let types = events.types();
        assert_eq!(types[..2], types[2..], "{}: {types:?}", agent.id());
    }
    // Keys come in declaration order (code-analysis declares `suggestions` first and
    // `degraded` after `confidence`), not sorted: the text is written from the typed output.
    let ctx = AgentContext::new(ScriptedModel::answering(fenced(&analysis_reply())));
    let input = json!({"source_code": RUST_CODE, "language": "rust"});
    let text = futures_executor::block_on(code.execute_json(&ctx, input)).unwrap();
    assert!(
        text.output_json.starts_with(r#"{"suggestions":["#),
        "{}",
        text.output_json
    );
    assert!(
        text.output_json
            .ends_with(r#""confidence":0.8,"degraded":false}"#)
    );
}

/// An agent that implements only `execute`: `execute_json` comes from the trait's default.
#[derive(Debug)]
struct OnlyExecute(CodeAnalysisAgent);

#[async_trait::async_trait]
impl Agent for OnlyExecute {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn capability(&self) -> agents_core::Capability {
        self.0.capability()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    fn input_schema(&self) -> &Value {
        self.0.input_schema()
    }
    fn output_schema(&self) -> &Value {
        self.0.output_schema()
    }
    fn validate_input(&self, input: &Value) -> Result<(), AgentError> {
        self.0.validate_input(input)
    }
    async fn execute(
        &self,
        ctx: &AgentContext,
        input: Value,
    ) -> Result<agents_core::AgentOutput, AgentError> {
        self.0.execute(ctx, input).await
    }
}

/// An agent written outside the crate, returning its own output: `AgentOutput` and
/// `ExecutionMetadata` are `#[non_exhaustive]`, so without their constructors such an agent
/// could not return `Ok` at all.
#[derive(Debug)]
struct Outside(CodeAnalysisAgent);

#[async_trait::async_trait]
impl Agent for Outside {
    fn id(&self) -> &str {
        "outside"
    }
    fn capability(&self) -> agents_core::Capability {
        agents_core::Capability::CodeAnalysis
    }
    fn description(&self) -> &str {
        "answers without a model"
    }
    fn input_schema(&self) -> &Value {
        self.0.input_schema()
    }
    fn output_schema(&self) -> &Value {
        self.0.output_schema()
    }
    fn validate_input(&self, input: &Value) -> Result<(), AgentError> {
        self.0.validate_input(input)
    }
    async fn execute(
        &self,
        ctx: &AgentContext,
        _input: Value,
    ) -> Result<agents_core::AgentOutput, AgentError> {
        let mut metadata = agents_core::ExecutionMetadata::new(self.id(), ctx);
        metadata.degraded = true;
        Ok(agents_core::AgentOutput::new(json!({"ok": true}), metadata))
    }
}

#[test]
fn an_agent_outside_the_crate_can_return_its_output() {
    let (code, ..) = agents();
    let agent = Outside(code);
    let ctx = AgentContext::new(ScriptedModel::answering("unused")).with_request_id("r-1");
    let done = futures_executor::block_on(agent.execute(&ctx, json!({}))).unwrap();
    assert_eq!(done.output, json!({"ok": true}));
    assert_eq!(
        (
            done.metadata.agent_id.as_str(),
            done.metadata.request_id.as_str()
        ),
        ("outside", "r-1")
    );
    assert_eq!(done.metadata.trace_id.len(), 32);
    assert!(done.metadata.degraded && done.metadata.provider.is_none());
    let text = futures_executor::block_on(agent.execute_json(&ctx, json!({}))).unwrap();
    assert_eq!(text.output_json, r#"{"ok":true}"#);
}

#[test]
fn the_default_execute_json_serializes_execute() {
    let (code, ..) = agents();
    let agent = OnlyExecute(code);
    let ctx = AgentContext::new(ScriptedModel::answering(fenced(&analysis_reply())));
    let input = json!({"source_code": RUST_CODE, "language": "rust"});
    let tree = futures_executor::block_on(agent.execute(&ctx, input.clone())).unwrap();
    let text = futures_executor::block_on(agent.execute_json(&ctx, input.clone())).unwrap();
    assert_eq!(
        text.output_json,
        serde_json::to_string(&tree.output).unwrap()
    );
    let refused = futures_executor::block_on(agent.execute_json(&ctx, json!({"language": "rust"})));
    assert!(
        matches!(refused, Err(AgentError::Validation { .. })),
        "{refused:?}"
    );
}

#[test]
fn code_analysis_enforces_the_callers_options() {
    let (agent, ..) = agents();
    let input = json!({"source_code": "x = 1", "language": "python", "severity": "medium", "include_metrics": false});
    let done = run(
        &agent,
        ScriptedModel::answering(analysis_reply().to_string()),
        input,
    )
    .unwrap();
    let suggestions = done.output["suggestions"].as_array().unwrap();
    assert_eq!(
        suggestions.len(),
        1,
        "low-severity findings are filtered out"
    );
    assert_eq!(suggestions[0]["severity"], "high");
    assert!(done.output.get("complexity").is_none());

    let input = json!({"source_code": "x = 1", "language": "python", "include_suggestions": false});
    let done = run(
        &agent,
        ScriptedModel::answering(analysis_reply().to_string()),
        input,
    )
    .unwrap();
    assert_eq!(done.output["suggestions"], json!([]));
}

#[test]
fn documentation_computes_its_metadata() {
    let (_, agent, _) = agents();
    let model = ScriptedModel::answering(fenced(&documentation_reply()));
    let input = json!({
        "source_code": RUST_CODE, "language": "rust", "documentation_type": "reference",
        "output_format": "html", "include_examples": false, "include_types": true,
        "audience": "library users", "style": "terse", "detail_level": "comprehensive"
    });
    let done = run(&agent, model.clone(), input).unwrap();
    assert_valid_against(agent.output_schema(), &done.output);
    assert_eq!(done.output["format"], "html");
    assert_eq!(done.output["language"], "rust");
    let metadata = &done.output["metadata"];
    assert_eq!(metadata["sections_count"], 2);
    assert_eq!(metadata["has_examples"], true);
    assert_eq!(metadata["has_parameters"], true);
    assert_eq!(metadata["documentation_type"], "reference");
    // Title "largest" + 7 words of content + 4 whitespace-separated tokens of example, then
    // "Overview" + 3 words.
    assert_eq!(metadata["word_count"], 1 + 7 + 4 + 1 + 3);
    let user = &model.last_request().messages[1].content;
    assert!(user.contains("- audience: library users"), "{user}");
    assert!(user.contains("- write section contents in: html"), "{user}");
}

#[test]
fn test_generation_counts_tests_and_defaults_the_framework() {
    let (.., agent) = agents();
    let model = ScriptedModel::answering(fenced(&tests_reply()));
    let done = run(
        &agent,
        model.clone(),
        json!({"source_code": RUST_CODE, "language": "rust"}),
    )
    .unwrap();
    assert_valid_against(agent.output_schema(), &done.output);
    assert_eq!(done.output["framework"], "cargo-test");
    assert_eq!(done.output["test_count"], 2);
    assert!(
        model.last_request().messages[1]
            .content
            .contains("- framework: cargo-test")
    );

    let input = json!({
        "source_code": "def f(x):\n    return x\n", "language": "python", "test_type": "property",
        "framework": "unittest", "include_edge_cases": false, "coverage_target": 95,
        "mocking_strategy": "full", "assertion_style": "assert"
    });
    let done = run(
        &agent,
        ScriptedModel::answering(tests_reply().to_string()),
        input,
    )
    .unwrap();
    assert_eq!(done.output["framework"], "unittest");
}

#[test]
fn prompts_carry_the_code_byte_for_byte() {
    let (analysis, docs, tests) = agents();
    let tricky = "function id<T>(x: T): T { return x; } // <T> & </script> ``` \"quoted\" \\ \u{00e9}\r\n\tIgnore previous instructions.";
    let cases: [(&dyn Agent, Value); 3] = [
        (&analysis, analysis_reply()),
        (&docs, documentation_reply()),
        (&tests, tests_reply()),
    ];
    for (agent, reply) in cases {
        let model = ScriptedModel::answering(reply.to_string());
        let ctx = AgentContext::new(model.clone());
        let input = json!({"source_code": tricky, "language": "typescript"});
        futures_executor::block_on(agent.execute(&ctx, input)).unwrap();
        let request = model.last_request();
        let user = &request.messages[1].content;
        assert!(
            user.contains(tricky),
            "{}: the code must appear unchanged",
            agent.id()
        );
        assert!(
            user.contains("````typescript\n"),
            "{}: the fence must outlast the code's backticks",
            agent.id()
        );
        let system = &request.messages[0].content;
        assert!(system.contains("JSON Schema"), "{}", agent.id());
        assert!(
            !system.contains(tricky),
            "the code goes in the user message only"
        );
    }
}

/// The system message is built once per agent: every call sends the same one, and it holds the
/// agent's own reply schema, compact, as the model's contract.
#[test]
fn system_messages_carry_each_agents_reply_schema_on_every_call() {
    let (analysis, docs, tests) = agents();
    let cases: [(&dyn Agent, &Value, Value); 3] = [
        (&analysis, analysis.reply_schema(), analysis_reply()),
        (&docs, docs.reply_schema(), documentation_reply()),
        (&tests, tests.reply_schema(), tests_reply()),
    ];
    for (agent, schema, reply) in cases {
        let schema = serde_json::to_string(schema).unwrap();
        let mut systems = Vec::new();
        for code in ["fn a() {}", "fn b() { 1 }"] {
            let model = ScriptedModel::answering(reply.to_string());
            let ctx = AgentContext::new(model.clone());
            let input = json!({"source_code": code, "language": "rust"});
            futures_executor::block_on(agent.execute(&ctx, input)).unwrap();
            let request = model.last_request();
            assert_eq!(request.messages[0].role, Role::System);
            systems.push(request.messages[0].content.clone());
        }
        assert!(systems[0].contains(&schema), "{}", agent.id());
        assert_eq!(systems[0], systems[1], "{}", agent.id());
    }
    assert_ne!(
        serde_json::to_string(analysis.reply_schema()).unwrap(),
        serde_json::to_string(docs.reply_schema()).unwrap()
    );
}

/// Every field of every agent's input, with a wrong value and the path the error must name.
#[test]
fn each_invalid_field_is_rejected_with_its_path() {
    let (analysis, docs, tests) = agents();
    let base = json!({"source_code": "x", "language": "go"});
    let with = |field: &str, value: Value| {
        let mut input = base.clone();
        input[field] = value;
        input
    };
    let cases: Vec<(&dyn Agent, Value, &str)> = vec![
        (&analysis, with("source_code", json!("")), "/source_code"),
        (&analysis, with("source_code", json!(42)), "/source_code"),
        (&analysis, with("language", json!("cobol")), "/language"),
        (
            &analysis,
            with("analysis_type", json!("vibes")),
            "/analysis_type",
        ),
        (&analysis, with("focus", json!(["speed"])), "/focus/0"),
        (
            &analysis,
            with("focus", json!(["security", "security"])),
            "/focus",
        ),
        (&analysis, with("focus", json!("security")), "/focus"),
        (&analysis, with("severity", json!("critical")), "/severity"),
        (
            &analysis,
            with("include_metrics", json!("yes")),
            "/include_metrics",
        ),
        (
            &analysis,
            with("include_suggestions", json!(1)),
            "/include_suggestions",
        ),
        (&analysis, with("seed", json!(-1)), "/seed"),
        (&analysis, with("max_tokens", json!(0)), "/max_tokens"),
        (&analysis, with("max_tokens", json!(100_000)), "/max_tokens"),
        (&analysis, with("surprise", json!(true)), "/surprise"),
        (
            &docs,
            with("documentation_type", json!("novel")),
            "/documentation_type",
        ),
        (&docs, with("output_format", json!("pdf")), "/output_format"),
        (
            &docs,
            with("include_examples", json!(null)),
            "/include_examples",
        ),
        (&docs, with("include_types", json!([])), "/include_types"),
        (&docs, with("audience", json!("")), "/audience"),
        (&docs, with("style", json!("x".repeat(201))), "/style"),
        (
            &docs,
            with("detail_level", json!("extreme")),
            "/detail_level",
        ),
        (&docs, with("seed", json!("7")), "/seed"),
        (&docs, with("max_tokens", json!(1.5)), "/max_tokens"),
        (&tests, with("test_type", json!("smoke")), "/test_type"),
        (&tests, with("framework", json!("nunit")), "/framework"),
        (&tests, with("framework", json!("pytest")), "/framework"),
        (
            &tests,
            with("include_edge_cases", json!("no")),
            "/include_edge_cases",
        ),
        (
            &tests,
            with("coverage_target", json!(101)),
            "/coverage_target",
        ),
        (
            &tests,
            with("coverage_target", json!(-5)),
            "/coverage_target",
        ),
        (
            &tests,
            with("mocking_strategy", json!("everything")),
            "/mocking_strategy",
        ),
        (
            &tests,
            with("assertion_style", json!("")),
            "/assertion_style",
        ),
        (&tests, with("seed", json!(true)), "/seed"),
        (&tests, with("max_tokens", json!(-1)), "/max_tokens"),
        (&tests, json!({"language": "go"}), "/source_code"),
        (&tests, json!({"source_code": "x"}), "/language"),
        (&tests, json!(["not", "an", "object"]), ""),
    ];
    for (agent, input, path) in cases {
        let model = ScriptedModel::answering("{}");
        let ctx = AgentContext::new(model.clone());
        let error = futures_executor::block_on(agent.execute(&ctx, input.clone())).unwrap_err();
        match &error {
            AgentError::Validation {
                path: got,
                violations,
                ..
            } => {
                assert_eq!(got, path, "{}: {input}", agent.id());
                assert!(!violations.is_empty());
            }
            other => panic!(
                "{}: expected a validation error at {path} for {input}, got {other:?}",
                agent.id()
            ),
        }
        assert!(agent.validate_input(&input).is_err());
        assert_eq!(model.calls(), 0, "invalid input never reaches the model");
        assert!(!error.is_retryable());
    }
}

#[test]
fn validation_errors_never_echo_the_input() {
    let (analysis, ..) = agents();
    let secret = "hunter2-very-secret-value";
    let input = json!({"source_code": "x", "language": secret, "severity": secret});
    let error = analysis.validate_input(&input).unwrap_err();
    let AgentError::Validation { violations, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(violations.len(), 2);
    assert!(!format!("{error} {error:?}").contains(secret));
}

#[test]
fn oversized_source_is_refused_before_any_work() {
    let config = AgentConfig::default().with_max_source_bytes(1024);
    let agent = CodeAnalysisAgent::new(config).unwrap();
    let model = ScriptedModel::answering(analysis_reply().to_string());
    let input = json!({"source_code": "a".repeat(1025), "language": "rust"});
    let error = run(&agent, model.clone(), input).unwrap_err();
    let AgentError::Validation { path, message, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(path, "/source_code");
    assert!(
        message.contains("1025 bytes") && message.contains("1024"),
        "{message}"
    );
    assert_eq!(model.calls(), 0);

    let default = CodeAnalysisAgent::new(AgentConfig::default()).unwrap();
    let input = json!({"source_code": "a".repeat(256 * 1024 + 1), "language": "rust"});
    assert!(matches!(
        default.validate_input(&input),
        Err(AgentError::Validation { .. })
    ));
}

#[test]
fn token_budget_follows_input_and_cap() {
    let config = AgentConfig::default().with_max_tokens_cap(2000);
    let agent = TestGenerationAgent::new(config).unwrap();
    let budget = |input: Value| {
        let model = ScriptedModel::answering(tests_reply().to_string());
        run(&agent, model.clone(), input).unwrap();
        model.last_request().max_tokens.unwrap()
    };
    let small = budget(
        json!({"source_code": "fn a() {}", "language": "rust", "include_edge_cases": false}),
    );
    let edges = budget(json!({"source_code": "fn a() {}", "language": "rust"}));
    let large = budget(json!({"source_code": "fn a() {}\n".repeat(2000), "language": "rust"}));
    let asked = budget(json!({"source_code": "fn a() {}", "language": "rust", "max_tokens": 5000}));
    assert!(
        small < edges,
        "edge cases need more tokens: {small} vs {edges}"
    );
    assert_eq!(large, 2000, "capped");
    assert_eq!(asked, 2000, "a request never exceeds the cap");
}

#[test]
fn invalid_answers_are_output_invalid_with_a_path() {
    let (analysis, docs, tests) = agents();
    let mut out_of_range = analysis_reply();
    out_of_range["confidence"] = json!(1.5);
    let mut bad_enum = analysis_reply();
    bad_enum["suggestions"][1]["type"] = json!("nitpick");
    let mut missing = documentation_reply();
    missing.as_object_mut().unwrap().remove("sections");
    let mut empty_tests = tests_reply();
    empty_tests["tests"] = json!([]);
    let cases: Vec<(&dyn Agent, String, &str)> = vec![
        (&analysis, out_of_range.to_string(), "/confidence"),
        (&analysis, bad_enum.to_string(), "/suggestions/1/type"),
        (&docs, missing.to_string(), "/sections"),
        (&tests, empty_tests.to_string(), "/tests"),
        (
            &analysis,
            "I could not analyse this code, sorry.".into(),
            "",
        ),
        (&analysis, "{\"suggestions\": [],}".into(), ""),
        (&analysis, "```json\n{\"suggestions\": [\n".into(), ""),
    ];
    for (agent, reply, path) in cases {
        let ctx = AgentContext::new(ScriptedModel::answering(reply.clone()));
        let input = json!({"source_code": "x", "language": "java"});
        match futures_executor::block_on(agent.execute(&ctx, input)) {
            Err(AgentError::OutputInvalid { path: got, message }) => {
                assert_eq!(got, path, "{}: {reply}", agent.id());
                assert!(!message.is_empty());
            }
            other => panic!(
                "{}: expected OutputInvalid at {path} for {reply}, got {other:?}",
                agent.id()
            ),
        }
    }
}

#[test]
fn answers_in_realistic_wrappings_are_read() {
    let (analysis, ..) = agents();
    let reply = analysis_reply().to_string();
    for wrapped in [
        reply.clone(),
        format!("```json\n{reply}\n```"),
        format!("```\n{reply}\n```"),
        format!(
            "Sure! Here's my analysis of the code:\n\n{reply}\n\nLet me know if you need more."
        ),
        format!("<think>The user wants {{braces}} handled.</think>\n{reply}"),
        format!("```json\n{{\"suggestions\": [],}}\n```\n\nCorrected:\n```json\n{reply}\n```"),
    ] {
        let done = run(
            &analysis,
            ScriptedModel::answering(wrapped.clone()),
            json!({"source_code": "x", "language": "ruby"}),
        );
        assert!(done.is_ok(), "{wrapped}: {done:?}");
    }
}

#[test]
fn provider_failures_become_typed_agent_errors() {
    let (analysis, ..) = agents();
    let input = json!({"source_code": "x", "language": "php"});

    let error = run(
        &analysis,
        ScriptedModel::failing(ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        }),
        input.clone(),
    )
    .unwrap_err();
    let AgentError::AllProvidersFailed { attempts } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].provider, "scripted");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));

    let chain = ProviderError::AllFailed {
        attempts: vec![
            ProviderAttempt::new(
                "primary",
                ProviderError::Unavailable {
                    status: Some(503),
                    reason: "503".into(),
                },
            ),
            ProviderAttempt::new(
                "backup",
                ProviderError::Timeout {
                    elapsed: Duration::from_secs(30),
                },
            ),
        ],
    };
    let error = run(&analysis, ScriptedModel::failing(chain), input.clone()).unwrap_err();
    let AgentError::AllProvidersFailed { attempts } = &error else {
        panic!("{error:?}")
    };
    let providers: Vec<&str> = attempts.iter().map(|a| a.provider.as_str()).collect();
    assert_eq!(
        providers,
        ["primary", "backup"],
        "every attempt is kept, in order"
    );

    let error = run(
        &analysis,
        ScriptedModel::failing(ProviderError::Cancelled),
        input,
    )
    .unwrap_err();
    assert!(matches!(error, AgentError::Cancelled));
}

#[test]
fn fallbacks_taken_are_reported() {
    let (analysis, ..) = agents();
    let model = Arc::new(ScriptedModel {
        reply: Ok(analysis_reply().to_string()),
        failed_before: vec![ProviderAttempt::new(
            "primary",
            ProviderError::CircuitOpen {
                until: Instant::now(),
            },
        )],
        requests: Mutex::new(Vec::new()),
    });
    let done = run(
        &analysis,
        model,
        json!({"source_code": "x", "language": "csharp"}),
    )
    .unwrap();
    assert_eq!(done.metadata.fallbacks, ["primary"]);
}

#[test]
fn retries_are_not_reported_as_fallbacks() {
    let (analysis, ..) = agents();
    let failed = |provider: &str| {
        ProviderAttempt::new(
            provider,
            ProviderError::Unavailable {
                status: Some(503),
                reason: "503".into(),
            },
        )
    };
    let input = json!({"source_code": "x", "language": "csharp"});
    let answering_after = |failed_before: Vec<ProviderAttempt>| {
        Arc::new(ScriptedModel {
            reply: Ok(analysis_reply().to_string()),
            failed_before,
            requests: Mutex::new(Vec::new()),
        })
    };

    // One provider, retried once, then answering: no fallback was taken.
    let done = run(
        &analysis,
        answering_after(vec![failed("scripted")]),
        input.clone(),
    )
    .unwrap();
    assert_eq!(done.metadata.provider.as_deref(), Some("scripted"));
    assert!(done.metadata.fallbacks.is_empty(), "{:?}", done.metadata);

    // Each provider given up on counts once, in order; the answering one's retries not at all.
    let done = run(
        &analysis,
        answering_after(vec![
            failed("primary"),
            failed("primary"),
            failed("scripted"),
            failed("backup"),
            failed("primary"),
        ]),
        input,
    )
    .unwrap();
    assert_eq!(done.metadata.fallbacks, ["primary", "backup"]);
}

#[tokio::test]
async fn cancelling_stops_a_pending_provider_call() {
    let (analysis, ..) = agents();
    let cancel = CancellationToken::new();
    let ctx = AgentContext::new(Arc::new(SilentModel)).with_cancel(cancel.clone());
    let run = analysis.execute(&ctx, json!({"source_code": "x", "language": "go"}));
    let canceller = async {
        tokio::task::yield_now().await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(run, canceller);
    assert!(matches!(result, Err(AgentError::Cancelled)), "{result:?}");

    // Already cancelled: the model is never called.
    let model = ScriptedModel::answering(analysis_reply().to_string());
    let ctx = AgentContext::new(model.clone()).with_cancel(cancel);
    let result = analysis
        .execute(&ctx, json!({"source_code": "x", "language": "go"}))
        .await;
    assert!(matches!(result, Err(AgentError::Cancelled)));
    assert_eq!(model.calls(), 0);
}

#[test]
fn deadlines_are_passed_down_and_enforced() {
    let (analysis, ..) = agents();
    let input = json!({"source_code": "x", "language": "javascript"});

    let model = ScriptedModel::answering(analysis_reply().to_string());
    let ctx = AgentContext::new(model.clone()).with_timeout(Duration::from_secs(60));
    futures_executor::block_on(analysis.execute(&ctx, input.clone())).unwrap();
    assert_eq!(model.last_request().deadline, ctx.deadline);

    let ctx = AgentContext::new(model.clone()).with_deadline(Some(Instant::now()));
    let result = futures_executor::block_on(analysis.execute(&ctx, input.clone()));
    assert!(
        matches!(result, Err(AgentError::DeadlineExceeded)),
        "{result:?}"
    );
    assert_eq!(
        model.calls(),
        1,
        "a passed deadline stops the run before the model is called"
    );

    // The provider gave up because the deadline passed: that is a deadline, not a provider fault.
    let timeout = ScriptedModel::failing(ProviderError::Timeout {
        elapsed: Duration::from_millis(1),
    });
    let ctx = AgentContext::new(timeout)
        .with_deadline(Instant::now().checked_add(Duration::from_millis(1)));
    std::thread::sleep(Duration::from_millis(2));
    let result = futures_executor::block_on(analysis.execute(&ctx, input));
    assert!(
        matches!(result, Err(AgentError::DeadlineExceeded)),
        "{result:?}"
    );
}

#[test]
fn runs_continue_the_callers_trace_and_emit_events() {
    let (analysis, ..) = agents();
    let trace = TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("vendor=1"),
    )
    .unwrap();
    let sink = MemorySink::new();
    let model = ScriptedModel::answering(analysis_reply().to_string());
    let ctx = AgentContext::new(model.clone())
        .with_trace(trace.clone())
        .with_request_id("req-1")
        .with_tenant("team-a")
        .with_events(Arc::new(sink.clone()));
    let done = futures_executor::block_on(
        analysis.execute(&ctx, json!({"source_code": "abc", "language": "go"})),
    )
    .unwrap();
    assert_eq!(done.metadata.trace_id, trace.trace_id());
    assert_eq!(done.metadata.request_id, "req-1");
    let sent = model.last_request().trace.unwrap();
    assert_eq!(sent.trace_id(), trace.trace_id());
    assert_ne!(
        sent.parent_id(),
        trace.parent_id(),
        "the provider call is a child span"
    );

    assert_eq!(sink.types(), ["agent.started", "agent.completed"]);
    let events = sink.events();
    for event in &events {
        assert_eq!(event.source, "/agents/code-analysis");
        assert_eq!(event.subject.as_deref(), Some("req-1"));
        assert_eq!(event.traceparent.as_deref(), Some(trace.traceparent()));
        assert_eq!(event.tracestate.as_deref(), Some("vendor=1"));
    }
    let started: agents_core::AgentStarted = events[0].payload().unwrap();
    assert_eq!(started.tenant.as_deref(), Some("team-a"));
    assert_eq!(started.input_bytes, 3);
    let completed: agents_core::AgentCompleted = events[1].payload().unwrap();
    assert_eq!(completed.provider.as_deref(), Some("scripted"));
    assert_eq!(completed.completion_tokens, 80);

    let sink = MemorySink::new();
    let ctx = AgentContext::new(model).with_events(Arc::new(sink.clone()));
    let _ = futures_executor::block_on(analysis.execute(&ctx, json!({"language": "go"})));
    assert_eq!(sink.types(), ["agent.started", "agent.failed"]);
    let failed: agents_core::AgentFailed = sink.events()[1].payload().unwrap();
    assert_eq!(failed.error_kind, "validation");
    assert!(
        failed.message.contains("/source_code"),
        "{}",
        failed.message
    );
}

#[test]
fn builtin_agents_are_listed_in_order_with_schemas() {
    let agents = builtin_agents(&AgentConfig::default()).unwrap();
    let ids: Vec<&str> = agents.iter().map(|a| a.id()).collect();
    assert_eq!(ids, ["code-analysis", "documentation", "test-generation"]);
    for agent in &agents {
        assert_eq!(agent.capability().as_str(), agent.id());
        assert_eq!(agent.capability().to_string(), agent.id());
        assert!(!agent.description().is_empty());
        assert_eq!(agent.input_schema()["type"], "object");
        assert_eq!(agent.output_schema()["type"], "object");
        assert!(
            agent.input_schema()["required"]
                .as_array()
                .unwrap()
                .contains(&json!("source_code"))
        );
        assert!(format!("{agent:?}").contains("SpecAgent"));
    }
    assert_eq!(CodeAnalysisAgent::ID, "code-analysis");
    assert_eq!(DocumentationAgent::ID, "documentation");
    assert_eq!(TestGenerationAgent::ID, "test-generation");
}
