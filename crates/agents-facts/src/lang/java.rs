//! Java.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, line, named_children, text};

/// Java.
pub(super) struct Java;

/// The modifier words of the declaration at `node` (`public`, `abstract`, ...).
fn modifiers<'s>(node: Node<'_>, src: &'s str) -> Vec<&'s str> {
    named_children(node)
        .into_iter()
        .find(|c| c.kind_name() == "modifiers")
        .map_or("", |m| text(m, src))
        .split_whitespace()
        .collect()
}

impl Lang for Java {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_java::LANGUAGE.into()
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        _grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        match node.kind_name() {
            "method_declaration"
            | "constructor_declaration"
            | "compact_constructor_declaration" => {
                let name = field_text(node, "name", src)?.to_owned();
                if node.child_by_field("body").is_some() {
                    return Some(FnDecl::plain(name, node));
                }
                // Without a body: an interface or `abstract` method. A `native` one is
                // implemented elsewhere and is not listed.
                let in_interface = parent.is_some_and(|p| p.kind_name() == "interface_body");
                (in_interface || modifiers(node, src).contains(&"abstract"))
                    .then(|| FnDecl::without_body(name, node))
            }
            _ => None,
        }
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = match node.kind_name() {
            "class_declaration" => "class",
            "interface_declaration" => "interface",
            "enum_declaration" => "enum",
            "record_declaration" => "record",
            "annotation_type_declaration" => "annotation",
            _ => return None,
        };
        Some((field_text(node, "name", src)?.to_owned(), kind))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        let Some(list) = inner.child_by_field("parameters") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for child in named_children(list) {
            let (name, type_name) = match child.kind_name() {
                "formal_parameter" => (
                    field_text(child, "name", src)
                        .unwrap_or_default()
                        .to_owned(),
                    field_text(child, "type", src).map(collapse),
                ),
                "spread_parameter" => {
                    let parts = named_children(child);
                    let name = parts
                        .iter()
                        .find(|p| p.kind_name() == "variable_declarator")
                        .and_then(|d| field_text(*d, "name", src))
                        .unwrap_or_default()
                        .to_owned();
                    let type_name = parts
                        .iter()
                        .find(|p| {
                            p.kind_name() != "variable_declarator" && p.kind_name() != "modifiers"
                        })
                        .map(|t| format!("{}...", collapse(text(*t, src))));
                    (name, type_name)
                }
                _ => continue,
            };
            out.push(crate::text::parameter(name, type_name, false));
        }
        out
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        field_text(inner, "type", src).map(collapse)
    }

    // --- doc comments ---

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        leading_doc(
            leading,
            line(decl.start_position()),
            src,
            |c| c.starts_with("/**") && !c.starts_with("/**/"),
            |_| false,
        )
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        field: Option<&str>,
        src: &str,
    ) -> Option<Flow> {
        let in_if_else = parent.kind_name() == "if_statement" && field == Some("alternative");
        Some(match node.kind_name() {
            "if_statement" if in_if_else => Flow::ElseIf,
            "if_statement" => Flow::If,
            _ if in_if_else => Flow::Else,
            "for_statement" | "enhanced_for_statement" => Flow::Loop("for"),
            "while_statement" => Flow::Loop("while"),
            "do_statement" => Flow::Loop("do"),
            "switch_expression" | "switch_statement" => Flow::Switch,
            "switch_block_statement_group" | "switch_rule" => {
                let default = named_children(node).iter().any(|c| {
                    c.kind_name() == "switch_label"
                        && text(*c, src).trim_start().starts_with("default")
                });
                if default {
                    return None;
                }
                Flow::Case("case")
            }
            "catch_clause" => Flow::Catch,
            "ternary_expression" => Flow::Ternary,
            "binary_expression" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||") {
                    return None;
                }
                Flow::Logical(op)
            }
            "lambda_expression" => Flow::Lambda,
            "break_statement" | "continue_statement" if node.named_child_count() > 0 => Flow::Jump,
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, node: Node<'_>, _name: &str, scope: Scope, src: &str) -> Visibility {
        if scope.in_function {
            return Visibility::Private;
        }
        let words = modifiers(node, src);
        if words.contains(&"public") {
            Visibility::Public
        } else if words.contains(&"protected") {
            Visibility::Protected
        } else if words.contains(&"private") {
            Visibility::Private
        } else if matches!(scope.container, Some("interface" | "annotation")) {
            Visibility::Public
        } else {
            // No modifier: package-private.
            Visibility::Internal
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        node.child_by_field("body")
            .is_some_and(|b| b.named_child_count() == 0)
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string_literal"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        match call.name {
            "exec"
                if call
                    .object
                    .is_some_and(|o| o.contains("Runtime") || o.contains("runtime")) =>
            {
                Some(SinkArgs::First)
            }
            "ProcessBuilder" if call.is_new => Some(SinkArgs::Any),
            "eval" if call.object.is_some() => Some(SinkArgs::First),
            _ => None,
        }
    }
}
