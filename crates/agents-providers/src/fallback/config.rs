use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// A fallback chain: which providers, in which order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChainConfig {
    /// The chain's own id, used in events and errors.
    pub id: String,
    /// The providers, first choice first.
    pub providers: Vec<ChainEntryConfig>,
}

/// One provider of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChainEntryConfig {
    /// The provider's id.
    pub provider: String,
    /// Share of first attempts this provider gets among the entries that have a weight; entries
    /// without one keep their place after the weighted ones. Spreads load across equivalent
    /// providers; the others still serve as fallbacks.
    #[serde(default)]
    pub weight: Option<u32>,
}

impl ChainConfig {
    /// A chain over `providers`, in order, unweighted.
    pub fn new(
        id: impl Into<String>,
        providers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            id: id.into(),
            providers: providers
                .into_iter()
                .map(|p| ChainEntryConfig {
                    provider: p.into(),
                    weight: None,
                })
                .collect(),
        }
    }

    /// Refuses an empty chain, duplicates and zero weights.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(ConfigError::new("id", "must not be empty"));
        }
        if self.providers.is_empty() {
            return Err(ConfigError::new("providers", "needs at least one provider"));
        }
        for (i, entry) in self.providers.iter().enumerate() {
            if self.providers[..i]
                .iter()
                .any(|e| e.provider == entry.provider)
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].provider"),
                    format!("`{}` is listed twice", entry.provider),
                ));
            }
            if entry.weight == Some(0) {
                return Err(ConfigError::new(
                    format!("providers[{i}].weight"),
                    "must be at least 1, or unset",
                ));
            }
        }
        Ok(())
    }
}
