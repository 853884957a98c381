//! The regression check tested on altered copies of a real quick sweep
//! (tests/fixtures/check/summary.json, timeseries emptied to keep it
//! small): five (base, head) pairs made from it, jittered as a noisy
//! machine would, judged by the A/B check. No change must pass; a head
//! with one model's context switches doubled, one model's throughput
//! halved, a costlier load generator, a mismatch or a connection lost must
//! fail, naming what was altered and nothing else. And `loadgen check`
//! refuses to run without a base to compare with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use loadgen::check::ab::{evaluate, AbEvaluation, AbVerdict};
use loadgen::check::output;
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

/// The REGRESSED lines' figure names, sorted.
fn regressed(eval: &AbEvaluation) -> Vec<String> {
    let mut v: Vec<String> =
        output::regression_lines(eval).iter().map(|l| l.split(':').next().unwrap().to_string()).collect();
    v.sort();
    v
}

#[test]
fn no_change_passes_and_every_output_says_so() {
    let eval = evaluate(&ab_pairs(0.05, |_| {}));
    assert!(eval.passed(), "{:?}", ab_failures(&eval));
    assert!(output::regression_lines(&eval).is_empty());
    let md = output::markdown(&eval, "context line");
    assert!(md.starts_with("## Regression check (A/B): PASS\n\ncontext line\n"), "{md}");
    assert!(md.contains("| figure | base (median) | head (median) | change [interval] | verdict |"), "{md}");
    assert!(md.contains("| echo-saturate mio-multi c1000 cs/req | "), "{md}");
    assert!(md.contains("| invariant: no mismatches | | holds at 24 places |"), "{md}");

    // customSmallerIsBetter: name, unit, value for every figure.
    let bench: Value = serde_json::from_str(&output::bench_json(&eval)).unwrap();
    let entries = bench.as_array().unwrap();
    assert_eq!(entries.len(), eval.rows.len());
    for e in entries {
        assert!(e["name"].is_string() && e["unit"].is_string(), "{e}");
        assert!(e["value"].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{e}");
    }
    let ratio = entries
        .iter()
        .find(|e| e["name"].as_str().unwrap().starts_with("echo-saturate mio-multi c1000 throughput"))
        .unwrap();
    assert!(ratio["name"].as_str().unwrap().contains("inverted"), "bigger-is-better figures are inverted: {ratio}");
}

#[test]
fn doubled_context_switches_fail_naming_each_altered_figure() {
    let eval = evaluate(&ab_pairs(0.05, |s| {
        alter(s, None, "thread-per-conn", None, |r| scale(&mut r["server"]["voluntary_cs_per_req"], 2.0))
    }));
    assert_eq!(
        regressed(&eval),
        ["REGRESSED echo-saturate thread-per-conn c1000 cs/req", "REGRESSED echo-saturate thread-per-conn c200 cs/req"]
    );
    let md = output::markdown(&eval, "");
    assert!(md.starts_with("## Regression check (A/B): FAIL"), "{md}");
    // Open-loop figures are dominated by wake-ups: reported, never failed.
    let paced = eval.rows.iter().find(|r| r.name == "echo-paced thread-per-conn c200 cs/req").unwrap();
    assert_eq!(paced.verdict, AbVerdict::Reported);
}

#[test]
fn halved_throughput_fails_naming_the_ratio() {
    let eval = evaluate(&ab_pairs(0.05, |s| {
        alter(s, Some("echo-saturate"), "mio-multi", Some(1000), |r| scale(&mut r["throughput_rps"], 0.5))
    }));
    assert_eq!(regressed(&eval), ["REGRESSED echo-saturate mio-multi c1000 throughput ÷ median model"]);
}

#[test]
fn a_costlier_load_generator_fails() {
    let eval = evaluate(&ab_pairs(0.05, |s| {
        let models: Vec<String> = serde_json::from_value(s["models"].clone()).unwrap();
        for model in &models {
            alter(s, Some("echo-saturate"), model, None, |r| scale(&mut r["loadgen"]["cpu_us_per_req"], 1.6));
        }
    }));
    assert_eq!(
        regressed(&eval),
        ["REGRESSED echo-saturate c1000 loadgen CPU µs/req", "REGRESSED echo-saturate c200 loadgen CPU µs/req"]
    );
}

#[test]
fn wrong_answers_and_lost_connections_fail_as_invariants() {
    let eval = evaluate(&ab_pairs(0.05, |s| {
        alter(s, Some("echo-paced"), "tokio", Some(200), |r| r["counts"]["mismatches_total"] = Value::from(3));
        alter(s, Some("echo-saturate"), "mio-single", Some(1000), |r| {
            r["connections"]["established"] = Value::from(990);
            r["connections"]["failed"] = Value::from(10);
        });
    }));
    let lines = output::regression_lines(&eval);
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
}

#[test]
fn event_loops_switching_like_threads_break_the_argument() {
    // mio-multi waking a worker thread for every request: ~1 cs/req.
    let eval = evaluate(&ab_pairs(0.05, |s| {
        alter(s, Some("echo-saturate"), "mio-multi", Some(1000), |r| {
            r["server"]["voluntary_cs_per_req"] = Value::from(0.9)
        })
    }));
    let lines = output::regression_lines(&eval);
    assert!(
        lines.iter().any(|l| l.starts_with("REGRESSED invariant \"event loops switch ≤ 1/3")
            && l.contains("echo-saturate mio-multi c1000")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("REGRESSED echo-saturate mio-multi c1000 cs/req: ")), "{lines:#?}");
}

/// A head whose run fails where the base's does not: the figures it no
/// longer measures are missing, which fails.
#[test]
fn a_failed_run_in_the_head_fails_as_missing() {
    let eval = evaluate(&ab_pairs(0.05, |s| {
        for r in s["records"].as_array_mut().unwrap() {
            if r["model"] == "tokio" && r["level"] == 1000 && r["scenario"] == "echo-saturate" {
                r["status"] = Value::from("failed");
                r["failure"] = Value::from("server exited during the run");
            }
        }
    }));
    assert!(!eval.passed());
    let missing: Vec<&str> =
        eval.rows.iter().filter(|r| r.verdict == AbVerdict::Missing).map(|r| r.name.as_str()).collect();
    assert!(missing.contains(&"echo-saturate tokio c1000 server CPU µs/req"), "{missing:?}");
    assert!(missing.iter().all(|m| m.starts_with("echo-saturate tokio c1000 ")), "{missing:?}");
}

/// Only A/B remains: without --base, or outside a git checkout, the check
/// refuses (exit 2) and names --base.
#[test]
fn the_check_needs_a_base_and_says_so() {
    let tmp = tempdir();
    let run = |args: &[&str]| {
        Command::new(LOADGEN).args(args).current_dir(&tmp).stdin(Stdio::null()).output().expect("run loadgen check")
    };
    for args in [&["check"][..], &["check", "--out", "x"][..], &["check", "--base", "HEAD~1"][..]] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(stderr.contains("--base"), "{args:?} names --base: {}", text(&out));
        assert!(!stderr.contains("--baseline"), "{args:?} offers no other mode: {}", text(&out));
    }
    // The stored-baseline mode is gone, flag and command.
    let out = run(&["check", "--baseline", "b.json", "--results", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--baseline'"), "{}", text(&out));
    let out = run(&["baseline", "--results", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand 'baseline'"), "{}", text(&out));
    std::fs::remove_dir_all(&tmp).unwrap();
}

// ---- No change, noise, and a costlier model: the judging itself ----

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

fn ab_failures(eval: &AbEvaluation) -> Vec<String> {
    let mut v: Vec<String> = eval.failures().map(|r| r.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn ab_no_change_passes_even_with_noise_larger_than_some_tolerances() {
    let eval = evaluate(&ab_pairs(0.2, |_| {}));
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
    let eval = evaluate(&ab_pairs(0.1, |s| {
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
    let eval = evaluate(&pairs);
    assert!(eval.passed());
    assert_eq!(eval.inherited.len(), 1, "{:?}", eval.inherited);
    // Only the head starves it: a regression. A mismatch always is.
    assert!(!evaluate(&ab_pairs(0.0, starve)).passed());
    let wrong = |s: &mut Value| {
        alter(s, Some("echo-saturate"), "pool", Some(200), |r| r["counts"]["mismatches"] = Value::from(1))
    };
    let eval = evaluate(&ab_pairs(0.0, wrong));
    assert!(!eval.passed());
}
