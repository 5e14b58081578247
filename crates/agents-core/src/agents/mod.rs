//! The `Agent` contract and the three built-in agents.

mod code_analysis;
mod config;
mod context;
mod documentation;
mod grounding;
mod offline;
mod prompt;
mod spec;
mod test_generation;
mod vocabulary;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use code_analysis::{
    AnalysisType, Bottleneck, BottleneckKind, CodeAnalysisInput, CodeAnalysisOutput,
    CodeAnalysisReply, Complexity, Focus, FunctionMetrics, MAX_FUNCTIONS, Maintainability,
    PerformanceReport, RiskLevel, SecurityReport, Suggestion, SuggestionKind, Vulnerability,
};
pub use config::{AgentConfig, DEFAULT_MAX_SOURCE_BYTES, DEFAULT_MAX_TOKENS_CAP};
pub use context::{AgentContext, AgentJsonOutput, AgentOutput, ExecutionMetadata};
pub use documentation::{
    DetailLevel, DocumentationInput, DocumentationMetadata, DocumentationOutput,
    DocumentationReply, DocumentationType, OutputFormat, Parameter, Section,
};
pub use test_generation::{
    Coverage, Framework, GeneratedTest, MockingStrategy, TestCaseKind, TestGenerationInput,
    TestGenerationOutput, TestGenerationReply, TestType,
};
pub use vocabulary::{Language, Severity};

use crate::error::AgentError;
use crate::facts::FactsAnalyzer;
use spec::{AgentSpec, SpecAgent};

/// A code-intelligence agent: validates a JSON input, asks a provider, returns validated JSON.
///
/// Object safe: the runtime holds agents as `Arc<dyn Agent>`.
#[async_trait::async_trait]
pub trait Agent: Send + Sync + fmt::Debug {
    /// A stable id, e.g. `code-analysis`.
    fn id(&self) -> &str;
    /// What the agent does.
    fn capability(&self) -> Capability;
    /// One sentence for listings.
    fn description(&self) -> &str;
    /// The JSON Schema (draft 2020-12) every input must match.
    fn input_schema(&self) -> &Value;
    /// The JSON Schema (draft 2020-12) every output matches.
    fn output_schema(&self) -> &Value;
    /// Checks an input against the schema and limits without running anything: what the
    /// server does before it queues a task.
    fn validate_input(&self, input: &Value) -> Result<(), AgentError>;
    /// Runs the agent on `input`. The input is validated first; the output is valid against
    /// [`output_schema`](Agent::output_schema) or the run fails with a typed error.
    async fn execute(&self, ctx: &AgentContext, input: Value) -> Result<AgentOutput, AgentError>;
    /// [`execute`](Agent::execute), with the output as compact JSON text: for a caller that
    /// only writes it out (the gRPC server). The default serializes `execute`'s output; the
    /// built-in agents write the text straight from their typed output, without building a
    /// JSON tree first, so their object keys come in declaration order. Either way the text
    /// parses to the value `execute` would have returned.
    async fn execute_json(
        &self,
        ctx: &AgentContext,
        input: Value,
    ) -> Result<AgentJsonOutput, AgentError> {
        let done = self.execute(ctx, input).await?;
        // The same writer as the built-in agents' text form; it cannot fail for a `Value`,
        // whose keys are strings.
        let output_json = <spec::Text as spec::OutputForm>::encode(&done.output)?;
        Ok(AgentJsonOutput::new(output_json, done.metadata))
    }
}

/// What an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Capability {
    /// Reviews code.
    CodeAnalysis,
    /// Documents code.
    Documentation,
    /// Writes tests.
    TestGeneration,
}

impl Capability {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeAnalysis => "code-analysis",
            Self::Documentation => "documentation",
            Self::TestGeneration => "test-generation",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a public agent type backed by a spec.
macro_rules! builtin_agent {
    ($(#[$doc:meta])* $name:ident, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(SpecAgent<$spec>);

        impl $name {
            /// The agent's id.
            pub const ID: &'static str = <$spec as AgentSpec>::ID;

            /// Builds the agent, compiling its schemas.
            ///
            /// Fails only if the built-in schemas do not compile, which a test rules out.
            pub fn new(config: AgentConfig) -> Result<Self, AgentError> {
                SpecAgent::new(config).map(Self)
            }

            /// Grounds every run in the code facts `analyzer` computes: the prompt carries them,
            /// the output takes its counts from them, and when no model answers (and the input
            /// allows it) the answer is built from them alone, marked `degraded`.
            pub fn with_facts(self, analyzer: Arc<dyn FactsAnalyzer>) -> Self {
                Self(self.0.with_facts(analyzer))
            }

            /// The JSON Schema of the answer the model is asked for (part of the prompt).
            pub fn reply_schema(&self) -> &Value {
                self.0.reply_schema()
            }
        }

        #[async_trait::async_trait]
        impl Agent for $name {
            fn id(&self) -> &str {
                <$spec as AgentSpec>::ID
            }
            fn capability(&self) -> Capability {
                <$spec as AgentSpec>::CAPABILITY
            }
            fn description(&self) -> &str {
                <$spec as AgentSpec>::DESCRIPTION
            }
            fn input_schema(&self) -> &Value {
                self.0.input_schema()
            }
            fn output_schema(&self) -> &Value {
                self.0.output_schema()
            }
            fn validate_input(&self, input: &Value) -> Result<(), AgentError> {
                self.0.parse_input(input.clone()).map(|_| ())
            }
            async fn execute(&self, ctx: &AgentContext, input: Value) -> Result<AgentOutput, AgentError> {
                let (output, metadata) = self.0.execute::<spec::Tree>(ctx, input).await?;
                Ok(AgentOutput { output, metadata })
            }
            async fn execute_json(
                &self,
                ctx: &AgentContext,
                input: Value,
            ) -> Result<AgentJsonOutput, AgentError> {
                let (output_json, metadata) = self.0.execute::<spec::Text>(ctx, input).await?;
                Ok(AgentJsonOutput::new(output_json, metadata))
            }
        }
    };
}

builtin_agent!(
    /// `code-analysis`: reviews code for complexity, performance, security and maintainability.
    CodeAnalysisAgent,
    code_analysis::CodeAnalysisSpec
);
builtin_agent!(
    /// `documentation`: writes documentation in the requested format.
    DocumentationAgent,
    documentation::DocumentationSpec
);
builtin_agent!(
    /// `test-generation`: writes tests in the requested framework.
    TestGenerationAgent,
    test_generation::TestGenerationSpec
);

/// The three built-in agents, in a stable order.
pub fn builtin_agents(config: &AgentConfig) -> Result<Vec<Arc<dyn Agent>>, AgentError> {
    Ok(vec![
        Arc::new(CodeAnalysisAgent::new(config.clone())?),
        Arc::new(DocumentationAgent::new(config.clone())?),
        Arc::new(TestGenerationAgent::new(config.clone())?),
    ])
}

/// The three built-in agents, in a stable order, grounded in the facts `analyzer` computes (see
/// [`CodeAnalysisAgent::with_facts`]).
pub fn grounded_agents(
    config: &AgentConfig,
    analyzer: Arc<dyn FactsAnalyzer>,
) -> Result<Vec<Arc<dyn Agent>>, AgentError> {
    Ok(vec![
        Arc::new(CodeAnalysisAgent::new(config.clone())?.with_facts(analyzer.clone())),
        Arc::new(DocumentationAgent::new(config.clone())?.with_facts(analyzer.clone())),
        Arc::new(TestGenerationAgent::new(config.clone())?.with_facts(analyzer)),
    ])
}

/// Every JSON Schema the crate defines, as `(relative path, schema)`: agent inputs, outputs and
/// model replies under `agents/`, event payloads under `events/`. The repository commits them
/// under `schemas/`; a test fails when they drift from the code.
pub fn exported_schemas(config: &AgentConfig) -> Result<Vec<(String, Value)>, AgentError> {
    let code = CodeAnalysisAgent::new(config.clone())?;
    let docs = DocumentationAgent::new(config.clone())?;
    let tests = TestGenerationAgent::new(config.clone())?;
    let agents: [(&dyn Agent, &Value); 3] = [
        (&code, code.reply_schema()),
        (&docs, docs.reply_schema()),
        (&tests, tests.reply_schema()),
    ];
    let mut schemas = Vec::new();
    for (agent, reply) in agents {
        schemas.push((
            format!("agents/{}.input.json", agent.id()),
            agent.input_schema().clone(),
        ));
        schemas.push((
            format!("agents/{}.output.json", agent.id()),
            agent.output_schema().clone(),
        ));
        schemas.push((format!("agents/{}.reply.json", agent.id()), reply.clone()));
    }
    for (event_type, schema) in crate::events::catalogue() {
        schemas.push((format!("events/{event_type}.json"), schema.to_value()));
    }
    Ok(schemas)
}
