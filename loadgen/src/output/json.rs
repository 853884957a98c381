//! `summary.json`: the [`Summary`] as it is, every run's whole `RunResult`
//! (what `loadgen report` reads back), plus `cells`: per model × level ×
//! scenario (× offered rate, a ladder's rung), how its runs ended and every figure's median, min, max and
//! count over the passes (see [`crate::sweep::cells`]). `cells` is derived
//! from the runs each time the file is written, and ignored when it is read.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::records::sweep::Summary;
use crate::stats::Spread;
use crate::sweep::cells::Cell;

/// The file's name: `loadgen report` reads it back, and does not rewrite it.
pub const FILE: &str = "summary.json";

/// What `summary.json` holds: the summary, and its cells.
#[derive(Serialize)]
struct File<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    cells: Vec<CellSummary<'a>>,
}

/// One cell in `summary.json`.
#[derive(Serialize)]
pub struct CellSummary<'a> {
    pub scenario: &'a str,
    pub model: &'a str,
    pub level: u64,
    /// A ladder's rung: its offered rate (`knee`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rps: Option<f64>,
    pub runs: usize,
    pub ok_runs: usize,
    /// `ok`, `partly failed` or `failed`.
    pub outcome: &'static str,
    /// Successful runs flagged `loadgen_saturated`.
    pub loadgen_saturated_runs: usize,
    /// (pass, why) of each failed run.
    pub failures: Vec<(u32, &'a str)>,
    /// Every figure of the successful runs, by its path in `RunResult`.
    pub figures: BTreeMap<String, Spread>,
}

impl<'a> CellSummary<'a> {
    pub fn of(cell: &Cell<'a>) -> CellSummary<'a> {
        CellSummary {
            scenario: cell.scenario,
            model: cell.model,
            level: cell.level,
            offered_rps: cell.offered_rps,
            runs: cell.runs.len(),
            ok_runs: cell.ok_runs().count(),
            outcome: cell.outcome().name(),
            loadgen_saturated_runs: cell.loadgen_saturated_runs(),
            failures: cell.failures(),
            figures: cell.figures(),
        }
    }
}

/// `summary.json`'s contents.
pub fn summary_json(summary: &Summary) -> anyhow::Result<String> {
    let cells = summary.scenarios.iter().flat_map(|s| summary.cells(s)).map(|c| CellSummary::of(&c)).collect();
    Ok(serde_json::to_string_pretty(&File { summary, cells })? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn round_trips() {
        let summary = testdata::summary_repeated(2);
        let back: Summary = serde_json::from_str(&summary_json(&summary).unwrap()).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn cells_carry_median_and_spread_of_every_figure() {
        let summary = testdata::summary_repeated(3);
        let json: serde_json::Value = serde_json::from_str(&summary_json(&summary).unwrap()).unwrap();
        assert_eq!(json["repeats"], 3);
        let cells = json["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 2 * 5 * 3);
        let tokio = cells
            .iter()
            .find(|c| c["scenario"] == "echo-saturate" && c["model"] == "tokio" && c["level"] == 200)
            .unwrap();
        assert_eq!((tokio["runs"].as_u64(), tokio["outcome"].as_str()), (Some(3), Some("ok")));
        assert_eq!(
            tokio["figures"]["throughput_rps"],
            serde_json::json!({"median": 20000.0, "min": 19600.0, "max": 20400.0, "n": 3})
        );
        assert_eq!(tokio["figures"]["server.cpu_us_per_req"]["n"], 3);
    }

    #[test]
    fn a_summary_from_before_repeats_reads_as_one_pass() {
        let summary = testdata::summary();
        let mut json = serde_json::to_value(&summary).unwrap();
        json.as_object_mut().unwrap().remove("repeats");
        for r in json["records"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("repeat");
        }
        let old: Summary = serde_json::from_value(json).unwrap();
        assert_eq!(old.repeats, 1);
        assert!(old.records.iter().all(|r| r.repeat == 1));
        assert_eq!(old.cell("echo-saturate", "tokio", 200).unwrap().runs.len(), 1);
    }
}
