//! Facts for a 2,000-line file per language (the fixture repeated); the target is under
//! 10 ms each.
//!
//! `parse_2000_lines` times tree-sitter's parse of the same files alone (no walk, no facts):
//! the floor under `facts_2000_lines` on the machine that runs it. `facts_request` times the
//! load benchmark's payload: the facts one server call computes.

use std::hint::black_box;

use agents_core::Language;
use agents_core::facts::FactsAnalyzer;
use agents_facts::TreeSitterAnalyzer;
use criterion::{Criterion, criterion_group, criterion_main};

const FIXTURES: [(Language, &str); 9] = [
    (
        Language::Javascript,
        include_str!("../tests/fixtures/inventory.js"),
    ),
    (
        Language::Typescript,
        include_str!("../tests/fixtures/inventory.ts"),
    ),
    (
        Language::Python,
        include_str!("../tests/fixtures/inventory.py"),
    ),
    (
        Language::Java,
        include_str!("../tests/fixtures/Inventory.java"),
    ),
    (Language::Go, include_str!("../tests/fixtures/inventory.go")),
    (
        Language::Rust,
        include_str!("../tests/fixtures/inventory.rs"),
    ),
    (
        Language::Csharp,
        include_str!("../tests/fixtures/Inventory.cs"),
    ),
    (
        Language::Php,
        include_str!("../tests/fixtures/Inventory.php"),
    ),
    (
        Language::Ruby,
        include_str!("../tests/fixtures/inventory.rb"),
    ),
];

/// The fixture repeated to at least 2,000 lines, as one valid file: a PHP file has one `<?php`
/// opening tag (a second one is a syntax error, which would time error recovery and the
/// second-dialect parse instead of the facts).
fn two_thousand_lines(language: Language, fixture: &str) -> String {
    let lines = fixture.lines().count().max(1);
    let copies = 2000_usize.div_ceil(lines);
    let body = match language {
        Language::Php => fixture.strip_prefix("<?php").unwrap_or(fixture),
        _ => fixture,
    };
    let mut source = String::with_capacity(fixture.len() * copies);
    source.push_str(fixture);
    for _ in 1..copies {
        source.push_str(body);
    }
    source
}

/// The source of the load benchmark's request (`bench/payloads/code-analysis.json`): 22 lines
/// of Rust, what one typical call to the server analyses.
const REQUEST_SOURCE: &str = "use std::collections::HashMap;\n\n/// Counts the words of a text.\npub fn word_counts(text: &str) -> HashMap<String, usize> {\n    let mut counts = HashMap::new();\n    for word in text.split_whitespace() {\n        *counts.entry(word.to_lowercase()).or_insert(0) += 1;\n    }\n    counts\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn counts_words() {\n        let counts = word_counts(\"a b a\");\n        assert_eq!(counts[\"a\"], 2);\n        assert_eq!(counts[\"b\"], 1);\n    }\n}\n";

fn facts(c: &mut Criterion) {
    let analyzer = TreeSitterAnalyzer::new();
    let mut group = c.benchmark_group("facts_2000_lines");
    for (language, fixture) in FIXTURES {
        let source = two_thousand_lines(language, fixture);
        group.bench_function(language.as_str(), |b| {
            b.iter(|| analyzer.analyze(language, black_box(&source)))
        });
    }
    group.finish();
}

/// The facts one server call computes for the load benchmark's payload: the per-request cost
/// that `bench/compare.sh` sees.
fn facts_request(c: &mut Criterion) {
    let analyzer = TreeSitterAnalyzer::new();
    c.bench_function("facts_request/rust_22_lines", |b| {
        b.iter(|| analyzer.analyze(Language::Rust, black_box(REQUEST_SOURCE)))
    });
}

/// The grammar the analyzer picks for these fixtures.
fn grammar(language: Language) -> tree_sitter::Language {
    match language {
        Language::Javascript => tree_sitter_javascript::LANGUAGE.into(),
        Language::Typescript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        Language::Python => tree_sitter_python::LANGUAGE.into(),
        Language::Java => tree_sitter_java::LANGUAGE.into(),
        Language::Go => tree_sitter_go::LANGUAGE.into(),
        Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        Language::Csharp => tree_sitter_c_sharp::LANGUAGE.into(),
        Language::Php => tree_sitter_php::LANGUAGE_PHP.into(),
        _ => tree_sitter_ruby::LANGUAGE.into(),
    }
}

fn parse_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_2000_lines");
    for (language, fixture) in FIXTURES {
        let source = two_thousand_lines(language, fixture);
        let mut parser = tree_sitter::Parser::new();
        if parser.set_language(&grammar(language)).is_err() {
            continue;
        }
        group.bench_function(language.as_str(), |b| {
            b.iter(|| parser.parse(black_box(&source), None))
        });
    }
    group.finish();
}

criterion_group!(benches, facts, parse_only, facts_request);
criterion_main!(benches);
