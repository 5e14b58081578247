//! Code facts as prompt context, and the facts every agent reads the same way.
//!
//! A model asked to count branches or recall signatures guesses; given them, it does not have to.
//! So the prompt carries a compact, plain-text block of what the parser found. The block is
//! bounded (functions, branch points, findings and the length of every quoted string are capped,
//! and the whole block has a byte budget) so that a huge file cannot blow up the prompt: what is
//! left out is counted, never silently dropped.

use std::fmt::Write as _;

use crate::facts::{CodeFacts, FunctionFacts, Visibility};

/// At most this many functions are described.
pub(crate) const MAX_FUNCTIONS: usize = 60;
/// At most this many types are described.
pub(crate) const MAX_TYPES: usize = 40;
/// At most this many branch points are listed per function.
pub(crate) const MAX_BRANCHES_PER_FUNCTION: usize = 16;
/// At most this many rule findings are listed.
pub(crate) const MAX_FINDINGS: usize = 40;
/// A quoted string (signature, doc comment) is cut after this many characters.
pub(crate) const MAX_FIELD_CHARS: usize = 200;
/// The whole block stays under this many bytes.
pub(crate) const MAX_BLOCK_BYTES: usize = 16 * 1024;
/// At most this many branch points are reported in `coverage.branches`.
pub(crate) const MAX_COVERAGE_BRANCHES: usize = 500;

/// What an agent wants from the facts in its prompt.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct View {
    /// Complexity numbers per function and for the file.
    pub(crate) complexity: bool,
    /// Doc comments of functions and types.
    pub(crate) docs: bool,
    /// Branch points per function.
    pub(crate) branches: bool,
    /// Rule findings.
    pub(crate) findings: bool,
    /// Only public functions (what callers, and so tests and docs, see).
    pub(crate) public_only: bool,
    /// Only functions with a body: interface, trait and abstract methods have no code to test.
    pub(crate) with_body_only: bool,
}

#[cfg(test)]
impl View {
    /// Every part of the facts, every function: the view tests render the most of.
    pub(crate) fn everything() -> Self {
        Self {
            complexity: true,
            docs: true,
            branches: true,
            findings: true,
            public_only: false,
            with_body_only: false,
        }
    }
}

/// The facts block for a prompt: plain text, one item a line, bounded.
///
/// Every line is written straight into the block (no string per line or per field): the
/// block is rendered on every call, cached facts included, so its allocations were a visible
/// part of a call's cost.
pub(crate) fn facts_block(facts: &CodeFacts, view: View) -> String {
    let mut out = Block::default();
    let without_body = facts.functions.len() - facts.functions_with_body().count();
    out.line(|l| {
        let _ = write!(
            l,
            "file: {} lines, {} functions ({} public",
            facts.lines,
            facts.functions.len(),
            facts.public_functions().count(),
        );
        if without_body > 0 {
            let _ = write!(l, ", {without_body} declared without a body");
        }
        let _ = write!(l, "), {} types", facts.types.len());
    });
    if view.complexity {
        out.line(|l| {
            let _ = write!(
                l,
                "file complexity: cyclomatic {} (1 + every decision point), highest cognitive {}, maintainability index {:.0}/100",
                facts.total_cyclomatic(),
                facts.max_cognitive(),
                facts.maintainability_index
            );
        });
    }
    if !facts.syntax_errors.is_empty() {
        out.line(|l| {
            let _ = write!(l, "syntax errors ({}): ", facts.syntax_errors.len());
            for (index, error) in facts.syntax_errors.iter().take(5).enumerate() {
                if index > 0 {
                    l.push_str("; ");
                }
                let _ = write!(l, "line {}:{} ", error.line, error.column);
                push_clipped(l, &error.message);
            }
        });
    }

    let functions: Vec<&FunctionFacts> = facts
        .functions
        .iter()
        .filter(|f| !view.public_only || f.visibility == Visibility::Public)
        .filter(|f| !view.with_body_only || !f.is_abstract)
        .collect();
    if !functions.is_empty() {
        out.line(|l| {
            l.push_str(if view.public_only {
                "public functions:"
            } else {
                "functions:"
            });
        });
    }
    let mut omitted = 0;
    for (index, function) in functions.iter().enumerate() {
        if index >= MAX_FUNCTIONS || !out.line(|l| describe_function(l, function, view)) {
            omitted = functions.len() - index;
            break;
        }
    }
    if omitted > 0 {
        out.force(|l| {
            let _ = write!(l, "... {omitted} more functions not shown");
        });
    }

    let types: Vec<_> = facts
        .types
        .iter()
        .filter(|t| !view.public_only || t.visibility == Visibility::Public)
        .collect();
    if !types.is_empty() && !out.full {
        out.line(|l| l.push_str("types:"));
        let mut omitted = 0;
        for (index, ty) in types.iter().enumerate() {
            let fits = index < MAX_TYPES
                && out.line(|l| {
                    l.push_str("- ");
                    push_clipped(l, &ty.kind);
                    l.push(' ');
                    push_clipped(l, &ty.name);
                    let _ = write!(
                        l,
                        " ({}), lines {}-{}",
                        visibility_name(ty.visibility),
                        ty.start_line,
                        ty.end_line
                    );
                    if view.docs {
                        push_doc(l, ty.doc.as_deref());
                    }
                });
            if !fits {
                omitted = types.len() - index;
                break;
            }
        }
        if omitted > 0 {
            out.force(|l| {
                let _ = write!(l, "... {omitted} more types not shown");
            });
        }
    }

    if view.findings && !facts.findings.is_empty() && !out.full {
        out.line(|l| l.push_str("rule findings:"));
        let mut omitted = 0;
        for (index, finding) in facts.findings.iter().enumerate() {
            let fits = index < MAX_FINDINGS
                && out.line(|l| {
                    let _ = write!(
                        l,
                        "- line {}: {} ({}): ",
                        finding.line,
                        finding.rule,
                        finding.severity.as_str()
                    );
                    push_clipped(l, &finding.message);
                });
            if !fits {
                omitted = facts.findings.len() - index;
                break;
            }
        }
        if omitted > 0 {
            out.force(|l| {
                let _ = write!(l, "... {omitted} more findings not shown");
            });
        }
    }
    out.text
}

/// One function on one line. A declaration without a body says so, and has no complexity or
/// branches to show.
fn describe_function(line: &mut String, function: &FunctionFacts, view: View) {
    line.push_str("- ");
    push_clipped(line, &function.qualified_name());
    let _ = write!(
        line,
        " [lines {}-{}, {}{}{}]: ",
        function.start_line,
        function.end_line,
        visibility_name(function.visibility),
        if function.is_async { ", async" } else { "" },
        if function.is_abstract {
            ", no body: interface, trait or abstract"
        } else {
            ""
        },
    );
    push_clipped(line, &function.signature);
    if view.complexity && !function.is_abstract {
        let _ = write!(
            line,
            "; cyclomatic {}, cognitive {}, nesting {}",
            function.cyclomatic, function.cognitive, function.max_nesting
        );
    }
    if view.docs {
        push_doc(line, function.doc.as_deref());
    }
    if view.branches && !function.is_abstract {
        if function.branches.is_empty() {
            line.push_str("; no branches");
        } else {
            line.push_str("; branches: ");
            for (index, branch) in function
                .branches
                .iter()
                .take(MAX_BRANCHES_PER_FUNCTION)
                .enumerate()
            {
                if index > 0 {
                    line.push_str(", ");
                }
                push_clipped(line, &branch.kind);
                let _ = write!(line, " at line {}", branch.line);
            }
            let more = function
                .branches
                .len()
                .saturating_sub(MAX_BRANCHES_PER_FUNCTION);
            if more > 0 {
                let _ = write!(line, " and {more} more");
            }
        }
    }
}

/// `; doc: <doc>` or `; undocumented`.
fn push_doc(line: &mut String, doc: Option<&str>) {
    match doc {
        Some(doc) => {
            line.push_str("; doc: ");
            push_clipped(line, doc);
        }
        None => line.push_str("; undocumented"),
    }
}

/// The wire (serde) name of a visibility; a test keeps the two in step.
fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Public => "public",
        Visibility::Internal => "internal",
        Visibility::Protected => "protected",
        Visibility::Private => "private",
    }
}

/// The branch points of every function, as `name: kind at line N`, in source order, for
/// `coverage.branches`.
pub(crate) fn branch_list(facts: &CodeFacts) -> Vec<String> {
    facts
        .functions_with_body()
        .flat_map(|f| {
            let name = f.qualified_name();
            f.branches
                .iter()
                .map(move |b| format!("{name}: {} at line {}", b.kind, b.line))
        })
        .take(MAX_COVERAGE_BRANCHES)
        .collect()
}

/// `text` on one line, cut to [`MAX_FIELD_CHARS`] characters.
pub(crate) fn clip(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_FIELD_CHARS + 3));
    push_clipped(&mut out, text);
    out
}

/// Appends [`clip`]`(text)` to `out`: every run of whitespace as one space, and `...` after
/// the first [`MAX_FIELD_CHARS`] characters when there are more.
fn push_clipped(out: &mut String, text: &str) {
    let mut left = MAX_FIELD_CHARS;
    for (index, word) in text.split_whitespace().enumerate() {
        if index > 0 {
            if left == 0 {
                out.push_str("...");
                return;
            }
            out.push(' ');
            left -= 1;
        }
        // A word of at most `left` bytes has at most `left` characters.
        if word.len() <= left {
            out.push_str(word);
            left -= word.chars().count();
            continue;
        }
        match word.char_indices().nth(left) {
            Some((cut, _)) => {
                out.push_str(&word[..cut]);
                out.push_str("...");
                return;
            }
            None => {
                out.push_str(word);
                left -= word.chars().count();
            }
        }
    }
}

/// `text` with every run of whitespace (newlines included) collapsed to one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text that stops growing at [`MAX_BLOCK_BYTES`].
#[derive(Default)]
struct Block {
    text: String,
    full: bool,
}

impl Block {
    /// Appends the line `write` writes, if it fits; returns whether it did. A line that does
    /// not fit is taken back, and the block takes no more lines.
    fn line(&mut self, write: impl FnOnce(&mut String)) -> bool {
        if self.full {
            return false;
        }
        let start = self.text.len();
        self.force(write);
        // The budget counts a separator for every line, the first one included.
        let separator = usize::from(start > 0);
        let written = self.text.len() - start - separator;
        if start + written + 1 > MAX_BLOCK_BYTES {
            self.text.truncate(start);
            self.full = true;
            return false;
        }
        true
    }

    /// Appends the line `write` writes, whatever the budget (for the short "N more not shown"
    /// notes).
    fn force(&mut self, write: impl FnOnce(&mut String)) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        write(&mut self.text);
    }
}

#[cfg(test)]
#[path = "grounding_golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{BranchPoint, Finding, Rule, SyntaxIssue, TypeFacts, Visibility};

    fn function(name: &str, line: u32) -> FunctionFacts {
        FunctionFacts {
            name: name.to_owned(),
            signature: format!("fn {name}(x: u32) -> u32"),
            start_line: line,
            end_line: line + 2,
            cyclomatic: 2,
            cognitive: 1,
            branches: vec![BranchPoint::new(line + 1, "if")],
            ..FunctionFacts::default()
        }
    }

    #[test]
    fn the_block_names_signatures_complexity_docs_and_branches() {
        let facts = CodeFacts {
            lines: 20,
            functions: vec![
                FunctionFacts {
                    doc: Some("Adds\none.".to_owned()),
                    is_async: true,
                    ..function("add", 1)
                },
                FunctionFacts {
                    visibility: Visibility::Private,
                    branches: Vec::new(),
                    ..function("hidden", 10)
                },
            ],
            types: vec![TypeFacts {
                name: "Point".to_owned(),
                kind: "struct".to_owned(),
                start_line: 15,
                end_line: 18,
                doc: Some("A point.".to_owned()),
                ..TypeFacts::default()
            }],
            syntax_errors: vec![SyntaxIssue::new(19, 2, "missing }")],
            findings: vec![Finding::new(Rule::UnsafeCode, 5, "unsafe block")],
            maintainability_index: 61.4,
        };
        let all = View::everything();
        let block = facts_block(&facts, all);
        for expected in [
            "file: 20 lines, 2 functions (1 public), 1 types",
            "cyclomatic 3 (1 + every decision point), highest cognitive 1, maintainability index 61/100",
            "syntax errors (1): line 19:2 missing }",
            "- add [lines 1-3, public, async]: fn add(x: u32) -> u32; cyclomatic 2, cognitive 1, nesting 0; doc: Adds one.; branches: if at line 2",
            "- hidden [lines 10-12, private]",
            "undocumented; no branches",
            "- struct Point (public), lines 15-18; doc: A point.",
            "- line 5: unsafe-code (medium): unsafe block",
        ] {
            assert!(block.contains(expected), "{expected} in\n{block}");
        }
        let public = facts_block(
            &facts,
            View {
                public_only: true,
                ..View::default()
            },
        );
        assert!(public.contains("public functions:") && !public.contains("hidden"));
        assert!(!public.contains("cyclomatic") && !public.contains("doc:"));
        assert_eq!(branch_list(&facts), ["add: if at line 2"]);
    }

    #[test]
    fn a_declaration_without_a_body_is_marked_and_left_out_where_code_is_needed() {
        let facts = CodeFacts {
            lines: 10,
            functions: vec![
                function("run", 1),
                FunctionFacts {
                    container: Some("Store".to_owned()),
                    signature: "fn load(&self, key: &str) -> String".to_owned(),
                    is_abstract: true,
                    cyclomatic: 1,
                    cognitive: 0,
                    branches: Vec::new(),
                    doc: Some("Loads a value.".to_owned()),
                    ..function("load", 6)
                },
            ],
            ..CodeFacts::default()
        };
        let docs = facts_block(
            &facts,
            View {
                docs: true,
                complexity: true,
                public_only: true,
                ..View::default()
            },
        );
        assert!(
            docs.contains(
                "file: 10 lines, 2 functions (2 public, 1 declared without a body), 0 types"
            ),
            "{docs}"
        );
        assert!(
            docs.contains(
                "- Store.load [lines 6-8, public, no body: interface, trait or abstract]: fn load(&self, key: &str) -> String; doc: Loads a value."
            ),
            "{docs}"
        );
        let tests = facts_block(
            &facts,
            View {
                branches: true,
                public_only: true,
                with_body_only: true,
                ..View::default()
            },
        );
        assert!(tests.contains("- run [lines 1-3"), "{tests}");
        assert!(!tests.contains("Store.load"), "{tests}");
    }

    #[test]
    fn a_huge_file_gives_a_bounded_block() {
        let long = "x".repeat(10_000);
        let facts = CodeFacts {
            functions: (0..5_000)
                .map(|i| FunctionFacts {
                    signature: long.clone(),
                    branches: (0..100).map(|l| BranchPoint::new(l, "if")).collect(),
                    ..function(&format!("f{i}"), i)
                })
                .collect(),
            types: (0..1_000)
                .map(|i| TypeFacts {
                    name: format!("T{i}"),
                    ..TypeFacts::default()
                })
                .collect(),
            findings: (0..1_000)
                .map(|i| Finding::new(Rule::NestedLoops, i, "loop in loop"))
                .collect(),
            ..CodeFacts::default()
        };
        let all = View::everything();
        let block = facts_block(&facts, all);
        assert!(block.len() < MAX_BLOCK_BYTES + 200, "{}", block.len());
        assert!(block.contains("more functions not shown"));
        assert!(block.contains(&format!("{}...", "x".repeat(MAX_FIELD_CHARS))));
        assert!(block.contains("and 84 more"));
        assert_eq!(branch_list(&facts).len(), MAX_COVERAGE_BRANCHES);

        // Few, short functions: the caps on types and findings show.
        let facts = CodeFacts {
            functions: Vec::new(),
            ..facts
        };
        let block = facts_block(&facts, all);
        assert!(block.contains("... 960 more types not shown"), "{block}");
        let few_types = CodeFacts {
            types: Vec::new(),
            ..facts
        };
        let block = facts_block(&few_types, all);
        assert!(block.contains("... 960 more findings not shown"), "{block}");
        assert_eq!(clip("a\n\n b"), "a b");
    }
}
