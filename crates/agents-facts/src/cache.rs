//! [`CachedAnalyzer`]: the facts of a source already analysed, kept in a bounded cache.
//!
//! Why: the same file is analysed again and again in real use. A CI job that runs all three
//! agents on a changed file parses it three times; an editor asks about the file it shows on
//! every save that did not change it; a client that retries sends the same source again. The
//! parse and walk are most of what a call costs the server (about a third of its CPU for a
//! small file, all of it for a large one), and facts depend only on the language and the
//! source, so they can be shared.
//!
//! Keys are the language and the SHA-256 digest of the source. The source itself is not kept:
//! no caller's code stays in memory after its call, only its facts (names, signatures, doc
//! comments, line numbers), and two sources sharing a key would take a SHA-256 collision. Only
//! successful analyses are kept: a time-out depends on the load at that moment. The cache is
//! bounded by an approximate byte weight (the text of the facts plus a fixed cost per item) and
//! evicts with quick_cache's S3-FIFO: a file is admitted on probation (3 % of the weight) and
//! kept if asked for again, so a stream of one-off files does not flush the files asked about
//! repeatedly. A file asked for a second time only after its probation ended is admitted for
//! good on its third request (quick_cache remembers recently evicted keys).
//!
//! One cache serves every caller. A hit hands out nothing the caller did not send (facts come
//! from the source alone), but its speed tells that the same source was analysed recently; a
//! service whose tenants must not learn even that should not share one cache between them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agents_core::Language;
use agents_core::facts::{CodeFacts, FactsAnalyzer, FactsError};
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{OptionsBuilder, Weighter};
use sha2::{Digest as _, Sha256};

/// The cache's shards, each with a quarter of the capacity: fixed rather than quick_cache's
/// default (four per core), whose shards on a large machine are too small for one large file.
const SHARDS: usize = 4;

/// An entry heavier than its shard's capacity over this is not kept, so that one large file
/// cannot evict most of a shard.
const LARGEST_SHARE: u64 = 4;

/// Bookkeeping bytes counted per entry and per listed item, on top of the text they hold.
const ENTRY_OVERHEAD: u64 = 256;
const ITEM_OVERHEAD: u64 = 192;

type Key = (Language, [u8; 32]);

/// The facts of one source, with the weight they count for. No `Debug`: facts quote names,
/// signatures and doc comments of a caller's code.
struct Entry {
    facts: CodeFacts,
    weight: u64,
}

#[derive(Debug, Clone, Copy)]
struct ByWeight;

impl Weighter<Key, Arc<Entry>> for ByWeight {
    fn weight(&self, _key: &Key, entry: &Arc<Entry>) -> u64 {
        entry.weight
    }
}

/// What a [`CachedAnalyzer`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that ran the analyzer (first sight, evicted, or too large to keep).
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
    /// Their approximate weight in bytes now.
    pub weight_bytes: u64,
    /// The most the entries may weigh.
    pub capacity_bytes: u64,
}

/// A [`FactsAnalyzer`] that answers a source it has seen from memory.
///
/// ```
/// # #[cfg(feature = "python")] {
/// use agents_core::Language;
/// use agents_core::facts::FactsAnalyzer;
/// use agents_facts::{CachedAnalyzer, TreeSitterAnalyzer};
///
/// let analyzer = CachedAnalyzer::new(TreeSitterAnalyzer::new(), 8 << 20);
/// let source = "def area(w, h):\n    return w * h\n";
/// let first = analyzer.analyze(Language::Python, source).unwrap();
/// let again = analyzer.analyze(Language::Python, source).unwrap();
/// assert_eq!(first, again);
/// assert_eq!((analyzer.stats().misses, analyzer.stats().hits), (1, 1));
/// # }
/// ```
pub struct CachedAnalyzer<A> {
    inner: A,
    cache: Cache<Key, Arc<Entry>, ByWeight, foldhash::fast::RandomState>,
    capacity_bytes: u64,
    largest_entry: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<A: FactsAnalyzer> CachedAnalyzer<A> {
    /// Wraps `inner` with a cache of at most `capacity_bytes` (approximate: each entry counts
    /// the text of its facts and a fixed cost per item). The cache has four shards; an entry
    /// heavier than a quarter of a shard (a sixteenth of the capacity) is not kept.
    pub fn new(inner: A, capacity_bytes: u64) -> Self {
        // quick_cache sizes its tables from this; a typical entry (the facts of a few-kilobyte
        // file) weighs 1-4 KiB.
        let estimated_entries = usize::try_from(capacity_bytes / 2048)
            .unwrap_or(usize::MAX)
            .clamp(16, 1 << 20);
        let weight_capacity = capacity_bytes.max(1);
        let options = OptionsBuilder::new()
            .shards(SHARDS)
            .estimated_items_capacity(estimated_entries)
            .weight_capacity(weight_capacity)
            .build();
        let hasher = foldhash::fast::RandomState::default();
        let cache = match options {
            Ok(options) => {
                Cache::with_options(options, ByWeight, hasher, DefaultLifecycle::default())
            }
            // Only a missing setting fails, and both are set above.
            Err(_) => Cache::with(
                estimated_entries,
                weight_capacity,
                ByWeight,
                hasher,
                DefaultLifecycle::default(),
            ),
        };
        Self {
            inner,
            cache,
            capacity_bytes,
            largest_entry: capacity_bytes / (SHARDS as u64 * LARGEST_SHARE),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The analyzer behind the cache.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// Hits, misses and what the cache holds now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.len() as u64,
            weight_bytes: self.cache.weight(),
            capacity_bytes: self.capacity_bytes,
        }
    }
}

impl<A: FactsAnalyzer> CachedAnalyzer<A> {
    /// The key of `source`, and its facts when the cache holds them (counted as a hit or a
    /// miss).
    fn lookup(&self, language: Language, source: &str) -> (Key, Option<CodeFacts>) {
        let key = (language, Sha256::digest(source.as_bytes()).into());
        if let Some(entry) = self.cache.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return (key, Some(entry.facts.clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        (key, None)
    }

    /// Keeps `facts` under `key`, unless they alone would fill too much of the cache.
    fn keep(&self, key: Key, facts: &CodeFacts) {
        let weight = weight(facts);
        if weight <= self.largest_entry {
            self.cache.insert(
                key,
                Arc::new(Entry {
                    facts: facts.clone(),
                    weight,
                }),
            );
        }
    }
}

#[async_trait::async_trait]
impl<A: FactsAnalyzer> FactsAnalyzer for CachedAnalyzer<A> {
    fn analyze(&self, language: Language, source: &str) -> Result<CodeFacts, FactsError> {
        let (key, hit) = self.lookup(language, source);
        if let Some(facts) = hit {
            return Ok(facts);
        }
        let facts = self.inner.analyze(language, source)?;
        self.keep(key, &facts);
        Ok(facts)
    }

    /// A hit is answered here and now; a miss goes to the inner analyzer's
    /// [`analyze_in_run`](FactsAnalyzer::analyze_in_run), so an inner analyzer that runs large
    /// files elsewhere still does, and cached files never wait for it.
    async fn analyze_in_run(
        &self,
        language: Language,
        source: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<CodeFacts, FactsError> {
        let (key, hit) = self.lookup(language, source);
        if let Some(facts) = hit {
            return Ok(facts);
        }
        let facts = self
            .inner
            .analyze_in_run(language, source, deadline)
            .await?;
        self.keep(key, &facts);
        Ok(facts)
    }
}

impl<A: fmt::Debug> fmt::Debug for CachedAnalyzer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the cached facts: they quote the callers' code.
        f.debug_struct("CachedAnalyzer")
            .field("inner", &self.inner)
            .field("capacity_bytes", &self.capacity_bytes)
            .field("entries", &self.cache.len())
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("misses", &self.misses.load(Ordering::Relaxed))
            .finish()
    }
}

/// The approximate bytes an entry holds: the text of its facts (names, signatures, docs,
/// messages) and a fixed cost per item.
fn weight(facts: &CodeFacts) -> u64 {
    let text: usize = facts
        .functions
        .iter()
        .map(|f| {
            f.name.len()
                + f.signature.len()
                + f.container.as_ref().map_or(0, String::len)
                + f.doc.as_ref().map_or(0, String::len)
                + f.return_type.as_ref().map_or(0, String::len)
                + f.parameters
                    .iter()
                    .map(|p| p.name.len() + p.type_name.as_ref().map_or(0, String::len))
                    .sum::<usize>()
                + f.branches.iter().map(|b| b.kind.len()).sum::<usize>()
        })
        .chain(
            facts
                .types
                .iter()
                .map(|t| t.name.len() + t.kind.len() + t.doc.as_ref().map_or(0, String::len)),
        )
        .chain(facts.findings.iter().map(|f| f.message.len()))
        .chain(facts.syntax_errors.iter().map(|e| e.message.len()))
        .sum();
    let items = facts.functions.len()
        + facts.types.len()
        + facts.findings.len()
        + facts.syntax_errors.len()
        + facts
            .functions
            .iter()
            .map(|f| f.parameters.len() + f.branches.len())
            .sum::<usize>();
    let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    ENTRY_OVERHEAD
        .saturating_add(bytes(text))
        .saturating_add(bytes(items).saturating_mul(ITEM_OVERHEAD))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use agents_core::facts::FunctionFacts;

    use super::*;

    /// Counts its calls and answers with one function named after the whole source (so an
    /// entry weighs about the source's length): a stand-in for the grammar-backed analyzer
    /// where a test needs to see whether the cache called through.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicU64,
        /// Calls through `analyze_in_run` (each also counted in `calls`).
        in_run: AtomicU64,
        fail: Mutex<bool>,
    }

    #[async_trait::async_trait]
    impl FactsAnalyzer for Counting {
        async fn analyze_in_run(
            &self,
            language: Language,
            source: &str,
            _deadline: Option<std::time::Instant>,
        ) -> Result<CodeFacts, FactsError> {
            self.in_run.fetch_add(1, Ordering::Relaxed);
            self.analyze(language, source)
        }

        fn analyze(&self, _language: Language, source: &str) -> Result<CodeFacts, FactsError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if *self.fail.lock().unwrap() {
                return Err(FactsError::TimedOut { budget_ms: 1 });
            }
            let mut facts = CodeFacts::default();
            facts.lines = u32::try_from(source.lines().count()).unwrap();
            let mut function = FunctionFacts::default();
            function.name = source.to_owned();
            facts.functions.push(function);
            Ok(facts)
        }
    }

    fn calls(analyzer: &CachedAnalyzer<Counting>) -> u64 {
        analyzer.inner().calls.load(Ordering::Relaxed)
    }

    #[test]
    fn a_repeated_source_is_answered_from_memory() {
        let analyzer = CachedAnalyzer::new(Counting::default(), 1 << 20);
        let a = analyzer.analyze(Language::Rust, "fn a() {}\n").unwrap();
        let again = analyzer.analyze(Language::Rust, "fn a() {}\n").unwrap();
        assert_eq!(a, again);
        assert_eq!(calls(&analyzer), 1);
        // Another source, or the same source in another language, is analysed.
        analyzer.analyze(Language::Rust, "fn b() {}\n").unwrap();
        analyzer.analyze(Language::Go, "fn a() {}\n").unwrap();
        assert_eq!(calls(&analyzer), 3);
        let stats = analyzer.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 3));
        assert!(stats.weight_bytes > 0 && stats.weight_bytes <= stats.capacity_bytes);
    }

    #[test]
    fn failures_are_not_kept() {
        let analyzer = CachedAnalyzer::new(Counting::default(), 1 << 20);
        *analyzer.inner().fail.lock().unwrap() = true;
        assert!(analyzer.analyze(Language::Rust, "fn a() {}").is_err());
        *analyzer.inner().fail.lock().unwrap() = false;
        assert!(analyzer.analyze(Language::Rust, "fn a() {}").is_ok());
        assert_eq!(calls(&analyzer), 2);
    }

    #[test]
    fn the_weight_stays_under_the_capacity_and_large_entries_are_not_kept() {
        let capacity = 64 * 1024;
        let analyzer = CachedAnalyzer::new(Counting::default(), capacity);
        for i in 0..2_000 {
            analyzer
                .analyze(Language::Rust, &format!("fn f{i}() {{}}\n"))
                .unwrap();
        }
        let stats = analyzer.stats();
        assert!(stats.weight_bytes <= capacity, "{stats:?}");
        // Each entry counts at least its fixed overhead.
        assert!(stats.entries <= capacity / ENTRY_OVERHEAD, "{stats:?}");
        // Facts over a sixteenth of the capacity: analysed every time, never kept.
        let large = "x".repeat(usize::try_from(capacity / 8).unwrap());
        analyzer.analyze(Language::Rust, &large).unwrap();
        let before = calls(&analyzer);
        analyzer.analyze(Language::Rust, &large).unwrap();
        assert_eq!(calls(&analyzer), before + 1);
        // Just under the limit: kept.
        let fits = "y".repeat(usize::try_from(capacity / 16 - 2 * 1024).unwrap());
        analyzer.analyze(Language::Rust, &fits).unwrap();
        let before = calls(&analyzer);
        analyzer.analyze(Language::Rust, &fits).unwrap();
        assert_eq!(calls(&analyzer), before);
    }

    #[cfg(feature = "rust")]
    #[test]
    fn cached_facts_equal_fresh_ones() {
        let analyzer = CachedAnalyzer::new(crate::TreeSitterAnalyzer::new(), 1 << 20);
        let source = "/// Adds.\npub fn add(a: u32, b: u32) -> u32 { if a > b { a } else { b } }\n";
        let fresh = crate::TreeSitterAnalyzer::new()
            .analyze(Language::Rust, source)
            .unwrap();
        assert_eq!(analyzer.analyze(Language::Rust, source).unwrap(), fresh);
        assert_eq!(analyzer.analyze(Language::Rust, source).unwrap(), fresh);
        assert_eq!(analyzer.stats().hits, 1);
        assert!(!format!("{analyzer:?}").contains("add"), "Debug shows code");
    }

    #[test]
    fn a_run_misses_through_the_inner_analyzers_run_and_hits_without_it() {
        let cache = CachedAnalyzer::new(Counting::default(), 1 << 20);
        let run = |source: &str| {
            let analysis = cache.analyze_in_run(Language::Rust, source, None);
            futures_executor::block_on(analysis).unwrap()
        };
        let first = run("fn a() {}");
        assert_eq!(cache.inner().in_run.load(Ordering::Relaxed), 1);
        assert_eq!(run("fn a() {}"), first);
        assert_eq!(cache.inner().in_run.load(Ordering::Relaxed), 1);
        assert_eq!(cache.inner().calls.load(Ordering::Relaxed), 1);
        // `analyze` finds what a run kept.
        assert_eq!(cache.analyze(Language::Rust, "fn a() {}").unwrap(), first);
        assert_eq!(cache.inner().calls.load(Ordering::Relaxed), 1);
        assert_eq!((cache.stats().hits, cache.stats().misses), (2, 1));
    }
}
