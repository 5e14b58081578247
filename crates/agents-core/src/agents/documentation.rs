//! `documentation`: writes documentation for code in the format the caller asks for.
//!
//! The model writes the sections; the counts in `metadata` are computed here, because a model
//! cannot be trusted to count. With code facts, the prompt carries the real signatures, parameter
//! types and existing doc comments; without a model, the answer is an API reference built from
//! them alone (`degraded`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::code_analysis::wire_name;
use super::config::approx_tokens;
use super::grounding::{View, facts_block};
use super::prompt::user_message;
use super::spec::AgentSpec;
use super::{AgentConfig, Capability, Language};
use crate::facts::CodeFacts;
use crate::provider::Message;

/// Input of `documentation`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "DocumentationInput")]
#[non_exhaustive]
pub struct DocumentationInput {
    /// The code to document, as it is in the file.
    #[schemars(length(min = 1))]
    pub source_code: String,
    /// Its language.
    pub language: Language,
    /// What kind of documentation to write.
    #[serde(default)]
    pub documentation_type: DocumentationType,
    /// The markup to write it in.
    #[serde(default)]
    pub output_format: OutputFormat,
    /// Whether to include usage examples.
    #[serde(default = "yes")]
    pub include_examples: bool,
    /// Whether to state parameter and return types.
    #[serde(default = "yes")]
    pub include_types: bool,
    /// Who will read it, e.g. `library users`, `new team members`.
    #[serde(default = "default_audience")]
    #[schemars(length(min = 1, max = 200))]
    pub audience: String,
    /// Tone and conventions, e.g. `concise`, `Google style`.
    #[serde(default = "default_style")]
    #[schemars(length(min = 1, max = 200))]
    pub style: String,
    /// How much to say.
    #[serde(default)]
    pub detail_level: DetailLevel,
    /// Seed for models that support reproducible sampling.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Upper bound on completion tokens (capped by the server's `max_tokens_cap`).
    #[serde(default)]
    #[schemars(range(min = 1, max = 32768))]
    pub max_tokens: Option<u32>,
    /// Whether an answer built from code facts alone (`degraded: true`, an API reference from
    /// the signatures and existing doc comments) is acceptable when no model answers. When
    /// false, the provider error is returned instead.
    #[serde(default = "yes")]
    pub allow_degraded: bool,
}

fn yes() -> bool {
    true
}

fn default_audience() -> String {
    "developers".to_owned()
}

fn default_style() -> String {
    "concise".to_owned()
}

/// Kinds of documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentationType {
    /// API documentation of every public item.
    #[default]
    Api,
    /// A README for the code.
    Readme,
    /// A step-by-step tutorial.
    Tutorial,
    /// A terse reference.
    Reference,
    /// A how-to guide.
    Guide,
}

/// Markups the documentation can be written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Markdown.
    #[default]
    Markdown,
    /// HTML.
    Html,
    /// reStructuredText.
    Rst,
    /// Docstrings in the code's own language.
    Docstring,
    /// JSDoc comments.
    Jsdoc,
}

/// How much to say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DetailLevel {
    /// The essentials.
    Minimal,
    /// What most readers need.
    #[default]
    Standard,
    /// Everything worth saying.
    Comprehensive,
}

/// What the model is asked to answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "DocumentationReply")]
#[non_exhaustive]
pub struct DocumentationReply {
    /// The documentation, in reading order.
    #[schemars(length(min = 1))]
    pub sections: Vec<Section>,
    /// How sure the model is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
}

/// One section of documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Section {
    /// Its heading.
    #[schemars(length(min = 1))]
    pub title: String,
    /// What it documents: overview, function, class, module, type, example, ...
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 64))]
    pub kind: String,
    /// Its body, in the requested format.
    pub content: String,
    /// Usage examples as code.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Parameters of the documented item.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// What the documented item returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_type: Option<String>,
}

/// One documented parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Parameter {
    /// Its name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Its type, when known.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Whether it may be left out.
    #[serde(default)]
    pub optional: bool,
}

/// Output of `documentation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "DocumentationOutput")]
#[non_exhaustive]
pub struct DocumentationOutput {
    /// The documentation, in reading order.
    pub sections: Vec<Section>,
    /// The markup it is written in.
    pub format: OutputFormat,
    /// The documented code's language.
    pub language: Language,
    /// Facts about the documentation, computed (not reported by the model).
    pub metadata: DocumentationMetadata,
    /// How sure the model is, from 0 to 1. Degraded answers say 0.5: what they say is exact,
    /// but they say only what the signatures and doc comments do.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// True when no model answered and the documentation is an API reference built from code
    /// facts alone.
    #[serde(default)]
    pub degraded: bool,
    /// Why the answer is degraded; present only when `degraded` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
}

/// Facts about generated documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[non_exhaustive]
pub struct DocumentationMetadata {
    /// Words in all titles, contents and examples.
    pub word_count: u64,
    /// Number of sections.
    pub sections_count: u64,
    /// Whether any section has an example.
    pub has_examples: bool,
    /// Whether any section documents parameters.
    pub has_parameters: bool,
    /// The kind of documentation written.
    pub documentation_type: DocumentationType,
    /// The detail level written at.
    pub detail_level: DetailLevel,
}

/// The `documentation` spec.
pub(crate) struct DocumentationSpec;

impl AgentSpec for DocumentationSpec {
    const ID: &'static str = "documentation";
    const CAPABILITY: Capability = Capability::Documentation;
    const DESCRIPTION: &'static str = "Writes API references, READMEs, tutorials and guides for code, in Markdown, HTML, reST, docstrings or JSDoc.";
    const ROLE: &'static str = "You are a technical writer who documents code accurately. Document only what the code really contains, with its real names and signatures.";
    type Input = DocumentationInput;
    type Reply = DocumentationReply;
    type Output = DocumentationOutput;

    fn source(input: &DocumentationInput) -> (Language, &str) {
        (input.language, &input.source_code)
    }

    fn allow_degraded(input: &DocumentationInput) -> bool {
        input.allow_degraded
    }

    fn prompt(input: &DocumentationInput, system: &str, facts: Option<&CodeFacts>) -> Vec<Message> {
        let options = [
            ("documentation type", wire_name(&input.documentation_type)),
            ("write section contents in", wire_name(&input.output_format)),
            ("include examples", input.include_examples.to_string()),
            ("include types", input.include_types.to_string()),
            ("audience", input.audience.clone()),
            ("style", input.style.clone()),
            ("detail level", wire_name(&input.detail_level)),
        ];
        let facts = facts.map(|facts| {
            facts_block(
                facts,
                View {
                    docs: true,
                    ..View::default()
                },
            )
        });
        vec![
            Message::system(system),
            Message::user(user_message(
                "Document the following code.",
                &options,
                facts.as_deref(),
                input.language,
                &input.source_code,
            )),
        ]
    }

    fn estimate_tokens(input: &DocumentationInput) -> u32 {
        let base =
            800u32.saturating_add(approx_tokens(input.source_code.len()).saturating_mul(3) / 4);
        let scaled = match input.detail_level {
            DetailLevel::Minimal => base / 2,
            DetailLevel::Standard => base,
            DetailLevel::Comprehensive => base.saturating_mul(2),
        };
        if input.include_examples {
            scaled.saturating_add(scaled / 3)
        } else {
            scaled
        }
    }

    fn requested_tokens(input: &DocumentationInput) -> Option<u32> {
        input.max_tokens
    }

    fn seed(input: &DocumentationInput) -> Option<u64> {
        input.seed
    }

    fn finish(
        input: DocumentationInput,
        reply: DocumentationReply,
        _facts: Option<&CodeFacts>,
    ) -> DocumentationOutput {
        output(input, reply.sections, reply.confidence, None)
    }

    fn offline(
        input: DocumentationInput,
        facts: &CodeFacts,
        reason: &str,
        _config: &AgentConfig,
    ) -> DocumentationOutput {
        let sections = super::offline::docs::sections(&input, facts);
        output(
            input,
            sections,
            super::offline::docs::CONFIDENCE,
            Some(reason.to_owned()),
        )
    }
}

/// The output around `sections`, with the metadata counted from them.
fn output(
    input: DocumentationInput,
    sections: Vec<Section>,
    confidence: f64,
    degraded_reason: Option<String>,
) -> DocumentationOutput {
    let words = |text: &str| text.split_whitespace().count() as u64;
    let word_count = sections
        .iter()
        .map(|s| {
            words(&s.title) + words(&s.content) + s.examples.iter().map(|e| words(e)).sum::<u64>()
        })
        .sum();
    let metadata = DocumentationMetadata {
        word_count,
        sections_count: sections.len() as u64,
        has_examples: sections.iter().any(|s| !s.examples.is_empty()),
        has_parameters: sections.iter().any(|s| !s.parameters.is_empty()),
        documentation_type: input.documentation_type,
        detail_level: input.detail_level,
    };
    DocumentationOutput {
        sections,
        format: input.output_format,
        language: input.language,
        metadata,
        confidence,
        degraded: degraded_reason.is_some(),
        degraded_reason,
    }
}
