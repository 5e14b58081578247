//! Facts for a 2,000-line file per language (the fixture repeated); the target is under
//! 10 ms each.
//!
//! `parse_2000_lines` times tree-sitter's parse of the same files alone (no walk, no facts):
//! the floor under `facts_2000_lines` on the machine that runs it.

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

/// The fixture repeated to at least 2,000 lines.
fn two_thousand_lines(fixture: &str) -> String {
    let lines = fixture.lines().count().max(1);
    fixture.repeat(2000_usize.div_ceil(lines))
}

fn facts(c: &mut Criterion) {
    let analyzer = TreeSitterAnalyzer::new();
    let mut group = c.benchmark_group("facts_2000_lines");
    for (language, fixture) in FIXTURES {
        let source = two_thousand_lines(fixture);
        group.bench_function(language.as_str(), |b| {
            b.iter(|| analyzer.analyze(language, black_box(&source)))
        });
    }
    group.finish();
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
        let source = two_thousand_lines(fixture);
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

criterion_group!(benches, facts, parse_only);
criterion_main!(benches);
