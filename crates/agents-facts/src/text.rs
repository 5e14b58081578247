//! Small helpers over node text and positions, shared by every language module.
//!
//! Nothing here indexes a string directly: positions come from the parser, and a slice that
//! does not fall on character boundaries yields an empty string instead of a panic.

use crate::names::NodeNames;
use agents_core::facts::ParameterFacts;
use tree_sitter::{Node, Point};

/// The longest signature kept; a declaration spread over a 256 KiB line is cut here.
const MAX_SIGNATURE: usize = 240;

/// The source text of `node`.
pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// The text of `node`'s field `field`.
pub(crate) fn field_text<'s>(node: Node<'_>, field: &str, src: &'s str) -> Option<&'s str> {
    node.child_by_field(field).map(|n| text(n, src))
}

/// A 1-based line number.
pub(crate) fn line(point: Point) -> u32 {
    u32::try_from(point.row)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// The 1-based last line of `node`, not counting a trailing newline it swallowed (Rust line
/// comments end at column 0 of the next line).
pub(crate) fn last_line(node: Node<'_>) -> u32 {
    let end = node.end_position();
    let mut last = line(end);
    if end.column == 0 && end.row > node.start_position().row {
        last -= 1;
    }
    last
}

/// `text` with runs of whitespace collapsed to one space, trimmed, cut to a sane length.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::new();
    let mut words = text.split_whitespace();
    if let Some(first) = words.next() {
        out.push_str(first);
    }
    for word in words {
        if out.len() > MAX_SIGNATURE {
            break;
        }
        out.push(' ');
        out.push_str(word);
    }
    if out.len() > MAX_SIGNATURE {
        let cut = (0..=MAX_SIGNATURE)
            .rev()
            .find(|&i| out.is_char_boundary(i))
            .unwrap_or(0);
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The declaration text from `from` up to `body` (or the end of `from`, without the `;` that
/// ends a declaration without a body), collapsed.
pub(crate) fn signature(from: Node<'_>, body: Option<Node<'_>>, src: &str) -> String {
    let end = body.map_or(from.end_byte(), |b| b.start_byte());
    let start = from.start_byte().min(end);
    let raw = src.get(start..end).unwrap_or("");
    let collapsed = collapse(raw);
    collapsed
        .trim_end_matches(['{', ':', '=', ';'])
        .trim_end()
        .to_owned()
}

/// A comment with its markers removed: `//`, `///`, `#`, `/** */` and the `*` gutter.
pub(crate) fn clean_comment(comment: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for raw in comment.lines() {
        let mut line = raw.trim();
        for prefix in ["/**", "/*!", "/*", "///", "//!", "//", "#"] {
            if let Some(rest) = line.strip_prefix(prefix) {
                line = rest;
                break;
            }
        }
        line = line.strip_suffix("*/").unwrap_or(line);
        if let Some(rest) = line.trim_start().strip_prefix('*') {
            line = rest;
        }
        lines.push(line.trim());
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// The doc comment made of the comments right above a declaration starting on `start_line`.
///
/// Walks `leading` backwards: nodes for which `skip` holds (attributes) are stepped over,
/// comments for which `accept` holds are taken while each ends on the line right above the
/// next; a block comment (`/* */`) is taken alone.
pub(crate) fn leading_doc(
    leading: &[Node<'_>],
    start_line: u32,
    src: &str,
    accept: impl Fn(&str) -> bool,
    skip: impl Fn(Node<'_>) -> bool,
) -> Option<String> {
    let mut next_line = start_line;
    let mut parts: Vec<&str> = Vec::new();
    for node in leading.iter().rev() {
        if skip(*node) {
            next_line = line(node.start_position());
            continue;
        }
        let body = text(*node, src);
        if !accept(body) || last_line(*node).saturating_add(1) < next_line {
            break;
        }
        let block = body.starts_with("/*");
        if block && !parts.is_empty() {
            break;
        }
        parts.push(body);
        next_line = line(node.start_position());
        if block {
            break;
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    let cleaned: Vec<String> = parts.iter().map(|p| clean_comment(p)).collect();
    let doc = cleaned.join("\n").trim().to_owned();
    (!doc.is_empty()).then_some(doc)
}

/// A Python-style docstring: the string's text without prefix and quotes, lines trimmed.
pub(crate) fn docstring(literal: &str) -> Option<String> {
    let start = literal.find(['"', '\''])?;
    let body = literal.get(start..)?;
    let quote = if body.starts_with("\"\"\"") || body.starts_with("'''") {
        body.get(..3)?
    } else {
        body.get(..1)?
    };
    let inner = body.strip_prefix(quote)?;
    let inner = inner.strip_suffix(quote).unwrap_or(inner);
    let lines: Vec<&str> = inner.lines().map(str::trim).collect();
    let doc = lines.join("\n").trim().to_owned();
    (!doc.is_empty()).then_some(doc)
}

/// The text of a string literal after its opening quote (prefixes such as `f`, `$`, `@`, `r#`
/// dropped), for the SQL check; the closing quote may remain.
pub(crate) fn literal_body(literal: &str) -> &str {
    match literal.find(['"', '\'', '`']) {
        Some(i) => literal
            .get(i..)
            .unwrap_or("")
            .trim_start_matches(['"', '\'', '`']),
        None => literal,
    }
}

/// Whether `node` or one of its modifier children holds the keyword `keyword` (`async`).
pub(crate) fn has_keyword(node: Node<'_>, keyword: &str, src: &str) -> bool {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.kind_name() == keyword {
            return true;
        }
        if child.kind_name().contains("modifier") {
            let mut inner = child.walk();
            if child
                .children(&mut inner)
                .any(|c| c.kind_name() == keyword || text(c, src) == keyword)
                || text(child, src) == keyword
            {
                return true;
            }
        }
    }
    false
}

/// The named children of `node`.
pub(crate) fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

/// A parameter (the contract's struct is non-exhaustive: built field by field).
pub(crate) fn parameter(
    name: impl Into<String>,
    type_name: Option<String>,
    optional: bool,
) -> ParameterFacts {
    let mut p = ParameterFacts::default();
    p.name = name.into();
    p.type_name = type_name;
    p.optional = optional;
    p
}

/// Text of a type annotation without the leading `:` (TypeScript, PHP).
pub(crate) fn type_text(node: Node<'_>, src: &str) -> String {
    collapse(text(node, src).trim_start_matches(':').trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_lose_their_markers() {
        assert_eq!(
            clean_comment("/**\n * Adds.\n *\n * More.\n */"),
            "Adds.\n\nMore."
        );
        assert_eq!(clean_comment("/// Adds."), "Adds.");
        assert_eq!(clean_comment("# Adds."), "Adds.");
        assert_eq!(
            docstring("r\"\"\"Doc.\n   More.\n\"\"\"").as_deref(),
            Some("Doc.\nMore.")
        );
        assert_eq!(docstring("''").as_deref(), None);
        assert_eq!(literal_body("f\"SELECT"), "SELECT");
    }

    #[test]
    fn long_signatures_are_cut_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = collapse(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_SIGNATURE + 4);
        assert_eq!(collapse("fn  f(\n  a: u8)\n"), "fn f( a: u8)");
    }
}
