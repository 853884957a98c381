//! `loadgen report DIR` writes the sweep's page, `index.html`, from what the
//! folder holds: checked on a copy of a committed sweep (results/aa, its
//! runs archived), so the page is tested against real files, not fixtures.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{tempdir, text};

#[test]
fn report_writes_a_page_with_every_chart_the_tables_and_the_provenance() {
    let tmp = tempdir();
    let dir = tmp.join("aa");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/aa");
    assert!(Command::new("cp").arg("-a").args([&committed, &dir]).status().unwrap().success());
    let _ = std::fs::remove_file(dir.join("index.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["report", dir.to_str().unwrap(), "--quiet"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();

    // Every chart file, inline, with its hover.
    let mut charts: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".svg").map(String::from))
        .collect();
    charts.sort();
    assert!(charts.len() >= 16, "{charts:?}");
    assert_eq!(page.matches("<figure class=\"chart\"").count(), charts.len());
    for stem in &charts {
        assert!(page.contains(&format!("<figure class=\"chart\" data-chart=\"{stem}\">\n<svg")), "no chart {stem}");
    }
    assert_eq!(page.matches("<g class=\"hover\"").count(), charts.len(), "a chart without hover");
    assert!(page.contains(", 1000 connections, p99: "), "a hover names its point and panel");

    // The tables of tables.md, as HTML tables.
    let tables_md = std::fs::read_to_string(dir.join("tables.md")).unwrap();
    let tables = tables_md.lines().filter(|l| l.starts_with("|---")).count();
    let section = &page[page.find("<section id=\"tables\">").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert_eq!(section.matches("<table>").count(), tables);
    assert!(section.contains("<td>mio-single@twin</td><td class=\"num\">5000</td>"), "a row of the model table");

    // The provenance, from env.json.
    let env: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("env.json")).unwrap()).unwrap();
    let revision = env["git"]["revision"].as_str().unwrap();
    assert!(page.contains(&format!("<code>{revision}</code> (clean)")), "the revision");
    for binary in env["binaries"].as_array().unwrap() {
        assert!(page.contains(binary["sha256"].as_str().unwrap()), "the hash of {}", binary["role"]);
    }
    assert!(page.contains("<code>target/release/loadgen sweep --reference --models"), "the command line");
    assert!(page.contains("server on CPUs 0, load generator on CPUs 1"), "the pinning");
    assert!(page.contains("pair: one 64 B write + read"), "the floor");

    // Self-contained: nothing fetched from the network, no script.
    for outside in ["src=\"http", "href=\"http", "<script", "@import"] {
        assert!(!page.contains(outside), "the page reaches out: {outside}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
