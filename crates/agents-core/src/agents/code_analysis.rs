//! `code-analysis`: reviews code for complexity, performance, security and maintainability.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::approx_tokens;
use super::prompt::{system_message, user_message};
use super::spec::AgentSpec;
use super::{Capability, Language, Severity};
use crate::provider::Message;

/// Input of `code-analysis`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "CodeAnalysisInput")]
#[non_exhaustive]
pub struct CodeAnalysisInput {
    /// The code to analyse, as it is in the file.
    #[schemars(length(min = 1))]
    pub source_code: String,
    /// Its language.
    pub language: Language,
    /// What kind of analysis to do.
    #[serde(default)]
    pub analysis_type: AnalysisType,
    /// Areas to concentrate on; empty means all of them.
    #[serde(default)]
    #[schemars(length(max = 4), extend("uniqueItems" = true))]
    pub focus: Vec<Focus>,
    /// The least severity worth reporting.
    #[serde(default)]
    pub severity: Severity,
    /// Whether to report complexity metrics.
    #[serde(default = "yes")]
    pub include_metrics: bool,
    /// Whether to report suggestions.
    #[serde(default = "yes")]
    pub include_suggestions: bool,
    /// Seed for models that support reproducible sampling.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Upper bound on completion tokens (capped by the server's `max_tokens_cap`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 32768))]
    pub max_tokens: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Kinds of analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisType {
    /// A general code review.
    #[default]
    Review,
    /// Opportunities to restructure.
    Refactor,
    /// Speed and memory.
    Optimize,
    /// Structure, coupling, layering.
    Architecture,
    /// Vulnerabilities.
    Security,
}

/// Areas an analysis can concentrate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Focus {
    /// Control-flow complexity.
    Complexity,
    /// Speed and memory.
    Performance,
    /// Vulnerabilities.
    Security,
    /// Readability and ease of change.
    Maintainability,
}

/// Output of `code-analysis` (also what the model is asked to answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "CodeAnalysisOutput")]
#[non_exhaustive]
pub struct CodeAnalysisOutput {
    /// Findings, most important first.
    pub suggestions: Vec<Suggestion>,
    /// Complexity metrics; absent when `include_metrics` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<Complexity>,
    /// Security assessment.
    pub security: SecurityReport,
    /// Performance assessment.
    pub performance: PerformanceReport,
    /// How sure the analysis is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Suggestion {
    /// What kind of finding.
    #[serde(rename = "type")]
    pub kind: SuggestionKind,
    /// What to change and why.
    #[schemars(length(min = 1))]
    pub message: String,
    /// The 1-based line it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub line: Option<u32>,
    /// How serious it is.
    pub severity: Severity,
    /// The area: complexity, performance, security, maintainability, style, correctness, ...
    #[schemars(length(min = 1, max = 64))]
    pub category: String,
}

/// Kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionKind {
    /// Better code, same behaviour.
    Improvement,
    /// Likely to go wrong.
    Warning,
    /// Wrong now.
    Error,
    /// Faster or leaner.
    Optimization,
}

/// Complexity metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Complexity {
    /// Cyclomatic complexity (McCabe).
    pub cyclomatic: u32,
    /// Cognitive complexity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognitive: Option<u32>,
    /// How easy the code is to change.
    pub maintainability: Maintainability,
}

/// Maintainability grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Maintainability {
    /// Hard to change safely.
    Poor,
    /// Changeable with care.
    Fair,
    /// Easy to change.
    Good,
    /// A model to follow.
    Excellent,
}

/// Security assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityReport {
    /// Vulnerabilities found.
    pub vulnerabilities: Vec<Vulnerability>,
    /// Overall risk.
    pub risk_level: RiskLevel,
}

/// One vulnerability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Vulnerability {
    /// Its class, e.g. `sql-injection`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 64))]
    pub kind: String,
    /// What it is and how to fix it.
    #[schemars(length(min = 1))]
    pub description: String,
    /// The 1-based line it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub line: Option<u32>,
    /// How serious it is.
    pub severity: Severity,
    /// The CWE id, e.g. `CWE-89`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwe: Option<String>,
}

/// Overall security risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Nothing found.
    None,
    /// Minor.
    Low,
    /// Should be fixed.
    Medium,
    /// Must be fixed.
    High,
    /// Exploitable now.
    Critical,
}

/// Performance assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PerformanceReport {
    /// Bottlenecks found.
    pub bottlenecks: Vec<Bottleneck>,
    /// Expected memory use.
    pub memory_usage: Severity,
    /// Big-O of the dominant path, e.g. `O(n^2)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithmic_complexity: Option<String>,
}

/// One bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bottleneck {
    /// The resource it strains.
    #[serde(rename = "type")]
    pub kind: BottleneckKind,
    /// How much it matters.
    pub impact: Severity,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// The 1-based line it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub line: Option<u32>,
}

/// Resources a bottleneck strains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BottleneckKind {
    /// Computation.
    Cpu,
    /// Allocation.
    Memory,
    /// Disk or file I/O.
    Io,
    /// Network calls.
    Network,
}

/// The `code-analysis` spec.
pub(crate) struct CodeAnalysisSpec;

impl AgentSpec for CodeAnalysisSpec {
    const ID: &'static str = "code-analysis";
    const CAPABILITY: Capability = Capability::CodeAnalysis;
    const DESCRIPTION: &'static str = "Reviews code for complexity, performance, security and maintainability, with line-level suggestions.";
    type Input = CodeAnalysisInput;
    type Reply = CodeAnalysisOutput;
    type Output = CodeAnalysisOutput;

    fn prompt(input: &CodeAnalysisInput, reply_schema: &Value) -> Vec<Message> {
        let focus = if input.focus.is_empty() {
            "complexity, performance, security, maintainability".to_owned()
        } else {
            input
                .focus
                .iter()
                .map(wire_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let options = [
            ("analysis type", wire_name(&input.analysis_type)),
            ("focus", focus),
            (
                "report findings of severity at least",
                input.severity.as_str().to_owned(),
            ),
            (
                "include complexity metrics",
                input.include_metrics.to_string(),
            ),
            ("include suggestions", input.include_suggestions.to_string()),
        ];
        vec![
            Message::system(system_message(
                "You are a senior software engineer who reviews code precisely. Cite 1-based line numbers; never invent code that is not there.",
                reply_schema,
            )),
            Message::user(user_message(
                "Analyse the following code.",
                &options,
                input.language,
                &input.source_code,
            )),
        ]
    }

    fn estimate_tokens(input: &CodeAnalysisInput) -> u32 {
        // A review's length grows with the code and with each area asked about.
        let areas = if input.focus.is_empty() {
            4
        } else {
            input.focus.len() as u32
        };
        600u32
            .saturating_add(approx_tokens(input.source_code.len()) / 2)
            .saturating_add(150 * areas)
    }

    fn requested_tokens(input: &CodeAnalysisInput) -> Option<u32> {
        input.max_tokens
    }

    fn seed(input: &CodeAnalysisInput) -> Option<u64> {
        input.seed
    }

    fn finish(input: CodeAnalysisInput, mut reply: CodeAnalysisOutput) -> CodeAnalysisOutput {
        // The caller's options are enforced here, whatever the model did with them.
        if input.include_suggestions {
            reply.suggestions.retain(|s| s.severity >= input.severity);
        } else {
            reply.suggestions.clear();
        }
        if !input.include_metrics {
            reply.complexity = None;
        }
        reply
    }
}

/// The serde name of a unit enum variant.
pub(crate) fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}
