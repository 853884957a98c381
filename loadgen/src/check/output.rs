//! What the check writes: the markdown table for a CI summary (gated
//! figures first, in the order the check trusts them), one stderr line per
//! regression, and github-action-benchmark `customSmallerIsBetter` JSON of
//! the head's medians.

use std::fmt::Write;

use serde::Serialize;

use super::ab::{AbEvaluation, AbRow, AbVerdict, InvariantRow};

use crate::fmt::{decimals, signed_percent};

fn median(v: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = v.iter().flatten().copied().collect();
    crate::stats::median(&v)
}

fn verdict_cell(r: &AbRow) -> String {
    let tol = signed_percent(r.tolerance);
    match r.verdict {
        AbVerdict::Ok if !r.gated => format!("ok (open loop: reported, not gated; tolerance {tol})"),
        AbVerdict::Ok => format!("ok (tolerance {tol})"),
        AbVerdict::Improved => "improved".into(),
        AbVerdict::Regressed => format!("**REGRESSED** (whole interval beyond {tol})"),
        AbVerdict::Reported => format!("beyond {tol}, open loop: reported, not gated"),
        AbVerdict::Missing => "**MISSING** in the head".into(),
        AbVerdict::New => "new: the base does not measure it".into(),
        AbVerdict::TooFew => "too few pairs measured it".into(),
    }
}

fn ratio_cell(r: &AbRow) -> String {
    let Some(i) = r.interval else { return "—".into() };
    let change = |ratio: f64| signed_percent(ratio - 1.0);
    format!("{} [{} – {}]", change(i.median), change(i.low), change(i.high))
}

/// The whole report: headline, invariants, then every figure.
pub fn markdown(eval: &AbEvaluation, context: &str) -> String {
    let failed = eval.failures().count();
    let gated = eval.rows.iter().filter(|r| r.gated).count();
    let broken = eval.invariants.iter().filter(|i| !i.violations.is_empty()).count();
    let confidence = eval.rows.iter().find_map(|r| r.interval).map(|i| i.confidence).unwrap_or(f64::NAN);
    let mut out = format!(
        "## Regression check (A/B): {}\n\n{context}\n\n{} figures compared ({gated} gated), {failed} regressed; {} \
         invariant families, {broken} violated. Change = head ÷ base − 1 in the bad direction (a cost up, a \
         throughput down): the median over the pairs, and its sign-test interval ({:.1}% two-sided). A figure \
         regresses only when its whole interval lies beyond its tolerance.\n\n",
        if eval.passed() { "PASS" } else { "FAIL" },
        eval.rows.len(),
        eval.invariants.len(),
        confidence * 100.0,
    );
    out.push_str(
        "| figure | base (median) | head (median) | change [interval] | verdict |\n|---|---:|---:|---:|---|\n",
    );
    for i in &eval.invariants {
        let (now, verdict) = invariant_cells(i);
        let _ = writeln!(out, "| invariant: {} | | {now} | | {verdict} |", i.family);
    }
    for (family, place, seen) in &eval.inherited {
        let _ = writeln!(
            out,
            "| invariant: {family} | violated too | {place}: {} | | not the change's: the base violates it as well |",
            seen.replace('|', "/")
        );
    }
    let cell = |v: &[Option<f64>]| median(v).map(decimals).unwrap_or_else(|| "—".into());
    for r in &eval.rows {
        let (base, head, change) = (cell(&r.base), cell(&r.head), ratio_cell(r));
        let _ = writeln!(out, "| {} | {base} | {head} | {change} | {} |", r.name, verdict_cell(r));
    }
    out
}

/// One `REGRESSED invariant ...` line per place that violates one.
fn invariant_lines(invariants: &[InvariantRow]) -> Vec<String> {
    let mut lines = Vec::new();
    for i in invariants {
        for (place, seen) in &i.violations {
            lines.push(format!("REGRESSED invariant \"{}\" at {place}: {seen}", i.family));
        }
    }
    lines
}

/// The table row of one invariant family: (what was seen, verdict).
fn invariant_cells(i: &InvariantRow) -> (String, String) {
    if i.violations.is_empty() {
        return (format!("holds at {} places", i.checked), "ok".to_string());
    }
    let places: Vec<String> = i.violations.iter().map(|(p, v)| format!("{p}: {v}")).collect();
    let seen = format!("violated at {} of {}: {}", i.violations.len(), i.checked, places.join("; "));
    (seen.replace('|', "/"), "**REGRESSED**".to_string())
}

/// One line per regressed figure or violated invariant place.
pub fn regression_lines(eval: &AbEvaluation) -> Vec<String> {
    let mut lines = invariant_lines(&eval.invariants);
    for r in eval.failures() {
        let pairs =
            |v: &[Option<f64>]| v.iter().map(|x| x.map(decimals).unwrap_or_else(|| "—".into())).collect::<Vec<_>>();
        let what = match (r.verdict, r.interval) {
            (AbVerdict::Missing, _) => "measured by the base, not by the head".to_string(),
            (_, Some(_)) => format!("change {}", ratio_cell(r)),
            _ => String::new(),
        };
        let (tolerance, base, head) = (signed_percent(r.tolerance), pairs(&r.base), pairs(&r.head));
        lines.push(format!(
            "REGRESSED {}: {what} (tolerance {tolerance}) [base per pair: {}; head per pair: {}]",
            r.name,
            base.join(", "),
            head.join(", ")
        ));
    }
    lines
}

/// One github-action-benchmark entry.
#[derive(Serialize)]
struct Bench {
    name: String,
    unit: String,
    value: f64,
    extra: String,
}

/// github-action-benchmark `customSmallerIsBetter`: the head's median of
/// every figure (throughput ratios inverted).
pub fn bench_json(eval: &AbEvaluation) -> String {
    let entries = eval
        .rows
        .iter()
        .filter_map(|r| {
            let now = median(&r.head)?;
            let (name, value) = if r.kind.bigger_is_better() {
                (format!("{} (inverted: median model ÷ throughput)", r.name), 1.0 / now)
            } else {
                (r.name.clone(), now)
            };
            Some(Bench {
                name,
                unit: r.kind.unit().into(),
                value,
                extra: format!("{}; {:?}", ratio_cell(r), r.verdict),
            })
        })
        .collect::<Vec<Bench>>();
    let mut text = serde_json::to_string_pretty(&entries).expect("plain data serializes");
    text.push('\n');
    text
}
