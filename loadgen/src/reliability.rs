//! `loadgen reliability DIR`: the Reliability table, from the records the
//! hardening tests leave behind.
//!
//! A benchmark is only as trustworthy as the servers and the load generator
//! under it, so the hardening tests (`servers/tests/hardening.rs`,
//! `loadgen/tests/faults.rs`) attack both with bad input, faults and
//! overload. With `IOMODELS_RELIABILITY_DIR=DIR` set, each test writes one
//! [`CaseRecord`] per (case, model) to `DIR/CASE__MODEL.json`, before its verdict
//! is final, whether it passes or fails. This module reads them back and
//! renders one markdown table: a row per case, a column per model (did it
//! survive?), the answers lost, and the command that reruns the case; then
//! every failure with what went wrong, and what each run measured.
//!
//! With `--update-report REPORT.md`, the table replaces the body of the
//! `<!-- BEGIN GENERATED: reliability -->` ... `<!-- END GENERATED: reliability -->`
//! region of that file (see [`crate::output::report::update_generated`]); a file
//! without that region is left alone and the table is printed instead.
//! `scripts/reliability` runs the tests and then this.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::files::write_atomic;
use crate::models::rank;
use crate::output::report::update_generated;

/// The name of the generated region in REPORT.md.
pub const REGION: &str = "reliability";

/// The environment variable that tells the hardening tests where to record.
pub const DIR_ENV: &str = "IOMODELS_RELIABILITY_DIR";

/// Render the Reliability table from the hardening tests' records.
#[derive(Clone, Debug, clap::Args)]
pub struct ReliabilityArgs {
    /// Directory of records, one `CASE__MODEL.json` per test, as the
    /// hardening tests write them when IOMODELS_RELIABILITY_DIR is set.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace the `reliability` generated region of this markdown file
    /// (`<!-- BEGIN GENERATED: reliability -->` ... `<!-- END GENERATED: reliability -->`).
    #[arg(long, value_name = "REPORT.md")]
    pub update_report: Option<PathBuf>,
}

/// One hardening test's outcome against one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case, as the test module names it (`fd_exhaustion`).
    pub case: String,
    /// The server model, or `loadgen` for the load generator's own cases.
    pub model: String,
    /// Every check of the case held.
    pub survived: bool,
    /// Answers owed to a client and never received.
    pub answers_lost: u64,
    /// What was measured, and what failed.
    pub detail: String,
    /// The exact command that reruns this (case, model).
    pub command: String,
}

impl CaseRecord {
    /// Write `DIR/CASE__MODEL.json` (atomically: a reader never sees half).
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{}__{}.json", self.case, self.model));
        write_atomic(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// Write to `$IOMODELS_RELIABILITY_DIR` if it is set; never fails the
    /// caller (a test must keep its own verdict), but says why it could not.
    pub fn write_if_asked(&self) {
        let Some(dir) = std::env::var_os(DIR_ENV) else { return };
        if let Err(e) = self.write(Path::new(&dir)) {
            eprintln!("{DIR_ENV}: {e:#}");
        }
    }
}

/// Every `*.json` record in `dir`, sorted by case then model. A file that
/// is not a record is an error naming the file.
pub fn load(dir: &Path) -> anyhow::Result<Vec<CaseRecord>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read the records directory {}", dir.display()))?;
    let mut records = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden || path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let record: CaseRecord = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a reliability record (case, model, survived, ...)", path.display()))?;
        records.push(record);
    }
    if records.is_empty() {
        bail!(
            "{}: no reliability records; run the hardening tests with {DIR_ENV}={} first (scripts/reliability)",
            dir.display(),
            dir.display()
        );
    }
    // Models in reading order; others (`loadgen`, for the load generator's
    // own cases) after them.
    records.sort_by(|a, b| (&a.case, rank(&a.model)).cmp(&(&b.case, rank(&b.model))));
    Ok(records)
}

/// The markdown: the table, then the failures, then what each run measured.
pub fn render(records: &[CaseRecord]) -> String {
    let mut out = table(records);
    let tried = records.len();
    let survived = records.iter().filter(|r| r.survived).count();
    let lost: u64 = records.iter().map(|r| r.answers_lost).sum();
    let _ = writeln!(
        out,
        "\n{survived} of {tried} (case, model) runs survived every check; {lost} answers lost in all. \
         \"yes\": every check of the case held; **no**: see below; –: not tried."
    );
    let failed: Vec<&CaseRecord> = records.iter().filter(|r| !r.survived).collect();
    if !failed.is_empty() {
        out.push_str("\nFailures:\n\n");
        for r in failed {
            let _ = writeln!(
                out,
                "- **{} / {}** ({} answers lost): {}  \n  rerun: `{}`",
                r.case,
                r.model,
                r.answers_lost,
                one_line(&r.detail),
                r.command
            );
        }
    }
    out.push_str("\n<details><summary>What each run measured</summary>\n\n");
    for r in records {
        let _ = writeln!(out, "- {} / {}: {}", r.case, r.model, one_line(&r.detail));
    }
    out.push_str("\n</details>\n");
    out
}

/// One row per case, one column per model (in reading order): survived or not.
fn table(records: &[CaseRecord]) -> String {
    let models: Vec<String> = {
        let set: BTreeSet<(usize, String)> = records.iter().map(|r| rank(&r.model)).collect();
        set.into_iter().map(|(_, m)| m).collect()
    };
    let mut cases: BTreeMap<&str, Vec<&CaseRecord>> = BTreeMap::new();
    for r in records {
        cases.entry(r.case.as_str()).or_default().push(r);
    }
    let mut out = String::from("| case | models tried |");
    for m in &models {
        let _ = write!(out, " {m} |");
    }
    out.push_str(" answers lost | command |\n|---|---:|");
    out.push_str(&":---:|".repeat(models.len()));
    out.push_str("---:|---|\n");
    for (case, rows) in &cases {
        let _ = write!(out, "| {case} | {} |", rows.len());
        for m in &models {
            let cell = match rows.iter().find(|r| &r.model == m) {
                Some(r) if r.survived => "yes",
                Some(_) => "**no**",
                None => "–",
            };
            let _ = write!(out, " {cell} |");
        }
        let lost: u64 = rows.iter().map(|r| r.answers_lost).sum();
        let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        let _ = writeln!(out, " {lost} | `{}` |", case_command(&commands));
    }
    out
}

/// One command that reruns a whole row: the records' own command when
/// there is one, else their common prefix cut at a `::` test-path
/// boundary, as a filter that matches every model's test (so without
/// `--exact`).
fn case_command(commands: &[&str]) -> String {
    let first = commands.first().copied().unwrap_or_default();
    if commands.iter().all(|c| *c == first) {
        return first.to_string();
    }
    let mut prefix = first;
    for c in &commands[1..] {
        let common = prefix.char_indices().zip(c.chars()).take_while(|((_, a), b)| a == b).count();
        prefix = &prefix[..prefix.char_indices().nth(common).map_or(prefix.len(), |(i, _)| i)];
    }
    match prefix.rfind("::") {
        Some(i) => prefix[..i + 2].replace(" --exact", ""),
        None => format!("{first} (and the same for each model)"),
    }
}

/// A record's detail on one table line: no newlines, no bare `|`.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// `loadgen reliability DIR [--update-report REPORT.md]`.
pub fn reliability(args: &ReliabilityArgs) -> anyhow::Result<()> {
    let records = load(&args.dir)?;
    let table = render(&records);
    print!("{table}");
    let Some(path) = &args.update_report else { return Ok(()) };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("--update-report {}: {e}; the table is printed above instead", path.display());
            return Ok(());
        }
    };
    let update = update_generated(&text, |name| (name == REGION).then(|| table.clone()))
        .with_context(|| format!("--update-report {}", path.display()))?;
    if update.replaced.is_empty() {
        eprintln!(
            "--update-report {}: no `<!-- BEGIN GENERATED: {REGION} -->` region; file left alone, table printed above",
            path.display()
        );
        return Ok(());
    }
    write_atomic(path, update.text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("{}: reliability table rewritten ({} records)", path.display(), records.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(case: &str, model: &str, survived: bool, lost: u64) -> CaseRecord {
        CaseRecord {
            case: case.into(),
            model: model.into(),
            survived,
            answers_lost: lost,
            detail: format!("{case} on {model}: a | b\nsecond line"),
            command: format!(
                "cargo test -p servers --test hardening -- --include-ignored --exact {case}::{}",
                model.replace('-', "_")
            ),
        }
    }

    #[test]
    fn one_row_per_case_one_column_per_model() {
        let records = vec![
            rec("churn", "tokio", true, 0),
            rec("churn", "thread-per-conn", true, 0),
            rec("churn", "mio-single", false, 3),
            rec("fd_exhaustion", "pool", true, 0),
        ];
        let md = render(&records);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| case | models tried | thread-per-conn | pool | mio-single | tokio | answers lost | command |"
        );
        assert_eq!(
            lines[2],
            "| churn | 3 | yes | – | **no** | yes | 3 | `cargo test -p servers --test hardening -- --include-ignored churn::` |"
        );
        assert!(lines[3].starts_with("| fd_exhaustion | 1 | – | yes | – | – | 0 | `cargo test"), "{}", lines[3]);
        assert!(lines[3].ends_with("--exact fd_exhaustion::pool` |"), "{}", lines[3]);
        assert!(md.contains("3 of 4 (case, model) runs survived every check; 3 answers lost in all."));
        assert!(md.contains("- **churn / mio-single** (3 answers lost): churn on mio-single: a \\| b second line"));
        assert!(md.contains(
            "rerun: `cargo test -p servers --test hardening -- --include-ignored --exact churn::mio_single`"
        ));
    }

    #[test]
    fn records_round_trip_through_a_directory() {
        let dir = crate::testdata::scratch("reliability-records");
        assert!(load(&dir.join("missing")).is_err(), "a missing directory is an error");
        assert!(load(&dir).is_err(), "an empty one too");
        let a = rec("slowloris", "pool", true, 0);
        let b = rec("churn", "libevent", false, 1);
        a.write(&dir).unwrap();
        b.write(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        assert_eq!(load(&dir).unwrap(), vec![b.clone(), a]);
        std::fs::write(dir.join("broken.json"), "{}").unwrap();
        let e = format!("{:#}", load(&dir).unwrap_err());
        assert!(e.contains("broken.json") && e.contains("not a reliability record"), "{e}");
    }

    #[test]
    fn report_region_is_replaced_and_only_it() {
        let dir = crate::testdata::scratch("reliability-report");
        rec("churn", "pool", true, 0).write(&dir.join("records")).unwrap();
        let report = dir.join("REPORT.md");
        let before =
            "# R\n\nprose\n<!-- BEGIN GENERATED: reliability -->\nold\n<!-- END GENERATED: reliability -->\nafter\n";
        std::fs::write(&report, before).unwrap();
        reliability(&ReliabilityArgs { dir: dir.join("records"), update_report: Some(report.clone()) }).unwrap();
        let after = std::fs::read_to_string(&report).unwrap();
        assert!(after.starts_with("# R\n\nprose\n<!-- BEGIN GENERATED: reliability -->\n| case |"), "{after}");
        assert!(after.ends_with("</details>\n<!-- END GENERATED: reliability -->\nafter\n"), "{after}");
        assert!(!after.contains("old"));

        // Without the region, the file is left exactly as it was.
        std::fs::write(&report, "# R\nno markers\n").unwrap();
        reliability(&ReliabilityArgs { dir: dir.join("records"), update_report: Some(report.clone()) }).unwrap();
        assert_eq!(std::fs::read_to_string(&report).unwrap(), "# R\nno markers\n");
    }

    #[test]
    fn row_command_falls_back_to_the_case_filter() {
        assert_eq!(case_command(&["a b --exact x::y", "a b --exact x::y"]), "a b --exact x::y");
        assert_eq!(case_command(&["a --exact x::pool", "a --exact x::tokio"]), "a x::");
        assert_eq!(case_command(&["one", "two"]), "one (and the same for each model)");
    }
}
