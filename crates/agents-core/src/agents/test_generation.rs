//! `test-generation`: writes tests for code in the framework the caller names.
//!
//! With code facts, the prompt names the real public functions, their parameters and branch
//! points, and `coverage.branches` lists the real branch points (`name: if at line 12`), not the
//! model's guess. Without a model, the answer is one pending test skeleton per public function.
//! Methods declared without a body (interface, trait and abstract methods) are neither listed in
//! the prompt nor given a skeleton: there is no code to test until something implements them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::code_analysis::wire_name;
use super::config::approx_tokens;
use super::grounding::{View, branch_list, facts_block};
use super::prompt::user_message;
use super::spec::AgentSpec;
use super::{AgentConfig, Capability, Language};
use crate::error::AgentError;
use crate::facts::CodeFacts;
use crate::provider::Message;

/// Input of `test-generation`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "TestGenerationInput")]
#[non_exhaustive]
pub struct TestGenerationInput {
    /// The code to test, as it is in the file.
    #[schemars(length(min = 1))]
    pub source_code: String,
    /// Its language.
    pub language: Language,
    /// What kind of tests to write.
    #[serde(default)]
    pub test_type: TestType,
    /// The test framework; it must suit the language. When absent, the language's usual one.
    #[serde(default)]
    pub framework: Option<Framework>,
    /// Whether to cover edge cases (empty, huge, malformed, concurrent inputs).
    #[serde(default = "yes")]
    pub include_edge_cases: bool,
    /// Branch coverage to aim for, in percent.
    #[serde(default = "default_coverage")]
    #[schemars(range(min = 0, max = 100))]
    pub coverage_target: u8,
    /// How much to replace collaborators with test doubles.
    #[serde(default)]
    pub mocking_strategy: MockingStrategy,
    /// Assertion style, e.g. `expect`, `assert`, `should`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub assertion_style: Option<String>,
    /// Seed for models that support reproducible sampling.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Upper bound on completion tokens (capped by the server's `max_tokens_cap`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 32768))]
    pub max_tokens: Option<u32>,
    /// Whether an answer built from code facts alone (`degraded: true`, one pending test
    /// skeleton per public function) is acceptable when no model answers. When false, the
    /// provider error is returned instead.
    #[serde(default = "yes")]
    pub allow_degraded: bool,
}

fn yes() -> bool {
    true
}

fn default_coverage() -> u8 {
    80
}

/// Kinds of tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TestType {
    /// One unit in isolation.
    #[default]
    Unit,
    /// Units together.
    Integration,
    /// The whole program from outside.
    E2e,
    /// Invariants over generated inputs.
    Property,
}

/// Test frameworks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Framework {
    /// Vitest (JavaScript, TypeScript).
    Vitest,
    /// Jest (JavaScript, TypeScript).
    Jest,
    /// Mocha (JavaScript, TypeScript).
    Mocha,
    /// pytest (Python).
    Pytest,
    /// unittest (Python).
    Unittest,
    /// RSpec (Ruby).
    Rspec,
    /// JUnit (Java).
    Junit,
    /// TestNG (Java).
    Testng,
    /// `go test` (Go).
    GoTest,
    /// `cargo test` (Rust).
    CargoTest,
    /// xUnit.net (C#).
    Xunit,
    /// PHPUnit (PHP).
    Phpunit,
}

impl Framework {
    /// The frameworks that suit a language, the usual one first.
    pub fn for_language(language: Language) -> &'static [Framework] {
        match language {
            Language::Javascript | Language::Typescript => &[Self::Vitest, Self::Jest, Self::Mocha],
            Language::Python => &[Self::Pytest, Self::Unittest],
            Language::Java => &[Self::Junit, Self::Testng],
            Language::Go => &[Self::GoTest],
            Language::Rust => &[Self::CargoTest],
            Language::Csharp => &[Self::Xunit],
            Language::Php => &[Self::Phpunit],
            Language::Ruby => &[Self::Rspec],
        }
    }
}

/// How much to replace collaborators with test doubles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MockingStrategy {
    /// Real collaborators only.
    None,
    /// Doubles for I/O and slow or non-deterministic collaborators only.
    #[default]
    Minimal,
    /// Doubles for every collaborator.
    Full,
}

/// What the model is asked to answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "TestGenerationReply")]
#[non_exhaustive]
pub struct TestGenerationReply {
    /// The tests.
    #[schemars(length(min = 1))]
    pub tests: Vec<GeneratedTest>,
    /// Import or use lines the tests need.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Shared setup code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Shared teardown code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<String>,
    /// What the tests cover.
    pub coverage: Coverage,
    /// How sure the model is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
}

/// One generated test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GeneratedTest {
    /// The test's name, as the framework will show it.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The test's code.
    #[schemars(length(min = 1))]
    pub code: String,
    /// What kind of case it checks.
    #[serde(rename = "type")]
    pub kind: TestCaseKind,
    /// What it checks, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Kinds of test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TestCaseKind {
    /// Valid input, expected result.
    Positive,
    /// Invalid input, expected error.
    Negative,
    /// Unusual but valid input.
    Edge,
    /// At the limits of the valid range.
    Boundary,
}

/// What the tests cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Coverage {
    /// Estimated branch coverage, in percent (0 for skeletons: they assert nothing yet).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub estimated: f64,
    /// Branches the tests exercise. With code facts, the file's real branch points, as
    /// `name: kind at line N`.
    #[serde(default)]
    pub branches: Vec<String>,
    /// Paths no test exercises.
    #[serde(default)]
    pub uncovered_paths: Vec<String>,
}

/// Output of `test-generation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "TestGenerationOutput")]
#[non_exhaustive]
pub struct TestGenerationOutput {
    /// The tests.
    pub tests: Vec<GeneratedTest>,
    /// The framework they are written for.
    pub framework: Framework,
    /// Import or use lines the tests need.
    pub imports: Vec<String>,
    /// Shared setup code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// Shared teardown code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<String>,
    /// What the tests cover.
    pub coverage: Coverage,
    /// How sure the model is, from 0 to 1. Degraded answers say 0.3: the names and parameters
    /// are right, the assertions are not written.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// Number of tests (counted, not reported by the model).
    pub test_count: u64,
    /// True when no model answered and the tests are skeletons built from code facts alone.
    #[serde(default)]
    pub degraded: bool,
    /// Why the answer is degraded; present only when `degraded` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
}

/// The `test-generation` spec.
pub(crate) struct TestGenerationSpec;

fn framework_of(input: &TestGenerationInput) -> Framework {
    input
        .framework
        .or_else(|| Framework::for_language(input.language).first().copied())
        .unwrap_or(Framework::Vitest)
}

impl AgentSpec for TestGenerationSpec {
    const ID: &'static str = "test-generation";
    const CAPABILITY: Capability = Capability::TestGeneration;
    const DESCRIPTION: &'static str = "Writes unit, integration, end-to-end and property tests for code in the framework of your choice.";
    const ROLE: &'static str = "You are a test engineer who writes tests that compile and run. Test only functions the code really defines, with their real names and parameters.";
    type Input = TestGenerationInput;
    type Reply = TestGenerationReply;
    type Output = TestGenerationOutput;

    fn check(input: &TestGenerationInput) -> Result<(), AgentError> {
        let suitable = Framework::for_language(input.language);
        match input.framework {
            Some(framework) if !suitable.contains(&framework) => Err(AgentError::invalid(
                "/framework",
                format!(
                    "{} does not test {}; use one of: {}",
                    wire_name(&framework),
                    input.language,
                    suitable
                        .iter()
                        .map(wire_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    fn source(input: &TestGenerationInput) -> (Language, &str) {
        (input.language, &input.source_code)
    }

    fn allow_degraded(input: &TestGenerationInput) -> bool {
        input.allow_degraded
    }

    fn prompt(
        input: &TestGenerationInput,
        system: &str,
        facts: Option<&CodeFacts>,
    ) -> Vec<Message> {
        let mut options = vec![
            ("test type", wire_name(&input.test_type)),
            ("framework", wire_name(&framework_of(input))),
            ("include edge cases", input.include_edge_cases.to_string()),
            (
                "branch coverage target",
                format!("{}%", input.coverage_target),
            ),
            ("mocking strategy", wire_name(&input.mocking_strategy)),
        ];
        if let Some(style) = &input.assertion_style {
            options.push(("assertion style", style.clone()));
        }
        let facts = facts.map(|facts| {
            facts_block(
                facts,
                View {
                    branches: true,
                    public_only: true,
                    with_body_only: true,
                    ..View::default()
                },
            )
        });
        vec![
            Message::system(system),
            Message::user(user_message(
                "Write tests for the following code.",
                &options,
                facts.as_deref(),
                input.language,
                &input.source_code,
            )),
        ]
    }

    fn estimate_tokens(input: &TestGenerationInput) -> u32 {
        // Tests are usually longer than the code they test.
        let base =
            800u32.saturating_add(approx_tokens(input.source_code.len()).saturating_mul(3) / 2);
        if input.include_edge_cases {
            base.saturating_add(base / 2)
        } else {
            base
        }
    }

    fn requested_tokens(input: &TestGenerationInput) -> Option<u32> {
        input.max_tokens
    }

    fn seed(input: &TestGenerationInput) -> Option<u64> {
        input.seed
    }

    fn finish(
        input: TestGenerationInput,
        reply: TestGenerationReply,
        facts: Option<&CodeFacts>,
    ) -> TestGenerationOutput {
        let mut coverage = reply.coverage;
        if let Some(facts) = facts {
            coverage.branches = branch_list(facts);
        }
        TestGenerationOutput {
            test_count: reply.tests.len() as u64,
            framework: framework_of(&input),
            tests: reply.tests,
            imports: reply.imports,
            setup: reply.setup,
            teardown: reply.teardown,
            coverage,
            confidence: reply.confidence,
            degraded: false,
            degraded_reason: None,
        }
    }

    fn offline(
        input: TestGenerationInput,
        facts: &CodeFacts,
        reason: &str,
        _config: &AgentConfig,
    ) -> TestGenerationOutput {
        let framework = framework_of(&input);
        let (tests, imports, left_out) = super::offline::skeletons::skeletons(framework, facts);
        let reason = match left_out {
            0 => reason.to_owned(),
            n => format!(
                "{reason}; skeletons for the first {} public functions, {n} more left out",
                super::offline::skeletons::MAX_SKELETONS
            ),
        };
        TestGenerationOutput {
            test_count: tests.len() as u64,
            framework,
            tests,
            imports,
            setup: None,
            teardown: None,
            coverage: Coverage {
                estimated: 0.0,
                branches: branch_list(facts),
                uncovered_paths: super::offline::skeletons::not_called_directly(facts),
            },
            confidence: super::offline::skeletons::CONFIDENCE,
            degraded: true,
            degraded_reason: Some(reason),
        }
    }
}
