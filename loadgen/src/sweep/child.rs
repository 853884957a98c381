//! The sweep's two kinds of children: a server model (started fresh for
//! every run, ready when it prints its ready line) and `loadgen run` (the
//! current executable; one, or several started together). All are pinned,
//! in process groups of their own, and stopped by PID: SIGTERM, then
//! SIGKILL after a grace period. Under `--server-cpu-budget` the server
//! runs in a cgroup of its own ([`crate::cgroup`]), joined before exec,
//! with its admin thread moved back out once it is ready, and removed when
//! the server is dropped.
//!
//! This is the layer below [`super::netlab`]: each function takes the
//! `Command` that runs its program where it should run (this host, or a
//! lab's network namespace), so that it knows nothing of hosts.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::cgroup::{Cgroup, CpuBudget, Hierarchy};
use crate::cpus;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running server model.
pub struct Server {
    pub child: Child,
    pub data: SocketAddr,
    pub admin: SocketAddr,
    pub log: PathBuf,
    /// The server's CPU budget, if it has one: removed when the server is
    /// dropped (declared last, so that it goes after the child is reaped).
    pub cgroup: Option<Cgroup>,
}

/// Where to make budget cgroups, and the budget each server gets.
#[derive(Clone, Debug)]
pub struct Budgeted {
    pub hierarchy: Hierarchy,
    pub budget: CpuBudget,
}

impl Server {
    /// `SERVERS MODEL --addr BIND --admin BIND --admin-realtime
    /// --count-syscalls FLAGS...` (STATS answered at once, however busy the
    /// model, and with the system calls per request that the report and the
    /// regression check read; every model of a sweep counts, so that each
    /// pays the same traced-path cost), `servers` being `cmd` (the servers
    /// binary on the server's host) and `bind` port 0 on that host's
    /// address; pinned to `cpus`, in a cgroup of its own under `budget`,
    /// stderr to `log`; returns once the ready line is read. An alias
    /// (`mio-single@twin`) starts its base model.
    pub fn start(
        mut cmd: Command,
        bind: &str,
        model: &str,
        flags: &[String],
        cpus: &[usize],
        budget: Option<&Budgeted>,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let stderr = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let program = shown(&cmd);
        cmd.arg(crate::models::base(model)).args(["--addr", bind, "--admin", bind]);
        cmd.args(["--admin-realtime", "--count-syscalls"]).args(flags);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        cpus::confine(&mut cmd, cpus, libc::SIGTERM);
        let cgroup = budget.map(|b| b.hierarchy.create(&b.budget));
        let cgroup = cgroup.transpose().context("--server-cpu-budget: cannot make the cgroup")?;
        if let Some(cg) = &cgroup {
            cg.join_before_exec(&mut cmd);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {program} {model}"))?;

        // Read the ready line on a thread, so that a silent server cannot
        // hang the sweep; the thread then drains stdout until the server exits.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let ready = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if !line.is_empty() => parse_ready(&line),
            Ok(Ok(_)) => Err(anyhow!("exited before its ready line")),
            Ok(Err(e)) => Err(anyhow!("cannot read its stdout: {e}")),
            Err(_) => Err(anyhow!("printed no ready line within {READY_TIMEOUT:?}")),
        };
        let ready = ready.and_then(|addrs| keep_admin_outside(cgroup.as_ref(), child.id()).map(|()| addrs));
        match ready {
            Ok((data, admin)) => Ok(Server { child, data, admin, log: log.to_path_buf(), cgroup }),
            Err(e) => {
                let status = stop(&mut child, STOP_GRACE).map(|s| format!(" ({s})")).unwrap_or_default();
                let tail = tail(log);
                let tail = if tail.is_empty() { tail } else { format!(": {tail}") };
                bail!("server did not start: {e}{status}{tail}")
            }
        }
    }

    /// The exit status, if the server has exited (crashed: the sweep had not stopped it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, wait, SIGKILL after [`STOP_GRACE`].
    pub fn stop(mut self) -> Option<ExitStatus> {
        stop(&mut self.child, STOP_GRACE)
    }
}

/// The instrument stays outside the budget: the server's admin thread
/// (STATS) moves back to the parent cgroup, so that a throttled data path
/// cannot stall the snapshots the run's figures come from (cgroup v1; v2
/// moves whole processes only, and there the thread stays inside, as the
/// run's `server_cgroup.admin_outside` says).
fn keep_admin_outside(cgroup: Option<&Cgroup>, pid: u32) -> anyhow::Result<()> {
    let Some(cg) = cgroup.filter(|cg| cg.admin_outside()) else { return Ok(()) };
    let tid = crate::cgroup::thread_named(pid, "admin")
        .ok_or_else(|| anyhow!("has no thread named admin to keep outside its CPU budget"))?;
    cg.move_thread_out(tid).context("cannot keep its admin thread outside the CPU budget")
}

/// `listening data=HOST:PORT admin=HOST:PORT model=NAME protocol=MODE`
pub fn parse_ready(line: &str) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let line = line.trim();
    if !line.starts_with("listening ") {
        bail!("unexpected first line on stdout: {line:?}");
    }
    let field = |key: &str| -> anyhow::Result<SocketAddr> {
        let value = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .ok_or_else(|| anyhow!("no {key} in ready line {line:?}"))?;
        value.parse().with_context(|| format!("{key}{value} in ready line {line:?} is not HOST:PORT"))
    };
    Ok((field("data=")?, field("admin=")?))
}

/// SIGTERM `child`, wait up to `grace`, then SIGKILL; reap it.
pub fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    // SAFETY: kill(2) on our own child's PID, which is not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// How the `loadgen run` children of one run ended.
pub enum Finish {
    /// All exited: the first failed exit status, else the last one.
    Exited(ExitStatus),
    /// Not all had ended by the deadline: every one killed.
    TimedOut(Duration),
    /// The sweep was interrupted: every one killed.
    Interrupted,
}

/// Start `loadgen run ARGS`, `loadgen` being `cmd` (this executable on its
/// host), pinned to `cpus`, stdout and stderr into `log`.
pub fn spawn_loadgen(mut cmd: Command, args: &[String], cpus: &[usize], log: &File) -> anyhow::Result<Child> {
    let program = shown(&cmd);
    cmd.arg("run").args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
    cpus::confine(&mut cmd, cpus, libc::SIGKILL);
    cmd.spawn().with_context(|| format!("cannot start {program} run"))
}

/// A command as a reader would type it (`ip netns exec NS loadgen`).
fn shown(cmd: &Command) -> String {
    let words = std::iter::once(cmd.get_program()).chain(cmd.get_args());
    words.map(|w| w.to_string_lossy()).collect::<Vec<_>>().join(" ")
}

/// Wait for every child until `limit`, calling `tick(elapsed)` every 100
/// ms, and stop them all when `interrupted()` turns true or `limit` passes.
pub fn wait(
    children: &mut [Child],
    limit: Duration,
    interrupted: impl Fn() -> bool,
    mut tick: impl FnMut(Duration),
) -> Finish {
    let start = Instant::now();
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    loop {
        for (c, s) in children.iter_mut().zip(statuses.iter_mut()).filter(|(_, s)| s.is_none()) {
            *s = c.try_wait().ok().flatten();
        }
        if statuses.iter().all(Option::is_some) {
            let all: Vec<ExitStatus> = statuses.into_iter().flatten().collect();
            let worst = all.iter().find(|s| !s.success()).or(all.last()).copied();
            return Finish::Exited(worst.expect("at least one child"));
        }
        if interrupted() {
            stop_all(children);
            return Finish::Interrupted;
        }
        if start.elapsed() > limit {
            stop_all(children);
            return Finish::TimedOut(limit);
        }
        tick(start.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`stop`] each child in turn.
pub fn stop_all(children: &mut [Child]) {
    for c in children {
        stop(c, STOP_GRACE);
    }
}

/// The last few non-empty lines of a log file, on one line, at most ~400 bytes.
pub fn tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = lines[lines.len().saturating_sub(3)..].join(" / ");
    match joined.char_indices().rev().nth(400) {
        Some((i, _)) => format!("…{}", &joined[i..]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_line() {
        let (data, admin) =
            parse_ready("listening data=127.0.0.1:4000 admin=127.0.0.1:4001 model=pool protocol=framed\n").unwrap();
        assert_eq!((data.port(), admin.port()), (4000, 4001));
        assert!(parse_ready("error: no").unwrap_err().to_string().contains("unexpected first line"));
        assert!(parse_ready("listening data=127.0.0.1:1 admin=none model=x").is_err());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!("loadgen-tail-{}", std::process::id()));
        std::fs::write(&path, "one\n\ntwo\nthree\nfour\n").unwrap();
        assert_eq!(tail(&path), "two / three / four");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail(&path), "");
    }

    /// One wait for one load generator or several: the first failure is
    /// the run's status, and an interrupt stops (and reaps) every child.
    #[test]
    fn wait_gives_the_first_failure_and_stops_every_child_when_interrupted() {
        let sh = |script: &str| Command::new("sh").args(["-c", script]).spawn().unwrap();
        let mut two = [sh("exit 3"), sh("sleep 0.2; exit 0")];
        let finish = wait(&mut two, Duration::from_secs(30), || false, |_| {});
        assert!(matches!(finish, Finish::Exited(s) if s.code() == Some(3)), "the failed one's status");
        let mut slow = [sh("sleep 30"), sh("sleep 30")];
        let t = Instant::now();
        let finish = wait(&mut slow, Duration::from_secs(60), || t.elapsed() > Duration::from_millis(200), |_| {});
        assert!(matches!(finish, Finish::Interrupted));
        assert!(slow.iter_mut().all(|c| c.try_wait().unwrap().is_some()), "every child stopped and reaped");
        assert!(t.elapsed() < Duration::from_secs(20), "stopped by SIGTERM, not waited out");
    }

    #[test]
    fn stops_a_child_that_ignores_sigterm() {
        let mut child = Command::new("sh").args(["-c", "trap '' TERM; sleep 30"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let status = stop(&mut child, Duration::from_millis(300)).unwrap();
        assert!(!status.success());
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
