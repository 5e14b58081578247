//! Node kind and field names by number.
//!
//! Why this exists: tree-sitter's `Node::kind()` and `TreeCursor::field_name()` turn a C string
//! into `&str` on every call (a `strlen` and a UTF-8 check), and `child_by_field_name` compares
//! the name with every field of the grammar (`strncmp`). The walk asks these questions several
//! times per node, and together they cost as much as the parse itself. The names never change
//! for a grammar, so each thread looks them up once per grammar and then answers by index.

use std::cell::Cell;
use std::sync::Mutex;

use tree_sitter::{Language, Node, TreeCursor};

/// The names of one grammar, indexed by kind id and field id.
#[derive(Debug)]
struct Names {
    language: Language,
    kinds: Vec<&'static str>,
    /// Per kind id: the lowest id with the same name (a grammar may alias one name to
    /// several ids), so that sets of kinds can be bitsets and still count names.
    canonical: Vec<u16>,
    /// Per kind id: whether the kind is a comment (its name says so, in every grammar).
    comment: Vec<bool>,
    /// Index 0 is unused: field ids start at 1.
    fields: Vec<&'static str>,
}

impl Names {
    fn of(language: &Language) -> Self {
        let kinds: Vec<&'static str> = (0..language.node_kind_count())
            .map(|id| {
                leak(
                    u16::try_from(id)
                        .ok()
                        .and_then(|id| language.node_kind_for_id(id)),
                )
            })
            .collect();
        let canonical = canonical_ids(&kinds);
        let comment = kinds.iter().map(|k| k.contains("comment")).collect();
        let fields = (0..=language.field_count())
            .map(|id| {
                leak(
                    u16::try_from(id)
                        .ok()
                        .and_then(|id| language.field_name_for_id(id)),
                )
            })
            .collect();
        Self {
            language: language.clone(),
            kinds,
            canonical,
            comment,
            fields,
        }
    }
}

/// For each kind, the first id with its name.
fn canonical_ids(kinds: &[&'static str]) -> Vec<u16> {
    let mut first: std::collections::HashMap<&str, u16> = std::collections::HashMap::new();
    kinds
        .iter()
        .enumerate()
        .map(|(id, kind)| {
            let id = u16::try_from(id).unwrap_or(u16::MAX);
            *first.entry(kind).or_insert(id)
        })
        .collect()
}

/// A name kept for the life of the process (see [`ALL`]); a missing one is empty.
fn leak(name: Option<&str>) -> &'static str {
    match name {
        Some(name) if !name.is_empty() => Box::leak(name.to_owned().into_boxed_str()),
        _ => "",
    }
}

/// Every grammar's names, built once and kept for the life of the process: one entry per
/// grammar (a dozen at most, a few KiB each), so leaking them is bounded and lets each thread
/// keep a plain reference.
static ALL: Mutex<Vec<&'static Names>> = Mutex::new(Vec::new());

thread_local! {
    // The grammar this thread looked at last: one file at a time, so nearly every lookup hits.
    static LAST: Cell<Option<&'static Names>> = const { Cell::new(None) };
    // The node asked about last and its kind, while a walk runs: the walk asks about the same
    // node a dozen times in a row, and `Node::id` is free while the kind needs the node's
    // subtree from memory. An id is unique only within one live tree, so the cache lives only
    // as long as one walk over one tree ([`WalkScope`]); `None` outside a walk.
    static LAST_KIND: Cell<Option<(usize, &'static str)>> = const { Cell::new(None) };
}

/// While alive, kinds are cached per node for the walk over one tree. Only one tree's nodes
/// may be asked about while it lives.
#[derive(Debug)]
pub(crate) struct WalkScope {
    outer: Option<(usize, &'static str)>,
}

impl WalkScope {
    pub(crate) fn enter() -> Self {
        Self {
            outer: LAST_KIND.replace(Some((0, ""))),
        }
    }
}

impl Drop for WalkScope {
    fn drop(&mut self) {
        LAST_KIND.set(self.outer.take());
    }
}

/// The names of `language`.
fn names(language: &Language) -> &'static Names {
    if let Some(last) = LAST.get()
        && last.language == *language
    {
        return last;
    }
    let found = {
        let mut all = ALL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = all.iter().find(|n| n.language == *language) {
            found
        } else {
            let names: &'static Names = Box::leak(Box::new(Names::of(language)));
            all.push(names);
            names
        }
    };
    LAST.set(Some(found));
    found
}

/// Cheap names for a node; use these instead of `kind()` and `child_by_field_name()`.
pub(crate) trait NodeNames<'t> {
    /// The node's kind, as [`Node::kind`] says it.
    fn kind_name(&self) -> &'static str;
    /// The first child in field `name`, as [`Node::child_by_field_name`] finds it.
    fn child_by_field(&self, name: &str) -> Option<Node<'t>>;
    /// Whether the node is a comment (its kind's name contains `comment`).
    fn is_comment(&self) -> bool;
    /// A number for the node's kind name, below the grammar's kind count: equal numbers, equal
    /// names.
    fn kind_key(&self) -> u16;
}

impl<'t> NodeNames<'t> for Node<'t> {
    fn kind_name(&self) -> &'static str {
        let cached = LAST_KIND.get();
        if let Some((node, kind)) = cached
            && node == self.id()
        {
            return kind;
        }
        let id = usize::from(self.kind_id());
        // Every kind id of the grammar is in the table; an id past it reads as no kind.
        let kind = names(&self.language()).kinds.get(id).copied().unwrap_or("");
        if cached.is_some() {
            LAST_KIND.set(Some((self.id(), kind)));
        }
        kind
    }

    fn is_comment(&self) -> bool {
        let id = usize::from(self.kind_id());
        names(&self.language())
            .comment
            .get(id)
            .copied()
            .unwrap_or(false)
    }

    fn kind_key(&self) -> u16 {
        let id = self.kind_id();
        names(&self.language())
            .canonical
            .get(usize::from(id))
            .copied()
            .unwrap_or(id)
    }

    fn child_by_field(&self, name: &str) -> Option<Node<'t>> {
        let id = names(&self.language())
            .fields
            .iter()
            .skip(1)
            .position(|f| *f == name)?;
        // `position` counted from field 1.
        self.child_by_field_id(u16::try_from(id + 1).ok()?)
    }
}

/// The field name of the cursor's node in its parent, as [`TreeCursor::field_name`] says it.
pub(crate) fn field_name(cursor: &TreeCursor<'_>) -> Option<&'static str> {
    let id = usize::from(cursor.field_id()?.get());
    names(&cursor.node().language())
        .fields
        .get(id)
        .copied()
        .filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "rust")]
    #[test]
    fn names_match_tree_sitter_for_every_node_and_field() {
        let language: Language = tree_sitter_rust::LANGUAGE.into();
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&language).expect("grammar fits");
        let source = "/// doc\npub fn f(x: u32) -> u32 { if x > 1 { x * 2 } else { x } } // end\n/* block */\n";
        let tree = parser.parse(source, None).expect("parses");
        let _scope = WalkScope::enter();
        let mut cursor = tree.walk();
        let mut seen = 0;
        let mut keys: std::collections::HashMap<u16, String> = std::collections::HashMap::new();
        loop {
            let node = cursor.node();
            assert_eq!(node.kind_name(), node.kind());
            assert_eq!(node.is_comment(), node.kind().contains("comment"));
            // One key per name, one name per key.
            let key = node.kind_key();
            let name = keys.entry(key).or_insert_with(|| node.kind().to_owned());
            assert_eq!(name, node.kind());
            // Asked again: answered from the per-node cache.
            assert_eq!(node.kind_name(), node.kind());
            if let Some(parent) = node.parent() {
                assert_eq!(parent.kind_name(), parent.kind());
                assert_eq!(node.kind_name(), node.kind());
            }
            assert_eq!(field_name(&cursor), cursor.field_name());
            for field in ["name", "body", "parameters", "condition", "nope"] {
                assert_eq!(node.child_by_field(field), node.child_by_field_name(field));
            }
            seen += 1;
            if cursor.goto_first_child() || cursor.goto_next_sibling() {
                continue;
            }
            loop {
                if !cursor.goto_parent() {
                    assert!(seen > 20, "walked {seen} nodes");
                    let mut names: Vec<&String> = keys.values().collect();
                    names.sort();
                    names.dedup();
                    assert_eq!(names.len(), keys.len(), "two keys for one name: {keys:?}");
                    return;
                }
                if cursor.goto_next_sibling() {
                    break;
                }
            }
        }
    }
}
