//! An in-process scripted model, for this crate's tests and benchmarks (feature `testing`).
//!
//! The model is the one thing the project fakes. Over HTTP that is the `agents-fake-model`
//! crate; for policy tests and the per-call overhead benchmark, where HTTP would drown what is
//! measured, it is this: a `Provider` that plays back a script and records what it was sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents_core::{
    GenerateRequest, Generation, GenerationStream, Provider, ProviderError, ProviderHealth,
    StreamDelta, Usage,
};

/// What the scripted model does for one call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Script {
    /// Answer with this text.
    Text(String),
    /// Fail with this error.
    Fail(ProviderError),
    /// Wait, then answer `late`.
    Delay(Duration),
    /// Stream these pieces with `gap` before each; stall forever after the last one when
    /// `stall` is set, otherwise finish.
    Stream {
        /// The text pieces.
        pieces: Vec<String>,
        /// Wait before each piece.
        gap: Duration,
        /// Never finish.
        stall: bool,
    },
    /// Stream these pieces, then fail with this error.
    StreamThenFail {
        /// The text pieces.
        pieces: Vec<String>,
        /// The error after them.
        error: ProviderError,
    },
}

impl Script {
    /// Answer with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Fail with `error`.
    pub fn fail(error: ProviderError) -> Self {
        Self::Fail(error)
    }

    /// Wait `delay`, then answer.
    pub fn delay(delay: Duration) -> Self {
        Self::Delay(delay)
    }

    /// A stream that finishes.
    pub fn stream<S: Into<String>>(pieces: impl IntoIterator<Item = S>, gap: Duration) -> Self {
        Self::Stream {
            pieces: pieces.into_iter().map(Into::into).collect(),
            gap,
            stall: false,
        }
    }

    /// A stream that stalls after its pieces.
    pub fn stream_stalling<S: Into<String>>(
        pieces: impl IntoIterator<Item = S>,
        gap: Duration,
    ) -> Self {
        Self::Stream {
            pieces: pieces.into_iter().map(Into::into).collect(),
            gap,
            stall: true,
        }
    }
}

/// A `Provider` that plays back scripts in order, then its default, and records every request.
#[derive(Debug)]
pub struct ScriptedProvider {
    id: String,
    scripts: Mutex<VecDeque<Script>>,
    default: Mutex<Script>,
    requests: Mutex<Vec<GenerateRequest>>,
    calls: AtomicUsize,
}

impl ScriptedProvider {
    /// A provider that plays `scripts`, then answers `ok`.
    pub fn new(id: &str, scripts: impl IntoIterator<Item = Script>) -> Arc<Self> {
        Arc::new(Self {
            id: id.to_owned(),
            scripts: Mutex::new(scripts.into_iter().collect()),
            default: Mutex::new(Script::text("ok")),
            requests: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        })
    }

    /// Sets what happens once the scripts are used up.
    pub fn set_default(&self, script: Script) {
        *self.default.lock().unwrap_or_else(PoisonError::into_inner) = script;
    }

    /// Appends a script.
    pub fn push(&self, script: Script) {
        self.scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(script);
    }

    /// How many calls were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The last request received (a default request if none was).
    pub fn last_request(&self) -> GenerateRequest {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
            .unwrap_or_default()
    }

    fn next(&self, request: GenerateRequest) -> Script {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep memory bounded in long benchmarks: the last request is what tests look at.
        if requests.len() >= 1024 {
            requests.clear();
        }
        requests.push(request);
        drop(requests);
        let scripted = self
            .scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        scripted.unwrap_or_else(|| {
            self.default
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }

    fn generation(&self, text: String) -> Generation {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: (text.len() as u64 / 4).max(1),
        };
        Generation::new(self.id.clone(), "scripted-model", text).with_usage(usage)
    }
}

#[async_trait::async_trait]
impl Provider for ScriptedProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        match self.next(request) {
            Script::Text(text) => Ok(self.generation(text)),
            Script::Fail(error) | Script::StreamThenFail { error, .. } => Err(error),
            Script::Delay(delay) => {
                tokio::time::sleep(delay).await;
                Ok(self.generation("late".into()))
            }
            Script::Stream { pieces, gap, stall } => {
                for _ in &pieces {
                    tokio::time::sleep(gap).await;
                }
                if stall {
                    std::future::pending::<()>().await;
                }
                Ok(self.generation(pieces.concat()))
            }
        }
    }

    async fn generate_stream(
        &self,
        request: GenerateRequest,
    ) -> Result<GenerationStream, ProviderError> {
        let (pieces, gap, end) = match self.next(request) {
            Script::Text(text) => (vec![text], Duration::ZERO, None),
            Script::Fail(error) => return Err(error),
            Script::Delay(delay) => {
                tokio::time::sleep(delay).await;
                (vec!["late".to_owned()], Duration::ZERO, None)
            }
            Script::Stream { pieces, gap, stall } => (pieces, gap, stall.then_some(None)),
            Script::StreamThenFail { pieces, error } => (pieces, Duration::ZERO, Some(Some(error))),
        };
        let finished = self.generation(pieces.concat());
        let stream = async_stream(pieces, gap, end, finished);
        Ok(Box::pin(stream))
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

/// Pieces with a gap before each, then: `None` finish, `Some(None)` stall, `Some(Some(e))` fail.
fn async_stream(
    pieces: Vec<String>,
    gap: Duration,
    end: Option<Option<ProviderError>>,
    finished: Generation,
) -> impl futures_util::Stream<Item = Result<StreamDelta, ProviderError>> + Send + 'static {
    let state = (pieces.into_iter(), Some(end), Some(finished));
    futures_util::stream::unfold(
        state,
        move |(mut pieces, mut end, mut finished)| async move {
            if let Some(piece) = pieces.next() {
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                return Some((Ok(StreamDelta::Text(piece)), (pieces, end, finished)));
            }
            match end.take()? {
                None => Some((
                    Ok(StreamDelta::Finished(finished.take()?)),
                    (pieces, None, None),
                )),
                Some(None) => std::future::pending().await,
                Some(Some(error)) => Some((Err(error), (pieces, None, None))),
            }
        },
    )
}
