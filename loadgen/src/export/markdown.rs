//! `tables.md`, and the tables that `loadgen report --update-report` puts
//! into REPORT.md between marker comments.
//!
//! Per scenario, two tables:
//!
//! - [`scenario_table`]: one row per model × level with throughput, latency
//!   percentiles, context switches and CPU per request, memory, threads,
//!   connections established, mismatches and the failure, if any.
//! - [`peer_table`]: the event-loop peers (mio-multi, mio-single, tokio,
//!   libevent) side by side per level: throughput, CPU µs and context
//!   switches per request.

use std::fmt::Write;

use super::Exporter;
use crate::sweep::summary::{Record, Status, Summary};

pub struct Markdown;

/// The models the peer table compares, in column order.
pub const PEERS: [&str; 4] = ["mio-multi", "mio-single", "tokio", "libevent"];

impl Exporter for Markdown {
    fn file_name(&self) -> &'static str {
        "tables.md"
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut out = format!("# Sweep {}\n", summary.run_id);
        for scenario in &summary.scenarios {
            let _ = write!(out, "\n## {scenario}\n\n{}", scenario_table(summary, scenario));
            let peers = peer_table(summary, scenario);
            if !peers.is_empty() {
                let _ = write!(out, "\n### {scenario}: event-loop peers\n\n{peers}");
            }
        }
        Ok(out.into_bytes())
    }
}

/// Rows model × level (models in sweep order, levels ascending).
pub fn scenario_table(summary: &Summary, scenario: &str) -> String {
    let mut out = String::from(
        "| model | conns | est./req. | req/s | p50 | p99 | p99.9 | cs/req (vol+invol) | CPU µs/req | RSS | threads | mismatches | failure |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut bound = false;
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let Some(r) = summary.find(scenario, &model, level) else { continue };
            bound |= r.loadgen_bound && r.status == Status::Ok;
            let _ = writeln!(out, "{}", row(r));
        }
    }
    if bound {
        out.push_str("\n\\* loadgen-bound: the load generator's CPU, not the server, was the limit.\n");
    }
    out
}

fn row(r: &Record) -> String {
    let dash = || "–".to_string();
    let res = r.result.as_ref();
    let server = res.and_then(|x| x.server.as_ref());
    let est = res.map(|x| format!("{}/{}", x.connections.established, x.connections.requested)).unwrap_or_else(dash);
    let (rps, p50, p99, p999) = match res.filter(|_| r.status == Status::Ok) {
        Some(x) => (
            format!("{}{}", thousands(x.throughput_rps), if r.loadgen_bound { "\\*" } else { "" }),
            us(x.latency.p50),
            us(x.latency.p99),
            us(x.latency.p999),
        ),
        None => (dash(), dash(), dash(), dash()),
    };
    let cs = server
        .map(|s| {
            format!(
                "{} ({}+{})",
                num(s.voluntary_cs_per_req + s.involuntary_cs_per_req),
                num(s.voluntary_cs_per_req),
                num(s.involuntary_cs_per_req)
            )
        })
        .unwrap_or_else(dash);
    let cpu = server.map(|s| num(s.cpu_us_per_req)).unwrap_or_else(dash);
    let rss = server.map(|s| mib(s.rss_bytes)).unwrap_or_else(dash);
    let threads = server.map(|s| s.threads.to_string()).unwrap_or_else(dash);
    let mismatches = res.map(|x| x.counts.mismatches.to_string()).unwrap_or_else(dash);
    let failure = r.failure.as_deref().map(cell).unwrap_or_default();
    format!(
        "| {} | {} | {est} | {rps} | {p50} | {p99} | {p999} | {cs} | {cpu} | {rss} | {threads} | {mismatches} | {failure} |",
        r.model, r.level
    )
}

/// The peers present in this scenario side by side: for each level, one row
/// each for throughput, CPU µs per request and context switches per request.
/// Empty when fewer than two peers ran.
pub fn peer_table(summary: &Summary, scenario: &str) -> String {
    let ran = summary.models_in(scenario);
    let peers: Vec<&str> = PEERS.iter().copied().filter(|p| ran.iter().any(|m| m == p)).collect();
    if peers.len() < 2 {
        return String::new();
    }
    let mut out = format!("| conns | figure | {} |\n|---:|---|{}\n", peers.join(" | "), "---:|".repeat(peers.len()));
    type Figure = fn(&Record) -> Option<String>;
    let figures: [(&str, Figure); 3] = [
        ("req/s", |r| {
            r.result
                .as_ref()
                .map(|x| format!("{}{}", thousands(x.throughput_rps), if r.loadgen_bound { "\\*" } else { "" }))
        }),
        ("CPU µs/req", |r| r.result.as_ref()?.server.as_ref().map(|s| num(s.cpu_us_per_req))),
        ("cs/req", |r| {
            r.result.as_ref()?.server.as_ref().map(|s| num(s.voluntary_cs_per_req + s.involuntary_cs_per_req))
        }),
    ];
    for level in summary.levels(scenario) {
        for (name, figure) in figures {
            let cells: Vec<String> = peers
                .iter()
                .map(|p| match summary.find(scenario, p, level) {
                    Some(r) if r.status == Status::Ok => figure(r).unwrap_or_else(|| "–".into()),
                    Some(_) => "failed".into(),
                    None => "–".into(),
                })
                .collect();
            let _ = writeln!(out, "| {level} | {name} | {} |", cells.join(" | "));
        }
    }
    out
}

/// A latency in µs, in the unit that reads best.
pub fn us(v: u64) -> String {
    match v {
        0..=999 => format!("{v} µs"),
        1_000..=9_999 => format!("{:.2} ms", v as f64 / 1e3),
        10_000..=999_999 => format!("{:.1} ms", v as f64 / 1e3),
        _ => format!("{:.2} s", v as f64 / 1e6),
    }
}

/// 12345.6 -> "12,346".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three significant digits (whole numbers from 100 on).
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Text safe inside a table cell: no pipes or newlines, not too long.
fn cell(text: &str) -> String {
    let one_line = text.replace('|', "/").replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn scenario_table_has_a_row_per_record_and_notes_failures() {
        let summary = testdata::summary();
        let table = scenario_table(&summary, "echo-saturate");
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| model")).collect();
        assert_eq!(rows.len(), 15);
        let pool = rows.iter().find(|l| l.starts_with("| pool | 1000 |")).unwrap();
        assert!(pool.contains("never served"), "{pool}");
        assert!(pool.contains("| – | – |"), "a failed run shows no figures: {pool}");
        let bound = rows.iter().find(|l| l.starts_with("| mio-single | 200 |")).unwrap();
        assert!(bound.contains("20,000\\*"), "{bound}");
        assert!(table.contains("loadgen-bound"));
    }

    #[test]
    fn peer_table_puts_peers_side_by_side() {
        let summary = testdata::summary();
        let table = peer_table(&summary, "echo-saturate");
        let header = table.lines().next().unwrap();
        assert_eq!(header, "| conns | figure | mio-multi | mio-single | tokio |");
        assert_eq!(table.lines().filter(|l| l.contains("| req/s |")).count(), 3);
        assert!(table.contains("| 1000 | CPU µs/req | 10.0 | 10.0 | 10.0 |"), "{table}");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(us(950), "950 µs");
        assert_eq!(us(5_019), "5.02 ms");
        assert_eq!(us(12_345), "12.3 ms");
        assert_eq!(us(2_500_000), "2.50 s");
        assert_eq!(num(0.5123), "0.512");
        assert_eq!(num(0.0095), "0.00950");
        assert_eq!(num(36.94), "36.9");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(0.0), "0");
        assert_eq!(cell("a|b\nc"), "a/b c");
    }
}
