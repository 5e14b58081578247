//! `code-analysis`: reviews code for complexity, performance, security and maintainability.
//!
//! The model reviews; it never counts. Complexity comes from the code facts only: with facts the
//! output has `complexity` (and per-function `functions` metrics), without them it has none,
//! whatever the model says (the reply schema has no `complexity`, and an extra one is ignored).
//!
//! How the numbers are chosen:
//! - `cyclomatic` is the file's: 1 + every decision point of every function (McCabe's number for
//!   the module, the `G` of the maintainability index); per-function values are in `functions`.
//! - `cognitive` is the highest cognitive complexity of any function: Sonar defines it per
//!   function, and the worst one is what a reviewer has to read.
//! - Methods declared without a body (interface, trait and abstract methods) have no code: they
//!   count towards none of these numbers and have no entry in `functions`. The threshold rules
//!   still check their parameter count (see [`threshold_findings`](crate::facts::threshold_findings)).
//! - `maintainability` grades the maintainability index with Visual Studio's published bands
//!   (0-9 red, 10-19 yellow, 20-100 green), the green band split at 80: 0-9 `poor`, 10-19
//!   `fair`, 20-79 `good`, 80-100 `excellent`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::approx_tokens;
use super::grounding::{View, facts_block};
use super::prompt::user_message;
use super::spec::AgentSpec;
use super::{AgentConfig, Capability, Language, Severity};
use crate::facts::CodeFacts;
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
    /// Whether an answer built from code facts alone (`degraded: true`, rule-based findings) is
    /// acceptable when no model answers. When false, the provider error is returned instead.
    #[serde(default = "yes")]
    pub allow_degraded: bool,
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

/// What the model is asked to answer: the review, without the numbers a parser counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "CodeAnalysisReply")]
#[non_exhaustive]
pub struct CodeAnalysisReply {
    /// Findings, most important first.
    pub suggestions: Vec<Suggestion>,
    /// Security assessment.
    pub security: SecurityReport,
    /// Performance assessment.
    pub performance: PerformanceReport,
    /// How sure the analysis is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
}

/// Output of `code-analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "CodeAnalysisOutput")]
#[non_exhaustive]
pub struct CodeAnalysisOutput {
    /// Findings, most important first.
    pub suggestions: Vec<Suggestion>,
    /// Complexity metrics, from the code facts; absent without facts or when `include_metrics`
    /// is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<Complexity>,
    /// Metrics of each function with a body, in source order, from the code facts (interface,
    /// trait and abstract methods have no code to measure); empty (and left out) without facts
    /// or when `include_metrics` is false.
    /// At most 500 entries (`MAX_FUNCTIONS`): past that, the most complex, still in source
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionMetrics>,
    /// How many functions with a body were left out of `functions` (0, and left out, when
    /// none were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub functions_left_out: u32,
    /// Security assessment.
    pub security: SecurityReport,
    /// Performance assessment.
    pub performance: PerformanceReport,
    /// How sure the analysis is, from 0 to 1. Degraded answers say 0.4 (0.3 when the code has
    /// syntax errors): the rules are precise but see far less than a reviewer.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// True when no model answered and the analysis is the rule-based one, from code facts alone.
    #[serde(default)]
    pub degraded: bool,
    /// Why the answer is degraded; present only when `degraded` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
}

/// Metrics of one function, counted by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct FunctionMetrics {
    /// `Container.name`, or `name` for free functions.
    #[schemars(length(min = 1))]
    pub name: String,
    /// First line, 1-based.
    pub line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    /// McCabe cyclomatic complexity.
    pub cyclomatic: u32,
    /// Cognitive complexity.
    pub cognitive: u32,
    /// Deepest nesting of control structures (0 = flat).
    pub max_nesting: u32,
    /// Number of parameters (receivers not counted).
    pub parameters: u32,
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

/// Complexity metrics of the file, from the code facts (see the module docs for how).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Complexity {
    /// Cyclomatic complexity (McCabe) of the file: 1 + every decision point.
    pub cyclomatic: u32,
    /// Cognitive complexity of the most complex function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognitive: Option<u32>,
    /// How easy the code is to change: the maintainability index, graded.
    pub maintainability: Maintainability,
    /// The maintainability index, 0 (hard) to 100 (easy), Visual Studio variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub maintainability_index: Option<f64>,
}

impl Complexity {
    /// The file's complexity, from its facts.
    pub fn from_facts(facts: &CodeFacts) -> Self {
        let index = facts.maintainability_index.clamp(0.0, 100.0);
        Self {
            cyclomatic: facts.total_cyclomatic(),
            cognitive: Some(facts.max_cognitive()),
            maintainability: Maintainability::from_index(index),
            maintainability_index: Some((index * 10.0).round() / 10.0),
        }
    }
}

impl FunctionMetrics {
    /// The metrics of every function with a body in `facts`, in source order.
    pub fn from_facts(facts: &CodeFacts) -> Vec<Self> {
        facts
            .functions_with_body()
            .map(|f| Self {
                name: non_empty(f.qualified_name()),
                line: f.start_line.max(1),
                end_line: f.end_line.max(f.start_line).max(1),
                cyclomatic: f.cyclomatic,
                cognitive: f.cognitive,
                max_nesting: f.max_nesting,
                parameters: u32::try_from(f.parameters.len()).unwrap_or(u32::MAX),
            })
            .collect()
    }
}

/// `name`, or a placeholder for the anonymous.
fn non_empty(name: String) -> String {
    if name.trim().is_empty() {
        "(anonymous)".to_owned()
    } else {
        name
    }
}

/// Maintainability grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Maintainability {
    /// Hard to change safely (index 0-9).
    Poor,
    /// Changeable with care (index 10-19).
    Fair,
    /// Easy to change (index 20-79).
    Good,
    /// A model to follow (index 80-100).
    Excellent,
}

impl Maintainability {
    /// The grade of a maintainability index (0-100): Visual Studio's bands, green split at 80.
    pub fn from_index(index: f64) -> Self {
        if index < 10.0 {
            Self::Poor
        } else if index < 20.0 {
            Self::Fair
        } else if index < 80.0 {
            Self::Good
        } else {
            Self::Excellent
        }
    }
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
    const ROLE: &'static str = "You are a senior software engineer who reviews code precisely. Cite 1-based line numbers; never invent code that is not there.";
    type Input = CodeAnalysisInput;
    type Reply = CodeAnalysisReply;
    type Output = CodeAnalysisOutput;

    fn source(input: &CodeAnalysisInput) -> (Language, &str) {
        (input.language, &input.source_code)
    }

    fn allow_degraded(input: &CodeAnalysisInput) -> bool {
        input.allow_degraded
    }

    fn prompt(input: &CodeAnalysisInput, system: &str, facts: Option<&CodeFacts>) -> Vec<Message> {
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
            ("include suggestions", input.include_suggestions.to_string()),
        ];
        let facts = facts.map(|facts| {
            facts_block(
                facts,
                View {
                    complexity: true,
                    findings: true,
                    ..View::default()
                },
            )
        });
        vec![
            Message::system(system),
            Message::user(user_message(
                "Analyse the following code.",
                &options,
                facts.as_deref(),
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

    fn finish(
        input: CodeAnalysisInput,
        reply: CodeAnalysisReply,
        facts: Option<&CodeFacts>,
    ) -> CodeAnalysisOutput {
        // The caller's options are enforced here, whatever the model did with them.
        let mut suggestions = reply.suggestions;
        if input.include_suggestions {
            suggestions.retain(|s| s.severity >= input.severity);
        } else {
            suggestions.clear();
        }
        let (complexity, (functions, functions_left_out)) = metrics(&input, facts);
        CodeAnalysisOutput {
            suggestions,
            complexity,
            functions,
            functions_left_out,
            security: reply.security,
            performance: reply.performance,
            confidence: reply.confidence,
            degraded: false,
            degraded_reason: None,
        }
    }

    fn offline(
        input: CodeAnalysisInput,
        facts: &CodeFacts,
        reason: &str,
        config: &AgentConfig,
    ) -> CodeAnalysisOutput {
        let (complexity, functions) = metrics(&input, Some(facts));
        super::offline::analysis::answer(
            &input,
            facts,
            reason,
            &config.rules,
            complexity,
            functions,
        )
    }
}

/// Functions listed in an answer's `functions` at most: a 256 KiB file of one-line functions
/// has tens of thousands, whose metrics would make a multi-megabyte answer (more than a gRPC
/// client takes by default) with little use in it.
pub const MAX_FUNCTIONS: usize = 500;

/// The complexity and per-function metrics the output reports: from the facts, when the caller
/// wants metrics. The functions are capped at [`MAX_FUNCTIONS`]; the second number is how
/// many were left out.
fn metrics(
    input: &CodeAnalysisInput,
    facts: Option<&CodeFacts>,
) -> (Option<Complexity>, (Vec<FunctionMetrics>, u32)) {
    match facts {
        Some(facts) if input.include_metrics => (
            Some(Complexity::from_facts(facts)),
            most_complex(FunctionMetrics::from_facts(facts), MAX_FUNCTIONS),
        ),
        _ => (None, (Vec::new(), 0)),
    }
}

/// The `max` most complex of `functions` (cyclomatic, then cognitive, then the earlier), back
/// in source order, and how many were left out.
fn most_complex(mut functions: Vec<FunctionMetrics>, max: usize) -> (Vec<FunctionMetrics>, u32) {
    let omitted = functions.len().saturating_sub(max);
    if omitted > 0 {
        functions.sort_by(|a, b| {
            (b.cyclomatic, b.cognitive)
                .cmp(&(a.cyclomatic, a.cognitive))
                .then(a.line.cmp(&b.line))
        });
        functions.truncate(max);
        functions.sort_by_key(|f| (f.line, f.end_line));
    }
    (functions, u32::try_from(omitted).unwrap_or(u32::MAX))
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The serde name of a unit enum variant.
pub(crate) fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}
