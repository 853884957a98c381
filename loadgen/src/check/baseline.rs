//! `results/baseline.json`: what the regression check compares with, made
//! by `loadgen baseline` from one or more sweeps of the same shape.
//!
//! For every figure it keeps the value of each sweep, their median, and the
//! tolerance those values justify (see [`tolerance`]), so that anyone can
//! see why a figure may move by as much as it may.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::figures::{self, Kind};
use crate::sweep::summary::Summary;

/// The tolerance is the largest deviation seen, times this.
pub const SAFETY: f64 = 2.0;
/// No figure gets a tolerance below this (25%): even five quiet sweeps do
/// not prove a figure will never move by more than they did.
pub const MIN_TOLERANCE: f64 = 0.25;
/// A figure that needs more than this (it may get 1.8 times worse) is too
/// noisy to gate on: it is reported, never fails the check.
pub const MAX_TOLERANCE: f64 = 0.8;

/// The sweep every check must repeat to be comparable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepShape {
    pub scenarios: Vec<String>,
    pub levels: Vec<u64>,
    pub models: Vec<String>,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// echo-paced's `--rate`, when that scenario is in.
    pub rate: Option<f64>,
}

/// One figure as the baseline sweeps measured it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaselineFigure {
    pub name: String,
    pub scenario: String,
    pub model: Option<String>,
    pub level: u64,
    pub kind: Kind,
    pub unit: String,
    /// What the check compares with.
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// One value per baseline sweep that measured it, in `sources` order.
    pub samples: Vec<f64>,
    /// Values below it count as it (see [`Kind::floor`]).
    pub floor: f64,
    /// The largest deviation from the median among the samples, as a
    /// factor minus one: max over samples of max(x/median, median/x) − 1,
    /// values raised to `floor` first.
    pub spread: f64,
    /// How much worse (as a factor minus one) the figure may get before
    /// it is a regression: max(MIN_TOLERANCE, SAFETY × spread), rounded up
    /// to a whole 5%.
    pub tolerance: f64,
    /// False when `tolerance` came out above MAX_TOLERANCE: reported only.
    pub gated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub dir: String,
    pub run_id: String,
    pub git_rev: Option<String>,
    pub started: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Method {
    pub safety: f64,
    pub min_tolerance: f64,
    pub max_tolerance: f64,
    pub how: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub about: String,
    pub made: String,
    /// The machine of the first source (env.json), when known.
    pub machine: Option<serde_json::Value>,
    pub sources: Vec<Source>,
    pub sweep: SweepShape,
    pub method: Method,
    pub figures: Vec<BaselineFigure>,
}

impl Baseline {
    pub fn load(path: &Path) -> anyhow::Result<Baseline> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("--baseline {}: cannot read it", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("--baseline {}: not a baseline made by `loadgen baseline`", path.display()))
    }

    pub fn figure(&self, name: &str) -> Option<&BaselineFigure> {
        self.figures.iter().find(|f| f.name == name)
    }
}

/// The deviation of `x` from `median`, both raised to `floor`, as a factor
/// minus one (symmetric: double and half are both 1.0).
pub fn deviation(x: f64, median: f64, floor: f64) -> f64 {
    let (x, m) = (x.max(floor), median.max(floor));
    (x / m).max(m / x) - 1.0
}

/// The tolerance a spread justifies: SAFETY × spread, at least
/// MIN_TOLERANCE, rounded up to a whole 5%.
pub fn tolerance(spread: f64) -> f64 {
    let t = (SAFETY * spread).max(MIN_TOLERANCE);
    (t * 20.0 - 1e-9).ceil() / 20.0
}

/// The shape of a sweep, from its summary and (if there) its env.json.
pub fn shape(summary: &Summary, env: Option<&serde_json::Value>) -> SweepShape {
    let mut levels: Vec<u64> = summary.records.iter().map(|r| r.level).collect();
    levels.sort_unstable();
    levels.dedup();
    let rate = summary.records.iter().filter_map(|r| r.result.as_ref()).find_map(|x| {
        x.args.iter().position(|a| a == "--rate").and_then(|i| x.args.get(i + 1)).and_then(|v| v.parse().ok())
    });
    let f = |k: &str, default: f64| env.and_then(|e| e[k].as_f64()).unwrap_or(default);
    SweepShape {
        scenarios: summary.scenarios.clone(),
        levels,
        models: summary.models.clone(),
        warmup_s: f("warmup_s", 0.5),
        duration_s: f("duration_s", 1.5),
        rate,
    }
}

fn read_env(dir: &Path) -> Option<serde_json::Value> {
    std::fs::read_to_string(dir.join("env.json")).ok().and_then(|t| serde_json::from_str(&t).ok())
}

/// Build a baseline from sweeps of one shape. Refuses sweeps that differ in
/// shape or got wrong answers (a strict invariant); warns about other
/// invariants that did not hold (a stall of the machine, as a rule).
pub fn build(dirs: &[PathBuf], made: String) -> anyhow::Result<Baseline> {
    if dirs.is_empty() {
        bail!("--results: give at least one sweep directory");
    }
    let mut sources = Vec::new();
    let mut runs: Vec<Vec<figures::GatedFigure>> = Vec::new();
    let mut open_loop: Vec<String> = Vec::new();
    let mut first: Option<(SweepShape, Option<serde_json::Value>)> = None;
    for dir in dirs {
        let summary = Summary::load(dir).with_context(|| format!("--results {}", dir.display()))?;
        let env = read_env(dir);
        let s = shape(&summary, env.as_ref());
        match &first {
            None => first = Some((s.clone(), env.as_ref().map(|e| e["machine"].clone()))),
            Some((f, _)) => like_the_first(f, &s, dir)?,
        }
        refuse_wrong_answers(&summary, dir)?;
        sources.push(Source {
            dir: dir.display().to_string(),
            run_id: summary.run_id.clone(),
            git_rev: env.as_ref().and_then(|e| e["machine"]["git_rev"].as_str().map(String::from)),
            started: env.as_ref().and_then(|e| e["started"].as_str().map(String::from)),
        });
        for scenario in open_loop_scenarios(&summary) {
            if !open_loop.contains(&scenario) {
                open_loop.push(scenario);
            }
        }
        runs.push(figures::figures(&summary));
    }
    let in_floors = runs.iter().flatten().any(|f| matches!(f.kind, Kind::ServerCpuFloors | Kind::LoadgenCpuFloors));
    let (mut sweep, machine) = first.expect("at least one source");
    add_every_model(dirs, &mut sweep);
    let mut out: Vec<BaselineFigure> = Vec::new();
    for fig in runs.iter().flatten() {
        if !out.iter().any(|o| o.name == fig.name) {
            out.push(baseline_figure(fig, &runs, &open_loop, in_floors));
        }
    }
    Ok(Baseline {
        about: "iomodels regression baseline: `loadgen check --baseline` compares a quick sweep with it. Made by \
                `loadgen baseline --results DIR...`; see loadgen/src/check/mod.rs."
            .into(),
        made,
        machine,
        sources,
        sweep,
        method: method(),
        figures: out,
    })
}

/// How the tolerances were found, as the baseline file states it.
fn method() -> Method {
    Method {
        safety: SAFETY,
        min_tolerance: MIN_TOLERANCE,
        max_tolerance: MAX_TOLERANCE,
        how: "spread = max over the sweeps of max(x/median, median/x) - 1, values raised to the figure's floor \
              first; tolerance = max(min_tolerance, safety x spread), rounded up to 5%; a figure whose tolerance \
              exceeds max_tolerance is reported but not gated, and so are every open-loop figure (waking an idle \
              CPU dominates them, and it moves with the machine) and, where the sweeps measured the floor, \
              absolute CPU times (their multiples of the floor pair are gated instead)"
            .into(),
    }
}

/// A baseline compares like with like: every sweep of the shape of the first.
fn like_the_first(f: &SweepShape, s: &SweepShape, dir: &Path) -> anyhow::Result<()> {
    if f.scenarios != s.scenarios || f.levels != s.levels || f.duration_s != s.duration_s {
        bail!(
            "--results {}: scenarios {:?}, levels {:?}, {} s windows; the first sweep had {:?}, {:?}, {} s: a \
             baseline compares like with like",
            dir.display(),
            s.scenarios,
            s.levels,
            s.duration_s,
            f.scenarios,
            f.levels,
            f.duration_s
        )
    }
    Ok(())
}

/// Refuse a sweep with wrong answers (a strict invariant broken); warn
/// about the other invariants it broke.
fn refuse_wrong_answers(summary: &Summary, dir: &Path) -> anyhow::Result<()> {
    let (strict, loose): (Vec<_>, Vec<_>) =
        figures::invariants(summary).into_iter().filter(|i| i.violation.is_some()).partition(|i| i.strict);
    let say = |v: &[figures::Invariant]| {
        v.iter()
            .map(|i| format!("{} ({}): {}", i.place, i.family, i.violation.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !strict.is_empty() {
        bail!("--results {}: not a baseline, its answers were wrong: {}", dir.display(), say(&strict));
    }
    if !loose.is_empty() {
        // A stall of the machine, most likely: its figures stay in, and
        // widen the spread as they should.
        eprintln!("baseline: warning: in {}: {}", dir.display(), say(&loose));
    }
    Ok(())
}

/// The scenarios of a sweep that ran an open loop (`--rate`).
fn open_loop_scenarios(summary: &Summary) -> Vec<String> {
    let rated = |scenario: &str| {
        summary.scenario(scenario).filter_map(|r| r.result.as_ref()).any(|x| x.args.iter().any(|a| a == "--rate"))
    };
    summary.scenarios.iter().filter(|s| rated(s)).cloned().collect()
}

/// Models in any source, in the order of the first that ran them.
fn add_every_model(dirs: &[PathBuf], sweep: &mut SweepShape) {
    for run_dir in dirs {
        if let Ok(s) = Summary::load(run_dir) {
            for m in s.models {
                if !sweep.models.contains(&m) {
                    sweep.models.push(m);
                }
            }
        }
    }
}

/// One figure over every sweep that measured it: its median, spread and
/// tolerance, and whether it is gated.
fn baseline_figure(
    fig: &figures::GatedFigure,
    runs: &[Vec<figures::GatedFigure>],
    open_loop: &[String],
    in_floors: bool,
) -> BaselineFigure {
    let samples: Vec<f64> =
        runs.iter().filter_map(|r| r.iter().find(|f| f.name == fig.name)).map(|f| f.value).collect();
    let median = crate::stats::median(&samples).unwrap_or(f64::NAN);
    let floor = fig.kind.floor();
    let spread = samples.iter().map(|&x| deviation(x, median, floor)).fold(0.0, f64::max);
    let tolerance = tolerance(spread);
    BaselineFigure {
        name: fig.name.clone(),
        scenario: fig.scenario.clone(),
        model: fig.model.clone(),
        level: fig.level,
        kind: fig.kind,
        unit: fig.kind.unit().into(),
        median,
        min: samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        samples,
        floor,
        spread,
        tolerance,
        gated: tolerance <= MAX_TOLERANCE + 1e-9
            && !open_loop.contains(&fig.scenario)
            && !(in_floors && fig.kind.absolute_time()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deviation_is_symmetric_and_floored() {
        assert!((deviation(2.0, 1.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((deviation(0.5, 1.0, 0.0) - 1.0).abs() < 1e-12);
        // Both below the floor: no deviation at all.
        assert_eq!(deviation(0.004, 0.02, 0.05), 0.0);
        assert!((deviation(0.1, 0.02, 0.05) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn tolerance_has_a_floor_a_factor_and_5_percent_steps() {
        assert_eq!(tolerance(0.0), 0.25);
        assert_eq!(tolerance(0.1), 0.25);
        assert!((tolerance(0.2) - 0.4).abs() < 1e-12);
        assert!((tolerance(0.21) - 0.45).abs() < 1e-12);
    }
}
