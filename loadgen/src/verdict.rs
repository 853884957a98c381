//! The headline verdict of one sweep: the comparisons of REPORT.md's first
//! screen (thread-per-conn against mio-single, the argument's two sides),
//! computed from this sweep's own summary, each with its spread and the
//! suite's tie rule, and set beside the reference's verdict.
//!
//! The rows are declared in advance (`ROWS`, below): they are the family the
//! error rate is controlled over. Each row is one paired comparison made
//! as the tables make theirs ([`Contender`], [`Comparison::paired`]), and
//! Holm's correction ([`correct`]) runs over the rows together, so the
//! chance of any false "ahead" among them is at most [`ALPHA`] (5%).
//! Where the sweep did not run the row's level, the nearest level it ran
//! stands in, and the row says so; a row whose scenario did not run is left
//! out and named in [`Headline::not_in_sweep`].
//!
//! The record it makes is [`crate::records::verdict`] (`verdict.json`);
//! the terminal lines and the page's sections are `output/verdict.rs`.

use std::path::{Path, PathBuf};

use crate::records::sweep::{Record, Summary};
use crate::records::verdict::{Against, Call, Expected, Headline, Reference, Row, Side, FILE};
use crate::stats::Spread;
use crate::sweep::cells::{correct, Compared, Comparison, Contender, Metric, Order, Rule, Verdict, ALPHA};
use crate::sweep::ladder::{self, Knee};

/// The argument's blocking side.
pub const BLOCKING: &str = "thread-per-conn";
/// The argument's event-loop side.
pub const EVENT_LOOP: &str = "mio-single";
/// The knee under the default CPU budget: the argument's throughput figure
/// where the sweep has it.
pub const KNEE_BUDGET: &str = "knee-budget";

/// On a row where the argument expects a tie (light load), a difference
/// shown by at most this factor (10%) still agrees with it: the argument is
/// about factors of 2 and more, and 5 passes can show a 0.3% difference.
pub const EQUIVALENT: f64 = 1.10;

/// Which level of its scenario a row is measured at.
#[derive(Clone, Copy)]
enum Level {
    /// This many connections, or the nearest level the sweep ran.
    At(u64),
    /// The highest level the sweep ran.
    Highest,
}

/// Where a row's values come from.
#[derive(Clone, Copy)]
enum Source {
    /// A figure of each run of the cell.
    Runs(Metric),
    /// Each pass's own knee on a ladder ([`ladder::knee_of`]).
    Knee,
}

/// One headline row, declared in advance.
struct Spec {
    key: &'static str,
    label: &'static str,
    figure: &'static str,
    unit: &'static str,
    /// The first of these the sweep ran is the row's scenario.
    scenarios: &'static [&'static str],
    level: Level,
    source: Source,
    rule: Rule,
    expected: Expected,
}

const SATURATE: &[&str] = &["echo-saturate"];
const PACED: &[&str] = &["echo-paced"];

/// The server's threads at the end of the window (0: STATS saw nothing).
fn threads(r: &Record) -> Option<f64> {
    Some(r.result.as_ref()?.server.as_ref()?.threads as f64).filter(|&t| t > 0.0)
}

/// The server's own peak resident memory (VmHWM), MiB.
fn peak_mib(r: &Record) -> Option<f64> {
    let bytes = r.result.as_ref()?.server.as_ref()?.max_rss_bytes;
    (bytes > 0).then(|| bytes as f64 / (1u64 << 20) as f64)
}

/// ECHO's p99 (µs) where the run kept ECHO apart from DELAY.
fn echo_p99(r: &Record) -> Option<f64> {
    Some(r.result.as_ref()?.echo_latency()?.p99 as f64)
}

/// The context-switch rows judge voluntary and involuntary switches
/// together, as the tables do ([`Record::switches`]). Voluntary switches
/// alone were the first choice, but an event loop that never slept in the
/// window makes none at all, and a zero has no log ratio to test (the
/// remade reference's mio-single, in 3 of 5 passes at 1000 connections).
const ROWS: [Spec; 10] = [
    Spec {
        key: "cs-full-load",
        label: "cs/req, full load",
        figure: "context switches per request, voluntary and involuntary, full load (server)",
        unit: "cs/req",
        scenarios: SATURATE,
        level: Level::At(1000),
        source: Source::Runs(Record::switches),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "cpu-server-full-load",
        label: "server CPU µs/req, full load",
        figure: "CPU per request, full load, charged to the server",
        unit: "CPU µs/req",
        scenarios: SATURATE,
        level: Level::At(5000),
        source: Source::Runs(Record::server_cpu),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "cpu-loadgen-full-load",
        label: "load generator CPU µs/req, full load",
        figure: "CPU per request, full load, charged to the load generator",
        unit: "CPU µs/req",
        scenarios: SATURATE,
        level: Level::At(5000),
        source: Source::Runs(Record::loadgen_cpu),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "cpu-both-full-load",
        label: "both sides' CPU µs/req, full load",
        figure: "CPU per request, full load, server and load generator together",
        unit: "CPU µs/req",
        scenarios: SATURATE,
        level: Level::At(5000),
        source: Source::Runs(Record::both_cpu),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "threads",
        label: "server threads",
        figure: "server threads at the highest level, full load",
        unit: "threads",
        scenarios: SATURATE,
        level: Level::Highest,
        source: Source::Runs(threads),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "peak-memory",
        label: "server peak memory, MiB",
        figure: "server peak memory (VmHWM) at the highest level, full load",
        unit: "MiB",
        scenarios: SATURATE,
        level: Level::Highest,
        source: Source::Runs(peak_mib),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "knee",
        label: "knee",
        figure: "knee: highest rate sustained within the SLO (each pass's own knee)",
        unit: "req/s",
        scenarios: &[KNEE_BUDGET, "knee"],
        level: Level::At(1000),
        source: Source::Knee,
        rule: Rule::THROUGHPUT,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "head-of-line",
        label: "head-of-line ECHO p99",
        figure: "head-of-line: ECHO p99 with 16 in flight per connection, 10% a 5 ms DELAY",
        unit: "µs",
        scenarios: &["multiplex"],
        level: Level::At(200),
        source: Source::Runs(echo_p99),
        rule: Rule::COST,
        expected: Expected::EventLoopAhead,
    },
    Spec {
        key: "cs-light-load",
        label: "cs/req, light load",
        figure: "context switches per request, voluntary and involuntary, light load (server)",
        unit: "cs/req",
        scenarios: PACED,
        level: Level::At(1000),
        source: Source::Runs(Record::switches),
        rule: Rule::COST,
        expected: Expected::Tie,
    },
    Spec {
        key: "cpu-both-light-load",
        label: "both sides' CPU µs/req, light load",
        figure: "CPU per request, light load, server and load generator together",
        unit: "CPU µs/req",
        scenarios: PACED,
        level: Level::At(1000),
        source: Source::Runs(Record::both_cpu),
        rule: Rule::COST,
        expected: Expected::Tie,
    },
];

/// A row before the family's correction: its comparison, or why none.
struct Draft {
    spec: &'static Spec,
    scenario: String,
    level: u64,
    wanted: u64,
    sides: [Result<Contender, String>; 2],
    comparison: Option<Comparison>,
}

/// The headline verdict of `summary`, without a reference (see
/// [`compare_with_reference`]).
pub fn headline(summary: &Summary) -> Headline {
    let mut not_in_sweep = Vec::new();
    let mut drafts = Vec::new();
    for spec in &ROWS {
        match draft(summary, spec) {
            Some(d) => drafts.push(d),
            None => not_in_sweep.push(spec.figure.to_string()),
        }
    }
    correct(drafts.iter_mut().filter_map(|d| d.comparison.as_mut()));
    Headline {
        run_id: summary.run_id.clone(),
        passes: summary.repeats,
        family_error_rate: ALPHA,
        rows: drafts.into_iter().map(|d| row(summary, d)).collect(),
        not_in_sweep,
        reference: Reference::Missing { why: "not looked for".into() },
    }
}

/// `spec` in `summary`: its scenario and level, both sides and their
/// comparison; `None` where the sweep did not run its scenario.
fn draft(summary: &Summary, spec: &'static Spec) -> Option<Draft> {
    let ran = |s: &str| summary.scenarios.iter().any(|x| x == s) && summary.scenario(s).next().is_some();
    let scenario = *spec.scenarios.iter().find(|s| ran(s))?;
    let levels = summary.levels(scenario);
    let (level, wanted) = match spec.level {
        Level::At(wanted) => (nearest(&levels, wanted)?, wanted),
        Level::Highest => (*levels.last()?, *levels.last()?),
    };
    let sides = [BLOCKING, EVENT_LOOP].map(|model| contender(summary, spec, scenario, model, level));
    let comparison = match &sides {
        [Ok(a), Ok(b)] => Some(Comparison::paired(a, b, spec.rule)),
        _ => None,
    };
    Some(Draft { spec, scenario: scenario.to_string(), level, wanted, sides, comparison })
}

/// The level of `levels` closest to `wanted` (the higher of two as close).
fn nearest(levels: &[u64], wanted: u64) -> Option<u64> {
    levels.iter().copied().min_by_key(|&l| (l.abs_diff(wanted), std::cmp::Reverse(l)))
}

/// One side of a row, or why it has none.
fn contender(summary: &Summary, spec: &Spec, scenario: &str, model: &str, level: u64) -> Result<Contender, String> {
    match spec.source {
        Source::Runs(metric) => {
            let cell = summary.cell(scenario, model, level).ok_or(format!("{model} not in this sweep"))?;
            let figure = Compared { name: spec.key, metric, fmt: crate::fmt::num, rule: spec.rule };
            Contender::of(&cell, &figure).ok_or_else(|| match cell.ok_runs().next() {
                None => format!("{model} failed ({})", cell.failure_text()),
                Some(_) => format!("{model} did not measure it"),
            })
        }
        Source::Knee => knee_contender(summary, scenario, model, level),
    }
}

/// Each pass's own knee of `model` at `level`: a knee the ladder found
/// only a lower bound for ("≥ X": the load generator's limit or the top
/// of the ladder) can neither win nor lose, as a loadgen-saturated
/// throughput.
fn knee_contender(summary: &Summary, scenario: &str, model: &str, level: u64) -> Result<Contender, String> {
    if summary.rungs(scenario, model, level).is_empty() {
        return Err(format!("{model} not in this sweep"));
    }
    let slo = ladder::slo_of(summary);
    let mut passes = Vec::new();
    let mut bound = false;
    for pass in summary.passes() {
        let one = summary.pass(pass);
        let (c, at_least) = match ladder::knee_of(&one, scenario, model, level, slo) {
            Some(Knee::At(c)) => (c, false),
            Some(Knee::AtLeast(c, _)) => (c, true),
            _ => continue,
        };
        bound |= at_least;
        passes.extend(c.offered_rps.map(|r| (pass, r)));
    }
    let values: Vec<f64> = passes.iter().map(|&(_, v)| v).collect();
    let spread = Spread::of(&values).ok_or(format!("{model} sustained not even the lowest rung"))?;
    Ok(Contender { model: model.to_string(), spread, passes, loadgen_saturated: bound })
}

/// The finished row of a corrected draft.
fn row(summary: &Summary, d: Draft) -> Row {
    let side = |c: &Result<Contender, String>| {
        let Contender { model, spread: s, .. } = c.as_ref().ok()?;
        Some(Side { model: model.clone(), median: s.median, min: s.min, max: s.max, n: s.n })
    };
    let (blocking, event_loop) = (side(&d.sides[0]), side(&d.sides[1]));
    let ratio = match (&blocking, &event_loop) {
        (Some(a), Some(b)) if b.median != 0.0 => Some(a.median / b.median),
        _ => None,
    };
    let call = match (&d.comparison, &d.sides) {
        (Some(c), _) => call_of(c, summary.passes().len()),
        (None, [Err(why), _] | [_, Err(why)]) => Call::NotJudged { why: why.clone() },
        (None, _) => Call::NotJudged { why: "no comparison".into() },
    };
    let agrees_with_argument = match (&call, d.spec.expected) {
        // Not judged, or a tie by rule (a lower bound): it cannot tell.
        (Call::NotJudged { .. } | Call::Tie { why: Some(_), .. }, _) => None,
        (Call::Ahead { model, .. }, Expected::EventLoopAhead) => Some(model == EVENT_LOOP),
        // No difference shown is not a difference against the argument.
        (Call::Tie { .. }, Expected::EventLoopAhead) => None,
        (Call::Tie { .. }, Expected::Tie) => Some(true),
        // The counter-finding is that light load erases the large factors;
        // a difference shown but within EQUIVALENT still bears it out.
        (Call::Ahead { by, .. }, Expected::Tie) => Some(*by <= EQUIVALENT),
    };
    Row {
        key: d.spec.key.into(),
        figure: d.spec.figure.into(),
        label: d.spec.label.into(),
        unit: d.spec.unit.into(),
        scenario: d.scenario,
        level: d.level,
        wanted_level: d.wanted,
        blocking,
        event_loop,
        ratio,
        call,
        expected: d.spec.expected,
        agrees_with_argument,
        reference: None,
    }
}

/// The call of a corrected comparison (blocking is its `a`).
fn call_of(c: &Comparison, passes: usize) -> Call {
    if passes < 2 {
        return Call::NotJudged { why: "one pass".into() };
    }
    match c.verdict {
        Verdict::Excused => Call::Tie {
            p_adjusted: None,
            why: Some("a lower bound (the load generator's limit, or the ladder's top)".into()),
        },
        Verdict::TooFew { pairs } => Call::NotJudged {
            why: format!(
                "{pairs} passes measured both sides above zero (a pass where one side measured none has no log ratio); a test needs {}",
                crate::stats::MIN_PAIRS
            ),
        },
        Verdict::Tested { test, p_adjusted } => {
            let by = test.ratio.max(1.0 / test.ratio);
            match c.order_of(EVENT_LOOP) {
                Order::Ahead => Call::Ahead { model: EVENT_LOOP.into(), by, p_adjusted },
                Order::Behind => Call::Ahead { model: BLOCKING.into(), by, p_adjusted },
                _ => Call::Tie { p_adjusted: Some(p_adjusted), why: None },
            }
        }
    }
}

/// Where the reference's verdict is looked for: the sweep's sibling
/// `reference/`, then `results/reference` under the git checkout of the
/// current directory.
fn reference_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.join("..").join("reference")];
    let top = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--show-toplevel"]).output();
    if let Some(out) = top.ok().filter(|o| o.status.success()) {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("results").join("reference"));
    }
    dirs
}

/// Set `headline` (of the sweep in `dir`) beside the reference's verdict:
/// per row, the same call or how it differs.
pub fn compare_with_reference(headline: &mut Headline, dir: &Path) {
    let dirs = reference_dirs(dir);
    let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
    if dirs.iter().any(|r| same(r, dir)) {
        headline.reference = Reference::IsReference;
        return;
    }
    let Some(found) = dirs.iter().find(|d| d.join(FILE).exists()) else {
        let looked: Vec<String> = dirs.iter().map(|d| d.join(FILE).display().to_string()).collect();
        headline.reference = Reference::Missing { why: format!("no reference verdict at {}", looked.join(" or ")) };
        return;
    };
    headline.reference = match Headline::load(found) {
        Ok(reference) => {
            set_against(headline, &reference);
            Reference::Compared { path: found.join(FILE).display().to_string(), run_id: reference.run_id }
        }
        Err(e) => Reference::Missing { why: format!("{e:#}") },
    };
}

/// Each row against the reference's row of the same key.
pub fn set_against(headline: &mut Headline, reference: &Headline) {
    for row in &mut headline.rows {
        let Some(theirs) = reference.rows.iter().find(|r| r.key == row.key) else { continue };
        // Different scenarios (the budgeted knee here, the unbudgeted there)
        // measure different things: set side by side, not compared.
        let agrees = row.call.same_as(&theirs.call).filter(|_| theirs.scenario == row.scenario);
        let mut how = match agrees {
            Some(true) => "agrees".to_string(),
            Some(false) => format!("{} here, {} in the reference", row.call.short(), theirs.call.short()),
            None => format!(
                "not compared: {} here, {} in the reference{}",
                row.call.short(),
                theirs.call.short(),
                direction(row.ratio, theirs.ratio)
            ),
        };
        if theirs.scenario != row.scenario {
            how.push_str(&format!(" ({} here, {} in the reference)", row.scenario, theirs.scenario));
        }
        if theirs.level != row.level {
            how.push_str(&format!(" ({} conns here, {} in the reference)", row.level, theirs.level));
        }
        row.reference =
            Some(Against { call: theirs.call.clone(), ratio: theirs.ratio, level: theirs.level, agrees, how });
    }
}

/// Where a row is not judged, which way its ratio points beside the
/// reference's: a description, not a verdict (one pass has no spread to
/// judge by), so that a `--quick` sweep still says whether it leans the
/// reference's way.
fn direction(here: Option<f64>, there: Option<f64>) -> String {
    let (Some(here), Some(there)) = (here, there) else { return String::new() };
    let way = if (here > 1.0) == (there > 1.0) { "the same way" } else { "the other way" };
    format!("; ratio {}× here, {}× there: {way}", crate::fmt::num(here), crate::fmt::num(there))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::sweep::RunStatus;
    use crate::testdata;

    /// thread-per-conn and mio-single in echo-saturate and echo-paced at
    /// 200 and 1000 connections over `passes` passes; thread-per-conn's
    /// voluntary switches per request `cs_ratio` times mio-single's, each
    /// pass's values scaled by `noise[pass - 1]` for thread-per-conn.
    fn sweep(passes: u32, cs_ratio: f64, noise: &[f64]) -> Summary {
        let mut records = Vec::new();
        for pass in 1..=passes {
            for scenario in ["echo-saturate", "echo-paced"] {
                for model in [BLOCKING, EVENT_LOOP] {
                    for level in [200, 1000] {
                        let mut r = testdata::record_of_pass(scenario, model, level, 20_000.0, pass);
                        let s = r.result.as_mut().and_then(|x| x.server.as_mut()).unwrap();
                        let base = 0.1 * testdata::pass_factor(pass);
                        s.voluntary_cs_per_req = match model {
                            BLOCKING => base * cs_ratio * noise[pass as usize - 1],
                            _ => base,
                        };
                        // The rows judge all switches: none involuntary here.
                        s.involuntary_cs_per_req = 0.0;
                        records.push(r);
                    }
                }
            }
        }
        Summary {
            run_id: "test".into(),
            scenarios: vec!["echo-saturate".into(), "echo-paced".into()],
            models: vec![BLOCKING.into(), EVENT_LOOP.into()],
            repeats: passes,
            records,
            floor_pair_cpu_us: None,
            slo_us: None,
        }
    }

    fn row<'a>(h: &'a Headline, key: &str) -> &'a Row {
        h.rows.iter().find(|r| r.key == key).unwrap_or_else(|| panic!("no row {key}: {h:?}"))
    }

    #[test]
    fn a_clear_difference_over_five_passes_is_ahead() {
        let h = headline(&sweep(5, 10.0, &[1.0, 1.02, 0.98, 1.01, 0.99]));
        let cs = row(&h, "cs-full-load");
        let Call::Ahead { model, by, p_adjusted } = &cs.call else { panic!("{cs:?}") };
        assert_eq!(model, EVENT_LOOP);
        assert!((*by - 10.0).abs() < 0.3 && *p_adjusted < 0.05, "{cs:?}");
        assert_eq!(cs.agrees_with_argument, Some(true));
        assert_eq!((cs.blocking.as_ref().unwrap().n, cs.event_loop.as_ref().unwrap().n), (5, 5));
        assert!((cs.ratio.unwrap() - 10.0).abs() < 0.3);
        // The light-load row expects a tie: mio-single ahead there disagrees.
        assert_eq!(row(&h, "cs-light-load").agrees_with_argument, Some(false));
        assert_eq!(h.family_error_rate, 0.05);
    }

    #[test]
    fn overlapping_noise_is_a_tie() {
        let h = headline(&sweep(5, 1.0, &[1.2, 0.85, 1.15, 0.9, 1.05]));
        let cs = row(&h, "cs-full-load");
        assert!(matches!(cs.call, Call::Tie { p_adjusted: Some(p), .. } if p > 0.05), "{cs:?}");
        assert_eq!(cs.agrees_with_argument, None, "a tie does not show the event loop behind");
        assert_eq!(row(&h, "cs-light-load").agrees_with_argument, Some(true));
    }

    #[test]
    fn a_light_load_difference_within_ten_percent_still_bears_out_the_counter_finding() {
        // 3% more context switches, steady over 5 passes: shown, but small.
        let h = headline(&sweep(5, 1.03, &[1.0, 1.001, 0.999, 1.0005, 0.9995]));
        let light = row(&h, "cs-light-load");
        assert!(matches!(&light.call, Call::Ahead { model, .. } if model == EVENT_LOOP), "{light:?}");
        assert_eq!(light.agrees_with_argument, Some(true), "within {EQUIVALENT}×: {light:?}");
        // A row of another scenario in the reference is set beside it, not compared.
        let mut reference = h.clone();
        reference.rows.iter_mut().for_each(|r| r.scenario = format!("{}-elsewhere", r.scenario));
        let mut here = h.clone();
        set_against(&mut here, &reference);
        let against = row(&here, "cs-light-load").reference.as_ref().unwrap();
        assert_eq!(against.agrees, None, "{against:?}");
        assert!(against.how.contains("(echo-paced here, echo-paced-elsewhere in the reference)"), "{}", against.how);
    }

    #[test]
    fn passes_in_which_the_event_loop_switched_not_at_all_are_named_not_counted() {
        let mut s = sweep(5, 10.0, &[1.0; 5]);
        for r in s.records.iter_mut().filter(|r| r.model == EVENT_LOOP && r.repeat <= 3) {
            let server = r.result.as_mut().and_then(|x| x.server.as_mut()).unwrap();
            (server.voluntary_cs_per_req, server.involuntary_cs_per_req) = (0.0, 0.0);
        }
        let h = headline(&s);
        let cs = row(&h, "cs-full-load");
        assert!(
            matches!(&cs.call, Call::NotJudged { why } if why.starts_with("2 passes measured both sides above zero")),
            "{:?}",
            cs.call
        );
    }

    #[test]
    fn one_pass_is_not_judged() {
        let h = headline(&sweep(1, 10.0, &[1.0]));
        let cs = row(&h, "cs-full-load");
        assert_eq!(cs.call, Call::NotJudged { why: "one pass".into() });
        assert_eq!(cs.agrees_with_argument, None);
        let h = headline(&sweep(2, 10.0, &[1.0, 1.0]));
        assert!(matches!(&row(&h, "cs-full-load").call, Call::NotJudged { why } if why.contains("a test needs 3")));
    }

    #[test]
    fn the_nearest_level_stands_in_and_is_named() {
        let h = headline(&sweep(3, 10.0, &[1.0, 1.0, 1.0]));
        let cpu = row(&h, "cpu-server-full-load");
        assert_eq!((cpu.level, cpu.wanted_level), (1000, 5000), "a quick sweep's 1000 for 5000");
        assert_eq!((row(&h, "cs-full-load").level, row(&h, "cs-full-load").wanted_level), (1000, 1000));
        assert_eq!(row(&h, "threads").level, 1000, "the highest level");
        assert_eq!(nearest(&[200, 1000], 600), Some(1000), "as close: the higher");
        // The knee and head-of-line did not run: left out, and named.
        assert!(h.rows.iter().all(|r| r.key != "knee" && r.key != "head-of-line"));
        assert_eq!(h.not_in_sweep.len(), 2, "{:?}", h.not_in_sweep);
        assert!(h.not_in_sweep[0].starts_with("knee") && h.not_in_sweep[1].starts_with("head-of-line"));
    }

    #[test]
    fn a_failed_side_is_not_judged_and_says_why() {
        let mut s = sweep(3, 10.0, &[1.0, 1.0, 1.0]);
        for r in s.records.iter_mut().filter(|r| r.model == BLOCKING && r.level == 1000) {
            r.status = RunStatus::Failed;
            r.failure = Some("the server crashed".into());
        }
        let h = headline(&s);
        let cs = row(&h, "cs-full-load");
        assert!(
            matches!(&cs.call, Call::NotJudged { why } if why.contains("thread-per-conn failed") && why.contains("crashed")),
            "{cs:?}"
        );
        assert!(cs.blocking.is_none() && cs.ratio.is_none());
        // mio-single alone in the sweep: the other side is missing.
        s.records.retain(|r| r.model == EVENT_LOOP);
        let h = headline(&s);
        assert!(
            matches!(&row(&h, "cs-full-load").call, Call::NotJudged { why } if why == "thread-per-conn not in this sweep")
        );
    }

    #[test]
    fn the_knee_and_head_of_line_rows_come_from_their_scenarios() {
        let h = headline(&testdata::knee_summary());
        let knee = row(&h, "knee");
        assert_eq!(knee.scenario, "knee");
        assert_eq!((knee.blocking.as_ref().unwrap().median, knee.event_loop.as_ref().unwrap().median), (20e3, 30e3));
        assert!(matches!(&knee.call, Call::NotJudged { why } if why == "one pass"), "{knee:?}");
        let h = headline(&testdata::multiplex_summary());
        let hol = row(&h, "head-of-line");
        assert_eq!((hol.level, hol.blocking.as_ref().unwrap().median, hol.ratio), (200, 9000.0, Some(30.0)));
    }

    #[test]
    fn rows_are_set_beside_the_reference() {
        let here = headline(&sweep(5, 1.0, &[1.2, 0.85, 1.15, 0.9, 1.05]));
        let reference = headline(&sweep(5, 10.0, &[1.0, 1.02, 0.98, 1.01, 0.99]));
        let mut h = here.clone();
        set_against(&mut h, &reference);
        let cs = row(&h, "cs-full-load").reference.as_ref().unwrap();
        assert_eq!(cs.agrees, Some(false));
        assert_eq!(cs.how, "tie here, mio-single ahead in the reference");
        assert!((cs.ratio.unwrap() - 10.0).abs() < 0.3);
        let mut same = reference.clone();
        set_against(&mut same, &reference);
        let against = |r: &Row| r.reference.clone().unwrap();
        assert!(same.rows.iter().all(|r| against(r).how == "agrees" || against(r).agrees.is_none()));
        assert_eq!(row(&same, "cs-full-load").reference.as_ref().unwrap().agrees, Some(true));
        // One pass judges nothing, but says which way it leans beside the reference.
        let mut quick = headline(&sweep(1, 10.0, &[1.0]));
        set_against(&mut quick, &reference);
        let cs = row(&quick, "cs-full-load").reference.as_ref().unwrap();
        assert_eq!(cs.agrees, None);
        assert!(cs.how.ends_with("ratio 10.0× here, 10.0× there: the same way"), "{}", cs.how);
        let mut other = headline(&sweep(1, 0.1, &[1.0]));
        set_against(&mut other, &reference);
        let cs = row(&other, "cs-full-load").reference.as_ref().unwrap();
        assert!(cs.how.ends_with("0.100× here, 10.0× there: the other way"), "{}", cs.how);
    }

    #[test]
    fn the_reference_is_found_beside_the_sweep_or_is_the_sweep() {
        let root = crate::testdata::scratch("verdict");
        let (mine, reference) = (root.join("mine"), root.join("reference"));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::create_dir_all(&reference).unwrap();
        let theirs = headline(&sweep(5, 10.0, &[1.0, 1.02, 0.98, 1.01, 0.99]));
        std::fs::write(reference.join(FILE), serde_json::to_vec(&theirs).unwrap()).unwrap();
        let mut h = headline(&sweep(3, 10.0, &[1.0, 1.0, 1.0]));
        compare_with_reference(&mut h, &mine);
        assert!(matches!(&h.reference, Reference::Compared { run_id, .. } if run_id == "test"), "{:?}", h.reference);
        assert!(row(&h, "cs-full-load").reference.is_some());
        compare_with_reference(&mut h, &reference);
        assert_eq!(h.reference, Reference::IsReference);
    }
}
