//! Cyclomatic and cognitive complexity and nesting depth, one decision point at a time.
//!
//! Cyclomatic complexity (McCabe) is 1 + decision points: `if`, `else if`, loops, non-default
//! `case`s and match arms, `catch`, each `&&`/`||`/`??`, the ternary, comprehension clauses.
//! Rust's `?` is not a decision point.
//!
//! Cognitive complexity follows SonarSource's white paper (2017): +1 for each break in linear
//! flow (`if`, `else if`, `else`, `switch`/`match` once, loops, `catch`, ternary, `goto` and
//! labelled jumps, each run of one logical operator), plus the nesting level for `if`,
//! `switch`, loops, `catch` and the ternary. Nesting grows inside those structures and inside
//! lambdas, closures and blocks. Simplifications: recursion is not counted; conditions and
//! iterated collections sit at their structure's own level; a parenthesised operand starts a
//! new run of logical operators.
//!
//! Nesting depth counts `if` (an `else if` chain is one level), loops, `switch`/`match` and
//! `catch`.

use agents_core::facts::{BranchPoint, FunctionFacts};

use crate::lang::Flow;
use crate::text::line;
use crate::walk::Frame;

/// Counts `flow` at `frame` towards `function` (when inside one) and sets the nesting the
/// node's children inherit.
pub(crate) fn count(
    function: Option<&mut FunctionFacts>,
    frame: &mut Frame<'_>,
    flow: Flow,
    parent_logical: Option<&'static str>,
) {
    let at = line(frame.node.start_position());
    let (decision, cognitive, structure): (Option<&str>, u32, bool) = match flow {
        Flow::If => (Some("if"), 1 + frame.level, true),
        Flow::ElseIf => (Some("else if"), 1, false),
        Flow::Else => (None, 1, false),
        Flow::Loop(kind) => (Some(kind), 1 + frame.level, true),
        Flow::Switch => (None, 1 + frame.level, true),
        Flow::Case(kind) | Flow::Decision(kind) => (Some(kind), 0, false),
        Flow::Catch => (Some("catch"), 1 + frame.level, true),
        Flow::Ternary => (Some("?:"), 1 + frame.level, false),
        Flow::Logical(op) => (Some(op), u32::from(parent_logical != Some(op)), false),
        Flow::Jump => (None, 1, false),
        Flow::Lambda => (None, 0, false),
    };
    if let Some(function) = function {
        if let Some(kind) = decision {
            function.cyclomatic = function.cyclomatic.saturating_add(1);
            function.branches.push(BranchPoint::new(at, kind));
        }
        function.cognitive = function.cognitive.saturating_add(cognitive);
        let depth = if structure {
            frame.depth + 1
        } else {
            frame.depth
        };
        if matches!(flow, Flow::ElseIf) || structure {
            function.max_nesting = function.max_nesting.max(depth);
        }
    }
    match flow {
        Flow::If | Flow::Loop(_) | Flow::Switch | Flow::Catch => {
            frame.keep = Some((frame.level, frame.depth));
            frame.level = frame.level.saturating_add(1);
            frame.depth = frame.depth.saturating_add(1);
        }
        Flow::ElseIf => frame.keep = Some((frame.level, frame.depth)),
        Flow::Ternary => {
            frame.keep = Some((frame.level, frame.depth));
            frame.level = frame.level.saturating_add(1);
        }
        Flow::Lambda => frame.level = frame.level.saturating_add(1),
        Flow::Logical(op) => frame.logical = Some(op),
        Flow::Else | Flow::Case(_) | Flow::Decision(_) | Flow::Jump => {}
    }
}
