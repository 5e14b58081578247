//! Calls in every grammar reduced to one shape: `object.name(args)`, for the rules that look
//! for dangerous callees and format functions.

use tree_sitter::Node;

use crate::names::NodeNames;
use crate::text::{named_children, text};

/// Call-like node kinds across the nine grammars.
const CALL_KINDS: &[&str] = &[
    "call_expression",
    "call",
    "method_invocation",
    "invocation_expression",
    "function_call_expression",
    "member_call_expression",
    "scoped_call_expression",
    "new_expression",
    "object_creation_expression",
    "macro_invocation",
];

/// Member-access kinds whose last part is the called name.
const MEMBER_KINDS: &[&str] = &[
    "member_expression",
    "attribute",
    "selector_expression",
    "field_expression",
    "member_access_expression",
    "scoped_identifier",
    "qualified_name",
];

/// One call, whatever the grammar.
#[derive(Debug)]
pub(crate) struct Call<'t, 's> {
    /// The called name's last part: `exec` in `child_process.exec(...)`.
    pub(crate) name: &'s str,
    /// The text before the name, if any: `child_process`, `Runtime.getRuntime()`.
    pub(crate) object: Option<&'s str>,
    /// The object node, if any (a string literal for Python's `"...".format(x)`).
    pub(crate) object_node: Option<Node<'t>>,
    /// Positional arguments (wrappers such as C#'s `argument` removed).
    pub(crate) args: Vec<Node<'t>>,
    /// Keyword arguments: name and value (Python's `shell=True`).
    pub(crate) keywords: Vec<(&'s str, Node<'t>)>,
    /// Whether this is `new X(...)`.
    pub(crate) is_new: bool,
}

impl Call<'_, '_> {
    /// Whether keyword argument `name` is the literal `value` (`shell=True`).
    pub(crate) fn keyword_is(&self, name: &str, value: &str, src: &str) -> bool {
        self.keywords
            .iter()
            .any(|(k, v)| *k == name && text(*v, src) == value)
    }
}

/// `node` as a call, if it is one.
pub(crate) fn call<'t, 's>(node: Node<'t>, src: &'s str) -> Option<Call<'t, 's>> {
    let kind = node.kind_name();
    if !CALL_KINDS.contains(&kind) {
        return None;
    }
    let callee = ["function", "method", "macro", "constructor", "type", "name"]
        .iter()
        .find_map(|f| node.child_by_field(f))?;
    let mut object_node = ["object", "receiver", "scope"]
        .iter()
        .find_map(|f| node.child_by_field(f));
    let mut name_node = callee;
    if MEMBER_KINDS.contains(&callee.kind_name()) {
        let parts = named_children(callee);
        if let (Some(first), Some(last)) = (parts.first(), parts.last())
            && parts.len() > 1
        {
            object_node = Some(*first);
            name_node = *last;
        }
    }
    let mut args = Vec::new();
    let mut keywords = Vec::new();
    let arguments = node.child_by_field("arguments").or_else(|| {
        (kind == "macro_invocation")
            .then(|| last_named(node))
            .flatten()
    });
    if let Some(arguments) = arguments {
        for arg in named_children(arguments) {
            match arg.kind_name() {
                "keyword_argument" | "pair" => {
                    if let (Some(k), Some(v)) = (
                        arg.child_by_field("name")
                            .or_else(|| arg.child_by_field("key")),
                        arg.child_by_field("value"),
                    ) {
                        keywords.push((text(k, src), v));
                    }
                }
                "argument" => {
                    if let Some(inner) = last_named(arg) {
                        args.push(inner);
                    }
                }
                k if k.contains("comment") => {}
                _ => args.push(arg),
            }
        }
    }
    Some(Call {
        name: text(name_node, src),
        object: object_node.map(|o| text(o, src)),
        object_node,
        args,
        keywords,
        is_new: matches!(kind, "new_expression" | "object_creation_expression"),
    })
}

fn last_named(node: Node<'_>) -> Option<Node<'_>> {
    let last = node.named_child_count().checked_sub(1)?;
    node.named_child(u32::try_from(last).ok()?)
}
