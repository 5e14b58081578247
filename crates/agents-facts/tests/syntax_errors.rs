//! A broken file per language: the syntax error is reported on the right line, and the rest
//! of the file still gives facts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agents_core::Language;
use agents_core::facts::FactsAnalyzer;
use agents_facts::TreeSitterAnalyzer;

fn first_error_line(language: Language, source: &str) -> u32 {
    let facts = TreeSitterAnalyzer::new().analyze(language, source).unwrap();
    let issue = facts
        .syntax_errors
        .first()
        .unwrap_or_else(|| panic!("{language}: no syntax error in {source}"));
    assert!(issue.column >= 1 && !issue.message.is_empty());
    issue.line
}

#[test]
fn each_language_reports_the_broken_line() {
    let cases: [(Language, &str, u32); 9] = [
        (
            Language::Javascript,
            "function ok() { return 1; }\n\nfunction bad( {\n  return 2;\n}\n",
            3,
        ),
        (
            Language::Typescript,
            "const a: number = 1;\nlet b: = 2;\n",
            2,
        ),
        (
            Language::Python,
            "def ok():\n    return 1\n\ndef bad(:\n    return 2\n",
            4,
        ),
        (
            Language::Java,
            "class A {\n  void ok() {}\n  void bad() { int x = ; }\n}\n",
            3,
        ),
        (
            Language::Go,
            "package m\n\nfunc ok() {}\nfunc bad() { x := }\n",
            4,
        ),
        (Language::Rust, "fn ok() {}\nfn bad() { let x = ; }\n", 2),
        (
            Language::Csharp,
            "class A {\n  void Ok() {}\n  void Bad() { int x = ; }\n}\n",
            3,
        ),
        (
            Language::Php,
            "<?php\nfunction ok() {}\nfunction bad() { $x = ; }\n",
            3,
        ),
        (
            Language::Ruby,
            "def ok\n  1\nend\n\ndef bad(\n  2\nend\n",
            5,
        ),
    ];
    for (language, source, line) in cases {
        assert_eq!(
            first_error_line(language, source),
            line,
            "{language}: {source}"
        );
    }
}

#[test]
fn columns_count_characters_and_messages_name_no_literals() {
    let facts = TreeSitterAnalyzer::new()
        .analyze(
            Language::Javascript,
            "const s = 'é'; const t = 'secret-value' +;\n",
        )
        .unwrap();
    let issue = &facts.syntax_errors[0];
    assert_eq!(issue.line, 1);
    assert!(!issue.message.contains("secret-value"), "{}", issue.message);
}

#[test]
fn a_missing_brace_is_named() {
    let facts = TreeSitterAnalyzer::new()
        .analyze(Language::Javascript, "function f() {\n  return 1\n")
        .unwrap();
    assert!(
        facts
            .syntax_errors
            .iter()
            .any(|e| e.message.contains("missing")),
        "{:?}",
        facts.syntax_errors
    );
}
