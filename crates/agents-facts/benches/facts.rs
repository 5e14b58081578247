//! Facts for a 2,000-line file per language (the fixture repeated); the target is under
//! 10 ms each.

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

criterion_group!(benches, facts);
criterion_main!(benches);
