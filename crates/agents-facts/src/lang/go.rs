//! Go.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, line, named_children, text};

/// Go.
pub(super) struct Go;

/// Programs that run their argument as a shell command line.
const SHELLS: &[&str] = &[
    "\"sh\"",
    "\"bash\"",
    "\"/bin/sh\"",
    "\"/bin/bash\"",
    "\"cmd\"",
    "\"powershell\"",
];

impl Lang for Go {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_go::LANGUAGE.into()
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        match node.kind_name() {
            "function_declaration" => Some(FnDecl::plain(
                field_text(node, "name", src)?.to_owned(),
                node,
            )),
            "method_declaration" => {
                let mut decl = FnDecl::plain(field_text(node, "name", src)?.to_owned(), node);
                decl.container = node
                    .child_by_field("receiver")
                    .and_then(|r| r.named_child(0))
                    .and_then(|p| p.child_by_field("type"))
                    .map(|t| {
                        let name = text(t, src).trim_start_matches('*');
                        name.split('[').next().unwrap_or(name).trim().to_owned()
                    });
                Some(decl)
            }
            // A method of a named interface type; its container is the type it belongs to. An
            // interface written in place (a variable's or field's type, a type constraint)
            // declares no API of its own.
            "method_elem"
                if parent.is_some_and(|p| p.kind_name() == "interface_type")
                    && grandparent
                        .is_some_and(|g| matches!(g.kind_name(), "type_spec" | "type_alias")) =>
            {
                Some(FnDecl::without_body(
                    field_text(node, "name", src)?.to_owned(),
                    node,
                ))
            }
            _ => None,
        }
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = match node.kind_name() {
            "type_spec" => match node.child_by_field("type").map(|t| t.kind_name()) {
                Some("struct_type") => "struct",
                Some("interface_type") => "interface",
                _ => "type",
            },
            "type_alias" => "type",
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
            let variadic = child.kind_name() == "variadic_parameter_declaration";
            if !variadic && child.kind_name() != "parameter_declaration" {
                continue;
            }
            let type_name = field_text(child, "type", src).map(|t| {
                if variadic {
                    format!("...{}", collapse(t))
                } else {
                    collapse(t)
                }
            });
            let mut cursor = child.walk();
            let names: Vec<&str> = child
                .children_by_field_name("name", &mut cursor)
                .map(|n| text(n, src))
                .collect();
            if names.is_empty() {
                out.push(crate::text::parameter("_", type_name.clone(), false));
            }
            for name in names {
                out.push(crate::text::parameter(
                    name.to_owned(),
                    type_name.clone(),
                    variadic,
                ));
            }
        }
        out
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        field_text(inner, "result", src).map(collapse)
    }

    fn wrappers(&self) -> &'static [&'static str] {
        &["type_declaration"]
    }

    // --- doc comments ---

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        // Go doc comments: the `//` lines right above the declaration.
        leading_doc(
            leading,
            line(decl.start_position()),
            src,
            |c| c.starts_with("//"),
            |_| false,
        )
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        field: Option<&str>,
        _src: &str,
    ) -> Option<Flow> {
        let in_if_else = parent.kind_name() == "if_statement" && field == Some("alternative");
        Some(match node.kind_name() {
            "if_statement" if in_if_else => Flow::ElseIf,
            "if_statement" => Flow::If,
            _ if in_if_else => Flow::Else,
            "for_statement" => Flow::Loop("for"),
            "expression_switch_statement" | "type_switch_statement" | "select_statement" => {
                Flow::Switch
            }
            "expression_case" | "type_case" | "communication_case" => Flow::Case("case"),
            "binary_expression" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||") {
                    return None;
                }
                Flow::Logical(op)
            }
            "func_literal" => Flow::Lambda,
            "goto_statement" => Flow::Jump,
            "break_statement" | "continue_statement" if node.named_child_count() > 0 => Flow::Jump,
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, _node: Node<'_>, name: &str, scope: Scope, _src: &str) -> Visibility {
        if scope.in_function {
            Visibility::Private
        } else if name.chars().next().is_some_and(char::is_uppercase) {
            Visibility::Public
        } else {
            // Unexported: the package only.
            Visibility::Internal
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, _node: Node<'_>, _src: &str) -> bool {
        false
    }

    fn strings(&self) -> &'static [&'static str] {
        &["interpreted_string_literal", "raw_string_literal"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, src: &str) -> Option<SinkArgs> {
        if call.object != Some("exec") || !matches!(call.name, "Command" | "CommandContext") {
            return None;
        }
        let program = if call.name == "CommandContext" {
            call.args.get(1)
        } else {
            call.args.first()
        };
        // `exec.Command(name, args...)` runs no shell; only a shell given a built line is code.
        match program.map(|p| text(*p, src)) {
            Some(p) if SHELLS.contains(&p) => Some(SinkArgs::Any),
            _ => None,
        }
    }
}
