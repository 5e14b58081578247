//! Degraded answers stay small whatever the source: hostile code can make the rules fire once per
//! line, or hold thousands of functions, and an answer over the server's 4 MiB message limit
//! could not be sent at all. The facts are canned, shaped as the real analyzer would give them.

// A failing test should stop loudly: unwrap and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use agents_core::facts::{CodeFacts, FactsAnalyzer, FactsError};
use agents_core::{
    Agent, AgentConfig, AgentContext, CodeAnalysisAgent, DEFAULT_MAX_SOURCE_BYTES,
    DocumentationAgent, GenerateRequest, Generation, Language, Provider, ProviderError,
    ProviderHealth,
};
use serde_json::{Value, json};

/// Far below the server's 4 MiB message limit, and far above what the caps allow.
const SMALL_ENOUGH: usize = 1 << 20;

/// Returns the same facts for any code.
#[derive(Debug)]
struct CannedFacts(CodeFacts);

impl FactsAnalyzer for CannedFacts {
    fn analyze(&self, _: Language, _: &str) -> Result<CodeFacts, FactsError> {
        Ok(self.0.clone())
    }
}

/// No model answers, so every answer is the degraded one.
#[derive(Debug)]
struct NoModel;

#[async_trait::async_trait]
impl Provider for NoModel {
    fn id(&self) -> &str {
        "none"
    }

    async fn generate(&self, _: GenerateRequest) -> Result<Generation, ProviderError> {
        Err(ProviderError::AllFailed {
            attempts: Vec::new(),
        })
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

fn degraded_output(agent: &dyn Agent, input: Value) -> Value {
    let ctx = AgentContext::new(Arc::new(NoModel));
    let done = futures_executor::block_on(agent.execute(&ctx, input)).unwrap();
    assert_eq!(done.output["degraded"], true);
    let validator = jsonschema::validator_for(agent.output_schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&done.output)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:?}", agent.id());
    done.output
}

/// `fn f(){` then one `unsafe{}` a line, as much as the input limit takes.
fn unsafe_blocks() -> (String, usize) {
    let blocks = (DEFAULT_MAX_SOURCE_BYTES - "fn f(){\n}\n".len()) / "unsafe{}\n".len();
    let source = format!("fn f(){{\n{}}}\n", "unsafe{}\n".repeat(blocks));
    (source, blocks)
}

/// What the analyzer says of [`unsafe_blocks`]: one long function and an unsafe-code finding
/// per block.
fn unsafe_block_facts(blocks: usize) -> CodeFacts {
    let last_line = blocks + 2;
    let findings: Vec<Value> = (2..=blocks + 1)
        .map(|line| {
            json!({
                "rule": "unsafe-code", "line": line, "severity": "medium",
                "message": "An `unsafe` block: the compiler cannot check memory safety here; state the invariants in a `// SAFETY:` comment, or use a safe API."
            })
        })
        .collect();
    serde_json::from_value(json!({
        "lines": last_line,
        "functions": [{
            "name": "f", "signature": "fn f()", "parameters": [], "visibility": "private",
            "start_line": 1, "end_line": last_line, "cyclomatic": 1, "cognitive": 0,
            "max_nesting": 1, "branches": []
        }],
        "types": [],
        "syntax_errors": [],
        "findings": findings,
        "maintainability_index": 0.0
    }))
    .unwrap()
}

#[test]
fn degraded_analysis_of_a_hostile_file_is_capped_and_says_so() {
    let (source, blocks) = unsafe_blocks();
    assert!(source.len() <= DEFAULT_MAX_SOURCE_BYTES && blocks > 25_000);
    let agent = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(Arc::new(CannedFacts(unsafe_block_facts(blocks))));
    let output = degraded_output(&agent, json!({"source_code": source, "language": "rust"}));

    let size = output.to_string().len();
    assert!(size < SMALL_ENOUGH, "{size} bytes");
    let suggestions = output["suggestions"].as_array().unwrap();
    let vulnerabilities = output["security"]["vulnerabilities"].as_array().unwrap();
    assert_eq!((suggestions.len(), vulnerabilities.len()), (200, 200));
    assert_eq!(output["security"]["risk_level"], "medium");
    // The long-function finding is as severe as the unsafe blocks and comes in line order.
    assert_eq!(vulnerabilities[0]["line"], 2);
    let reason = output["degraded_reason"].as_str().unwrap();
    // Every block, plus the long function among the suggestions, minus the 200 shown.
    let (more_suggestions, more_vulnerabilities) = (blocks + 1 - 200, blocks - 200);
    assert!(
        reason.contains("only the 200 most severe of each list are shown")
            && reason.contains(&format!("{more_suggestions} more suggestions"))
            && reason.contains(&format!("{more_vulnerabilities} more vulnerabilities")),
        "{reason}"
    );
}

#[test]
fn degraded_analysis_under_the_cap_lists_everything_and_says_nothing_more() {
    let (source, _) = unsafe_blocks();
    let agent = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(Arc::new(CannedFacts(unsafe_block_facts(199))));
    let output = degraded_output(&agent, json!({"source_code": source, "language": "rust"}));
    assert_eq!(output["suggestions"].as_array().unwrap().len(), 200);
    assert_eq!(
        output["security"]["vulnerabilities"]
            .as_array()
            .unwrap()
            .len(),
        199
    );
    let reason = output["degraded_reason"].as_str().unwrap();
    assert!(!reason.contains("left out"), "{reason}");
}

/// `count` public functions, one a line, each with a doc comment and a parameter.
fn many_function_facts(count: usize) -> CodeFacts {
    let functions: Vec<Value> = (1..=count)
        .map(|line| {
            json!({
                "name": format!("f{line}"), "signature": format!("pub fn f{line}(x: u32)"),
                "parameters": [{"name": "x", "type_name": "u32"}], "doc": "Does a thing.",
                "visibility": "public", "start_line": line, "end_line": line,
                "cyclomatic": 1, "cognitive": 0, "max_nesting": 0, "branches": []
            })
        })
        .collect();
    serde_json::from_value(json!({
        "lines": count, "functions": functions, "types": [], "syntax_errors": [],
        "findings": [], "maintainability_index": 50.0
    }))
    .unwrap()
}

#[test]
fn degraded_documentation_of_thousands_of_functions_is_capped_and_says_so() {
    let count = 20_000;
    let agent = DocumentationAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(Arc::new(CannedFacts(many_function_facts(count))));
    for format in ["markdown", "html", "rst", "docstring", "jsdoc"] {
        let input = json!({
            "source_code": "pub fn f1(x: u32) {}\n".repeat(10_000), "language": "rust",
            "output_format": format
        });
        let output = degraded_output(&agent, input);
        let size = output.to_string().len();
        assert!(size < SMALL_ENOUGH, "{format}: {size} bytes");
        let sections = output["sections"].as_array().unwrap();
        // The overview, then the first 200 functions in source order.
        assert_eq!(sections.len(), 201, "{format}");
        assert_eq!(output["metadata"]["sections_count"], 201);
        assert_eq!(sections[200]["title"], "f200");
        let overview = sections[0]["content"].as_str().unwrap();
        assert!(
            overview.contains(&format!("{count} functions"))
                && overview.contains("Only the first 200 items")
                && overview.contains(&format!("{} more were left out", count - 200)),
            "{format}: {overview}"
        );
    }
}

#[test]
fn analysis_of_thousands_of_functions_lists_the_most_complex_in_source_order() {
    let count = 20_000;
    let mut facts = many_function_facts(count);
    // Two complex functions far past the cap in source order.
    facts.functions[15_000].cyclomatic = 9;
    facts.functions[12_000].cyclomatic = 7;
    let agent = CodeAnalysisAgent::new(AgentConfig::default())
        .unwrap()
        .with_facts(Arc::new(CannedFacts(facts)));
    let input = json!({"source_code": "pub fn f1(x: u32) {}\n".repeat(10_000), "language": "rust"});
    let output = degraded_output(&agent, input);
    let size = output.to_string().len();
    assert!(size < SMALL_ENOUGH, "{size} bytes");
    let functions = output["functions"].as_array().unwrap();
    assert_eq!(functions.len(), agents_core::MAX_FUNCTIONS);
    assert_eq!(
        output["functions_left_out"],
        count - agents_core::MAX_FUNCTIONS
    );
    let lines: Vec<u64> = functions
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert!(lines.is_sorted(), "not in source order");
    // The two complex ones, then the earliest of the rest.
    assert!(
        lines.contains(&12_001) && lines.contains(&15_001),
        "{lines:?}"
    );
    assert_eq!(lines[..3], [1, 2, 3]);
}
