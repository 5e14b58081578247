//! The response body that keeps its request counted until it ends.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::layer::Slot;

pin_project! {
    /// A response body of [`ShedService`](super::ShedService): the inner body, and the request's
    /// in-flight slot, released when the body ends or is dropped (a client that hangs up
    /// mid-stream frees it too). A gRPC response ends with its trailers, so a streaming call
    /// counts for its whole life.
    pub struct ShedBody<B> {
        #[pin]
        inner: B,
        slot: Option<Slot>,
    }
}

impl<B> ShedBody<B> {
    pub(super) fn new(inner: B, slot: Option<Slot>) -> Self {
        Self { inner, slot }
    }
}

impl<B: fmt::Debug> fmt::Debug for ShedBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShedBody")
            .field("inner", &self.inner)
            .field("counted", &self.slot.is_some())
            .finish()
    }
}

impl<B: Body> Body for ShedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None | Some(Err(_))) = &frame {
            // Ended: free the slot now rather than whenever hyper drops the body.
            this.slot.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
