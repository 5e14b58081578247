//! The provider used when the config names none: every call says so, and the agents answer
//! from code facts alone (`degraded: true`).

use agents_core::{GenerateRequest, Generation, Provider, ProviderError, ProviderHealth};

/// Why [`NoModel`] refuses; also what the server prints at start-up.
pub const NO_MODEL_REASON: &str = "no model provider is configured: answers are built from code facts alone (degraded); add a [[providers]] entry to use a model";

/// A provider that is not there. Lets a fresh install answer from code facts.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoModel;

#[agents_core::async_trait]
impl Provider for NoModel {
    fn id(&self) -> &str {
        "no-model-configured"
    }

    async fn generate(&self, _request: GenerateRequest) -> Result<Generation, ProviderError> {
        Err(ProviderError::Unavailable {
            status: None,
            reason: NO_MODEL_REASON.to_owned(),
        })
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Unhealthy {
            reason: NO_MODEL_REASON.to_owned(),
        }
    }
}
