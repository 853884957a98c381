//! Judging head against base from interleaved pairs of sweeps (the A/B
//! check): per figure, the ratio head/base in each pair, their median and
//! sign-test interval ([`crate::stats::sign_interval`]), and a verdict.
//!
//! Why pairs: an absolute CPU figure holds only on the machine, and the
//! hour, that measured it. Base and head run alternately on the same CPUs
//! minutes apart, so whatever the machine does to one it does to the other,
//! and the ratio keeps only what the code changed.
//!
//! A figure regresses only when its whole interval lies beyond its
//! tolerance: with 5 pairs, when every pair says head is worse by more than
//! the tolerance. The figures are gated in the order the check trusts them
//! ([`tier`], listed in [`super`]'s doc): counted figures, which a change
//! moves and the machine hardly, then CPU, then throughput ratios.
//!
//! Open-loop figures (a low fixed rate) are dominated by waking an idle CPU
//! and are reported, never gated.

use std::collections::BTreeMap;

use super::figures::{self, Invariant, Kind};
use crate::records::sweep::Summary;
use crate::stats::{self, MedianInterval};

/// How much worse (a factor minus one) each kind of figure may get before
/// the lower end of its interval counts as a regression. Set from the
/// spread of no-change A/B checks (results/ab-checks/README.md).
pub fn tolerance(kind: Kind) -> f64 {
    match kind {
        Kind::BytesPerReq => 0.05,
        Kind::SyscallsPerReq => 0.10,
        Kind::WaitSyscallsPerReq => 0.50,
        Kind::CsPerReq => 0.25,
        Kind::ServerUserCpu => 0.50,
        Kind::ServerCpu | Kind::LoadgenCpu => 0.25,
        Kind::ThroughputRatio => 0.25,
    }
}

/// The trust order of a kind (1 counted, 2 CPU, 3 throughput).
pub fn tier(kind: Kind) -> u8 {
    match kind {
        Kind::BytesPerReq | Kind::SyscallsPerReq | Kind::WaitSyscallsPerReq | Kind::CsPerReq => 1,
        Kind::ServerCpu | Kind::ServerUserCpu | Kind::LoadgenCpu => 2,
        Kind::ThroughputRatio => 3,
    }
}

/// Whether a figure fails the check when it regresses: every kind under
/// full load; nothing of an open loop at a low rate, where waking an idle
/// CPU dominates every figure and moves with the machine, not the code.
pub fn gated(open_loop: bool) -> bool {
    !open_loop
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AbVerdict {
    Ok,
    Improved,
    Regressed,
    /// Beyond its tolerance, but not gated (open loop).
    Reported,
    /// Base measured it, head did not in enough pairs: fails.
    Missing,
    /// Only head has it (a new figure, or base cannot measure it).
    New,
    /// Too few pairs with both sides measured to judge.
    TooFew,
}

impl AbVerdict {
    pub fn fails(self) -> bool {
        matches!(self, AbVerdict::Regressed | AbVerdict::Missing)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AbRow {
    pub name: String,
    pub kind: Kind,
    pub model: Option<String>,
    pub gated: bool,
    pub tolerance: f64,
    /// Values per pair, None where that side did not measure it.
    pub base: Vec<Option<f64>>,
    pub head: Vec<Option<f64>>,
    /// The cost ratio per pair with both sides: head/base for a cost,
    /// base/head for a throughput ratio, so above 1 is always worse.
    pub ratios: Vec<f64>,
    pub interval: Option<MedianInterval>,
    pub verdict: AbVerdict,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AbEvaluation {
    pub rows: Vec<AbRow>,
    /// The head's invariants over its sweeps, with violations that the base
    /// shows too (the machine's, not the change's) moved to `inherited`.
    pub invariants: Vec<InvariantRow>,
    pub inherited: Vec<(String, String, String)>,
    pub pairs: usize,
}

impl AbEvaluation {
    pub fn passed(&self) -> bool {
        !self.rows.iter().any(|r| r.verdict.fails()) && self.invariants.iter().all(|i| i.violations.is_empty())
    }

    pub fn failures(&self) -> impl Iterator<Item = &AbRow> {
        self.rows.iter().filter(|r| r.verdict.fails())
    }
}

/// Is this scenario open loop in these sweeps (a run set `--rate`)?
fn open_loop(sweeps: &[&Summary], scenario: &str) -> bool {
    sweeps.iter().flat_map(|s| s.scenario(scenario)).filter_map(|r| r.result.as_ref()).any(|x| x.rate().is_some())
}

/// One figure's values, pair by pair, as they are collected.
struct Collected {
    kind: Kind,
    scenario: String,
    model: Option<String>,
    base: Vec<Option<f64>>,
    head: Vec<Option<f64>>,
}

/// Judge `pairs` of (base, head) sweeps.
pub fn evaluate(pairs: &[(Summary, Summary)]) -> AbEvaluation {
    let n = pairs.len();
    let mut table: BTreeMap<String, Collected> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, (base, head)) in pairs.iter().enumerate() {
        for (is_head, sweep) in [(false, base), (true, head)] {
            for f in figures::figures(sweep) {
                let c = table.entry(f.name.clone()).or_insert_with(|| {
                    order.push(f.name.clone());
                    let (base, head) = (vec![None; n], vec![None; n]);
                    Collected { kind: f.kind, scenario: f.scenario, model: f.model, base, head }
                });
                let side = if is_head { &mut c.head } else { &mut c.base };
                side[i] = Some(f.value);
            }
        }
    }
    let all: Vec<&Summary> = pairs.iter().flat_map(|(b, h)| [b, h]).collect();
    let mut rows: Vec<AbRow> = order
        .iter()
        .map(|name| {
            let c = table.remove(name).expect("every name has an entry");
            row(name.clone(), c.kind, c.model, gated(open_loop(&all, &c.scenario)), c.base, c.head)
        })
        .collect();
    rows.sort_by_key(|r| (!r.gated, tier(r.kind)));

    let (bases, heads): (Vec<Summary>, Vec<Summary>) = pairs.iter().cloned().unzip();
    let base_inv = invariant_rows(&bases);
    let mut invariants = invariant_rows(&heads);
    let mut inherited = Vec::new();
    for row in &mut invariants {
        let base_row = base_inv.iter().find(|b| b.family == row.family);
        row.violations.retain(|(place, seen)| {
            let in_base = base_row.is_some_and(|b| b.violations.iter().any(|(p, _)| p == place));
            if in_base && !row.strict {
                inherited.push((row.family.to_string(), place.clone(), seen.clone()));
            }
            !in_base || row.strict
        });
    }
    AbEvaluation { rows, invariants, inherited, pairs: n }
}

/// One figure's row: ratios, interval, verdict.
pub fn row(
    name: String,
    kind: Kind,
    model: Option<String>,
    gated: bool,
    base: Vec<Option<f64>>,
    head: Vec<Option<f64>>,
) -> AbRow {
    let floor = kind.floor();
    let ratios: Vec<f64> = base
        .iter()
        .zip(&head)
        .filter_map(|(b, h)| {
            let (b, h) = (b.as_ref()?.max(floor), h.as_ref()?.max(floor));
            Some(if kind.bigger_is_better() { b / h } else { h / b })
        })
        .collect();
    let tolerance = tolerance(kind);
    let interval = stats::sign_interval(&ratios);
    let measured = |v: &[Option<f64>]| v.iter().filter(|x| x.is_some()).count();
    let enough = stats::sign_min_pairs();
    let verdict = match interval {
        _ if measured(&base) == 0 => AbVerdict::New,
        _ if measured(&base) >= enough && measured(&head) < enough && measured(&head) < measured(&base) => {
            AbVerdict::Missing
        }
        None => AbVerdict::TooFew,
        Some(i) if i.low > 1.0 + tolerance && gated => AbVerdict::Regressed,
        Some(i) if i.low > 1.0 + tolerance => AbVerdict::Reported,
        Some(i) if i.high * (1.0 + tolerance) < 1.0 => AbVerdict::Improved,
        Some(_) => AbVerdict::Ok,
    };
    AbRow { name, kind, model, gated, tolerance, base, head, ratios, interval, verdict }
}

/// One invariant family over a side's sweeps: where it does not hold.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InvariantRow {
    pub family: &'static str,
    pub strict: bool,
    /// Places checked.
    pub checked: usize,
    /// (place, what was seen) for each place where it does not hold.
    pub violations: Vec<(String, String)>,
}

/// Every invariant family over one side's sweeps: a place violates a
/// non-strict invariant only if it did in every sweep that checked it (a
/// stall of the shared machine does not repeat); a strict one (no
/// mismatches), if it did in any.
pub fn invariant_rows(sweeps: &[Summary]) -> Vec<InvariantRow> {
    let all: Vec<Vec<Invariant>> = sweeps.iter().map(figures::invariants).collect();
    let mut invariants: Vec<InvariantRow> = Vec::new();
    for inv in all.iter().flatten() {
        if !invariants.iter().any(|r| r.family == inv.family) {
            invariants.push(InvariantRow { family: inv.family, strict: inv.strict, checked: 0, violations: vec![] });
        }
        let row = invariants.iter_mut().find(|r| r.family == inv.family).expect("just added");
        if row.violations.iter().any(|(p, _)| *p == inv.place) {
            continue;
        }
        let same_place: Vec<&Invariant> =
            all.iter().flatten().filter(|i| i.family == inv.family && i.place == inv.place).collect();
        if !std::ptr::eq(same_place[0], inv) {
            continue;
        }
        row.checked += 1;
        let violated: Vec<&String> = same_place.iter().filter_map(|i| i.violation.as_ref()).collect();
        let fails = if inv.strict { !violated.is_empty() } else { violated.len() == same_place.len() };
        if fails {
            row.violations.push((inv.place.clone(), violated.last().map(|v| v.to_string()).unwrap_or_default()));
        }
    }
    invariants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|x| Some(*x)).collect()
    }

    fn judge(kind: Kind, base: &[f64], head: &[f64]) -> AbVerdict {
        row("x".into(), kind, None, true, some(base), some(head)).verdict
    }

    #[test]
    fn a_cost_up_in_every_pair_beyond_tolerance_regresses() {
        let base = [10.0, 11.0, 9.5, 10.2, 10.8];
        let head: Vec<f64> = base.iter().map(|b| b * 1.4).collect();
        assert_eq!(judge(Kind::ServerCpu, &base, &head), AbVerdict::Regressed);
    }

    #[test]
    fn one_pair_within_tolerance_keeps_it_ok() {
        // Four pairs +30%, one +5%: the interval's lower end is 1.05.
        let base = [10.0; 5];
        let head = [13.0, 13.0, 10.5, 13.0, 13.0];
        assert_eq!(judge(Kind::ServerCpu, &base, &head), AbVerdict::Ok);
    }

    #[test]
    fn noise_around_one_passes_and_a_drop_is_an_improvement() {
        let base = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0];
        assert_eq!(judge(Kind::ServerCpu, &base, &[11.2, 9.0, 10.5, 9.7, 10.9, 8.9]), AbVerdict::Ok);
        assert_eq!(judge(Kind::ServerCpu, &base, &[7.0, 7.5, 6.9, 7.2, 7.1, 7.3]), AbVerdict::Improved);
    }

    #[test]
    fn throughput_is_judged_in_the_bad_direction() {
        let base = [1.0; 5];
        assert_eq!(judge(Kind::ThroughputRatio, &base, &[0.7, 0.72, 0.69, 0.75, 0.71]), AbVerdict::Regressed);
        assert_eq!(judge(Kind::ThroughputRatio, &base, &[1.4, 1.5, 1.45, 1.6, 1.42]), AbVerdict::Improved);
    }

    #[test]
    fn values_below_the_floor_do_not_regress() {
        // An event loop at 0.002 cs/req going to 0.02 is still "almost never".
        assert_eq!(judge(Kind::CsPerReq, &[0.002; 5], &[0.02; 5]), AbVerdict::Ok);
        assert_eq!(judge(Kind::CsPerReq, &[0.002; 5], &[0.5; 5]), AbVerdict::Regressed);
    }

    #[test]
    fn one_more_system_call_is_caught_even_for_libevent() {
        // Five work calls per ECHO become six: +20%, beyond the 10%.
        assert_eq!(judge(Kind::SyscallsPerReq, &[5.01; 5], &[6.01, 6.0, 6.02, 6.01, 6.0]), AbVerdict::Regressed);
        assert_eq!(judge(Kind::SyscallsPerReq, &[2.0; 5], &[3.0; 5]), AbVerdict::Regressed);
        // Waits: one epoll_wait shared by 2 or by 20 sockets is timing.
        assert_eq!(judge(Kind::WaitSyscallsPerReq, &[0.05; 5], &[0.6; 5]), AbVerdict::Ok);
        assert_eq!(judge(Kind::WaitSyscallsPerReq, &[0.2; 5], &[2.0; 5]), AbVerdict::Regressed);
    }

    #[test]
    fn missing_new_and_too_few() {
        let judge = |base, head| row("x".into(), Kind::SyscallsPerReq, None, true, base, head).verdict;
        assert_eq!(judge(some(&[2.0; 5]), vec![None; 5]), AbVerdict::Missing);
        assert_eq!(judge(vec![None; 5], some(&[2.0; 5])), AbVerdict::New);
        assert_eq!(judge(some(&[2.0; 4]), some(&[3.0; 4])), AbVerdict::TooFew);
    }

    #[test]
    fn ungated_figures_are_reported_never_failed() {
        let r = row("x".into(), Kind::ServerCpu, None, false, some(&[10.0; 5]), some(&[20.0; 5]));
        assert_eq!(r.verdict, AbVerdict::Reported);
        assert!(!r.verdict.fails());
    }
}
