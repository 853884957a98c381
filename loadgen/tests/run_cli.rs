//! `loadgen run` from the outside: bad use is refused naming the flag or
//! input at fault (no hang, no panic), and the files it writes are what
//! their readers expect.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

/// `loadgen run` with `extra` flags at a closed port is refused, naming
/// each of `must_name`, and refused at once: before connecting, which a
/// flag let through would reach (and fail with "connection refused").
fn refused(extra: &[&str], must_name: &[&str]) {
    let target = closed_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--target", &target, "--duration", "1"])
        .args(extra)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{extra:?} was accepted");
    assert!(!err.contains("panicked"), "{extra:?}: {err}");
    for name in must_name {
        assert!(err.contains(name), "{extra:?}: the error does not name {name}: {err}");
    }
    assert!(!err.contains("connection refused"), "{extra:?} was refused only after trying to connect: {err}");
}

#[test]
fn nonsense_flags_are_refused_naming_the_flags() {
    refused(&["--rate", "1000", "--depth", "4"], &["--rate", "--depth"]);
    refused(&["--rate", "1000", "--think-us", "5"], &["--rate", "--think-us"]);
    refused(&["--server-cgroup", "/nonexistent"], &["--server-cgroup /nonexistent", "not a cgroup"]);
    refused(&["--mix", "echo=1", "--method", "echo"], &["--mix", "--method"]);
    refused(&["--protocol", "raw", "--method", "compute"], &["--protocol raw", "--method"]);
    refused(&["--protocol", "raw", "--mix", "echo=1"], &["--protocol raw", "--mix"]);
    refused(&["--protocol", "raw", "--depth", "2"], &["--protocol raw", "--depth"]);
    refused(&["--size", "2000000"], &["--size"]);
    refused(&["--connections", "0"], &["--connections"]);
    refused(&["-c", "0"], &["--connections"]);
    refused(&["--duration", "0"], &["--duration"]);
    refused(&["--duration", "soon"], &["--duration"]);
    refused(&["--delay-us", "20000000"], &["--delay-us"]);
    refused(&["--rounds", "200000000"], &["--rounds"]);
    refused(&["--mix", "echo=90,frobnicate=10"], &["--mix", "frobnicate"]);
    refused(&["--rate", "10", "-c", "100"], &["--rate", "--connections"]);
    refused(&["--rate", "0"], &["--rate"]);
    refused(&["--threads", "0"], &["--threads"]);
    refused(&["--server-cpus", "3-1"], &["--server-cpus"]);
}

#[test]
fn unreachable_target_is_named() {
    let target = closed_port().to_string();
    let (out, result) = run(&["--target", &target, "-c", "3", "--duration", "1"]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains(&format!("--target {target}: connection refused")), "{err}");
    let r = result.expect("a failed run still writes its JSON");
    assert_eq!(r.connections.established, 0);
    assert_eq!(r.connections.failed, 3);
    assert!(r.failure.unwrap().contains("connection refused"));
}

#[test]
fn wrong_admin_port_is_named() {
    let echo = FakeEcho::start(0);
    let (target, admin) = (echo.addr.to_string(), closed_port().to_string());
    let (out, _) = run(&["--target", &target, "--admin", &admin, "-c", "1", "--duration", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("--admin {admin}: connection refused")), "{}", stderr(&out));

    // An admin port that answers a frame whose payload is not JSON: here
    // the fake echo server, which sends the STATS request itself back.
    let (out, _) = run(&["--target", &target, "--admin", &target, "-c", "1", "--duration", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("--admin {target}")) && err.contains("JSON"), "{err}");
}

#[test]
fn a_server_that_answers_garbage_is_named() {
    let target = fake_replying(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").to_string();
    let args = ["--target", &target, "-c", "2", "--warmup", "0", "--duration", "1", "--timeout", "1s"];
    let ((out, result), took) = within(Duration::from_secs(15), || run(&args));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("--target {target}")) && err.contains("does not decode"), "{err}");
    assert!(result.unwrap().counts.mismatches_total > 0);
    assert!(took.last() <= Some(&Duration::from_secs(15)), "a 1 s run took {took:?}");
}

#[test]
fn files_are_what_their_readers_expect() {
    let echo = FakeEcho::start(0);
    let dir = tempdir();
    let (hgrm, hlog) = (dir.join("run.hgrm"), dir.join("run.hlog"));
    let target = echo.addr.to_string();
    let mut args = words(&format!("--target {target} -c 4 --warmup 0.2 --duration 2s --server-cpus 0,2-3"));
    args.extend([flag_path("--hgrm", &hgrm), flag_path("--hlog", &hlog)].concat());
    let (out, result) = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = result.unwrap();
    assert!(r.counts.ok > 0);
    assert_eq!(r.env.server_cpus, Some(vec![0, 2, 3]));
    assert!(r.args.iter().any(|a| a == "--hgrm"), "{:?}", r.args);
    assert!(r.server.is_none());
    assert!(r.notes.iter().any(|n| n.contains("no --admin: server counters not measured")), "{:?}", r.notes);
    assert!(r.latency_uncorrected.is_none(), "closed loop has no uncorrected histogram");

    let text = std::fs::read_to_string(&hgrm).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert_eq!(lines.next(), Some(""));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row.len(), 4, "{row:?}");
    assert!(row[0].parse::<f64>().unwrap() > 0.0);
    assert_eq!(row[1], "0.000000000000");
    assert!(text.contains(&format!(
        "#[Max     = {:12.3}, Total count    = {:12}]",
        r.latency.max as f64 / 1000.0,
        r.counts.ok
    )));
    assert!(text.contains("#[Mean    = ") && text.contains("#[Buckets = "), "{text}");

    let log = std::fs::read(&hlog).unwrap();
    let text = String::from_utf8_lossy(&log);
    let header_end = text.find("\n0.").or_else(|| text.find("\n1.")).expect("an interval line");
    assert!(text[..header_end].contains("#[StartTime: "), "{text}");
    assert!(text[..header_end].contains("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\""), "{text}");
    let mut intervals = 0;
    let mut total = 0u64;
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(i) = entry.expect("the log parses") {
            intervals += 1;
            let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut &decode_base64(i.encoded_histogram())[..])
                .expect("an interval decodes");
            total += h.len();
        }
    }
    assert_eq!(intervals, 2, "one interval per second of the window");
    // The intervals count answers by arrival within the window; the total
    // counts requests sent in it: they differ by at most what was in flight.
    assert!(total.abs_diff(r.counts.ok) <= 8, "{total} vs {}", r.counts.ok);
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let acc = chunk.iter().enumerate().fold(0u32, |a, (i, &c)| a | val(c) << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}
