//! Nothing vanishes: `loadgen run` accounts for every request the schedule
//! owed the window, fails a run that could not offer its rate, warms up
//! until every connection has been served, and catches stale answers,
//! error statuses and raw servers that count reads.
//!
//! Each test runs the real binaries (or a misbehaving server written in
//! tests/common) and asserts on the JSON the run wrote.

mod common;

use std::time::Duration;

use common::{fake_framed, freeze, run, text, words, Fake};
use loadgen::records::run::RunResult;
use testkit::Server;

/// `answered + timed out + in flight at the end + unsent = scheduled`, and
/// the scheduled count is the rate times the window, within 1%.
fn assert_accounted(r: &RunResult, rate: f64, window_s: f64) {
    let c = &r.counts;
    let expect = rate * window_s;
    assert!(
        (c.scheduled as f64 - expect).abs() <= 0.01 * expect,
        "scheduled {} for {rate} req/s over {window_s} s: {c:?}",
        c.scheduled
    );
    assert_eq!(c.scheduled, c.ok + c.errors + c.mismatches + c.timeouts + c.in_flight_end + c.unsent, "{c:?}");
    assert!(c.accounted, "the JSON must say that the counts add up: {c:?}");
    assert_eq!(c.sent + c.unsent, c.scheduled, "{c:?}");
    // Every request of the window is in the histogram: answered ones, and
    // the timed out and unsent ones at their wait.
    assert_eq!(r.latency.count, c.scheduled - c.in_flight_end, "{c:?} {:?}", r.latency);
}

/// The case: a pool of 50 threads and 100 connections. The 50
/// connections it never serves send nothing after their first request;
/// what they owed the window is counted as unsent, and the run fails,
/// naming them.
#[test]
fn unserved_connections_are_counted_unsent_and_fail_the_run() {
    let server = Server::start("pool", &["--threads", "50"]);
    let target = server.data.to_string();
    let args = words(&format!(
        "--target {target} -c 100 --rate 1000 --warmup 1s --duration 6s --timeout 1s --connect-timeout 1s"
    ));
    let (out, r) = run(&args);
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert!(!out.status.success(), "{}", text(&out));
    assert_accounted(&r, 1000.0, 6.0);
    let c = &r.counts;
    // Half the connections are never served: about half the schedule is
    // unsent, the other half answered.
    assert!((2900..=3100).contains(&c.unsent), "{c:?}");
    assert!((2900..=3100).contains(&c.ok), "{c:?}");
    assert_eq!(r.connections.unanswered_first, 50, "{:?}", r.connections);
    let failure = r.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("--rate 1000: not offered"), "{failure}");
    assert!(failure.contains("50 connections"), "names the unanswered connections: {failure}");
    assert!(failure.contains("connections 5"), "lists their numbers: {failure}");
    // Unsent requests are charged from their intended time: the tail shows
    // them (each waited from its intended time to the end of the run).
    assert!(r.latency.p90 >= 1_000_000, "{:?}", r.latency);
}

/// A 3 s SIGSTOP with `--timeout 1s`: the requests in flight time out, the
/// ones scheduled behind them are sent late when the server wakes, and every
/// request is still accounted for, the tail not cut off at the timeout.
#[test]
fn a_stalled_server_loses_no_request() {
    let server = Server::start("mio-single", &[]);
    let (target, pid) = (server.data.to_string(), server.child.id());
    let args =
        ["--target", &target, "-c", "100", "--rate", "1000", "--warmup", "1s", "--duration", "6s", "--timeout", "1s"];
    let stall = std::thread::spawn(move || {
        // Connecting and probing 100 connections takes well under a second.
        std::thread::sleep(Duration::from_millis(2500));
        freeze(pid, Duration::from_secs(3));
    });
    let (out, r) = run(&args);
    stall.join().unwrap();
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert_accounted(&r, 1000.0, 6.0);
    let c = &r.counts;
    assert!(c.timeouts >= 1, "the requests in flight at the stall time out: {c:?}");
    assert_eq!(c.unsent, 0, "the backlog is sent when the server wakes: {c:?}");
    // A 3 s stall in a 6 s window: the worst request waited about 3 s, and
    // more than 1% waited over 2 s, past the 1 s timeout.
    assert!(r.latency.max >= 2_500_000, "{:?}", r.latency);
    assert!(r.latency.p99 >= 2_000_000, "{:?}", r.latency);
    // Every in-window send went either on time (its lag measured) or as
    // soon as its connection's earlier answer came (held back).
    let lag = r.send_lag.as_ref().expect("open loop reports its send lag");
    assert_eq!(lag.count + lag.held_back, c.sent, "{lag:?} {c:?}");
    assert!(lag.held_back > 0, "the stall held requests back: {lag:?}");
}

/// A server slow to serve its connections (the last one only 1.5 s after
/// the first) with a 0.2 s warm-up: the window starts only after every
/// connection has had an answer, so every one is answered in it.
#[test]
fn warmup_ends_after_every_connection_is_served() {
    let addr = fake_framed(Fake::SlowStart { step: Duration::from_millis(50) }).to_string();
    let (out, r) = run(&["--target", &addr, "-c", "30", "--warmup", "200ms", "--duration", "1s"]);
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert!(r.failure.is_none(), "{}", text(&out));
    assert_eq!(r.connections.unanswered_first, 0);
    assert_eq!(r.connections.never_served, 0);
    assert!(r.fairness.min > 0, "a connection had no answer in the window: {:?}", r.fairness);
    assert!(r.connections.first_answer_us.max >= 1_000_000, "the fake serves late: {:?}", r.connections);
}

/// A server that answers every ECHO of a connection with that connection's
/// first payload: each request carries its own payload, so it fails.
#[test]
fn a_stale_echo_fails_the_run() {
    let addr = fake_framed(Fake::StaleEcho).to_string();
    let (out, r) = run(&["--target", &addr, "-c", "4", "--warmup", "0", "--duration", "500ms"]);
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert!(!out.status.success());
    let c = &r.counts;
    assert!(c.mismatches > 0, "{c:?}");
    // A wrong answer is a mismatch, not an OK: only each connection's first
    // answer (its own payload) can be right, and throughput counts OKs only.
    assert!(c.ok <= 4, "mismatched answers must not count as ok: {c:?}");
    assert_eq!(c.sent, c.ok + c.errors + c.mismatches + c.timeouts + c.in_flight_end, "{c:?}");
    assert!(c.accounted, "{c:?}");
    assert!(r.throughput_rps <= 4.0 / r.window_s + 1e-9, "{} req/s: {c:?}", r.throughput_rps);
    let failure = r.failure.unwrap_or_default();
    assert!(failure.contains("ECHO payload differs"), "{failure}");
}

/// Error statuses fail the run, unless the workload expects them.
#[test]
fn error_statuses_fail_unless_expected() {
    let addr = fake_framed(Fake::Busy).to_string();
    let args = ["--target", &addr, "-c", "2", "--warmup", "0", "--duration", "300ms"];
    let (out, r) = run(&args);
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert!(!out.status.success());
    assert!(r.counts.errors > 0 && r.counts.errors_by_status.contains_key("BUSY"), "{:?}", r.counts);
    let failure = r.failure.unwrap_or_default();
    assert!(failure.contains("error status") && failure.contains("--expect-errors"), "{failure}");

    let (out, r) = run(&[&args[..], &["--expect-errors"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    assert!(r.unwrap().failure.is_none());
}

/// Raw mode: the server sees reads, not messages. With 256 KiB messages a
/// message takes many reads, yet the server's figures are per message.
#[test]
fn raw_mode_counts_messages_not_reads() {
    let server = Server::start("mio-single", &["--protocol", "raw"]);
    let (target, admin) = (server.data.to_string(), server.admin.unwrap().to_string());
    let args = words(&format!(
        "--target {target} --admin {admin} --protocol raw --size 262144 -c 2 --warmup 200ms --duration 1s"
    ));
    let (out, r) = run(&args);
    let r = r.unwrap_or_else(|| panic!("no JSON\n{}", text(&out)));
    assert!(r.failure.is_none(), "{}", text(&out));
    let s = r.server.as_ref().expect("server figures");
    let answered = r.counts.ok as f64;
    // The server's window and the load generator's differ by the STATS
    // round trips at their edges: a few messages either way.
    assert!(
        (s.requests as f64 - answered).abs() <= 0.2 * answered + 4.0,
        "server counted {} requests for {answered} messages answered",
        s.requests
    );
    // Per message, the server read and wrote the message once each.
    assert!((s.bytes_per_req - 2.0 * 262144.0).abs() < 0.01 * 262144.0, "{s:?}");
}
