//! `loadgen sweep` end to end, kept small: two models, two low connection
//! levels, sub-second windows, into a temporary directory. Then `loadgen
//! report` on what it saved, a model that cannot start, Ctrl-C, and the
//! flags it must refuse. The experiments too: a small knee ladder, and a
//! small multiplex run that shows which models answer out of order.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadgen::records::sweep::{RunStatus, Summary};
use loadgen::records::verdict::{Headline, Reference};
use loadgen::sweep::cells::COMPARED;

mod common;
use common::{flag_path, tempdir, text, words};
use testkit::servers_bin;

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// One sweep at a time: they all pin to the same CPUs, and a sweep's
/// figures (and its loadgen's timeouts) should not depend on another's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn loadgen<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &Path) -> Output {
    Command::new(LOADGEN).args(args).current_dir(cwd).stdin(Stdio::null()).output().expect("run loadgen")
}

/// PIDs of processes (other than this test) holding a file under `dir` open.
fn holders_of(dir: &Path) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == std::process::id().to_string() {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir))) {
            pids.push(pid);
        }
    }
    pids
}

const CHARTS: [&str; 6] = ["throughput", "latency", "context-switches", "cpu", "memory", "spectrum"];

fn check_charts(out: &Path, scenarios: &[&str]) {
    for scenario in scenarios {
        for chart in CHARTS {
            for ext in ["svg", "png"] {
                let path = out.join(format!("charts/{scenario}-{chart}.{ext}"));
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if ext == "png" {
                    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
                } else {
                    let svg = String::from_utf8(bytes).unwrap();
                    assert!(svg.starts_with("<svg") && svg.contains(scenario), "{}", path.display());
                }
            }
        }
    }
}

/// A run's JSON file, parsed.
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The SHA-256 of a file, by coreutils (not by the code under test).
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// Median, min and max, computed here.
fn median_min_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (median, v[0], v[n - 1])
}

/// Whether a server asked to count its system calls can on this machine
/// (perf_event_open and tracefs: root can).
fn servers_can_count_syscalls() -> bool {
    let server = testkit::Server::start("mio-single", &["--count-syscalls"]);
    let stats = server.stats();
    if let Some(why) = &stats.syscalls_not_counted {
        println!("servers cannot count system calls here: {why}");
    }
    stats.syscalls.is_some()
}

#[test]
fn tiny_sweep_saves_everything_and_report_redraws_it() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let out = tmp.join("out");
    let mut args =
        words("sweep --models mio-single,thread-per-conn --levels 50 --warmup 0.2s --duration 0.5s --repeat 2");
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers)].concat());
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "{}", text(&run));

    // summary.json: 2 models × 2 default scenarios × 2 passes, all measured.
    let summary = Summary::load(&out).unwrap();
    let counting = servers_can_count_syscalls();
    assert_eq!(summary.scenarios, ["echo-saturate", "echo-paced"]);
    assert_eq!((summary.repeats, summary.records.len()), (2, 8));
    for r in &summary.records {
        assert_eq!(r.status, RunStatus::Ok, "{} {} {}: {:?}\n{}", r.scenario, r.model, r.level, r.failure, text(&run));
        let result = r.result.as_ref().unwrap();
        assert_eq!(result.connections.established, r.level);
        assert!(result.throughput_rps > 0.0 && result.latency.count > 0);
        let server = result.server.as_ref().unwrap();
        assert_eq!(server.model, r.model);
        // No limit against hostile clients acts on a benchmark.
        assert_eq!(server.limits_acted, Some(Default::default()), "{} {}", r.scenario, r.model);
        // Servers count only when asked, and the sweep asks every one.
        if counting {
            assert!(server.syscalls_per_req.is_some(), "{} {}: no system calls counted", r.scenario, r.model);
        }
        for f in [&r.files.json, &r.files.hlog, &r.files.hgrm] {
            assert!(f.contains(&format!("{}-c{}-r{}.", r.model, r.level, r.repeat)), "{f}");
            assert!(out.join(f).is_file(), "no {f}");
        }
    }
    let paced = summary.find("echo-paced", "mio-single", 50).unwrap();
    let paced_config = paced.result.as_ref().unwrap().config.as_ref().expect("the run's typed configuration");
    assert_eq!(paced_config.requests.rate, Some(2000.0), "echo-paced runs open loop at the sweep's --rate");

    // summary.csv: a header and one row per cell; runs.csv: one per run.
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[0].starts_with("scenario,model,level,runs,ok_runs,outcome,failure,loadgen_saturated_runs,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(",throughput_rps,throughput_rps.min,throughput_rps.max,throughput_rps.n,"));
    assert!(lines[1..].iter().all(|l| l.contains(",2,2,ok,")), "{csv}");
    let runs_csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs_csv.lines().count(), 9, "{runs_csv}");
    assert!(runs_csv.starts_with("scenario,model,level,repeat,status,"), "{runs_csv}");

    // env.json: pinning, what ran, what was skipped, and provenance.
    let env = json(&out.join("env.json"));
    let pin = &env["pinning"];
    assert!(!pin["server_cpus"].as_array().unwrap().is_empty() && !pin["loadgen_cpus"].as_array().unwrap().is_empty());
    assert_eq!(env["models"], serde_json::json!(["mio-single", "thread-per-conn"]));
    assert_eq!((env["runs_done"].as_u64(), env["repeats"].as_u64()), (Some(8), Some(2)));
    assert_eq!(env["interrupted"], false);
    assert!(env["compute"]["rounds"].as_u64().unwrap() > 0);
    assert!(env["finished"].is_string());
    check_provenance(&env, &args, &servers, &summary);

    check_charts(&out, &["echo-saturate", "echo-paced"]);
    // index.html: the sweep's page, every chart inline (tests/page.rs checks the rest).
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    let svgs = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "svg");
    assert_eq!(page.matches("<figure class=\"chart\"").count(), svgs.count(), "one figure per chart");
    assert!(holders_of(&out).is_empty(), "processes still hold result files open: {:?}", holders_of(&out));

    // loadgen report: from summary.json and runs/ alone.
    std::fs::remove_dir_all(out.join("charts")).unwrap();
    std::fs::remove_file(out.join("summary.csv")).unwrap();
    let report_md = tmp.join("REPORT.md");
    std::fs::write(
        &report_md,
        "# Report\n\nHand-written.\n\n<!-- BEGIN GENERATED: echo-saturate -->\nstale\n<!-- END GENERATED: echo-saturate -->\n\n\
         <!-- BEGIN GENERATED: cpu-work -->\nnot run\n<!-- END GENERATED: cpu-work -->\n",
    )
    .unwrap();
    let rep = loadgen(&["report", out.to_str().unwrap(), "--update-report", report_md.to_str().unwrap()], &tmp);
    assert!(rep.status.success(), "{}", text(&rep));
    let stdout = String::from_utf8_lossy(&rep.stdout);
    assert!(stdout.contains("## echo-saturate") && stdout.contains("| mio-single | 50 | 2 |"), "{stdout}");
    check_charts(&out, &["echo-saturate", "echo-paced"]);
    assert_eq!(std::fs::read_to_string(out.join("summary.csv")).unwrap().lines().count(), 5);
    let report = std::fs::read_to_string(&report_md).unwrap();
    assert!(report.starts_with("# Report\n\nHand-written.\n"));
    assert!(!report.contains("stale") && report.contains("| thread-per-conn | 50 | 2 |"), "{report}");
    assert!(report.contains("not run"), "a region for a scenario not in the sweep stays as it was");

    check_interleaved(&out, &summary, &run);
    check_medians(&out);
    check_ties(&out);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// env.json names the exact command, the git state and each binary's
/// SHA-256, and every run's JSON names the loadgen that made it.
fn check_provenance(env: &serde_json::Value, args: &[String], servers: &Path, summary: &Summary) {
    let command: Vec<&str> = env["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(command[0], LOADGEN);
    assert_eq!(command[1..], *args, "the exact command line");
    let git = &env["git"];
    assert_eq!(git["revision"].as_str().map(str::len), Some(40), "{git}");
    // What git itself says, results/ left out (see loadgen::env::GitState).
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let porcelain = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["status", "--porcelain", "--", ".", ":(exclude)results"])
        .output()
        .unwrap();
    let dirty = !String::from_utf8_lossy(&porcelain.stdout).trim().is_empty();
    assert_eq!(git["dirty"].as_bool(), Some(dirty), "{git}");
    let hash = |role: &str| {
        let b = env["binaries"].as_array().unwrap().iter().find(|b| b["role"] == role).unwrap();
        b["sha256"].as_str().unwrap().to_string()
    };
    assert_eq!(hash("loadgen"), sha256sum(Path::new(LOADGEN)));
    assert_eq!(hash("servers"), sha256sum(servers));
    assert_eq!(env["binaries_changed"], serde_json::json!([]));
    // The checkout again at the end: unchanged while this test swept.
    assert_eq!(env["git_at_end"]["revision"], git["revision"], "{env}");
    assert_eq!(env["changed_during_run"], false, "{env}");
    let expected = testkit::expected_revision().ok();
    for r in &summary.records {
        let result = r.result.as_ref().unwrap();
        let e = &result.env;
        assert_eq!(e.loadgen_sha256.as_deref(), Some(hash("loadgen").as_str()), "{}", r.files.json);
        assert_eq!(e.git_dirty, Some(dirty));
        let b = &result.binaries;
        assert_eq!(b.loadgen.sha256.as_deref(), Some(hash("loadgen").as_str()), "{}", r.files.json);
        assert_eq!(b.server.sha256.as_deref(), Some(hash("servers").as_str()), "{}", r.files.json);
        assert_eq!(b.server.revision, expected, "{}", r.files.json);
    }
}

/// The runs went pass by pass: by the time each run's JSON was written
/// (the file's modification time, set by the child that ran it) and by the
/// progress lines, every run of pass 1 came before any run of pass 2.
fn check_interleaved(out: &Path, summary: &Summary, run: &Output) {
    let mut written: Vec<(std::time::SystemTime, u32)> = summary
        .records
        .iter()
        .map(|r| (std::fs::metadata(out.join(&r.files.json)).unwrap().modified().unwrap(), r.repeat))
        .collect();
    written.sort();
    let passes: Vec<u32> = written.iter().map(|w| w.1).collect();
    assert_eq!(passes, [[1; 4], [2; 4]].concat(), "the order the runs' files were written in");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let said: Vec<u32> =
        stderr.lines().filter_map(|l| l.split(" pass ").nth(1)?.split('/').next()?.parse().ok()).collect();
    assert_eq!(said, [[1; 4], [2; 4]].concat(), "the progress lines: {stderr}");
}

/// summary.json's cells: each figure's median, min, max and count over the
/// passes, as computed here from the runs' own JSON files.
fn check_medians(out: &Path) {
    let summary = json(&out.join("summary.json"));
    let cells = summary["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for cell in cells {
        let (scenario, model, level) =
            (cell["scenario"].as_str().unwrap(), cell["model"].as_str().unwrap(), cell["level"].as_u64().unwrap());
        let runs: Vec<serde_json::Value> =
            (1..=2).map(|k| json(&out.join(format!("runs/{scenario}/{model}-c{level}-r{k}.json")))).collect();
        for path in [
            &["throughput_rps"][..],
            &["latency", "p99"],
            &["server", "cpu_us_per_req"],
            &["loadgen", "cpu_us_per_req"],
        ] {
            let values: Vec<f64> = runs.iter().map(|r| path.iter().fold(r, |v, k| &v[*k]).as_f64().unwrap()).collect();
            let (median, min, max) = median_min_max(values);
            let f = &cell["figures"][path.join(".")];
            // serde_json reads floats to within an ulp: compare to 1e-12.
            let close = |k: &str, want: f64| (f[k].as_f64().unwrap() - want).abs() <= 1e-12 * want.abs().max(1.0);
            let what = format!("{scenario} {model} c{level} {}: {f} vs {median} ({min}–{max})", path.join("."));
            assert!(close("median", median) && close("min", min) && close("max", max), "{what}");
            assert_eq!(f["n"], 2);
        }
    }
}

/// tables.md judges a difference only on 3 or more passes that measured
/// both models (paired by pass): with this sweep's 2, every comparison of
/// the two models says so rather than naming one, or, on a throughput the
/// load generator bounded, ties them by rule.
fn check_ties(out: &Path) {
    let summary = json(&out.join("summary.json"));
    let bound =
        |scenario: &str| {
            summary["cells"].as_array().unwrap().iter().any(|c| {
                c["scenario"] == scenario && c["level"] == 50 && c["loadgen_saturated_runs"].as_u64() > Some(0)
            })
        };
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    let mut rows = 0;
    for scenario in ["echo-saturate", "echo-paced"] {
        let section = tables.split(&format!("### {scenario}: every model")).nth(1).unwrap();
        for figure in ["req/s", "p99", "server CPU µs/req"] {
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| 50 | {figure} |")))
                .unwrap_or_else(|| panic!("no 50 {figure} row in {section}"));
            let ahead = row.trim_end_matches(" |").rsplit(" | ").next().unwrap();
            if figure == "req/s" && bound(scenario) {
                assert!(ahead.starts_with("tie: mio-single"), "{row}");
            } else {
                assert_eq!(ahead, "fewer than 3 passes each: not judged", "{row}");
            }
            rows += 1;
        }
    }
    assert!(tables.contains("paired t-test on the log ratios") && tables.contains("Holm"), "{tables}");
    eprintln!("tables.md: {rows} comparisons, none judged on 2 passes");
}

/// An A/A sweep: mio-single under its own name and as `mio-single@twin`,
/// 3 passes. The alias runs the same server, is saved, tabled and charted
/// under its own name, and tables.md counts the twins' "ahead" verdicts.
#[test]
fn an_alias_runs_its_base_under_its_own_name() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let out = tmp.join("out");
    let mut args = words(
        "sweep --models mio-single,mio-single@twin --scenario echo-saturate --levels 20 --warmup 0.1s \
         --duration 0.3s --repeat 3 --no-floor",
    );
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers)].concat());
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "{}", text(&run));

    let summary = Summary::load(&out).unwrap();
    assert_eq!(summary.models, ["mio-single", "mio-single@twin"]);
    assert_eq!(summary.records.len(), 6);
    for r in &summary.records {
        assert_eq!(r.status, RunStatus::Ok, "{} pass {}: {:?}\n{}", r.model, r.repeat, r.failure, text(&run));
        assert!(out.join(&r.files.json).is_file(), "no {}", r.files.json);
    }
    // The alias ran the base model's server: its STATS (where a busy
    // machine let the admin port answer) name mio-single.
    let served_by = |r: &loadgen::records::sweep::Record| r.result.as_ref()?.server.as_ref().map(|s| s.model.clone());
    let twin: Vec<String> =
        summary.records.iter().filter(|r| r.model == "mio-single@twin").filter_map(served_by).collect();
    assert!(!twin.is_empty() && twin.iter().all(|m| m == "mio-single"), "{twin:?}");
    assert!(out.join("runs/echo-saturate/mio-single@twin-c20-r3.json").is_file());
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("echo-saturate,mio-single@twin,20,3,3,ok,")), "{csv}");
    let svg = std::fs::read_to_string(out.join("charts/echo-saturate-throughput.svg")).unwrap();
    assert!(svg.contains("mio-single@twin"), "the chart's legend names the alias");

    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    assert!(tables.contains("| conns | figure | mio-single | mio-single@twin | ahead |"), "{tables}");
    let line = tables.lines().find(|l| l.starts_with("A/A: ")).unwrap_or_else(|| panic!("no A/A line: {tables}"));
    let counts: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).take(2).collect();
    let (ahead, tested) = (counts[0], counts[1]);
    assert!(line.starts_with(&format!("A/A: {ahead} of {tested} tested comparisons")), "{line}");
    assert!((1..=COMPARED.len()).contains(&tested) && ahead <= tested, "{line}");
    let verdicts = std::fs::read_to_string(out.join("verdicts.csv")).unwrap();
    let twins =
        verdicts.lines().filter(|l| l.contains(",every model,") && l.contains(",20,mio-single,mio-single@twin,"));
    assert_eq!(twins.count(), COMPARED.len(), "one row per compared figure: {verdicts}");
}

/// A model that cannot start is recorded with its reason, and the sweep goes on.
#[test]
fn a_failing_model_is_recorded_and_the_sweep_goes_on() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let fake = tmp.join("servers");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = pool ]; then echo 'pool: cannot spawn worker threads: Resource temporarily unavailable' >&2; exit 1; fi\nexec '{}' \"$@\"\n",
            servers.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let out = tmp.join("out");
    let mut args = words(
        "sweep --models pool,mio-single --levels 20 --scenario echo-saturate --warmup 0.1s \
        --duration 0.3s --no-charts --repeat 1",
    );
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &fake)].concat());
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "failed runs are results, not errors: {}", text(&run));
    let summary = Summary::load(&out).unwrap();
    let pool = summary.find("echo-saturate", "pool", 20).unwrap();
    assert_eq!(pool.status, RunStatus::Failed);
    let why = pool.failure.as_deref().unwrap();
    assert!(why.contains("server did not start") && why.contains("cannot spawn worker threads"), "{why}");
    assert_eq!(summary.find("echo-saturate", "mio-single", 20).unwrap().status, RunStatus::Ok, "{}", text(&run));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("echo-saturate,pool,20,1,0,failed,server did not start")), "{csv}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert!(runs.lines().any(|l| l.starts_with("echo-saturate,pool,20,1,failed,server did not start")), "{runs}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("FAILED: server did not start"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The sweep ends with its headline verdict: the runs-done line counting
/// pool's starvation as designed, one line per row of `verdict.json`, and
/// the page's path last; the figures are the summary's own, and `loadgen
/// report` writes the same verdict again.
#[test]
fn the_sweep_ends_with_its_verdict_and_pool_starves_as_designed() {
    let _serial = serial();
    let tmp = tempdir();
    let out = tmp.join("out");
    let mut args = words(
        "sweep --models thread-per-conn,pool,mio-single --levels 200 --scenario echo-saturate --warmup 0.2s \
        --duration 0.5s --no-charts --no-floor --repeat 1",
    );
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers_bin())].concat());
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("pool 200 conns: starved, as designed: 64 workers, 200 connections"), "{stderr}");
    assert!(!stderr.contains("FAILED"), "{stderr}");
    assert!(stderr.contains("3 of 3 runs done (1 starved as designed, 0 failed)"), "{stderr}");

    let verdict = Headline::load(&out).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = &lines[lines.len() - (verdict.rows.len() + 3)..];
    assert!(tail[0].starts_with("Verdict, thread-per-conn against mio-single, one pass"), "{stderr}");
    for (line, row) in tail[1..].iter().zip(&verdict.rows) {
        assert!(line.starts_with(&format!("  {} (echo-saturate, 200 conns", row.label)), "{line}");
        assert!(line.ends_with("not judged: one pass"), "{line}");
    }
    assert!(tail[tail.len() - 2].starts_with("  not in this sweep: knee"), "{stderr}");
    assert_eq!(tail.last().unwrap(), &format!("Page: {}", out.join("index.html").display()));
    assert!(matches!(verdict.reference, Reference::Missing { .. }), "{:?}", verdict.reference);

    // The row's figure is the run's, as summary.json holds it.
    let summary = Summary::load(&out).unwrap();
    let cs = verdict.rows.iter().find(|r| r.key == "cs-full-load").unwrap();
    let server = |m: &str| summary.find("echo-saturate", m, 200).unwrap().result.clone().unwrap().server.unwrap();
    let switches = |m: &str| server(m).voluntary_cs_per_req + server(m).involuntary_cs_per_req;
    assert_eq!(cs.blocking.as_ref().unwrap().median, switches("thread-per-conn"));
    assert_eq!(cs.event_loop.as_ref().unwrap().median, switches("mio-single"));

    std::fs::remove_file(out.join("verdict.json")).unwrap();
    let report = loadgen(&["report", out.to_str().unwrap(), "--no-charts", "-q"], &tmp);
    assert!(report.status.success(), "{}", text(&report));
    assert_eq!(Headline::load(&out).unwrap(), verdict, "loadgen report writes the sweep's verdict again");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Ctrl-C: the current run is stopped (children killed by PID), finished
/// runs are kept, charts are still drawn, and the exit status says so.
#[test]
fn ctrl_c_keeps_what_was_measured() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let out = tmp.join("out");
    let sweep = Command::new(LOADGEN)
        .args(["sweep", "--models", "mio-single", "--levels", "10,20,30", "--scenario", "echo-saturate"])
        .args(["--warmup", "0.1s", "--duration", "1s", "--out", out.to_str().unwrap()])
        .args(["--servers-bin", servers.to_str().unwrap()])
        .current_dir(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Summary::load(&out).map_or(true, |s| s.records.is_empty()) {
        assert!(Instant::now() < deadline, "no run finished within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300)); // into the second run
    unsafe { libc::kill(sweep.id() as libc::pid_t, libc::SIGINT) };
    let done = sweep.wait_with_output().unwrap();
    assert!(!done.status.success(), "an interrupted sweep exits non-zero: {}", text(&done));
    assert!(String::from_utf8_lossy(&done.stderr).contains("interrupted"), "{}", text(&done));
    let summary = Summary::load(&out).unwrap();
    assert!((1..3).contains(&summary.records.len()), "{} records", summary.records.len());
    let env: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("env.json")).unwrap()).unwrap();
    assert_eq!(env["interrupted"], true);
    check_charts(&out, &["echo-saturate"]);
    assert!(holders_of(&out).is_empty(), "children left running: {:?}", holders_of(&out));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn refuses_bad_flags_with_the_flag_named() {
    let tmp = tempdir();
    let out = tmp.join("out");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["--models", "nginx"], "--models nginx: no such model"),
        (&["--scenario", "fast"], "--scenario fast: no such scenario"),
        (&["--rate", "0"], "--rate 0"),
        (&["--repeat", "0"], "--repeat"),
        (&["--server-cpus", "0", "--loadgen-cpus", "0"], "overlap"),
        (&["--scenario", "knee", "--rates", "0,100"], "--rates: give positive request rates"),
        (&["--scenario", "knee", "--slo", "0"], "--slo must be more than 0"),
        (&["--scenario", "multiplex", "--rates", "100"], "--rates: none of the chosen scenarios has a ladder"),
    ];
    let servers = servers_bin();
    for (flags, expected) in cases {
        let mut args = vec!["sweep", "--out", o, "--servers-bin", servers.to_str().unwrap()];
        args.extend_from_slice(flags);
        let run = loadgen(&args, &tmp);
        assert!(!run.status.success(), "{flags:?}: {}", text(&run));
        assert!(String::from_utf8_lossy(&run.stderr).contains(expected), "{flags:?}: {}", text(&run));
        assert!(!out.exists(), "{flags:?}: a refused sweep creates no results directory");
    }
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("summary.json"), "{}").unwrap();
    let run = loadgen(&["sweep", "--out", o, "--servers-bin", servers.to_str().unwrap()], &tmp);
    assert!(String::from_utf8_lossy(&run.stderr).contains("not empty"), "{}", text(&run));
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// `--dry-run` prints the plan, the profiled runs counted, and runs and
/// writes nothing.
#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let _serial = serial();
    let tmp = tempdir();
    let out = tmp.join("out");
    let mut args = words(
        "sweep --dry-run --models mio-single,thread-per-conn --scenario echo-saturate --levels 20,30 --repeat 2 \
         --profile echo-saturate:30 --no-floor",
    );
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers_bin())].concat());
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "{}", text(&run));
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(said.contains("× 2 passes + 2 profiled = 10 runs, about"), "{said}");
    assert!(!out.exists(), "a dry run creates no results directory");

    // Nor does it remove what a killed sweep left: that is the next real
    // sweep's work (where a budget can be had: root and a cpu controller).
    if let Ok(hierarchy) = loadgen::cgroup::Hierarchy::detect() {
        let mut dead = Command::new("true").spawn().unwrap();
        let gone = dead.id();
        dead.wait().unwrap();
        let stale = hierarchy.parent.join(format!("{}{gone}-1", loadgen::cgroup::PREFIX));
        std::fs::create_dir(&stale).unwrap();
        let mut args = words("sweep --dry-run --models mio-single --scenario knee-budget --levels 20 --no-floor");
        args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers_bin())].concat());
        let run = loadgen(&args, &tmp);
        let kept = stale.exists();
        let _ = std::fs::remove_dir(&stale);
        assert!(run.status.success(), "{}", text(&run));
        assert!(kept, "a dry run removed {}: {}", stale.display(), text(&run));
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

fn env_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("env.json")).unwrap()).unwrap()
}

/// A small knee ladder against mio-single: every rung is run, saved under
/// its rate, drawn against the offered rate and judged in tables.md; with
/// an SLO no run can meet, the climb stops after two rungs.
#[test]
fn a_small_knee_ladder() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let sweep = |name: &str, slo: &str| {
        let out = tmp.join(name);
        let mut args = words(&format!(
            "sweep --scenario knee --models mio-single --levels 20 --rates 400,100,200 \
            --slo {slo} --warmup 0.2s --duration 0.5s --repeat 1 --no-floor"
        ));
        args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers)].concat());
        let run = loadgen(&args, &tmp);
        assert!(run.status.success(), "{}", text(&run));
        (out, run)
    };

    // An SLO of 10 s: every rung sustained, the knee above the ladder.
    let (out, run) = sweep("easy", "10s");
    let summary = Summary::load(&out).unwrap();
    assert_eq!(summary.slo_us, Some(10_000_000));
    let rates: Vec<Option<f64>> = summary.records.iter().map(|r| r.offered_rps).collect();
    assert_eq!(rates, [Some(100.0), Some(200.0), Some(400.0)], "climbed in order: {}", text(&run));
    for r in &summary.records {
        assert_eq!(r.status, RunStatus::Ok, "{:?}: {:?}", r.offered_rps, r.failure);
        let x = r.result.as_ref().unwrap();
        let rate = r.offered_rps.unwrap();
        assert_eq!(x.config.as_ref().map(|c| c.requests.rate), Some(Some(rate)), "{:?}", x.config);
        // The rung offered its rate over the window as measured, and lost
        // nothing: each request answered, or in flight when the window
        // closed (a loaded machine moves answers across that edge, so the
        // throughput of a 0.5 s window is not compared with the rate).
        let (c, owed) = (&x.counts, rate * x.window_s);
        assert!((c.scheduled as f64 - owed).abs() <= 0.01 * owed + 1.0, "{rate}: {owed} owed, {c:?}");
        assert_eq!(c.ok + c.in_flight_end, c.scheduled, "{rate}: {c:?}");
        assert!(out.join(&r.files.json).is_file() && r.files.json.ends_with(&format!("-c20-at{rate}-r1.json")));
    }
    let env = env_json(&out);
    assert_eq!(env["scenarios"][0]["rates"], serde_json::json!([100.0, 200.0, 400.0]));
    assert_eq!((env["runs_planned"].as_u64(), env["runs_skipped"].as_u64()), (Some(3), Some(0)));
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    assert!(tables.contains("| mio-single | 20 | ≥ 400 (top of the ladder) |"), "{tables}");
    assert!(tables.contains("### knee: every rung"), "{tables}");
    for chart in ["latency-c20", "throughput-c20"] {
        for ext in ["svg", "png"] {
            assert!(out.join(format!("charts/knee-{chart}.{ext}")).is_file(), "no knee-{chart}.{ext}");
        }
    }
    let svg = std::fs::read_to_string(out.join("charts/knee-latency-c20.svg")).unwrap();
    assert!(svg.contains("offered rate") && svg.contains("SLO 10.00 s"), "the SLO line is drawn");

    // An SLO of 1 µs: no rung sustained; the third is never run.
    let (out, run) = sweep("impossible", "1us");
    let summary = Summary::load(&out).unwrap();
    assert_eq!(summary.records.len(), 2, "{}", text(&run));
    assert_eq!(env_json(&out)["runs_skipped"], 1);
    assert!(String::from_utf8_lossy(&run.stderr).contains("the rest of the ladder is skipped"), "{}", text(&run));
    let report_md = tmp.join("REPORT.md");
    std::fs::write(
        &report_md,
        "<!-- BEGIN GENERATED: knee -->\n<!-- END GENERATED: knee -->\n\
         <!-- BEGIN GENERATED: knee-rungs -->\n<!-- END GENERATED: knee-rungs -->\n",
    )
    .unwrap();
    let rep = loadgen(&["report", out.to_str().unwrap(), "-q", "--update-report", report_md.to_str().unwrap()], &tmp);
    assert!(rep.status.success(), "{}", text(&rep));
    let report = std::fs::read_to_string(&report_md).unwrap();
    assert!(report.contains("| mio-single | 20 | < 100 ("), "{report}");
    assert!(report.contains("| mio-single | 20 | 200 |"), "both rungs in knee-rungs: {report}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// The DELAY the multiplex scenario asks for, in µs.
const MULTIPLEX_DELAY_US: u64 = loadgen::sweep::scenario::MULTIPLEX_DELAY_US as u64;

/// A small multiplex run: thread-per-conn answers in order, so its ECHOs
/// wait behind DELAYs (ECHO p99 above one DELAY); mio-single answers out
/// of order (ECHO p99 below it). Then idle-10ms, which draws the usual
/// charts. A machine busy enough to slow every answer past a DELAY can
/// spoil mio-single's side: that side gets three tries.
#[test]
fn a_small_multiplex_run_shows_who_answers_in_order() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = tempdir();
    let mut tries = Vec::new();
    for n in 0..3 {
        let out = tmp.join(format!("try-{n}"));
        let mut args = words(
            "sweep --scenario multiplex,idle-10ms --models thread-per-conn,mio-single --levels 20 \
            --warmup 0.5s --duration 1.5s --repeat 1 --no-floor",
        );
        args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers)].concat());
        let run = loadgen(&args, &tmp);
        assert!(run.status.success(), "{}", text(&run));
        let summary = Summary::load(&out).unwrap();
        assert_eq!(summary.records.len(), 4, "{}", text(&run));
        let echo_p99 = |model: &str| {
            let r = summary.find("multiplex", model, 20).unwrap();
            assert_eq!(r.status, RunStatus::Ok, "{model}: {:?}", r.failure);
            let x = r.result.as_ref().unwrap();
            assert_eq!(x.config.as_ref().map(|c| c.requests.depth), Some(16), "{:?}", x.config);
            let delay = &x.latency_by_method["DELAY"];
            assert!(delay.p50 >= MULTIPLEX_DELAY_US, "{model}: a DELAY answered in {} µs", delay.p50);
            x.latency_by_method["ECHO"].p99
        };
        let (in_order, out_of_order) = (echo_p99("thread-per-conn"), echo_p99("mio-single"));
        assert!(in_order > MULTIPLEX_DELAY_US, "thread-per-conn's ECHO p99 {in_order} µs: no head-of-line wait?");
        let table = std::fs::read_to_string(out.join("tables.md")).unwrap();
        // The rows of "multiplex: ECHO beside DELAY" end with their verdict.
        let verdicts = table.split("### multiplex: ECHO beside DELAY").nth(1).expect("the ECHO/DELAY table");
        let row =
            |model: &str| verdicts.lines().find(|l| l.starts_with(&format!("| {model} | 20 | "))).unwrap().to_string();
        assert!(row("thread-per-conn").ends_with("(in order) |"), "{table}");
        assert!(out.join("charts/multiplex-echo-vs-delay.svg").is_file());
        check_charts(&out, &["multiplex", "idle-10ms"]);
        for model in ["thread-per-conn", "mio-single"] {
            let idle = summary.find("idle-10ms", model, 20).unwrap();
            assert_eq!(idle.status, RunStatus::Ok, "{model}: {:?}", idle.failure);
            assert!(idle.result.as_ref().unwrap().server.is_some(), "the usual figures, the server's too");
        }
        tries.push(out_of_order);
        if out_of_order < MULTIPLEX_DELAY_US {
            assert!(row("mio-single").ends_with("(out of order) |"), "{table}");
            std::fs::remove_dir_all(&tmp).unwrap();
            return;
        }
    }
    panic!("mio-single's ECHO p99 was above one DELAY of {MULTIPLEX_DELAY_US} µs in every try: {tries:?} µs");
}

/// `sweep --reference` refuses before its first run when a binary was not
/// built from HEAD (here a stand-in `servers` that says it was built from
/// another revision), or the tree is dirty, or there is no checkout, and
/// says which. Nothing is written.
#[test]
fn a_reference_sweep_refuses_binaries_not_built_from_head() {
    let dir = tempdir();
    let fake = dir.join("servers");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\n  --version) echo 'servers 0.1.0 (000000000000)' ;;\n  \
         models) printf 'mio-single\\tready\\n' ;;\nesac\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&fake).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&fake, perms).unwrap();
    let out_dir = dir.join("out");
    let mut args = vec!["sweep".to_string(), "--reference".into(), "--quick".into(), "--no-floor".into()];
    args.extend(flag_path("--servers-bin", &fake));
    args.extend(flag_path("--out", &out_dir));
    let started = Instant::now();
    let out = loadgen(&args, &dir);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let why = match testkit::expected_revision() {
        Ok(rev) if rev.ends_with("-dirty") => "the tree has changes not committed",
        Ok(_) => "servers was built from 000000000000",
        Err(_) => "needs a git checkout",
    };
    assert!(err.contains("--reference: ") && err.contains(why), "expected {why:?}: {err}");
    assert!(!out_dir.exists(), "a refused sweep writes nothing");
    assert!(started.elapsed() < Duration::from_secs(60), "refused at once, not after the floor");
}

/// `sweep --scenario scaling` on two CPUs (the sweep confined to two, or
/// one, whatever the machine has) refuses before anything runs, and says
/// why.
#[test]
fn scaling_refuses_on_two_cpus_and_says_why() {
    let available = loadgen::cpus::available().unwrap();
    let two = &available[..available.len().min(2)];
    let dir = tempdir();
    let out_dir = dir.join("out");
    let mut args = vec!["sweep".to_string(), "--scenario".into(), "scaling".into(), "--no-floor".into()];
    args.extend(flag_path("--out", &out_dir));
    let mut cmd = Command::new(LOADGEN);
    cmd.args(&args).current_dir(&dir).stdin(Stdio::null());
    loadgen::cpus::confine(&mut cmd, two, libc::SIGKILL);
    let out = cmd.output().expect("run loadgen");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let count = format!("this process may use {} ({})", two.len(), loadgen::cpus::list(two));
    assert!(err.contains("--scenario scaling: needs at least 4 CPUs") && err.contains(&count), "{err}");
    assert!(!out_dir.exists(), "a refused sweep writes nothing");
}

/// `--scenario scaling` gives the server whole CPUs step by step, so a CPU
/// budget (one quota for every step) is refused, before anything runs.
#[test]
fn scaling_refuses_a_cpu_budget() {
    let dir = tempdir();
    let out_dir = dir.join("out");
    let mut args = words("sweep --scenario scaling --server-cpu-budget 0.5 --no-floor");
    args.extend(flag_path("--out", &out_dir));
    let out = loadgen(&args, &dir);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--scenario scaling gives the server whole CPUs") && err.contains("--server-cpu-budget"),
        "{err}"
    );
    assert!(!out_dir.exists(), "a refused sweep writes nothing");
}
