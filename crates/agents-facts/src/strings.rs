//! Whether an expression is a fixed literal or built at run time, and whether a literal reads
//! like SQL. Shared by the dynamic-code and SQL rules.

use tree_sitter::Node;

use crate::lang::Lang;
use crate::names::NodeNames;
use crate::text::{literal_body, named_children, text};

/// At most this many nodes are looked at to decide about one expression: a 100,000-operand
/// concatenation on one line must not cost more than a glance.
const MAX_NODES: usize = 512;

/// Named children of a string literal that are its fixed text, not interpolated code.
fn is_fixed_part(kind: &str) -> bool {
    kind.contains("content")
        || kind.contains("fragment")
        || kind.contains("escape")
        || matches!(
            kind,
            "string_start" | "string_end" | "interpolation_start" | "interpolation_quote"
        )
}

/// Whether `node` is a string literal of the language.
pub(crate) fn is_string(lang: &dyn Lang, node: Node<'_>) -> bool {
    lang.strings().contains(&node.kind_name())
}

/// Whether a string literal interpolates code (`${x}`, `#{x}`, f-strings, `"$x"` in PHP).
pub(crate) fn is_interpolated(node: Node<'_>) -> bool {
    named_children(node)
        .iter()
        .any(|c| !is_fixed_part(c.kind_name()))
}

/// Whether `node` is a binary concatenation (`+`, or `.` in PHP).
pub(crate) fn is_concat(lang: &dyn Lang, node: Node<'_>) -> bool {
    matches!(
        node.kind_name(),
        "binary_expression" | "binary_operator" | "binary"
    ) && node
        .child_by_field("operator")
        .is_some_and(|op| lang.concat_ops().contains(&op.kind_name()))
}

/// Whether `node` is a literal: a string without interpolation, a number, `true`, `null`, or a
/// concatenation or parenthesis of literals. Anything else (names, calls, interpolation) is
/// built at run time.
pub(crate) fn is_literal(lang: &dyn Lang, node: Node<'_>) -> bool {
    let mut pending = vec![node];
    let mut seen = 0;
    while let Some(node) = pending.pop() {
        seen += 1;
        if seen > MAX_NODES {
            return false;
        }
        let kind = node.kind_name();
        if is_string(lang, node) {
            if is_interpolated(node) {
                return false;
            }
        } else if is_concat(lang, node) || kind == "parenthesized_expression" {
            pending.extend(named_children(node).into_iter().filter(|c| c.is_named()));
        } else if !is_scalar_literal(kind) {
            return false;
        }
    }
    true
}

fn is_scalar_literal(kind: &str) -> bool {
    kind.contains("literal")
        || kind.contains("integer")
        || kind.contains("float")
        || matches!(kind, "number" | "true" | "false" | "null" | "nil" | "none")
        || kind.contains("comment")
}

/// Whether the text of a string literal starts like a SQL statement: `SELECT … FROM`,
/// `INSERT … INTO`, `UPDATE … SET`, `DELETE … FROM`, or one of them with `WHERE`.
pub(crate) fn looks_like_sql(literal: &str) -> bool {
    let body = literal_body(literal).trim_start();
    let head: String = body
        .chars()
        .take(7)
        .collect::<String>()
        .to_ascii_uppercase();
    let Some(keyword) = ["SELECT", "INSERT", "UPDATE", "DELETE"]
        .into_iter()
        .find(|k| head.starts_with(k))
    else {
        return false;
    };
    // The keyword must be a word of its own (`SELECTED` is not SQL).
    if body
        .chars()
        .nth(keyword.len())
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
    {
        return false;
    }
    let rest = body
        .get(keyword.len()..)
        .unwrap_or("")
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_uppercase();
    let words: Vec<&str> = rest
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    ["FROM", "INTO", "SET", "WHERE"]
        .iter()
        .any(|w| words.contains(w))
        // `"SELECT * "` + rest: the statement goes on in the next piece.
        || rest.trim_end_matches(['"', '\'', '`']).trim().len() <= 2
}

/// The string literals and other operands of a concatenation chain rooted at `node`, or
/// `None` when the chain is too long to look at.
pub(crate) fn concat_operands<'t>(lang: &dyn Lang, node: Node<'t>) -> Option<Vec<Node<'t>>> {
    let mut operands = Vec::new();
    let mut pending = vec![node];
    let mut seen = 0;
    while let Some(node) = pending.pop() {
        seen += 1;
        if seen > MAX_NODES {
            return None;
        }
        if is_concat(lang, node) || node.kind_name() == "parenthesized_expression" {
            let mut children = named_children(node);
            children.reverse();
            pending.extend(children);
        } else {
            operands.push(node);
        }
    }
    Some(operands)
}

/// Whether `node` is a string literal that reads like SQL.
pub(crate) fn is_sql_literal(lang: &dyn Lang, node: Node<'_>, src: &str) -> bool {
    is_string(lang, node) && looks_like_sql(text(node, src))
}

#[cfg(test)]
mod tests {
    use super::looks_like_sql;

    #[test]
    fn sql_is_recognised_by_its_first_keyword_and_a_clause() {
        assert!(looks_like_sql("\"SELECT * FROM users WHERE id = "));
        assert!(looks_like_sql("'insert into t values ("));
        assert!(looks_like_sql("f\"UPDATE t SET a = {a}\""));
        assert!(looks_like_sql("\"DELETE FROM t\""));
        assert!(looks_like_sql("\"SELECT \""));
        assert!(!looks_like_sql("\"Selected items: \""));
        assert!(!looks_like_sql("\"hello\""));
    }
}
