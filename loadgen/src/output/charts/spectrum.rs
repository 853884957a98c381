//! The latency percentile spectrum, HdrHistogram style: for every model at
//! the scenario's highest connection level, latency (log y) against the
//! percentile on a log 1/(1-p) axis, so the tail from 99% to 99.99% gets as
//! much room as 0% to 90%.
//!
//! The points come from the run's `.hgrm` file (the percentile distribution
//! `loadgen run --hgrm` writes), loose or in the sweep's archive
//! ([`crate::archive::Runs`]). Its values may be in microseconds or, as
//! wrk2 prints them, milliseconds; the unit is settled by comparing the
//! file's median with the run's `latency.p50` (µs). A run without an `.hgrm`
//! falls back to the six percentiles in its `RunResult`, and the chart says
//! so.

use super::draw::{Figure, Panel, Point, Series, Unit, XAxis};
use super::{color, failed_notes};
use crate::archive::Runs;
use crate::records::run::RunResult;
use crate::records::sweep::Summary;

/// The x axis ends at 99.999% at most.
const MAX_X: f64 = 5.0;

/// (percentile in 0..1, value as written) from an `.hgrm` text: every line
/// that starts with two numbers (`Value Percentile ...`); headers and `#`
/// footer lines are skipped.
pub fn parse_hgrm(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let value: f64 = words.next()?.parse().ok()?;
            let percentile: f64 = words.next()?.parse().ok()?;
            (0.0..=1.0).contains(&percentile).then_some((percentile, value))
        })
        .collect()
}

/// Scale `.hgrm` values to microseconds: ×1 or ×1000, whichever brings the
/// file's median closest to the run's p50.
pub fn to_micros(points: &[(f64, f64)], result: &RunResult) -> Vec<(f64, f64)> {
    let median = points.iter().find(|(p, _)| *p >= 0.5).map(|(_, v)| *v);
    let scale = match median {
        Some(m) if m > 0.0 && result.latency.p50 > 0 => {
            let target = result.latency.p50 as f64;
            if ((m * 1000.0) / target).ln().abs() < (m / target).ln().abs() {
                1000.0
            } else {
                1.0
            }
        }
        _ => 1.0,
    };
    points.iter().map(|(p, v)| (*p, v * scale)).collect()
}

/// The coarse spectrum a `RunResult` carries: p50 .. p99.99.
pub fn from_result(result: &RunResult) -> Vec<(f64, f64)> {
    let l = &result.latency;
    vec![
        (0.5, l.p50 as f64),
        (0.9, l.p90 as f64),
        (0.99, l.p99 as f64),
        (0.999, l.p999 as f64),
        (0.9999, l.p9999 as f64),
    ]
}

/// x position of percentile `p`: log10(1 / (1 - p)).
fn x_of(p: f64) -> f64 {
    if p >= 1.0 {
        f64::INFINITY
    } else {
        (1.0 / (1.0 - p)).log10()
    }
}

/// The percentile at x position `x`, for the hover: "p99.9".
fn percentile_at(x: f64) -> String {
    let p = format!("{:.4}", 100.0 * (1.0 - 10f64.powf(-x)));
    format!("p{}", p.trim_end_matches('0').trim_end_matches('.'))
}

/// The points of one spectrum: percentiles below 1 on this axis, values
/// above 0, one point per percentile.
fn line(spectrum: Vec<(f64, f64)>) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    // p = 1 (the maximum) lies at infinity on this axis: left out.
    for (p, v) in spectrum.into_iter().filter(|(p, v)| *p < 1.0 && x_of(*p) <= MAX_X && *v > 0.0) {
        let x = x_of(p);
        // Several lines may share a percentile: keep the last (highest value).
        if points.last().is_some_and(|q| (q.x - x).abs() < 1e-12) {
            points.pop();
        }
        points.push(Point::one(x, v));
    }
    points
}

pub fn figure(runs: &Runs, summary: &Summary, scenario: &str) -> Figure {
    let level = summary.levels(scenario).last().copied().unwrap_or(0);
    let mut notes: Vec<String> = Vec::new();
    let mut coarse: Vec<String> = Vec::new();
    let mut series = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    for model in summary.models_in(scenario) {
        let Some(cell) = summary.cell(scenario, &model, level) else { continue };
        if cell.loadgen_saturated() {
            bound.push(model.clone());
        }
        // One line per successful run, all in the model's colour: the
        // spread of the passes is the spread of the lines.
        for record in cell.ok_runs() {
            let result = record.result.as_ref().expect("an ok run has a result");
            let from_file = runs.read_to_string(&record.files.hgrm).ok().map(|t| parse_hgrm(&t));
            let spectrum = match from_file.filter(|s| !s.is_empty()) {
                Some(points) => to_micros(&points, result),
                None => {
                    if !coarse.contains(&model) {
                        coarse.push(model.clone());
                    }
                    from_result(result)
                }
            };
            series.push(Series { color: color(&model), name: model.clone(), points: line(spectrum) });
        }
    }
    let passes = summary.passes().len();
    if passes > 1 {
        notes.push(format!("One line per run: {passes} interleaved passes per model."));
    }
    if !coarse.is_empty() {
        notes.push(format!("No .hgrm file, drawn from the run's p50 to p99.99 only: {}", coarse.join(", ")));
    }
    notes.extend(failed_notes(summary, scenario).into_iter().filter(|n| n.contains(&format!(" {level}"))));
    if !bound.is_empty() {
        notes.push(format!("loadgen-saturated at this level (the load generator was the limit): {}", bound.join(", ")));
    }
    let ticks = [(0.5, "50%"), (0.9, "90%"), (0.99, "99%"), (0.999, "99.9%"), (0.9999, "99.99%"), (0.99999, "99.999%")];
    Figure {
        title: format!("{scenario}: latency by percentile at {level} connections"),
        x: XAxis {
            label: "percentile (log scale of 1/(1-p))".into(),
            log: false,
            ticks: ticks.iter().map(|(p, l)| (x_of(*p), l.to_string())).collect(),
            range: Some((0.0, MAX_X)),
            value: percentile_at,
        },
        panels: vec![Panel {
            title: "latency percentile spectrum".into(),
            y_label: "latency (log scale)".into(),
            y_unit: Unit::Micros,
            log_y: true,
            series,
        }],
        markers: false,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use std::path::Path;

    const WRK2_STYLE: &str = "       Value   Percentile   TotalCount 1/(1-Percentile)

       0.100 0.000000000000          1           1.00
       0.250 0.500000000000        500           2.00
       0.900 0.990000000000        990         100.00
       2.000 1.000000000000       1000
#[Mean    =        0.300, StdDeviation   =        0.100]
#[Max     =        2.000, Total count    =         1000]
";

    #[test]
    fn parses_hgrm_and_finds_its_unit() {
        let points = parse_hgrm(WRK2_STYLE);
        assert_eq!(points, vec![(0.0, 0.1), (0.5, 0.25), (0.99, 0.9), (1.0, 2.0)]);
        let mut result = testdata::result("tokio", 200, 1000.0);
        result.latency.p50 = 250; // µs: the file is in ms
        assert_eq!(to_micros(&points, &result)[1], (0.5, 250.0));
        result.latency.p50 = 0;
        assert_eq!(to_micros(&points, &result)[1], (0.5, 0.25));
    }

    #[test]
    fn percentiles_map_to_decades() {
        assert!((x_of(0.99) - 2.0).abs() < 1e-9);
        assert!((x_of(0.999) - 3.0).abs() < 1e-9);
        assert!(x_of(1.0).is_infinite());
        assert_eq!(percentile_at(x_of(0.999)), "p99.9");
        assert_eq!(percentile_at(x_of(0.5)), "p50");
    }

    #[test]
    fn falls_back_to_the_results_percentiles() {
        let summary = testdata::summary();
        let fig = figure(&Runs::open(Path::new("/nonexistent")).unwrap(), &summary, "echo-saturate");
        assert!(fig.title.contains("1000 connections"));
        // pool failed at 1000: not drawn, and noted.
        assert!(!fig.panels[0].series.iter().any(|s| s.name == "pool"));
        assert!(fig.notes.iter().any(|n| n.starts_with("pool: failed at 1000")), "{:?}", fig.notes);
        assert!(fig.notes.iter().any(|n| n.starts_with("No .hgrm file")), "{:?}", fig.notes);
        assert_eq!(fig.panels[0].series[0].points.len(), 5);
    }

    #[test]
    fn every_run_of_a_repeated_sweep_gets_its_line() {
        let summary = testdata::summary_repeated(3);
        let fig = figure(&Runs::open(Path::new("/nonexistent")).unwrap(), &summary, "echo-saturate");
        let tokio = fig.panels[0].series.iter().filter(|s| s.name == "tokio").count();
        assert_eq!(tokio, 3, "one line per pass");
        assert!(fig.notes.iter().any(|n| n.contains("3 interleaved passes")), "{:?}", fig.notes);
    }
}
