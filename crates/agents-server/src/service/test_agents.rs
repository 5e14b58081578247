//! Agents that misbehave, for the service's tests.

use agents_core::{Agent, AgentContext};

/// An agent whose run panics, or waits until it is cancelled.
#[derive(Debug)]
pub(crate) struct Broken {
    pub(crate) panics: bool,
}

static SCHEMA: std::sync::LazyLock<serde_json::Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"type": "object"}));

#[agents_core::async_trait]
impl Agent for Broken {
    fn id(&self) -> &str {
        "broken"
    }
    fn capability(&self) -> agents_core::Capability {
        agents_core::Capability::CodeAnalysis
    }
    fn description(&self) -> &str {
        "panics or hangs"
    }
    fn input_schema(&self) -> &serde_json::Value {
        &SCHEMA
    }
    fn output_schema(&self) -> &serde_json::Value {
        &SCHEMA
    }
    fn validate_input(&self, _: &serde_json::Value) -> Result<(), agents_core::AgentError> {
        Ok(())
    }
    async fn execute(
        &self,
        ctx: &AgentContext,
        _: serde_json::Value,
    ) -> Result<agents_core::AgentOutput, agents_core::AgentError> {
        if self.panics {
            panic!("an agent bug");
        }
        ctx.cancel.cancelled().await;
        Err(agents_core::AgentError::Cancelled)
    }
}
