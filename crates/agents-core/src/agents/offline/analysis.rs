//! The rule-based code analysis: what `code-analysis` answers when no model does.
//!
//! Findings come from three places: the analyzer's syntax-aware rules (`facts.findings`), the
//! threshold rules over the per-function numbers ([`threshold_findings`] with the configured
//! [`RuleThresholds`]), and the hard-coded secret rule ([`secret_findings`]). Each becomes a
//! suggestion; security rules also become vulnerabilities (with their CWE), nested loops a CPU
//! bottleneck. Syntax errors are reported as errors, since every other number is less certain
//! when the parse had to recover.

use super::secrets::secret_findings;
use crate::agents::Severity;
use crate::agents::code_analysis::{
    Bottleneck, BottleneckKind, CodeAnalysisInput, CodeAnalysisOutput, Complexity, FunctionMetrics,
    PerformanceReport, RiskLevel, SecurityReport, Suggestion, SuggestionKind, Vulnerability,
};
use crate::facts::{CodeFacts, Finding, Rule, RuleThresholds, threshold_findings};

/// Confidence of a rule-based analysis: the rules are precise, but they see far less than a
/// reviewer does.
pub(crate) const CONFIDENCE: f64 = 0.4;
/// Confidence when the parser met syntax errors.
pub(crate) const CONFIDENCE_WITH_SYNTAX_ERRORS: f64 = 0.3;

/// The degraded answer.
pub(crate) fn answer(
    input: &CodeAnalysisInput,
    facts: &CodeFacts,
    reason: &str,
    rules: &RuleThresholds,
    complexity: Option<Complexity>,
    functions: Vec<FunctionMetrics>,
) -> CodeAnalysisOutput {
    let findings = all_findings(input, facts, rules);

    let mut suggestions: Vec<Suggestion> = facts
        .syntax_errors
        .iter()
        .map(|issue| Suggestion {
            kind: SuggestionKind::Error,
            message: format!(
                "The parser could not make sense of the code at column {}: {}. Fix the syntax first; the other findings may be incomplete.",
                issue.column.max(1),
                non_empty(&issue.message, "syntax error")
            ),
            line: Some(issue.line.max(1)),
            severity: Severity::High,
            category: "correctness".to_owned(),
        })
        .collect();
    suggestions.extend(findings.iter().map(suggestion));
    if input.include_suggestions {
        suggestions.retain(|s| s.severity >= input.severity);
    } else {
        suggestions.clear();
    }

    let vulnerabilities: Vec<Vulnerability> = findings
        .iter()
        .filter(|f| f.rule.category() == "security")
        .map(|f| Vulnerability {
            kind: f.rule.as_str().to_owned(),
            description: non_empty(&f.message, f.rule.as_str()),
            line: Some(f.line.max(1)),
            severity: f.severity,
            cwe: f.rule.cwe().map(str::to_owned),
        })
        .collect();
    let risk_level = vulnerabilities.iter().map(|v| v.severity).max().map_or(
        RiskLevel::None,
        |worst| match worst {
            Severity::Low => RiskLevel::Low,
            Severity::Medium => RiskLevel::Medium,
            Severity::High => RiskLevel::High,
        },
    );

    let bottlenecks: Vec<Bottleneck> = findings
        .iter()
        .filter(|f| f.rule == Rule::NestedLoops)
        .map(|f| Bottleneck {
            kind: BottleneckKind::Cpu,
            impact: f.severity,
            description: f.message.clone(),
            line: Some(f.line.max(1)),
        })
        .collect();
    let algorithmic_complexity = (!bottlenecks.is_empty()).then(|| "O(n^2)".to_owned());

    CodeAnalysisOutput {
        suggestions,
        complexity,
        functions,
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
        degraded_reason: Some(reason.to_owned()),
    }
}

/// Every finding, once per rule and line, most severe first, then in source order.
fn all_findings(
    input: &CodeAnalysisInput,
    facts: &CodeFacts,
    rules: &RuleThresholds,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let candidates = facts
        .findings
        .iter()
        .cloned()
        .chain(threshold_findings(facts, rules))
        .chain(secret_findings(&input.source_code));
    for finding in candidates {
        if !findings
            .iter()
            .any(|f| f.rule == finding.rule && f.line == finding.line)
        {
            findings.push(finding);
        }
    }
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
