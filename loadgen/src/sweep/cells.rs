//! Cells and their spread: one model at one connection level in one
//! scenario, over every repeat of the sweep, and the rule that says when two
//! models differ.
//!
//! `loadgen sweep --repeat N` runs every cell N times, in interleaved passes
//! ([`crate::sweep`]). A figure of a cell is then three numbers and a count,
//! a [`Spread`]: the median of the runs that succeeded, the smallest and
//! the largest value, and how many runs measured it.
//!
//! The project's rule for claiming a difference ([`judge`]): model A is
//! ahead of model B only where the ratios A/B *of the same passes* say so.
//! Both ran in each pass, so what the pass did to the machine cancels in
//! the ratio; a paired t-test on the logarithms of the ratios
//! ([`stats::paired_log_t`]) gives each comparison a p-value, and Holm's
//! correction ([`correct`]) over every comparison of a table on one figure
//! (every pair of models at every level) keeps the chance of *any* false
//! "ahead" in that table at most [`ALPHA`] (5%), under the test's
//! assumptions (log ratios normal and independent from pass to pass).
//! Otherwise it is a tie. Fewer passes mean fewer verdicts, never more
//! false ones: with 3 passes only large, consistent differences pass the
//! correction. Two more cases are ties by rule: a pair measured together
//! in fewer than [`stats::MIN_PAIRS`] passes is not tested (*unjudged*),
//! and on throughput a cell whose load generator was the limit
//! (`loadgen_saturated`) can neither win nor lose: its figure is the load
//! generator's as much as the server's.
//!
//! Why not the min–max ranges (the rule before this one): two overlapping
//! ranges of 3 runs each still clear each other by chance about one time in
//! ten, a table makes hundreds of comparisons, and a pass that ran slower
//! for every model (pass 1 costs some scenarios 9–15% more CPU) widens
//! unpaired ranges without touching the ratios.
//!
//! The figures are found generically ([`Cell::figures`]): every number in
//! a run's `RunResult` is one, named by its JSON path (`latency.p99`,
//! `server.cpu_us_per_req`), so a figure added to `RunResult` gets its
//! median and spread in `summary.json` and `summary.csv` with no change here.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fmt::{num, thousands, us_f};
use crate::records::run::RunResult;
use crate::records::sweep::{Record, RunStatus, Summary};
use crate::stats::{self, PairedTest, Spread};

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

/// A failed run that is its model's designed behaviour, not a fault: said
/// "as designed", never "FAILED", in the terminal, the page and the
/// sweep's last line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsDesigned {
    /// What happened: "starved".
    pub what: &'static str,
    /// Why that is the design: "64 workers, 200 connections".
    pub why: String,
}

/// pool's threads besides its workers: the main thread, the acceptor and
/// the admin thread (servers/src/models/pool.rs; 67 threads for the default
/// 64 workers).
const POOL_OTHER_THREADS: u64 = 3;

/// The reasons a starved run gives (`loadgen run`'s and the sweep's own),
/// and the unsent requests that follow from them in an open loop.
const STARVED: [&str; 4] = [
    "connections had no answer to their first request",
    "connections never got an answer",
    "starved: ",
    "because their connection still waited for an earlier answer",
];

impl AsDesigned {
    /// "starved, as designed: 64 workers, 200 connections".
    pub fn text(&self) -> String {
        format!("{}, as designed: {}", self.what, self.why)
    }

    /// Whether `r` failed as its model is designed to. The one known case:
    /// pool past its workers. Each worker holds one connection until it
    /// closes, so connection `workers + 1` is accepted and never answered
    /// (servers/src/models/pool.rs): every connection established, no
    /// error, mismatch, timeout or reset, the unanswered ones the only
    /// reasons given, and the connections served are the pool's workers
    /// (the sweep starts pool with its default size; the run's own count
    /// says what it was). Anything else stays a failure.
    pub fn of(r: &Record) -> Option<AsDesigned> {
        let failure = r.failure.as_deref().filter(|_| r.status == RunStatus::Failed)?;
        Self::of_failed(&r.model, failure, r.result.as_ref()?)
    }

    /// [`AsDesigned::of`] for a run known by its result alone (a profiled
    /// run's JSON, which is never in the summary): its own `failure` says
    /// whether and why it failed.
    pub fn of_result(model: &str, x: &RunResult) -> Option<AsDesigned> {
        Self::of_failed(model, x.failure.as_deref()?, x)
    }

    fn of_failed(model: &str, failure: &str, x: &RunResult) -> Option<AsDesigned> {
        if crate::models::base(model) != "pool" {
            return None;
        }
        let (c, n) = (&x.connections, &x.counts);
        let clean = n.errors == 0 && n.mismatches_total == 0 && n.timeouts == 0 && n.resets == 0;
        let only_starved = failure.split("; ").all(|why| STARVED.iter().any(|s| why.contains(s)));
        let served = c.requested.checked_sub(c.never_served).filter(|&s| s > 0)?;
        // The pool's workers, from its threads as STATS counted them: a pool
        // that served fewer connections than it has workers (or no more
        // connections than workers were asked for) starved for another reason.
        let workers = x.server.as_ref()?.threads.checked_sub(POOL_OTHER_THREADS)?;
        (clean && only_starved && c.established == c.requested && served == workers && c.requested > workers)
            .then(|| AsDesigned { what: "starved", why: format!("{workers} workers, {} connections", c.requested) })
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
    /// A cell whose every failure was its model's design says that instead
    /// ([`AsDesigned::text`]).
    pub fn failure_text(&self) -> String {
        if let Some(designed) = self.as_designed() {
            return designed.text();
        }
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

    /// Every failed run's reason as designed, when each one is
    /// ([`AsDesigned::of`]); `None` when some failure is a real one.
    pub fn as_designed(&self) -> Option<AsDesigned> {
        let failed = self.runs.iter().filter(|r| r.status == RunStatus::Failed);
        let designed: Option<Vec<AsDesigned>> = failed.map(|r| AsDesigned::of(r)).collect();
        designed?.into_iter().next()
    }

    /// One figure over the successful runs.
    pub fn spread(&self, metric: impl Fn(&Record) -> Option<f64>) -> Option<Spread> {
        let values: Vec<f64> = self.ok_runs().filter_map(metric).collect();
        Spread::of(&values)
    }

    /// One figure in each successful run that measured it: (pass, value),
    /// the sample a paired comparison is made of.
    pub fn per_pass(&self, metric: Metric) -> Vec<(u32, f64)> {
        self.ok_runs().filter_map(|r| metric(r).filter(|v| v.is_finite()).map(|v| (r.repeat, v))).collect()
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
const NOT_FIGURES: [&str; 5] = ["args", "config", "env", "timeseries", "notes"];

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
        let mine: Vec<&Record> = self.scenario(scenario).filter(|r| r.model == model && r.level == level).collect();
        let mut rates: Vec<f64> = mine.iter().filter_map(|r| r.offered_rps).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        let at = |rate: f64| mine.iter().copied().filter(|r| r.offered_rps == Some(rate)).collect();
        rates.into_iter().map(|rate| Cell { scenario, model, level, offered_rps: Some(rate), runs: at(rate) }).collect()
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
    /// Better, and the paired test says so after the family's correction.
    Ahead,
    /// Worse, likewise.
    Behind,
    /// No difference shown, or a loadgen-saturated throughput is involved.
    Tie,
    /// Fewer than [`stats::MIN_PAIRS`] passes measured both: not tested.
    Unjudged,
}

/// One model's figure in a comparison: its spread for the tables, and its
/// value in each pass for the paired test.
#[derive(Clone, Debug, PartialEq)]
pub struct Contender {
    pub model: String,
    pub spread: Spread,
    /// (pass, value) for every successful run that measured the figure.
    pub passes: Vec<(u32, f64)>,
    /// The load generator was the limit in one of its runs: on throughput it
    /// can neither win nor lose.
    pub loadgen_saturated: bool,
}

impl Contender {
    /// `cell`'s contender on `figure`, if any run measured it. The one place
    /// a cell's loadgen-saturated flag enters a comparison.
    pub fn of(cell: &Cell, figure: &Compared) -> Option<Contender> {
        let passes = cell.per_pass(figure.metric);
        let values: Vec<f64> = passes.iter().map(|&(_, v)| v).collect();
        Some(Contender {
            model: cell.model.to_string(),
            spread: Spread::of(&values)?,
            passes,
            loadgen_saturated: figure.rule.saturated_ties && cell.loadgen_saturated(),
        })
    }

    /// The (a, b) values of the passes both sides measured, by pass.
    fn paired_with(&self, other: &Contender) -> Vec<(f64, f64)> {
        self.passes
            .iter()
            .filter_map(|&(pass, a)| other.passes.iter().find(|&&(p, _)| p == pass).map(|&(_, b)| (a, b)))
            .collect()
    }
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

/// Server CPU is judged, and both sides' together: on loopback the sender
/// pays for the receiver's TCP path, so only the sum cannot be moved from
/// one side to the other by where the kernel charged it.
pub const COMPARED: [Compared; 5] = [
    Compared { name: "req/s", metric: Record::throughput, fmt: thousands, rule: Rule::THROUGHPUT },
    Compared { name: "p99", metric: |r| Some(r.result.as_ref()?.latency.p99 as f64), fmt: us_f, rule: Rule::COST },
    Compared { name: "server CPU µs/req", metric: Record::server_cpu, fmt: num, rule: Rule::COST },
    Compared { name: "both CPU µs/req", metric: Record::both_cpu, fmt: num, rule: Rule::COST },
    Compared { name: "cs/req", metric: Record::switches, fmt: num, rule: Rule::COST },
];

/// The family-wise error rate of one comparison table: the chance that any
/// of its "ahead" verdicts is false, under the paired test's assumptions.
pub const ALPHA: f64 = 0.05;

/// How one pair of models was judged on one figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Throughput, and one side was loadgen-saturated: a tie by rule.
    Excused,
    /// Only this many passes measured both with a log ratio (both above
    /// zero: [`stats::has_log_ratio`]): no test.
    TooFew { pairs: usize },
    /// The paired t-test on log ratios of A/B ([`stats::paired_log_t`]),
    /// with its p-value after the family's Holm correction.
    Tested { test: PairedTest, p_adjusted: f64 },
}

/// Model `a` against model `b` on one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rule: Rule,
    pub verdict: Verdict,
}

impl Comparison {
    /// `a` against `b`, paired by pass, before any correction (the adjusted
    /// p is the raw one until [`correct`] sets it).
    pub fn paired(a: &Contender, b: &Contender, rule: Rule) -> Comparison {
        let verdict = if rule.saturated_ties && (a.loadgen_saturated || b.loadgen_saturated) {
            Verdict::Excused
        } else {
            let pairs = a.paired_with(b);
            match stats::paired_log_t(&pairs, ALPHA) {
                Some(test) => Verdict::Tested { test, p_adjusted: test.p },
                None => Verdict::TooFew { pairs: pairs.iter().filter(|&&(a, b)| stats::has_log_ratio(a, b)).count() },
            }
        };
        Comparison { a: a.model.clone(), b: b.model.clone(), rule, verdict }
    }

    /// `model`'s side of the comparison (`a`'s, or `b`'s).
    pub fn order_of(&self, model: &str) -> Order {
        let order = match self.verdict {
            Verdict::Excused => Order::Tie,
            Verdict::TooFew { .. } => Order::Unjudged,
            Verdict::Tested { p_adjusted, .. } if p_adjusted > ALPHA => Order::Tie,
            Verdict::Tested { test, .. } => {
                if (test.ratio > 1.0) == (self.rule.better == Better::Higher) {
                    Order::Ahead
                } else {
                    Order::Behind
                }
            }
        };
        match (model == self.b, order) {
            (true, Order::Ahead) => Order::Behind,
            (true, Order::Behind) => Order::Ahead,
            _ => order,
        }
    }

    /// Whether it names `x` and `y`, either way round.
    pub fn between(&self, x: &str, y: &str) -> bool {
        (self.a == x && self.b == y) || (self.a == y && self.b == x)
    }
}

/// Holm's correction over every tested comparison of a family: afterwards
/// the chance of any false "ahead" among them is at most [`ALPHA`].
pub fn correct<'a>(family: impl IntoIterator<Item = &'a mut Comparison>) {
    let mut tested: Vec<&mut Comparison> =
        family.into_iter().filter(|c| matches!(c.verdict, Verdict::Tested { .. })).collect();
    let raw: Vec<f64> =
        tested.iter().map(|c| if let Verdict::Tested { test, .. } = c.verdict { test.p } else { 1.0 }).collect();
    for (c, adjusted) in tested.iter_mut().zip(stats::holm(&raw)) {
        if let Verdict::Tested { p_adjusted, .. } = &mut c.verdict {
            *p_adjusted = adjusted;
        }
    }
}

/// One table's family on one figure: `groups` are the cells side by side
/// (one group per level), and every pair within a group is compared; the
/// result is, per group, its comparisons, corrected together.
pub fn judge(groups: &[Vec<Contender>], rule: Rule) -> Vec<Vec<Comparison>> {
    let mut judged: Vec<Vec<Comparison>> = groups
        .iter()
        .map(|group| {
            let mut pairs = Vec::new();
            for (i, a) in group.iter().enumerate() {
                for b in &group[i + 1..] {
                    pairs.push(Comparison::paired(a, b, rule));
                }
            }
            pairs
        })
        .collect();
    correct(judged.iter_mut().flatten());
    judged
}

/// Who leads on one figure among several models.
#[derive(Clone, Debug, PartialEq)]
pub enum Lead {
    /// Ahead of every other, after the correction.
    One(String),
    /// No one is ahead of these.
    Tie(Vec<String>),
    /// No pair was measured in enough passes to be tested.
    Unjudged,
    /// Fewer than two contenders.
    Alone,
}

/// The lead among `models` from their `comparisons` (every pair, corrected
/// within the family): the one model ahead of every other, or else the
/// models no other is ahead of.
pub fn lead(models: &[&str], comparisons: &[Comparison]) -> Lead {
    if models.len() < 2 {
        return Lead::Alone;
    }
    let untested = |c: &Comparison| !matches!(c.verdict, Verdict::Tested { .. });
    if comparisons.iter().all(untested) && comparisons.iter().any(|c| matches!(c.verdict, Verdict::TooFew { .. })) {
        return Lead::Unjudged;
    }
    let order = |m: &str, other: &str| {
        comparisons.iter().find(|c| c.between(m, other)).map(|c| c.order_of(m)).unwrap_or(Order::Unjudged)
    };
    let others = |m: &'_ str| models.iter().copied().filter(move |o| *o != m).collect::<Vec<_>>();
    if let Some(one) = models.iter().find(|m| others(m).iter().all(|o| order(m, o) == Order::Ahead)) {
        return Lead::One(one.to_string());
    }
    let mut tied: Vec<&str> =
        models.iter().copied().filter(|m| !others(m).iter().any(|o| order(o, m) == Order::Ahead)).collect();
    // Verdicts need not be transitive: A ahead of B, B of C, but A and C
    // tied leaves A unbeaten alone, though not ahead of C. A tie then
    // names A with the models A is not ahead of.
    if let [only] = tied[..] {
        tied.extend(others(only).into_iter().filter(|o| order(only, o) != Order::Ahead));
        tied.sort_by_key(|m| models.iter().position(|x| x == m));
    }
    Lead::Tie(tied.into_iter().map(String::from).collect())
}

/// One table's family on one figure, per level of its scenario: the
/// contenders side by side, and their comparisons (judged together).
pub type Family = Vec<(Vec<Contender>, Vec<Comparison>)>;

impl Summary {
    /// The families of a comparison table of `models` in `scenario`: one
    /// per figure of [`COMPARED`], in its order, each over every level.
    pub fn families(&self, scenario: &str, models: &[&str]) -> Vec<Family> {
        let levels = self.levels(scenario);
        COMPARED
            .iter()
            .map(|figure| {
                let groups: Vec<Vec<Contender>> = levels
                    .iter()
                    .map(|&level| {
                        models
                            .iter()
                            .filter_map(|m| self.cell(scenario, m, level))
                            .filter_map(|c| Contender::of(&c, figure))
                            .collect()
                    })
                    .collect();
                let judged = judge(&groups, figure.rule);
                groups.into_iter().zip(judged).collect()
            })
            .collect()
    }
}

/// How the twins of an A/A sweep fared in one family: a model run under
/// an alias ([`crate::models::base`]) and its base, in the same cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TwinCount {
    /// Comparisons between a twin and its base that were tested.
    pub tested: usize,
    /// Of those, the ones called ahead either way (all false by design).
    pub ahead: usize,
}

impl TwinCount {
    /// Count the tested twin comparisons in `comparisons`.
    pub fn of<'a>(comparisons: impl IntoIterator<Item = &'a Comparison>) -> TwinCount {
        let mut count = TwinCount::default();
        let tested = |c: &&Comparison| matches!(c.verdict, Verdict::Tested { .. });
        for c in comparisons.into_iter().filter(|c| crate::models::twins(&c.a, &c.b)).filter(tested) {
            count.tested += 1;
            count.ahead += usize::from(c.order_of(&c.a) != Order::Tie);
        }
        count
    }
}

/// Two families' counts together.
impl std::ops::Add for TwinCount {
    type Output = TwinCount;

    fn add(self, other: TwinCount) -> TwinCount {
        TwinCount { tested: self.tested + other.tested, ahead: self.ahead + other.ahead }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    /// A contender whose pass k (from 1) measured `values[k - 1]`.
    fn contender(model: &str, values: &[f64], bound: bool) -> Contender {
        let passes = values.iter().enumerate().map(|(k, &v)| (k as u32 + 1, v)).collect();
        Contender { model: model.into(), spread: Spread::of(values).unwrap(), passes, loadgen_saturated: bound }
    }

    /// `a` against `b` alone: a family of one comparison.
    fn alone(a: &Contender, b: &Contender, rule: Rule) -> Comparison {
        judge(&[vec![a.clone(), b.clone()]], rule).remove(0).remove(0)
    }

    fn p_of(c: &Comparison) -> (f64, f64) {
        match c.verdict {
            Verdict::Tested { test, p_adjusted } => (test.p, p_adjusted),
            v => panic!("not tested: {v:?}"),
        }
    }

    /// (a) The same server twice, with the noise of real passes: a tie.
    #[test]
    fn identical_twins_with_noise_tie() {
        let a = contender("a", &[100.0, 103.0, 98.0, 101.0, 99.0], false);
        let b = contender("a@twin", &[101.0, 99.0, 100.0, 102.0, 98.0], false);
        for rule in [Rule::THROUGHPUT, Rule::COST] {
            let c = alone(&a, &b, rule);
            assert_eq!((c.order_of("a"), c.order_of("a@twin")), (Order::Tie, Order::Tie), "{c:?}");
        }
    }

    /// (b) Twice the throughput in every one of 5 passes: ahead, the right
    /// way round, with the ratio and its interval around 2.
    #[test]
    fn a_consistent_twofold_difference_is_ahead_the_right_way() {
        let fast = contender("fast", &[200.0, 206.0, 195.0, 202.0, 198.0], false);
        let slow = contender("slow", &[100.0, 101.0, 99.0, 100.0, 100.0], false);
        let c = alone(&fast, &slow, Rule::THROUGHPUT);
        assert_eq!((c.order_of("fast"), c.order_of("slow")), (Order::Ahead, Order::Behind));
        let Verdict::Tested { test, p_adjusted } = c.verdict else { panic!("{c:?}") };
        assert!(test.low > 1.9 && test.ratio > 1.98 && test.ratio < 2.02 && test.high < 2.1, "{test:?}");
        assert!(p_adjusted < 1e-4, "{test:?}");
        // On a cost, the higher figure is the worse.
        let c = alone(&fast, &slow, Rule::COST);
        assert_eq!((c.order_of("fast"), c.order_of("slow")), (Order::Behind, Order::Ahead));
        // The same the other way round.
        let c = alone(&slow, &fast, Rule::THROUGHPUT);
        assert_eq!((c.order_of("fast"), c.order_of("slow")), (Order::Ahead, Order::Behind));
    }

    /// (c) A higher median, but the ratio flips from pass to pass: a tie.
    #[test]
    fn a_median_difference_whose_ratios_flip_is_a_tie() {
        let a = contender("a", &[118.0, 85.0, 125.0, 92.0, 121.0], false);
        let b = contender("b", &[100.0, 100.0, 100.0, 100.0, 100.0], false);
        assert!(a.spread.median > 1.15 * b.spread.median, "a's median is 18% higher");
        let c = alone(&a, &b, Rule::THROUGHPUT);
        assert_eq!(c.order_of("a"), Order::Tie, "{c:?}");
        assert!(p_of(&c).0 > 0.05, "{c:?}");
    }

    /// (d) A p-value that passes alone fails among 20 comparisons (Holm).
    #[test]
    fn holm_takes_back_a_verdict_among_many() {
        // Log ratios 0.02, 0.06, 0.04, 0.01, 0.07: t ≈ 3.5 on 4 degrees of
        // freedom, p ≈ 0.025.
        let base = [100.0, 110.0, 90.0, 105.0, 95.0];
        let shifted: Vec<f64> = base.iter().zip([0.02, 0.06, 0.04, 0.01, 0.07]).map(|(b, d)| b * f64::exp(d)).collect();
        let (a, b) = (contender("a", &shifted, false), contender("b", &base, false));
        let single = alone(&a, &b, Rule::THROUGHPUT);
        let (p, adjusted) = p_of(&single);
        assert!(p > 0.0025 && p < 0.05 && adjusted == p, "{single:?}");
        assert_eq!(single.order_of("a"), Order::Ahead, "alone, p {p} ≤ 0.05");
        // The same pair at one level of a table of 20, the other 19 twins.
        let mut groups = vec![vec![a.clone(), b.clone()]];
        for k in 0..19 {
            let noise: Vec<f64> =
                base.iter().enumerate().map(|(i, v)| v * (1.0 + 0.01 * ((i + k) % 3) as f64)).collect();
            groups.push(vec![contender("a", &noise, false), contender("b", &base, false)]);
        }
        let family = judge(&groups, Rule::THROUGHPUT);
        let among = &family[0][0];
        assert_eq!(p_of(among).0, p, "the same raw p");
        assert!(p_of(among).1 > 0.05, "corrected: {among:?}");
        assert_eq!(among.order_of("a"), Order::Tie);
    }

    /// (e) Both models ran slower in the same passes: their unpaired ranges
    /// overlap, but the ratio is 1.05 in every pass: ahead.
    #[test]
    fn pairing_by_pass_cancels_what_the_pass_did_to_both() {
        let pass = [1.0, 1.3, 0.8, 1.15, 0.9];
        let noise = [1.0, 1.004, 0.997, 1.002, 0.999];
        let a: Vec<f64> = pass.iter().zip(noise).map(|(p, n)| 105.0 * p * n).collect();
        let b: Vec<f64> = pass.iter().map(|p| 100.0 * p).collect();
        let (a, b) = (contender("a", &a, false), contender("b", &b, false));
        assert!(a.spread.overlaps(&b.spread), "unpaired, the ranges overlap");
        assert_eq!(alone(&a, &b, Rule::THROUGHPUT).order_of("a"), Order::Ahead);
        // Shuffle b's passes: the pairs no longer share a pass effect.
        let shuffled =
            Contender { passes: vec![(1, 130.0), (2, 80.0), (3, 115.0), (4, 90.0), (5, 100.0)], ..b.clone() };
        assert_eq!(alone(&a, &shuffled, Rule::THROUGHPUT).order_of("a"), Order::Tie);
        // A pass only one side measured is left out of the pairs.
        let gap = Contender { passes: b.passes[..2].to_vec(), ..b };
        assert_eq!(alone(&a, &gap, Rule::THROUGHPUT).verdict, Verdict::TooFew { pairs: 2 });
        // A pass in which one side measured zero has no log ratio: it is not
        // counted among the pairs the test could use.
        let zeros = Contender { passes: vec![(1, 0.0), (2, 0.0), (3, 0.0), (4, 90.0), (5, 100.0)], ..a.clone() };
        assert_eq!(alone(&zeros, &a, Rule::THROUGHPUT).verdict, Verdict::TooFew { pairs: 2 });
    }

    #[test]
    fn a_loadgen_saturated_run_neither_wins_nor_loses_on_throughput() {
        let slow = contender("slow", &[10.0, 11.0, 12.0], false);
        let bound = contender("bound", &[100.0, 101.0, 102.0], true);
        let c = alone(&bound, &slow, Rule::THROUGHPUT);
        assert_eq!((c.verdict, c.order_of("slow"), c.order_of("bound")), (Verdict::Excused, Order::Tie, Order::Tie));
        assert_eq!(alone(&bound, &slow, Rule::COST).order_of("bound"), Order::Behind, "only throughput is excused");
    }

    #[test]
    fn lead_names_one_model_or_the_tied_ones() {
        let lead_of = |contenders: &[&Contender], rule: Rule| {
            let group: Vec<Contender> = contenders.iter().map(|&c| c.clone()).collect();
            let models: Vec<&str> = contenders.iter().map(|c| c.model.as_str()).collect();
            lead(&models, &judge(std::slice::from_ref(&group), rule)[0])
        };
        let a = contender("a", &[100.0, 110.0, 120.0], false);
        let b = contender("b", &[101.0, 108.0, 123.0], false);
        let c = contender("c", &[200.0, 221.0, 239.0], false);
        assert_eq!(lead_of(&[&a, &b, &c], Rule::THROUGHPUT), Lead::One("c".into()));
        assert_eq!(lead_of(&[&a, &b], Rule::THROUGHPUT), Lead::Tie(vec!["a".into(), "b".into()]));
        assert_eq!(lead_of(&[&a, &b, &c], Rule::COST), Lead::Tie(vec!["a".into(), "b".into()]));
        let bound = Contender { loadgen_saturated: true, ..c.clone() };
        assert_eq!(
            lead_of(&[&a, &bound], Rule::THROUGHPUT),
            Lead::Tie(vec!["a".into(), "c".into()]),
            "c is far ahead, but loadgen-saturated"
        );
        // a ahead of b, b ahead of c, but a and c tied: no single leader.
        let tested = |a: &str, b: &str, ratio: f64, p: f64| Comparison {
            a: a.into(),
            b: b.into(),
            rule: Rule::THROUGHPUT,
            verdict: Verdict::Tested { test: PairedTest { n: 3, ratio, low: ratio, high: ratio, p }, p_adjusted: p },
        };
        let loop_ = [tested("a", "b", 2.0, 0.001), tested("b", "c", 2.0, 0.001), tested("a", "c", 1.1, 0.5)];
        assert_eq!(lead(&["a", "b", "c"], &loop_), Lead::Tie(vec!["a".into(), "c".into()]));
        let (two_a, two_b) = (contender("a", &[1.0, 1.1], false), contender("b", &[9.0, 9.9], false));
        assert_eq!(lead_of(&[&two_a, &two_b], Rule::THROUGHPUT), Lead::Unjudged, "2 passes: not tested");
        assert_eq!(lead_of(&[&two_a], Rule::THROUGHPUT), Lead::Alone);
    }

    #[test]
    fn twins_are_counted_apart_from_the_rest() {
        let a = contender("m", &[100.0, 103.0, 98.0], false);
        let twin = contender("m@twin", &[150.0, 153.0, 149.0], false);
        let other = contender("x", &[100.0, 101.0, 99.0], false);
        let family = judge(&[vec![a, twin, other]], Rule::THROUGHPUT);
        assert_eq!(TwinCount::of(&family[0]), TwinCount { tested: 1, ahead: 1 });
    }

    #[test]
    fn pool_past_its_workers_is_starved_as_designed_and_a_real_failure_is_not() {
        let designed = AsDesigned::of(&testdata::starved_pool(200)).unwrap();
        assert_eq!(designed.text(), "starved, as designed: 64 workers, 200 connections");
        // The same starvation with a crash on top is a failure.
        let mut crashed = testdata::starved_pool(200);
        crashed.failure = Some(format!("{}; the server exited with signal 11", crashed.failure.unwrap()));
        assert_eq!(AsDesigned::of(&crashed), None);
        // Errors in the counts, or connections not established: a failure.
        let mut errors = testdata::starved_pool(1000);
        errors.result.as_mut().unwrap().counts.errors = 3;
        assert_eq!(AsDesigned::of(&errors), None);
        let mut refused = testdata::starved_pool(1000);
        refused.result.as_mut().unwrap().connections.established = 900;
        assert_eq!(AsDesigned::of(&refused), None);
        // Fewer connections served than the pool has workers (a pool that
        // starved below its size): not its design.
        let mut below = testdata::starved_pool(200);
        let c = &mut below.result.as_mut().unwrap().connections;
        (c.requested, c.established, c.never_served) = (50, 50, 5);
        assert_eq!(AsDesigned::of(&below), None);
        // Another model starving is not its design.
        let mut other = testdata::starved_pool(200);
        other.model = "mio-single".into();
        assert_eq!(AsDesigned::of(&other), None);
        // A run known by its JSON alone (a profiled run): its own failure decides.
        let mut alone = testdata::starved_pool(500).result.unwrap();
        assert_eq!(AsDesigned::of_result("pool", &alone), None, "no failure in the JSON: it did not fail");
        alone.failure = testdata::starved_pool(500).failure;
        assert_eq!(
            AsDesigned::of_result("pool", &alone).unwrap().text(),
            "starved, as designed: 64 workers, 500 connections"
        );
        assert_eq!(AsDesigned::of_result("tokio", &alone), None);
        // A failure without a result (the server did not start) is a failure.
        assert_eq!(AsDesigned::of(&testdata::failed("echo-saturate", "pool", 200, "starved: x", 1)), None);
        // A cell is as designed only when every failure is.
        let runs = [testdata::starved_pool(200), crashed];
        let cell =
            Cell { scenario: "echo-saturate", model: "pool", level: 200, offered_rps: None, runs: vec![&runs[0]] };
        assert_eq!(cell.as_designed(), Some(designed));
        let cell = Cell { runs: runs.iter().collect(), ..cell };
        assert_eq!(cell.as_designed(), None);
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
