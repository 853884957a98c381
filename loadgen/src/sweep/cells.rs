//! Cells and their spread: one model at one connection level in one
//! scenario, over every repeat of the sweep, and the rule that says when two
//! models differ.
//!
//! `loadgen sweep --repeat N` runs every cell N times, in interleaved passes
//! (every cell once, then every cell again, ...), so that a drift of the
//! machine during the sweep spreads over all models alike. A figure of a
//! cell is then three numbers and a count, a [`Spread`]: the median of the
//! runs that succeeded, the smallest and the largest value, and how many
//! runs measured it.
//!
//! The project's rule for claiming a difference ([`compare`]): model A is
//! ahead of model B only where their min–max ranges do not overlap, that
//! is, where the difference is larger than the spread of repeated,
//! interleaved runs. Otherwise it is a tie. Two more cases are ties by
//! rule: a cell of fewer than two runs has no spread to judge by
//! (*unjudged*), and on throughput a cell whose load generator was the limit
//! (`loadgen_saturated`) can neither win nor lose: its figure is the load
//! generator's as much as the server's.
//!
//! The figures are found generically ([`Cell::figures`]): every number in
//! a run's `RunResult` is one, named by its JSON path (`latency.p99`,
//! `server.cpu_us_per_req`), so a figure added to `RunResult` gets its
//! median and spread in `summary.json` and `summary.csv` with no change here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::summary::{Record, RunStatus, Summary};
use crate::fmt::{num, thousands, us_f};

/// One figure over the runs of a cell that measured it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that measured it.
    pub n: usize,
}

impl Spread {
    /// The median, min and max of the finite values; `None` if there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[n - 1], n })
    }

    /// Whether the two min–max ranges share a value.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// How the runs of a cell ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every run succeeded.
    Ok,
    /// Some runs succeeded, `failed` did not: the figures are the others'.
    Partly { failed: usize },
    /// No run succeeded: no figures.
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partly { .. } => "partly failed",
            Outcome::Failed => "failed",
        }
    }
}

/// Every run of one model at one level in one scenario (at one offered
/// rate, in a ladder's scenario: a *rung*).
#[derive(Clone, Debug)]
pub struct Cell<'a> {
    pub scenario: &'a str,
    pub model: &'a str,
    pub level: u64,
    /// A ladder's rung: the offered rate (`knee`); `None` elsewhere.
    pub offered_rps: Option<f64>,
    /// In the order they ran (pass 1 first).
    pub runs: Vec<&'a Record>,
}

impl<'a> Cell<'a> {
    /// The runs that succeeded with a result: the only ones with figures.
    pub fn ok_runs(&self) -> impl Iterator<Item = &'a Record> + '_ {
        self.runs.iter().copied().filter(|r| r.status == RunStatus::Ok && r.result.is_some())
    }

    pub fn outcome(&self) -> Outcome {
        let ok = self.ok_runs().count();
        match (ok, self.runs.len() - ok) {
            (0, _) => Outcome::Failed,
            (_, 0) => Outcome::Ok,
            (_, failed) => Outcome::Partly { failed },
        }
    }

    /// Runs that succeeded while the load generator was the limit.
    pub fn loadgen_saturated_runs(&self) -> usize {
        self.ok_runs().filter(|r| r.loadgen_saturated).count()
    }

    /// Any successful run was loadgen-saturated: the cell's throughput is then
    /// (at least partly) the load generator's.
    pub fn loadgen_saturated(&self) -> bool {
        self.loadgen_saturated_runs() > 0
    }

    /// (pass, why) for every run that failed.
    pub fn failures(&self) -> Vec<(u32, &'a str)> {
        self.runs
            .iter()
            .filter(|r| r.status == RunStatus::Failed)
            .map(|r| (r.repeat, r.failure.as_deref().unwrap_or("failed")))
            .collect()
    }

    /// The failures in a line: each reason once, with the passes that
    /// failed for it (`passes 1, 3: starved: ...`); the bare reason when the
    /// cell has a single run.
    pub fn failure_text(&self) -> String {
        let mut reasons: Vec<(&str, Vec<u32>)> = Vec::new();
        for (pass, why) in self.failures() {
            match reasons.iter_mut().find(|(w, _)| *w == why) {
                Some((_, passes)) => passes.push(pass),
                None => reasons.push((why, vec![pass])),
            }
        }
        let said = |(why, passes): &(&str, Vec<u32>)| match (self.runs.len(), passes.as_slice()) {
            (1, _) => why.to_string(),
            (_, [one]) => format!("pass {one}: {why}"),
            (_, many) => {
                let list: Vec<String> = many.iter().map(u32::to_string).collect();
                format!("passes {}: {why}", list.join(", "))
            }
        };
        reasons.iter().map(said).collect::<Vec<_>>().join("; ")
    }

    /// One figure over the successful runs.
    pub fn spread(&self, metric: impl Fn(&Record) -> Option<f64>) -> Option<Spread> {
        let values: Vec<f64> = self.ok_runs().filter_map(metric).collect();
        Spread::of(&values)
    }

    /// Every number of the successful runs' results, by JSON path, each
    /// with its spread.
    pub fn figures(&self) -> BTreeMap<String, Spread> {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for record in self.ok_runs() {
            let Ok(json) = serde_json::to_value(record.result.as_ref()) else { continue };
            numbers("", &json, &mut |name, v| values.entry(name).or_default().push(v));
        }
        values.into_iter().filter_map(|(name, v)| Spread::of(&v).map(|s| (name, s))).collect()
    }
}

/// Parts of a `RunResult` that are not measurements: what was run and
/// where (in `runs.csv` and each run's JSON), and per-second samples.
const NOT_FIGURES: [&str; 4] = ["args", "env", "timeseries", "notes"];

/// Call `emit(path, value)` for every number under `value`.
fn numbers(prefix: &str, value: &Value, emit: &mut dyn FnMut(String, f64)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && NOT_FIGURES.contains(&k.as_str()) {
                    continue;
                }
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                numbers(&path, v, emit);
            }
        }
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                emit(prefix.to_string(), v);
            }
        }
        _ => {}
    }
}

impl Summary {
    /// Every run of `model` at `level` in `scenario`, if any (a ladder's
    /// rungs are cells of their own: [`Summary::rungs`]).
    pub fn cell<'a>(&'a self, scenario: &'a str, model: &'a str, level: u64) -> Option<Cell<'a>> {
        let runs: Vec<&Record> = self
            .scenario(scenario)
            .filter(|r| r.model == model && r.level == level && r.offered_rps.is_none())
            .collect();
        (!runs.is_empty()).then_some(Cell { scenario, model, level, offered_rps: None, runs })
    }

    /// A ladder's rungs for `model` at `level`, one cell per offered rate,
    /// ascending.
    pub fn rungs<'a>(&'a self, scenario: &'a str, model: &'a str, level: u64) -> Vec<Cell<'a>> {
        let mut rates: Vec<f64> = self
            .scenario(scenario)
            .filter(|r| r.model == model && r.level == level)
            .filter_map(|r| r.offered_rps)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        rates
            .into_iter()
            .map(|rate| {
                let runs = self
                    .scenario(scenario)
                    .filter(|r| r.model == model && r.level == level && r.offered_rps == Some(rate))
                    .collect();
                Cell { scenario, model, level, offered_rps: Some(rate), runs }
            })
            .collect()
    }

    /// The cells of a scenario: models in sweep order, levels ascending
    /// (and a ladder's rates ascending).
    pub fn cells<'a>(&'a self, scenario: &'a str) -> Vec<Cell<'a>> {
        let mut out = Vec::new();
        for model in self.models.iter().filter(|m| self.models_in(scenario).contains(m)) {
            for level in self.levels(scenario) {
                out.extend(self.cell(scenario, model, level));
                out.extend(self.rungs(scenario, model, level));
            }
        }
        out
    }
}

/// Which way a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One side of a comparison against another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Better, by more than the spread.
    Ahead,
    /// Worse, by more than the spread.
    Behind,
    /// The ranges overlap, or a loadgen-saturated throughput is involved.
    Tie,
    /// A side has fewer than two runs: no spread to judge by.
    Unjudged,
}

/// One model's figure in a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Contender {
    pub model: String,
    pub spread: Spread,
    /// The load generator was the limit in one of its runs: on throughput it
    /// can neither win nor lose.
    pub loadgen_saturated: bool,
}

/// What a figure is, for comparing: which way is better, and whether a
/// loadgen-saturated run ties whatever it meets (throughput).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub better: Better,
    pub saturated_ties: bool,
}

impl Rule {
    pub const THROUGHPUT: Rule = Rule { better: Better::Higher, saturated_ties: true };
    pub const COST: Rule = Rule { better: Better::Lower, saturated_ties: false };
}

/// A figure of a run, read from its record: `None` where the run did not
/// measure it.
pub type Metric = fn(&Record) -> Option<f64>;

/// A figure the comparison tables set the models side by side on.
pub struct Compared {
    pub name: &'static str,
    pub metric: Metric,
    pub fmt: fn(f64) -> String,
    pub rule: Rule,
}

pub const COMPARED: [Compared; 4] = [
    Compared { name: "req/s", metric: Record::throughput, fmt: thousands, rule: Rule::THROUGHPUT },
    Compared { name: "p99", metric: |r| Some(r.result.as_ref()?.latency.p99 as f64), fmt: us_f, rule: Rule::COST },
    Compared { name: "CPU µs/req", metric: Record::server_cpu, fmt: num, rule: Rule::COST },
    Compared { name: "cs/req", metric: Record::switches, fmt: num, rule: Rule::COST },
];

/// `a` against `b` under the project's rule (see the module's doc).
pub fn compare(a: &Contender, b: &Contender, rule: Rule) -> Order {
    if rule.saturated_ties && (a.loadgen_saturated || b.loadgen_saturated) {
        return Order::Tie;
    }
    if a.spread.n < 2 || b.spread.n < 2 {
        return Order::Unjudged;
    }
    if a.spread.overlaps(&b.spread) {
        return Order::Tie;
    }
    let a_higher = a.spread.median > b.spread.median;
    if a_higher == (rule.better == Better::Higher) {
        Order::Ahead
    } else {
        Order::Behind
    }
}

/// Who leads on one figure among several models.
#[derive(Clone, Debug, PartialEq)]
pub enum Lead {
    /// Ahead of every other by more than the spread.
    One(String),
    /// No one is behind any of these by more than the spread.
    Tie(Vec<String>),
    /// Every contender has fewer than two runs: no spread to judge by.
    Unjudged,
    /// Fewer than two contenders.
    Alone,
}

/// The models that no other is ahead of: one, or a tie among several.
pub fn lead(contenders: &[Contender], rule: Rule) -> Lead {
    if contenders.len() < 2 {
        return Lead::Alone;
    }
    if contenders.iter().all(|c| c.spread.n < 2) {
        return Lead::Unjudged;
    }
    let unbeaten: Vec<String> = contenders
        .iter()
        .filter(|c| !contenders.iter().any(|o| compare(o, c, rule) == Order::Ahead))
        .map(|c| c.model.clone())
        .collect();
    match unbeaten.as_slice() {
        [one] => Lead::One(one.clone()),
        _ => Lead::Tie(unbeaten),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn spread(values: &[f64]) -> Spread {
        Spread::of(values).unwrap()
    }

    fn contender(model: &str, values: &[f64], bound: bool) -> Contender {
        Contender { model: model.into(), spread: spread(values), loadgen_saturated: bound }
    }

    #[test]
    fn spread_is_median_min_max_and_count() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Spread { median: 2.0, min: 1.0, max: 3.0, n: 3 });
        assert_eq!(spread(&[4.0, 1.0]), Spread { median: 2.5, min: 1.0, max: 4.0, n: 2 });
        assert_eq!(Spread::of(&[f64::NAN]), None);
        assert!(spread(&[1.0, 2.0]).overlaps(&spread(&[2.0, 3.0])));
        assert!(!spread(&[1.0, 2.0]).overlaps(&spread(&[2.1, 3.0])));
    }

    #[test]
    fn a_difference_within_the_spread_is_a_tie() {
        let a = contender("a", &[100.0, 110.0, 120.0], false);
        let b = contender("b", &[115.0, 130.0, 140.0], false);
        let c = contender("c", &[150.0, 160.0, 170.0], false);
        assert_eq!(compare(&a, &b, Rule::THROUGHPUT), Order::Tie, "ranges overlap at 115–120");
        assert_eq!(compare(&c, &a, Rule::THROUGHPUT), Order::Ahead);
        assert_eq!(compare(&a, &c, Rule::THROUGHPUT), Order::Behind);
        assert_eq!(compare(&a, &c, Rule::COST), Order::Ahead, "a lower cost is ahead");
        let one = contender("one", &[500.0], false);
        assert_eq!(compare(&one, &a, Rule::THROUGHPUT), Order::Unjudged);
    }

    #[test]
    fn a_loadgen_saturated_run_neither_wins_nor_loses_on_throughput() {
        let slow = contender("slow", &[10.0, 11.0, 12.0], false);
        let bound = contender("bound", &[100.0, 101.0, 102.0], true);
        assert_eq!(compare(&bound, &slow, Rule::THROUGHPUT), Order::Tie);
        assert_eq!(compare(&slow, &bound, Rule::THROUGHPUT), Order::Tie);
        assert_eq!(compare(&bound, &slow, Rule::COST), Order::Behind, "only throughput is excused");
    }

    #[test]
    fn lead_names_one_model_or_the_tied_ones() {
        let a = contender("a", &[100.0, 110.0, 120.0], false);
        let b = contender("b", &[115.0, 130.0, 140.0], false);
        let c = contender("c", &[150.0, 160.0, 170.0], false);
        assert_eq!(lead(&[a.clone(), b.clone(), c.clone()], Rule::THROUGHPUT), Lead::One("c".into()));
        assert_eq!(lead(&[a.clone(), b.clone()], Rule::THROUGHPUT), Lead::Tie(vec!["a".into(), "b".into()]));
        assert_eq!(lead(&[a.clone(), b.clone(), c.clone()], Rule::COST), Lead::Tie(vec!["a".into(), "b".into()]));
        let bound = Contender { loadgen_saturated: true, ..c.clone() };
        assert_eq!(
            lead(&[a.clone(), bound], Rule::THROUGHPUT),
            Lead::Tie(vec!["a".into(), "c".into()]),
            "c is far ahead, but loadgen-saturated"
        );
        let (one_a, one_b) = (contender("a", &[1.0], false), contender("b", &[9.0], false));
        assert_eq!(lead(&[one_a.clone(), one_b.clone()], Rule::THROUGHPUT), Lead::Unjudged);
        let one_bound = Contender { loadgen_saturated: true, ..one_b };
        assert_eq!(lead(&[one_a.clone(), one_bound], Rule::THROUGHPUT), Lead::Unjudged, "single runs: not judged");
        assert_eq!(lead(&[one_a], Rule::THROUGHPUT), Lead::Alone);
    }

    #[test]
    fn cells_gather_the_repeats_and_every_number_gets_a_spread() {
        let mut summary = testdata::summary_repeated(3);
        let cell = summary.cell("echo-saturate", "tokio", 500).unwrap();
        assert_eq!(cell.runs.iter().map(|r| r.repeat).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(cell.outcome(), Outcome::Ok);
        let figures = cell.figures();
        let rps = figures["throughput_rps"];
        assert_eq!((rps.n, rps.min < rps.median, rps.median < rps.max), (3, true, true), "{rps:?}");
        assert!(figures.contains_key("server.cpu_us_per_req") && figures.contains_key("latency.p99"));
        assert!(!figures.keys().any(|k| k.starts_with("env") || k.starts_with("timeseries")), "{figures:?}");
        // Every number is a figure, though nothing here names it.
        for r in summary.records.iter_mut().filter(|r| r.model == "tokio") {
            r.result.as_mut().unwrap().counts.mismatches_total = 7;
        }
        let cell = summary.cell("echo-saturate", "tokio", 500).unwrap();
        assert_eq!(cell.figures()["counts.mismatches_total"].median, 7.0);

        let pool = summary.cell("echo-saturate", "pool", 1000).unwrap();
        assert_eq!(pool.outcome(), Outcome::Failed);
        assert_eq!(pool.failures().len(), 3);
        assert_eq!(pool.failure_text(), "passes 1, 2, 3: 800 of 1000 connections never served");
        assert!(pool.figures().is_empty());
        summary.records.iter_mut().find(|r| r.model == "tokio" && r.level == 200 && r.repeat == 2).unwrap().status =
            RunStatus::Failed;
        let partly = summary.cell("echo-saturate", "tokio", 200).unwrap();
        assert_eq!(partly.outcome(), Outcome::Partly { failed: 1 });
        assert_eq!(partly.failure_text(), "pass 2: failed");
        assert_eq!(partly.figures()["throughput_rps"].n, 2);
    }
}
