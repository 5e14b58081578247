//! Code analysis off the runtime's threads.
//!
//! [`FactsAnalyzer::analyze`] is synchronous CPU work: about 180 µs for the benchmark's 22-line
//! file, tens of milliseconds for a large one, and up to the analyzer's budget (2 s by default)
//! for a hostile one. Run on a runtime thread, a large file stops every other task on that
//! thread (other calls, health checks, task heartbeats) for that long; two at once stop a
//! two-core server. [`OffloadedAnalyzer`] runs a source of [`INLINE_MAX_BYTES`] or more on
//! tokio's blocking threads, at most one per core at a time: a parse's memory grows with its
//! file, so the number running is bounded, and the runs waiting hold no thread. Small sources,
//! the common case, stay inline, where a thread hand-off would cost more than their analysis.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use agents_core::Language;
use agents_core::facts::{CodeFacts, FactsAnalyzer, FactsError};
use tokio::sync::Semaphore;

/// Sources shorter than this are analysed on the calling thread (about a millisecond of
/// tree-sitter on the benchmark machine).
pub const INLINE_MAX_BYTES: usize = 8 * 1024;

/// An analyzer whose runs analyse large sources on tokio's blocking threads, at most one per
/// core at a time (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct OffloadedAnalyzer {
    inner: Arc<dyn FactsAnalyzer>,
    running: Arc<Semaphore>,
}

impl OffloadedAnalyzer {
    /// `inner`, with as many analyses at once as the machine has cores.
    pub fn new(inner: Arc<dyn FactsAnalyzer>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self::with_slots(inner, cores)
    }

    /// `inner`, with at most `slots` (at least one) analyses off the caller's thread at once.
    pub fn with_slots(inner: Arc<dyn FactsAnalyzer>, slots: usize) -> Self {
        Self {
            inner,
            running: Arc::new(Semaphore::new(slots.max(1))),
        }
    }
}

#[async_trait::async_trait]
impl FactsAnalyzer for OffloadedAnalyzer {
    fn analyze(&self, language: Language, source: &str) -> Result<CodeFacts, FactsError> {
        self.inner.analyze(language, source)
    }

    /// Inline for a small source or outside a tokio runtime; otherwise on a blocking thread
    /// once a slot is free, giving up at `deadline`. Dropping the future while the analysis
    /// runs lets it finish on its thread (within the analyzer's budget), still holding its
    /// slot.
    async fn analyze_in_run(
        &self,
        language: Language,
        source: &str,
        deadline: Option<Instant>,
    ) -> Result<CodeFacts, FactsError> {
        if source.len() < INLINE_MAX_BYTES || tokio::runtime::Handle::try_current().is_err() {
            return self.inner.analyze(language, source);
        }
        let slot = Arc::clone(&self.running).acquire_owned();
        let slot = match deadline {
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(deadline, slot).await {
                    Ok(slot) => slot,
                    Err(_) => {
                        return Err(FactsError::Failed(
                            "the run's deadline passed while it waited for other files' analyses"
                                .into(),
                        ));
                    }
                }
            }
            None => slot.await,
        };
        let Ok(slot) = slot else {
            // The semaphore is never closed; were it, inline is still correct.
            return self.inner.analyze(language, source);
        };
        let source: Arc<str> = Arc::from(source);
        let (inner, on_thread) = (Arc::clone(&self.inner), Arc::clone(&source));
        let analysis = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            inner.analyze(language, &on_thread)
        });
        match analysis.await {
            Ok(facts) => facts,
            // The analyzer panicked: the same as had it panicked inline.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down and did not run it.
            Err(_) => self.inner.analyze(language, &source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Blocks in `analyze` until told to go on (or 20 s pass, so a broken test ends), and
    /// says which thread it ran on.
    #[derive(Debug)]
    struct Gate {
        go: Mutex<mpsc::Receiver<()>>,
        ran_on: Mutex<Option<std::thread::ThreadId>>,
    }

    impl FactsAnalyzer for Gate {
        fn analyze(&self, _language: Language, _source: &str) -> Result<CodeFacts, FactsError> {
            *self.ran_on.lock().unwrap() = Some(std::thread::current().id());
            match self
                .go
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20))
            {
                Ok(()) => Ok(CodeFacts::default()),
                Err(_) => Err(FactsError::Failed("never told to go on".into())),
            }
        }
    }

    fn gate() -> (Arc<Gate>, mpsc::Sender<()>) {
        let (go, wait) = mpsc::channel();
        let gate = Arc::new(Gate {
            go: Mutex::new(wait),
            ran_on: Mutex::new(None),
        });
        (gate, go)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_source_is_analysed_while_the_runtime_thread_goes_on() {
        let (gate, go) = gate();
        let analyzer = OffloadedAnalyzer::new(gate.clone());
        let source = "x".repeat(INLINE_MAX_BYTES);
        // The only runtime thread sends the go-ahead: it can only run if the analysis does
        // not hold that thread.
        let go_on = tokio::spawn(async move { go.send(()).unwrap() });
        let facts = analyzer.analyze_in_run(Language::Rust, &source, None).await;
        assert_eq!(facts, Ok(CodeFacts::default()));
        go_on.await.unwrap();
        assert_ne!(
            *gate.ran_on.lock().unwrap(),
            Some(std::thread::current().id())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_small_source_is_analysed_inline() {
        let (gate, go) = gate();
        go.send(()).unwrap();
        let analyzer = OffloadedAnalyzer::new(gate.clone());
        let facts = analyzer
            .analyze_in_run(Language::Rust, "fn f() {}", None)
            .await;
        assert_eq!(facts, Ok(CodeFacts::default()));
        assert_eq!(
            *gate.ran_on.lock().unwrap(),
            Some(std::thread::current().id())
        );
    }

    #[test]
    fn without_a_runtime_a_large_source_is_analysed_inline() {
        let (gate, go) = gate();
        go.send(()).unwrap();
        let analyzer = OffloadedAnalyzer::new(gate.clone());
        let source = "x".repeat(INLINE_MAX_BYTES * 2);
        let facts = futures_util::FutureExt::now_or_never(analyzer.analyze_in_run(
            Language::Rust,
            &source,
            None,
        ));
        assert_eq!(facts, Some(Ok(CodeFacts::default())));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_run_past_its_deadline_stops_waiting_for_a_slot() {
        let (gate, _go) = gate();
        let analyzer = OffloadedAnalyzer::with_slots(gate.clone(), 1);
        // The only slot taken, as by a hostile file still parsing.
        let taken = Arc::clone(&analyzer.running).acquire_owned().await.unwrap();
        let source = "x".repeat(INLINE_MAX_BYTES);
        let facts = analyzer
            .analyze_in_run(Language::Rust, &source, Some(Instant::now()))
            .await;
        assert!(
            matches!(&facts, Err(FactsError::Failed(m)) if m.contains("deadline")),
            "{facts:?}"
        );
        drop(taken);
        assert_eq!(*gate.ran_on.lock().unwrap(), None);
    }
}
