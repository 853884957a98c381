//! The sweep's charts, per scenario, in SVG and PNG under `charts/`:
//!
//! | file                       | shows                                                      |
//! |----------------------------|------------------------------------------------------------|
//! | `SCENARIO-throughput`      | requests/s vs connections                                  |
//! | `SCENARIO-latency`         | p50, p99 and p99.9 vs connections (log y)                  |
//! | `SCENARIO-context-switches`| voluntary and involuntary switches per request (log y)    |
//! | `SCENARIO-cpu`             | server CPU µs per request (user + sys)                     |
//! | `SCENARIO-cpu-attribution` | CPU µs per request: server, load generator, both together  |
//! | `SCENARIO-cpu-softirq`     | softirq share of busy time per side; all CPUs' busy µs/req |
//! | `SCENARIO-memory`          | server RSS and threads vs connections                      |
//! | `SCENARIO-spectrum`        | latency percentile spectrum of every model at the top level|
//!
//! A scenario that ran a ladder of offered rates (`knee`) has the charts of
//! [`knee`] instead: latency and achieved rate against the offered rate. A
//! scenario that mixed ECHO with DELAY (`multiplex`) has one more,
//! [`multiplex`]'s `SCENARIO-echo-vs-delay`: ECHO's own latency beside the
//! DELAY's length.
//!
//! Every chart is drawn from a [`Summary`] plus the per-run `.hgrm` files, so
//! `loadgen report` can redraw them from saved results. A point is the
//! median of a cell's successful runs (the passes of `--repeat`), with an
//! error bar from their smallest to their largest value: the spread, not a
//! verdict (whether two models differ is the tables' paired test,
//! [`crate::sweep::cells`]). Failed runs are left out and named
//! in a note under the plot; cells where the load generator was the limit
//! in some run are drawn hollow.

pub mod attribution;
pub mod breakdown;
pub mod draw;
pub mod knee;
pub mod multiplex;
pub mod spectrum;

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::style::RGBColor;

use crate::archive::Runs;
use crate::records::run::RunResult;
use crate::records::sweep::Summary;
use crate::sweep::cells::Outcome;
use draw::{Figure, Panel, Point, Series, Unit, XAxis};

/// A figure of a run's result, drawn as a point where the run measured it.
pub type Metric = fn(&RunResult) -> Option<f64>;

/// Each model keeps its colour in every chart ([`crate::models::color`]).
pub fn color(model: &str) -> RGBColor {
    let (r, g, b) = crate::models::color(model);
    RGBColor(r, g, b)
}

/// Draw every chart of every scenario into `DIR/charts/`; returns the files.
pub fn draw_all(dir: &Path, summary: &Summary) -> anyhow::Result<Vec<PathBuf>> {
    let out = dir.join("charts");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let runs = Runs::open(dir)?;
    let mut files = Vec::new();
    for scenario in &summary.scenarios {
        for (name, figure) in scenario_figures(&runs, summary, scenario) {
            files.extend(draw::render(&out.join(format!("{scenario}-{name}")), &figure)?);
        }
    }
    Ok(files)
}

/// Every figure of one scenario, by file name suffix: a ladder's knee
/// charts, or the charts against connections (and, for a mix of ECHO and
/// DELAY, ECHO's latency against the DELAY's length).
pub fn scenario_figures(runs: &Runs, summary: &Summary, scenario: &str) -> Vec<(String, Figure)> {
    if summary.is_ladder(scenario) {
        return knee::figures(summary, scenario);
    }
    let mut all: Vec<(String, Figure)> =
        figures(runs, summary, scenario).into_iter().map(|(n, f)| (n.to_string(), f)).collect();
    all.extend(multiplex::figures(summary, scenario));
    all
}

/// A panel of a chart against connections, as data: its title, its y
/// axis's label, unit and scale (log or not), and the figure it draws.
pub type PanelSpec = (&'static str, &'static str, Unit, bool, Metric);

/// A chart against connections, as data: its file name suffix, what it
/// shows (its title), and its panels.
pub type ChartSpec = (&'static str, &'static str, &'static [PanelSpec]);

const LATENCY: &str = "latency (log scale)";
const SWITCHES: &str = "switches per request (log scale)";

/// The charts of every scenario against connections, one line a panel
/// ([`attribution::CHARTS`] adds two more).
const CHARTS: [ChartSpec; 5] = [
    (
        "throughput",
        "throughput",
        &[("throughput", "requests/s (answered OK)", Unit::Plain, false, |x| Some(x.throughput_rps))],
    ),
    (
        "latency",
        "latency",
        &[
            ("p50", LATENCY, Unit::Micros, true, |x| Some(x.latency.p50 as f64)),
            ("p99", LATENCY, Unit::Micros, true, |x| Some(x.latency.p99 as f64)),
            ("p99.9", LATENCY, Unit::Micros, true, |x| Some(x.latency.p999 as f64)),
        ],
    ),
    (
        "context-switches",
        "server context switches per request",
        &[
            ("voluntary (blocked)", SWITCHES, Unit::Plain, true, |x| Some(x.server.as_ref()?.voluntary_cs_per_req)),
            ("involuntary (preempted)", SWITCHES, Unit::Plain, true, |x| {
                Some(x.server.as_ref()?.involuntary_cs_per_req)
            }),
        ],
    ),
    (
        "cpu",
        "server CPU per request",
        &[("user + sys", "server CPU µs per request", Unit::Plain, false, |x| {
            Some(x.server.as_ref()?.cpu_us_per_req)
        })],
    ),
    (
        "memory",
        "server memory and threads",
        &[
            ("resident memory (end of window)", "RSS (MiB)", Unit::Plain, false, |x| {
                Some(x.server.as_ref()?.rss_bytes as f64 / (1u64 << 20) as f64)
            }),
            ("threads (end of window)", "threads (log scale)", Unit::Plain, true, |x| {
                Some(x.server.as_ref()?.threads as f64)
            }),
        ],
    ),
];

/// The figures of one scenario against connections, by file name suffix:
/// [`CHARTS`], the latency spectrum, and [`attribution::CHARTS`].
pub fn figures(runs: &Runs, summary: &Summary, scenario: &str) -> Vec<(&'static str, Figure)> {
    let x = XAxis::connections(&summary.levels(scenario));
    let chart = |&(name, what, panels): &ChartSpec| {
        let panels = panels.iter().map(|spec| panel(summary, scenario, spec)).collect();
        (name, against_connections(summary, scenario, &x, what, panels))
    };
    let mut figures: Vec<(&str, Figure)> = CHARTS.iter().map(chart).collect();
    figures.push(("spectrum", spectrum::figure(runs, summary, scenario)));
    figures.extend(attribution::CHARTS.iter().map(chart));
    figures
}

/// One panel: a series per model, a point per level where its runs
/// measured the figure.
fn panel(summary: &Summary, scenario: &str, &(title, y_label, y_unit, log_y, metric): &PanelSpec) -> Panel {
    let series = model_series(summary, scenario, |model| {
        summary
            .levels(scenario)
            .into_iter()
            .filter_map(|level| summary.cell(scenario, model, level))
            .filter_map(|c| {
                let spread = c.spread(|r| r.result.as_ref().and_then(metric))?;
                Some(Point::of(c.level as f64, spread, c.loadgen_saturated()))
            })
            .collect()
    });
    Panel { title: title.into(), y_label: y_label.into(), y_unit, log_y, series }
}

/// One series per model of `scenario`, in its colour: `points(model)`.
pub(crate) fn model_series(summary: &Summary, scenario: &str, points: impl Fn(&str) -> Vec<Point>) -> Vec<Series> {
    summary
        .models_in(scenario)
        .into_iter()
        .map(|model| Series { color: color(&model), points: points(&model), name: model })
        .collect()
}

/// A figure of `scenario` whose panels are drawn against the connection
/// count, with the notes its panels need (failed runs, loadgen-saturated points).
pub(crate) fn against_connections(
    summary: &Summary,
    scenario: &str,
    x: &XAxis,
    what: &str,
    panels: Vec<Panel>,
) -> Figure {
    Figure {
        title: format!("{scenario}: {what} vs connections"),
        x: x.clone(),
        notes: notes(summary, scenario, &panels),
        panels,
        markers: true,
    }
}

/// How many passes a point is the median of, "pool: failed at 2000, 5000
/// (not shown)" per model with failures, and a word on zeros that a log
/// scale cannot show.
fn notes(summary: &Summary, scenario: &str, panels: &[Panel]) -> Vec<String> {
    let mut notes = Vec::new();
    let passes = summary.passes().len();
    if passes > 1 {
        notes.push(format!(
            "Each point: the median of {passes} interleaved runs; its bar: their min–max. Which model is ahead: \
             tables.md (paired by pass)."
        ));
    }
    notes.extend(failed_notes(summary, scenario));
    let zeros = panels.iter().filter(|p| p.log_y).flat_map(|p| &p.series).flat_map(|s| &s.points).any(|p| p.y <= 0.0);
    if zeros {
        notes.push("Values of 0 cannot be drawn on a log scale and are left out.".into());
    }
    notes
}

/// Per model: the levels where every run failed (not drawn), and those
/// where some did (drawn from the others).
pub(crate) fn failed_notes(summary: &Summary, scenario: &str) -> Vec<String> {
    let mut notes = Vec::new();
    for model in summary.models_in(scenario) {
        let cells: Vec<_> = summary.cells(scenario).into_iter().filter(|c| c.model == model).collect();
        // A cell that failed as its model is designed to (pool past its
        // workers) is said so, apart from the real failures.
        let levels = |designed: bool| -> Vec<String> {
            let failed = cells.iter().filter(|c| c.outcome() == Outcome::Failed);
            failed.filter(|c| c.as_designed().is_some() == designed).map(|c| c.level.to_string()).collect()
        };
        let (designed, failed) = (levels(true), levels(false));
        if !designed.is_empty() {
            notes.push(format!("{model}: starved, as designed, at {} connections (not shown)", designed.join(", ")));
        }
        if !failed.is_empty() {
            notes.push(format!("{model}: failed at {} connections (not shown)", failed.join(", ")));
        }
        for c in &cells {
            if let Outcome::Partly { failed } = c.outcome() {
                notes.push(format!(
                    "{model}: {failed} of {} runs failed at {} connections (drawn from the others)",
                    c.runs.len(),
                    c.level
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    /// The figures of `summary`'s echo-saturate against connections, with no run's files.
    pub(super) fn echo_saturate(summary: &Summary) -> Vec<(&'static str, Figure)> {
        figures(&Runs::open(Path::new("/nonexistent")).unwrap(), summary, "echo-saturate")
    }

    #[test]
    fn failed_points_are_left_out_and_noted() {
        let summary = testdata::summary();
        let figs = echo_saturate(&summary);
        let (_, throughput) = figs.iter().find(|(n, _)| *n == "throughput").unwrap();
        let pool = throughput.panels[0].series.iter().find(|s| s.name == "pool").unwrap();
        assert_eq!(pool.points.iter().map(|p| p.x).collect::<Vec<_>>(), vec![200.0, 500.0]);
        assert!(
            throughput.notes.iter().any(|n| n == "pool: failed at 1000 connections (not shown)"),
            "{:?}",
            throughput.notes
        );
        let single = throughput.panels[0].series.iter().find(|s| s.name == "mio-single").unwrap();
        assert!(single.points[0].hollow && !single.points[1].hollow);
        assert_eq!(single.points[0].range, None, "one run: no bar");
    }

    #[test]
    fn points_are_medians_with_their_range() {
        let mut summary = testdata::summary_repeated(3);
        let run = summary.records.iter_mut().find(|r| r.model == "tokio" && r.level == 500 && r.repeat == 1).unwrap();
        run.status = crate::records::sweep::RunStatus::Failed;
        let figs = echo_saturate(&summary);
        let (_, throughput) = figs.iter().find(|(n, _)| *n == "throughput").unwrap();
        let multi = throughput.panels[0].series.iter().find(|s| s.name == "mio-multi").unwrap();
        // Passes at 1, 1.02 and 0.98 × 20,000 req/s.
        assert_eq!(
            multi.points[0],
            Point { x: 200.0, y: 20_000.0, range: Some((19_600.0, 20_400.0)), hollow: false, n: 3 }
        );
        let tokio = throughput.panels[0].series.iter().find(|s| s.name == "tokio").unwrap();
        assert_eq!(tokio.points[1].range, Some((17_000.0 * 0.98, 17_000.0 * 1.02)), "from the two runs left");
        assert!(throughput.notes.iter().any(|n| n.contains("median of 3 interleaved runs")), "{:?}", throughput.notes);
        assert!(
            throughput
                .notes
                .iter()
                .any(|n| n == "tokio: 1 of 3 runs failed at 500 connections (drawn from the others)"),
            "{:?}",
            throughput.notes
        );
    }

    #[test]
    fn draws_every_chart_as_svg_and_png() {
        let dir = testdata::scratch("charts");
        let summary = testdata::summary();
        let files = draw_all(&dir, &summary).unwrap();
        assert_eq!(files.len(), 2 * 8 * 2, "{files:?}");
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            if f.extension().unwrap() == "png" {
                assert_eq!(&bytes[1..4], b"PNG", "{}", f.display());
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.starts_with("<svg") && text.contains("<text"), "{}", f.display());
            }
        }
        let svg = std::fs::read_to_string(dir.join("charts/echo-saturate-throughput.svg")).unwrap();
        for word in
            ["echo-saturate: throughput vs connections", "requests/s", "mio-multi", "loadgen-saturated", "pool: failed"]
        {
            assert!(svg.contains(word), "no {word:?} in the SVG");
        }
    }
}
