//! The feeding side of a JetStream subscription's buffer, which keeps the events waiting in it
//! from being delivered twice.
//!
//! Why: an event is acknowledged only when the subscriber takes it from its buffer, so a slow
//! subscriber leaves events unacknowledged for as long as they wait there. Past the
//! consumer's ack wait JetStream would deliver them again while the originals are still
//! buffered, and the subscriber would see each one twice, which adds to the load that made it
//! slow. So, every third of the ack wait, the feeding task sends an in-progress ack (`+WPI`,
//! which restarts the ack wait) for each event still in the buffer. Events wait nowhere else:
//! the consumer's `max_ack_pending` is the buffer's size, so JetStream delivers no more than
//! the buffer can hold, and the stream keeps the rest.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::{Client, Subject};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::bus::Envelope;

/// The subscription is gone: nothing more can be buffered.
#[derive(Debug)]
pub(crate) struct Gone;

pub(crate) struct SubscriberBuffer {
    tx: mpsc::Sender<Envelope>,
    client: Client,
    /// Reply subjects of the last events put into the buffer, oldest first; no more than it
    /// holds. The buffer is first in, first out, so the events still in it are the newest.
    replies: VecDeque<Option<Subject>>,
    every: Duration,
    due: Instant,
}

impl SubscriberBuffer {
    pub(crate) fn new(tx: mpsc::Sender<Envelope>, client: Client, ack_wait: Duration) -> Self {
        // A third: one lost in-progress ack still leaves two before the ack wait runs out.
        let every = (ack_wait / 3).max(Duration::from_millis(1));
        Self {
            replies: VecDeque::with_capacity(tx.max_capacity()),
            tx,
            client,
            every,
            due: Instant::now() + every,
        }
    }

    /// The next item of `messages`; keeps the buffered events alive while it waits.
    pub(crate) async fn next<S: Stream + Unpin>(&mut self, messages: &mut S) -> Option<S::Item> {
        loop {
            self.keep_alive_if_due().await;
            // Cancel-safe: a stream's `next` that times out loses no item.
            if let Ok(item) = timeout_at(self.due, messages.next()).await {
                return item;
            }
        }
    }

    /// Puts an event into the buffer, waiting for room while keeping the buffered events
    /// alive; `reply` is its delivery's reply subject, which in-progress acks are sent to.
    pub(crate) async fn put(
        &mut self,
        envelope: Envelope,
        reply: Option<Subject>,
    ) -> Result<(), Gone> {
        let permit = loop {
            self.keep_alive_if_due().await;
            match timeout_at(self.due, self.tx.reserve()).await {
                Ok(Ok(permit)) => break permit,
                Ok(Err(_)) => return Err(Gone),
                Err(_) => {}
            }
        };
        // No await between taking the slot and recording the reply: `keep_alive` never sees
        // a slot taken by an event that is not in `replies`.
        permit.send(envelope);
        if self.replies.len() == self.tx.max_capacity() {
            self.replies.pop_front();
        }
        self.replies.push_back(reply);
        Ok(())
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.tx.is_closed()
    }

    async fn keep_alive_if_due(&mut self) {
        if Instant::now() < self.due {
            return;
        }
        // Events the subscriber took since are acknowledged (or about to be) by it.
        let waiting = self.tx.max_capacity() - self.tx.capacity();
        let taken = self.replies.len().saturating_sub(waiting);
        self.replies.drain(..taken);
        for reply in self.replies.iter().flatten() {
            // A progress ack that races with the subscriber's ack is ignored by the server.
            if let Err(error) = self
                .client
                .publish(reply.clone(), AckKind::Progress.into())
                .await
            {
                tracing::debug!(%error, "JetStream consumer: in-progress ack failed; the event may be delivered again");
            }
        }
        self.due = Instant::now() + self.every;
    }
}
