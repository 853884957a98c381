//! The sweep's progress: a bar on stderr when it is a terminal (model,
//! level, scenario, phase and an estimate of the time left), and one plain
//! line per finished run either way.
//!
//! The estimate is the planned time of what is left, scaled by how the runs
//! so far compared with their plan.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct SweepProgress {
    bar: ProgressBar,
    tty: bool,
    /// Planned seconds of the runs not yet finished.
    planned_left: f64,
    planned_done: f64,
    actual_done: f64,
    started: Instant,
}

impl SweepProgress {
    pub fn new(runs: usize, planned_s: f64) -> SweepProgress {
        let tty = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(runs as u64),
            if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:24}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        if tty {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        SweepProgress {
            bar,
            tty,
            planned_left: planned_s,
            planned_done: 0.0,
            actual_done: 0.0,
            started: Instant::now(),
        }
    }

    /// Seconds left: the plan of what remains (less what this run has used
    /// of its own), scaled by actual/planned so far.
    pub fn seconds_left(&self, run_planned: f64, run_elapsed: f64) -> f64 {
        let ratio = if self.planned_done > 0.0 { self.actual_done / self.planned_done } else { 1.0 };
        (self.planned_left - run_elapsed.min(run_planned)).max(0.0) * ratio
    }

    /// Show what is happening now.
    pub fn phase(&self, what: &str, phase: &str, run_planned: f64, run_elapsed: f64) {
        let left = self.seconds_left(run_planned, run_elapsed);
        self.bar.set_message(format!("{what} · {phase} · about {} left", clock(left)));
    }

    /// A run ended: print its line, move the bar.
    pub fn finished(&mut self, line: &str, run_planned: f64, run_actual: f64) {
        self.planned_left = (self.planned_left - run_planned).max(0.0);
        self.planned_done += run_planned;
        self.actual_done += run_actual;
        self.bar.inc(1);
        self.line(line);
    }

    /// Runs planned but not run (a ladder stopped climbing): move the bar
    /// past them and take their time off the estimate.
    pub fn skipped(&mut self, runs: usize, planned_s: f64) {
        self.planned_left = (self.planned_left - planned_s).max(0.0);
        self.bar.inc(runs as u64);
    }

    /// A line above the bar (or on stderr when there is no bar).
    pub fn line(&self, line: &str) {
        if self.tty {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// 75.0 -> "1m15s"; 6930.0 -> "1h55m30s".
pub fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_scales_with_how_runs_went() {
        let mut p = SweepProgress::new(3, 30.0);
        assert_eq!(p.seconds_left(10.0, 4.0), 26.0);
        p.finished("run 1", 10.0, 20.0); // took twice its plan
        assert_eq!(p.seconds_left(10.0, 0.0), 40.0);
        assert_eq!(clock(75.4), "1m15s");
        assert_eq!(clock(9.0), "9s");
        assert_eq!(clock(6930.0), "1h55m30s");
    }
}
