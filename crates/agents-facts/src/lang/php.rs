//! PHP, with or without the `<?php` tag.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, line, named_children, text, type_text};

/// PHP.
pub(super) struct Php;

/// Built-ins that run PHP code or a shell command line.
const SINKS: &[&str] = &[
    "eval",
    "assert",
    "shell_exec",
    "system",
    "exec",
    "passthru",
    "popen",
    "proc_open",
];

impl Lang for Php {
    fn grammar(&self, source: &str) -> tree_sitter::Language {
        // Snippets often come without the opening tag; the `php` grammar would read them as
        // HTML text.
        if source.contains("<?") {
            tree_sitter_php::LANGUAGE_PHP.into()
        } else {
            tree_sitter_php::LANGUAGE_PHP_ONLY.into()
        }
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        _parent: Option<Node<'t>>,
        _grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        match node.kind_name() {
            "function_definition" | "method_declaration" => {
                let name = field_text(node, "name", src)?.to_owned();
                if node.child_by_field("body").is_some() {
                    Some(FnDecl::plain(name, node))
                } else {
                    // PHP allows a method without a body only in an interface or as `abstract`.
                    (node.kind_name() == "method_declaration")
                        .then(|| FnDecl::without_body(name, node))
                }
            }
            _ => None,
        }
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = match node.kind_name() {
            "class_declaration" => "class",
            "interface_declaration" => "interface",
            "trait_declaration" => "trait",
            "enum_declaration" => "enum",
            _ => return None,
        };
        Some((field_text(node, "name", src)?.to_owned(), kind))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        let Some(list) = inner.child_by_field("parameters") else {
            return Vec::new();
        };
        named_children(list)
            .into_iter()
            .filter(|p| p.kind_name().ends_with("parameter"))
            .map(|p| {
                crate::text::parameter(
                    field_text(p, "name", src).unwrap_or_default(),
                    p.child_by_field("type").map(|t| type_text(t, src)),
                    p.child_by_field("default_value").is_some()
                        || p.kind_name() == "variadic_parameter",
                )
            })
            .collect()
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        inner
            .child_by_field("return_type")
            .map(|t| type_text(t, src))
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
            |n| n.kind_name() == "attribute_list",
        )
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        _field: Option<&str>,
        _src: &str,
    ) -> Option<Flow> {
        Some(match node.kind_name() {
            "if_statement" if parent.kind_name() == "else_clause" => Flow::ElseIf,
            "if_statement" => Flow::If,
            "else_if_clause" => Flow::ElseIf,
            "else_clause" => {
                if node
                    .child_by_field("body")
                    .is_some_and(|b| b.kind_name() == "if_statement")
                {
                    return None;
                }
                Flow::Else
            }
            "for_statement" | "foreach_statement" => Flow::Loop("for"),
            "while_statement" => Flow::Loop("while"),
            "do_statement" => Flow::Loop("do"),
            "switch_statement" | "match_expression" => Flow::Switch,
            "case_statement" | "match_conditional_expression" => Flow::Case("case"),
            "catch_clause" => Flow::Catch,
            "conditional_expression" => Flow::Ternary,
            "binary_expression" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||" | "??" | "and" | "or") {
                    return None;
                }
                Flow::Logical(op)
            }
            "anonymous_function" | "arrow_function" | "anonymous_function_creation_expression" => {
                Flow::Lambda
            }
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, node: Node<'_>, _name: &str, scope: Scope, src: &str) -> Visibility {
        if scope.in_function {
            return Visibility::Private;
        }
        let modifier = named_children(node)
            .into_iter()
            .find(|c| c.kind_name() == "visibility_modifier")
            .map(|m| collapse(text(m, src)));
        match modifier.as_deref() {
            Some("private") => Visibility::Private,
            Some("protected") => Visibility::Protected,
            // No modifier: public.
            _ => Visibility::Public,
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        node.child_by_field("body")
            .is_some_and(|b| b.named_child_count() == 0)
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string", "encapsed_string", "heredoc", "nowdoc"]
    }

    fn concat_ops(&self) -> &'static [&'static str] {
        &["."]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        (call.object.is_none() && SINKS.contains(&call.name)).then_some(SinkArgs::First)
    }

    fn shell_literals(&self) -> &'static [&'static str] {
        &["shell_command_expression"]
    }
}
