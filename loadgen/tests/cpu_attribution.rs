//! A real `loadgen run` against a real server carries the CPU attribution:
//! the two sides added up, and every CPU's time from /proc/stat over the
//! window, with figures that agree with each other and with the clock.
//!
//! The result is read as JSON (the file's own shape), so that this test
//! builds against a `RunResult` without these fields and fails there.

mod common;

use serde_json::Value;

use common::*;
use testkit::{servers_bin, Server};

fn f(v: &Value, path: &str) -> f64 {
    path.split('.').fold(v, |v, k| &v[k]).as_f64().unwrap_or_else(|| panic!("no number at {path}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The CPU numbers of this machine's /proc/stat (the load generator reads the same file).
fn machine_cpus() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/stat").unwrap();
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.strip_prefix("cpu").filter(|n| !n.is_empty()).map(String::from))
        .collect()
}

#[test]
fn a_run_reports_both_sides_together_and_every_cpu() {
    let server = Server::start("thread-per-conn", &[]);
    let (target, admin) = (server.data.to_string(), server.admin.expect("admin port").to_string());
    // The server's CPU time and the wall clock, as this test sees them
    // around the whole run: what the reported figures must agree with.
    let (cpu_before, started) = (testkit::procfs::cpu_micros(server.pid()), std::time::Instant::now());
    let (out, r) =
        run(&words(&format!("--target {target} --admin {admin} -c 32 --warmup 0.5 --duration 2 --server-cpus 0")));
    let (server_cpu_run, wall_run) =
        ((testkit::procfs::cpu_micros(server.pid()) - cpu_before) as f64, started.elapsed().as_secs_f64() * 1e6);
    assert!(out.status.success(), "{}", text(&out));
    let v = serde_json::to_value(r.expect("a result")).unwrap();
    let answered = f(&v, "counts.ok") + f(&v, "counts.errors");
    assert!(answered > 1000.0, "{}", v["counts"]);

    // The server's CPU in the window, as the load generator reports it, is
    // what the server process was charged: no more than this test measured
    // over the whole run (warm-up and drain included, to a tick per side
    // and a STATS round trip), and most of it, since the 2 s window is most
    // of the run's load.
    let (server_cpu, loadgen_cpu) = (f(&v, "server.cpu_us_per_req"), f(&v, "loadgen.cpu_us_per_req"));
    let server_window = server_cpu * f(&v, "server.requests");
    let tick = f(&v, "proc_stat.tick_us");
    assert!(
        server_window <= server_cpu_run + 2.0 * tick + 0.02 * server_cpu_run,
        "reported {server_window} µs of server CPU in the window, but the process used {server_cpu_run} µs in the run"
    );
    assert!(
        server_window >= 0.4 * server_cpu_run,
        "reported {server_window} µs of server CPU in the window, of {server_cpu_run} µs in the whole run"
    );
    // Both sides together: the sum of the two sides' figures.
    assert!(close(f(&v, "combined.cpu_us_per_req"), server_cpu + loadgen_cpu), "{}", v["combined"]);
    assert!(close(f(&v, "combined.server_share"), server_cpu / (server_cpu + loadgen_cpu)));

    // Every CPU of the machine, each with its side: the server's set as
    // given, the load generator's as its affinity (this test's, inherited).
    let p = &v["proc_stat"];
    let cpus = p["cpus"].as_object().unwrap_or_else(|| panic!("no proc_stat.cpus: {p}"));
    let mut machine = machine_cpus();
    machine.sort();
    assert_eq!(cpus.keys().cloned().collect::<Vec<_>>(), machine, "{p}");
    let mine = loadgen::cpus::available().unwrap();
    for (cpu, t) in cpus {
        let n: usize = cpu.parse().unwrap();
        let expected = match (n == 0, mine.contains(&n)) {
            (true, true) => "both",
            (true, false) => "server",
            (false, true) => "loadgen",
            (false, false) => "neither",
        };
        assert_eq!(t["role"], expected, "cpu {cpu}: {t}");
    }

    // The times add up: every CPU's kinds of time cover the window, softirq
    // is part of busy, and the per-request figure is the busy time over the
    // answers. /proc/stat truncates each of its 8 counters to a tick, and
    // charges busy time (and, in a VM, steal) a tick at a time: each CPU's
    // sum is exact to about 10 ticks.
    let (window, tick) = (f(p, "window_us"), f(p, "tick_us"));
    // At least the 2 s asked for, and within the run as this test timed it
    // (a loaded machine may stretch the run; the bound stretches with it).
    assert!((1.9e6..=wall_run).contains(&window), "window {window} µs for --duration 2, in a run of {wall_run} µs");
    let slack = 10.0 * tick + 0.02 * window;
    let mut busy_all = 0.0;
    for (cpu, t) in cpus {
        let (busy, softirq) = (f(t, "busy_us"), f(t, "softirq_us"));
        let parts = f(t, "user_us") + f(t, "system_us") + f(t, "irq_us") + softirq;
        assert!(close(busy, parts), "cpu {cpu}: busy is user + system + irq + softirq: {t}");
        assert!(softirq <= busy, "cpu {cpu}: {t}");
        let accounted = busy + f(t, "steal_us") + f(t, "idle_us");
        assert!(
            (accounted - window).abs() <= slack,
            "cpu {cpu}: {accounted} µs accounted in a {window} µs window: {t}"
        );
        busy_all += busy;
    }
    assert!(busy_all <= cpus.len() as f64 * (window + slack), "{busy_all} µs busy over {} CPUs", cpus.len());
    assert!(close(f(p, "busy_us_per_req"), busy_all / answered), "{p}");

    // /proc/stat sees at least what the two processes were charged: every
    // µs they ran was a busy µs of some CPU, or a stolen one where the
    // kernel does not take steal out of a task's time (up to the tick
    // sampling, and the STATS round trip between the two sides' snapshots).
    let steal_all: f64 = cpus.values().map(|t| f(t, "steal_us")).sum();
    let charged = server_cpu * f(&v, "server.requests") + f(&v, "loadgen.user_us") + f(&v, "loadgen.sys_us");
    assert!(
        charged <= 1.1 * (busy_all + steal_all) + 4.0 * tick * cpus.len() as f64,
        "the processes ran {charged} µs, but the CPUs were busy only {busy_all} µs (and {steal_all} µs stolen)"
    );
}

/// A sweep pins the two sides to disjoint CPUs and tells `loadgen run` the
/// server's: every cell then labels each CPU with its side, and the sum,
/// the per-CPU columns, the table and both charts reach the results.
#[test]
fn a_sweep_cell_labels_each_side_and_exports_the_figures() {
    let tmp = tempdir();
    let out = tmp.join("sweep");
    let servers = servers_bin();
    let mut args =
        words("sweep --models mio-single --levels 20 --scenario echo-saturate --warmup 0.2s --duration 1s --no-floor");
    args.extend([flag_path("--out", &out), flag_path("--servers-bin", &servers)].concat());
    let sweep = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run loadgen sweep");
    assert!(sweep.status.success(), "{}", text(&sweep));

    let env: Value = serde_json::from_slice(&std::fs::read(out.join("env.json")).unwrap()).unwrap();
    let pin = &env["pinning"];
    let set = |k: &str| pin[k].as_array().unwrap().iter().map(|c| c.to_string()).collect::<Vec<_>>();
    let (server, loadgen) = (set("server_cpus"), set("loadgen_cpus"));
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let cell = &summary["records"][0]["result"];
    assert!(cell["combined"]["cpu_us_per_req"].as_f64().is_some_and(|c| c > 0.0), "{}", cell["combined"]);
    for (cpu, t) in cell["proc_stat"]["cpus"].as_object().unwrap_or_else(|| panic!("no proc_stat: {cell}")) {
        let expected = match (server.contains(cpu), loadgen.contains(cpu)) {
            (true, true) => "both",
            (true, false) => "server",
            (false, true) => "loadgen",
            (false, false) => "neither",
        };
        assert_eq!(t["role"], expected, "cpu {cpu} (pinning {pin}): {t}");
    }

    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    let first = format!("proc_stat.cpus.{}.softirq_us", server[0]);
    for column in ["combined.cpu_us_per_req", "combined.sys_us_per_req", "loadgen.sys_us_per_req", &first] {
        assert!(header.split(',').any(|h| h == column), "no column {column} in {header}");
    }
    let tables = std::fs::read_to_string(out.join("tables.md")).unwrap();
    assert!(tables.contains("### echo-saturate: who was charged for the CPU"), "{tables}");
    for chart in ["cpu-attribution", "cpu-softirq"] {
        let svg = std::fs::read_to_string(out.join(format!("charts/echo-saturate-{chart}.svg"))).unwrap();
        assert!(svg.contains("mio-single"), "{chart}");
    }
    std::fs::remove_dir_all(out.parent().unwrap()).unwrap();
}
