//! The facts block byte for byte: the prompt is part of what the model is asked, so a change in
//! how the block is written must not change a byte of it unnoticed. The expected texts were
//! written by the implementation before the block was rendered into one buffer.

use super::*;
use crate::agents::Severity;
use crate::facts::{BranchPoint, Finding, Rule, SyntaxIssue, TypeFacts, Visibility};

/// Facts that reach every branch of the renderer: containers, async and abstract functions,
/// docs over several lines, a signature over the field cap with non-ASCII text, more branches
/// than are shown, more than five syntax errors, private items, types and findings.
fn fixture() -> CodeFacts {
    let long = format!("fn wide(é: u32) -> {}", "Résult<ünit>  ".repeat(20));
    let mut functions = vec![
        FunctionFacts {
            name: "add".into(),
            container: Some("Math".into()),
            signature: "pub async fn add(a: u32,\n    b: u32) -> u32".into(),
            doc: Some("Adds\n  two numbers.".into()),
            is_async: true,
            start_line: 1,
            end_line: 9,
            cyclomatic: 3,
            cognitive: 2,
            max_nesting: 1,
            branches: (0..20)
                .map(|i| BranchPoint::new(2 + i, if i % 2 == 0 { "if" } else { "match arm" }))
                .collect(),
            ..FunctionFacts::default()
        },
        FunctionFacts {
            name: "hidden".into(),
            visibility: Visibility::Private,
            signature: "fn hidden()".into(),
            start_line: 10,
            end_line: 12,
            cyclomatic: 1,
            ..FunctionFacts::default()
        },
        FunctionFacts {
            name: "shape".into(),
            container: Some("Drawable".into()),
            visibility: Visibility::Protected,
            signature: "fn shape(&self) -> Shape;".into(),
            is_abstract: true,
            start_line: 13,
            end_line: 13,
            ..FunctionFacts::default()
        },
        FunctionFacts {
            name: "wide".into(),
            signature: long,
            start_line: 14,
            end_line: 30,
            cyclomatic: 1,
            ..FunctionFacts::default()
        },
    ];
    functions.push(FunctionFacts {
        name: "exactly".into(),
        visibility: Visibility::Internal,
        signature: "x".repeat(MAX_FIELD_CHARS),
        start_line: 31,
        end_line: 32,
        ..FunctionFacts::default()
    });
    CodeFacts {
        lines: 120,
        functions,
        types: vec![
            TypeFacts {
                name: "Point".into(),
                kind: "struct".into(),
                start_line: 40,
                end_line: 44,
                doc: Some("A point\non a plane.".into()),
                ..TypeFacts::default()
            },
            TypeFacts {
                name: "Secretive".into(),
                kind: "class".into(),
                visibility: Visibility::Private,
                start_line: 50,
                end_line: 60,
                ..TypeFacts::default()
            },
        ],
        syntax_errors: (0..7)
            .map(|i| SyntaxIssue::new(70 + i, 3, format!("missing\t}} number {i}")))
            .collect(),
        findings: vec![
            Finding::new(Rule::UnsafeCode, 5, "unsafe block"),
            Finding::new(Rule::UnsafeCode, 6, "another\nunsafe   block")
                .with_severity(Severity::High),
        ],
        maintainability_index: 61.4,
    }
}

fn check(view: View, name: &str, expected: &str) {
    let actual = facts_block(&fixture(), view);
    assert!(
        actual == expected,
        "the {name} facts block changed; expected:\n{expected}\n--- actual:\n{actual}"
    );
}

#[test]
fn every_view_renders_exactly_as_before() {
    let all = View::everything();
    check(all, "full", include_str!("testdata/facts_block_full.txt"));
    let public = View {
        public_only: true,
        with_body_only: true,
        ..View::default()
    };
    check(
        public,
        "public",
        include_str!("testdata/facts_block_public.txt"),
    );
}

/// The budget counts a separator for every line, the first included: a line fits while the
/// block before it, the line and one byte stay within [`MAX_BLOCK_BYTES`]; the first that does
/// not is taken back whole, and the block takes no more lines (forced notes still go in).
#[test]
fn the_byte_budget_takes_back_the_first_line_that_does_not_fit() {
    fn fill(bytes: usize) -> impl FnOnce(&mut String) {
        move |l: &mut String| l.push_str(&"a".repeat(bytes))
    }
    // Alone, a line of MAX - 1 bytes fits and one of MAX does not.
    let mut over = Block::default();
    assert!(!over.line(fill(MAX_BLOCK_BYTES)));
    assert!(over.text.is_empty() && over.full);
    assert!(!over.line(fill(0)), "a full block takes no more lines");
    let mut exact = Block::default();
    assert!(exact.line(fill(MAX_BLOCK_BYTES - 1)));
    assert!(!exact.full);

    // After a first line of 10 bytes: 10 + line + 1 must stay within MAX.
    let mut first = Block::default();
    assert!(first.line(fill(10)));
    assert!(!first.line(fill(MAX_BLOCK_BYTES - 10)));
    assert_eq!(
        first.text.len(),
        10,
        "the refused line and its separator are taken back"
    );
    let mut second = Block::default();
    assert!(second.line(fill(10)));
    assert!(second.line(fill(MAX_BLOCK_BYTES - 11)));
    assert_eq!(second.text.len(), MAX_BLOCK_BYTES);
    assert!(!second.line(|l| l.push('b')));
    second.force(|l| l.push_str("... 1 more not shown"));
    assert!(second.text.ends_with("a\n... 1 more not shown"));
}

#[test]
fn clip_collapses_whitespace_and_cuts_after_the_cap() {
    let reference = |text: &str| {
        let flat = one_line(text);
        match flat.char_indices().nth(MAX_FIELD_CHARS) {
            Some((cut, _)) => format!("{}...", &flat[..cut]),
            None => flat,
        }
    };
    let cap = MAX_FIELD_CHARS;
    let cases = [
        String::new(),
        "  \n ".into(),
        " a\t\tb \n c ".into(),
        "é".repeat(cap),
        "é".repeat(cap + 1),
        format!("{} {}", "a".repeat(cap), "b"),
        format!("{} {}", "a".repeat(cap - 1), "bc"),
        format!("{}  ", "ü".repeat(cap - 1)),
        "word ".repeat(cap),
    ];
    for case in &cases {
        assert_eq!(clip(case), reference(case), "{case:?}");
    }
}

#[test]
fn visibility_names_are_the_wire_names() {
    for visibility in [
        Visibility::Public,
        Visibility::Internal,
        Visibility::Protected,
        Visibility::Private,
    ] {
        assert_eq!(
            visibility_name(visibility),
            super::super::code_analysis::wire_name(&visibility)
        );
    }
}
