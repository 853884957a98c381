//! The sweep as CSV, in three files:
//!
//! - `summary.csv` ([`summary_csv`]): one row per cell (model × level × scenario,
//!   over every pass of `--repeat`). The first columns say which cell it is
//!   and how its runs ended (`scenario`, `model`, `level`, `runs`,
//!   `ok_runs`, `outcome`, `failure`, `loadgen_saturated_runs`, and
//!   `offered_rps` for a ladder's rung); then, for
//!   every figure the runs measured ([`Cell::figures`]: every number of
//!   `RunResult`, named by its path, `latency.p99`), four columns: `NAME`,
//!   the median over the successful runs, `NAME.min` and `NAME.max`, the
//!   spread, and `NAME.n`, the runs that measured it.
//! - `runs.csv` ([`runs_csv`]): one row per run (its `offered_rps` too), every field of its
//!   `RunResult` flattened: nested fields joined with `.`
//!   (`server.cpu_us_per_req`), lists of plain values joined with spaces
//!   (`args`, `env.loadgen_cpus`), maps as `KEY=VALUE;...`
//!   (`counts.errors_by_status`). Per-second samples (`timeseries`) are
//!   lists of records and stay in the run's own JSON file.
//! - `verdicts.csv` ([`verdicts_csv`]): one row per comparison that the
//!   comparison tables of `tables.md` make (the event-loop peers' table and
//!   every model's, per scenario): which table, figure, level and models,
//!   the pairs of passes it rests on, the ratio A/B (geometric mean), its
//!   95% interval, the p-value before and after the table's Holm
//!   correction, and the verdict ([`crate::sweep::cells`]).
//!
//! A figure a cell or run did not measure is an empty cell. The columns are
//! every one that any row has; the files are rewritten whole after each
//! run, so a column that appears late (the first open-loop run's
//! `latency_uncorrected`) still gets a header.

use std::fmt::Write;

use crate::records::sweep::{Record, Summary};
use serde_json::Value;

use crate::sweep::cells::{Cell, Comparison, Order, Verdict, COMPARED};

/// A lead column, as data: its name, and what it holds of a cell (or,
/// in `runs.csv`, of a run).
type CellLead = (&'static str, fn(&Cell) -> String);
type RunLead = (&'static str, fn(&Record) -> String);

/// The columns of `summary.csv` before the figures, as data: each its
/// name, and what it holds of a cell.
const CELL_LEAD: [CellLead; 9] = [
    ("scenario", |c| c.scenario.to_string()),
    ("model", |c| c.model.to_string()),
    ("level", |c| c.level.to_string()),
    ("runs", |c| c.runs.len().to_string()),
    ("ok_runs", |c| c.ok_runs().count().to_string()),
    ("outcome", |c| c.outcome().name().to_string()),
    ("failure", |c| c.failure_text()),
    ("loadgen_saturated_runs", |c| c.loadgen_saturated_runs().to_string()),
    ("offered_rps", |c| c.offered_rps.map(number).unwrap_or_default()),
];

/// What each figure adds after its median column.
const SPREAD_SUFFIXES: [&str; 3] = ["min", "max", "n"];

/// `summary.csv`: one row per cell, each figure's median and spread.
pub fn summary_csv(summary: &Summary) -> anyhow::Result<String> {
    let cells: Vec<Cell> = summary.scenarios.iter().flat_map(|s| summary.cells(s)).collect();
    let figures: Vec<_> = cells.iter().map(Cell::figures).collect();
    let mut names: Vec<&String> = figures.iter().flat_map(|f| f.keys()).collect();
    names.sort();
    names.dedup();

    let mut out = String::new();
    let mut header: Vec<String> = CELL_LEAD.iter().map(|(name, _)| name.to_string()).collect();
    for name in &names {
        header.push(name.to_string());
        header.extend(SPREAD_SUFFIXES.iter().map(|s| format!("{name}.{s}")));
    }
    write_row(&mut out, header.iter().map(String::as_str));
    for (cell, figs) in cells.iter().zip(&figures) {
        let mut row: Vec<String> = CELL_LEAD.iter().map(|(_, of)| of(cell)).collect();
        for name in &names {
            match figs.get(*name) {
                Some(s) => row.extend([number(s.median), number(s.min), number(s.max), s.n.to_string()]),
                None => row.extend(std::iter::repeat_n(String::new(), 1 + SPREAD_SUFFIXES.len())),
            }
        }
        write_row(&mut out, row.iter().map(String::as_str));
    }
    Ok(out)
}

/// A figure: whole numbers without a fraction (counts, µs), others as
/// JSON writes them (shortest exact form).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        serde_json::Number::from_f64(v).map(|n| n.to_string()).unwrap_or_default()
    }
}

/// The columns of `runs.csv` before the flattened `RunResult`, as data.
const LEAD: [RunLead; 9] = [
    ("scenario", |r| r.scenario.clone()),
    ("model", |r| r.model.clone()),
    ("level", |r| r.level.to_string()),
    ("repeat", |r| r.repeat.to_string()),
    ("status", |r| r.status.name().to_string()),
    ("failure", |r| r.failure.clone().unwrap_or_default()),
    ("loadgen_saturated", |r| r.loadgen_saturated.to_string()),
    ("elapsed_s", |r| format!("{:.3}", r.elapsed_s)),
    ("offered_rps", |r| r.offered_rps.map(number).unwrap_or_default()),
];

/// `runs.csv`: one row per run, every field.
pub fn runs_csv(summary: &Summary) -> anyhow::Result<String> {
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for record in &summary.records {
        let mut cells: Vec<(String, String)> = Vec::new();
        if let Some(result) = &record.result {
            flatten("", &serde_json::to_value(result)?, &mut |k, v| cells.push((k.to_string(), v)));
        }
        for (k, _) in &cells {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        rows.push((record, cells));
    }

    let mut out = String::new();
    let header: Vec<&str> = LEAD.iter().map(|(name, _)| *name).chain(columns.iter().map(String::as_str)).collect();
    write_row(&mut out, header.iter().copied());
    for (record, cells) in rows {
        let lead: Vec<String> = LEAD.iter().map(|(_, of)| of(record)).collect();
        let rest = columns.iter().map(|c| cells.iter().find(|(k, _)| k == c).map(|(_, v)| v.as_str()).unwrap_or(""));
        write_row(&mut out, lead.iter().map(String::as_str).chain(rest));
    }
    Ok(out)
}

/// Lists of records, which have no place in a row (even when empty).
const RECORD_LISTS: [&str; 1] = ["timeseries"];

/// Call `emit(column, cell)` for every scalar under `value`. `failure` and
/// `loadgen_saturated` are skipped: the lead columns already have them.
fn flatten(prefix: &str, value: &Value, emit: &mut dyn FnMut(&str, String)) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match value {
        Value::Object(map) if prefix.ends_with("errors_by_status") => {
            let cell: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect();
            emit(prefix, cell.join(";"));
        }
        Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && LEAD.iter().any(|(name, _)| name == k) {
                    continue;
                }
                flatten(&key(k), v, emit);
            }
        }
        Value::Null => {} // not measured: no column of its own, an empty cell where others have one
        Value::Array(_) if RECORD_LISTS.contains(&prefix) => {}
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            emit(prefix, items.iter().map(scalar).collect::<Vec<_>>().join(" "));
        }
        Value::Array(_) => {} // lists of records (timeseries): in the run's JSON
        v => emit(prefix, scalar(v)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

const VERDICT_COLUMNS: [&str; 13] =
    ["scenario", "table", "figure", "level", "a", "b", "pairs", "ratio", "low", "high", "p", "p_adjusted", "verdict"];

/// `verdicts.csv`: one row per comparison of the tables.
pub fn verdicts_csv(summary: &Summary) -> anyhow::Result<String> {
    let mut out = String::new();
    write_row(&mut out, VERDICT_COLUMNS.into_iter());
    for scenario in summary.scenarios.iter().filter(|s| !summary.is_ladder(s)) {
        let ran = summary.models_in(scenario);
        let every: Vec<&str> = ran.iter().map(String::as_str).collect();
        let peers = super::markdown::peers(summary, scenario);
        for (table, models) in [("event-loop peers", &peers), ("every model", &every)] {
            if models.len() < 2 {
                continue;
            }
            let levels = summary.levels(scenario);
            for (figure, family) in COMPARED.iter().zip(summary.families(scenario, models)) {
                for (level, (_, comparisons)) in levels.iter().zip(&family) {
                    for c in comparisons {
                        let lead =
                            [scenario.as_str(), table, figure.name, &level.to_string(), &c.a, &c.b].map(String::from);
                        let row: Vec<String> = lead.into_iter().chain(verdict_columns(c)).collect();
                        write_row(&mut out, row.iter().map(String::as_str));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// pairs, ratio, low, high, p, p_adjusted and the verdict in words.
fn verdict_columns(c: &Comparison) -> Vec<String> {
    let said = match c.order_of(&c.a) {
        Order::Ahead => format!("{} ahead", c.a),
        Order::Behind => format!("{} ahead", c.b),
        Order::Tie if c.verdict == Verdict::Excused => "tie: loadgen-saturated".into(),
        Order::Tie => "tie".into(),
        Order::Unjudged => "not judged: too few passes".into(),
    };
    let mut row = match c.verdict {
        Verdict::Tested { test, p_adjusted } => vec![
            test.n.to_string(),
            number(test.ratio),
            number(test.low),
            number(test.high),
            number(test.p),
            number(p_adjusted),
        ],
        Verdict::TooFew { pairs } => [vec![pairs.to_string()], vec![String::new(); 5]].concat(),
        Verdict::Excused => vec![String::new(); 6],
    };
    row.push(said);
    row
}

fn write_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            let _ = write!(out, "\"{}\"", cell.replace('"', "\"\""));
        } else {
            out.push_str(cell);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    /// Rows of cells, quotes undone (the test data has no newline in a cell).
    fn parse(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|line| {
                let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
                let mut chars = line.chars().peekable();
                while let Some(c) = chars.next() {
                    match (c, quoted) {
                        ('"', true) if chars.peek() == Some(&'"') => {
                            cell.push('"');
                            chars.next();
                        }
                        ('"', _) => quoted = !quoted,
                        (',', false) => cells.push(std::mem::take(&mut cell)),
                        (c, _) => cell.push(c),
                    }
                }
                cells.push(cell);
                cells
            })
            .collect()
    }

    #[test]
    fn runs_csv_has_one_row_per_run_with_a_fixed_header() {
        let summary = testdata::summary_repeated(2);
        let text = runs_csv(&summary).unwrap();
        let rows = parse(&text);
        assert_eq!(rows.len(), summary.records.len() + 1);
        let header = &rows[0];
        let lead = ["scenario", "model", "level", "repeat", "status", "failure", "loadgen_saturated", "throughput_rps"];
        let nested = ["latency.p999", "server.cpu_us_per_req", "counts.errors_by_status", "env.loadgen_cpus"];
        for col in lead.iter().chain(&nested) {
            assert!(header.iter().any(|h| h == col), "no column {col}");
        }
        assert!(!header.iter().any(|h| h.starts_with("timeseries")));
        assert!(rows.iter().all(|r| r.len() == header.len()), "ragged rows");

        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let failed = rows.iter().find(|r| r[col("status")] == "failed").unwrap();
        assert_eq!(failed[col("model")], "pool");
        assert_eq!(failed[col("failure")], "800 of 1000 connections never served");
        assert_eq!(failed[col("throughput_rps")], "", "a failed run without a result has empty figures");
        let ok = rows
            .iter()
            .find(|r| r[col("model")] == "mio-single" && r[col("level")] == "200" && r[col("repeat")] == "2")
            .unwrap();
        assert_eq!(ok[col("loadgen_saturated")], "true");
        assert_eq!(ok[col("throughput_rps")], "20400.0", "pass 2 of the test data: 2% above pass 1");
        assert_eq!(ok[col("counts.errors_by_status")], "BUSY=0");
        assert_eq!(ok[col("env.loadgen_cpus")], "1");
        assert!(!header.iter().any(|h| h.starts_with("latency_uncorrected")), "never measured: no column");
    }

    #[test]
    fn cpu_attribution_and_every_cpu_have_columns() {
        // runs.csv: every field of every run, the CPUs' roles included.
        let text = runs_csv(&testdata::summary()).unwrap();
        let rows = parse(&text);
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
        let tokio = rows.iter().find(|r| r[col("model")] == "tokio").unwrap();
        let cell = |name: &str| tokio[col(name)].as_str();
        assert_eq!(cell("combined.cpu_us_per_req"), "15.0");
        assert_eq!(cell("combined.sys_us_per_req"), "10.0");
        assert_eq!(cell("loadgen.sys_us_per_req"), "3.0");
        assert_eq!((cell("proc_stat.cpus.0.role"), cell("proc_stat.cpus.0.softirq_us")), ("server", "900000"));
        assert_eq!((cell("proc_stat.cpus.1.role"), cell("proc_stat.cpus.1.busy_us")), ("loadgen", "2000000"));
        assert_eq!(cell("proc_stat.window_us"), "4000000");
    }

    #[test]
    fn a_rung_is_a_cell_of_its_own() {
        let text = summary_csv(&testdata::knee_summary()).unwrap();
        let rows = parse(&text);
        assert_eq!(rows.len(), 1 + 2 * 2 * 3, "one row per model × level × rate");
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
        let rates: Vec<&str> = rows[1..4].iter().map(|r| r[col("offered_rps")].as_str()).collect();
        assert_eq!(rates, ["10000", "20000", "30000"]);
        let plain = summary_csv(&testdata::summary()).unwrap();
        assert_eq!(parse(&plain)[1][col("offered_rps")], "", "no ladder, no rate");
        let runs = runs_csv(&testdata::knee_summary()).unwrap();
        let runs = parse(&runs);
        let rate = runs[0].iter().position(|h| h == "offered_rps").unwrap();
        assert_eq!(runs[3][rate], "30000");
    }

    #[test]
    fn summary_csv_has_one_row_per_cell_with_median_and_spread() {
        let summary = testdata::summary_repeated(3);
        let text = summary_csv(&summary).unwrap();
        let rows = parse(&text);
        assert_eq!(rows.len(), 1 + 2 * 5 * 3, "one row per scenario × model × level");
        let header = &rows[0];
        assert_eq!(header[..CELL_LEAD.len()], CELL_LEAD.map(|(name, _)| name));
        for col in ["throughput_rps", "throughput_rps.min", "throughput_rps.max", "throughput_rps.n", "latency.p99.max"]
        {
            assert!(header.iter().any(|h| h == col), "no column {col}");
        }
        assert!(!header.iter().any(|h| h.starts_with("env.") || h.starts_with("args")), "not figures");
        assert!(rows.iter().all(|r| r.len() == header.len()), "ragged rows");
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let tokio = rows.iter().find(|r| r[col("model")] == "tokio" && r[col("level")] == "200").unwrap();
        // Passes at 1, 1.02 and 0.98 × 20,000 req/s.
        let figs: Vec<&str> = ["throughput_rps", "throughput_rps.min", "throughput_rps.max", "throughput_rps.n"]
            .map(|c| &*tokio[col(c)])
            .into();
        assert_eq!(figs, ["20000", "19600", "20400", "3"]);
        let cpu = tokio[col("server.cpu_us_per_req.max")].parse::<f64>().unwrap();
        assert!((cpu - 10.2).abs() < 1e-9, "{cpu}");
        assert_eq!((&*tokio[col("runs")], &*tokio[col("ok_runs")], &*tokio[col("outcome")]), ("3", "3", "ok"));
        let pool = rows.iter().find(|r| r[col("model")] == "pool" && r[col("level")] == "1000").unwrap();
        assert_eq!(pool[col("outcome")], "failed");
        assert_eq!(pool[col("failure")], "passes 1, 2, 3: 800 of 1000 connections never served");
        assert_eq!(pool[col("throughput_rps")], "");
        let bound = rows.iter().find(|r| r[col("model")] == "mio-single" && r[col("level")] == "200").unwrap();
        assert_eq!(bound[col("loadgen_saturated_runs")], "3");
    }

    #[test]
    fn quotes_cells_with_commas() {
        let mut out = String::new();
        write_row(&mut out, ["a", "b,c", "say \"hi\""].into_iter());
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
        assert_eq!(parse(&out), [["a", "b,c", "say \"hi\""]]);
    }

    #[test]
    fn verdicts_csv_has_every_comparison_with_its_test() {
        let mut summary = testdata::summary_repeated(3);
        crate::testdata::scale(&mut summary, "mio-multi", 500, |x| x.throughput_rps *= 2.0);
        crate::testdata::jitter(&mut summary, "mio-multi", 500, &[1.0, 1.01, 0.99]);
        let rows = parse(&verdicts_csv(&summary).unwrap());
        assert_eq!(rows[0], VERDICT_COLUMNS);
        // Per scenario: peers (3 models: 3 pairs) and every model (5: 10
        // pairs), 5 figures, 3 levels; less what failed pool at 1000 lacks.
        let every = |scenario: &str| rows.iter().filter(|r| r[0] == scenario && r[1] == "every model").count();
        assert_eq!(every("echo-paced"), 10 * 5 * 3);
        assert_eq!(every("echo-saturate"), 10 * 5 * 3 - 4 * 5, "pool at 1000 failed: 4 pairs × 5 figures fewer");
        let both = rows.iter().filter(|r| r[0] == "echo-paced" && r[2] == "both CPU µs/req").count();
        assert_eq!(both, (3 + 10) * 3, "both sides' CPU is judged in both tables at every level");
        let row = rows
            .iter()
            .find(|r| r[..6] == ["echo-saturate", "every model", "req/s", "500", "mio-single", "mio-multi"])
            .unwrap();
        let ratio: f64 = row[7].parse().unwrap();
        assert_eq!(row[6], "3");
        assert!((ratio - 0.5).abs() < 0.01, "{row:?}");
        assert!(row[11].parse::<f64>().unwrap() > row[10].parse::<f64>().unwrap(), "corrected p > raw p: {row:?}");
        assert_eq!(row[12], "mio-multi ahead");
        let bound = rows
            .iter()
            .find(|r| r[..6] == ["echo-saturate", "every model", "req/s", "200", "pool", "mio-single"])
            .unwrap();
        assert_eq!((bound[7].as_str(), bound[12].as_str()), ("", "tie: loadgen-saturated"));
        let one = parse(&verdicts_csv(&testdata::summary()).unwrap());
        let judged = |r: &Vec<String>| {
            r[12] == "tie: loadgen-saturated" || (r[6] == "1" && r[12] == "not judged: too few passes")
        };
        assert!(one[1..].iter().all(judged), "one pass: nothing judged");
    }
}
