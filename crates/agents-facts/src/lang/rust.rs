//! Rust.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, field_text, leading_doc, line, named_children, text};

/// Rust.
pub(super) struct Rust;

/// Whether an attribute marks test-only code: `#[test]`, `#[tokio::test]`, `#[cfg(test)]`.
fn is_test_attribute(attribute: &str) -> bool {
    let inner = attribute
        .trim()
        .trim_start_matches("#[")
        .trim_end_matches(']')
        .trim();
    inner == "test"
        || inner.ends_with("::test")
        || (inner.starts_with("cfg(") && inner.contains("test"))
}

impl Lang for Rust {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_rust::LANGUAGE.into()
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
            "function_item" => Some(FnDecl::plain(
                field_text(node, "name", src)?.to_owned(),
                node,
            )),
            // A trait method without a default body. Signatures in `extern` blocks are foreign
            // functions, not part of this code's API to implement, and are not listed.
            "function_signature_item"
                if parent.is_some_and(|p| p.kind_name() == "declaration_list")
                    && grandparent.is_some_and(|g| g.kind_name() == "trait_item") =>
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
            "struct_item" => "struct",
            "enum_item" => "enum",
            "union_item" => "union",
            "trait_item" => "trait",
            "type_item" => "type",
            "mod_item" => "module",
            _ => return None,
        };
        Some((field_text(node, "name", src)?.to_owned(), kind))
    }

    fn container(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        if node.kind_name() != "impl_item" {
            return None;
        }
        let ty = node.child_by_field("type")?;
        // `impl<T> Stack<T>` belongs to `Stack`.
        let name = ty
            .child_by_field("type")
            .map_or_else(|| text(ty, src), |t| text(t, src));
        let kind = if node.child_by_field("trait").is_some() {
            "trait impl"
        } else {
            "impl"
        };
        Some((collapse(name), kind))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        let Some(list) = inner.child_by_field("parameters") else {
            return Vec::new();
        };
        named_children(list)
            .into_iter()
            .filter(|p| p.kind_name() == "parameter")
            .map(|p| {
                crate::text::parameter(
                    collapse(field_text(p, "pattern", src).unwrap_or_default()),
                    field_text(p, "type", src).map(collapse),
                    false,
                )
            })
            .collect()
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        field_text(inner, "return_type", src).map(collapse)
    }

    // --- doc comments ---

    fn is_trivia(&self, node: Node<'_>) -> bool {
        node.is_comment() || node.kind_name() == "attribute_item"
    }

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        // Outer doc comments (`///`, `/** */`), with attributes between them and the item.
        leading_doc(
            leading,
            line(decl.start_position()),
            src,
            |c| {
                (c.starts_with("///") && !c.starts_with("////"))
                    || (c.starts_with("/**") && !c.starts_with("/***") && !c.starts_with("/**/"))
            },
            |n| n.kind_name() == "attribute_item",
        )
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        _field: Option<&str>,
        src: &str,
    ) -> Option<Flow> {
        Some(match node.kind_name() {
            "if_expression" if parent.kind_name() == "else_clause" => Flow::ElseIf,
            "if_expression" => Flow::If,
            "else_clause" => {
                if named_children(node)
                    .iter()
                    .any(|c| c.kind_name() == "if_expression")
                {
                    return None;
                }
                Flow::Else
            }
            "for_expression" => Flow::Loop("for"),
            "while_expression" => Flow::Loop("while"),
            "loop_expression" => Flow::Loop("loop"),
            "match_expression" => Flow::Switch,
            "match_arm" => {
                if field_text(node, "pattern", src).is_some_and(|p| p.trim() == "_") {
                    return None;
                }
                Flow::Case("match arm")
            }
            "binary_expression" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||") {
                    return None;
                }
                Flow::Logical(op)
            }
            "closure_expression" => Flow::Lambda,
            "break_expression" | "continue_expression"
                if named_children(node)
                    .iter()
                    .any(|c| c.kind_name() == "label") =>
            {
                Flow::Jump
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
            .map(|m| collapse(text(m, src)).replace(' ', ""));
        match modifier.as_deref() {
            Some("pub") => Visibility::Public,
            Some("pub(self)") => Visibility::Private,
            Some(_) => Visibility::Internal,
            // Trait items are as visible as the trait; the items of a trait impl as the trait
            // it implements, which is declared elsewhere: public is the best guess.
            None if scope.container == Some("trait") => {
                scope.container_visibility.unwrap_or(Visibility::Public)
            }
            None if scope.container == Some("trait impl") => Visibility::Public,
            None => Visibility::Private,
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, _node: Node<'_>, _src: &str) -> bool {
        false
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string_literal", "raw_string_literal"]
    }

    fn exec_sink(&self, _call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        // Rust has no `eval`, and `Command` runs no shell unless told to.
        None
    }

    fn allows_unwrap(&self, node: Node<'_>, leading: &[Node<'_>], src: &str) -> bool {
        if !node.kind_name().ends_with("_item") {
            return false;
        }
        if node.kind_name() == "function_item" && field_text(node, "name", src) == Some("main") {
            return true;
        }
        leading
            .iter()
            .any(|a| a.kind_name() == "attribute_item" && is_test_attribute(text(*a, src)))
    }

    fn is_rust(&self) -> bool {
        true
    }
}
