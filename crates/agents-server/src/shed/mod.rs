//! Load shedding at the front door: a tower layer around the whole gRPC router.
//!
//! Why it exists: under overload, requests wait *in front of* the handler. Hyper decodes a
//! stream's headers and spawns a task for it; when the CPU is saturated that task waits in the
//! runtime's queue, with its request buffered, long before the handler's in-flight check
//! (`limits::Limiter`, which needs the authenticated tenant) can see it. The load benchmark
//! showed the result at twice the sustainable rate: no `RESOURCE_EXHAUSTED`, a queue of
//! thousands of requests, seconds of latency and the resident memory growing to ~320 MiB.
//!
//! [`ShedLayer`] runs when hyper hands the stream over, before the body is decoded and before
//! the handler exists, and refuses, with a `RESOURCE_EXHAUSTED` status and a retry hint, when
//! either
//!
//! - **too many requests are in flight** (`limits.max_in_flight`): each request is counted from
//!   its arrival until its response body ends (a stream's whole life), so the count covers
//!   queued requests too and bounds the memory they hold; or
//! - **the runtime is too far behind** (`limits.max_queue_delay_ms`): a probe task measures every
//!   5 ms how much later than asked the runtime gets to run it, and each request is also timed
//!   from its arrival to its first poll. Both are near zero unless the CPU is saturated. The
//!   probe is what sees overload: under saturation requests wait in hyper's connection tasks
//!   (frames not yet read) and as handlers waiting to be polled again, while tokio runs a
//!   freshly spawned stream task next (its LIFO slot), so a request's own first wait looks
//!   short. Refusing while the runtime lags keeps the latency of the admitted requests bounded
//!   whatever the upstream latency (a cap on the count alone cannot: holding 3,000 req/s
//!   against a 50 ms model needs 150 calls in flight, while 150 calls queued behind a saturated
//!   CPU at 0 ms upstream are tens of milliseconds of pure queueing).
//!
//!   The probe rests on a quiet server: when 200 measurements in a row (a second) found
//!   nothing in flight and no lag, it parks, and the next admitted request wakes it (health
//!   checks and reflection, which are not counted, do not). An idle server would otherwise
//!   wake 200 times a second: measured, 178 context switches and 4-5 ms of CPU a second,
//!   nearly all of its activity.
//!
//! A refusal is decided and counted at once, without decoding anything or starting a handler.
//! It then reads what is left of the request's body, which follows the headers at once (at
//! most 64 KiB, never decoded, holding no slot), allocates one response and does no other
//! work, so shedding stays cheap when it is needed most. Reading the body lets HTTP/2 close the
//! stream with the answer. Answered with its body still on the way, the stream was reset after
//! the answer, and by our reading of `h2` kept its slot of `http2_max_concurrent_streams` until
//! then, so a client at that limit could see its next call refused by HTTP/2 itself (measured:
//! 6-112 per saturation run before, none after). Health checks and reflection
//! (`grpc.health.v1`, `grpc.reflection.*`) pass uncounted and are never refused: they are
//! cheap, and an orchestrator that saw a busy server fail its health check would restart it,
//! turning overload into an outage. They stay bounded per connection by
//! `server.http2_max_concurrent_streams` like everything else.
//!
//! The per-tenant limits stay in the handler (`limits::Limiter`): they need the authenticated
//! tenant, which is only known after the headers were checked.

mod body;
mod layer;
#[cfg(test)]
mod tests;

pub use body::ShedBody;
pub use layer::{Arrived, ShedConfig, ShedFuture, ShedLayer, ShedReason, ShedService};
