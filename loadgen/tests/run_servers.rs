//! `loadgen run` against real servers (the `servers` binary, built first:
//! `cargo build --workspace --bins`) and against deliberately wrong ones.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use loadgen::records::run::RunResult;
use testkit::Server;

fn addrs(s: &Server) -> (String, String) {
    (s.data.to_string(), s.admin.expect("admin port").to_string())
}

fn assert_counts_add_up(r: &RunResult) {
    let c = &r.counts;
    assert_eq!(c.sent, c.ok + c.errors + c.mismatches + c.timeouts + c.in_flight_end, "{c:?}");
    assert_eq!(c.scheduled, c.sent + c.unsent, "{c:?}");
    assert!(c.accounted, "{c:?}");
    assert_eq!(c.errors, c.errors_by_status.values().sum::<u64>(), "{c:?}");
}

#[test]
fn counts_add_up_and_stats_deltas_match() {
    let server = Server::start("thread-per-conn", &[]);
    let (target, admin) = addrs(&server);
    let (out, r) = run(&words(&format!(
        "--target {target} --admin {admin} -c 16 --depth 2 --mix \
        echo=80,compute=10,delay=10 --delay-us 500 --rounds 5000 --warmup 0.5 --duration 2"
    )));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = r.unwrap();
    assert_counts_add_up(&r);
    assert!(r.counts.ok > 1000, "{:?}", r.counts);
    assert_eq!(r.counts.mismatches_total, 0);
    assert_eq!(r.failure, None);
    assert_eq!(r.connections.established, 16);
    assert!(r.window_s > 1.9 && r.window_s < 2.1, "{}", r.window_s);

    // The server answered, within the window, what the load generator
    // counted, up to what was in flight at either end (16 x 2 each) and
    // what was answered while each STATS snapshot was being read.
    let s = r.server.as_ref().expect("server counters");
    assert_eq!(s.model, "thread-per-conn");
    let answered = r.counts.ok + r.counts.errors;
    let slack = 2 * 16 * 2 + answered / 50;
    assert!(s.requests.abs_diff(answered) <= slack, "server {} vs loadgen {answered}", s.requests);
    assert!(s.cpu_us_per_req > 0.0 && s.user_us_per_req + s.sys_us_per_req > 0.0);
    assert!(s.threads >= 16, "a thread per connection: {}", s.threads);
    assert_eq!(s.connections_open, 16, "{s:?}");
    // The run records the limits against hostile clients, none of which a
    // benchmark may reach.
    let none = loadgen::records::run::LimitsActed::default();
    assert_eq!(s.limits_acted, Some(none), "a hostile-client limit acted in a benchmark run");
    assert!(r.loadgen.cpu_us_per_req > 0.0 && r.loadgen.rss_bytes > 0);

    // Fairness and time series cover the window.
    assert!(r.fairness.min > 0 && r.fairness.min <= r.fairness.median && r.fairness.median <= r.fairness.max);
    assert_eq!(r.connections.never_served, 0);
    let window: Vec<_> = r.timeseries.iter().filter(|s| s.phase == "window").collect();
    assert_eq!(window.len(), 2, "{:?}", r.timeseries);
    assert!(window.iter().all(|s| s.rps > 0.0 && s.server_threads.is_some() && s.p99_us >= s.p50_us));
}

#[test]
fn a_corrupting_server_is_caught() {
    let bad = FakeEcho::start(1000);
    let target = bad.addr.to_string();
    let (out, r) = run(&["--target", &target, "-c", "8", "--warmup", "0.2", "--duration", "2"]);
    assert!(!out.status.success(), "a corrupting server must fail the run");
    let r = r.unwrap();
    assert!(r.counts.mismatches > 0, "{:?}", r.counts);
    assert!(r.counts.ok >= 1000 * r.counts.mismatches / 2, "{:?}", r.counts);
    assert!(r.failure.as_deref().unwrap().contains("did not match"), "{:?}", r.failure);
    assert!(stderr(&out).contains("ECHO payload differs"), "{}", stderr(&out));
    assert_counts_add_up(&r);

    // --allow-mismatch: counted, but the run stands.
    let (out, r) = run(&["--target", &target, "-c", "8", "--warmup", "0", "--duration", "1", "--allow-mismatch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(r.unwrap().counts.mismatches_total > 0);

    // The same fake, not corrupting: a clean run.
    let good = FakeEcho::start(0);
    let (out, r) = run(&["--target", &good.addr.to_string(), "-c", "8", "--warmup", "0", "--duration", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r.unwrap().counts.mismatches_total, 0);
}

#[test]
fn open_loop_corrects_for_coordinated_omission() {
    // Thread-per-connection answers in order, so a 200 ms DELAY holds up
    // every request queued behind it on its connection: the requests that
    // should have gone out meanwhile are late, and only the corrected
    // latency (from their intended send times) shows it.
    let server = Server::start("thread-per-conn", &[]);
    let (target, admin) = addrs(&server);
    let (out, r) = run(&words(&format!(
        "--target {target} --admin {admin} -c 4 --rate 400 --mix echo=97,delay=3 \
        --delay-us 200000 --timeout 5s --warmup 0.5 --duration 3"
    )));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = r.unwrap();
    assert_counts_add_up(&r);
    let (c, u) = (&r.latency, r.latency_uncorrected.as_ref().expect("open loop keeps the uncorrected histogram"));
    assert!(c.count > 500 && c.count == u.count, "{c:?} {u:?}");
    assert!(c.mean > 2.0 * u.mean, "corrected {c:?} vs uncorrected {u:?}");
    assert!(c.p90 > u.p90, "corrected {c:?} vs uncorrected {u:?}");
    assert!(c.max >= 200_000 && u.max >= 200_000, "the DELAY itself shows in both: {c:?} {u:?}");
    // The schedule was kept: 400 req/s over the window as measured (a
    // loaded machine may stretch the window; the schedule follows it), and
    // every request scheduled was sent.
    let owed = 400.0 * r.window_s;
    assert!((r.counts.scheduled as f64 - owed).abs() <= 0.01 * owed + 4.0, "{owed} owed: {:?}", r.counts);
    assert_eq!(r.counts.sent, r.counts.scheduled, "{:?}", r.counts);
}

#[test]
fn two_thousand_connections() {
    let server = Server::start("mio-single", &[]);
    let (target, admin) = addrs(&server);
    let (out, r) = run(&words(&format!(
        "--target {target} --admin {admin} -c 2000 --threads 2 --warmup 0.5 --duration 2 --timeout 10s"
    )));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = r.unwrap();
    assert_eq!(r.connections.established, 2000);
    assert_eq!(r.connections.failed, 0);
    assert_eq!(r.counts.mismatches_total, 0);
    assert_counts_add_up(&r);
    assert_eq!(r.connections.never_served, 0);
    assert!(r.fairness.min > 0, "{:?}", r.fairness);
    assert_eq!(r.server.unwrap().connections_open, 2000);
    assert!(r.connections.connect_us.max > 0);
}

#[test]
fn raw_mode_checks_the_bytes() {
    let server = Server::start("thread-per-conn", &["--protocol", "raw"]);
    let (target, admin) = addrs(&server);
    let (out, r) = run(&words(&format!(
        "--target {target} --admin {admin} --protocol raw --size 1000 -c 4 --warmup 0 --duration 1"
    )));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = r.unwrap();
    assert!(r.counts.ok > 100, "{:?}", r.counts);
    assert_eq!(r.counts.mismatches_total, 0);
    assert_counts_add_up(&r);

    // A framed server is no raw echo: the frames that come back are not
    // the bytes sent.
    let framed = Server::start("thread-per-conn", &[]);
    let (out, r) = run(&words(&format!(
        "--target {} --protocol raw --size 64 -c 1 --warmup 0 --duration 1 --timeout 1s",
        framed.data
    )));
    assert!(!out.status.success());
    assert!(r.unwrap().counts.mismatches_total > 0);
}

/// Start `loadgen run ARGS --json FILE --quiet` as a child, do `then` to
/// it 1.5 s later, and wait: its output and its parsed `--json`.
fn run_and_then(args: &[&str], then: impl FnOnce(&std::process::Child)) -> (std::process::Output, RunResult) {
    let tmp = tempdir();
    let json = tmp.join("run.json");
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("run")
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    then(&child);
    let out = child.wait_with_output().unwrap();
    let r = serde_json::from_slice(&std::fs::read(&json).expect("--json written")).expect("--json parses");
    (out, r)
}

#[test]
fn a_server_that_dies_ends_the_run_with_what_was_measured() {
    // Killed 1.5 s into a 20 s run: over within --timeout (2 s) of the kill.
    let ((out, r), took) = within(Duration::from_secs(10), || {
        let mut server = Server::start("thread-per-conn", &[]);
        let (target, admin) = addrs(&server);
        let args = ["--target", &target, "--admin", &admin, "-c", "8", "--warmup", "0", "--duration", "20"];
        run_and_then(&[&args[..], &["--timeout", "2s"]].concat(), |_| server.kill())
    });
    assert!(took.last() <= Some(&Duration::from_secs(10)), "took {took:?}");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("closed or reset all 8 connections"), "{}", stderr(&out));
    assert!(r.counts.ok > 0 && r.counts.resets == 8, "{:?}", r.counts);
    assert!(r.window_s > 0.5 && r.window_s < 5.0, "{}", r.window_s);
    assert_counts_add_up(&r);
}

#[test]
fn ctrl_c_ends_the_run_and_keeps_the_results() {
    // SIGINT 1.5 s into a 30 s run: over at once, with what was measured.
    let ((out, r), took) = within(Duration::from_secs(10), || {
        let server = Server::start("thread-per-conn", &[]);
        let target = server.data.to_string();
        run_and_then(&["--target", &target, "-c", "4", "--warmup", "0", "--duration", "30"], |child| unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        })
    });
    assert!(took.last() <= Some(&Duration::from_secs(10)), "took {took:?}");
    assert!(!out.status.success());
    assert_eq!(r.failure.as_deref(), Some("interrupted"));
    assert!(r.counts.ok > 0 && r.window_s > 0.5 && r.window_s < 5.0, "{} {:?}", r.window_s, r.counts);
    assert_counts_add_up(&r);
}

#[test]
fn never_served_connections_fail_the_run_and_do_not_hang_it() {
    // A pool of 2 workers serves 2 connections; the other 4 wait in the
    // accept queue for the whole run. Their first request goes unanswered
    // before the load (the warm-up cannot end with every connection
    // served), so the run fails, naming them, but measures all the same.
    let server = Server::start("pool", &["--threads", "2"]);
    let (target, admin) = addrs(&server);
    let args = ["--target", &target, "--admin", &admin, "-c", "6", "--warmup", "0.2", "--duration", "1"];
    let extra = ["--timeout", "500ms", "--connect-timeout", "1s"];
    let ((out, r), took) = within(Duration::from_secs(10), || run(&[&args[..], &extra[..]].concat()));
    assert!(took.last() <= Some(&Duration::from_secs(10)), "a 2.2 s run took {took:?}");
    assert!(!out.status.success(), "{}", stderr(&out));
    let r = r.unwrap();
    let failure = r.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("4 connections had no answer to their first request"), "{failure}");
    assert_eq!(r.connections.unanswered_first, 4, "{:?}", r.connections);
    assert_eq!(r.connections.established, 6);
    assert_eq!(r.connections.never_served, 4, "{:?}", r.connections);
    assert_eq!(r.connections.stuck, 4, "{:?}", r.connections);
    assert_eq!(r.fairness.min, 0);
    assert!(r.counts.ok > 0);
    assert_counts_add_up(&r);
}

/// A mix reports each method's latency apart, in the JSON and in one hgrm
/// file per method: the DELAYs take at least their delay, and the ECHOs of
/// an out-of-order server do not wait for them.
#[test]
fn latency_is_reported_per_method() {
    let server = Server::start("mio-single", &[]);
    let (target, _) = addrs(&server);
    let tmp = tempdir();
    let hgrm = tmp.join("mix.hgrm");
    let mut args = words(&format!(
        "--target {target} -c 20 --depth 4 --mix echo=80,delay=20 --delay-us 20000 --warmup 200ms --duration 1s"
    ));
    args.extend(["--hgrm".to_string(), hgrm.display().to_string()]);
    let (out, r) = run(&args);
    let r = r.unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(r.failure.is_none(), "{}", stderr(&out));
    let (echo, delay) = (&r.latency_by_method["ECHO"], &r.latency_by_method["DELAY"]);
    assert_eq!(echo.count + delay.count, r.latency.count, "{:?}", r.latency_by_method);
    assert!(delay.p50 >= 20_000, "a DELAY of 20 ms answered in {} µs", delay.p50);
    assert!(echo.p50 < delay.p50, "mio-single answers ECHO without waiting for DELAY: {:?}", r.latency_by_method);
    for method in ["echo", "delay"] {
        let file = hgrm.with_file_name(format!("mix.{method}.hgrm"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.contains("Value") && text.contains("Percentile"), "{text}");
    }
}

/// Closed loop with a think time: each connection sends its --depth
/// requests together (one pipelined burst), and the connections start
/// spread over one think time rather than all in the same instant.
///
/// Both are read from arrival times, which a loaded machine's slow moment
/// can stretch: a run that fails on them alone is tried again (up to
/// `common::TRIES`), as a loadgen that does not pipeline or spread fails
/// every time.
#[test]
fn think_time_spreads_the_connections_first_requests() {
    let mut tries = Vec::new();
    for _ in 0..TRIES {
        match think_time_try() {
            Ok(()) => return,
            Err(why) => tries.push(why),
        }
    }
    panic!("every try failed on its arrival times: {tries:#?}");
}

/// One run of [`think_time_spreads_the_connections_first_requests`]: `Err`
/// names the timing that did not hold.
fn think_time_try() -> Result<(), String> {
    let (addr, arrivals) = stamping_echo();
    let target = addr.to_string();
    let think = Duration::from_millis(300);
    let think_us = think.as_micros().to_string();
    let args =
        words(&format!("--target {target} -c 20 --depth 4 --think-us {think_us} --warmup 500ms --duration 300ms"));
    let (out, r) = run(&args);
    let r = r.unwrap_or_else(|| panic!("{}", stderr(&out)));
    assert!(r.failure.is_none(), "{}", stderr(&out));
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 20);
    // Request 0 is the probe every connection answers before the load; 1-4 the first burst.
    let bursts: Vec<&[Instant]> = arrivals.iter().map(|a| &a[1..5]).collect();
    for (k, b) in bursts.iter().enumerate() {
        let spread = b[3].duration_since(b[0]);
        if spread >= think / 10 {
            return Err(format!("connection {k}: its first 4 requests came {spread:?} apart, not together"));
        }
    }
    let firsts: Vec<Instant> = bursts.iter().map(|b| b[0]).collect();
    let (first, last) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
    let spread = last.duration_since(*first);
    if spread < think / 2 {
        return Err(format!("the connections' first bursts came within {spread:?}, not spread over {think:?}"));
    }
    Ok(())
}

/// The cell the argument is about: thread-per-conn at 5000 connections in
/// echo-saturate, pinned as the sweep pins it, so that 5000 busy threads
/// share the server's CPU. Every run must carry the server's figures, above
/// all its context switches and CPU per request. They come from STATS,
/// which a thread of the server answers among those 5000: before that
/// thread ran at real-time priority, most such runs of the sweep timed out
/// on STATS and had none (2 of 3 by hand, and the reference sweep's).
///
/// Meanwhile a probe reads STATS on a fresh admin connection every 200 ms,
/// with the load generator's own client and its own 1 s limit: the whole
/// path (accept, read, snapshot, write) must answer every time. The old
/// per-connection admin thread lost that race now and then (once in 20
/// fresh connections, after 4.7 s, in a debug build by hand).
#[test]
#[ignore = "slow: three runs at 5000 connections, a thread each (about 35 s)"]
fn thread_per_conn_at_5000_has_server_figures() {
    const CONNECTIONS: u64 = 5000;
    let pins = sweep_pinning();
    let knobs = loadgen::sweep::scenario::Knobs { rate: 0.0, rounds: 0 };
    let scenario = loadgen::sweep::scenario::select("echo-saturate").unwrap()[0].flags(&knobs);
    for attempt in 1..=3 {
        // As the sweep starts it: STATS at real-time priority.
        let server = Server::start_pinned("thread-per-conn", &["--admin-realtime"], &pins.server_cpus);
        let (target, admin) = addrs(&server);
        let c = CONNECTIONS.to_string();
        // A warm-up long enough for a debug build's 5000 threads to have
        // answered every connection once; a timeout that no answer reaches.
        let mut args = vec!["--target", &target, "--admin", &admin, "-c", &c, "--warmup", "4s", "--duration", "2s"];
        args.extend(["--timeout", "10s"]);
        args.extend(scenario.iter().map(String::as_str));
        let ((out, r), probes) =
            with_stats_probe(server.admin.unwrap(), &pins.loadgen_cpus, || run_pinned(&args, &pins.loadgen_cpus));
        assert!(out.status.success(), "run {attempt}: {}", text(&out));
        let r = r.unwrap();
        assert_eq!(r.connections.established, CONNECTIONS, "run {attempt}: {:?}", r.connections);
        let s = r.server.as_ref().unwrap_or_else(|| panic!("run {attempt}: no server figures; notes {:?}", r.notes));
        // A blocking thread waits for most requests (about one switch each
        // in a release build; fewer in a debug build, whose threads are
        // slow enough to find the next request there already).
        assert!(s.voluntary_cs_per_req > 0.0, "run {attempt}: {s:?}");
        assert!(s.cpu_us_per_req > 0.0 && s.requests > CONNECTIONS, "run {attempt}: {s:?}");
        assert!(s.threads > CONNECTIONS, "a thread per connection: {s:?}");
        let failed: Vec<&String> = probes.iter().filter_map(|p| p.as_ref().err()).collect();
        assert!(
            probes.len() >= 10 && failed.is_empty(),
            "run {attempt}: {} STATS probes, failed: {failed:?}",
            probes.len()
        );
        let slowest = probes.iter().filter_map(|p| p.as_ref().ok()).max().unwrap();
        println!(
            "run {attempt}: {:.0} req/s; server {:.2} µs CPU and {:.3} + {:.3} switches per request, {} threads; \
             {} STATS probes, slowest {slowest:?}",
            r.throughput_rps,
            s.cpu_us_per_req,
            s.voluntary_cs_per_req,
            s.involuntary_cs_per_req,
            s.threads,
            probes.len()
        );
    }
}

/// Run `f` while a thread pinned to `cpus` reads STATS from `admin` every
/// 200 ms, each time on a fresh connection, with the load generator's own
/// STATS client; `f`'s result and each read's time (or error).
fn with_stats_probe<T>(
    admin: std::net::SocketAddr,
    cpus: &[usize],
    f: impl FnOnce() -> T,
) -> (T, Vec<Result<Duration, String>>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let (stop, pins) = (done.clone(), cpus.to_vec());
    let probe = std::thread::spawn(move || {
        loadgen::cpus::pin_self(&pins).expect("pin the probe");
        let mut probes = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            let started = Instant::now();
            let read = loadgen::run::sampler::StatsClient::new(admin).fetch();
            probes.push(read.map(|_| started.elapsed()));
        }
        probes
    });
    let out = f();
    done.store(true, Ordering::Relaxed);
    (out, probe.join().unwrap())
}

/// `loadgen --version` names the checkout's revision, and a run's JSON
/// names both binaries that ran: each one's embedded revision and the hash
/// of its executable (the server's read from /proc/PID/exe).
#[test]
fn version_and_the_run_json_name_both_binaries() {
    let expected = match testkit::expected_revision() {
        Ok(r) => r,
        Err(why) => return eprintln!("skipped: no git checkout to compare with ({why})"),
    };
    let version = Command::new(env!("CARGO_BIN_EXE_loadgen")).arg("--version").output().unwrap();
    let printed = String::from_utf8_lossy(&version.stdout);
    assert_eq!(printed.trim(), format!("loadgen {} ({expected})", env!("CARGO_PKG_VERSION")));

    let server = Server::start("mio-single", &[]);
    let (target, admin) = addrs(&server);
    let (out, r) = run(&["--target", &target, "--admin", &admin, "-c", "2", "--warmup", "0", "--duration", "1"]);
    let r = r.unwrap_or_else(|| panic!("no result: {}", stderr(&out)));
    let sha = |p: &std::path::Path| Some(loadgen::env::sha256_file(p).unwrap());
    let b = &r.binaries;
    assert_eq!(b.loadgen.revision.as_deref(), Some(expected.as_str()), "{b:?}");
    assert_eq!(b.loadgen.sha256, sha(std::path::Path::new(env!("CARGO_BIN_EXE_loadgen"))), "{b:?}");
    assert_eq!(b.server.revision.as_deref(), Some(expected.as_str()), "{b:?}");
    assert_eq!(b.server.sha256, sha(&testkit::servers_bin()), "{b:?}");
    assert_eq!((b.loadgen.unknown.as_deref(), b.server.unknown.as_deref()), (None, None));

    // Without --admin the server is not asked, and the JSON says so.
    let (out, r) = run(&["--target", &target, "-c", "1", "--warmup", "0", "--duration", "1"]);
    let r = r.unwrap_or_else(|| panic!("no result: {}", stderr(&out)));
    assert_eq!((r.binaries.server.revision.as_deref(), r.binaries.server.sha256.as_deref()), (None, None));
    assert!(r.binaries.server.unknown.as_deref().is_some_and(|w| w.contains("--admin")), "{:?}", r.binaries);
}
