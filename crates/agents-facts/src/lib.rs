//! # agents-facts
//!
//! Code facts for the `agents` runtime, computed by tree-sitter: what a parser can count for
//! certain, so that agents never ask a model to guess it. [`TreeSitterAnalyzer`] implements
//! [`agents_core::facts::FactsAnalyzer`] for the nine languages the agents accept.
//!
//! [`CachedAnalyzer`] keeps the facts of sources already analysed (keyed by their SHA-256
//! digest, bounded in bytes), for services that see the same file more than once.
//!
//! The grammars are C code and take a while to compile; they live here rather than in
//! `agents-core` so that programs needing only the contract do not build them.
//!
//! | fact | how |
//! |------|-----|
//! | functions, methods | name, container, signature, parameters, return type, visibility, `async`, lines, doc comment; interface, trait and abstract methods too, flagged `is_abstract` |
//! | types | classes, structs, interfaces, traits, enums, modules, aliases with visibility, lines, doc |
//! | complexity | cyclomatic (1 + decision points), cognitive (SonarSource), nesting depth, branch points |
//! | maintainability index | Visual Studio variant over Halstead volume, cyclomatic complexity and lines |
//! | syntax errors | `ERROR`/`MISSING` nodes with 1-based line and column |
//! | findings | empty catch, dynamic code execution, SQL concatenation, `unsafe`, unwrap in library code, nested loops |
//!
//! ## Features
//!
//! One feature per grammar, all on by default. Without a language's feature,
//! [`FactsAnalyzer::analyze`](agents_core::facts::FactsAnalyzer::analyze) returns
//! [`FactsError::Unsupported`](agents_core::facts::FactsError::Unsupported) for it.
//!
//! | feature | default | grammar |
//! |---------|---------|---------|
//! | `javascript` | yes | tree-sitter-javascript (JSX included) |
//! | `typescript` | yes | tree-sitter-typescript (TypeScript, TSX as fallback) |
//! | `python` | yes | tree-sitter-python |
//! | `java` | yes | tree-sitter-java |
//! | `go` | yes | tree-sitter-go |
//! | `rust` | yes | tree-sitter-rust |
//! | `csharp` | yes | tree-sitter-c-sharp |
//! | `php` | yes | tree-sitter-php (`php`, and `php_only` for code without `<?php`) |
//! | `ruby` | yes | tree-sitter-ruby |
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "python")] {
//! use agents_core::Language;
//! use agents_core::facts::FactsAnalyzer;
//! use agents_facts::TreeSitterAnalyzer;
//!
//! let analyzer = TreeSitterAnalyzer::new().with_budget(std::time::Duration::from_millis(500));
//! let facts = analyzer
//!     .analyze(Language::Python, "def area(w, h):\n    return w * h if w > 0 else 0\n")
//!     .unwrap();
//! assert_eq!(facts.functions[0].name, "area");
//! assert_eq!(facts.functions[0].cyclomatic, 2);
//! # }
//! ```
//!
//! MSRV: 1.95 (the workspace's).

#![cfg_attr(
    not(all(
        feature = "javascript",
        feature = "typescript",
        feature = "python",
        feature = "java",
        feature = "go",
        feature = "rust",
        feature = "csharp",
        feature = "php",
        feature = "ruby"
    )),
    allow(dead_code, unused_imports)
)]

mod analyzer;
mod cache;
mod calls;
mod collect;
mod complexity;
mod halstead;
mod lang;
mod names;
mod rules;
mod strings;
mod syntax;
mod text;
mod walk;

pub use analyzer::{DEFAULT_BUDGET, MAX_BUDGET, TreeSitterAnalyzer};
pub use cache::{CacheStats, CachedAnalyzer};
