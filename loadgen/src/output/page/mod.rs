//! `index.html`: a sweep's own page, one file that opens from `file://`
//! with no network (inline SVG and CSS, no script of its own), written by
//! every sweep and rewritten by `loadgen report DIR`. Top to bottom:
//!
//! 1. the run id and the verdict (a ready section from the caller);
//! 2. every chart of `charts/`, inline, grouped by scenario: each point
//!    shows its median, min–max and run count on hover ([`super::charts::draw`]);
//! 3. the tables of `tables.md`, as HTML ([`mdhtml`]);
//! 4. where the sweep profiled (`profiles/`): the breakdown charts, the
//!    breakdown table and each flame graph (linked files, each keeping its
//!    own script);
//! 5. the environment and provenance from `env.json` ([`provenance`]);
//! 6. what failed and why (a ready section from the caller).
//!
//! Everything shown comes from the folder's own files; the page adds no
//! timestamp of its own, so the same folder gives the same bytes.

pub mod mdhtml;
pub mod provenance;

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{markdown, profiled};
use crate::files::write_atomic;
use crate::html::escape;
use crate::records::sweep::Summary;
use crate::sweep::env_json::load_floor;

/// The page's file name in the results folder.
pub const FILE: &str = "index.html";

/// Plain, readable: a column of text, bordered tables, numbers right-aligned.
const CSS: &str =
    "body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;line-height:1.4;color:#222}
h1,h2{border-bottom:1px solid #ccc}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #bbb;padding:.2em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
table.env th{white-space:nowrap}
.scroll{overflow-x:auto}
figure{margin:1em 0}
figure svg{max-width:100%;height:auto}
figure object{width:100%;min-height:300px;border:1px solid #ddd}
figcaption{font-size:.9em;color:#555}
code{font-size:.95em;background:#f6f6f6;word-break:break-all}";

/// Write `DIR/index.html` from what the folder holds; `verdict` and
/// `failures` are the ready `<section id="verdict">` and
/// `<section id="failures">`. Returns its path.
pub fn write(dir: &Path, summary: &Summary, verdict: &str, failures: &str) -> anyhow::Result<PathBuf> {
    let env = read_env(dir)?;
    let floor = load_floor(dir)?;
    let title = escape(&format!("Sweep {}", summary.run_id));
    let mut sections = vec![verdict.to_string(), charts(dir, summary, env.as_ref())?, tables(summary)?];
    sections.extend(profiles(dir)?);
    sections.push(provenance::section(env.as_ref(), floor.as_ref()));
    sections.push(failures.to_string());
    let nav: String =
        sections.iter().filter_map(|s| section_id(s)).map(|id| format!("<a href=\"#{id}\">{id}</a>")).collect();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n\
         <style>\n{CSS}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n<nav>{nav}</nav>\n{}</body>\n</html>\n",
        sections.join("\n")
    );
    let path = dir.join(FILE);
    write_atomic(&path, html.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The id of a `<section id="…">`, for the page's table of contents.
fn section_id(section: &str) -> Option<&str> {
    let rest = section.trim_start().strip_prefix("<section id=\"")?;
    rest.split('"').next()
}

/// `env.json`, parsed; `None` when the folder has none.
fn read_env(dir: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    let path = dir.join("env.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| format!("{} is not JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// What `keep` makes of each entry of `dir`, sorted; none when `dir` is missing.
fn listed(dir: &Path, keep: impl Fn(&std::fs::DirEntry) -> Option<String>) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.extend(keep(&entry.with_context(|| format!("cannot read {}", dir.display()))?));
    }
    names.sort();
    Ok(names)
}

/// The stems of the `.svg` files in `dir`.
fn svg_stems(dir: &Path) -> anyhow::Result<Vec<String>> {
    listed(dir, |e| e.file_name().to_string_lossy().strip_suffix(".svg").map(String::from))
}

/// The directories in `dir`, by name.
fn sub_dirs(dir: &Path) -> anyhow::Result<Vec<String>> {
    listed(dir, |e| e.path().is_dir().then(|| e.file_name().to_string_lossy().to_string()))
}

/// A chart drawn by loadgen, inline: `<figure class="CLASS" data-chart="STEM">`
/// holding the SVG of `DIR/REL/STEM.svg`, captioned with links to it and its PNG.
fn figure(dir: &Path, rel: &str, stem: &str, class: &str) -> anyhow::Result<String> {
    let path = dir.join(rel).join(format!("{stem}.svg"));
    let svg = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let svg = &svg[svg.find("<svg").unwrap_or(0)..];
    let (stem, rel) = (escape(stem), escape(rel));
    Ok(format!(
        "<figure class=\"{class}\" data-chart=\"{stem}\">\n{}\n<figcaption>{stem}: <a href=\"{rel}/{stem}.svg\">SVG</a> · \
         <a href=\"{rel}/{stem}.png\">PNG</a></figcaption>\n</figure>\n",
        svg.trim_end()
    ))
}

/// Every chart of `charts/`, under its scenario (the longest scenario name
/// its file name starts with) and the scenario's description from `env.json`.
fn charts(dir: &Path, summary: &Summary, env: Option<&serde_json::Value>) -> anyhow::Result<String> {
    let stems = svg_stems(&dir.join("charts"))?;
    let mut out = String::from("<section id=\"charts\">\n<h2>Charts</h2>\n");
    if stems.is_empty() {
        out.push_str("<p>No charts in <code>charts/</code> (a sweep with <code>--no-charts</code>): ");
        out.push_str("<code>loadgen report DIR</code> draws them.</p>\n");
    } else {
        out.push_str("<p>Hover over a point for its median, the min–max of its runs, and how many runs.</p>\n");
    }
    let scenario_of = |stem: &str| {
        summary.scenarios.iter().filter(|s| stem.starts_with(&format!("{s}-"))).max_by_key(|s| s.len()).cloned()
    };
    let about = |scenario: &str| {
        let all = env.and_then(|e| e.get("scenarios")).and_then(|s| s.as_array());
        let one = all.into_iter().flatten().find(|s| s.get("name").and_then(|n| n.as_str()) == Some(scenario));
        one.and_then(|s| s.get("about")).and_then(|a| a.as_str()).map(escape)
    };
    let mut groups: Vec<Option<String>> = summary.scenarios.iter().cloned().map(Some).collect();
    groups.push(None);
    for group in groups {
        let mine: Vec<&String> = stems.iter().filter(|s| scenario_of(s) == group).collect();
        if mine.is_empty() {
            continue;
        }
        match &group {
            Some(s) => out.push_str(&format!("<h3>{}</h3>\n", escape(s))),
            None => out.push_str("<h3>Other charts</h3>\n"),
        }
        if let Some(about) = group.as_deref().and_then(about) {
            out.push_str(&format!("<p>{about}</p>\n"));
        }
        for stem in mine {
            out.push_str(&figure(dir, "charts", stem, "chart")?);
        }
    }
    out.push_str("</section>\n");
    Ok(out)
}

/// The tables of `tables.md`, as HTML.
fn tables(summary: &Summary) -> anyhow::Result<String> {
    let md = markdown::tables_md(summary)?;
    Ok(format!("<section id=\"tables\">\n<h2>Tables</h2>\n{}</section>\n", mdhtml::to_html(&md, 2)))
}

/// The profiles section, when the sweep profiled (`profiles/`, see
/// `sweep::profiles`): breakdown charts, `breakdown.csv`, flame graphs.
fn profiles(dir: &Path) -> anyhow::Result<Option<String>> {
    let root = dir.join("profiles");
    if !root.is_dir() {
        return Ok(None);
    }
    let mut out = String::from("<section id=\"profiles\">\n<h2>Profiles</h2>\n");
    out.push_str(
        "<p>One profiled run of every model per chosen cell, apart from the measured runs: profiling costs \
         CPU, so these runs' figures are in none of the tables above.</p>\n",
    );
    for stem in svg_stems(&root)?.iter().filter(|s| s.starts_with("breakdown-")) {
        out.push_str(&figure(dir, "profiles", stem, "breakdown")?);
    }
    let csv_path = root.join("breakdown.csv");
    if let Ok(csv) = std::fs::read_to_string(&csv_path) {
        out.push_str(
            "<details>\n<summary>The breakdown by category, µs per request (<a href=\"profiles/breakdown.csv\">\
             profiles/breakdown.csv</a>)</summary>\n",
        );
        for side in ["server", "loadgen"] {
            let fate = |s: &str, m: &str, l: &str| profiled::fate(dir, s, m, l);
            match markdown::breakdown_table(&csv, side, &fate) {
                Ok(table) if table.is_empty() => {}
                Ok(table) => out.push_str(&format!("<h4>{side}</h4>\n{}", mdhtml::to_html(&table, 3))),
                Err(e) => out.push_str(&format!("<p>{}</p>\n", escape(&format!("{e:#}")))),
            }
        }
        out.push_str("</details>\n");
    }
    out.push_str("<h3>Flame graphs</h3>\n<p>Each opens on its own too; click a frame to zoom in.</p>\n");
    for scenario in sub_dirs(&root)?.iter().filter(|s| *s != "runs") {
        for cell in sub_dirs(&root.join(scenario))? {
            let rel = format!("profiles/{scenario}/{cell}");
            let sides: Vec<&str> = ["server", "loadgen"]
                .into_iter()
                .filter(|s| dir.join(&rel).join(format!("{s}.svg")).is_file())
                .collect();
            if sides.is_empty() {
                continue;
            }
            let rel = escape(&rel);
            out.push_str(&format!("<details>\n<summary>{} · {}</summary>\n", escape(scenario), escape(&cell)));
            for side in sides {
                out.push_str(&format!(
                    "<figure class=\"flame\"><object type=\"image/svg+xml\" data=\"{rel}/{side}.svg\"></object>\
                     <figcaption><a href=\"{rel}/{side}.svg\">{rel}/{side}.svg</a></figcaption></figure>\n"
                ));
            }
            out.push_str("</details>\n");
        }
    }
    out.push_str("</section>\n");
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    const VERDICT: &str = "<section id=\"verdict\"><h2>Verdict</h2><table id=\"verdict-table\"></table></section>";
    const FAILURES: &str = "<section id=\"failures\"><h2>What failed</h2></section>";

    #[test]
    fn the_page_holds_every_chart_the_tables_and_the_provenance_in_order() {
        let dir = testdata::scratch("page-whole");
        let mut summary = testdata::summary();
        for r in summary.records.iter_mut().filter(|r| r.model == "tokio") {
            r.model = "to<k>io".into();
        }
        summary.models.iter_mut().filter(|m| *m == "tokio").for_each(|m| *m = "to<k>io".into());
        let files = crate::output::charts::draw_all(&dir, &summary).unwrap();
        let env = serde_json::json!({"git": {"revision": "abc123", "dirty": false}, "scenarios": [
            {"name": "echo-saturate", "about": "closed loop & full load"}]});
        std::fs::write(dir.join("env.json"), env.to_string()).unwrap();
        let page = std::fs::read_to_string(write(&dir, &summary, VERDICT, FAILURES).unwrap()).unwrap();

        let svgs = files.iter().filter(|f| f.extension().unwrap() == "svg").count();
        assert_eq!(page.matches("<figure class=\"chart\"").count(), svgs, "one figure per chart file");
        for f in files.iter().filter(|f| f.extension().unwrap() == "svg") {
            let stem = f.file_stem().unwrap().to_string_lossy();
            assert!(page.contains(&format!("data-chart=\"{stem}\">\n<svg")), "{stem} not inline");
        }
        assert!(page.contains("<h3>echo-saturate</h3>\n<p>closed loop &amp; full load</p>"));
        assert!(page.contains("<title>to&lt;k&gt;io, 200 connections"), "hover of every chart point");
        assert!(page.contains("<td>to&lt;k&gt;io</td><td class=\"num\">200</td>"), "the tables, escaped");
        assert!(!page.contains("to<k>io"), "a model name is escaped wherever it shows");
        assert!(page.contains("<code>abc123</code> (clean)"), "the provenance");
        assert!(!page.contains("id=\"profiles\""), "no profiles: no section");
        let order = ["id=\"verdict\"", "id=\"charts\"", "id=\"tables\"", "id=\"provenance\"", "id=\"failures\""];
        let at: Vec<usize> = order.iter().map(|s| page.rfind(s).unwrap_or_else(|| panic!("no {s}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "sections in order: {at:?}");
        assert!(page.contains("<nav><a href=\"#verdict\">verdict</a><a href=\"#charts\">"));

        // The same folder, the same bytes.
        let again = std::fs::read_to_string(write(&dir, &summary, VERDICT, FAILURES).unwrap()).unwrap();
        assert!(page == again, "the page is not deterministic");
    }

    #[test]
    fn profiles_are_shown_where_the_sweep_has_them() {
        let dir = testdata::scratch("page-profiles");
        let summary = testdata::summary();
        let cell = dir.join("profiles/echo-saturate/mio-single-c200");
        std::fs::create_dir_all(&cell).unwrap();
        std::fs::create_dir_all(dir.join("profiles/runs/echo-saturate")).unwrap();
        std::fs::write(cell.join("server.svg"), "<svg></svg>").unwrap();
        std::fs::write(
            dir.join("profiles/breakdown.csv"),
            "scenario,model,level,side,category,us_per_req,share,samples,named_share\n\
             echo-saturate,mio-single,200,server,user,3.000,1.0,400,1.0000\n",
        )
        .unwrap();
        let run = serde_json::to_vec(&testdata::result("mio-single", 200, 1000.0)).unwrap();
        std::fs::write(dir.join("profiles/runs/echo-saturate/mio-single-c200-r1.json"), run).unwrap();
        std::fs::write(dir.join("profiles/breakdown-server-echo-saturate.svg"), "<svg><text>bars</text></svg>\n")
            .unwrap();
        let page = std::fs::read_to_string(write(&dir, &summary, VERDICT, FAILURES).unwrap()).unwrap();
        assert!(page.contains("<section id=\"profiles\">"));
        assert!(page
            .contains("<figure class=\"breakdown\" data-chart=\"breakdown-server-echo-saturate\">\n<svg><text>bars"));
        let profiles = &page[page.find("<section id=\"profiles\">").unwrap()..];
        let row = profiles.lines().find(|l| l.contains("<td>mio-single</td>")).expect("the breakdown's row");
        assert!(row.contains("<td>ok</td>") && row.contains("3.00"), "{row}");
        assert!(page.contains("<h4>server</h4>") && !page.contains("<h4>loadgen</h4>"), "a side without rows: none");
        assert!(page.contains("data=\"profiles/echo-saturate/mio-single-c200/server.svg\""));
        assert!(!page.contains("mio-single-c200/loadgen.svg"), "a side without a flame graph is not linked");
        assert_eq!(page.matches("<figure class=\"chart\"").count(), 0, "no charts drawn: none shown");
        assert!(page.contains("<code>--no-charts</code>"));
    }
}
