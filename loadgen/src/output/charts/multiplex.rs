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

use super::draw::{Figure, Series, Unit, XAxis};
use super::{notes, panel, Metric};
use crate::fmt::us;
use crate::records::sweep::Summary;

/// The figure of a scenario with ECHO and DELAY latencies apart; none for
/// another scenario.
pub fn figures(summary: &Summary, scenario: &str) -> Vec<(String, Figure)> {
    let Some(delay) = summary.delay_us(scenario) else { return Vec::new() };
    let levels = summary.levels(scenario);
    let p = |title: &'static str, metric: Metric| {
        let mut panel = panel(summary, scenario, &(title, "ECHO latency (log scale)", Unit::Micros, true, metric));
        let span = (levels.first().map_or(f64::NAN, |&l| l as f64), levels.last().map_or(f64::NAN, |&l| l as f64));
        panel.series.push(Series::reference(format!("DELAY {}", us(delay)), span, |_| delay as f64));
        panel
    };
    let panels = vec![
        p("ECHO p50", |x| Some(x.echo_latency()?.p50 as f64)),
        p("ECHO p99", |x| Some(x.echo_latency()?.p99 as f64)),
    ];
    let x = XAxis::connections(&levels);
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
