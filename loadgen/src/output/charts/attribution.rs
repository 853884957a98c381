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

use super::draw::Unit;
use super::ChartSpec;
use crate::procstat::Side;
use crate::records::run::RunResult;

const CPU: &str = "CPU µs per request";
const SOFTIRQ: &str = "softirq, % of busy time";

/// Both charts, as data ([`ChartSpec`]): one line a panel.
pub const CHARTS: [ChartSpec; 2] = [
    (
        "cpu-attribution",
        "CPU per request, by who was charged",
        &[
            ("server (user + sys)", CPU, Unit::Plain, false, |x| Some(x.server.as_ref()?.cpu_us_per_req)),
            ("load generator (user + sys)", CPU, Unit::Plain, false, |x| {
                Some(x.loadgen.cpu_us_per_req).filter(|_| x.server.is_some())
            }),
            ("both together (user + sys)", CPU, Unit::Plain, false, |x| Some(x.combined.as_ref()?.cpu_us_per_req)),
            ("both together (sys only)", CPU, Unit::Plain, false, |x| Some(x.combined.as_ref()?.sys_us_per_req)),
        ],
    ),
    (
        "cpu-softirq",
        "where the kernel's packet work ran (/proc/stat)",
        &[
            ("server's CPUs", SOFTIRQ, Unit::Plain, false, |x| softirq_percent(x, Side::Server)),
            ("load generator's CPUs", SOFTIRQ, Unit::Plain, false, |x| softirq_percent(x, Side::Loadgen)),
            ("every CPU, whoever was charged", "busy µs per request", Unit::Plain, false, |x| {
                Some(x.proc_stat.as_ref()?.busy_us_per_req)
            }),
        ],
    ),
];

fn softirq_percent(x: &RunResult, side: Side) -> Option<f64> {
    Some(100.0 * x.proc_stat.as_ref()?.softirq_share(side)?)
}

#[cfg(test)]
mod tests {
    use super::super::draw::Figure;
    use crate::testdata;

    /// This module's charts of `summary`'s echo-saturate, by name.
    fn figures(summary: &crate::records::sweep::Summary) -> Vec<(&'static str, Figure)> {
        let all = super::super::tests::echo_saturate(summary);
        all.into_iter().filter(|(name, _)| super::CHARTS.iter().any(|c| c.0 == *name)).collect()
    }

    fn points(fig: &Figure, panel: usize, model: &str) -> Vec<(f64, f64)> {
        let s = fig.panels[panel].series.iter().find(|s| s.name == model).unwrap();
        s.points.iter().map(|p| (p.x, p.y)).collect()
    }

    #[test]
    fn the_together_panel_is_the_sum_of_the_two_sides() {
        let summary = testdata::summary();
        let figs = figures(&summary);
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
        let figs = figures(&summary);
        assert_eq!(figs.len(), 2);
        for (name, fig) in figs {
            let shown = if name == "cpu-attribution" { 2 } else { 0 };
            for (i, panel) in fig.panels.iter().enumerate() {
                let any = panel.series.iter().any(|s| !s.points.is_empty());
                assert_eq!(any, i < shown, "{name} panel {i}");
            }
        }
    }
}
