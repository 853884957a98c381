//! `loadgen merge` from the outside: on known data, the merged histogram is
//! the histogram of all the samples, exactly (not an average of the
//! parts'); counts and CPU add up; inputs that did not run the same
//! experiment are refused, naming the file; and two real load generators
//! started with one `--start-at` merge.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use loadgen::records::part::{decode, encode};
use loadgen::run::histo::{self, Hist};
use serde_json::{json, Value};
use testkit::{Rng, Server};

/// `n` latencies (µs) from testkit's xorshift stream: a body around `scale`
/// and a tail up to 50× it, so that percentiles differ between parts.
fn samples(seed: u64, n: usize, scale: u64) -> Vec<u64> {
    let mut rng = Rng::from_state(seed | 1);
    (0..n)
        .map(|_| {
            let x = rng.next_u64();
            let body = scale / 2 + x % scale;
            if x.is_multiple_of(100) {
                body * (1 + (x >> 8) % 50)
            } else {
                body
            }
        })
        .collect()
}

fn hist_of(values: &[u64]) -> Hist {
    let mut h = histo::new_hist();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

/// What one made-up part looks like.
struct Made<'a> {
    tag: &'a str,
    latency: &'a Hist,
    echo: &'a Hist,
    /// Window start, unix seconds; the window lasts `window_s`.
    start: f64,
    window_s: f64,
    /// `loadgen run`'s flags besides --target and --tag: the experiment.
    flags: &'a str,
    cpu_us: (u64, u64),
    /// The load generator's CPU use, in CPUs, and the host it ran on.
    utilization: f64,
    hostname: &'a str,
    failure: Option<&'a str>,
}

impl Default for Made<'_> {
    fn default() -> Self {
        static EMPTY: std::sync::OnceLock<Hist> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(histo::new_hist);
        Made {
            tag: "lg0",
            latency: empty,
            echo: empty,
            start: 1_750_000_000.0,
            window_s: 5.0,
            flags: "",
            cpu_us: (1000, 2000),
            utilization: 0.5,
            hostname: "h",
            failure: None,
        }
    }
}

/// A tagged run's JSON, as `loadgen run --tag` writes it, its figures
/// consistent with its histogram.
fn write_part(dir: &Path, m: &Made) -> PathBuf {
    let n = m.latency.len();
    let l = histo::latency(m.latency);
    let pct = json!({"p50": 10, "p90": 20, "p99": 30, "max": 40});
    let mut args = vec!["loadgen", "run", "--target", "127.0.0.1:1", "--tag", m.tag];
    args.extend(m.flags.split_whitespace());
    let value = json!({
        "args": args,
        "env": {"kernel": "k", "cpu_model": "c", "cores": 2, "loadgen_cpus": [1], "server_cpus": [0],
                "git_rev": "r", "date": "d", "hostname": m.hostname},
        "connections": {"requested": 100, "established": 100, "failed": 0, "connect_us": pct,
                        "never_served": 0, "first_answer_us": pct},
        "window_s": m.window_s,
        "counts": {"scheduled": n, "sent": n, "unsent": 0, "accounted": true, "ok": n, "errors": 0,
                   "errors_by_status": {}, "mismatches": 0, "timeouts": 0, "resets": 0, "in_flight_end": 0},
        "throughput_rps": n as f64 / m.window_s,
        "latency": l,
        "latency_uncorrected": null,
        "latency_by_method": {"ECHO": histo::latency(m.echo)},
        "server": null,
        "loadgen": {"cpu_us_per_req": 0.0, "user_us": m.cpu_us.0, "sys_us": m.cpu_us.1, "cpu_utilization": m.utilization,
                    "rss_bytes": 1000, "max_rss_bytes": 2000, "threads": 3},
        "proc_stat": {"window_us": 5_000_000, "tick_us": 10_000, "busy_us_per_req": 1.0, "cpus": {
            "0": {"role": "server", "busy_us": 4_000_000, "user_us": 1, "system_us": 2, "irq_us": 0,
                  "softirq_us": 3, "steal_us": 0, "idle_us": 5}}},
        "fairness": {"min": 1, "p1": 2, "median": 3, "max": 4},
        "loadgen_saturated": false,
        "timeseries": [],
        "failure": m.failure,
        "notes": [format!("a note of {}", m.tag)],
        "part": {
            "tag": m.tag,
            "start_at": null,
            "window_start_unix_s": m.start,
            "window_end_unix_s": m.start + m.window_s,
            "histograms": {"latency": encode(m.latency), "by_method": {"ECHO": encode(m.echo)}}
        }
    });
    let path = dir.join(format!("{}.json", m.tag));
    std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    path
}

fn merge(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen")).arg("merge").args(args).output().unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Three parts of different speeds: the merged latency is the latency of
/// every sample in one histogram, to the microsecond, in the JSON, in its
/// histogram and in `--hgrm`; averaging the parts' percentiles would not
/// give it (checked, so the test cannot pass by accident).
#[test]
fn the_merged_histogram_is_the_histogram_of_all_samples() {
    let dir = tempdir();
    let sets = [samples(1, 20_000, 200), samples(2, 5_000, 3_000), samples(3, 12_345, 800)];
    let all = hist_of(&sets.concat());
    let hists: Vec<Hist> = sets.iter().map(|s| hist_of(s)).collect();
    let tags = ["lg0", "lg1", "lg2"];
    let inputs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let h = &hists[i];
            let cpu_us = (100 * (i as u64 + 1), 1000 * (i as u64 + 1));
            // The windows start a few milliseconds apart, as on real hosts.
            let start = 1_750_000_000.0 + 0.002 * i as f64;
            write_part(&dir, &Made { tag: tags[i], latency: h, echo: h, start, cpu_us, ..Default::default() })
        })
        .collect();
    let out = dir.join("all.json");
    let hgrm = dir.join("all.hgrm");
    let mut args: Vec<&Path> = vec![&out];
    args.extend(inputs.iter().map(PathBuf::as_path));
    args.extend([Path::new("--hgrm"), &hgrm]);
    let o = merge(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("merged 3 parts (lg0, lg1, lg2)"), "{}", text(&o));

    let merged = read(&out);
    let want = histo::latency(&all);
    let got: loadgen::records::run::Latency = serde_json::from_value(merged["latency"].clone()).unwrap();
    assert_eq!(got, want, "the merged latency is that of all samples");
    assert_eq!(merged["latency_by_method"]["ECHO"], serde_json::to_value(&want).unwrap());
    let h = decode(merged["part"]["histograms"]["latency"].as_str().unwrap()).unwrap();
    assert_eq!(h, all, "the merged histogram itself");
    let mut expected_hgrm = Vec::new();
    histo::write_hgrm(&all, &mut expected_hgrm).unwrap();
    assert_eq!(std::fs::read(&hgrm).unwrap(), expected_hgrm);

    let averaged = hists.iter().map(|h| h.value_at_quantile(0.99)).sum::<u64>() / 3;
    assert_ne!(averaged, want.p99, "the data must tell adding from averaging");

    let total: u64 = sets.iter().map(|s| s.len() as u64).sum();
    assert_eq!(merged["counts"]["ok"], total);
    assert_eq!(merged["counts"]["sent"], total);
    assert_eq!(merged["connections"]["established"], 300);
    assert_eq!((merged["loadgen"]["user_us"].as_u64(), merged["loadgen"]["sys_us"].as_u64()), (Some(600), Some(6000)));
    assert_eq!(merged["loadgen"]["threads"], 9);
    let cpu_per_req = merged["loadgen"]["cpu_us_per_req"].as_f64().unwrap();
    assert!((cpu_per_req - 6600.0 / total as f64).abs() < 1e-9, "{cpu_per_req}");
    // The common window: the latest start (+4 ms) to the earliest end (+5 s).
    let window = merged["window_s"].as_f64().unwrap();
    assert!((window - 4.996).abs() < 1e-6, "{window}");
    let rps = merged["throughput_rps"].as_f64().unwrap();
    assert!((rps - total as f64 / 4.996).abs() < 1e-6, "{rps}");
    assert_eq!(merged["merged_from"]["tags"], json!(tags));
    assert_eq!(merged["merged_from"]["files"], json!(["lg0.json", "lg1.json", "lg2.json"]), "beside the output");
    assert!(merged["notes"].as_array().unwrap().contains(&json!("lg1: a note of lg1")), "{}", merged["notes"]);
    assert_eq!(merged["failure"], Value::Null);
    let result: loadgen::records::run::RunResult = serde_json::from_value(merged).unwrap();
    assert_eq!(result.latency.count, total, "the merged file reads as a run's result");
}

/// A merged file merges again, to the same histogram as merging all parts
/// at once; a part merged twice is refused by its tag.
#[test]
fn merged_results_merge_again_but_never_count_a_part_twice() {
    let dir = tempdir();
    let sets = [samples(4, 3000, 100), samples(5, 4000, 400), samples(6, 5000, 1600)];
    let hists: Vec<Hist> = sets.iter().map(|s| hist_of(s)).collect();
    let paths: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .zip(&hists)
        .map(|(tag, h)| write_part(&dir, &Made { tag, latency: h, echo: h, ..Default::default() }))
        .collect();
    let ab = dir.join("ab.json");
    assert!(merge(&[&ab, &paths[0], &paths[1]]).status.success());
    let abc = dir.join("abc.json");
    let o = merge(&[&abc, &ab, &paths[2]]);
    assert!(o.status.success(), "{}", text(&o));
    let merged = read(&abc);
    assert_eq!(decode(merged["part"]["histograms"]["latency"].as_str().unwrap()).unwrap(), hist_of(&sets.concat()));
    assert_eq!(merged["merged_from"]["tags"], json!(["a", "b", "c"]));

    let again = dir.join("again.json");
    let o = merge(&[&again, &ab, &paths[1]]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(&paths[1].display().to_string()) && err.contains("tag `b`"), "{err}");
    assert!(!again.exists(), "nothing written on refusal");
}

/// Each refusal names the file at fault and what is wrong with it.
#[test]
fn inputs_of_another_experiment_are_refused_naming_the_file() {
    let dir = tempdir();
    let h = hist_of(&samples(7, 1000, 100));
    let made = |tag| Made { tag, latency: &h, echo: &h, ..Default::default() };
    let good = write_part(&dir, &made("good"));
    let cases: Vec<(PathBuf, &str)> = vec![
        (write_part(&dir, &Made { flags: "--protocol raw", ..made("raw") }), "protocol `raw`"),
        (write_part(&dir, &Made { flags: "--size 4096", ..made("big") }), "requests `--size 4096"),
        (write_part(&dir, &made("good")).with_file_name("good.json"), "tag `good`"),
        (write_part(&dir, &Made { start: 1_750_000_000.4, ..made("late") }), "is 0.800 s off"),
    ];
    for (bad, why) in &cases {
        let out = dir.join("out.json");
        let o = merge(&[&out, &good, bad]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{why}: accepted");
        assert!(err.contains(&bad.display().to_string()), "{why}: does not name {}: {err}", bad.display());
        assert!(err.contains(why), "{why}: {err}");
        assert!(!out.exists(), "{why}: wrote a result");
    }
    // A part that failed is let through with its window: its failure is the result's.
    let failed = write_part(&dir, &Made { start: 1_750_000_000.4, failure: Some("it broke"), ..made("failed") });
    let out = dir.join("failed-out.json");
    assert!(merge(&[&out, &good, &failed]).status.success());
    assert_eq!(read(&out)["failure"], "failed: it broke");

    let untagged = dir.join("untagged.json");
    let mut v = read(&good);
    v.as_object_mut().unwrap().remove("part");
    std::fs::write(&untagged, v.to_string()).unwrap();
    let o = merge(&[&dir.join("x.json"), &good, &untagged]);
    assert!(stderr(&o).contains(&format!("{}: has no `part`", untagged.display())), "{}", stderr(&o));
    let o = merge(&[&good, &good, &untagged]);
    assert!(stderr(&o).contains("is both the output and an input"), "{}", stderr(&o));
    let o = merge(&[&dir.join("x.json"), &good, &dir.join("missing.json")]);
    assert!(stderr(&o).contains("missing.json: cannot read"), "{}", stderr(&o));
}

/// `--start-at` in the past is refused, naming the flag; so is a bad tag.
#[test]
fn a_start_in_the_past_or_a_bad_tag_is_refused() {
    let past = (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 30).to_string();
    let target = closed_port().to_string();
    for (flag, value, why) in [("--start-at", past.as_str(), "in the past"), ("--tag", "a b", "a tag is")] {
        let o = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["run", "--target", &target, flag, value])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains(flag) && err.contains(why), "{flag}: {err}");
    }
}

/// Two real load generators, started together against one server on
/// loopback, write tagged results and interval logs that merge: every
/// answer counted once, the windows within milliseconds of each other.
#[test]
fn two_load_generators_started_together_merge() {
    let server = Server::start("mio-single", &["--admin", "127.0.0.1:0"]);
    let dir = tempdir();
    let at = SystemTime::now() + Duration::from_secs(2);
    let at = format!("{:.3}", at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64());
    let (data, admin) = (server.data.to_string(), server.admin.unwrap().to_string());
    let children: Vec<_> = ["lg0", "lg1"]
        .iter()
        .map(|tag| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
            cmd.args(["run", "--target", &data, "-c", "10", "--warmup", "200ms", "--duration", "500ms", "-q"]);
            cmd.args(["--start-at", &at, "--tag", tag]);
            cmd.arg("--json").arg(dir.join(format!("{tag}.json")));
            cmd.arg("--hlog").arg(dir.join(format!("{tag}.hlog")));
            if *tag == "lg0" {
                cmd.args(["--admin", &admin]);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let (a, b, out, hlog) = (dir.join("lg0.json"), dir.join("lg1.json"), dir.join("all.json"), dir.join("all.hlog"));
    let o = merge(&[&out, &a, &b, Path::new("--hlog"), &hlog]);
    assert!(o.status.success(), "{}", text(&o));
    let (pa, pb, merged) = (read(&a), read(&b), read(&out));
    for p in [&pa, &pb] {
        assert!(p["part"]["start_at"].is_string(), "{}", p["part"]);
    }
    let starts = [&pa, &pb].map(|p| p["part"]["window_start_unix_s"].as_f64().unwrap());
    assert!((starts[0] - starts[1]).abs() < 0.1, "windows start together: {starts:?}");
    let ok = |v: &Value| v["counts"]["ok"].as_u64().unwrap();
    assert!(ok(&pa) > 0 && ok(&pb) > 0);
    assert_eq!(ok(&merged), ok(&pa) + ok(&pb));
    assert_eq!(
        merged["latency"]["count"],
        pa["latency"]["count"].as_u64().unwrap() + pb["latency"]["count"].as_u64().unwrap()
    );
    assert_eq!(merged["server"]["model"], "mio-single", "the one reading of the server's counters");
    assert!(merged["combined"]["cpu_us_per_req"].as_f64().unwrap() > 0.0);
    let log = String::from_utf8(std::fs::read(&hlog).unwrap()).unwrap();
    for tag in ["lg0", "lg1"] {
        assert!(log.lines().any(|l| l.starts_with(&format!("Tag={tag},"))), "{log}");
        let own = String::from_utf8(std::fs::read(dir.join(format!("{tag}.hlog"))).unwrap()).unwrap();
        assert!(own.lines().filter(|l| l.starts_with("Tag=")).all(|l| l.starts_with(&format!("Tag={tag},"))));
    }
    assert!(log.lines().any(|l| l.starts_with("0.")), "untagged sums: {log}");
}

/// Two load generators each half busy on the one CPU they share fill it:
/// the merged run is load-generator bound though neither part was. On two
/// hosts, or at a third busy each, it is not.
#[test]
fn parts_that_fill_their_shared_cpu_together_are_load_generator_bound() {
    let dir = tempfile::tempdir().unwrap();
    let all = samples(7, 1000, 100);
    let h = hist_of(&all);
    let bound = |a: (&str, f64), b: (&str, f64)| {
        let sub = dir.path().join(format!("{}-{}-{}-{}", a.0, a.1, b.0, b.1));
        std::fs::create_dir_all(&sub).unwrap();
        let p0 = write_part(
            &sub,
            &Made { tag: "lg0", latency: &h, echo: &h, hostname: a.0, utilization: a.1, ..Made::default() },
        );
        let p1 = write_part(
            &sub,
            &Made { tag: "lg1", latency: &h, echo: &h, hostname: b.0, utilization: b.1, ..Made::default() },
        );
        let out = sub.join("all.json");
        let run = merge(&[&out, &p0, &p1]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        read(&out)["loadgen_saturated"].as_bool().unwrap()
    };
    assert!(bound(("h", 0.5), ("h", 0.5)), "one CPU, two halves: full");
    assert!(!bound(("h", 0.3), ("h", 0.3)), "one CPU, two thirds: not full");
    assert!(!bound(("a", 0.5), ("b", 0.5)), "two hosts, each half busy");
}
