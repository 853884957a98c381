//! Who was charged for the CPU, per scenario: two charts beside the server's
//! CPU per request (`SCENARIO-cpu`).
//!
//! - `SCENARIO-cpu-attribution`: CPU µs per request of the server, of the
//!   load generator, and of the two together (user + sys, and sys alone).
//!   On loopback the sender runs the receiver's TCP path and a waker pays
//!   for the wake-up, so the split between the first two panels depends on
//!   the model; the together panels do not, and are the ones to compare
//!   models on.
//! - `SCENARIO-cpu-softirq`: from /proc/stat over the window, the softirq
//!   share of the busy time on the server's CPUs and on the load
//!   generator's (where the loopback packet work ran), and every CPU's busy
//!   time per request, whoever was charged.
//!
//! A run without the figure (no server counters, /proc/stat unreadable, or
//! a result written before these figures existed) has no point.

use super::draw::{Figure, Panel, Unit, XAxis};
use super::{against_connections, panel, Metric};
use crate::procstat::Side;
use crate::result::RunResult;
use crate::sweep::summary::Summary;

/// Both figures, by file name suffix.
pub fn figures(summary: &Summary, scenario: &str, x: &XAxis) -> Vec<(&'static str, Figure)> {
    let p = |title: &str, y_label: &str, metric: Metric| {
        panel(summary, scenario, title, y_label, Unit::Plain, false, metric)
    };
    let fig = |what: &str, panels: Vec<Panel>| against_connections(summary, scenario, x, what, panels);
    let cpu = "CPU µs per request";
    vec![
        (
            "cpu-attribution",
            fig(
                "CPU per request, by who was charged",
                vec![
                    p("server (user + sys)", cpu, |x| Some(x.server.as_ref()?.cpu_us_per_req)),
                    p("load generator (user + sys)", cpu, |x| {
                        Some(x.loadgen.cpu_us_per_req).filter(|_| x.server.is_some())
                    }),
                    p("both together (user + sys)", cpu, |x| Some(x.combined.as_ref()?.cpu_us_per_req)),
                    p("both together (sys only)", cpu, |x| Some(x.combined.as_ref()?.sys_us_per_req)),
                ],
            ),
        ),
        (
            "cpu-softirq",
            fig(
                "where the kernel's packet work ran (/proc/stat)",
                vec![
                    p("server's CPUs", "softirq, % of busy time", |x| softirq_percent(x, Side::Server)),
                    p("load generator's CPUs", "softirq, % of busy time", |x| softirq_percent(x, Side::Loadgen)),
                    p("every CPU, whoever was charged", "busy µs per request", |x| {
                        Some(x.proc_stat.as_ref()?.busy_us_per_req)
                    }),
                ],
            ),
        ),
    ]
}

fn softirq_percent(x: &RunResult, side: Side) -> Option<f64> {
    Some(100.0 * x.proc_stat.as_ref()?.softirq_share(side)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn points(fig: &Figure, panel: usize, model: &str) -> Vec<(f64, f64)> {
        let s = fig.panels[panel].series.iter().find(|s| s.name == model).unwrap();
        s.points.iter().map(|p| (p.x, p.y)).collect()
    }

    #[test]
    fn the_together_panel_is_the_sum_of_the_two_sides() {
        let summary = testdata::summary();
        let x = XAxis { label: String::new(), log: true, ticks: vec![], range: None };
        let figs = figures(&summary, "echo-saturate", &x);
        let (_, attribution) = figs.iter().find(|(n, _)| *n == "cpu-attribution").unwrap();
        // testdata: server 10 µs/req (7 sys), load generator 5 µs/req (3 sys).
        assert_eq!(points(attribution, 0, "tokio"), vec![(200.0, 10.0), (500.0, 10.0), (1000.0, 10.0)]);
        assert_eq!(points(attribution, 1, "tokio"), vec![(200.0, 5.0), (500.0, 5.0), (1000.0, 5.0)]);
        assert_eq!(points(attribution, 2, "tokio"), vec![(200.0, 15.0), (500.0, 15.0), (1000.0, 15.0)]);
        assert_eq!(points(attribution, 3, "tokio"), vec![(200.0, 10.0), (500.0, 10.0), (1000.0, 10.0)]);
        assert_eq!(points(attribution, 2, "pool").len(), 2, "the failed run is left out");

        let (_, softirq) = figs.iter().find(|(n, _)| *n == "cpu-softirq").unwrap();
        // testdata: CPU 0 (server) 25% softirq, CPU 1 (load generator) 10%.
        assert_eq!(points(softirq, 0, "mio-multi")[0], (200.0, 25.0));
        assert_eq!(points(softirq, 1, "mio-multi")[0], (200.0, 10.0));
    }

    #[test]
    fn results_without_the_figures_have_no_points() {
        let mut summary = testdata::summary();
        for r in summary.records.iter_mut().filter_map(|r| r.result.as_mut()) {
            r.combined = None;
            r.proc_stat = None;
        }
        let x = XAxis { label: String::new(), log: true, ticks: vec![], range: None };
        for (name, fig) in figures(&summary, "echo-saturate", &x) {
            let shown = if name == "cpu-attribution" { 2 } else { 0 };
            for (i, panel) in fig.panels.iter().enumerate() {
                let any = panel.series.iter().any(|s| !s.points.is_empty());
                assert_eq!(any, i < shown, "{name} panel {i}");
            }
        }
    }
}
