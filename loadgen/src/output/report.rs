//! `loadgen report DIR`: redraw a sweep's charts and tables from what it
//! saved (`summary.json` and the per-run files, loose under `runs/` or in
//! `runs.tar.zst`: [`crate::archive`]), write its headline verdict
//! (`verdict.json`, beside the reference's: [`write_verdict`]) and its page
//! (`index.html`, [`super::page`]), print the tables, and optionally
//! refresh the generated regions of REPORT.md.
//!
//! REPORT.md is prose written by hand around tables written by this tool.
//! A generated region is delimited by marker comments:
//!
//! ```text
//! <!-- BEGIN GENERATED: echo-saturate -->
//! (the model × level table of scenario echo-saturate)
//! <!-- END GENERATED: echo-saturate -->
//! <!-- BEGIN GENERATED: echo-saturate-peers -->
//! (the event-loop peers side by side)
//! <!-- END GENERATED: echo-saturate-peers -->
//! ```
//!
//! Only the text between the markers changes. The regions are named in
//! [`ReportArgs::update_report`], each one of [`markdown`]'s tables; one
//! whose scenario the sweep did not run is left as it was, and said so.
//! `floor` and `performance` (echo-saturate against the floor the sweep
//! measured at its start, and the performance targets marked met or not)
//! are also written to `DIR/performance.md`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{charts, json, markdown, page, profiled, verdict, File, FILES};
use crate::files::write_atomic;
use crate::records::sweep::Summary;
use crate::records::verdict::Headline;
use crate::sweep::env_json::{load_floor, SweepFloor};

/// Redraw charts, tables and the page (index.html) from a sweep's saved results.
#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// The sweep's results directory (`results/<run-id>`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Rewrite the generated regions of this markdown file
    /// (`<!-- BEGIN GENERATED: NAME -->` ... `<!-- END GENERATED: NAME -->`,
    /// NAME a scenario, SCENARIO-peers, SCENARIO-cpu-attribution,
    /// SCENARIO-rungs (a ladder's every rung), SCENARIO-methods (ECHO
    /// beside DELAY), SCENARIO-run-queue (the server's threads' wait to run),
    /// `profiles-server` and `profiles-loadgen` (the profiled runs' CPU per
    /// request by category), `floor` or `performance`).
    #[arg(long, value_name = "REPORT.md")]
    pub update_report: Option<PathBuf>,
    /// Tables only: do not redraw the charts.
    #[arg(long)]
    pub no_charts: bool,
    /// Do not print the tables on stdout.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let summary = Summary::load(&args.dir)?;
    let floor = load_floor(&args.dir)?;
    let performance = performance_md(&summary, floor.as_ref());
    if let Some(text) = &performance {
        let path = args.dir.join("performance.md");
        write_atomic(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let tables: Vec<File> = FILES.into_iter().filter(|(name, _)| *name != json::FILE).collect();
    super::write(&args.dir, &summary, &tables)?;
    let headline = write_verdict(&args.dir, &summary)?;
    if !args.no_charts {
        let files = charts::draw_all(&args.dir, &summary)?;
        eprintln!("{} charts written to {}", files.len(), args.dir.join("charts").display());
    }
    page::write(&args.dir, &summary, &verdict::verdict_section(&headline), &verdict::failures_section(&summary))?;
    eprint!("{}", verdict::terminal(&headline, &args.dir.join(verdict::PAGE)));
    if !args.quiet {
        print!("{}", markdown::tables_md(&summary)?);
        if let Some(text) = &performance {
            print!("\n{text}");
        }
    }
    if let Some(path) = &args.update_report {
        let text = std::fs::read_to_string(path).with_context(|| format!("--update-report {}", path.display()))?;
        let breakdown = read_breakdown(&args.dir)?;
        let update = update_generated(&text, |name| {
            profiles_region(breakdown.as_deref(), name, &|s, m, l| profiled::fate(&args.dir, s, m, l))
                .or_else(|| region(&summary, floor.as_ref(), name))
        })
        .with_context(|| format!("--update-report {}", path.display()))?;
        for name in &update.left_alone {
            eprintln!("{}: region {name} left as it was: no such scenario in {}", path.display(), args.dir.display());
        }
        write_atomic(path, update.text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("{}: {} generated regions rewritten", path.display(), update.replaced.len());
    }
    Ok(())
}

/// The sweep's headline verdict ([`crate::verdict`]), set beside the
/// reference's, written to `DIR/verdict.json`; every sweep's end and
/// `loadgen report` call it (an old sweep gets its verdict from its
/// summary).
pub fn write_verdict(dir: &Path, summary: &Summary) -> anyhow::Result<Headline> {
    let mut headline = crate::verdict::headline(summary);
    crate::verdict::compare_with_reference(&mut headline, dir);
    let path = dir.join(crate::records::verdict::FILE);
    let mut bytes = serde_json::to_vec_pretty(&headline)?;
    bytes.push(b'\n');
    write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(headline)
}

/// `performance.md`: the floor and performance tables, when the sweep ran echo-saturate.
fn performance_md(summary: &Summary, floor: Option<&SweepFloor>) -> Option<String> {
    let perf = region(summary, floor, "performance")?;
    let floor =
        region(summary, floor, "floor").unwrap_or_else(|| "Not measured (the sweep ran with --no-floor).\n".into());
    Some(format!(
        "# Sweep {}: performance\n\n## Floor\n\n{floor}\n## echo-saturate against the floor\n\n{perf}",
        summary.run_id
    ))
}

/// `DIR/profiles/breakdown.csv`, if the sweep profiled (`--profile`).
fn read_breakdown(dir: &Path) -> anyhow::Result<Option<String>> {
    let path = dir.join("profiles").join("breakdown.csv");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Regions `profiles-server` and `profiles-loadgen`: one side of the
/// profiled runs' breakdown ([`markdown::breakdown_table`]) with what
/// became of each run (`run`), where the sweep has it. A breakdown that
/// cannot be read is said in the region.
fn profiles_region(breakdown: Option<&str>, name: &str, run: &dyn Fn(&str, &str, &str) -> String) -> Option<String> {
    let side = name.strip_prefix("profiles-").filter(|s| ["server", "loadgen"].contains(s))?;
    match markdown::breakdown_table(breakdown?, side, run) {
        Ok(table) if table.is_empty() => None,
        Ok(table) => Some(table),
        Err(e) => Some(format!("profiles/breakdown.csv could not be read: {e:#}\n")),
    }
}

/// The generated text for region `name`, if this sweep has it.
fn region(summary: &Summary, floor: Option<&SweepFloor>, name: &str) -> Option<String> {
    let ran = |scenario: &str| summary.scenarios.iter().any(|s| s == scenario);
    match name {
        "floor" => return floor.map(markdown::floor_table),
        "performance" => {
            return ran(crate::sweep::targets::SATURATE).then(|| markdown::performance_table(summary, floor));
        }
        _ => {}
    }
    if ran(name) && summary.is_ladder(name) {
        return Some(markdown::knee_table(summary, name));
    }
    if ran(name) {
        return Some(markdown::scenario_table(summary, name));
    }
    if let Some(scenario) = name.strip_suffix("-cpu-attribution") {
        return ran(scenario).then(|| markdown::attribution_table(summary, scenario));
    }
    if let Some(scenario) = name.strip_suffix("-run-queue") {
        let table = markdown::run_queue_table(summary, scenario);
        return (!table.is_empty()).then_some(table);
    }
    if let Some(ladder) = name.strip_suffix("-rungs").filter(|s| summary.is_ladder(s)) {
        return Some(markdown::rung_table(summary, ladder));
    }
    if let Some(mix) = name.strip_suffix("-methods").filter(|s| summary.delay_us(s).is_some()) {
        return Some(markdown::method_table(summary, mix));
    }
    let scenario = name.strip_suffix("-peers")?;
    ran(scenario).then(|| markdown::peer_table(summary, scenario))
}

/// What [`update_generated`] did.
#[derive(Debug, PartialEq)]
pub struct Update {
    pub text: String,
    pub replaced: Vec<String>,
    /// Regions `generate` had nothing for.
    pub left_alone: Vec<String>,
}

const BEGIN: &str = "<!-- BEGIN GENERATED: ";
const END: &str = "<!-- END GENERATED: ";

/// Replace the body of every generated region in `text` by
/// `generate(name)`, when it returns something. Fails on a BEGIN without
/// its END, naming the region and its line.
pub fn update_generated(text: &str, generate: impl Fn(&str) -> Option<String>) -> anyhow::Result<Update> {
    let mut out = String::with_capacity(text.len());
    let mut update = Update { text: String::new(), replaced: Vec::new(), left_alone: Vec::new() };
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let line = text[..text.len() - rest.len() + start].lines().count() + 1;
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(close) = after_begin.find("-->") else { bail!("line {line}: unterminated marker comment") };
        let name = after_begin[..close].trim().to_string();
        if name.is_empty() || name.contains('\n') {
            bail!("line {line}: a BEGIN GENERATED marker needs a name, as in `{BEGIN}echo-saturate -->`");
        }
        let body_start = start + BEGIN.len() + close + 3;
        let end_marker = format!("{END}{name} -->");
        let Some(body_len) = rest[body_start..].find(&end_marker) else {
            bail!("line {line}: `{BEGIN}{name} -->` has no matching `{end_marker}`")
        };
        if rest[body_start..body_start + body_len].contains(BEGIN) {
            bail!("line {line}: region {name} contains another BEGIN GENERATED marker before its end");
        }
        out.push_str(&rest[..body_start]);
        match generate(&name) {
            Some(body) => {
                out.push('\n');
                out.push_str(body.trim_end_matches('\n'));
                out.push('\n');
                update.replaced.push(name);
            }
            None => {
                out.push_str(&rest[body_start..body_start + body_len]);
                update.left_alone.push(name);
            }
        }
        rest = &rest[body_start + body_len..];
        out.push_str(&rest[..end_marker.len()]);
        rest = &rest[end_marker.len()..];
    }
    if let Some(stray) = rest.find(END) {
        let line = text[..text.len() - rest.len() + stray].lines().count() + 1;
        bail!("line {line}: END GENERATED marker without a BEGIN");
    }
    out.push_str(rest);
    update.text = out;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    const DOC: &str = "# Report\n\nProse before.\n\n<!-- BEGIN GENERATED: echo-saturate -->\nold table\n<!-- END GENERATED: echo-saturate -->\n\nProse between.\n<!-- BEGIN GENERATED: backend-delay -->\nkeep me\n<!-- END GENERATED: backend-delay -->\nProse after.\n";

    #[test]
    fn replaces_only_between_markers() {
        let u = update_generated(DOC, |n| (n == "echo-saturate").then(|| "| new |\n".to_string())).unwrap();
        assert_eq!(u.text, DOC.replace("old table", "| new |"));
        assert_eq!(u.replaced, vec!["echo-saturate"]);
        assert_eq!(u.left_alone, vec!["backend-delay"]);
        // Idempotent: a second pass changes nothing.
        let again = update_generated(&u.text, |n| (n == "echo-saturate").then(|| "| new |\n".to_string())).unwrap();
        assert_eq!(again.text, u.text);
    }

    #[test]
    fn where_the_time_goes_regions_come_from_the_breakdown_and_the_run_queue() {
        let csv = "scenario,model,level,side,category,us_per_req,share,samples,named_share\n\
                   echo-saturate,mio-single,1000,server,tcp_ip,3.000,1.0,400,1.0000\n";
        let ok = |_: &str, _: &str, _: &str| "ok".to_string();
        let server = profiles_region(Some(csv), "profiles-server", &ok).unwrap();
        assert!(server.contains("| echo-saturate | mio-single | 1000 | ok |"), "{server}");
        assert_eq!(profiles_region(Some(csv), "profiles-loadgen", &ok), None, "no load generator rows: left alone");
        assert_eq!(profiles_region(None, "profiles-server", &ok), None, "no --profile: left alone");
        assert_eq!(profiles_region(Some(csv), "profiles-nobody", &ok), None);
        let broken = profiles_region(Some("h\na,b\n"), "profiles-server", &ok).unwrap();
        assert!(broken.contains("could not be read"), "{broken}");
        let mut summary = testdata::summary();
        assert_eq!(region(&summary, None, "echo-saturate-run-queue"), None, "no run recorded a wait");
        let run = summary.records.iter_mut().find_map(|r| r.result.as_mut()).unwrap();
        run.run_queue = Some(Default::default());
        assert!(region(&summary, None, "echo-saturate-run-queue").unwrap().contains("run-queue wait"));
    }

    #[test]
    fn text_without_markers_is_unchanged() {
        let u = update_generated("just prose\n", |_| Some("x".into())).unwrap();
        assert_eq!(u.text, "just prose\n");
        assert!(u.replaced.is_empty());
    }

    #[test]
    fn refuses_broken_markers() {
        for (text, says) in [
            ("a\n<!-- BEGIN GENERATED: x -->\nbody\n", ["line 2", "no matching"]),
            ("<!-- END GENERATED: x -->\n", ["line 1", "without a BEGIN"]),
            (
                "<!-- BEGIN GENERATED: x -->\n<!-- BEGIN GENERATED: y -->\n<!-- END GENERATED: x -->",
                ["line 1", "another BEGIN"],
            ),
        ] {
            let e = update_generated(text, |_| None).unwrap_err().to_string();
            assert!(says.iter().all(|s| e.contains(s)), "{e}");
        }
    }

    #[test]
    fn regions_come_from_the_summary() {
        let summary = testdata::summary();
        assert!(region(&summary, None, "echo-saturate").unwrap().contains("| pool | 1000 |"));
        assert!(region(&summary, None, "echo-saturate-peers")
            .unwrap()
            .starts_with("| conns | figure | mio-single | mio-multi"));
        assert_eq!(region(&summary, None, "cpu-work"), None);
        assert_eq!(region(&summary, None, "cpu-work-peers"), None);
        let attribution = region(&summary, None, "echo-saturate-cpu-attribution").unwrap();
        assert!(attribution.contains("| both CPU µs/req |") && attribution.contains("cost claims rest on it"));
        assert_eq!(region(&summary, None, "cpu-work-cpu-attribution"), None);
        assert_eq!(region(&summary, None, "floor"), None, "no floor measured: the region stays");
        let perf = region(&summary, None, "performance").unwrap();
        assert!(perf.contains("server ÷ floor") && perf.contains("Targets"), "{perf}");
        assert!(performance_md(&summary, None).unwrap().contains("--no-floor"));
        let knee = testdata::knee_summary();
        assert!(region(&knee, None, "knee").unwrap().contains("| highest rate sustained (req/s) |"));
        assert!(region(&knee, None, "knee-rungs").unwrap().contains("| offered req/s | runs ok | achieved req/s |"));
        assert_eq!(region(&summary, None, "echo-saturate-rungs"), None, "no ladder, no rungs");
        let mux = testdata::multiplex_summary();
        assert!(region(&mux, None, "multiplex-methods").unwrap().contains("| ECHO p50 | ECHO p99 |"));
        assert_eq!(region(&summary, None, "echo-saturate-methods"), None, "no DELAY apart");
    }
}
