//! `eval`/`exec`/shell calls given a string built at run time (CWE-95, CWE-78).
//!
//! A literal argument is left alone: `eval("1 + 1")` is odd but not injectable. Concatenation,
//! interpolation, format calls and variables are reported.

use agents_core::facts::{Finding, Rule};
use tree_sitter::Node;

use crate::calls::Call;
use crate::lang::{Lang, SinkArgs};
use crate::names::NodeNames;
use crate::strings::{is_interpolated, is_literal};
use crate::text::line;

pub(super) fn check(
    lang: &dyn Lang,
    node: Node<'_>,
    call: Option<&Call<'_, '_>>,
    src: &str,
    findings: &mut Vec<Finding>,
) {
    if lang.shell_literals().contains(&node.kind_name()) && is_interpolated(node) {
        findings.push(finding(node, "this backtick command"));
        return;
    }
    let Some(call) = call else {
        return;
    };
    let Some(args) = lang.exec_sink(call, src) else {
        return;
    };
    let dynamic = match args {
        SinkArgs::First => call.args.first().is_some_and(|a| !is_literal(lang, *a)),
        SinkArgs::Any => call.args.iter().any(|a| !is_literal(lang, *a)),
    };
    if dynamic {
        let what = if call.is_new {
            format!("`new {}`", call.name)
        } else {
            format!("`{}`", call.name)
        };
        findings.push(finding(node, &what));
    }
}

fn finding(node: Node<'_>, what: &str) -> Finding {
    Finding::new(
        Rule::DynamicCodeExecution,
        line(node.start_position()),
        format!(
            "{what} runs code or a shell command built at run time: anyone who controls part of the string controls what runs; pass arguments separately or dispatch on a fixed set of values."
        ),
    )
}
