//! `loadgen sweep` end to end, kept small: two models, two low connection
//! levels, sub-second windows, into a temporary directory. Then `loadgen
//! report` on what it saved, a model that cannot start, Ctrl-C, and the
//! flags it must refuse. The experiments too: a small knee ladder, and a
//! small multiplex run that shows which models answer out of order.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadgen::sweep::summary::{Status, Summary};

mod common;
use common::{servers_bin, text};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// One sweep at a time: they all pin to the same CPUs, and a sweep's
/// figures (and its loadgen's timeouts) should not depend on another's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-sweep-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn loadgen(args: &[&str], cwd: &Path) -> Output {
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

#[test]
fn tiny_sweep_saves_everything_and_report_redraws_it() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = temp_dir("tiny");
    let out = tmp.join("out");
    let args = [
        "sweep",
        "--models",
        "mio-single,thread-per-conn",
        "--levels",
        "50,100",
        "--scenario",
        "echo-saturate,echo-paced",
        "--warmup",
        "0.2s",
        "--duration",
        "0.5s",
        "--out",
        out.to_str().unwrap(),
        "--servers-bin",
        servers.to_str().unwrap(),
    ];
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "{}", text(&run));

    // summary.json: 2 models × 2 levels × 2 scenarios, all measured.
    let summary = Summary::load(&out).unwrap();
    assert_eq!(summary.scenarios, ["echo-saturate", "echo-paced"]);
    assert_eq!(summary.records.len(), 8);
    for r in &summary.records {
        assert_eq!(r.status, Status::Ok, "{} {} {}: {:?}\n{}", r.scenario, r.model, r.level, r.failure, text(&run));
        let result = r.result.as_ref().unwrap();
        assert_eq!(result.connections.established, r.level);
        assert!(result.throughput_rps > 0.0 && result.latency.count > 0);
        assert_eq!(result.server.as_ref().unwrap().model, r.model);
        for f in [&r.files.json, &r.files.hlog, &r.files.hgrm] {
            assert!(out.join(f).is_file(), "no {f}");
        }
    }
    let paced = summary.find("echo-paced", "mio-single", 100).unwrap();
    assert!(paced.result.as_ref().unwrap().args.iter().any(|a| a == "--rate"));

    // summary.csv: a header and one row per run, with the lead columns.
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 9, "{csv}");
    assert!(lines[0].starts_with("scenario,model,level,status,failure,loadgen_bound,"), "{}", lines[0]);
    assert!(lines[0].contains("throughput_rps") && lines[0].contains("server.cpu_us_per_req"));
    assert!(lines[1..].iter().all(|l| l.contains(",ok,")));

    // env.json: pinning, what ran, what was skipped.
    let env: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("env.json")).unwrap()).unwrap();
    let pin = &env["pinning"];
    assert!(!pin["server_cpus"].as_array().unwrap().is_empty() && !pin["loadgen_cpus"].as_array().unwrap().is_empty());
    assert_eq!(env["models"], serde_json::json!(["mio-single", "thread-per-conn"]));
    assert_eq!(env["runs_done"], 8);
    assert_eq!(env["interrupted"], false);
    assert!(env["compute"]["rounds"].as_u64().unwrap() > 0);
    assert!(env["finished"].is_string());

    check_charts(&out, &["echo-saturate", "echo-paced"]);
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
    assert!(stdout.contains("## echo-saturate") && stdout.contains("| mio-single | 100 |"), "{stdout}");
    check_charts(&out, &["echo-saturate", "echo-paced"]);
    assert_eq!(std::fs::read_to_string(out.join("summary.csv")).unwrap().lines().count(), 9);
    let report = std::fs::read_to_string(&report_md).unwrap();
    assert!(report.starts_with("# Report\n\nHand-written.\n"));
    assert!(!report.contains("stale") && report.contains("| thread-per-conn | 50 |"), "{report}");
    assert!(report.contains("not run"), "a region for a scenario not in the sweep stays as it was");

    std::fs::remove_dir_all(&tmp).unwrap();
}

/// A model that cannot start is recorded with its reason, and the sweep goes on.
#[test]
fn a_failing_model_is_recorded_and_the_sweep_goes_on() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = temp_dir("failing");
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
    let args = [
        "sweep",
        "--models",
        "pool,mio-single",
        "--levels",
        "20",
        "--scenario",
        "echo-saturate",
        "--warmup",
        "0.1s",
        "--duration",
        "0.3s",
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
        "--servers-bin",
        fake.to_str().unwrap(),
    ];
    let run = loadgen(&args, &tmp);
    assert!(run.status.success(), "failed runs are results, not errors: {}", text(&run));
    let summary = Summary::load(&out).unwrap();
    let pool = summary.find("echo-saturate", "pool", 20).unwrap();
    assert_eq!(pool.status, Status::Failed);
    let why = pool.failure.as_deref().unwrap();
    assert!(why.contains("server did not start") && why.contains("cannot spawn worker threads"), "{why}");
    assert_eq!(summary.find("echo-saturate", "mio-single", 20).unwrap().status, Status::Ok, "{}", text(&run));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("echo-saturate,pool,20,failed,server did not start")), "{csv}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("FAILED: server did not start"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// Ctrl-C: the current run is stopped (children killed by PID), finished
/// runs are kept, charts are still drawn, and the exit status says so.
#[test]
fn ctrl_c_keeps_what_was_measured() {
    let _serial = serial();
    let servers = servers_bin();
    let tmp = temp_dir("ctrlc");
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
    let tmp = temp_dir("flags");
    let out = tmp.join("out");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["--models", "nginx"], "--models nginx: no such model"),
        (&["--scenario", "fast"], "--scenario fast: no such scenario"),
        (&["--rate", "10", "--levels", "200", "--duration", "1s"], "--rate 10"),
        (&["--server-cpus", "0", "--loadgen-cpus", "0"], "overlap"),
        (&["--scenario", "knee", "--rates", "0,100"], "--rates: give positive request rates"),
        (&["--scenario", "knee", "--rates", "50,100", "--levels", "200", "--duration", "1s"], "knee's rate 50"),
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
    let tmp = temp_dir("knee");
    let sweep = |name: &str, slo: &str| {
        let out = tmp.join(name);
        let args = [
            "sweep",
            "--scenario",
            "knee",
            "--models",
            "mio-single",
            "--levels",
            "20",
            "--rates",
            "400,100,200",
            "--slo",
            slo,
            "--warmup",
            "0.2s",
            "--duration",
            "0.5s",
            "--no-floor",
            "--out",
            out.to_str().unwrap(),
            "--servers-bin",
            servers.to_str().unwrap(),
        ];
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
        assert_eq!(r.status, Status::Ok, "{:?}: {:?}", r.offered_rps, r.failure);
        let x = r.result.as_ref().unwrap();
        let rate = r.offered_rps.unwrap();
        assert!(x.args.windows(2).any(|w| w == ["--rate", &rate.to_string()]), "{:?}", x.args);
        assert!((x.throughput_rps - rate).abs() < 0.1 * rate, "{rate}: answered {}", x.throughput_rps);
        assert!(out.join(&r.files.json).is_file() && r.files.json.ends_with(&format!("-c20-r{rate}.json")));
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
    assert!(String::from_utf8_lossy(&run.stderr).contains("the 1 above are skipped"), "{}", text(&run));
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
    let tmp = temp_dir("multiplex");
    let mut tries = Vec::new();
    for n in 0..3 {
        let out = tmp.join(format!("try-{n}"));
        let args = [
            "sweep",
            "--scenario",
            "multiplex,idle-10ms",
            "--models",
            "thread-per-conn,mio-single",
            "--levels",
            "20",
            "--warmup",
            "0.5s",
            "--duration",
            "1.5s",
            "--no-floor",
            "--out",
            out.to_str().unwrap(),
            "--servers-bin",
            servers.to_str().unwrap(),
        ];
        let run = loadgen(&args, &tmp);
        assert!(run.status.success(), "{}", text(&run));
        let summary = Summary::load(&out).unwrap();
        assert_eq!(summary.records.len(), 4, "{}", text(&run));
        let echo_p99 = |model: &str| {
            let r = summary.find("multiplex", model, 20).unwrap();
            assert_eq!(r.status, Status::Ok, "{model}: {:?}", r.failure);
            let x = r.result.as_ref().unwrap();
            assert!(x.args.windows(2).any(|w| w == ["--depth", "16"]), "{:?}", x.args);
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
            assert_eq!(idle.status, Status::Ok, "{model}: {:?}", idle.failure);
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
