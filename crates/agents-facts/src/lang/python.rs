//! Python.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{collapse, docstring, field_text, named_children, text};

/// Python.
pub(super) struct Python;

/// `subprocess` functions that take a command line; with `shell=True` it goes to a shell.
const SUBPROCESS: &[&str] = &["run", "call", "Popen", "check_output", "check_call"];

impl Lang for Python {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_python::LANGUAGE.into()
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        _parent: Option<Node<'t>>,
        _grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        (node.kind_name() == "function_definition")
            .then(|| field_text(node, "name", src))
            .flatten()
            .map(|name| FnDecl::plain(name.to_owned(), node))
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        (node.kind_name() == "class_definition")
            .then(|| field_text(node, "name", src))
            .flatten()
            .map(|n| (n.to_owned(), "class"))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        let Some(list) = inner.child_by_field("parameters") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, child) in named_children(list).into_iter().enumerate() {
            let (name, type_name, optional) = match child.kind_name() {
                "identifier" => {
                    let name = text(child, src);
                    if i == 0 && matches!(name, "self" | "cls") {
                        continue;
                    }
                    (name.to_owned(), None, false)
                }
                "typed_parameter" => {
                    let name = child.named_child(0).map_or("", |n| text(n, src)).to_owned();
                    (name, field_text(child, "type", src).map(collapse), false)
                }
                "default_parameter" | "typed_default_parameter" => (
                    field_text(child, "name", src)
                        .unwrap_or_default()
                        .to_owned(),
                    field_text(child, "type", src).map(collapse),
                    true,
                ),
                "list_splat_pattern" | "dictionary_splat_pattern" => {
                    (text(child, src).to_owned(), None, true)
                }
                _ => continue,
            };
            out.push(crate::text::parameter(collapse(&name), type_name, optional));
        }
        out
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        field_text(inner, "return_type", src).map(collapse)
    }

    // --- doc comments ---

    fn doc(
        &self,
        _decl: Node<'_>,
        inner: Node<'_>,
        _leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        // The docstring: a string as the first statement of the body.
        let body = inner.child_by_field("body")?;
        let first = body.named_child(0)?;
        let string = (first.kind_name() == "expression_statement")
            .then(|| first.named_child(0))
            .flatten()
            .filter(|s| s.kind_name() == "string")?;
        docstring(text(string, src))
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
            "if_statement" => Flow::If,
            "elif_clause" => Flow::ElseIf,
            "else_clause" if parent.kind_name() == "if_statement" => Flow::Else,
            "for_statement" => Flow::Loop("for"),
            "while_statement" => Flow::Loop("while"),
            "except_clause" | "except_group_clause" => Flow::Catch,
            "match_statement" => Flow::Switch,
            "case_clause" => {
                let pattern = named_children(node)
                    .into_iter()
                    .find(|c| c.kind_name() == "case_pattern");
                if pattern.is_some_and(|p| text(p, src).trim() == "_") {
                    return None;
                }
                Flow::Case("case")
            }
            "conditional_expression" => Flow::Ternary,
            "boolean_operator" => Flow::Logical(node.child_by_field("operator")?.kind_name()),
            "for_in_clause" => Flow::Decision("for"),
            "if_clause" => Flow::Decision("if"),
            "lambda" => Flow::Lambda,
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, _node: Node<'_>, name: &str, scope: Scope, _src: &str) -> Visibility {
        let dunder = name.starts_with("__") && name.ends_with("__");
        if scope.in_function || (name.starts_with('_') && !dunder) {
            Visibility::Private
        } else {
            Visibility::Public
        }
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        // `except: pass` does nothing either.
        named_children(node)
            .into_iter()
            .rfind(|c| c.kind_name() == "block")
            .is_none_or(|block| {
                named_children(block)
                    .iter()
                    .all(|s| s.kind_name() == "pass_statement")
            })
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, src: &str) -> Option<SinkArgs> {
        match (call.object, call.name) {
            (None, "eval" | "exec") => Some(SinkArgs::First),
            (Some("os"), "system" | "popen") => Some(SinkArgs::First),
            (Some("subprocess"), "getoutput" | "getstatusoutput") => Some(SinkArgs::First),
            (Some("subprocess"), name)
                if SUBPROCESS.contains(&name) && call.keyword_is("shell", "True", src) =>
            {
                Some(SinkArgs::First)
            }
            _ => None,
        }
    }
}
