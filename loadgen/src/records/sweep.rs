//! What a sweep keeps: one [`Record`] per run (model × level × scenario ×
//! repeat), and the [`Summary`] of them all that `summary.json` holds.
//!
//! A record is written the moment its run ends, so an interrupted sweep still
//! has everything it measured. `loadgen report` rebuilds every chart and
//! table from `summary.json` plus the per-run files under `runs/`, and from
//! nothing else. The repeats of one model × level × scenario (a *cell*) are
//! gathered in [`crate::sweep::cells`].
//!
//! A summary written before repeats existed has neither `repeat` nor
//! `repeats`: it reads as a sweep of one pass.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::records::run::{RunResult, ServerCost};

/// Whether a run produced a valid measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Failed,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
        }
    }
}

/// One run: one model at one connection level in one scenario, in one pass
/// of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub scenario: String,
    pub model: String,
    /// Connections requested (`loadgen run -c`).
    pub level: u64,
    /// The pass of the sweep this run belongs to, from 1 (`--repeat`).
    #[serde(default = "first_pass")]
    pub repeat: u32,
    pub status: RunStatus,
    /// Why the run failed: `RunResult.failure`, or what the sweep saw (the
    /// server did not start or crashed, `loadgen run` exited non-zero).
    pub failure: Option<String>,
    /// Copied from the result: the load generator's CPUs, not the server,
    /// were the limit. (`loadgen_bound` in summaries written before the
    /// split: [`Summary::load`] maps it.)
    #[serde(default)]
    pub loadgen_saturated: bool,
    /// Wall time of the whole run, server start to server stop (seconds).
    pub elapsed_s: f64,
    /// The per-run files, relative to the results directory.
    pub files: RunFiles,
    /// What `loadgen run` wrote, when it wrote anything (a failed run may
    /// still have a partial result).
    pub result: Option<RunResult>,
    /// A ladder's rung (`knee`): the total rate offered (`--rate`, requests
    /// per second); `None` for a scenario without a ladder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_rps: Option<f64>,
}

/// The figures of a run that the tables, the targets and the charts set
/// side by side, as [`crate::sweep::cells::Metric`]s: `None` where the run did not
/// measure them.
impl Record {
    /// Answered-OK requests per second.
    pub fn throughput(&self) -> Option<f64> {
        Some(self.result.as_ref()?.throughput_rps)
    }

    /// The server's counters, when they cover some requests: a run whose STATS
    /// saw none (thread-per-conn at 5000 connections, whose admin thread
    /// starves) has per-request figures of 0 that mean "not measured".
    pub fn server_per_request(&self) -> Option<&ServerCost> {
        self.result.as_ref()?.server.as_ref().filter(|s| s.requests > 0)
    }

    /// The server's CPU µs per request (user + sys).
    pub fn server_cpu(&self) -> Option<f64> {
        self.server_per_request().map(|s| s.cpu_us_per_req).filter(|&c| c > 0.0)
    }

    /// The server's context switches per request, voluntary and involuntary.
    pub fn switches(&self) -> Option<f64> {
        self.server_per_request().map(|s| s.voluntary_cs_per_req + s.involuntary_cs_per_req)
    }

    /// Server and load generator together, CPU µs per request: the figure
    /// no loopback attribution can move from one side to the other. Only
    /// where the server's counters cover some requests.
    pub fn both_cpu(&self) -> Option<f64> {
        self.server_per_request()?;
        Some(self.result.as_ref()?.combined.as_ref()?.cpu_us_per_req)
    }

    /// The load generator's CPU µs per request.
    pub fn loadgen_cpu(&self) -> Option<f64> {
        Some(self.result.as_ref()?.loadgen.cpu_us_per_req)
    }

    /// The load generator's peak RSS (bytes).
    pub fn loadgen_rss(&self) -> Option<f64> {
        Some(self.result.as_ref()?.loadgen.max_rss_bytes as f64)
    }
}

/// Where one run's files are, relative to the results directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunFiles {
    pub json: String,
    pub hlog: String,
    pub hgrm: String,
    /// `loadgen run`'s stderr.
    pub loadgen_log: String,
    /// The server's stderr.
    pub server_log: String,
}

fn first_pass() -> u32 {
    1
}

impl RunFiles {
    /// `runs/<scenario>/<model>-c<level>-r<repeat>.*`
    pub fn for_run(scenario: &str, model: &str, level: u64, repeat: u32) -> RunFiles {
        RunFiles::at(&format!("runs/{scenario}/{model}-c{level}-r{repeat}"))
    }

    /// A ladder's rung: `runs/<scenario>/<model>-c<level>-at<rate>-r<repeat>.*`.
    pub fn for_rung(scenario: &str, model: &str, level: u64, rate: f64, repeat: u32) -> RunFiles {
        RunFiles::at(&format!("runs/{scenario}/{model}-c{level}-at{rate:.0}-r{repeat}"))
    }

    fn at(stem: &str) -> RunFiles {
        RunFiles {
            json: format!("{stem}.json"),
            hlog: format!("{stem}.hlog"),
            hgrm: format!("{stem}.hgrm"),
            loadgen_log: format!("{stem}.loadgen.log"),
            server_log: format!("{stem}.server.log"),
        }
    }
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub run_id: String,
    /// Scenario names in the order they ran.
    pub scenarios: Vec<String>,
    /// Model names in the order they ran.
    pub models: Vec<String>,
    /// Passes the sweep was asked for (`--repeat`): every cell once per pass.
    #[serde(default = "first_pass")]
    pub repeats: u32,
    /// Every run, in the order it ran.
    pub records: Vec<Record>,
    /// CPU µs of the floor pair (one 64 B write + read) measured at the
    /// start of this sweep, on the server's CPU (also in env.json): the
    /// yardstick that makes CPU figures comparable across machines and days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_pair_cpu_us: Option<f64>,
    /// The knee's SLO (`loadgen sweep --slo`), in µs: a rung is sustained
    /// only with its p99 within it. `None` when no ladder ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_us: Option<u64>,
}

impl Summary {
    /// The records of one scenario, in the order they ran.
    pub fn scenario<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.iter().filter(move |r| r.scenario == scenario)
    }

    /// The connection levels a scenario ran, ascending.
    pub fn levels(&self, scenario: &str) -> Vec<u64> {
        let mut levels: Vec<u64> = self.scenario(scenario).map(|r| r.level).collect();
        levels.sort_unstable();
        levels.dedup();
        levels
    }

    /// The models a scenario ran, in sweep order.
    pub fn models_in(&self, scenario: &str) -> Vec<String> {
        let mut models: Vec<String> = Vec::new();
        for m in self.models.iter().chain(self.scenario(scenario).map(|r| &r.model)) {
            if !models.contains(m) && self.scenario(scenario).any(|r| &r.model == m) {
                models.push(m.clone());
            }
        }
        models
    }

    /// The first run of a model at a level (its first pass); every pass
    /// together is [`Summary::cell`].
    pub fn find<'a>(&'a self, scenario: &'a str, model: &str, level: u64) -> Option<&'a Record> {
        self.scenario(scenario).find(|r| r.model == model && r.level == level)
    }

    /// Whether a scenario's records are a ladder's rungs (the knee).
    pub fn is_ladder(&self, scenario: &str) -> bool {
        self.scenario(scenario).any(|r| r.offered_rps.is_some())
    }

    /// The DELAY a scenario's runs asked for (µs, their `--delay-us`), if they
    /// kept ECHO's and DELAY's latency apart.
    pub fn delay_us(&self, scenario: &str) -> Option<u64> {
        self.scenario(scenario).filter_map(|r| r.result.as_ref()).find_map(|x| {
            let both = x.latency_by_method.contains_key("ECHO") && x.latency_by_method.contains_key("DELAY");
            let config = x.config.as_ref().filter(|_| both)?;
            Some(config.requests.delay_us as u64)
        })
    }

    /// The passes that have runs, ascending.
    pub fn passes(&self) -> Vec<u32> {
        let mut passes: Vec<u32> = self.records.iter().map(|r| r.repeat).collect();
        passes.sort_unstable();
        passes.dedup();
        passes
    }

    /// The same sweep with the runs of one pass only: what a sweep of one
    /// pass would have saved (the regression check judges pass by pass).
    pub fn pass(&self, repeat: u32) -> Summary {
        Summary {
            records: self.records.iter().filter(|r| r.repeat == repeat).cloned().collect(),
            repeats: 1,
            ..self.clone()
        }
    }

    /// Read `DIR/summary.json`, whenever it was written (each record
    /// upgraded first: `upgrade_legacy_record`). The error names the file
    /// and the record it cannot read, and why.
    pub fn load(dir: &Path) -> anyhow::Result<Summary> {
        use anyhow::Context;
        let path = dir.join("summary.json");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let not_a_summary = || format!("{} is not a sweep summary", path.display());
        let mut v: serde_json::Value = serde_json::from_str(&text).with_context(not_a_summary)?;
        for record in v.get_mut("records").and_then(|r| r.as_array_mut()).into_iter().flatten() {
            upgrade_legacy_record(record).map_err(|why| {
                let json = record.get("files").and_then(|f| f.get("json")).and_then(|j| j.as_str()).unwrap_or("?");
                anyhow::anyhow!("{}: cannot read the record of {json}: {why}", path.display())
            })?;
        }
        serde_json::from_value(v).with_context(not_a_summary)
    }
}

/// A record written by an older `loadgen`: its result upgraded, and, from
/// before the flag split, its copy of the flag taken from the upgraded
/// result (a record without a result was never flagged).
fn upgrade_legacy_record(record: &mut serde_json::Value) -> Result<(), String> {
    let Some(obj) = record.as_object_mut() else { return Ok(()) };
    if let Some(result) = obj.get_mut("result").filter(|r| !r.is_null()) {
        super::run::upgrade_legacy_result(result)?;
    }
    if obj.remove("loadgen_bound").is_some() && !obj.contains_key("loadgen_saturated") {
        let result = obj.get("result").filter(|r| !r.is_null());
        let saturated = result.is_some_and(|r| r["loadgen_saturated"].as_bool().unwrap_or(false));
        obj.insert("loadgen_saturated".into(), saturated.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep committed before results stored their configuration
    /// (`results/reference`, 2026) still loads, each run's configuration
    /// read from its command line: the readers get the rate and the DELAY
    /// from typed fields.
    #[test]
    fn a_committed_sweep_from_before_configurations_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
        let summary = Summary::load(&dir).unwrap();
        let results: Vec<&RunResult> = summary.records.iter().filter_map(|r| r.result.as_ref()).collect();
        assert!(!results.is_empty() && results.iter().all(|x| x.config.is_some()), "every run has its configuration");
        let paced: Vec<f64> = summary.scenario("echo-paced").filter_map(|r| r.result.as_ref()?.rate()).collect();
        assert!(!paced.is_empty() && paced.iter().all(|&r| r == 2000.0), "{paced:?}");
        assert!(summary.scenario("echo-saturate").all(|r| r.result.as_ref().is_none_or(|x| x.rate().is_none())));
        assert_eq!(summary.delay_us("multiplex"), Some(5000));
    }

    /// A record whose stored command line cannot be read names the file
    /// and the run, and why.
    #[test]
    fn an_unreadable_record_is_named() {
        let dir = crate::testdata::scratch("summary");
        let mut result = serde_json::to_value(crate::testdata::result("mio-single", 200, 1000.0)).unwrap();
        result.as_object_mut().unwrap().remove("config");
        result["args"] = serde_json::json!(["loadgen", "run", "--target", "127.0.0.1:1", "--warp", "9"]);
        let mut summary = serde_json::to_value(crate::testdata::summary()).unwrap();
        let record = crate::testdata::record_of_pass("echo-saturate", "mio-single", 200, 1000.0, 1);
        let mut record = serde_json::to_value(record).unwrap();
        record["result"] = result;
        summary["records"] = serde_json::json!([record]);
        std::fs::write(dir.join("summary.json"), serde_json::to_vec(&summary).unwrap()).unwrap();
        let e = format!("{:#}", Summary::load(&dir).unwrap_err());
        assert!(e.contains("summary.json") && e.contains("mio-single-c200") && e.contains("do not parse"), "{e}");
    }
}
