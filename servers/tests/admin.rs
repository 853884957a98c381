//! The admin thread's scheduling: real-time where the system permits it,
//! and said so in STATS and the log where it does not.
//!
//! STATS must be answered even when thousands of busy threads share the
//! server's CPU (thread-per-conn at 5000 connections), so the admin thread
//! asks for SCHED_FIFO. These tests check what the kernel actually gave it
//! (the policy field of /proc/PID/task/TID/stat), not only what the server
//! claims. The load that needs it is `loadgen/tests/run_servers.rs`
//! (`thread_per_conn_at_5000_has_server_figures`).

use std::os::unix::process::CommandExt;
use std::path::Path;

use testkit::Server;

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
    let server = Server::start("mio-single", &[]);
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
    // `nobody` must be able to reach the binary: a checkout may sit in a
    // directory only root can enter (a mktemp directory is mode 0700).
    let program = copy_for_everyone(Path::new(env!("CARGO_BIN_EXE_servers")));
    let (server, log) = Server::start_program_logged(&program, "mio-single", &[], |cmd| {
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

/// A copy of `bin` in a fresh directory under /tmp that every user can
/// enter and execute from.
fn copy_for_everyone(bin: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("servers-for-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a directory under the temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod 755 the directory");
    let copy = dir.join("servers");
    std::fs::copy(bin, &copy).expect("copy the servers binary");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod 755 the binary");
    copy
}
