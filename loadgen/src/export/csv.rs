//! `summary.csv`: one row per model × level × scenario.
//!
//! The first columns say which run it was and how it ended (`scenario`,
//! `model`, `level`, `status`, `failure`, `loadgen_bound`, `elapsed_s`, and
//! `offered_rps`, a ladder rung's offered rate, empty elsewhere); the
//! rest are the run's `RunResult` flattened: nested fields joined with `.`
//! (`server.cpu_us_per_req`, `latency.p99`), lists of plain values joined
//! with spaces (`args`, `env.loadgen_cpus`), maps as `KEY=VALUE;...`
//! (`counts.errors_by_status`). Per-second samples (`timeseries`) are lists
//! of records and stay in the run's own JSON file. A figure a run did not
//! measure is an empty cell.
//!
//! The columns are every field that any run reported, in the order they
//! first appear; the file is rewritten whole after each run, so a column
//! that appears late (the first open-loop run's `latency_uncorrected`)
//! still gets a header.

use serde_json::Value;

use super::Exporter;
use crate::sweep::summary::{Record, Summary};

pub struct Csv;

/// The columns before the flattened `RunResult`.
const LEAD: [&str; 8] =
    ["scenario", "model", "level", "status", "failure", "loadgen_bound", "elapsed_s", "offered_rps"];

impl Exporter for Csv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut columns: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for record in &summary.records {
            let mut cells: Vec<(String, String)> = Vec::new();
            if let Some(result) = &record.result {
                flatten("", &serde_json::to_value(result)?, &mut |k, v| cells.push((k.to_string(), v)));
            }
            for (k, _) in &cells {
                push_new(&mut columns, k);
            }
            rows.push((record, cells));
        }

        let mut out = String::new();
        let header: Vec<&str> = LEAD.iter().copied().chain(columns.iter().map(String::as_str)).collect();
        write_row(&mut out, header.iter().copied());
        for (record, cells) in rows {
            let lead = lead_cells(record);
            let rest =
                columns.iter().map(|c| cells.iter().find(|(k, _)| k == c).map(|(_, v)| v.as_str()).unwrap_or(""));
            write_row(&mut out, lead.iter().map(String::as_str).chain(rest));
        }
        Ok(out.into_bytes())
    }
}

fn lead_cells(r: &Record) -> Vec<String> {
    vec![
        r.scenario.clone(),
        r.model.clone(),
        r.level.to_string(),
        r.status.name().to_string(),
        r.failure.clone().unwrap_or_default(),
        r.loadgen_bound.to_string(),
        format!("{:.3}", r.elapsed_s),
        r.offered_rps.map(|o| o.to_string()).unwrap_or_default(),
    ]
}

fn push_new(columns: &mut Vec<String>, key: &str) {
    if !LEAD.contains(&key) && !columns.iter().any(|c| c == key) {
        columns.push(key.to_string());
    }
}

/// Lists of records, which have no place in a row (even when empty).
const RECORD_LISTS: [&str; 1] = ["timeseries"];

/// Call `emit(column, cell)` for every scalar under `value`. `failure` and
/// `loadgen_bound` are skipped: the lead columns already have them.
fn flatten(prefix: &str, value: &Value, emit: &mut dyn FnMut(&str, String)) {
    let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match value {
        Value::Object(map) if prefix.ends_with("errors_by_status") => {
            let cell: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", scalar(v))).collect();
            emit(prefix, cell.join(";"));
        }
        Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && LEAD.contains(&k.as_str()) {
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

fn write_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    let mut first = true;
    for cell in cells {
        if !first {
            out.push(',');
        }
        first = false;
        if cell.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    fn parse(text: &str) -> Vec<Vec<String>> {
        // The test data has no quoted commas except in `failure`, which we check separately.
        text.lines().map(|l| l.split(',').map(String::from).collect()).collect()
    }

    #[test]
    fn one_row_per_record_with_a_fixed_header() {
        let summary = testdata::summary();
        let text = String::from_utf8(Csv.serialize(&summary).unwrap()).unwrap();
        let rows = parse(&text);
        assert_eq!(rows.len(), summary.records.len() + 1);
        let header = &rows[0];
        for col in ["scenario", "model", "level", "status", "failure", "loadgen_bound", "throughput_rps"] {
            assert!(header.iter().any(|h| h == col), "no column {col}");
        }
        for col in ["latency.p999", "server.cpu_us_per_req", "counts.errors_by_status", "env.loadgen_cpus"] {
            assert!(header.iter().any(|h| h == col), "no column {col}");
        }
        assert!(!header.iter().any(|h| h.starts_with("timeseries")));
        assert!(rows.iter().all(|r| r.len() == header.len()), "ragged rows");

        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let failed = rows.iter().find(|r| r[col("status")] == "failed").unwrap();
        assert_eq!(failed[col("model")], "pool");
        assert_eq!(failed[col("failure")], "800 of 1000 connections never served");
        assert_eq!(failed[col("throughput_rps")], "", "a failed run without a result has empty figures");
        let ok = rows.iter().find(|r| r[col("model")] == "mio-single" && r[col("level")] == "200").unwrap();
        assert_eq!(ok[col("loadgen_bound")], "true");
        assert_eq!(ok[col("throughput_rps")], "20000.0");
        assert_eq!(ok[col("counts.errors_by_status")], "BUSY=0");
        assert_eq!(ok[col("env.loadgen_cpus")], "1");
        assert!(!header.iter().any(|h| h.starts_with("latency_uncorrected")), "never measured: no column");
    }

    #[test]
    fn cpu_attribution_and_every_cpu_have_columns() {
        let text = String::from_utf8(Csv.serialize(&testdata::summary()).unwrap()).unwrap();
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
    fn a_rung_carries_its_offered_rate() {
        let text = String::from_utf8(Csv.serialize(&testdata::knee_summary()).unwrap()).unwrap();
        let rows = parse(&text);
        let col = rows[0].iter().position(|h| h == "offered_rps").expect("an offered_rps column");
        let rates: Vec<&str> = rows[1..4].iter().map(|r| r[col].as_str()).collect();
        assert_eq!(rates, ["10000", "20000", "30000"]);
        let plain = String::from_utf8(Csv.serialize(&testdata::summary()).unwrap()).unwrap();
        assert_eq!(parse(&plain)[1][col], "", "no ladder, no rate");
    }

    #[test]
    fn quotes_cells_with_commas() {
        let mut out = String::new();
        write_row(&mut out, ["a", "b,c", "say \"hi\""].into_iter());
        assert_eq!(out, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }
}
