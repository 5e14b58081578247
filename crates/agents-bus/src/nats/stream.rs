//! Creating or updating the event stream from the configuration.

use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use super::NatsConfig;
use crate::Error;

/// Why the stream is not ready.
#[derive(Debug)]
pub(crate) enum NotReady {
    /// NATS or JetStream could not be reached: try again later.
    Unreachable(Error),
    /// The server refused the configuration: a person must look.
    Refused(Error),
}

pub(crate) fn stream_config(config: &NatsConfig) -> stream::Config {
    stream::Config {
        name: config.stream.name.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: Duration::from_secs(config.stream.max_age_secs),
        max_bytes: i64::try_from(config.stream.max_bytes).unwrap_or(i64::MAX),
        duplicate_window: Duration::from_secs(config.stream.duplicate_window_secs),
        num_replicas: config.stream.replicas,
        storage: StorageType::File,
        ..Default::default()
    }
}

/// Creates the stream, or updates its limits to the configured ones, and checks the result.
pub(crate) async fn ensure(js: &Context, config: &NatsConfig) -> Result<(), NotReady> {
    let wanted = stream_config(config);
    let info = js
        .create_or_update_stream(wanted.clone())
        .await
        .map_err(|e| {
            let error = Error::transport("create or update the event stream", &e);
            match e.kind() {
                CreateStreamErrorKind::JetStream(_)
                | CreateStreamErrorKind::EmptyStreamName
                | CreateStreamErrorKind::InvalidStreamName
                | CreateStreamErrorKind::DomainAndExternalSet => NotReady::Refused(error),
                _ => NotReady::Unreachable(error),
            }
        })?;
    let got = &info.config;
    if got.retention != RetentionPolicy::Limits
        || got.discard != DiscardPolicy::Old
        || !got.subjects.iter().any(|s| wanted.subjects.contains(s))
    {
        return Err(NotReady::Refused(Error::Transport {
            operation: "validate the event stream",
            message: format!(
                "stream {} exists with another retention, discard policy or subjects; fix or delete it",
                config.stream.name
            ),
        }));
    }
    Ok(())
}
