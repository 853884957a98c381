//! The knee charts, for a scenario that ran a ladder of offered rates
//! (`knee`), one pair per connection level, the offered rate on the x axis:
//!
//! | file                     | shows                                                             |
//! |--------------------------|-------------------------------------------------------------------|
//! | `knee-latency-cLEVEL`    | p50, p99, p99.9 against offered rate (log y), the SLO drawn grey  |
//! | `knee-throughput-cLEVEL` | achieved against offered rate, the offered rate itself drawn grey |
//!
//! The hockey stick: latency stays flat while a model keeps up, then climbs
//! steeply at its knee, where requests start to queue. Every rung that
//! measured something is drawn, failed ones too: past its knee a model
//! cannot take the offered rate and `loadgen run` fails the run, and that
//! rising latency is the point of the chart. The notes name those rungs and
//! each model's knee (see [`crate::sweep::ladder`]). With `--repeat`, a point
//! is the median of the rung's runs and its bar their min–max. Hollow
//! markers: the load generator was the limit in a run of that rung.

use super::draw::{fmt_value, nice_step, Figure, Panel, Point, Series, Unit, XAxis};
use crate::fmt::us;
use crate::records::run::RunResult;
use crate::records::sweep::{RunStatus, Summary};
use crate::sweep::cells::Cell;
use crate::sweep::ladder;

/// The figures of a ladder scenario, by file name suffix.
pub fn figures(summary: &Summary, scenario: &str) -> Vec<(String, Figure)> {
    let slo = ladder::slo_of(summary);
    let mut out = Vec::new();
    for level in summary.levels(scenario) {
        let rates: Vec<f64> =
            summary.scenario(scenario).filter(|r| r.level == level).filter_map(|r| r.offered_rps).collect();
        let x = rate_axis(&rates);
        let span = (rates.iter().copied().fold(f64::INFINITY, f64::min), rates.iter().copied().fold(0.0, f64::max));
        let p = |title: &'static str, metric: fn(&RunResult) -> f64| {
            let mut panel = panel(summary, scenario, level, (title, "latency (log scale)", Unit::Micros, true, metric));
            panel.series.push(Series::reference(format!("SLO {}", us(slo)), span, |_| slo as f64));
            panel
        };
        let figure = |kind: &str, what: &str, panels: Vec<Panel>, notes: Vec<String>| {
            let title = format!("{scenario}: {what} vs offered rate at {level} connections");
            (format!("{kind}-c{level}"), Figure { title, x: x.clone(), panels, markers: true, notes })
        };
        let latency = vec![
            p("p50", |x| x.latency.p50 as f64),
            p("p99", |x| x.latency.p99 as f64),
            p("p99.9", |x| x.latency.p999 as f64),
        ];
        let mut notes = rung_notes(summary, scenario, level);
        notes.push(knee_note(summary, scenario, level, slo));
        out.push(figure("latency", "latency", latency, notes));
        let mut achieved = panel(
            summary,
            scenario,
            level,
            ("achieved", "requests/s answered OK", Unit::Plain, false, |x| x.throughput_rps),
        );
        achieved.series.push(Series::reference("offered".into(), span, |x| x));
        out.push(figure("throughput", "achieved", vec![achieved], rung_notes(summary, scenario, level)));
    }
    out
}

/// Offered rate, linear, ticks at round steps from 0.
fn rate_axis(rates: &[f64]) -> XAxis {
    let top = rates.iter().copied().fold(0.0, f64::max).max(1.0);
    let step = nice_step(top / 6.0);
    let ticks = (0..).map(|i| i as f64 * step).take_while(|v| *v <= top * 1.04).map(|v| (v, fmt_value(v, Unit::Plain)));
    XAxis {
        label: "offered rate (requests/s, all connections)".into(),
        log: false,
        ticks: ticks.collect(),
        range: Some((0.0, top * 1.05)),
        value: |x| format!("{} req/s offered", fmt_value(x, Unit::Plain)),
    }
}

/// A panel of rungs, as data: its title, its y axis's label, unit and
/// scale (log or not), and the figure it draws.
type RungPanel = (&'static str, &'static str, Unit, bool, fn(&RunResult) -> f64);

/// One line per model: `metric` of every rung at `level` that has a result.
fn panel(summary: &Summary, scenario: &str, level: u64, (title, y_label, y_unit, log_y, metric): RungPanel) -> Panel {
    let series = super::model_series(summary, scenario, |model| {
        summary
            .rungs(scenario, model, level)
            .into_iter()
            .filter_map(|c| {
                let hollow = c.runs.iter().any(|r| r.loadgen_saturated);
                Some(Point::of(c.offered_rps?, ladder::measured(&c, metric)?, hollow))
            })
            .filter(|p| !log_y || p.y > 0.0)
            .collect()
    });
    Panel { title: title.into(), y_label: y_label.into(), y_unit, log_y, series }
}

/// "thread-per-conn: failed at 30k, 40k req/s, drawn as measured", and the
/// rungs with nothing to draw.
fn rung_notes(summary: &Summary, scenario: &str, level: u64) -> Vec<String> {
    let rate = |c: &Cell| fmt_value(c.offered_rps.unwrap_or(0.0), Unit::Plain);
    let mut notes = Vec::new();
    for model in summary.models_in(scenario) {
        let rungs = summary.rungs(scenario, &model, level);
        let failed_measured = |c: &&Cell| c.runs.iter().any(|r| r.status == RunStatus::Failed && r.result.is_some());
        let failed: Vec<String> = rungs.iter().filter(failed_measured).map(rate).collect();
        let empty: Vec<String> = rungs.iter().filter(|c| c.runs.iter().all(|r| r.result.is_none())).map(rate).collect();
        if !failed.is_empty() {
            notes.push(format!("{model}: the run failed at {} req/s (drawn as measured)", failed.join(", ")));
        }
        if !empty.is_empty() {
            notes.push(format!("{model}: nothing measured at {} req/s (not shown)", empty.join(", ")));
        }
    }
    notes
}

/// "knee (≥ 99% answered, p99 ≤ 10 ms): mio-single ≥ 60,000 (top of the ladder); ..."
fn knee_note(summary: &Summary, scenario: &str, level: u64, slo: u64) -> String {
    let knees: Vec<String> = summary
        .models_in(scenario)
        .into_iter()
        .filter_map(|m| Some(format!("{m} {}", ladder::knee_of(summary, scenario, &m, level, slo)?.describe())))
        .collect();
    format!("Knee (≥ {:.0}% answered, p99 ≤ {}): {}", 100.0 * ladder::ACHIEVED_SHARE, us(slo), knees.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn one_latency_and_one_throughput_chart_per_level() {
        let summary = testdata::knee_summary();
        let figs = figures(&summary, "knee");
        let names: Vec<&str> = figs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["latency-c1000", "throughput-c1000", "latency-c5000", "throughput-c5000"]);
        let (_, latency) = &figs[0];
        let p99 = &latency.panels[1];
        let tpc = p99.series.iter().find(|s| s.name == "thread-per-conn").unwrap();
        assert_eq!(tpc.points.iter().map(|p| p.x).collect::<Vec<_>>(), [10_000.0, 20_000.0, 30_000.0]);
        assert_eq!(tpc.points[2].y, 900_000.0, "the failed rung past the knee is drawn");
        let slo = p99.series.iter().find(|s| s.name == "SLO 10.0 ms").unwrap();
        assert_eq!(slo.points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>(), [(10_000.0, 1e4), (30_000.0, 1e4)]);
        assert!(
            latency.notes.iter().any(|n| n.contains("thread-per-conn: the run failed at 30k")),
            "{:?}",
            latency.notes
        );
        let knee = latency.notes.last().unwrap();
        assert!(knee.contains("thread-per-conn 20,000") && knee.contains("mio-single ≥ 30,000 (top"), "{knee}");
        let (_, throughput) = &figs[1];
        let offered = throughput.panels[0].series.iter().find(|s| s.name == "offered").unwrap();
        assert_eq!(offered.points[1].y, 30_000.0);
    }

    #[test]
    fn the_rate_axis_has_round_ticks_from_zero() {
        let x = rate_axis(&[2_000.0, 60_000.0]);
        assert_eq!(x.ticks.first().unwrap().1, "0");
        assert_eq!(x.ticks.last().unwrap(), &(60_000.0, "60k".to_string()));
    }
}
