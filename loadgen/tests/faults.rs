//! Hardening of the load generator: faults on the far side and nonsense on
//! the command line.
//!
//! A load generator that hangs when its server dies, reports a healthy run
//! against a server that answers garbage, or shrugs at flags that make no
//! sense, produces numbers nobody should believe. Each case here runs the
//! real `loadgen` binary as a child with a hard time bound and checks that
//! it ends, non-zero, with a message naming the flag or address at fault,
//! never a panic; and that a run cut short still writes what it measured.
//!
//! `run_cli.rs` has the first cases of each kind (a closed port, a closed
//! admin port, a fixed garbage reply, the common bad flags); these go
//! further: the server SIGKILLed mid-run for every model, a frozen server,
//! servers that accept and then never answer, close, reset or stream random
//! bytes, bad admin ports of each kind, and the rest of the flag table.
//!
//! With `IOMODELS_RELIABILITY_DIR` set, each test records its outcome for
//! `loadgen reliability` (the Reliability table), before its verdict.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{closed_port, tempdir, words, FakeEcho, TRIES};
use loadgen::records::run::RunResult;
use loadgen::reliability::CaseRecord;
use testkit::{Problems, Rng, Server};

// ------------------------------------------------------------ harness

/// What a bounded run of the loadgen binary did.
struct Outcome {
    /// `None`: it was still running at the bound and was killed (a hang).
    code: Option<i32>,
    elapsed: Duration,
    stderr: String,
    /// The `--json` file, parsed, if it was written (`Err`: written but unreadable).
    json: Option<Result<RunResult, String>>,
}

impl Outcome {
    fn hung(&self) -> bool {
        self.code.is_none()
    }
}

/// Run `loadgen ARGS...`, killing it after `bound`. When `json` is given,
/// `--json FILE` is added and the file read back afterwards.
fn loadgen<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    json: Option<&Path>,
    bound: Duration,
    during: impl FnOnce(),
) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(path) = json {
        cmd.arg("--json").arg(path);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn loadgen");
    let mut pipe = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    during();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    let json = json.filter(|p| p.exists()).map(|p| {
        std::fs::read(p).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    });
    Outcome { code, elapsed, stderr, json }
}

/// The checks of this file beyond [`Problems`]' own (bounds on elapsed
/// time are kept apart there: a case that fails on time alone is run again,
/// [`recorded`], up to [`TRIES`] times, as `common::within` does).
trait LoadgenChecks {
    /// The checks every bad situation shares: it ended in time, non-zero,
    /// without a panic, and its message names each of `names`.
    fn clear_failure(&mut self, o: &Outcome, names: &[&str]);
    /// `lost` answers where `expected` were due to be lost, for `why`.
    fn check_lost(&mut self, lost: u64, expected: std::ops::RangeInclusive<u64>, why: &str);
}

impl LoadgenChecks for Problems {
    fn clear_failure(&mut self, o: &Outcome, names: &[&str]) {
        self.check_time(!o.hung(), || format!("still running after {:?}: a hang", o.elapsed));
        self.check(o.code != Some(0), || "exited 0".into());
        self.check(!o.stderr.contains("panicked"), || format!("panicked: {}", o.stderr.trim()));
        for name in names {
            self.check(o.stderr.contains(name), || format!("the message does not name {name}: {:?}", o.stderr.trim()));
        }
    }

    fn check_lost(&mut self, lost: u64, expected: std::ops::RangeInclusive<u64>, why: &str) {
        self.check(expected.contains(&lost), || format!("{lost} answers lost, expected {expected:?}: {why}"));
    }
}

/// What one try of a case found and measured.
struct Finding {
    problems: Problems,
    detail: String,
    /// Requests sent and never answered, as measured ([`answers_lost`], or
    /// nothing sent at all where the run was refused before its load).
    lost: u64,
}

/// Requests the load generator sent and never had answered, by its own
/// `--json`: sent in the window, less those answered with any status (its
/// timeouts and what was still in flight when it ended), plus the first
/// request of each connection that was never answered before the load.
fn answers_lost(r: &RunResult) -> u64 {
    r.counts.sent.saturating_sub(r.counts.ok + r.counts.errors) + r.connections.unanswered_first
}

/// Requests sent: in the window, and before the load the first request of
/// each connection that was never answered (the others are not lost).
fn requests_sent(r: &RunResult) -> u64 {
    r.counts.sent + r.connections.unanswered_first
}

/// Run a case (again while it fails on time alone), record it for the
/// Reliability table, then let its verdict stand.
fn recorded(case: &str, model: &str, test_path: &str, mut f: impl FnMut() -> Finding) {
    let mut slow_tries = Vec::new();
    let result = loop {
        match panic::catch_unwind(AssertUnwindSafe(&mut f)) {
            Ok(v) if v.problems.found.is_empty() && !v.problems.slow.is_empty() && slow_tries.len() + 1 < TRIES => {
                slow_tries.push(v.problems.slow.join("; "));
            }
            other => break other,
        }
    };
    let retried = match slow_tries.len() {
        0 => String::new(),
        n => format!(" [{n} earlier tries too slow: {}]", slow_tries.join(" / ")),
    };
    let (survived, detail, lost) = match &result {
        Ok(v) if v.problems.count() == 0 => (true, format!("{}{retried}", v.detail), v.lost),
        Ok(v) => (false, format!("FAILED: {}. {}{retried}", v.problems.all(), v.detail), v.lost),
        Err(p) => {
            let msg = p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied());
            (false, format!("FAILED: {} (answers lost not measured)", msg.unwrap_or("panic")), 0)
        }
    };
    let release = if cfg!(debug_assertions) { "" } else { " --release" };
    CaseRecord {
        case: case.into(),
        model: model.into(),
        survived,
        answers_lost: lost,
        detail,
        command: format!("cargo test -p loadgen{release} --test faults -- --exact {test_path}"),
    }
    .write_if_asked();
    match result {
        Ok(v) => assert!(v.problems.count() == 0, "{case} / {model}: {}{retried}", v.problems.all()),
        Err(p) => panic::resume_unwind(p),
    }
}

/// A misbehaving server: what it does with each connection it accepts.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Accept, read everything, never answer.
    BlackHole,
    /// Accept and close at once (FIN).
    CloseAtOnce,
    /// Accept and reset at once (SO_LINGER 0).
    ResetAtOnce,
    /// After the first bytes arrive, stream random bytes (this seed) back.
    Garbage(u64),
}

/// Serve `how` on 127.0.0.1:0 from a thread per connection, for as long
/// as the test process lives.
fn misbehaving(how: Misbehaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for (n, conn) in listener.incoming().flatten().enumerate() {
            thread::spawn(move || serve_badly(conn, how, n as u64));
        }
    });
    addr
}

fn serve_badly(mut conn: TcpStream, how: Misbehaviour, n: u64) {
    let mut chunk = [0u8; 4096];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    match how {
        Misbehaviour::BlackHole => while matches!(conn.read(&mut chunk), Ok(k) if k > 0) {},
        Misbehaviour::CloseAtOnce => drop(conn),
        Misbehaviour::ResetAtOnce => {
            let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
            drop(conn);
        }
        Misbehaviour::Garbage(seed) => {
            if !matches!(conn.read(&mut chunk), Ok(k) if k > 0) {
                return;
            }
            let mut reader = conn.try_clone().unwrap();
            thread::spawn(move || while matches!(reader.read(&mut chunk), Ok(k) if k > 0) {});
            let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
            for k in 0..256u64 {
                if conn.write_all(&Rng::new(seed ^ n << 20 ^ k).bytes(16 * 1024)).is_err() {
                    return;
                }
            }
        }
    }
}

// ------------------------------------------------ the server dies or freezes

// One test per server model, named `server_killed_mid_run::MODEL`.
testkit::per_model!(server_killed_mid_run);

/// Every model the servers binary offers is killed mid-run above.
#[test]
fn every_model_is_killed_mid_run() {
    testkit::assert_every_offered_model_runs_every_case();
}

/// SIGKILL the server 1 s into a 10 s run: the load generator ends within
/// its `--timeout` plus slack (long before the 10 s), non-zero, saying what
/// happened, and its `--json` holds what it measured, with `failure` set.
/// What is lost is what was in flight at the kill: at depth 1, at most one
/// request per connection, and at least one (a closed loop against a busy
/// server always has requests out).
fn server_killed_mid_run(model: &str) {
    const CONNECTIONS: u64 = 16;
    let test_path = format!("server_killed_mid_run::{}", model.replace('-', "_"));
    recorded("loadgen_server_killed_mid_run", model, &test_path, || {
        let mut server = Server::start(model, &[]);
        let (target, admin) = (server.data.to_string(), server.admin.unwrap().to_string());
        let tmp = tempdir();
        let json = tmp.join("killed.json");
        let args = words(&format!(
            "run --target {target} --admin {admin} -c {CONNECTIONS} --warmup 0 --duration 10 --timeout 1s --quiet"
        ));
        let mut killed_at = Duration::ZERO;
        let started = Instant::now();
        let o = loadgen(&args, Some(&json), Duration::from_secs(20), || {
            thread::sleep(Duration::from_secs(1));
            server.kill();
            killed_at = started.elapsed();
        });
        let mut p = Problems::default();
        p.clear_failure(&o, &[]);
        let after_kill = o.elapsed.saturating_sub(killed_at);
        p.check_time(after_kill < Duration::from_secs(5), || {
            format!("ended {after_kill:?} after the kill (--timeout 1s)")
        });
        let says = ["--target", "closed", "reset", "died", "refused"];
        p.check(says.iter().any(|s| o.stderr.contains(s)), || format!("no clear message: {:?}", o.stderr.trim()));
        let (mut measured, mut lost) = (String::from("no --json"), 0);
        match &o.json {
            None => p.push("no --json file written"),
            Some(Err(e)) => p.push(format!("--json does not parse: {e}")),
            Some(Ok(r)) => {
                p.check(r.failure.is_some(), || "--json has no failure".into());
                p.check(r.counts.ok > 0, || "--json has no answers measured before the kill".into());
                lost = answers_lost(r);
                p.check_lost(lost, 1..=CONNECTIONS, "those in flight at the kill, at most one per connection");
                measured = format!(
                    "{} answers measured before the kill, {lost} of {} sent lost, failure {:?}",
                    r.counts.ok, r.counts.sent, r.failure
                );
            }
        }
        let detail =
            format!("killed at {killed_at:?}, loadgen ended {after_kill:?} later (exit {:?}); {measured}", o.code);
        Finding { problems: p, detail, lost }
    });
}

/// SIGSTOP the server mid-run (alive, connections open, silent, its admin
/// port too): the run must still end near `--duration` and say that
/// nothing was answered, rather than hang on a STATS that never comes.
/// Every request out at the freeze is lost, at least one per connection.
#[test]
fn server_frozen_mid_run() {
    const CONNECTIONS: u64 = 4;
    recorded("loadgen_server_frozen_mid_run", "loadgen", "server_frozen_mid_run", || {
        let server = Server::start("mio-single", &[]);
        let (target, admin) = (server.data.to_string(), server.admin.unwrap().to_string());
        let pid = server.child.id() as i32;
        let tmp = tempdir();
        let json = tmp.join("frozen.json");
        let args = words(&format!(
            "run --target {target} --admin {admin} -c {CONNECTIONS} --warmup 0 --duration 3 --timeout 500ms --quiet"
        ));
        let o = loadgen(&args, Some(&json), Duration::from_secs(20), || {
            thread::sleep(Duration::from_millis(500));
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        });
        unsafe { libc::kill(pid, libc::SIGCONT) };
        drop(server);
        let mut p = Problems::default();
        p.clear_failure(&o, &[]);
        p.check_time(o.elapsed < Duration::from_secs(12), || format!("took {:?} for a 3 s run", o.elapsed));
        p.check(["--target", "--admin"].iter().any(|s| o.stderr.contains(s)), || {
            format!("the message names neither --target nor --admin: {:?}", o.stderr.trim())
        });
        let (json_state, lost) = match &o.json {
            Some(Ok(r)) => {
                let lost = answers_lost(r);
                p.check_lost(lost, CONNECTIONS..=r.counts.sent, "every request out at the freeze, one per connection");
                let state = format!("--json failure {:?}, {lost} of {} sent lost", r.failure, r.counts.sent);
                (state, lost)
            }
            Some(Err(e)) => (format!("--json unreadable: {e}"), 0),
            None => ("no --json".into(), 0),
        };
        p.check(matches!(&o.json, Some(Ok(r)) if r.failure.is_some()), || json_state.clone());
        let detail =
            format!("ended after {:?}, exit {:?}; {json_state}; stderr {:?}", o.elapsed, o.code, o.stderr.trim());
        Finding { problems: p, detail, lost }
    });
}

// --------------------------------------------------------- bad targets

/// What a bad target or admin port should cost in answers.
#[derive(Clone, Copy)]
enum Owed<'a> {
    /// The target answers nothing usable: every request sent is lost, and
    /// this many connections each sent one or failed to connect (a target
    /// that resets at once may refuse a connection before it can send).
    EverySent { at_least: u64 },
    /// The run is refused before its load (a bad `--admin` is read first):
    /// this data port receives nothing, so nothing is sent or lost.
    Nothing { data: &'a FakeEcho },
}

/// `loadgen run` at a bad target (or admin port), with a short run: a
/// clear error naming `flag` and the address, no hang, no panic, and the
/// answers lost that `owed` says.
fn bad_target(target: SocketAddr, admin: Option<SocketAddr>, flag: &str, owed: Owed) -> Finding {
    const CONNECTIONS: u64 = 4;
    let (t, a, c) = (target.to_string(), admin.map(|a| a.to_string()), CONNECTIONS.to_string());
    let mut args = vec!["run", "--target", &t, "-c", &c, "--warmup", "0", "--duration", "2", "--timeout", "500ms"];
    args.extend(["--connect-timeout", "2s", "--quiet"]);
    if let Some(a) = &a {
        args.extend(["--admin", a.as_str()]);
    }
    let tmp = tempdir();
    let json = tmp.join("bad-target.json");
    let o = loadgen(&args, Some(&json), Duration::from_secs(20), || {});
    let mut p = Problems::default();
    let named = format!("{flag} {}", if flag == "--admin" { a.as_deref().unwrap() } else { &t });
    p.clear_failure(&o, &[&named]);
    p.check_time(o.elapsed < Duration::from_secs(12), || format!("took {:?} for a 2 s run", o.elapsed));
    let (lost, measured) = match (owed, &o.json) {
        (_, Some(Err(e))) => {
            p.push(format!("--json does not parse: {e}"));
            (0, "--json unreadable".to_string())
        }
        (Owed::EverySent { at_least }, Some(Ok(r))) => {
            let lost = answers_lost(r);
            let sent = requests_sent(r);
            p.check_lost(lost, sent..=sent, "nothing usable was answered");
            let refused = r.connections.failed;
            p.check(sent + refused >= at_least, || {
                format!("sent {sent} and {refused} connections refused, expected at least {at_least} in all")
            });
            (lost, format!("{lost} of {sent} sent lost"))
        }
        (Owed::EverySent { .. }, None) => {
            p.push("no --json to count the requests sent and lost");
            (0, "no --json".to_string())
        }
        (Owed::Nothing { data }, json) => {
            let sent = json.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, |r| r.counts.sent);
            let received = data.answered();
            p.check(sent == 0 && received == 0, || {
                format!("refused, yet {sent} requests were sent and the data port received {received}")
            });
            (sent, format!("refused before the load: {sent} sent, the data port received {received}"))
        }
    };
    Finding {
        problems: p,
        detail: format!("exit {:?} after {:?}; {measured}: {}", o.code, o.elapsed, o.stderr.trim()),
        lost,
    }
}

/// [`bad_target`], recorded as `case`.
fn recorded_bad_target(case: &str, test: &str, target: SocketAddr, admin: Option<SocketAddr>, flag: &str, owed: Owed) {
    recorded(case, "loadgen", test, || bad_target(target, admin, flag, owed));
}

#[test]
fn target_black_hole() {
    // Connects, never answers: every request times out; a run with no
    // answer at all is no measurement.
    recorded_bad_target(
        "loadgen_target_black_hole",
        "target_black_hole",
        misbehaving(Misbehaviour::BlackHole),
        None,
        "--target",
        Owed::EverySent { at_least: 4 },
    );
}

#[test]
fn target_closes_at_once() {
    // Closed before or just after the first request: none answered. Each
    // of the 4 connections owes its first request (sent, or at least
    // counted unanswered when its connection ended first), unless it was
    // refused while connecting.
    let addr = misbehaving(Misbehaviour::CloseAtOnce);
    let owed = Owed::EverySent { at_least: 4 };
    recorded_bad_target("loadgen_target_closes_at_once", "target_closes_at_once", addr, None, "--target", owed);
}

#[test]
fn target_resets_at_once() {
    // As above, with a reset (which more often refuses a connection).
    let addr = misbehaving(Misbehaviour::ResetAtOnce);
    let owed = Owed::EverySent { at_least: 4 };
    recorded_bad_target("loadgen_target_resets_at_once", "target_resets_at_once", addr, None, "--target", owed);
}

#[test]
fn target_streams_random_bytes() {
    // The garbage starts once a connection's first request arrives: each
    // of the 4 connections sent one, and no garbage is an answer.
    recorded("loadgen_target_random_bytes", "loadgen", "target_streams_random_bytes", || {
        let (mut all, mut details, mut lost) = (Problems::default(), Vec::new(), 0);
        for seed in 1..=3 {
            let addr = misbehaving(Misbehaviour::Garbage(seed));
            let v = bad_target(addr, None, "--target", Owed::EverySent { at_least: 4 });
            all.absorb(v.problems, &format!("seed {seed}"));
            details.push(format!("seed {seed}: {}", v.detail));
            lost += v.lost;
        }
        Finding { problems: all, detail: details.join(" / "), lost }
    });
}

#[test]
fn admin_black_hole() {
    let echo = FakeEcho::start(0);
    let admin = misbehaving(Misbehaviour::BlackHole);
    let owed = Owed::Nothing { data: &echo };
    recorded_bad_target("loadgen_admin_black_hole", "admin_black_hole", echo.addr, Some(admin), "--admin", owed);
}

#[test]
fn admin_closes_at_once() {
    let echo = FakeEcho::start(0);
    let admin = misbehaving(Misbehaviour::CloseAtOnce);
    let owed = Owed::Nothing { data: &echo };
    recorded_bad_target(
        "loadgen_admin_closes_at_once",
        "admin_closes_at_once",
        echo.addr,
        Some(admin),
        "--admin",
        owed,
    );
}

#[test]
fn admin_streams_random_bytes() {
    let echo = FakeEcho::start(0);
    let admin = misbehaving(Misbehaviour::Garbage(7));
    let owed = Owed::Nothing { data: &echo };
    recorded_bad_target(
        "loadgen_admin_random_bytes",
        "admin_streams_random_bytes",
        echo.addr,
        Some(admin),
        "--admin",
        owed,
    );
}

#[test]
fn admin_is_a_raw_data_port() {
    // A raw-mode server echoes the STATS request back: a frame, but no JSON.
    let echo = FakeEcho::start(0);
    let raw = Server::start("mio-single", &["--protocol", "raw"]);
    recorded_bad_target(
        "loadgen_admin_is_a_raw_data_port",
        "admin_is_a_raw_data_port",
        echo.addr,
        Some(raw.data),
        "--admin",
        Owed::Nothing { data: &echo },
    );
}

// ----------------------------------------------------------- bad flags

/// Flags that make no sense, each with the flags its refusal must name.
/// (`run_cli.rs` has the first of these; this is the whole table, for the
/// Reliability record.) A case the loadgen does not refuse well yet is
/// listed as it should be, and fails until it is.
fn nonsense() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    let v = |a: &[&'static str], n: &[&'static str]| (a.to_vec(), n.to_vec());
    vec![
        v(&["-c", "0"], &["--connections"]),
        v(&["-c", "100001"], &["--connections"]),
        v(&["--duration", "0s"], &["--duration"]),
        v(&["--duration", "200000000"], &["--duration"]),
        v(&["--duration", "1e9"], &["--duration"]),
        v(&["--warmup", "soon"], &["--warmup"]),
        v(&["--timeout", "0"], &["--timeout"]),
        v(&["--connect-timeout", "0ms"], &["--connect-timeout"]),
        v(&["--rate", "1000", "--depth", "4"], &["--rate", "--depth"]),
        v(&["--rate", "nan"], &["--rate"]),
        v(&["--rate", "inf"], &["--rate"]),
        v(&["--rate=-5"], &["--rate"]),
        v(&["--rate", "50", "-c", "100", "--duration", "1"], &["--rate", "--connections"]),
        v(&["--mix", "echo=1", "--method", "compute"], &["--mix", "--method"]),
        v(&["--mix", "echo=x"], &["--mix"]),
        v(&["--mix", "echo=0"], &["--mix"]),
        v(&["--mix", "stats=1"], &["--mix"]),
        v(&["--mix", "echo=1,echo=2"], &["--mix"]),
        v(&["--mix", ""], &["--mix"]),
        v(&["--protocol", "raw", "--method", "compute"], &["--protocol raw", "--method"]),
        v(&["--protocol", "raw", "--method", "delay"], &["--protocol raw", "--method"]),
        v(&["--protocol", "raw", "--size", "0"], &["--protocol raw", "--size"]),
        v(&["--size", "1048577"], &["--size"]),
        v(&["--delay-us", "20000000"], &["--delay-us"]),
        v(&["--delay-us", "10000001"], &["--delay-us"]),
        v(&["--rounds", "200000000"], &["--rounds"]),
        v(&["--rounds", "100000001"], &["--rounds"]),
        v(&["--depth", "0"], &["--depth"]),
        v(&["--depth", "5000"], &["--depth"]),
        v(&["--threads", "65"], &["--threads"]),
        v(&["--connect-rate", "0"], &["--connect-rate"]),
        v(&["--think-us=-1"], &["--think-us"]),
        v(&["--server-cpus", "x"], &["--server-cpus"]),
    ]
}

/// Every nonsense combination is refused at once (before any connection:
/// the target is a closed port, so a flag let through shows up as a
/// connection error instead), naming its flags, without a panic. Refused
/// before connecting, no request was sent: none can be lost.
#[test]
fn nonsense_flags_are_refused() {
    recorded("loadgen_bad_flags", "loadgen", "nonsense_flags_are_refused", || {
        let target = closed_port().to_string();
        let mut p = Problems::default();
        let table = nonsense();
        for (extra, names) in &table {
            let mut args = vec!["run", "--target", target.as_str()];
            if !extra.iter().any(|a| a.starts_with("--duration")) {
                args.extend(["--duration", "1"]);
            }
            args.extend(extra.iter().copied());
            let o = loadgen(&args, None, Duration::from_secs(10), || {});
            let mut one = Problems::default();
            one.clear_failure(&o, names);
            one.check(!o.stderr.contains("connection refused"), || "not refused before connecting".into());
            p.absorb(one, &extra.join(" "));
        }
        // Flags without a target, or with one that is no address.
        for (args, name) in [(vec!["run"], "--target"), (vec!["run", "--target", "localhost"], "--target")] {
            let o = loadgen(&args, None, Duration::from_secs(10), || {});
            let mut one = Problems::default();
            one.clear_failure(&o, &[name]);
            p.absorb(one, &args.join(" "));
        }
        let n = table.len() + 2;
        let detail = format!(
            "{} of {n} nonsense flag combinations refused naming their flags, before connecting (nothing sent)",
            n - p.count().min(n)
        );
        Finding { problems: p, detail, lost: 0 }
    });
}

/// An output file that cannot be written is named: a run whose results
/// cannot be saved must not look like a success. It is refused before any
/// load, not after a 5 s window measured for nothing: the echo server
/// receives no request, so none is lost.
#[test]
fn unwritable_outputs_are_named() {
    recorded("loadgen_unwritable_outputs", "loadgen", "unwritable_outputs_are_named", || {
        let echo = FakeEcho::start(0);
        let target = echo.addr.to_string();
        let missing = PathBuf::from("/nonexistent-iomodels-dir/out");
        let (mut p, mut seen) = (Problems::default(), Vec::new());
        for flag in ["--json", "--hgrm", "--hlog"] {
            let path = missing.to_str().unwrap();
            let args =
                ["run", "--target", &target, "-c", "1", "--warmup", "0", "--duration", "5", "--quiet", flag, path];
            let before = echo.answered();
            let o = loadgen(&args, None, Duration::from_secs(15), || {});
            let received = echo.answered() - before;
            let mut one = Problems::default();
            one.clear_failure(&o, &[flag]);
            one.check(received == 0, || format!("refused only after the server received {received} requests"));
            p.absorb(one, &format!("{flag} {path}"));
            seen.push(format!("{flag}: exit {:?} after {:?}, {received} requests received", o.code, o.elapsed));
        }
        Finding { problems: p, detail: format!("into a missing directory: {}", seen.join(", ")), lost: 0 }
    });
}
