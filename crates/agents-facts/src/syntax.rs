//! Syntax errors: `ERROR` nodes (the parser skipped something) and `MISSING` nodes (it
//! assumed something that is not there), with 1-based lines and columns.
//!
//! Messages name the missing token or the skipped keyword or punctuation, never the text of a
//! literal (it might be a secret).

use agents_core::facts::SyntaxIssue;
use tree_sitter::Node;

use crate::names::NodeNames;
use crate::text::line;
use crate::walk::Frame;

/// Binary input can make an error of every other token; a hundred say enough.
const MAX_ISSUES: usize = 100;

/// Records a syntax issue at `node`, if it is one, and marks the frame so that errors nested
/// in a reported one are not repeated.
pub(crate) fn check(
    node: Node<'_>,
    frame: &mut Frame<'_>,
    issues: &mut Vec<SyntaxIssue>,
    src: &str,
) {
    let message = if node.is_missing() {
        if node.is_named() {
            format!("missing {}", node.kind_name().replace('_', " "))
        } else {
            format!("missing `{}`", node.kind_name())
        }
    } else if node.is_error() && !frame.in_error {
        frame.in_error = true;
        unexpected(node)
    } else {
        return;
    };
    if issues.len() >= MAX_ISSUES {
        return;
    }
    let start = node.start_position();
    let column = character_column(src, node.start_byte(), start.column);
    issues.push(SyntaxIssue::new(line(start), column, message));
}

/// "unexpected `}`" when the first skipped token is a keyword or punctuation, else a
/// plain "unexpected code".
fn unexpected(node: Node<'_>) -> String {
    let mut first = node;
    while let Some(child) = first.child(0) {
        first = child;
    }
    if !first.is_named() && first.kind_name().len() <= 12 && !first.kind_name().is_empty() {
        format!("unexpected `{}`", first.kind_name())
    } else {
        "unexpected code".to_owned()
    }
}

/// The 1-based column in characters of the byte `offset`, which is `byte_column` bytes into
/// its line.
fn character_column(src: &str, offset: usize, byte_column: usize) -> u32 {
    let chars = offset
        .checked_sub(byte_column)
        .and_then(|start| src.get(start..offset))
        .map_or(byte_column, |prefix| prefix.chars().count());
    u32::try_from(chars)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}
