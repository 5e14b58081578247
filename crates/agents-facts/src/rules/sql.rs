//! SQL built by concatenation, interpolation or a format call (CWE-89).
//!
//! A string literal that reads like a statement (`SELECT … FROM`, `INSERT … INTO`,
//! `UPDATE … SET`, `DELETE … FROM`) joined with anything that is not a literal is reported
//! once, at the top of the expression.

use agents_core::facts::{Finding, Rule};
use tree_sitter::Node;

use crate::calls::Call;
use crate::lang::Lang;
use crate::names::NodeNames;
use crate::strings::{
    concat_operands, is_concat, is_interpolated, is_literal, is_sql_literal, is_string,
    looks_like_sql,
};
use crate::text::{line, text};

/// Format functions whose first argument is the template.
const FORMATTERS: &[&str] = &[
    "format", "Format", "Sprintf", "sprintf", "vsprintf", "printf",
];

pub(super) fn check(
    lang: &dyn Lang,
    node: Node<'_>,
    parent: Option<Node<'_>>,
    call: Option<&Call<'_, '_>>,
    src: &str,
    findings: &mut Vec<Finding>,
) {
    let built = if is_concat(lang, node) {
        // Only the top of a chain: `"SELECT " + a + b` is one finding.
        let top = !parent
            .is_some_and(|p| is_concat(lang, p) || p.kind_name() == "parenthesized_expression");
        top && concat_operands(lang, node).is_some_and(|ops| {
            ops.iter().any(|o| is_sql_literal(lang, *o, src))
                && ops.iter().any(|o| !is_literal(lang, *o))
        })
    } else if is_string(lang, node) {
        is_interpolated(node) && looks_like_sql(text(node, src))
    } else if node.kind_name() == "binary_operator" {
        // Python's `"... %s" % value`.
        node.child_by_field("operator")
            .is_some_and(|o| o.kind_name() == "%")
            && node
                .child_by_field("left")
                .is_some_and(|l| is_sql_literal(lang, l, src))
            && node
                .child_by_field("right")
                .is_some_and(|r| !is_literal(lang, r))
    } else {
        call.is_some_and(|call| formatted(lang, node, call, src))
    };
    if built {
        findings.push(Finding::new(
            Rule::SqlConcatenation,
            line(node.start_position()),
            "SQL built from strings and run-time values can be injected; use a parameterised query (placeholders and bound values) instead.",
        ));
    }
}

/// `format!("SELECT … {}", x)`, `String.format`, `fmt.Sprintf`, `"SELECT … {}".format(x)`.
fn formatted(lang: &dyn Lang, node: Node<'_>, call: &Call<'_, '_>, src: &str) -> bool {
    let name = call.name.trim_end_matches('!');
    if !FORMATTERS.contains(&name) {
        return false;
    }
    if let Some(object) = call.object_node.filter(|o| is_string(lang, *o)) {
        return is_sql_literal(lang, object, src)
            && call.args.iter().any(|a| !is_literal(lang, *a));
    }
    let Some((template, rest)) = call.args.split_first() else {
        return false;
    };
    if !is_sql_literal(lang, *template, src) {
        return false;
    }
    let inline =
        node.kind_name() == "macro_invocation" && has_inline_argument(text(*template, src));
    inline || rest.iter().any(|a| !is_literal(lang, *a))
}

/// Whether a Rust format string names a variable inline: `{id}`, not `{{`.
fn has_inline_argument(template: &str) -> bool {
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' {
            match chars.peek() {
                Some('{') => {
                    chars.next();
                }
                Some(n) if n.is_alphabetic() || *n == '_' => return true,
                _ => {}
            }
        }
    }
    false
}
