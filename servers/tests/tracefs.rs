//! The system-call counter and tracefs: no side effect outlives the server.
//!
//! Counting is off unless asked (`--count-syscalls`, or
//! IOMODELS_COUNT_SYSCALLS=1): a server not asked counts nothing, says so in
//! STATS, and does not touch tracefs. A root server that counts mounts
//! tracefs where none is mounted (to read the tracepoint's id), and must
//! unmount exactly that mount when it exits; and a tracefs mounted before
//! it started is not its to unmount.
//!
//! Each test runs its server in a mount namespace of its own (a private
//! copy of this machine's mounts, held open by a `sleep` process), so that
//! it can start from "no tracefs" and look at the mounts after the server
//! has gone, whatever the machine has mounted, without changing the
//! machine's mounts. Without root (or without mount namespaces) the tests
//! say why and do nothing.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use testkit::Server;

const TRACEFS: &str = "/sys/kernel/tracing";
/// The environment's way to ask for counting; removed from every server
/// these tests start unless a test sets it, so that "not asked" holds
/// whatever the test run's environment says.
const ENV: &str = "IOMODELS_COUNT_SYSCALLS";
/// What STATS says (`syscalls_not_counted`) when counting was not asked.
const NOT_ASKED: &str = "not asked (--count-syscalls)";

/// A private mount namespace, alive while its holder process is.
struct Namespace {
    holder: Child,
}

impl Namespace {
    /// A copy of this machine's mounts, private (nothing done in it shows
    /// outside), with every tracefs at [`TRACEFS`] unmounted in it; `Err`
    /// says why it cannot be made here.
    fn without_tracefs() -> Result<Namespace, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root (to make a mount namespace and mount tracefs)".into());
        }
        let mut cmd = Command::new("sleep");
        cmd.arg("600").stdin(Stdio::null());
        // SAFETY: between fork and exec the child only makes system calls
        // on its own namespace and mounts.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let root = c"/";
                let flags = libc::MS_REC | libc::MS_PRIVATE;
                if libc::mount(std::ptr::null(), root.as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Private now: these unmounts are this namespace's alone.
                while libc::umount2(c"/sys/kernel/tracing".as_ptr(), libc::MNT_DETACH) == 0 {}
                Ok(())
            });
        }
        let holder = cmd.spawn().map_err(|e| format!("cannot make a private mount namespace: {e}"))?;
        let ns = Namespace { holder };
        assert_eq!(ns.tracefs_mounts(), Vec::<u64>::new(), "tracefs still mounted in the new namespace");
        Ok(ns)
    }

    /// The ids of the tracefs mounts at [`TRACEFS`] in this namespace, in
    /// mountinfo's order.
    fn tracefs_mounts(&self) -> Vec<u64> {
        let text =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", self.holder.id())).expect("holder's mountinfo");
        text.lines()
            .filter(|l| l.split_once(" - ").is_some_and(|(_, tail)| tail.starts_with("tracefs ")))
            .filter(|l| l.split(' ').nth(4) == Some(TRACEFS))
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    /// Make `cmd` run in this namespace.
    fn enter(&self, cmd: &mut Command) {
        let ns = File::open(format!("/proc/{}/ns/mnt", self.holder.id())).expect("open the namespace");
        let fd = ns.as_raw_fd();
        // SAFETY: setns on a descriptor kept open (leaked below) until the
        // exec; the child is single-threaded between fork and exec.
        unsafe {
            cmd.pre_exec(move || match libc::setns(fd, libc::CLONE_NEWNS) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
        std::mem::forget(ns); // one descriptor per test; the process ends soon
    }

    /// mio-single in this namespace, with `extra` flags and `env`.
    fn start_server(&self, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_with("mio-single", extra, |cmd| {
            cmd.env_remove(ENV).envs(env.iter().copied());
            self.enter(cmd)
        })
    }

    fn mount_tracefs(&self) {
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "tracefs", "nodev", TRACEFS]);
        self.enter(&mut cmd);
        let status = cmd.status().expect("run mount");
        assert!(status.success(), "mount -t tracefs in the test's namespace: {status}");
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Send `signal` to the server and wait (at most 10 s) for it to exit.
fn stop(mut server: Server, signal: i32) -> ExitStatus {
    // SAFETY: a signal to a child process this test started.
    unsafe { libc::kill(server.pid() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.exit_status() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not exit within 10 s of signal {signal}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn namespace_or_skip() -> Option<Namespace> {
    Namespace::without_tracefs().map_err(|why| println!("skipped: {why}")).ok()
}

/// Whether a server asked to count does: `false` (having said why) where
/// this kernel cannot count. A server that says it was not asked fails the
/// test: it was.
fn counts(server: &Server) -> bool {
    let stats = server.stats();
    match (stats.syscalls, stats.syscalls_not_counted.as_deref()) {
        (Some(_), None) => true,
        (None, Some(NOT_ASKED)) => panic!("asked to count, yet STATS says {NOT_ASKED:?}: {stats:?}"),
        (None, Some(why)) => {
            println!("skipped: this kernel cannot count system calls: {why}");
            false
        }
        _ => panic!("STATS must give the counts or say why not: {stats:?}"),
    }
}

/// Counting, where no tracefs is mounted: the server mounts one, counts,
/// and on SIGTERM or SIGINT leaves no tracefs behind.
#[test]
fn counting_mounts_tracefs_only_while_the_server_runs() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let Some(ns) = namespace_or_skip() else { return };
        let server = ns.start_server(&["--count-syscalls"], &[]);
        if !counts(&server) {
            return;
        }
        assert_eq!(ns.tracefs_mounts().len(), 1, "counting, so tracefs is mounted while the server runs");
        let status = stop(server, signal);
        assert!(status.success(), "exit after signal {signal}: {status}");
        assert_eq!(
            ns.tracefs_mounts(),
            Vec::<u64>::new(),
            "tracefs left mounted after the server exited (signal {signal})"
        );
    }
}

/// Not asked (no flag, as a plain `servers MODEL` runs): no counts, STATS
/// says why, and tracefs is never mounted, though this root server could.
#[test]
fn without_the_flag_nothing_is_counted_and_tracefs_is_not_touched() {
    let Some(ns) = namespace_or_skip() else { return };
    let server = ns.start_server(&[], &[]);
    let stats = server.stats();
    assert_eq!(stats.syscalls, None, "counted without being asked: {stats:?}");
    assert_eq!(stats.syscalls_not_counted.as_deref(), Some(NOT_ASKED), "{stats:?}");
    let admin = stats.admin.expect("the admin thread reports itself");
    assert_eq!(admin.syscalls, None, "the admin thread counted without being asked: {admin:?}");
    assert_eq!(ns.tracefs_mounts(), Vec::<u64>::new(), "not counting, yet tracefs was mounted");
    assert!(stop(server, libc::SIGTERM).success());
    assert_eq!(ns.tracefs_mounts(), Vec::<u64>::new());
}

/// IOMODELS_COUNT_SYSCALLS=1 asks as the flag does; =0 leaves it off.
#[test]
fn the_environment_can_ask_for_counting() {
    let Some(ns) = namespace_or_skip() else { return };
    let off = ns.start_server(&[], &[(ENV, "0")]);
    assert_eq!(off.stats().syscalls_not_counted.as_deref(), Some(NOT_ASKED));
    assert!(stop(off, libc::SIGTERM).success());
    let on = ns.start_server(&[], &[(ENV, "1")]);
    if counts(&on) {
        assert!(stop(on, libc::SIGTERM).success());
        assert_eq!(ns.tracefs_mounts(), Vec::<u64>::new(), "tracefs left mounted");
    }
}

/// Without root (or anywhere): a server not asked to count says so in
/// STATS, so that a reader can tell "not asked" from "cannot".
#[test]
fn stats_say_counting_was_not_asked() {
    let server = Server::start_with("mio-single", &[], |cmd| {
        cmd.env_remove(ENV);
    });
    let stats = server.stats();
    assert_eq!((stats.syscalls, stats.syscalls_wait), (None, None), "{stats:?}");
    assert_eq!(stats.syscalls_not_counted.as_deref(), Some(NOT_ASKED), "{stats:?}");
}

/// A tracefs mounted before the server started is used, and left mounted:
/// no second mount, and the same mount after the server exits.
#[test]
fn a_tracefs_mounted_before_is_left_alone() {
    let Some(ns) = namespace_or_skip() else { return };
    ns.mount_tracefs();
    let before = ns.tracefs_mounts();
    assert_eq!(before.len(), 1);
    let server = ns.start_server(&["--count-syscalls"], &[]);
    if !counts(&server) {
        return;
    }
    assert_eq!(ns.tracefs_mounts(), before, "a tracefs was mounted already, yet the server mounted another");
    assert!(stop(server, libc::SIGTERM).success());
    assert_eq!(ns.tracefs_mounts(), before, "the server unmounted a tracefs it had not mounted");
}

/// A server that counts and then fails to start (its data port is taken)
/// leaves no tracefs behind either.
#[test]
fn a_server_that_fails_to_start_leaves_no_tracefs() {
    let Some(ns) = namespace_or_skip() else { return };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to take");
    let addr = taken.local_addr().unwrap().to_string();
    let mut cmd = Command::new(testkit::servers_bin());
    cmd.args(["mio-single", "--addr", &addr, "--count-syscalls"]).stdout(Stdio::null()).stderr(Stdio::piped());
    ns.enter(&mut cmd);
    let out = cmd.output().expect("run the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--addr"), "{}: {stderr}", out.status);
    assert!(!stderr.contains(NOT_ASKED), "asked to count, yet: {stderr}");
    if stderr.contains("not counting system calls") {
        println!("skipped: this kernel cannot count system calls: {stderr}");
        return;
    }
    assert_eq!(ns.tracefs_mounts(), Vec::<u64>::new(), "tracefs left mounted by a server that failed: {stderr}");
}
