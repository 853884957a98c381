//! The regression check tested on altered copies of a real quick sweep
//! (tests/fixtures/check/summary.json, timeseries emptied to keep it small)
//! against the baseline made from it (tests/fixtures/check/baseline.json,
//! `loadgen baseline --results tests/fixtures/check`). The unaltered sweep
//! must pass; a copy with one model's context switches doubled, one model's
//! throughput halved, a mismatch, or a connection lost must fail, naming
//! what was altered and nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use loadgen::check::baseline::Baseline;
use loadgen::check::compare::{evaluate, Verdict};
use loadgen::records::sweep::Summary;
use serde_json::Value;

mod common;
use common::{tempdir, text};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

/// The fixture sweep as `Summary::load` reads it (its runs' configurations
/// filled in from their stored command lines), for the tests to alter.
fn fixture_summary() -> Value {
    serde_json::to_value(Summary::load(&fixtures()).unwrap()).unwrap()
}

/// Write `summary` as DIR/summary.json.
fn write_sweep(dir: &Path, summary: &Value) {
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(summary).unwrap()).unwrap();
}

fn check(results: &Path, extra: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(["check", "--baseline"])
        .arg(fixtures().join("baseline.json"))
        .arg("--results")
        .arg(results)
        .args(extra)
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen check")
}

/// `loadgen baseline --results DIR... --out OUT`, which must succeed.
fn make_baseline(results: &[&Path], out: &Path) {
    let mut cmd = Command::new(LOADGEN);
    cmd.arg("baseline");
    for dir in results {
        cmd.arg("--results").arg(dir);
    }
    let run = cmd.arg("--out").arg(out).stdin(Stdio::null()).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
}

fn regressed_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("REGRESSED ")).map(String::from).collect()
}

/// Apply `f` to the result of every record of `scenario` (any if None),
/// `model` and `level` (any if None).
fn alter(summary: &mut Value, scenario: Option<&str>, model: &str, level: Option<u64>, f: impl Fn(&mut Value)) {
    let mut hits = 0;
    for r in summary["records"].as_array_mut().unwrap() {
        let matches = scenario.is_none_or(|s| r["scenario"] == s)
            && r["model"] == model
            && level.is_none_or(|l| r["level"].as_u64() == Some(l));
        if matches {
            f(&mut r["result"]);
            hits += 1;
        }
    }
    assert!(hits > 0, "no record of {model} {scenario:?} {level:?} in the fixture");
}

fn scale(v: &mut Value, by: f64) {
    *v = Value::from(v.as_f64().unwrap() * by);
}

#[test]
fn the_unaltered_sweep_passes_and_every_output_is_written() {
    let tmp = tempdir();
    write_sweep(&tmp, &fixture_summary());
    let (md, bench, step) = (tmp.join("check.md"), tmp.join("bench.json"), tmp.join("step-summary.md"));
    std::fs::write(&step, "earlier step\n").unwrap();
    let out = Command::new(LOADGEN)
        .args(["check", "--baseline"])
        .arg(fixtures().join("baseline.json"))
        .arg("--results")
        .arg(&tmp)
        .arg("--summary")
        .arg(&md)
        .arg("--bench-json")
        .arg(&bench)
        .env("GITHUB_STEP_SUMMARY", &step)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(regressed_lines(&out).is_empty(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.starts_with("## Regression check: PASS"), "{stdout}");
    assert!(stdout.contains("| figure | baseline | now | change | verdict |"), "{stdout}");
    assert!(stdout.contains("| echo-saturate mio-multi c1000 cs/req | "), "{stdout}");
    assert!(stdout.contains("| invariant: no mismatches | holds | holds at 24 places |"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&md).unwrap(), stdout, "--summary holds the table printed");
    assert_eq!(
        std::fs::read_to_string(&step).unwrap(),
        format!("earlier step\n{stdout}"),
        "appended to GITHUB_STEP_SUMMARY"
    );

    // customSmallerIsBetter: name, unit, value for every figure.
    let bench: Value = serde_json::from_str(&std::fs::read_to_string(&bench).unwrap()).unwrap();
    let entries = bench.as_array().unwrap();
    let baseline = Baseline::load(&fixtures().join("baseline.json")).unwrap();
    assert_eq!(entries.len(), baseline.figures.len());
    for e in entries {
        assert!(e["name"].is_string() && e["unit"].is_string(), "{e}");
        assert!(e["value"].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{e}");
    }
    let ratio = entries
        .iter()
        .find(|e| e["name"].as_str().unwrap().starts_with("echo-saturate mio-multi c1000 throughput"))
        .unwrap();
    assert!(ratio["name"].as_str().unwrap().contains("inverted"), "bigger-is-better figures are inverted: {ratio}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn doubled_context_switches_fail_naming_each_altered_figure() {
    let tmp = tempdir();
    let mut s = fixture_summary();
    alter(&mut s, None, "thread-per-conn", None, |r| {
        scale(&mut r["server"]["voluntary_cs_per_req"], 2.0);
        scale(&mut r["server"]["involuntary_cs_per_req"], 2.0);
    });
    write_sweep(&tmp, &s);
    let out = check(&tmp, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut lines = regressed_lines(&out);
    lines.sort();
    let named: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        named,
        ["REGRESSED echo-saturate thread-per-conn c1000 cs/req", "REGRESSED echo-saturate thread-per-conn c200 cs/req",],
        "{}",
        text(&out)
    );
    let line = lines.iter().find(|l| l.contains("echo-saturate thread-per-conn c200")).unwrap();
    assert!(line.contains("(+100%, tolerance +25%)"), "{line}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("## Regression check: FAIL"));
    // Open-loop figures are dominated by wake-ups: reported, never failed.
    let paced = stdout.lines().find(|l| l.starts_with("| echo-paced thread-per-conn c200 cs/req")).unwrap();
    assert!(paced.contains("not gated"), "{paced}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn halved_throughput_fails_naming_the_ratio() {
    let tmp = tempdir();
    let mut s = fixture_summary();
    alter(&mut s, Some("echo-saturate"), "mio-multi", Some(1000), |r| scale(&mut r["throughput_rps"], 0.5));
    write_sweep(&tmp, &s);
    let out = check(&tmp, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines = regressed_lines(&out);
    assert_eq!(lines.len(), 1, "only the altered model's ratio: {}", text(&out));
    assert!(
        lines[0].starts_with("REGRESSED echo-saturate mio-multi c1000 throughput ÷ median model: "),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("(-50%, tolerance -20%)"), "{}", lines[0]);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn a_costlier_load_generator_fails() {
    let tmp = tempdir();
    let mut s = fixture_summary();
    // Every model of the fixture sweep.
    let models: Vec<String> = serde_json::from_value(s["models"].clone()).unwrap();
    for model in &models {
        alter(&mut s, Some("echo-saturate"), model, None, |r| scale(&mut r["loadgen"]["cpu_us_per_req"], 1.6));
    }
    write_sweep(&tmp, &s);
    let out = check(&tmp, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut named: Vec<String> =
        regressed_lines(&out).iter().map(|l| l.split(':').next().unwrap().to_string()).collect();
    named.sort();
    assert_eq!(
        named,
        ["REGRESSED echo-saturate c1000 loadgen CPU µs/req", "REGRESSED echo-saturate c200 loadgen CPU µs/req"],
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn wrong_answers_and_lost_connections_fail_as_invariants() {
    let tmp = tempdir();
    let mut s = fixture_summary();
    alter(&mut s, Some("echo-paced"), "tokio", Some(200), |r| r["counts"]["mismatches_total"] = Value::from(3));
    alter(&mut s, Some("echo-saturate"), "mio-single", Some(1000), |r| {
        r["connections"]["established"] = Value::from(990);
        r["connections"]["failed"] = Value::from(10);
    });
    write_sweep(&tmp, &s);
    let out = check(&tmp, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines = regressed_lines(&out);
    assert!(
        lines.contains(
            &"REGRESSED invariant \"no mismatches\" at echo-paced tokio c200: 3 mismatched answers".to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"REGRESSED invariant \"every connection established\" at echo-saturate mio-single c1000: 990 of 1000 established, 10 failed"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 2, "{lines:#?}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn event_loops_switching_like_threads_break_the_argument() {
    let tmp = tempdir();
    let mut s = fixture_summary();
    // mio-multi waking a worker thread for every request: ~1 cs/req.
    alter(&mut s, Some("echo-saturate"), "mio-multi", Some(1000), |r| {
        r["server"]["voluntary_cs_per_req"] = Value::from(0.9)
    });
    write_sweep(&tmp, &s);
    let out = check(&tmp, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines = regressed_lines(&out);
    assert!(
        lines.iter().any(|l| l.starts_with("REGRESSED invariant \"event loops switch ≤ 1/3")
            && l.contains("echo-saturate mio-multi c1000")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("REGRESSED echo-saturate mio-multi c1000 cs/req: ") && l.contains(" -> 0.900 (")),
        "{lines:#?}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Noise: values below a figure's floor do not count, and a regression
/// that a rerun does not repeat is forgiven, except wrong answers.
#[test]
fn reruns_forgive_noise_but_never_wrong_answers() {
    let baseline = Baseline::load(&fixtures().join("baseline.json")).unwrap();
    let clean: Summary = serde_json::from_value(fixture_summary()).unwrap();
    assert!(evaluate(&baseline, std::slice::from_ref(&clean)).passed());

    // Tiny context-switch counts doubling are below the 0.05 cs/req floor.
    let mut tiny = fixture_summary();
    alter(&mut tiny, Some("echo-saturate"), "tokio", Some(1000), |r| {
        scale(&mut r["server"]["voluntary_cs_per_req"], 2.0)
    });
    assert!(evaluate(&baseline, &[serde_json::from_value(tiny).unwrap()]).passed());

    // A stall in the first sweep, not in the rerun: passes.
    let mut stalled = fixture_summary();
    alter(&mut stalled, Some("echo-saturate"), "mio-single", Some(200), |r| scale(&mut r["throughput_rps"], 0.01));
    let stalled: Summary = serde_json::from_value(stalled).unwrap();
    let alone = evaluate(&baseline, std::slice::from_ref(&stalled));
    assert!(!alone.passed());
    assert_eq!(alone.suspects().into_iter().collect::<Vec<_>>(), [("echo-saturate".to_string(), 200)]);
    let both = evaluate(&baseline, &[stalled.clone(), clean.clone()]);
    assert!(
        both.passed(),
        "{:?}",
        both.rows.iter().filter(|r| r.verdict.fails()).map(|r| &r.base.name).collect::<Vec<_>>()
    );
    let row =
        both.rows.iter().find(|r| r.base.name == "echo-saturate mio-single c200 throughput ÷ median model").unwrap();
    assert_eq!(row.values.len(), 2);
    assert_eq!(row.verdict, Verdict::Ok);

    // Slower in both attempts: still a regression.
    assert!(!evaluate(&baseline, &[stalled.clone(), stalled]).passed());

    // A mismatch in the first sweep fails even if the rerun is clean.
    let mut wrong = fixture_summary();
    alter(&mut wrong, Some("echo-saturate"), "pool", Some(200), |r| r["counts"]["mismatches"] = Value::from(1));
    let eval = evaluate(&baseline, &[serde_json::from_value(wrong).unwrap(), clean]);
    assert!(!eval.passed());
    let inv = eval.invariants.iter().find(|i| i.family == "no mismatches").unwrap();
    assert_eq!(inv.violations.len(), 1);
}

/// A model missing because it was not built is reported, not failed; a
/// model that ran but whose run failed is a regression.
#[test]
fn models_not_built_are_skipped_but_failed_runs_fail() {
    let baseline = Baseline::load(&fixtures().join("baseline.json")).unwrap();
    let mut s = fixture_summary();
    s["records"].as_array_mut().unwrap().retain(|r| r["model"] != "libevent");
    s["models"].as_array_mut().unwrap().retain(|m| m != "libevent");
    let eval = evaluate(&baseline, &[serde_json::from_value(s.clone()).unwrap()]);
    let not_run = eval.rows.iter().filter(|r| r.verdict == Verdict::NotRun).count();
    assert_eq!(not_run, 14, "libevent: 2 scenarios × 2 levels × (cs + cpu + user cpu), and 2 throughput ratios");
    assert!(eval
        .rows
        .iter()
        .filter(|r| r.base.model.as_deref() == Some("libevent"))
        .all(|r| r.verdict == Verdict::NotRun));

    let mut failed = fixture_summary();
    for r in failed["records"].as_array_mut().unwrap() {
        if r["model"] == "pool" && r["level"] == 1000 && r["scenario"] == "echo-paced" {
            r["status"] = Value::from("failed");
            r["failure"] = Value::from("server exited during the run");
        }
    }
    let eval = evaluate(&baseline, &[serde_json::from_value(failed).unwrap()]);
    assert!(!eval.passed());
    let missing: Vec<&str> =
        eval.rows.iter().filter(|r| r.verdict == Verdict::Missing).map(|r| r.base.name.as_str()).collect();
    assert_eq!(
        missing,
        [
            "echo-paced pool c1000 cs/req",
            "echo-paced pool c1000 server CPU µs/req",
            "echo-paced pool c1000 server user CPU µs/req"
        ]
    );
}

#[test]
fn the_committed_fixture_baseline_is_what_loadgen_baseline_makes() {
    let tmp = tempdir();
    let out = tmp.join("baseline.json");
    make_baseline(&[&fixtures()], &out);
    let made = Baseline::load(&out).unwrap();
    let committed = Baseline::load(&fixtures().join("baseline.json")).unwrap();
    assert_eq!(made.figures, committed.figures);
    assert_eq!(made.sweep, committed.sweep);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Tolerances come from the spread of the sweeps given.
#[test]
fn tolerances_follow_the_spread_of_the_sweeps() {
    let tmp = tempdir();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    write_sweep(&a, &fixture_summary());
    let mut s = fixture_summary();
    alter(&mut s, Some("echo-saturate"), "tokio", Some(1000), |r| scale(&mut r["server"]["cpu_us_per_req"], 1.5));
    write_sweep(&b, &s);
    let out = tmp.join("baseline.json");
    make_baseline(&[&a, &b], &out);
    let made = Baseline::load(&out).unwrap();
    let f = made.figure("echo-saturate tokio c1000 server CPU µs/req").unwrap();
    assert_eq!(f.samples.len(), 2);
    assert!((f.samples[1] / f.samples[0] - 1.5).abs() < 1e-9);
    // Median of two is their mean (1.25x): each is 25% (or 20%) off it.
    assert!((f.spread - 0.25).abs() < 1e-9, "{}", f.spread);
    assert!((f.tolerance - 0.5).abs() < 1e-9, "{}", f.tolerance);
    assert!(f.gated);
    let untouched = made.figure("echo-saturate tokio c200 server CPU µs/req").unwrap();
    assert_eq!((untouched.spread, untouched.tolerance), (0.0, 0.25));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn usage_and_io_errors_exit_2() {
    let tmp = tempdir();
    write_sweep(&tmp, &fixture_summary());
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec![
                "check".into(),
                "--baseline".into(),
                tmp.join("nope.json").display().to_string(),
                "--results".into(),
                tmp.display().to_string(),
            ],
            "--baseline",
        ),
        (
            vec![
                "check".into(),
                "--baseline".into(),
                fixtures().join("baseline.json").display().to_string(),
                "--results".into(),
                tmp.join("nope").display().to_string(),
            ],
            "--results",
        ),
        (vec!["check".into(), "--results".into(), tmp.display().to_string()], "--baseline"),
        (
            vec![
                "baseline".into(),
                "--results".into(),
                tmp.join("nope").display().to_string(),
                "--out".into(),
                tmp.join("b.json").display().to_string(),
            ],
            "--results",
        ),
    ];
    for (args, flag) in cases {
        let out = Command::new(LOADGEN).args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag), "{args:?} names {flag}: {}", text(&out));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

// ---- A/B mode: pairs of (base, head) sweeps judged by `ab::evaluate` ----

/// Five pairs made from the fixture sweep: each side's values jittered by
/// `noise` (a different, fixed factor per pair and side, as a noisy machine
/// would), then `head` applied to the head's copy.
fn ab_pairs(noise: f64, head: impl Fn(&mut Value)) -> Vec<(Summary, Summary)> {
    // Fixed pseudo-random factors in [1 - noise, 1 + noise].
    let factors = [0.3, -0.8, 0.9, -0.2, 0.5, -0.6, 0.1, -1.0, 0.7, -0.4];
    (0..5)
        .map(|i| {
            let side = |k: usize| {
                let mut s = fixture_summary();
                let f = 1.0 + noise * factors[(2 * i + k) % factors.len()];
                for r in s["records"].as_array_mut().unwrap() {
                    if let Some(server) = r["result"].get_mut("server").filter(|v| v.is_object()) {
                        for key in ["cpu_us_per_req", "user_us_per_req", "voluntary_cs_per_req"] {
                            scale(&mut server[key], f);
                        }
                    }
                }
                s
            };
            let base = side(0);
            let mut h = side(1);
            head(&mut h);
            (serde_json::from_value(base).unwrap(), serde_json::from_value(h).unwrap())
        })
        .collect()
}

fn ab_failures(eval: &loadgen::check::ab::AbEvaluation) -> Vec<String> {
    let mut v: Vec<String> = eval.failures().map(|r| r.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn ab_no_change_passes_even_with_noise_larger_than_some_tolerances() {
    let eval = loadgen::check::ab::evaluate(&ab_pairs(0.2, |_| {}));
    assert!(eval.passed(), "{:?}", ab_failures(&eval));
    assert_eq!(eval.pairs, 5);
    // The closed-loop figures are gated, the open-loop ones reported only.
    let row = |name: &str| eval.rows.iter().find(|r| r.name == name).unwrap();
    assert!(row("echo-saturate mio-single c1000 server CPU µs/req").gated);
    assert!(!row("echo-paced mio-single c1000 server CPU µs/req").gated);
}

#[test]
fn ab_names_the_one_model_made_costlier_in_user_cpu() {
    // +1.2 µs of pure CPU per request in mio-single only: about +25% of its
    // total, several times its user CPU.
    let eval = loadgen::check::ab::evaluate(&ab_pairs(0.1, |s| {
        alter(s, Some("echo-saturate"), "mio-single", None, |r| {
            let user = r["server"]["user_us_per_req"].as_f64().unwrap();
            let cpu = r["server"]["cpu_us_per_req"].as_f64().unwrap();
            r["server"]["user_us_per_req"] = Value::from(user + 0.25 * cpu);
            r["server"]["cpu_us_per_req"] = Value::from(1.25 * cpu);
        })
    }));
    let failed = ab_failures(&eval);
    assert!(!failed.is_empty() && failed.iter().all(|f| f.starts_with("echo-saturate mio-single c")), "{failed:?}");
    assert!(failed.contains(&"echo-saturate mio-single c1000 server user CPU µs/req".to_string()), "{failed:?}");
}

#[test]
fn ab_invariants_the_base_breaks_too_are_not_the_changes() {
    let starve = |s: &mut Value| {
        alter(s, Some("echo-saturate"), "tokio", Some(1000), |r| r["connections"]["never_served"] = Value::from(7))
    };
    // Both sides starve tokio at 1000: the machine's doing, reported only.
    let pairs: Vec<(Summary, Summary)> = ab_pairs(0.0, starve)
        .into_iter()
        .map(|(_, h)| {
            let mut b = serde_json::to_value(&h).unwrap();
            starve(&mut b);
            (serde_json::from_value(b).unwrap(), h)
        })
        .collect();
    let eval = loadgen::check::ab::evaluate(&pairs);
    assert!(eval.passed());
    assert_eq!(eval.inherited.len(), 1, "{:?}", eval.inherited);
    // Only the head starves it: a regression. A mismatch always is.
    assert!(!loadgen::check::ab::evaluate(&ab_pairs(0.0, starve)).passed());
    let wrong = |s: &mut Value| {
        alter(s, Some("echo-saturate"), "pool", Some(200), |r| r["counts"]["mismatches"] = Value::from(1))
    };
    let eval = loadgen::check::ab::evaluate(&ab_pairs(0.0, wrong));
    assert!(!eval.passed());
}
