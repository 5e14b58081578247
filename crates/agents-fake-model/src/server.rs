//! The server: listener, connections, shared script and request log.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::behavior::Behavior;
use crate::handler;

/// How many requests [`FakeModel::requests`] keeps: the log is bounded like every queue of the
/// project, so a long benchmark cannot grow it without limit.
const MAX_RECORDED: usize = 10_000;

/// One request as the fake model received it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Every header in the order received; names are lowercase, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header; `name` is matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The script and the log, shared by the handle and every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Chat requests being answered now (a client that hangs up ends its request).
    pub(crate) answering: std::sync::atomic::AtomicUsize,
    /// Stops every connection and every waiting behaviour.
    pub(crate) stop: CancellationToken,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Arc<Behavior>>,
    default: Arc<Behavior>,
    recording: bool,
    requests: VecDeque<RecordedRequest>,
    count: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test double; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a request and returns its sequence number (from 1), and, when `scripted`, the
    /// behaviour that answers it.
    pub(crate) fn record(
        &self,
        request: impl FnOnce() -> RecordedRequest,
        scripted: bool,
    ) -> (u64, Option<Arc<Behavior>>) {
        let mut state = self.lock();
        state.count += 1;
        let seq = state.count as u64;
        if state.recording {
            if state.requests.len() == MAX_RECORDED {
                state.requests.pop_front();
            }
            let request = request();
            state.requests.push_back(request);
        }
        let behavior = scripted.then(|| {
            state
                .queue
                .pop_front()
                .unwrap_or_else(|| Arc::clone(&state.default))
        });
        (seq, behavior)
    }
}

/// A running fake OpenAI-compatible server on a loopback port.
///
/// Dropping it, or [`shutdown`](Self::shutdown), stops the server: it accepts no more
/// connections, closes idle ones, and ends requests that are delayed, hanging or stalled by
/// closing their connections.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: TaskTracker,
}

impl fmt::Debug for FakeModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeModel")
            .field("addr", &self.addr)
            .field("request_count", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl FakeModel {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<FakeModel> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a server on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeModel> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                default: Arc::new(Behavior::Answer),
                recording: true,
                requests: VecDeque::new(),
                count: 0,
            }),
            answering: std::sync::atomic::AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        tasks.spawn(accept(listener, Arc::clone(&shared), tasks.clone()));
        Ok(FakeModel {
            addr,
            shared,
            tasks,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL of the server, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a one-shot behaviour: chat requests take queued behaviours first in, first out,
    /// one each.
    pub fn push(&self, behavior: Behavior) {
        self.shared.lock().queue.push_back(Arc::new(behavior));
    }

    /// Sets the behaviour of chat requests that find the queue empty; it starts as
    /// [`Behavior::Answer`].
    pub fn set_default(&self, behavior: Behavior) {
        self.shared.lock().default = Arc::new(behavior);
    }

    /// Turns the request log on (the initial state) or off. Counting goes on either way; the
    /// benchmark binary turns the log off so that it costs nothing.
    pub fn set_recording(&self, enabled: bool) {
        self.shared.lock().recording = enabled;
    }

    /// The requests received, oldest first: all of them, or the last 10 000 once there were
    /// more. A request is logged before its behaviour runs, so a request still being answered
    /// (delayed, hanging) is already here.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// How many requests the server has received since it started, including those the
    /// bounded log no longer keeps and those received while the log was off.
    pub fn request_count(&self) -> usize {
        self.shared.lock().count
    }

    /// Chat requests being answered right now: received, and neither answered nor abandoned
    /// by a client that closed its connection. A test checks with it that a cancelled call
    /// really stopped at the model.
    pub fn answering(&self) -> usize {
        self.shared
            .answering
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the server and waits until every connection is closed.
    pub async fn shutdown(self) {
        self.shared.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.tasks.close();
    }
}

/// Accepts connections until the server stops, serving each in its own task.
async fn accept(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tasks.spawn(serve(stream, Arc::clone(&shared)));
            }
            // Out of file descriptors and the like: back off instead of spinning, and go on
            // serving the connections already open.
            Err(_) => {
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        }
    }
}

/// Serves one HTTP/1.1 connection (keep-alive) until the client closes it, a behaviour drops
/// it, or the server stops.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let stop = shared.stop.clone();
    let service = service_fn(move |request| handler::handle(Arc::clone(&shared), request));
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = stop.cancelled() => {
            // Idle connections close now; requests in flight end soon, because every waiting
            // behaviour also watches `stop`.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
