//! Halstead volume from leaf tokens, and the maintainability index built on it.
//!
//! Every token of the file goes through a set here, so the sets use `foldhash`: several times
//! faster than the standard SipHash on short keys, and still seeded per process, so a file
//! cannot be written to collide (the keys are the caller's tokens).
//!
//! Operators are the anonymous leaves (keywords and punctuation), operands the named leaves
//! (identifiers and literals, string pieces included); comments count as neither. Volume is
//! `N log2 n` with `N` the tokens and `n` the distinct tokens. This is an approximation of
//! Halstead's definitions, which differ per language anyway; it ranks files the same way.

use foldhash::HashSet;
use tree_sitter::Node;

use crate::names::NodeNames;
use crate::text::text;

/// Token counts of one file.
#[derive(Debug, Default)]
pub(crate) struct Halstead<'s> {
    /// Operators seen, by [`NodeNames::kind_key`]: a bitset, as a grammar has a few hundred
    /// kinds and every keyword or punctuation leaf of the file lands here.
    operators: Vec<u64>,
    distinct_operators: usize,
    operands: HashSet<&'s str>,
    total: u64,
}

impl<'s> Halstead<'s> {
    /// Counts for a file of `src_len` bytes: the operand set starts at a size that fits most
    /// files of that length, instead of growing through every power of two.
    pub(crate) fn for_source(src_len: usize) -> Self {
        let mut halstead = Self::default();
        halstead.operands.reserve((src_len / 32).min(1 << 16));
        halstead
    }

    /// Counts the leaf `node`.
    pub(crate) fn leaf(&mut self, node: Node<'_>, src: &'s str) {
        if node.is_missing() || node.is_comment() {
            return;
        }
        if node.is_named() {
            self.operands.insert(text(node, src));
        } else {
            let key = usize::from(node.kind_key());
            let (word, bit) = (key / 64, 1_u64 << (key % 64));
            if word >= self.operators.len() {
                self.operators.resize(word + 1, 0);
            }
            if let Some(slot) = self.operators.get_mut(word)
                && *slot & bit == 0
            {
                *slot |= bit;
                self.distinct_operators += 1;
            }
        }
        self.total += 1;
    }

    /// Halstead volume `N log2 n` (0 for fewer than two distinct tokens).
    pub(crate) fn volume(&self) -> f64 {
        let distinct = self.distinct_operators + self.operands.len();
        if distinct < 2 {
            return 0.0;
        }
        // Token counts fit an f64 exactly far beyond any file a parse would finish.
        #[allow(clippy::cast_precision_loss)]
        let (n, total) = (distinct as f64, self.total as f64);
        total * n.log2()
    }
}

/// Maintainability index, Visual Studio variant, 0 to 100:
/// `max(0, (171 - 5.2 ln V - 0.23 G - 16.2 ln L) * 100 / 171)`. Logarithms of values below 1
/// count as 0, so an empty file scores 99.9 (its cyclomatic complexity is 1).
pub(crate) fn maintainability_index(volume: f64, cyclomatic: u32, lines_of_code: u32) -> f64 {
    let ln = |x: f64| if x > 1.0 { x.ln() } else { 0.0 };
    let raw = 171.0
        - 5.2 * ln(volume)
        - 0.23 * f64::from(cyclomatic)
        - 16.2 * ln(f64::from(lines_of_code));
    (raw * 100.0 / 171.0).clamp(0.0, 100.0)
}

/// Lines with something other than whitespace on them.
pub(crate) fn lines_of_code(src: &str) -> u32 {
    let count = src.lines().filter(|l| !l.trim().is_empty()).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_within_bounds() {
        assert!((maintainability_index(0.0, 0, 0) - 100.0).abs() < 1e-9);
        assert!(maintainability_index(0.0, 1, 0) > 99.8);
        let mid = maintainability_index(1000.0, 10, 100);
        assert!(mid > 0.0 && mid < 100.0, "{mid}");
        assert!(maintainability_index(1e30, 10_000, 1_000_000) == 0.0);
    }
}
