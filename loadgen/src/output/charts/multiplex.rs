//! The head-of-line chart, for a scenario whose runs mixed ECHO with DELAY
//! (`multiplex`): ECHO's own p50 and p99 per model against connections,
//! with the length of a DELAY drawn as a grey reference line.
//!
//! | file                  | shows                                                 |
//! |-----------------------|-------------------------------------------------------|
//! | `SCENARIO-echo-vs-delay` | ECHO p50 and p99 (log y), the DELAY's length in grey |
//!
//! How to read it: a server that answers a connection's requests in order
//! makes every ECHO sent after a DELAY wait for it, so its ECHO p99 lies
//! above the line; a server that answers out of order answers the ECHO at
//! once, and its ECHO p99 stays below the line, near its p50.

use super::draw::{Figure, Point, Series, Unit, XAxis};
use super::knee::REFERENCE;
use super::{notes, panel};
use crate::fmt::us;
use crate::sweep::summary::{Record, Summary};

/// The figure of a scenario with ECHO and DELAY latencies apart; none for
/// another scenario.
pub fn figures(summary: &Summary, scenario: &str) -> Vec<(String, Figure)> {
    let Some(delay) = summary.delay_us(scenario) else { return Vec::new() };
    let levels = summary.levels(scenario);
    let p = |title: &str, metric: fn(&Record) -> Option<f64>| {
        let mut panel = panel(summary, scenario, title, "ECHO latency (log scale)", Unit::Micros, true, metric);
        panel.series.push(reference(&levels, delay));
        panel
    };
    let panels = vec![
        p("ECHO p50", |r| Some(r.result.as_ref()?.echo_latency()?.p50 as f64)),
        p("ECHO p99", |r| Some(r.result.as_ref()?.echo_latency()?.p99 as f64)),
    ];
    let x = XAxis {
        label: "connections (log scale)".into(),
        log: true,
        ticks: levels.iter().map(|l| (*l as f64, l.to_string())).collect(),
        range: None,
    };
    let mut notes = notes(summary, scenario, &panels);
    notes.push(format!(
        "Grey: one DELAY ({}). In order, an ECHO behind a DELAY waits for it (p99 above); out of order, it does not.",
        us(delay)
    ));
    let figure = Figure {
        title: format!("{scenario}: ECHO latency beside DELAYs of {} vs connections", us(delay)),
        x,
        panels,
        markers: true,
        notes,
    };
    vec![("echo-vs-delay".into(), figure)]
}

/// The DELAY's length, a grey line across the levels.
fn reference(levels: &[u64], delay: u64) -> Series {
    let ends = [levels.first(), levels.last()].into_iter().flatten();
    let points = ends.map(|&l| Point { x: l as f64, y: delay as f64, range: None, hollow: false }).collect();
    Series { name: format!("DELAY {}", us(delay)), color: REFERENCE, points }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn echo_against_the_delay_line() {
        let summary = testdata::multiplex_summary();
        let figs = figures(&summary, "multiplex");
        assert_eq!(figs.len(), 1);
        let (name, fig) = &figs[0];
        assert_eq!(name, "echo-vs-delay");
        let p99 = &fig.panels[1];
        let tpc = p99.series.iter().find(|s| s.name == "thread-per-conn").unwrap();
        assert_eq!(tpc.points.iter().map(|p| p.y).collect::<Vec<_>>(), [9_000.0, 9_000.0]);
        let line = p99.series.iter().find(|s| s.name == "DELAY 5.00 ms").unwrap();
        assert_eq!(line.points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>(), [(50.0, 5e3), (200.0, 5e3)]);
        assert!(figures(&testdata::summary(), "echo-saturate").is_empty(), "no ECHO and DELAY apart: no chart");
    }
}
