//! The syntax-aware rules. Each finding names the construct and what to do; none quotes a
//! string literal (it might hold a secret). Threshold rules and hard-coded secrets are added
//! by the agents, not here.

mod dynamic_code;
mod rust;
mod sql;

use agents_core::facts::{Finding, Rule};
use tree_sitter::Node;

use crate::calls;
use crate::lang::Lang;
use crate::text::line;
use crate::walk::Frame;

/// Runs the rules that look at single nodes.
pub(crate) fn check(
    lang: &dyn Lang,
    node: Node<'_>,
    parent: Option<Node<'_>>,
    frame: &Frame<'_>,
    src: &str,
    findings: &mut Vec<Finding>,
) {
    // One call shape for all three rules: building it is the costly part of a rule.
    let call = calls::call(node, src);
    dynamic_code::check(lang, node, call.as_ref(), src, findings);
    sql::check(lang, node, parent, call.as_ref(), src, findings);
    if lang.is_rust() {
        rust::check(node, frame, call.as_ref(), src, findings);
    }
}

/// A loop inside a loop: reported at the inner loop.
pub(crate) fn nested_loops(frame: &Frame<'_>, findings: &mut Vec<Finding>) {
    if frame.loops > 0 {
        findings.push(Finding::new(
            Rule::NestedLoops,
            line(frame.node.start_position()),
            "A loop inside another loop: likely O(n^2) over the same data; index one side in a map or set, or confirm the sizes stay small.",
        ));
    }
}

/// A catch, except or rescue block that does nothing.
pub(crate) fn empty_catch(node: Node<'_>, findings: &mut Vec<Finding>) {
    findings.push(Finding::new(
        Rule::EmptyCatch,
        line(node.start_position()),
        "This error handler is empty, so the failure disappears silently; handle it, log it, or rethrow it (or say in a comment why ignoring it is right).",
    ));
}
