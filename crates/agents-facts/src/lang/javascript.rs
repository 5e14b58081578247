//! JavaScript (JSX included); TypeScript builds on these rules.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, named_children, text, type_text};

/// JavaScript.
#[cfg(feature = "javascript")]
pub(super) struct JavaScript;

// --- declarations ---

/// Function expressions that become named functions when assigned to a declarator or field.
const FUNCTION_VALUES: &[&str] = &[
    "arrow_function",
    "function_expression",
    "function",
    "generator_function",
];

pub(super) fn function<'t>(
    node: Node<'t>,
    parent: Option<Node<'t>>,
    grandparent: Option<Node<'t>>,
    src: &str,
) -> Option<FnDecl<'t>> {
    match node.kind_name() {
        "function_declaration" | "generator_function_declaration" | "method_definition" => {
            node.child_by_field("body")?;
            Some(FnDecl::plain(
                field_text(node, "name", src)?.to_owned(),
                node,
            ))
        }
        kind if FUNCTION_VALUES.contains(&kind) => {
            let parent = parent?;
            let (name, outer) = match parent.kind_name() {
                "variable_declarator" => {
                    let outer = grandparent
                        .filter(|g| {
                            matches!(
                                g.kind_name(),
                                "lexical_declaration" | "variable_declaration"
                            )
                        })
                        .unwrap_or(parent);
                    (field_text(parent, "name", src)?, outer)
                }
                "public_field_definition" | "field_definition" => (
                    field_text(parent, "name", src)
                        .or_else(|| field_text(parent, "property", src))?,
                    parent,
                ),
                _ => return None,
            };
            Some(FnDecl {
                name: name.to_owned(),
                outer,
                inner: node,
                container: None,
                is_abstract: false,
            })
        }
        _ => None,
    }
}

pub(super) fn parameters(inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
    let Some(list) = inner
        .child_by_field("parameters")
        .or_else(|| inner.child_by_field("parameter"))
    else {
        return Vec::new();
    };
    if list.kind_name() == "identifier" {
        // `x => x + 1`
        return vec![param(text(list, src), None, false)];
    }
    let mut out = Vec::new();
    for child in named_children(list) {
        let (name, type_name, optional) = match child.kind_name() {
            "identifier" => (collapse(text(child, src)), None, false),
            "assignment_pattern" => (
                collapse(field_text(child, "left", src).unwrap_or_default()),
                None,
                true,
            ),
            "required_parameter" | "optional_parameter" => {
                let name = collapse(field_text(child, "pattern", src).unwrap_or_default());
                if name == "this" {
                    continue;
                }
                let type_name = child.child_by_field("type").map(|t| type_text(t, src));
                let optional = child.kind_name() == "optional_parameter"
                    || child.child_by_field("value").is_some();
                (name, type_name, optional)
            }
            kind if kind.contains("comment") || kind == "decorator" => continue,
            _ => (collapse(text(child, src)), None, false),
        };
        out.push(crate::text::parameter(name, type_name, optional));
    }
    out
}

pub(super) fn param(name: &str, type_name: Option<String>, optional: bool) -> ParameterFacts {
    crate::text::parameter(collapse(name), type_name, optional)
}

// --- doc comments ---

pub(super) fn doc(decl: Node<'_>, leading: &[Node<'_>], src: &str) -> Option<String> {
    leading_doc(
        leading,
        crate::text::line(decl.start_position()),
        src,
        |c| c.starts_with("/**") && !c.starts_with("/**/"),
        |_| false,
    )
}

// --- decision points ---

pub(super) fn flow(node: Node<'_>, parent: Node<'_>) -> Option<Flow> {
    Some(match node.kind_name() {
        "if_statement" if parent.kind_name() == "else_clause" => Flow::ElseIf,
        "if_statement" => Flow::If,
        "else_clause" => {
            if named_children(node)
                .iter()
                .any(|c| c.kind_name() == "if_statement")
            {
                return None;
            }
            Flow::Else
        }
        "for_statement" | "for_in_statement" => Flow::Loop("for"),
        "while_statement" => Flow::Loop("while"),
        "do_statement" => Flow::Loop("do"),
        "switch_statement" => Flow::Switch,
        "switch_case" => Flow::Case("case"),
        "catch_clause" => Flow::Catch,
        "ternary_expression" => Flow::Ternary,
        "binary_expression" => {
            let op = node.child_by_field("operator")?.kind_name();
            if !matches!(op, "&&" | "||" | "??") {
                return None;
            }
            Flow::Logical(op)
        }
        "break_statement" | "continue_statement" if node.child_by_field("label").is_some() => {
            Flow::Jump
        }
        kind if FUNCTION_VALUES.contains(&kind) => Flow::Lambda,
        _ => return None,
    })
}

// --- visibility ---

pub(super) fn visibility(node: Node<'_>, name: &str, scope: Scope, src: &str) -> Visibility {
    if scope.in_function || name.starts_with('#') {
        return Visibility::Private;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.kind_name() == "accessibility_modifier" {
            return match text(child, src) {
                "private" => Visibility::Private,
                "protected" => Visibility::Protected,
                _ => Visibility::Public,
            };
        }
    }
    Visibility::Public
}

// --- rules ---

pub(super) fn catch_is_empty(node: Node<'_>) -> bool {
    node.child_by_field("body")
        .is_some_and(|b| b.named_child_count() == 0)
}

pub(super) fn exec_sink(call: &Call<'_, '_>) -> Option<SinkArgs> {
    let from_child_process = call
        .object
        .is_some_and(|o| o.contains("child_process") || o == "cp");
    match call.name {
        "eval" if call.object.is_none() => Some(SinkArgs::First),
        "Function" if call.object.is_none() => Some(SinkArgs::Any),
        "exec" | "execSync" if call.object.is_none() || from_child_process => Some(SinkArgs::First),
        _ => None,
    }
}

#[cfg(feature = "javascript")]
impl Lang for JavaScript {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_javascript::LANGUAGE.into()
    }

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        function(node, parent, grandparent, src)
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        (node.kind_name() == "class_declaration")
            .then(|| field_text(node, "name", src))
            .flatten()
            .map(|n| (n.to_owned(), "class"))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        parameters(inner, src)
    }

    fn wrappers(&self) -> &'static [&'static str] {
        &["export_statement"]
    }

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        doc(decl, leading, src)
    }

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        _field: Option<&str>,
        _src: &str,
    ) -> Option<Flow> {
        flow(node, parent)
    }

    fn visibility(&self, node: Node<'_>, name: &str, scope: Scope, src: &str) -> Visibility {
        visibility(node, name, scope, src)
    }

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        catch_is_empty(node)
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string", "template_string"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        exec_sink(call)
    }
}
