//! TypeScript (TSX as a fallback): JavaScript's rules plus types, annotations and
//! accessibility modifiers.

use agents_core::facts::{ParameterFacts, Visibility};
use tree_sitter::Node;

use super::javascript;
use super::{Flow, FnDecl, Lang, Scope, SinkArgs};
use crate::calls::Call;
use crate::names::NodeNames;
use crate::text::{field_text, type_text};

/// TypeScript.
pub(super) struct TypeScript;

impl Lang for TypeScript {
    fn grammar(&self, _source: &str) -> tree_sitter::Language {
        tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()
    }

    fn fallback_grammar(&self, source: &str) -> Option<tree_sitter::Language> {
        // JSX only parses with the TSX grammar, which in turn rejects `<T>x` casts.
        (source.contains("</") || source.contains("/>"))
            .then(|| tree_sitter_typescript::LANGUAGE_TSX.into())
    }

    // --- declarations ---

    fn function<'t>(
        &self,
        node: Node<'t>,
        parent: Option<Node<'t>>,
        grandparent: Option<Node<'t>>,
        src: &str,
    ) -> Option<FnDecl<'t>> {
        let without_body = match node.kind_name() {
            // Interface members, and overload signatures in a class.
            "method_signature" => parent.is_some_and(|p| {
                matches!(p.kind_name(), "interface_body" | "class_body")
                    || (p.kind_name() == "object_type"
                        && grandparent.is_some_and(|g| g.kind_name() == "type_alias_declaration"))
            }),
            "abstract_method_signature" => true,
            // Overload signatures and `declare function`.
            "function_signature" => true,
            _ => return javascript::function(node, parent, grandparent, src),
        };
        without_body
            .then(|| field_text(node, "name", src))
            .flatten()
            .map(|name| FnDecl::without_body(name.to_owned(), node))
    }

    fn type_decl(&self, node: Node<'_>, src: &str) -> Option<(String, &'static str)> {
        let kind = match node.kind_name() {
            "class_declaration" | "abstract_class_declaration" => "class",
            "interface_declaration" => "interface",
            "type_alias_declaration" => "type",
            "enum_declaration" => "enum",
            "internal_module" | "module" => "module",
            _ => return None,
        };
        Some((field_text(node, "name", src)?.to_owned(), kind))
    }

    fn parameters(&self, inner: Node<'_>, src: &str) -> Vec<ParameterFacts> {
        javascript::parameters(inner, src)
    }

    fn return_type(&self, inner: Node<'_>, src: &str) -> Option<String> {
        inner
            .child_by_field("return_type")
            .map(|t| type_text(t, src))
    }

    fn wrappers(&self) -> &'static [&'static str] {
        &["export_statement"]
    }

    // --- doc comments ---

    fn doc(
        &self,
        decl: Node<'_>,
        _inner: Node<'_>,
        leading: &[Node<'_>],
        src: &str,
    ) -> Option<String> {
        javascript::doc(decl, leading, src)
    }

    // --- decision points ---

    fn flow(
        &self,
        node: Node<'_>,
        parent: Node<'_>,
        _field: Option<&str>,
        _src: &str,
    ) -> Option<Flow> {
        javascript::flow(node, parent)
    }

    // --- visibility ---

    fn visibility(&self, node: Node<'_>, name: &str, scope: Scope, src: &str) -> Visibility {
        javascript::visibility(node, name, scope, src)
    }

    // --- rules ---

    fn catch_is_empty(&self, node: Node<'_>, _src: &str) -> bool {
        javascript::catch_is_empty(node)
    }

    fn strings(&self) -> &'static [&'static str] {
        &["string", "template_string"]
    }

    fn exec_sink(&self, call: &Call<'_, '_>, _src: &str) -> Option<SinkArgs> {
        javascript::exec_sink(call)
    }
}
