//! Code facts: what a parser can count for certain, so that agents never ask a model to guess it.
//!
//! The types here are plain data; [`FactsAnalyzer`] is the contract a parser implements. The
//! tree-sitter implementation for the nine accepted languages lives in the `agents-facts` crate,
//! so that this crate stays free of grammars and C code: a program that only needs the types, or
//! brings its own analyzer, does not compile them.
//!
//! Agents use facts in two ways: as grounding (complexity is reported from the facts, never from
//! the model, and the prompt carries signatures and branch points), and as the whole answer when
//! no model answers (`degraded` output built from the facts and the rule findings alone).

mod thresholds;

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agents::{Language, Severity};

pub use thresholds::{RuleThresholds, threshold_findings};

/// Computes [`CodeFacts`] for a source file.
///
/// Implementations must be total: any byte sequence that is valid UTF-8 gives facts (with syntax
/// errors recorded) or a [`FactsError`], never a panic, and they must bound their own time (a
/// parse that takes longer than the implementation's budget returns [`FactsError::TimedOut`]).
///
/// `analyze` is synchronous CPU work: microseconds for a snippet, tens of milliseconds for a
/// large file, up to the budget for a hostile one. Agents call
/// [`analyze_in_run`](Self::analyze_in_run), which runs it on the calling thread unless an
/// implementation moves it elsewhere; on an async runtime, wrap the analyzer in one that does
/// (agents-server's `OffloadedAnalyzer` uses tokio's blocking threads), so that a large file
/// does not stall the runtime's other tasks. This crate stays free of any runtime.
#[async_trait::async_trait]
pub trait FactsAnalyzer: Send + Sync + fmt::Debug {
    /// The facts of `source`, written in `language`.
    fn analyze(&self, language: Language, source: &str) -> Result<CodeFacts, FactsError>;

    /// The facts of `source` for an agent's run that must end by `deadline`: by default
    /// [`analyze`](Self::analyze), here and now. An implementation that runs it elsewhere may
    /// have to wait for room there; it gives up at `deadline` with an error (the run then
    /// carries on without facts, and ends as past its deadline). Dropping the future must be
    /// safe: the agent does so when the run is cancelled.
    async fn analyze_in_run(
        &self,
        language: Language,
        source: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<CodeFacts, FactsError> {
        let _ = deadline;
        self.analyze(language, source)
    }
}

/// Why facts could not be computed. Agents carry on without facts (and say so) rather than fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The analyzer has no grammar for the language.
    #[error("no code facts for {0}: the analyzer has no grammar for it")]
    Unsupported(Language),
    /// The parse ran over the analyzer's time budget.
    #[error("computing code facts took longer than {budget_ms} ms and was stopped")]
    TimedOut {
        /// The budget that was exceeded, in milliseconds.
        budget_ms: u64,
    },
    /// Anything else; the message says what.
    #[error("computing code facts failed: {0}")]
    Failed(String),
}

/// Everything the analyzer found in one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct CodeFacts {
    /// Number of lines in the file.
    pub lines: u32,
    /// Functions and methods, in source order, including methods declared without a body
    /// (interface, trait and abstract methods; see [`FunctionFacts::is_abstract`]).
    pub functions: Vec<FunctionFacts>,
    /// Classes, structs, interfaces, traits, enums, modules, in source order.
    pub types: Vec<TypeFacts>,
    /// Where the parser could not make sense of the code.
    pub syntax_errors: Vec<SyntaxIssue>,
    /// What the syntax-aware rules found (empty catch blocks, eval of built strings, SQL built by
    /// concatenation, `unsafe`, unwraps in library code, nested loops); threshold rules (long,
    /// complex, deeply nested functions, too many parameters) are added by
    /// [`threshold_findings`], hard-coded secrets by the agents with the Redactor's patterns.
    pub findings: Vec<Finding>,
    /// Maintainability index of the file, 0 (hard) to 100 (easy), the Visual Studio variant:
    /// `max(0, (171 - 5.2 ln V - 0.23 G - 16.2 ln L) * 100 / 171)` with Halstead volume `V`,
    /// cyclomatic complexity `G` and lines of code `L`.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub maintainability_index: f64,
}

impl CodeFacts {
    /// The functions a caller outside the file can use: public ones, or all top-level ones in
    /// languages without visibility keywords.
    pub fn public_functions(&self) -> impl Iterator<Item = &FunctionFacts> {
        self.functions
            .iter()
            .filter(|f| matches!(f.visibility, Visibility::Public))
    }

    /// The functions with a body: what has complexity, branches and something to test.
    /// Declarations without one ([`FunctionFacts::is_abstract`]) are left out.
    pub fn functions_with_body(&self) -> impl Iterator<Item = &FunctionFacts> {
        self.functions.iter().filter(|f| !f.is_abstract)
    }

    /// Cyclomatic complexity of the file: one plus the decision points of every function with
    /// a body (a declaration without one has no code, so it adds nothing).
    pub fn total_cyclomatic(&self) -> u32 {
        let decisions: u32 = self
            .functions_with_body()
            .map(|f| f.cyclomatic.saturating_sub(1))
            .fold(0, u32::saturating_add);
        decisions.saturating_add(1)
    }

    /// The largest cognitive complexity of any function with a body (0 without one).
    pub fn max_cognitive(&self) -> u32 {
        self.functions_with_body()
            .map(|f| f.cognitive)
            .max()
            .unwrap_or(0)
    }
}

/// One function or method, or a method declared without a body ([`FunctionFacts::is_abstract`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct FunctionFacts {
    /// Its name, e.g. `parse`.
    pub name: String,
    /// The class, impl, module or type it belongs to, if any, e.g. `Parser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The declaration up to the body, whitespace collapsed, e.g. `pub fn parse(s: &str) -> Ast`.
    pub signature: String,
    /// Its parameters, in order, without `self`/`this` receivers.
    pub parameters: Vec<ParameterFacts>,
    /// The declared return type, if the language writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_type: Option<String>,
    /// Who can call it.
    pub visibility: Visibility,
    /// Whether it is `async`.
    #[serde(default)]
    pub is_async: bool,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    /// The doc comment written for it (comment markers removed), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Declared without a body: an interface, trait or abstract method (or a TypeScript overload
    /// signature). Such a declaration has cyclomatic complexity 1, cognitive complexity and
    /// nesting 0 and no branches, and is left out of the file's complexity
    /// ([`CodeFacts::total_cyclomatic`], [`CodeFacts::max_cognitive`]) and of anything that
    /// needs code to run (test skeletons). False for every function with a body.
    #[serde(default)]
    pub is_abstract: bool,
    /// McCabe cyclomatic complexity: 1 + decision points.
    pub cyclomatic: u32,
    /// Cognitive complexity (SonarSource), with nesting increments.
    pub cognitive: u32,
    /// Deepest nesting of control structures inside it (0 = flat).
    pub max_nesting: u32,
    /// The decision points, in source order: what a test suite must cover.
    pub branches: Vec<BranchPoint>,
}

impl FunctionFacts {
    /// Lines from its first to its last, inclusive.
    pub fn length(&self) -> u32 {
        self.end_line
            .saturating_sub(self.start_line)
            .saturating_add(1)
    }

    /// `Container.name`, or `name` for free functions.
    pub fn qualified_name(&self) -> String {
        match &self.container {
            Some(container) => format!("{container}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct ParameterFacts {
    /// Its name.
    pub name: String,
    /// Its declared type, if the language writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Whether it has a default value or is otherwise optional.
    #[serde(default)]
    pub optional: bool,
}

/// One decision point: a branch a test can take or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct BranchPoint {
    /// Its line, 1-based.
    pub line: u32,
    /// What it is: `if`, `else if`, `match arm`, `case`, `for`, `while`, `catch`, `&&`, `||`,
    /// `?:`, ...
    pub kind: String,
}

impl BranchPoint {
    /// A branch point of `kind` on `line`.
    pub fn new(line: u32, kind: impl Into<String>) -> Self {
        Self {
            line,
            kind: kind.into(),
        }
    }
}

/// A class, struct, interface, trait, enum, module or alias.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct TypeFacts {
    /// Its name.
    pub name: String,
    /// What kind of type: `class`, `struct`, `interface`, `trait`, `enum`, `module`, `type`, ...
    pub kind: String,
    /// Who can use it.
    pub visibility: Visibility,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    /// The doc comment written for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

/// Who can use a declaration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone (including top-level definitions in languages without visibility keywords).
    #[default]
    Public,
    /// The package, crate, assembly or module only.
    Internal,
    /// Subclasses.
    Protected,
    /// The defining type or file only (including `_name` by convention in Python).
    Private,
}

/// A place the parser could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct SyntaxIssue {
    /// Its line, 1-based.
    pub line: u32,
    /// Its column, 1-based.
    pub column: u32,
    /// What is wrong, e.g. `unexpected token` or `missing }`.
    pub message: String,
}

impl SyntaxIssue {
    /// A syntax issue at `line`:`column`.
    pub fn new(line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            line,
            column,
            message: message.into(),
        }
    }
}

/// What a rule found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct Finding {
    /// The rule that fired.
    pub rule: Rule,
    /// Its line, 1-based.
    pub line: u32,
    /// What it is and what to do, in one or two sentences. Never quotes a secret.
    pub message: String,
    /// How serious it is.
    pub severity: Severity,
}

impl Finding {
    /// A finding of `rule` at `line`, with the rule's default severity.
    pub fn new(rule: Rule, line: u32, message: impl Into<String>) -> Self {
        Self {
            rule,
            line,
            message: message.into(),
            severity: rule.default_severity(),
        }
    }

    /// Overrides the severity.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// The rules the offline analysis applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Rule {
    /// A function longer than the threshold.
    LongFunction,
    /// A function whose cyclomatic or cognitive complexity is over the threshold.
    ComplexFunction,
    /// Control structures nested deeper than the threshold.
    DeepNesting,
    /// More parameters than the threshold.
    TooManyParameters,
    /// A catch/except/rescue block that does nothing.
    EmptyCatch,
    /// `eval`/`exec`/`Function(...)` or a shell call given a string built at run time.
    DynamicCodeExecution,
    /// A SQL statement built by string concatenation or interpolation.
    SqlConcatenation,
    /// A credential written into the code.
    HardcodedSecret,
    /// A Rust `unsafe` block or function.
    UnsafeCode,
    /// `unwrap()`/`expect()` in Rust library code.
    UnwrapInLibrary,
    /// A loop inside a loop over the same data: likely O(n^2).
    NestedLoops,
}

impl Rule {
    /// Every rule, in a stable order.
    pub const ALL: [Rule; 11] = [
        Self::LongFunction,
        Self::ComplexFunction,
        Self::DeepNesting,
        Self::TooManyParameters,
        Self::EmptyCatch,
        Self::DynamicCodeExecution,
        Self::SqlConcatenation,
        Self::HardcodedSecret,
        Self::UnsafeCode,
        Self::UnwrapInLibrary,
        Self::NestedLoops,
    ];

    /// The rule's id on the wire, e.g. `sql-concatenation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongFunction => "long-function",
            Self::ComplexFunction => "complex-function",
            Self::DeepNesting => "deep-nesting",
            Self::TooManyParameters => "too-many-parameters",
            Self::EmptyCatch => "empty-catch",
            Self::DynamicCodeExecution => "dynamic-code-execution",
            Self::SqlConcatenation => "sql-concatenation",
            Self::HardcodedSecret => "hardcoded-secret",
            Self::UnsafeCode => "unsafe-code",
            Self::UnwrapInLibrary => "unwrap-in-library",
            Self::NestedLoops => "nested-loops",
        }
    }

    /// The area it belongs to: `complexity`, `maintainability`, `security`, `performance` or
    /// `correctness`.
    pub fn category(self) -> &'static str {
        match self {
            Self::LongFunction | Self::TooManyParameters => "maintainability",
            Self::ComplexFunction | Self::DeepNesting => "complexity",
            Self::EmptyCatch | Self::UnwrapInLibrary => "correctness",
            Self::DynamicCodeExecution
            | Self::SqlConcatenation
            | Self::HardcodedSecret
            | Self::UnsafeCode => "security",
            Self::NestedLoops => "performance",
        }
    }

    /// The CWE a security rule corresponds to.
    pub fn cwe(self) -> Option<&'static str> {
        match self {
            Self::DynamicCodeExecution => Some("CWE-95"),
            Self::SqlConcatenation => Some("CWE-89"),
            Self::HardcodedSecret => Some("CWE-798"),
            Self::UnsafeCode => Some("CWE-119"),
            Self::EmptyCatch => Some("CWE-390"),
            _ => None,
        }
    }

    /// How serious a finding of this rule is unless the analyzer says otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            Self::DynamicCodeExecution | Self::SqlConcatenation | Self::HardcodedSecret => {
                Severity::High
            }
            Self::ComplexFunction
            | Self::DeepNesting
            | Self::EmptyCatch
            | Self::UnsafeCode
            | Self::UnwrapInLibrary
            | Self::NestedLoops => Severity::Medium,
            Self::LongFunction | Self::TooManyParameters => Severity::Low,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
