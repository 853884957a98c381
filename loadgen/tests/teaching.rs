//! TEACHING.md's exercises, run as written, so that none of them goes stale.
//!
//! Every fenced `sh` block of TEACHING.md is a list of commands, and the
//! line after it an `<!-- expect: exit=N; "text"; ... -->` comment: the
//! exit status each command must end with and the text its output must
//! contain (the lines the exercise's question asks the student to read).
//! The commands run from the repository root with `IOMODELS_BIN_DIR` set to
//! this test's binaries, so `scripts/try` builds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One command of TEACHING.md and what it must print.
#[derive(Debug, PartialEq)]
struct Exercise {
    command: Vec<String>,
    exit: i32,
    expect: Vec<String>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory holding this build's `loadgen` and `servers`.
fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_loadgen")).parent().unwrap().to_path_buf();
    assert!(
        dir.join("servers").exists(),
        "no servers binary beside loadgen in {}: run `cargo build --workspace --bins` first",
        dir.display()
    );
    dir
}

/// The exercises of a TEACHING.md text, in order. Panics, naming the line,
/// on a block without its expect comment or a malformed one.
fn exercises(text: &str) -> Vec<Exercise> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```sh" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start + lines[start..].iter().position(|l| l.trim() == "```").expect("an unclosed ```sh block");
        let expect_line = lines.get(end + 1).map(|l| l.trim()).unwrap_or_default();
        let (exit, expect) = parse_expect(expect_line)
            .unwrap_or_else(|| panic!("TEACHING.md line {}: a ```sh block must be followed by <!-- expect: exit=N; \"text\" -->, found {expect_line:?}", end + 2));
        for command in lines[start..end].iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            let command: Vec<String> = command.split_whitespace().map(String::from).collect();
            found.push(Exercise { command, exit, expect: expect.clone() });
        }
        i = end + 1;
    }
    found
}

/// `<!-- expect: exit=1; "never served 4"; "fairness" -->` → (1, [...]).
fn parse_expect(line: &str) -> Option<(i32, Vec<String>)> {
    let body = line.strip_prefix("<!-- expect:")?.strip_suffix("-->")?;
    let mut parts = body.split(';').map(str::trim);
    let exit = parts.next()?.strip_prefix("exit=")?.parse().ok()?;
    let expect = parts.map(|p| p.strip_prefix('"')?.strip_suffix('"').map(String::from)).collect::<Option<Vec<_>>>()?;
    Some((exit, expect))
}

#[test]
fn parse_expect_reads_the_exit_status_and_the_texts() {
    assert_eq!(
        parse_expect(r#"<!-- expect: exit=1; "never served 4"; "fairness" -->"#),
        Some((1, vec!["never served 4".into(), "fairness".into()]))
    );
    assert_eq!(parse_expect(r#"<!-- expect: exit=0 -->"#), Some((0, vec![])));
    assert_eq!(parse_expect(r#"<!-- expect: 0; "x" -->"#), None);
    assert_eq!(parse_expect(r#"<!-- expect: exit=0; x -->"#), None);
}

#[test]
fn every_block_is_parsed_with_its_expectation() {
    let text = "intro\n```sh\nscripts/try a -- -c 1\nscripts/try b\n```\n<!-- expect: exit=0; \"ok\" -->\n```sh\nscripts/try c\n```\n<!-- expect: exit=1 -->\n";
    let found = exercises(text);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].command, ["scripts/try", "a", "--", "-c", "1"]);
    assert_eq!((found[1].exit, found[1].expect.clone()), (0, vec!["ok".to_string()]));
    assert_eq!((found[2].exit, found[2].expect.len()), (1, 0));
}

#[test]
#[should_panic(expected = "must be followed by")]
fn a_block_without_its_expectation_is_refused() {
    exercises("```sh\nscripts/try a\n```\nno comment\n");
}

#[test]
fn every_command_in_teaching_md_runs_and_prints_what_its_question_reads() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("TEACHING.md")).expect("read TEACHING.md");
    let all = exercises(&text);
    assert!(all.len() >= 6, "TEACHING.md has {} commands; expected its exercises", all.len());
    let bins = bin_dir();
    let mut failures = Vec::new();
    for exercise in &all {
        let shown = exercise.command.join(" ");
        assert_eq!(exercise.command[0], "scripts/try", "{shown}: every exercise goes through scripts/try");
        let out = Command::new("bash")
            .args(&exercise.command)
            .current_dir(&root)
            .env("IOMODELS_BIN_DIR", &bins)
            .output()
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let missing: Vec<&String> = exercise.expect.iter().filter(|t| !printed.contains(t.as_str())).collect();
        if out.status.code() != Some(exercise.exit) || !missing.is_empty() {
            failures.push(format!(
                "{shown}: exit {:?} (want {}), missing {missing:?}\n{printed}",
                out.status.code(),
                exercise.exit
            ));
        }
    }
    assert!(failures.is_empty(), "TEACHING.md commands that no longer do what the text says:\n{}", failures.join("\n"));
}
