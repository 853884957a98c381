//! The admin port's scheduling and its bounds.
//!
//! Scheduling: real-time only when asked (`--admin-realtime`, as the sweep
//! asks), and said so in STATS and the log where it is refused. STATS must
//! be answered even when thousands of busy threads share the server's CPU
//! (thread-per-conn at 5000 connections), so the sweep asks for SCHED_FIFO;
//! a server anyone can reach must not run a thread they can keep busy at
//! real-time priority unless asked. These tests check what the kernel
//! actually gave it (the policy field of /proc/PID/task/TID/stat), not only
//! what the server claims. The load that needs it is
//! `loadgen/tests/run_servers.rs` (`thread_per_conn_at_5000_has_server_figures`).
//!
//! Bounds (`servers/src/limits.rs`): at most `ADMIN_MAX_CLIENTS` clients,
//! an idle timeout, and a rate limit that slows a client asking too fast
//! while the data path goes on as before.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use proto::{Frame, Method};
use servers::limits::{ADMIN_BURST, ADMIN_MAX_CLIENTS, ADMIN_REQUEST_INTERVAL};
use testkit::{Client, Got, Server};

/// SCHED_FIFO in the `policy` field of /proc/PID/task/TID/stat.
const SCHED_FIFO: u32 = 1;

/// May a thread of this (test) process take SCHED_FIFO priority 1? The
/// server, started by us with our credentials and limits, may too.
fn realtime_permitted() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: this short-lived thread changes only its own policy.
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap()
}

/// The scheduling policy of the thread named `name` in process `pid`.
fn policy_of_thread(pid: u32, name: &str) -> Option<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        // After the command: state is field 3, policy field 41.
        (comm == name).then(|| rest.split(' ').nth(41 - 3)?.parse().ok()).flatten()
    })
}

#[test]
fn the_admin_thread_is_realtime_where_permitted() {
    let server = Server::start("mio-single", &["--admin-realtime"]);
    let stats = server.stats();
    let admin = stats.admin.expect("STATS reports its admin thread");
    let policy = policy_of_thread(server.pid(), "admin").expect("a thread named admin");
    if realtime_permitted() {
        assert!(admin.realtime, "permitted here, yet: {admin:?}");
        assert_eq!(admin.priority, "SCHED_FIFO 1");
        assert_eq!(policy, SCHED_FIFO, "STATS says real-time; the kernel's policy field says {policy}");
    } else {
        assert!(!admin.realtime && admin.priority.starts_with("SCHED_OTHER: "), "{admin:?}");
        assert_ne!(policy, SCHED_FIFO);
    }
}

/// Not asked, the admin thread runs at normal priority, even where
/// real-time is permitted, and STATS says it was not asked.
#[test]
fn the_admin_thread_is_realtime_only_when_asked() {
    let server = Server::start("mio-single", &[]);
    let admin = server.stats().admin.expect("STATS reports its admin thread");
    assert!(!admin.realtime, "not asked, yet: {admin:?}");
    assert!(admin.priority.contains("not asked (--admin-realtime)"), "says why: {admin:?}");
    let policy = policy_of_thread(server.pid(), "admin").expect("a thread named admin");
    assert_ne!(policy, SCHED_FIFO, "not asked, yet the kernel's policy field says SCHED_FIFO");
    if !realtime_permitted() {
        println!("real-time is not permitted here: the 'even where permitted' half is not shown");
    }
}

/// Where real-time is refused (here: the server runs as `nobody`, without
/// CAP_SYS_NICE and with RLIMIT_RTPRIO 0), the server still answers STATS
/// at normal priority, and says why, in STATS and once in its log.
#[test]
fn refused_realtime_is_reported_and_stats_still_answer() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root to start the server as another user");
        return;
    }
    // `nobody` must be able to reach the binary.
    let (_shared, program) = testkit::copy_for_everyone(Path::new(env!("CARGO_BIN_EXE_servers")));
    let (server, log) = Server::start_program_logged(&program, "mio-single", &["--admin-realtime"], |cmd| {
        cmd.uid(65534).gid(65534).current_dir("/");
        // SAFETY: setrlimit in the child before exec, on its own limits.
        unsafe {
            cmd.pre_exec(|| {
                let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_RTPRIO, &none);
                Ok(())
            });
        }
    });
    let admin = server.stats().admin.expect("STATS reports its admin thread");
    assert!(!admin.realtime, "{admin:?}");
    assert!(admin.priority.contains("not permitted"), "says why: {admin:?}");
    assert_ne!(policy_of_thread(server.pid(), "admin"), Some(SCHED_FIFO));
    // Logged before the ready line; the capture thread may lag a little.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut lines = log.lines_with(&["admin thread runs at normal priority"]);
    while lines.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        lines = log.lines_with(&["admin thread runs at normal priority"]);
    }
    assert_eq!(lines.len(), 1, "one log line saying so: {:?}", log.text());
    assert!(lines[0].contains("not permitted"), "{lines:?}");
}

fn stats_request(id: u64) -> Frame {
    Frame::request(id, Method::Stats, vec![])
}

/// With `ADMIN_MAX_CLIENTS` admin clients connected, the next one is closed
/// without an answer, the ones held go on being answered, and STATS counts
/// the refusal.
#[test]
fn admin_clients_past_the_cap_are_refused_and_counted() {
    let server = Server::start("mio-single", &[]);
    let admin = server.admin.expect("an admin port");
    let mut held: Vec<Client> = (0..ADMIN_MAX_CLIENTS).map(|_| Client::connect(admin)).collect();
    for c in &mut held {
        c.stats(); // answered, so accepted and counted as a client
    }
    let mut extra = Client::connect(admin);
    extra.send(&stats_request(1));
    match extra.try_recv(Duration::from_secs(10)) {
        Got::Closed => {}
        other => panic!("client {} of a port capped at {ADMIN_MAX_CLIENTS}: {other:?}", ADMIN_MAX_CLIENTS + 1),
    }
    let stats = held[0].stats();
    let bounds = stats.admin.expect("STATS reports its admin thread");
    assert_eq!(bounds.clients_refused, 1, "{bounds:?}");
    // A slot given back is taken again (once the server has seen the close).
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = Client::connect(admin);
        again.send(&stats_request(2));
        match again.try_recv(Duration::from_secs(5)) {
            Got::Frame(r) if r.status == 0 => break,
            other => assert!(Instant::now() < deadline, "a freed slot still refused after 10 s: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client that neither sends nor reads for `--admin-idle-timeout` is
/// closed, and counted; one that keeps asking is not.
#[test]
fn an_idle_admin_client_is_closed_after_its_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let server = Server::start("mio-single", &["--admin-idle-timeout", "1s"]);
    let admin = server.admin.expect("an admin port");
    let mut idle = Client::connect(admin);
    idle.stats();
    let since = Instant::now();
    // Meanwhile another client asks every 100 ms, until the idle one is closed.
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = std::thread::spawn({
        let closed = closed.clone();
        move || {
            let mut busy = Client::connect(admin);
            while !closed.load(std::sync::atomic::Ordering::Relaxed) {
                busy.stats(); // panics if this client is closed
                std::thread::sleep(Duration::from_millis(100));
            }
            busy
        }
    });
    let got = idle.try_recv(Duration::from_secs(10));
    let closed_after = since.elapsed();
    closed.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        matches!(got, Got::Closed),
        "an admin client idle for {closed_after:?} with a timeout of {TIMEOUT:?}: {got:?}"
    );
    // Not before its time (less the answer's way to us, which started our
    // clock after the server's: half the timeout allows for a loaded machine).
    assert!(closed_after >= TIMEOUT / 2, "closed after {closed_after:?}");
    let mut busy = busy.join().expect("the client that kept asking was answered every time");
    let bounds = busy.stats().admin.expect("STATS reports its admin thread");
    assert_eq!(bounds.clients_idle_closed, 1, "only the idle client was closed: {bounds:?}");
}

/// A client that sends many STATS at once is slowed, not refused: the
/// first `ADMIN_BURST` are answered at once, the rest one per
/// `ADMIN_REQUEST_INTERVAL`, every one with an answer; STATS counts the
/// answers held back, and the data port answers as before meanwhile.
#[test]
fn an_admin_client_asking_too_fast_is_slowed_and_the_data_path_is_not() {
    const ASKED: u32 = 40;
    let server = Server::start("mio-single", &[]);
    let admin = server.admin.expect("an admin port");
    let data = server.data;

    // Echoes on the data port for as long as the admin client waits.
    let waiting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let echoes = std::thread::spawn({
        let waiting = waiting.clone();
        move || {
            let mut c = Client::connect(data);
            let mut answered = 0u64;
            while waiting.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.call(&testkit::frames::echo(answered, b"data path"));
                assert_eq!((r.status, &r.payload[..]), (0, &b"data path"[..]), "echo {answered}");
                answered += 1;
            }
            answered
        }
    });

    let mut asker = Client::connect(admin);
    let started = Instant::now();
    let burst: Vec<u8> = (0..u64::from(ASKED)).flat_map(|id| testkit::frames::wire(&stats_request(id))).collect();
    asker.send_bytes(&burst);
    for id in 0..u64::from(ASKED) {
        let r = asker.recv().unwrap_or_else(|| panic!("closed before answer {id}"));
        assert_eq!((r.id, r.status), (id, 0), "every STATS is answered, in order");
    }
    let took = started.elapsed();
    waiting.store(false, std::sync::atomic::Ordering::Relaxed);
    let echoed = echoes.join().expect("the data path answered every echo");

    let least = ADMIN_REQUEST_INTERVAL * (ASKED - ADMIN_BURST);
    assert!(took >= least, "{ASKED} STATS at once answered in {took:?}, less than the limit allows ({least:?})");
    assert!(echoed >= 1, "no echo answered on the data port in the {took:?} the admin client was slowed");
    let bounds = server.stats().admin.expect("STATS reports its admin thread");
    // Each request held back is counted once: all but the burst, or fewer
    // where the server was itself too slow to need to hold some back.
    let held = bounds.requests_delayed;
    assert!((1..=u64::from(ASKED - ADMIN_BURST)).contains(&held), "{bounds:?}");
    println!("{ASKED} STATS at once took {took:?} (at least {least:?}); {echoed} echoes meanwhile");
}
