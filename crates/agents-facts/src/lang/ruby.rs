//! Ruby.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{field_text, leading_doc, line, named_children, text};

/// Ruby.
pub(super) struct Ruby;

fn visibility_word(word: &str) -> Option<Visibility> {
    match word {
        "private" => Some(Visibility::Private),
        "protected" => Some(Visibility::Protected),
        "public" => Some(Visibility::Public),
        _ => None,
    }
}

impl Lang for Ruby {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_ruby::LANGUAGE.into()
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        if !matches!(node.kind_name(), "method" | "singleton_method") {
            return None;
        }
        let mut decl = FnDecl::plain(field_text(node, "name", src)?.to_owned(), node);
        // `private def helper`: the call carries the visibility.
        if parent.is_some_and(|p| p.kind_name() == "argument_list")
            && let Some(call) = grandparent.filter(|g| {
                g.kind_name() == "call"
                    && field_text(*g, "method", src)
                        .and_then(visibility_word)
                        .is_some()
            })
        {
            decl.outer = call;
        }
        Some(decl)
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = match node.kind_name() {
            "class" => "class",
            "module" => "module",
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
            let name = field_text(child, "name", src).unwrap_or_else(|| text(child, src));
            let (name, optional) = match child.kind_name() {
                "identifier" => (name.to_owned(), false),
                "optional_parameter" => (name.to_owned(), true),
                "keyword_parameter" => {
                    (format!("{name}:"), child.child_by_field("value").is_some())
                }
                "splat_parameter" => (format!("*{name}"), true),
                "hash_splat_parameter" => (format!("**{name}"), true),
                "block_parameter" => (format!("&{name}"), true),
                kind if kind.contains("comment") => continue,
                _ => (name.to_owned(), false),
            };
            out.push(crate::text::parameter(name, None, optional));
        }
        out
    }

    fn wrappers(&self) -> &'static [&'static str] {
        // A class's first method: the comment above it is a child of the class, not of the
        // body.
        &["body_statement"]
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
            |c| c.starts_with('#') && !c.starts_with("#!"),
            |_| false,
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
            "if" | "unless" | "if_modifier" | "unless_modifier" => Flow::If,
            "elsif" => Flow::ElseIf,
            "else" if matches!(parent.kind_name(), "if" | "unless" | "elsif") => Flow::Else,
            "while" | "while_modifier" => Flow::Loop("while"),
            "until" | "until_modifier" => Flow::Loop("until"),
            "for" => Flow::Loop("for"),
            "case" | "case_match" => Flow::Switch,
            "when" | "in_clause" => Flow::Case("when"),
            "rescue" => Flow::Catch,
            "conditional" => Flow::Ternary,
            "binary" => {
                let op = node.child_by_field("operator")?.kind_name();
                if !matches!(op, "&&" | "||" | "and" | "or") {
                    return None;
                }
                Flow::Logical(op)
            }
            "block" | "do_block" | "lambda" => Flow::Lambda,
            _ => return None,
        })
    }

    // --- visibility ---

    fn visibility(&self, node: Node<'_>, _name: &str, scope: Scope, src: &str) -> Visibility {
        if scope.in_function {
            return Visibility::Private;
        }
        if node.kind_name() == "call" {
            return field_text(node, "method", src)
                .and_then(visibility_word)
                .unwrap_or(Visibility::Public);
        }
        if node.kind_name() == "singleton_method" {
            return Visibility::Public;
        }
        scope.section.unwrap_or(Visibility::Public)
    }

    fn section_marker(&self, node: Node<'_>, src: &str) -> Option<Visibility> {
        // A bare `private` line makes the methods after it private.
        (node.kind_name() == "identifier")
            .then(|| visibility_word(text(node, src)))
            .flatten()
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        node.kind_name() == "rescue"
            && !named_children(node).iter().any(|c| c.kind_name() == "then")
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        match (call.object, call.name) {
            (None | Some("Kernel"), "eval" | "system" | "exec" | "spawn") => Some(SinkArgs::First),
            (Some(_), "instance_eval" | "class_eval" | "module_eval") => Some(SinkArgs::First),
            (Some("Open3"), _) | (Some("IO"), "popen") => Some(SinkArgs::First),
            _ => None,
        }
    }

    fn shell_literals(&self) -> &'static [&'static str] {
        &["subshell"]
    }
}
