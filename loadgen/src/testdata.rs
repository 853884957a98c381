//! Hand-made records and sweeps for the unit tests of the exporters,
//! charts, report, targets, knee and regression check.

use crate::records::run::RunResult;
use serde_json::json;

use crate::records::sweep::{Record, RunFiles, RunStatus, Summary};

/// A plausible result, built from JSON (as `loadgen run` writes it) so
/// that fields added to `RunResult` later, with serde defaults, need no
/// change here.
pub fn result(model: &str, level: u64, rps: f64) -> RunResult {
    let base = level / 10 + 1;
    let n = (rps * 4.0) as u64;
    let lat = json!({
        "p50": base, "p90": base * 2, "p99": base * 4, "p999": base * 8, "p9999": base * 16, "max": base * 32,
        "mean": base as f64 + 0.5, "count": n
    });
    let pct = json!({"p50": 0, "p90": 0, "p99": 0, "max": 0});
    serde_json::from_value(json!({
        "args": ["run", "-c", level.to_string()],
        "env": {"kernel": "", "cpu_model": "", "cores": 2, "loadgen_cpus": [1], "server_cpus": [0],
                "git_rev": "", "date": "", "hostname": ""},
        "connections": {"requested": level, "established": level, "failed": 0, "connect_us": pct,
                        "never_served": 0, "first_answer_us": pct},
        "window_s": 4.0,
        "counts": {"sent": n, "ok": n, "errors": 0, "errors_by_status": {"BUSY": 0}, "mismatches": 0,
                   "timeouts": 0, "resets": 0, "in_flight_end": 0},
        "throughput_rps": rps,
        "latency": lat,
        "latency_uncorrected": null,
        "server": {
            "model": model, "requests": n, "voluntary_cs_per_req": 0.5 + level as f64 / 10_000.0,
            "involuntary_cs_per_req": 0.01, "user_us_per_req": 3.0, "sys_us_per_req": 7.0,
            "cpu_us_per_req": 10.0, "cpu_utilization": 0.95,
            // As STATS counts them: a thread per connection, pool's 64
            // workers, and the main, acceptor and admin threads.
            "threads": match model { "thread-per-conn" => level + 3, "pool" => 67, _ => 3 },
            "connections_open": level, "rss_bytes": 10u64 << 20, "max_rss_bytes": 12u64 << 20
        },
        "loadgen": {"cpu_us_per_req": 5.0, "user_us": 0, "sys_us": 0, "cpu_utilization": 0.5, "rss_bytes": 0,
                    "max_rss_bytes": 0, "threads": 1, "user_us_per_req": 2.0, "sys_us_per_req": 3.0},
        "combined": {"sys_us_per_req": 10.0, "cpu_us_per_req": 15.0, "server_share": 10.0 / 15.0},
        "proc_stat": {"window_us": 4_000_000, "tick_us": 10_000, "busy_us_per_req": 18.0, "cpus": {
            "0": {"role": "server", "busy_us": 3_600_000, "user_us": 900_000, "system_us": 1_800_000,
                  "irq_us": 0, "softirq_us": 900_000, "steal_us": 10_000, "idle_us": 390_000},
            "1": {"role": "loadgen", "busy_us": 2_000_000, "user_us": 800_000, "system_us": 1_000_000,
                  "irq_us": 0, "softirq_us": 200_000, "steal_us": 0, "idle_us": 2_000_000}}},
        "fairness": {"min": 1, "p1": 2, "median": 3, "max": 4},
        "loadgen_saturated": level == 200 && model == "mio-single",
        "timeseries": [{"t_s": 1.0, "phase": "window", "rps": rps, "p50_us": 0, "p99_us": 0,
                        "server_threads": null, "server_rss_bytes": null}],
        "failure": null
    }))
    .expect("the test data is a RunResult")
}

pub fn record_of_pass(scenario: &str, model: &str, level: u64, rps: f64, repeat: u32) -> Record {
    let result = result(model, level, rps);
    Record {
        scenario: scenario.into(),
        model: model.into(),
        level,
        repeat,
        status: RunStatus::Ok,
        failure: None,
        loadgen_saturated: result.loadgen_saturated,
        elapsed_s: 6.0,
        files: RunFiles::for_run(scenario, model, level, repeat),
        result: Some(result),
        offered_rps: None,
    }
}

/// A rung of the knee's ladder in pass `repeat`: offered and achieved
/// rates, p99 (µs), and a send lag well below the latency.
pub fn rung(model: &str, level: u64, offered: f64, achieved: f64, p99: u64, repeat: u32) -> Record {
    let mut r = record_of_pass("knee", model, level, achieved, repeat);
    r.offered_rps = Some(offered);
    r.files = RunFiles::for_rung("knee", model, level, offered, repeat);
    r.loadgen_saturated = false;
    let x = r.result.as_mut().expect("record_of_pass() has a result");
    x.latency.p99 = p99;
    x.loadgen_saturated = false;
    x.send_lag =
        Some(crate::records::run::SendLag { p50: 5, p99: 40, max: 90, count: 1000, held_back: 0, share_of_p50: 0.05 });
    r
}

/// A run that failed for `why`, without a result.
pub fn failed(scenario: &str, model: &str, level: u64, why: &str, repeat: u32) -> Record {
    Record {
        status: RunStatus::Failed,
        failure: Some(why.into()),
        loadgen_saturated: false,
        elapsed_s: 1.0,
        result: None,
        ..record_of_pass(scenario, model, level, 0.0, repeat)
    }
}

/// The models of [`knee_summary`] and [`multiplex_summary`].
const TWO_MODELS: [&str; 2] = ["thread-per-conn", "mio-single"];

/// A knee ladder: thread-per-conn and mio-single at 1000 and 5000
/// connections, offered 10k, 20k and 30k req/s. thread-per-conn misses
/// 30k (the run fails: p99 900 ms, 25k answered); mio-single sustains all.
pub fn knee_summary() -> Summary {
    let mut records = Vec::new();
    for model in TWO_MODELS {
        for level in [1000, 5000] {
            for offered in [10_000.0, 20_000.0, 30_000.0] {
                let past = model == "thread-per-conn" && offered > 20_000.0;
                let mut r = match past {
                    true => rung(model, level, offered, 25_000.0, 900_000, 1),
                    false => rung(model, level, offered, offered, 2_000, 1),
                };
                if past {
                    r.status = RunStatus::Failed;
                    r.failure = Some("--rate 30000: not offered".into());
                }
                records.push(r);
            }
        }
    }
    Summary { slo_us: Some(10_000), ..summary_of("2026-01-02T00-00-00Z", &["knee"], &TWO_MODELS, 1, records) }
}

/// A multiplex run: thread-per-conn (ECHO p99 9 ms, above the 5 ms
/// DELAY) and mio-single (ECHO p99 300 µs) at 50 and 200 connections.
pub fn multiplex_summary() -> Summary {
    let mut records = Vec::new();
    for model in TWO_MODELS {
        for level in [50, 200] {
            let mut r = record_of_pass("multiplex", model, level, 10_000.0, 1);
            let x = r.result.as_mut().expect("record_of_pass() has a result");
            let mut config = crate::records::config::RunArgs::new(
                "127.0.0.1:1".parse().expect("an address"),
                crate::records::config::Requests { delay_us: 5000, ..Default::default() },
            );
            config.connections = level as u32;
            x.config = Some(config);
            let lat = |p50: u64, p99: u64| crate::records::run::Latency { p50, p99, ..Default::default() };
            let echo = if model == "thread-per-conn" { lat(80, 9_000) } else { lat(60, 300) };
            x.latency_by_method = [("ECHO".to_string(), echo), ("DELAY".to_string(), lat(5_050, 5_100))].into();
            records.push(r);
        }
    }
    summary_of("2026-01-03T00-00-00Z", &["multiplex"], &TWO_MODELS, 1, records)
}

/// Two scenarios; pool fails at 1000 connections in the first.
pub fn summary() -> Summary {
    summary_repeated(1)
}

/// Throughput of pass `k` against pass 1: 1, 1.02, 0.98, 1.04, 0.96...
pub fn pass_factor(k: u32) -> f64 {
    let step = 0.02 * (k / 2) as f64;
    if k.is_multiple_of(2) {
        1.0 + step
    } else {
        1.0 - step
    }
}

/// The models [`summary`] sweeps: fixture data for the unit tests, not
/// the model list (that is the servers binary's `servers models`).
pub const SWEPT_MODELS: [&str; 5] = ["thread-per-conn", "pool", "mio-single", "mio-multi", "tokio"];

/// [`summary`] swept `passes` times, interleaved as the sweep runs it,
/// each pass's throughput and server CPU per request scaled by
/// [`pass_factor`].
pub fn summary_repeated(passes: u32) -> Summary {
    let mut records = Vec::new();
    for pass in 1..=passes {
        for scenario in ["echo-saturate", "echo-paced"] {
            for model in SWEPT_MODELS {
                for (i, level) in [200, 500, 1000].into_iter().enumerate() {
                    if model == "pool" && level == 1000 && scenario == "echo-saturate" {
                        records.push(failed(scenario, model, level, "800 of 1000 connections never served", pass));
                    } else {
                        let rps = (20_000.0 - 3000.0 * i as f64) * pass_factor(pass);
                        let mut r = record_of_pass(scenario, model, level, rps, pass);
                        let server = r.result.as_mut().and_then(|x| x.server.as_mut()).expect("a server");
                        server.cpu_us_per_req *= pass_factor(pass);
                        records.push(r);
                    }
                }
            }
        }
    }
    summary_of("2026-01-01T00-00-00Z", &["echo-saturate", "echo-paced"], &SWEPT_MODELS, passes, records)
}

/// The summary of a sweep of `records`, with no floor and no SLO.
fn summary_of(run_id: &str, scenarios: &[&str], models: &[&str], repeats: u32, records: Vec<Record>) -> Summary {
    let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
    Summary {
        run_id: run_id.into(),
        scenarios: strings(scenarios),
        models: strings(models),
        repeats,
        records,
        floor_pair_cpu_us: None,
        slo_us: None,
    }
}

/// Change one figure of every pass of a cell.
pub fn scale(summary: &mut Summary, model: &str, level: u64, f: impl Fn(&mut RunResult)) {
    for r in summary.records.iter_mut().filter(|r| r.model == model && r.level == level) {
        f(r.result.as_mut().unwrap());
    }
}

/// Scale each pass's throughput and server CPU per request of a cell by a
/// factor of its own (`factors[k - 1]` for pass k): noise of one model's,
/// which the pass does not share with the others.
pub fn jitter(summary: &mut Summary, model: &str, level: u64, factors: &[f64]) {
    for r in summary.records.iter_mut().filter(|r| r.model == model && r.level == level) {
        let f = factors[r.repeat as usize - 1];
        if let Some(x) = r.result.as_mut() {
            x.throughput_rps *= f;
            if let Some(s) = x.server.as_mut() {
                s.cpu_us_per_req *= f;
            }
        }
    }
}

/// A fresh, empty temporary directory for one test (`loadgen-NAME-…`),
/// removed with everything in it when the test ends, passed or not.
pub fn scratch(name: &str) -> Scratch {
    Scratch(tempfile::Builder::new().prefix(&format!("loadgen-{name}-")).tempdir().unwrap())
}

/// [`scratch`]'s directory: a path while the test holds it.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

/// pool starved past its workers, as the reference recorded it.
pub fn starved_pool(level: u64) -> Record {
    let mut r = record_of_pass("echo-saturate", "pool", level, 640.0, 1);
    r.status = RunStatus::Failed;
    let unserved = level - 64;
    r.failure = Some(format!(
        "--target 127.0.0.1:1: {unserved} connections had no answer to their first request within \
         --connect-timeout 1s, so the warm-up could not end with every connection served ({unserved} never \
         answered in the whole run): connections 64, 65 and {} more; --rate 2000: not offered: 1360 of the 2000 \
         requests scheduled in the window were never sent, because their connection still waited for an \
         earlier answer when the run ended ({unserved} connections)",
        unserved - 2
    ));
    r.result.as_mut().unwrap().connections.never_served = unserved;
    r
}
