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
//! `loadgen report` can redraw them from saved results. Failed runs are left
//! out and named in a note under the plot; runs where the load generator was
//! the limit are drawn hollow.

pub mod attribution;
pub mod draw;
pub mod knee;
pub mod multiplex;
pub mod spectrum;

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::style::RGBColor;

use crate::result::ServerCost;
use crate::sweep::summary::{Record, Status, Summary};
use draw::{Figure, Panel, Point, Series, Unit, XAxis};

/// Each model keeps its colour in every chart.
pub fn color(model: &str) -> RGBColor {
    match model {
        "thread-per-conn" => RGBColor(214, 39, 40),
        "pool" => RGBColor(255, 127, 14),
        "mio-single" => RGBColor(31, 119, 180),
        "mio-multi" => RGBColor(44, 160, 44),
        "tokio" => RGBColor(148, 103, 189),
        "libevent" => RGBColor(140, 86, 75),
        other => {
            let h = other.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            RGBColor((h >> 16) as u8 & 0x7f, (h >> 8) as u8 & 0x7f, h as u8 & 0x7f)
        }
    }
}

type Metric = fn(&Record) -> Option<f64>;

fn server(r: &Record) -> Option<&ServerCost> {
    r.result.as_ref()?.server.as_ref()
}

/// Draw every chart of every scenario into `DIR/charts/`; returns the files.
pub fn draw_all(dir: &Path, summary: &Summary) -> anyhow::Result<Vec<PathBuf>> {
    let out = dir.join("charts");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    for scenario in &summary.scenarios {
        for (name, figure) in scenario_figures(dir, summary, scenario) {
            files.extend(draw::render(&out.join(format!("{scenario}-{name}")), &figure)?);
        }
    }
    Ok(files)
}

/// Every figure of one scenario, by file name suffix: a ladder's knee
/// charts, or the charts against connections (and, for a mix of ECHO and
/// DELAY, ECHO's latency against the DELAY's length).
pub fn scenario_figures(dir: &Path, summary: &Summary, scenario: &str) -> Vec<(String, Figure)> {
    if summary.is_ladder(scenario) {
        return knee::figures(summary, scenario);
    }
    let mut all: Vec<(String, Figure)> =
        figures(dir, summary, scenario).into_iter().map(|(n, f)| (n.to_string(), f)).collect();
    all.extend(multiplex::figures(summary, scenario));
    all
}

/// The figures of one scenario, by file name suffix.
pub fn figures(dir: &Path, summary: &Summary, scenario: &str) -> Vec<(&'static str, Figure)> {
    let levels = summary.levels(scenario);
    let x = XAxis {
        label: "connections (log scale)".into(),
        log: true,
        ticks: levels.iter().map(|l| (*l as f64, l.to_string())).collect(),
        range: None,
    };
    let p = |title: &str, y_label: &str, y_unit: Unit, log_y: bool, metric: Metric| {
        panel(summary, scenario, title, y_label, y_unit, log_y, metric)
    };
    let fig = |what: &str, panels: Vec<Panel>| Figure {
        title: format!("{scenario}: {what} vs connections"),
        x: x.clone(),
        notes: notes(summary, scenario, &panels),
        panels,
        markers: true,
    };
    let mut figures = vec![
        (
            "throughput",
            fig(
                "throughput",
                vec![p("throughput", "requests/s (answered OK)", Unit::Plain, false, |r| {
                    Some(r.result.as_ref()?.throughput_rps)
                })],
            ),
        ),
        (
            "latency",
            fig(
                "latency",
                vec![
                    p("p50", "latency (log scale)", Unit::Micros, true, |r| {
                        Some(r.result.as_ref()?.latency.p50 as f64)
                    }),
                    p("p99", "latency (log scale)", Unit::Micros, true, |r| {
                        Some(r.result.as_ref()?.latency.p99 as f64)
                    }),
                    p("p99.9", "latency (log scale)", Unit::Micros, true, |r| {
                        Some(r.result.as_ref()?.latency.p999 as f64)
                    }),
                ],
            ),
        ),
        (
            "context-switches",
            fig(
                "server context switches per request",
                vec![
                    p("voluntary (blocked)", "switches per request (log scale)", Unit::Plain, true, |r| {
                        Some(server(r)?.voluntary_cs_per_req)
                    }),
                    p("involuntary (preempted)", "switches per request (log scale)", Unit::Plain, true, |r| {
                        Some(server(r)?.involuntary_cs_per_req)
                    }),
                ],
            ),
        ),
        (
            "cpu",
            fig(
                "server CPU per request",
                vec![p("user + sys", "server CPU µs per request", Unit::Plain, false, |r| {
                    Some(server(r)?.cpu_us_per_req)
                })],
            ),
        ),
        (
            "memory",
            fig(
                "server memory and threads",
                vec![
                    p("resident memory (end of window)", "RSS (MiB)", Unit::Plain, false, |r| {
                        Some(server(r)?.rss_bytes as f64 / (1u64 << 20) as f64)
                    }),
                    p("threads (end of window)", "threads (log scale)", Unit::Plain, true, |r| {
                        Some(server(r)?.threads as f64)
                    }),
                ],
            ),
        ),
        ("spectrum", spectrum::figure(dir, summary, scenario)),
    ];
    figures.extend(attribution::figures(summary, scenario, &x));
    figures
}

fn panel(
    summary: &Summary,
    scenario: &str,
    title: &str,
    y_label: &str,
    y_unit: Unit,
    log_y: bool,
    metric: Metric,
) -> Panel {
    let series = summary
        .models_in(scenario)
        .into_iter()
        .map(|model| {
            let points = summary
                .levels(scenario)
                .into_iter()
                .filter_map(|level| summary.find(scenario, &model, level))
                .filter(|r| r.status == Status::Ok)
                .filter_map(|r| metric(r).map(|y| Point { x: r.level as f64, y, hollow: r.loadgen_bound }))
                .collect();
            Series { color: color(&model), name: model, points }
        })
        .collect();
    Panel { title: title.into(), y_label: y_label.into(), y_unit, log_y, series }
}

/// "pool: failed at 2000, 5000 (not shown)" per model with failures, and a
/// word on zeros that a log scale cannot show.
fn notes(summary: &Summary, scenario: &str, panels: &[Panel]) -> Vec<String> {
    let mut notes = failed_notes(summary, scenario);
    let zeros = panels.iter().filter(|p| p.log_y).flat_map(|p| &p.series).flat_map(|s| &s.points).any(|p| p.y <= 0.0);
    if zeros {
        notes.push("Values of 0 cannot be drawn on a log scale and are left out.".into());
    }
    notes
}

pub(crate) fn failed_notes(summary: &Summary, scenario: &str) -> Vec<String> {
    summary
        .models_in(scenario)
        .into_iter()
        .filter_map(|model| {
            let failed: Vec<String> = summary
                .scenario(scenario)
                .filter(|r| r.model == model && r.status == Status::Failed)
                .map(|r| r.level.to_string())
                .collect();
            (!failed.is_empty()).then(|| format!("{model}: failed at {} connections (not shown)", failed.join(", ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn failed_points_are_left_out_and_noted() {
        let summary = testdata::summary();
        let figs = figures(Path::new("/nonexistent"), &summary, "echo-saturate");
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
    }

    #[test]
    fn draws_every_chart_as_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("loadgen-charts-{}", std::process::id()));
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
            ["echo-saturate: throughput vs connections", "requests/s", "mio-multi", "loadgen-bound", "pool: failed"]
        {
            assert!(svg.contains(word), "no {word:?} in the SVG");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
