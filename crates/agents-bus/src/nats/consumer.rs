//! Feeding a subscription from a JetStream pull consumer.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use agents_core::CloudEvent;
use async_nats::jetstream::consumer::{self, PullConsumer};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::buffer::SubscriberBuffer;
use super::bus::{Shared, retry_delay};
use crate::bus::Envelope;
use crate::{BusMetrics, Error, Subscription, TypeFilter};

async fn create(shared: &Shared, config: &consumer::pull::Config) -> Result<PullConsumer, Error> {
    shared
        .js
        .create_consumer_on_stream(config.clone(), shared.config.stream.name.as_str())
        .await
        .map_err(|e| Error::transport("create a JetStream consumer", &e))
}

/// Creates the consumer and a task that moves its events into a new subscription.
pub(crate) async fn start(
    shared: Arc<Shared>,
    config: consumer::pull::Config,
    filter: TypeFilter,
) -> Result<(Subscription, Option<AbortHandle>), Error> {
    let consumer = create(&shared, &config).await?;
    let (tx, rx) = mpsc::channel(shared.config.subscriber_buffer);
    let metrics = Arc::clone(&shared.metrics);
    let buffer = SubscriberBuffer::new(tx, shared.client.clone(), config.ack_wait);
    let task = tokio::spawn(feed(shared, consumer, config, filter, buffer));
    let abort = task.abort_handle();
    let subscription =
        Subscription::new(rx, Arc::new(AtomicU64::new(0)), metrics).with_feeder(task);
    Ok((subscription, Some(abort)))
}

/// Runs until the subscription is dropped or the bus shuts down. Re-creates the message stream
/// (and the consumer, if the server lost it) after errors, with backoff.
async fn feed(
    shared: Arc<Shared>,
    mut consumer: PullConsumer,
    config: consumer::pull::Config,
    filter: TypeFilter,
    mut buffer: SubscriberBuffer,
) {
    let max = shared.config.max_retry_delay();
    let mut failures = 0usize;
    loop {
        match consumer.messages().await {
            Ok(mut messages) => {
                while let Some(message) = buffer.next(&mut messages).await {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            tracing::debug!(%error, "JetStream consumer: transient error");
                            continue;
                        }
                    };
                    failures = 0;
                    let reply = message.reply.clone();
                    let (message, acker) = message.split();
                    match CloudEvent::from_json(&message.payload) {
                        // Acknowledged when the subscriber takes it, not here.
                        Ok(event) if filter.matches(&event.event_type) => {
                            let envelope = Envelope {
                                event: Arc::new(event),
                                ack: Some(acker),
                            };
                            if buffer.put(envelope, reply).await.is_err() {
                                return;
                            }
                            BusMetrics::inc(&shared.metrics.delivered);
                            continue;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            BusMetrics::inc(&shared.metrics.decode_errors);
                            tracing::warn!(subject = %message.subject, %error, "JetStream consumer: not a CloudEvent; skipped");
                        }
                    }
                    if let Err(error) = acker.ack().await {
                        tracing::debug!(%error, "JetStream consumer: ack failed; the event may be redelivered");
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%error, "JetStream consumer: cannot pull; retrying");
            }
        }
        if buffer.is_gone() || shared.is_closed() {
            return;
        }
        failures += 1;
        tokio::time::sleep(retry_delay(failures + 1, max)).await;
        if let Ok(fresh) = create(&shared, &config).await {
            consumer = fresh;
        }
    }
}
