//! What the check writes: a markdown table for a CI summary, one stderr line
//! per regression, and a JSON file in github-action-benchmark's
//! `customSmallerIsBetter` format.

use std::fmt::Write;

use serde::Serialize;

use super::compare::{Evaluation, InvariantRow, Row, Verdict};
use crate::fmt::{decimals, signed_percent};

fn verdict_cell(r: &Row) -> String {
    let tol = signed_percent(r.allowed());
    match r.verdict {
        Verdict::Ok if !r.base.gated => format!("ok (not gated: tolerance {tol})"),
        Verdict::Ok => format!("ok (tolerance {tol})"),
        Verdict::Improved => format!("improved (beyond {})", signed_percent(-r.allowed() / (1.0 + r.allowed()))),
        Verdict::Regressed => format!("**REGRESSED** (tolerance {tol})"),
        Verdict::Noisy => format!("out of range, not gated (too noisy: tolerance {tol})"),
        Verdict::Missing => "**MISSING**: not measured".into(),
        Verdict::NotRun => "not run here (model not built)".into(),
    }
}

/// The whole markdown report: a headline, then invariants, then figures.
pub fn markdown(eval: &Evaluation, context: &str) -> String {
    let failed: Vec<&Row> = eval.rows.iter().filter(|r| r.verdict.fails()).collect();
    let broken = eval.invariants.iter().filter(|i| !i.violations.is_empty()).count();
    let gated = eval.rows.iter().filter(|r| r.base.gated).count();
    let mut out = format!(
        "## Regression check: {}\n\n{context}\n\n{} figures compared ({gated} gated), {} regressed; {} invariant families, {} \
         violated.{}\n\n",
        if eval.passed() { "PASS" } else { "FAIL" },
        eval.rows.len(),
        failed.len(),
        eval.invariants.len(),
        broken,
        if eval.attempts > 1 {
            format!(" {} sweeps: the first, and reruns of what looked regressed; a figure counts at its best.", eval.attempts)
        } else {
            String::new()
        }
    );
    out.push_str("| figure | baseline | now | change | verdict |\n|---|---:|---:|---:|---|\n");
    for i in &eval.invariants {
        let (now, verdict) = invariant_cells(i);
        let _ = writeln!(out, "| invariant: {} | holds | {now} | | {verdict} |", i.family);
    }
    for r in &eval.rows {
        let now = r.now.map(decimals).unwrap_or_else(|| "—".into());
        let change = r.change().map(signed_percent).unwrap_or_default();
        let _ =
            writeln!(out, "| {} | {} | {now} | {change} | {} |", r.base.name, decimals(r.base.median), verdict_cell(r));
    }
    out
}

/// One `REGRESSED invariant ...` line per place that violates one.
pub fn invariant_lines(invariants: &[InvariantRow]) -> Vec<String> {
    let mut lines = Vec::new();
    for i in invariants {
        for (place, seen) in &i.violations {
            lines.push(format!("REGRESSED invariant \"{}\" at {place}: {seen}", i.family));
        }
    }
    lines
}

/// The table row of one invariant family: (what was seen, verdict).
pub fn invariant_cells(i: &InvariantRow) -> (String, String) {
    if i.violations.is_empty() {
        (format!("holds at {} places", i.checked), "ok".to_string())
    } else {
        let places: Vec<String> = i.violations.iter().map(|(p, v)| format!("{p}: {v}")).collect();
        (
            format!("violated at {} of {}: {}", i.violations.len(), i.checked, places.join("; ")).replace('|', "/"),
            "**REGRESSED**".to_string(),
        )
    }
}

/// One line per regressed figure or violated invariant place.
pub fn regression_lines(eval: &Evaluation) -> Vec<String> {
    let mut lines = invariant_lines(&eval.invariants);
    for r in eval.rows.iter().filter(|r| r.verdict.fails()) {
        lines.push(match (r.now, r.change()) {
            (Some(now), Some(change)) => format!(
                "REGRESSED {}: {} -> {} ({}, tolerance {}){}",
                r.base.name,
                decimals(r.base.median),
                decimals(now),
                signed_percent(change),
                signed_percent(r.allowed()),
                if r.values.len() > 1 {
                    format!(
                        " [every attempt: {}]",
                        r.values.iter().map(|v| decimals(*v)).collect::<Vec<_>>().join(", ")
                    )
                } else {
                    String::new()
                }
            ),
            _ => format!("REGRESSED {}: {} -> not measured (its run failed)", r.base.name, decimals(r.base.median)),
        });
    }
    lines
}

/// One github-action-benchmark entry.
#[derive(Serialize)]
pub struct Bench {
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub extra: String,
}

/// The entries as the JSON file github-action-benchmark reads.
pub fn bench_text(entries: &[Bench]) -> String {
    let mut text = serde_json::to_string_pretty(entries).expect("plain data serializes");
    text.push('\n');
    text
}

/// github-action-benchmark `customSmallerIsBetter`: every measured figure;
/// throughput ratios (bigger is better) are given inverted.
pub fn bench_json(eval: &Evaluation) -> String {
    let entries: Vec<Bench> = eval
        .rows
        .iter()
        .filter_map(|r| {
            let now = r.now?;
            let (name, value, base) = if r.base.kind.bigger_is_better() {
                (format!("{} (inverted: median model ÷ throughput)", r.base.name), 1.0 / now, 1.0 / r.base.median)
            } else {
                (r.base.name.clone(), now, r.base.median)
            };
            let tol = r.base.tolerance;
            Some(Bench {
                name,
                unit: r.base.unit.clone(),
                value,
                extra: format!("baseline {}, tolerance +{:.0}%, {:?}", decimals(base), tol * 100.0, r.verdict),
            })
        })
        .collect();
    bench_text(&entries)
}
