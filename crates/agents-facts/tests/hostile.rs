//! Hostile input: binary bytes, a 256 KiB line, 10,000 nested brackets, an empty file, and
//! arbitrary strings. Facts or a clear error, never a panic or a stack overflow, and within
//! the budget.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use agents_core::Language;
use agents_core::facts::{FactsAnalyzer, FactsError};
use agents_facts::TreeSitterAnalyzer;
use proptest::prelude::*;

const BUDGET: Duration = Duration::from_millis(1500);

/// Analyzes `source` in every language; each call ends with facts or a timeout, in time.
fn survive(source: &str) {
    let analyzer = TreeSitterAnalyzer::new().with_budget(BUDGET);
    for language in Language::ALL {
        let started = Instant::now();
        match analyzer.analyze(language, source) {
            Ok(facts) => {
                assert!((0.0..=100.0).contains(&facts.maintainability_index));
                assert!(facts.syntax_errors.len() <= 100);
            }
            Err(FactsError::TimedOut { budget_ms }) => assert_eq!(budget_ms, 1500),
            Err(other) => panic!("{language}: {other}"),
        }
        // Some slack for the walk's clock checks and a loaded machine.
        assert!(
            started.elapsed() < BUDGET * 3,
            "{language} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn binary_bytes() {
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    survive(&String::from_utf8_lossy(&bytes));
}

#[test]
fn a_256_kib_line() {
    let line = "a + b * (c - d) && e || f ? 'x' : \"y\"; ".repeat(256 * 1024 / 40);
    survive(&line);
    survive(&"x".repeat(256 * 1024));
}

#[test]
fn ten_thousand_nested_brackets() {
    let depth = 10_000;
    survive(&format!("{}{}", "(".repeat(depth), ")".repeat(depth)));
    survive(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    survive(&"{".repeat(depth));
    let nested_ifs = format!(
        "fn f() {{ {} }}",
        "if a { ".repeat(2000) + &"} ".repeat(2000)
    );
    survive(&nested_ifs);
}

#[test]
fn empty_and_blank_files() {
    let analyzer = TreeSitterAnalyzer::new();
    for language in Language::ALL {
        let facts = analyzer.analyze(language, "").unwrap();
        assert_eq!(facts.lines, 0);
        assert!(facts.functions.is_empty() && facts.syntax_errors.is_empty());
        // Only the file's base cyclomatic complexity of 1 counts against it.
        assert!(facts.maintainability_index > 99.0);
        survive("\n\n   \n");
    }
}

#[test]
fn a_tiny_budget_times_out_instead_of_running_on() {
    let analyzer = TreeSitterAnalyzer::new().with_budget(Duration::ZERO);
    let big = "function f(a) { if (a) { return a + 1; } }\n".repeat(20_000);
    let started = Instant::now();
    let result = analyzer.analyze(Language::Javascript, &big);
    assert_eq!(result, Err(FactsError::TimedOut { budget_ms: 0 }));
    assert!(started.elapsed() < Duration::from_secs(1));
    // The thread's parser is usable again afterwards.
    let facts = TreeSitterAnalyzer::new()
        .analyze(Language::Javascript, "function g() {}")
        .unwrap();
    assert_eq!(facts.functions[0].name, "g");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(source in "\\PC{0,400}") {
        let analyzer = TreeSitterAnalyzer::new().with_budget(BUDGET);
        for language in Language::ALL {
            let _ = analyzer.analyze(language, &source);
        }
    }

    #[test]
    fn code_like_strings_never_panic(source in "[a-z(){}\\[\\];:=+<>\"'`#$ \n]{0,400}") {
        let analyzer = TreeSitterAnalyzer::new().with_budget(BUDGET);
        for language in Language::ALL {
            let _ = analyzer.analyze(language, &source);
        }
    }
}

/// A budget past `Instant`'s range (`Duration::MAX`, "no limit") used to panic at the first
/// file; it is held to `MAX_BUDGET`.
#[test]
fn an_unbounded_budget_is_capped_not_a_panic() {
    let analyzer = TreeSitterAnalyzer::new().with_budget(Duration::MAX);
    assert_eq!(analyzer.budget(), agents_facts::MAX_BUDGET);
    assert!(analyzer.analyze(Language::Python, "x = 1\n").is_ok());
}
