//! Judging one or more sweeps (a first one, and reruns of what looked
//! regressed) against a baseline: one [`Row`] per baseline figure and one
//! [`InvariantRow`] per invariant family.
//!
//! A figure counts at its best over the sweeps that measured it: a
//! regression must show in every attempt, so a one-off stall of the shared
//! machine does not fail the pipeline while a slower model, which is slower
//! every time, does. A strict invariant (no mismatches) is the opposite: one
//! violation anywhere fails.

use std::collections::BTreeSet;

use super::baseline::{Baseline, BaselineFigure};
use super::figures::{self, GatedFigure, Invariant};
use crate::records::sweep::Summary;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Better than the baseline by more than the tolerance: fine, but the
    /// baseline may want refreshing.
    Improved,
    Regressed,
    /// Out of tolerance, but the figure is not gated (too noisy).
    Noisy,
    /// Not measured although its model ran: fails.
    Missing,
    /// Its model was not run at all (e.g. libevent not built here).
    NotRun,
}

impl Verdict {
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::Missing)
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    pub base: BaselineFigure,
    /// The best value over the attempts that measured it.
    pub now: Option<f64>,
    /// All values measured, in attempt order.
    pub values: Vec<f64>,
    pub verdict: Verdict,
}

impl Row {
    /// now / baseline − 1.
    pub fn change(&self) -> Option<f64> {
        self.now.map(|n| n / self.base.median - 1.0)
    }

    /// The change that the tolerance allows, in the bad direction, as a
    /// signed fraction: +0.40 for a cost, −0.29 for a ratio (1/1.4 − 1).
    pub fn allowed(&self) -> f64 {
        if self.base.kind.bigger_is_better() {
            1.0 / (1.0 + self.base.tolerance) - 1.0
        } else {
            self.base.tolerance
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InvariantRow {
    pub family: &'static str,
    pub strict: bool,
    /// Places checked.
    pub checked: usize,
    /// (place, what was seen) for each place where it does not hold.
    pub violations: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Evaluation {
    pub rows: Vec<Row>,
    pub invariants: Vec<InvariantRow>,
    pub attempts: usize,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| !r.verdict.fails()) && self.invariants.iter().all(|i| i.violations.is_empty())
    }

    /// The (scenario, level) pairs a rerun should cover: where a figure
    /// regressed or went missing, or a non-strict invariant did not hold.
    pub fn suspects(&self) -> BTreeSet<(String, u64)> {
        let mut out: BTreeSet<(String, u64)> =
            self.rows.iter().filter(|r| r.verdict.fails()).map(|r| (r.base.scenario.clone(), r.base.level)).collect();
        for i in self.invariants.iter().filter(|i| !i.strict) {
            for (place, _) in &i.violations {
                if let Some(key) = place_key(place) {
                    out.insert(key);
                }
            }
        }
        out
    }
}

/// `echo-saturate mio-multi c1000` → (`echo-saturate`, 1000).
fn place_key(place: &str) -> Option<(String, u64)> {
    let mut words = place.split_whitespace();
    let scenario = words.next()?.to_string();
    let level = words.last()?.strip_prefix('c')?.parse().ok()?;
    Some((scenario, level))
}

/// How `now` compares with the baseline figure.
pub fn judge(base: &BaselineFigure, now: f64) -> Verdict {
    let (n, b) = (now.max(base.floor), base.median.max(base.floor));
    let worse = if base.kind.bigger_is_better() { b / n } else { n / b };
    let limit = 1.0 + base.tolerance;
    if worse > limit * (1.0 + 1e-9) {
        if base.gated {
            Verdict::Regressed
        } else {
            Verdict::Noisy
        }
    } else if worse * limit < 1.0 {
        Verdict::Improved
    } else {
        Verdict::Ok
    }
}

/// Judge `attempts` (the first sweep, then reruns) against `baseline`.
pub fn evaluate(baseline: &Baseline, attempts: &[Summary]) -> Evaluation {
    let measured: Vec<Vec<GatedFigure>> = attempts.iter().map(figures::figures).collect();
    let ran = |model: &str| attempts.iter().any(|s| s.models.iter().any(|m| m == model));
    let rows = baseline
        .figures
        .iter()
        .map(|base| {
            let values: Vec<f64> =
                measured.iter().filter_map(|figs| figs.iter().find(|f| f.name == base.name)).map(|f| f.value).collect();
            let best = if base.kind.bigger_is_better() {
                values.iter().copied().reduce(f64::max)
            } else {
                values.iter().copied().reduce(f64::min)
            };
            let verdict = match best {
                Some(v) => judge(base, v),
                None if base.model.as_deref().is_some_and(|m| !ran(m)) => Verdict::NotRun,
                None => Verdict::Missing,
            };
            Row { base: base.clone(), now: best, values, verdict }
        })
        .collect();

    Evaluation { rows, invariants: invariant_rows(attempts), attempts: attempts.len() }
}

/// Every invariant family over `attempts`: a place violates a non-strict
/// invariant only if it did in every attempt that checked it; a strict one,
/// if it did in any.
pub fn invariant_rows(attempts: &[Summary]) -> Vec<InvariantRow> {
    let all: Vec<Vec<Invariant>> = attempts.iter().map(figures::invariants).collect();
    let mut invariants: Vec<InvariantRow> = Vec::new();
    for inv in all.iter().flatten() {
        let row = match invariants.iter_mut().position(|r| r.family == inv.family) {
            Some(i) => &mut invariants[i],
            None => {
                invariants.push(InvariantRow {
                    family: inv.family,
                    strict: inv.strict,
                    checked: 0,
                    violations: Vec::new(),
                });
                invariants.last_mut().expect("just pushed")
            }
        };
        if row.violations.iter().any(|(p, _)| *p == inv.place) {
            continue;
        }
        let same_place: Vec<&Invariant> =
            all.iter().flatten().filter(|i| i.family == inv.family && i.place == inv.place).collect();
        if std::ptr::eq(same_place[0], inv) {
            row.checked += 1;
        } else {
            continue;
        }
        let violated: Vec<&String> = same_place.iter().filter_map(|i| i.violation.as_ref()).collect();
        let fails = if inv.strict { !violated.is_empty() } else { violated.len() == same_place.len() };
        if fails {
            row.violations.push((inv.place.clone(), violated.last().map(|v| v.to_string()).unwrap_or_default()));
        }
    }
    invariants
}
