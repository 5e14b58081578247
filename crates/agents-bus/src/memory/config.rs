use agents_core::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings of the [`InProcessBus`](super::InProcessBus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct InProcessConfig {
    /// Events each subscriber may have waiting; beyond that it lags (the event is dropped
    /// for that subscriber and counted).
    pub subscriber_buffer: usize,
    /// Subscribers at once; the next subscribe is refused.
    pub max_subscribers: usize,
}

impl Default for InProcessConfig {
    fn default() -> Self {
        Self {
            subscriber_buffer: 1024,
            max_subscribers: 256,
        }
    }
}

impl InProcessConfig {
    /// Sets the per-subscriber buffer.
    pub fn with_subscriber_buffer(mut self, n: usize) -> Self {
        self.subscriber_buffer = n;
        self
    }

    /// Sets the subscriber limit.
    pub fn with_max_subscribers(mut self, n: usize) -> Self {
        self.max_subscribers = n;
        self
    }

    /// Refuses zero-sized buffers and limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.subscriber_buffer == 0 {
            return Err(ConfigError::new("subscriber_buffer", "must be at least 1"));
        }
        if self.subscriber_buffer > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "subscriber_buffer",
                "is larger than a channel can hold",
            ));
        }
        if self.max_subscribers == 0 {
            return Err(ConfigError::new("max_subscribers", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_setting() {
        assert!(InProcessConfig::default().validate().is_ok());
        let zero = InProcessConfig::default()
            .with_subscriber_buffer(0)
            .validate();
        assert_eq!(zero.map_err(|e| e.path), Err("subscriber_buffer".into()));
        let huge = InProcessConfig::default()
            .with_subscriber_buffer(usize::MAX)
            .validate();
        assert!(huge.is_err());
        let none = InProcessConfig::default()
            .with_max_subscribers(0)
            .validate();
        assert_eq!(none.map_err(|e| e.path), Err("max_subscribers".into()));
        let parsed: InProcessConfig =
            serde_json::from_str(r#"{"subscriber_buffer": 8}"#).unwrap_or_default();
        assert_eq!(parsed.subscriber_buffer, 8);
        assert_eq!(parsed.max_subscribers, 256);
    }
}
