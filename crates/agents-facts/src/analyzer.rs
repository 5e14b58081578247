//! [`TreeSitterAnalyzer`]: parse under a time budget, walk once, assemble [`CodeFacts`].

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use agents_core::Language;
use agents_core::facts::{CodeFacts, FactsAnalyzer, FactsError};
use tree_sitter::{ParseOptions, ParseState, Parser, Tree};

use crate::collect::Collector;
use crate::halstead::{lines_of_code, maintainability_index};
use crate::lang::{self, Lang};
use crate::walk::walk;

/// The default time budget for one file: parse and walk.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(2);

thread_local! {
    // A parser allocates its stacks and tables on first use; keeping one per thread makes the
    // second and later files cheaper. Its language is set per call.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

/// The longest time budget per file: a day is no bound in practice, and `Instant` can add it.
pub const MAX_BUDGET: Duration = Duration::from_secs(24 * 3600);

/// Code facts from tree-sitter grammars, for the nine languages the agents accept.
///
/// Cheap to create and to share (`Send + Sync`, no state of its own); parsers are kept per
/// thread. Each call to [`FactsAnalyzer::analyze`] is bounded by the budget: a parse or walk
/// that takes longer returns [`FactsError::TimedOut`].
#[derive(Debug, Clone)]
pub struct TreeSitterAnalyzer {
    budget: Duration,
}

impl Default for TreeSitterAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeSitterAnalyzer {
    /// An analyzer with the [`DEFAULT_BUDGET`].
    pub fn new() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
        }
    }

    /// The same analyzer with another time budget per file, at most [`MAX_BUDGET`] (a budget
    /// past the end of `Instant`'s range, `Duration::MAX`, used to panic at the first file).
    #[must_use]
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget.min(MAX_BUDGET);
        self
    }

    /// The time budget per file.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Whether this build has a grammar for `language` (see the crate features).
    pub fn supports(language: Language) -> bool {
        lang::lookup(language).is_some()
    }

    fn budget_ms(&self) -> u64 {
        u64::try_from(self.budget.as_millis()).unwrap_or(u64::MAX)
    }
}

impl FactsAnalyzer for TreeSitterAnalyzer {
    fn analyze(&self, language: Language, source: &str) -> Result<CodeFacts, FactsError> {
        let lang = lang::lookup(language).ok_or(FactsError::Unsupported(language))?;
        if u32::try_from(source.len()).is_err() {
            return Err(FactsError::Failed(
                "the file is larger than 4 GiB; split it".to_owned(),
            ));
        }
        let deadline = Instant::now() + self.budget;
        let tree = parse_best(lang, source, deadline, self.budget_ms())?;
        let mut collector = Collector::new(lang, source);
        walk(&tree, &mut collector, deadline, self.budget_ms())?;
        let mut facts = CodeFacts::default();
        facts.lines = count_lines(source);
        facts.functions = collector.functions;
        facts.types = collector.types;
        facts.syntax_errors = collector.syntax_errors;
        facts.findings = collector.findings;
        facts.findings.sort_by_key(|f| f.line);
        facts.maintainability_index = maintainability_index(
            collector.halstead.volume(),
            facts.total_cyclomatic(),
            lines_of_code(source),
        );
        Ok(facts)
    }
}

/// Parses with the language's grammar, and with its other dialect when the first parse has
/// errors and the other has none (TSX, PHP without `<?php`).
fn parse_best(
    lang: &dyn Lang,
    source: &str,
    deadline: Instant,
    budget_ms: u64,
) -> Result<Tree, FactsError> {
    let tree = parse(&lang.grammar(source), source, deadline, budget_ms)?;
    if tree.root_node().has_error()
        && let Some(other) = lang.fallback_grammar(source)
    {
        let second = parse(&other, source, deadline, budget_ms)?;
        if !second.root_node().has_error() {
            return Ok(second);
        }
    }
    Ok(tree)
}

/// One parse, stopped by the progress callback at `deadline`.
fn parse(
    grammar: &tree_sitter::Language,
    source: &str,
    deadline: Instant,
    budget_ms: u64,
) -> Result<Tree, FactsError> {
    PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => parse_with(
            slot.get_or_insert_with(Parser::new),
            grammar,
            source,
            deadline,
            budget_ms,
        ),
        // Re-entered on this thread (an analyzer called from a callback): use a fresh parser.
        Err(_) => parse_with(&mut Parser::new(), grammar, source, deadline, budget_ms),
    })
}

fn parse_with(
    parser: &mut Parser,
    grammar: &tree_sitter::Language,
    source: &str,
    deadline: Instant,
    budget_ms: u64,
) -> Result<Tree, FactsError> {
    // A parse stopped by the callback resumes on the next call unless the parser is reset.
    parser.reset();
    parser
        .set_language(grammar)
        .map_err(|e| FactsError::Failed(format!("the grammar does not fit the parser: {e}")))?;
    let bytes = source.as_bytes();
    let mut read = |offset: usize, _| bytes.get(offset..).unwrap_or(&[]);
    let mut over_time = |_: &ParseState| {
        if Instant::now() >= deadline {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = ParseOptions::new().progress_callback(&mut over_time);
    let tree = parser.parse_with_options(&mut read, None, Some(options));
    match tree {
        Some(tree) => Ok(tree),
        None if Instant::now() >= deadline => Err(FactsError::TimedOut { budget_ms }),
        None => Err(FactsError::Failed(
            "the parser gave up without a tree".to_owned(),
        )),
    }
}

/// Lines in the file: a final line without a newline counts, an empty file has none.
fn count_lines(source: &str) -> u32 {
    let count = source.lines().count();
    u32::try_from(count).unwrap_or(u32::MAX)
}
