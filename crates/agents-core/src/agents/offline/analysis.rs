//! The rule-based code analysis: what `code-analysis` answers when no model does.
//!
//! Findings come from three places: the analyzer's syntax-aware rules (`facts.findings`), the
//! threshold rules over the per-function numbers ([`threshold_findings`] with the configured
//! [`RuleThresholds`]), and the hard-coded secret rule ([`secret_findings`]). Each becomes a
//! suggestion; security rules also become vulnerabilities (with their CWE), nested loops a CPU
//! bottleneck. Syntax errors are reported as errors, since every other number is less certain
//! when the parse had to recover.
//!
//! Each list holds at most [`MAX_LISTED`] entries, the most severe first, and the degraded reason
//! says how many more were left out: hostile input (one `unsafe {}` per line) can make the rules
//! fire tens of thousands of times, and an answer that size could not be sent at all.

use std::collections::HashSet;

use super::secrets::secret_findings;
use crate::agents::Severity;
use crate::agents::code_analysis::{
    Bottleneck, BottleneckKind, CodeAnalysisInput, CodeAnalysisOutput, Complexity, FunctionMetrics,
    PerformanceReport, RiskLevel, SecurityReport, Suggestion, SuggestionKind, Vulnerability,
};
use crate::facts::{CodeFacts, Finding, Rule, RuleThresholds, SyntaxIssue, threshold_findings};

/// Confidence of a rule-based analysis: the rules are precise, but they see far less than a
/// reviewer does.
pub(crate) const CONFIDENCE: f64 = 0.4;
/// Confidence when the parser met syntax errors.
pub(crate) const CONFIDENCE_WITH_SYNTAX_ERRORS: f64 = 0.3;
/// Most suggestions, vulnerabilities and bottlenecks the answer lists, each: far more than a
/// reader acts on, and few enough that the lists stay around 100 KiB whatever the source, well
/// under the server's 4 MiB message limit.
pub(crate) const MAX_LISTED: usize = 200;

/// The degraded answer.
pub(crate) fn answer(
    input: &CodeAnalysisInput,
    facts: &CodeFacts,
    reason: &str,
    rules: &RuleThresholds,
    complexity: Option<Complexity>,
    (functions, functions_left_out): (Vec<FunctionMetrics>, u32),
) -> CodeAnalysisOutput {
    let findings = all_findings(input, facts, rules);
    let (suggestions, suggestions_left_out) = if input.include_suggestions {
        // Syntax errors are all high and the findings come most severe first, so the chain does
        // too and the cap keeps the worst.
        capped(
            facts
                .syntax_errors
                .iter()
                .map(syntax_error)
                .chain(findings.iter().map(suggestion))
                .filter(|s| s.severity >= input.severity),
        )
    } else {
        (Vec::new(), 0)
    };
    let security = findings.iter().filter(|f| f.rule.category() == "security");
    let risk_level = risk_level(security.clone());
    let (vulnerabilities, vulnerabilities_left_out) = capped(security.map(vulnerability));
    let (bottlenecks, bottlenecks_left_out) = capped(
        findings
            .iter()
            .filter(|f| f.rule == Rule::NestedLoops)
            .map(bottleneck),
    );
    let algorithmic_complexity = (!bottlenecks.is_empty()).then(|| "O(n^2)".to_owned());
    let left_out = left_out_note(&[
        (suggestions_left_out, "suggestions"),
        (vulnerabilities_left_out, "vulnerabilities"),
        (bottlenecks_left_out, "bottlenecks"),
    ]);

    CodeAnalysisOutput {
        suggestions,
        complexity,
        functions,
        functions_left_out,
        security: SecurityReport {
            vulnerabilities,
            risk_level,
        },
        performance: PerformanceReport {
            bottlenecks,
            // Memory is not something the rules can see; `low` says nothing was found.
            memory_usage: Severity::Low,
            algorithmic_complexity,
        },
        confidence: if facts.syntax_errors.is_empty() {
            CONFIDENCE
        } else {
            CONFIDENCE_WITH_SYNTAX_ERRORS
        },
        degraded: true,
        degraded_reason: Some(format!("{reason}{left_out}")),
    }
}

/// The first [`MAX_LISTED`] items, and how many more there were.
fn capped<T>(mut items: impl Iterator<Item = T>) -> (Vec<T>, usize) {
    let listed = items.by_ref().take(MAX_LISTED).collect();
    (listed, items.count())
}

/// What the caps left out, as a clause for the degraded reason; empty when nothing was.
fn left_out_note(counts: &[(usize, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} more {what}"))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(
        "; only the {MAX_LISTED} most severe of each list are shown, {} left out",
        parts.join(", ")
    )
}

/// Every finding, once per rule and line, most severe first, then in source order.
fn all_findings(
    input: &CodeAnalysisInput,
    facts: &CodeFacts,
    rules: &RuleThresholds,
) -> Vec<Finding> {
    // A set, not a search of the list so far: hostile input can yield tens of thousands.
    let mut seen: HashSet<(Rule, u32)> = HashSet::new();
    let mut findings: Vec<Finding> = facts
        .findings
        .iter()
        .cloned()
        .chain(threshold_findings(facts, rules))
        .chain(secret_findings(&input.source_code))
        .filter(|f| seen.insert((f.rule, f.line)))
        .collect();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.line.cmp(&b.line)));
    findings
}

/// A finding as a suggestion.
fn suggestion(finding: &Finding) -> Suggestion {
    Suggestion {
        kind: kind_of(finding.rule),
        message: non_empty(&finding.message, finding.rule.as_str()),
        line: Some(finding.line.max(1)),
        severity: finding.severity,
        category: finding.rule.category().to_owned(),
    }
}

/// A syntax error as a suggestion.
fn syntax_error(issue: &SyntaxIssue) -> Suggestion {
    Suggestion {
        kind: SuggestionKind::Error,
        message: format!(
            "The parser could not make sense of the code at column {}: {}. Fix the syntax first; the other findings may be incomplete.",
            issue.column.max(1),
            non_empty(&issue.message, "syntax error")
        ),
        line: Some(issue.line.max(1)),
        severity: Severity::High,
        category: "correctness".to_owned(),
    }
}

/// A security finding as a vulnerability.
fn vulnerability(finding: &Finding) -> Vulnerability {
    Vulnerability {
        kind: finding.rule.as_str().to_owned(),
        description: non_empty(&finding.message, finding.rule.as_str()),
        line: Some(finding.line.max(1)),
        severity: finding.severity,
        cwe: finding.rule.cwe().map(str::to_owned),
    }
}

/// A nested-loops finding as a CPU bottleneck.
fn bottleneck(finding: &Finding) -> Bottleneck {
    Bottleneck {
        kind: BottleneckKind::Cpu,
        impact: finding.severity,
        description: finding.message.clone(),
        line: Some(finding.line.max(1)),
    }
}

/// The overall risk: that of the worst security finding, counted before any cap.
fn risk_level<'a>(security: impl Iterator<Item = &'a Finding>) -> RiskLevel {
    security
        .map(|f| f.severity)
        .max()
        .map_or(RiskLevel::None, |worst| match worst {
            Severity::Low => RiskLevel::Low,
            Severity::Medium => RiskLevel::Medium,
            Severity::High => RiskLevel::High,
        })
}

/// What kind of suggestion a rule makes.
fn kind_of(rule: Rule) -> SuggestionKind {
    match rule {
        Rule::LongFunction
        | Rule::ComplexFunction
        | Rule::DeepNesting
        | Rule::TooManyParameters => SuggestionKind::Improvement,
        Rule::NestedLoops => SuggestionKind::Optimization,
        Rule::HardcodedSecret => SuggestionKind::Error,
        _ => SuggestionKind::Warning,
    }
}

/// `text`, or `fallback` when it is blank (the output schema wants non-empty messages).
fn non_empty(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_suggestion_kind_and_blank_messages_get_one() {
        for rule in Rule::ALL {
            let finding = Finding::new(rule, 0, " ");
            let suggestion = suggestion(&finding);
            assert_eq!(suggestion.message, rule.as_str());
            assert_eq!(suggestion.line, Some(1));
            assert_eq!(suggestion.category, rule.category());
            let _ = kind_of(rule);
        }
        assert_eq!(kind_of(Rule::NestedLoops), SuggestionKind::Optimization);
        assert_eq!(kind_of(Rule::HardcodedSecret), SuggestionKind::Error);
        assert_eq!(kind_of(Rule::SqlConcatenation), SuggestionKind::Warning);
        assert_eq!(kind_of(Rule::DeepNesting), SuggestionKind::Improvement);
    }
}
