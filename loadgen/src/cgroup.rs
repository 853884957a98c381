//! A CPU budget for the server: a cgroup whose CPU quota is F CPUs, made
//! for one server, its throttling read at the window's edges, and removed
//! when the server is gone (normal end, crash, failure, Ctrl-C).
//!
//! Why: in production a server usually runs under a CPU limit (a
//! container's `--cpus`, a Kubernetes `limits.cpu`), and on a small machine
//! a budget is what makes the server, not the load generator, the first to
//! saturate: on loopback the load generator pays about as much CPU per
//! request as the server.
//!
//! How: cgroup v2's `cpu.max` where the v2 hierarchy has the cpu
//! controller, else cgroup v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
//! The kernel lets the group run `quota` µs of CPU time in every `period`
//! µs; once spent, every thread of the group waits for the next period (a
//! *throttling stall*, at most `period × (1 − F)` for a single runnable
//! thread). The group is a child of this process's own cgroup, named
//! `iomodels-<our pid>-<n>`, so that a sweep killed outright leaves a
//! cgroup whose owner is gone, which the next one removes ([`Hierarchy::clean_stale`]).
//!
//! The server's admin thread (STATS) must not be throttled with the data
//! path: STATS would then stall with it and the instrument would report the
//! budget, not the server. Under v1 a single thread may move between
//! cgroups, so [`Cgroup::move_thread_out`] puts it back in the parent, outside
//! the budget. v2 moves whole processes only (outside threaded mode, whose
//! domain rules the cpu controller's `cpu.max` does not fit here); there the
//! admin thread stays inside, and the run records that
//! ([`Cgroup::admin_outside`]).

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The period of the CPU quota. One throttling stall lasts ideally up to
/// `period × (1 − budget)`: with 5 ms and 0.3 CPU, 3.5 ms, well below the
/// knee's 10 ms SLO (with 10 ms it would be 7 ms, most of the SLO).
///
/// Measured on the 2-core development VM (2026-12-06, load average ~5 from
/// other builds; `cargo test -p loadgen --lib cgroup::tests::period_stalls
/// -- --ignored --nocapture`: one unpinned thread spinning 2 s inside a
/// 0.3-CPU v1 group, gaps over 0.5 ms between two clock reads), two runs
/// each:
///
/// | period | stalls | median | p90 | max |
/// |--------|--------|--------|-----|-----|
/// | 5 ms   | 169, 168 | 8.0, 8.3 ms | 12.0, 12.0 ms | 29.1, 12.3 ms |
/// | 10 ms  | 159, 157 | 7.9, 8.0 ms | 16.0, 16.0 ms | 28.0, 20.0 ms |
/// | 20 ms  | 106, 143 | 13.9, 10.2 ms | 16.0, 16.0 ms | 24.3, 28.0 ms |
///
/// The stalls come in multiples of 4 ms, this kernel's tick: a thread that
/// never enters the kernel is charged for its CPU time only at a tick, so
/// it overruns a quota smaller than a tick and pays the debt in the periods
/// after. Below 10 ms the period hardly shortens the median stall, but 5 ms
/// halves the tail's steps (p90 12 ms against 16). A server enters the
/// kernel at every read and write and is charged then, so its stalls
/// should sit nearer the ideal; the run records its throttling
/// (`server_cgroup` in the run JSON) to check. Shorter periods cost a timer
/// interrupt per period; the kernel's floor is 1 ms.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(5);

/// The sweep's budget for `--server-cpu-budget` given without a value:
/// the CPUs a server gets so that, at every model's knee, the load
/// generator (one CPU of its own) stays below 80% busy: the condition for
/// calling a knee the server's.
///
/// Measured: `results/budget-knee/` (`loadgen sweep --reference --scenario
/// knee --server-cpu-budget 0.3 --repeat 3`, revision 50d2c49, this
/// project's 2-core VM): at every model's knee, at 1000 and 5000
/// connections and in every pass, the load generator was at most 72% busy
/// (medians 23–63%). By hand before that (one pass, 5000 connections), at
/// 0.5 CPU it was 86–95% busy at mio-single's knee: too close.
pub const DEFAULT_SERVER_CPU_BUDGET: f64 = 0.3;

/// The prefix of every cgroup this project makes.
pub const PREFIX: &str = "iomodels-";

/// A CPU budget: `cpus` CPUs' worth of time in every `period`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuBudget {
    pub cpus: f64,
    #[serde(rename = "period_us", with = "micros")]
    pub period: Duration,
}

impl CpuBudget {
    /// The quota per period, in µs.
    pub fn quota_us(&self) -> u64 {
        (self.cpus * self.period.as_micros() as f64).round() as u64
    }

    pub fn period_us(&self) -> u64 {
        self.period.as_micros() as u64
    }

    /// Checked against the CPUs the server may run on: a budget above them
    /// would never throttle, a budget of 0 never run.
    pub fn checked(cpus: f64, period: Duration, server_cpus: usize) -> Result<CpuBudget, CgroupError> {
        if !(cpus.is_finite() && cpus > 0.0) || cpus > server_cpus as f64 {
            return Err(CgroupError::Budget { cpus, server_cpus });
        }
        // The kernel's smallest quota is 1 ms: a small budget gets the
        // period that makes its quota 1 ms (0.05 CPU: 20 ms).
        let shortest = Duration::from_micros((1000.0 / cpus).ceil() as u64);
        Ok(CpuBudget { cpus, period: period.max(shortest) })
    }
}

/// `--server-cpu-budget`: a number of CPUs, or `off`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BudgetFlag {
    Off,
    Cpus(f64),
}

/// Parse `off`, a positive number of CPUs (`0.3`), or `default` (what
/// clap passes for the flag given without a value):
/// [`DEFAULT_SERVER_CPU_BUDGET`].
pub fn parse_budget_flag(s: &str) -> Result<BudgetFlag, String> {
    match (s, s.parse::<f64>()) {
        ("default", _) => Ok(BudgetFlag::Cpus(DEFAULT_SERVER_CPU_BUDGET)),
        (off, _) if off.eq_ignore_ascii_case("off") => Ok(BudgetFlag::Off),
        (_, Ok(x)) if x.is_finite() && x > 0.0 => Ok(BudgetFlag::Cpus(x)),
        _ => Err(format!("{s:?}: give a number of CPUs above 0 (such as 0.3), or `off`")),
    }
}

/// Why no budget could be set up (or torn down).
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("--server-cpu-budget {cpus}: give a number of CPUs above 0 and at most the server's {server_cpus} CPU(s)")]
    Budget { cpus: f64, server_cpus: usize },
    #[error("a CPU budget needs root to create cgroups (running as uid {0})")]
    NotRoot(u32),
    #[error("no cgroup hierarchy with the cpu controller: {0}")]
    NoController(String),
    #[error("the cgroup filesystem at {0} is mounted read-only")]
    ReadOnly(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io { what, path: path.to_path_buf(), source }
}

/// Which cgroup interface a hierarchy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// Where budget cgroups are made: a directory of a hierarchy with the cpu
/// controller (this process's own cgroup there, as found by [`Hierarchy::detect`]).
#[derive(Clone, Debug)]
pub struct Hierarchy {
    pub version: Version,
    pub parent: PathBuf,
}

impl Hierarchy {
    /// This machine's: needs root, then finds the hierarchy from
    /// /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(CgroupError::NotRoot(uid));
        }
        let read = |p: &str| std::fs::read_to_string(p).map_err(io_err("cannot read", Path::new(p)));
        Hierarchy::from_proc(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?, Path::new("/"))
    }

    /// The hierarchy to use, from the text of /proc/self/mountinfo and
    /// /proc/self/cgroup, with mount points under `root` (`/`; a scratch
    /// directory in tests): v2 where its `cgroup.controllers` lists cpu,
    /// else v1's cpu hierarchy; refused where neither is there or it is
    /// mounted read-only.
    pub fn from_proc(mountinfo: &str, self_cgroup: &str, root: &Path) -> Result<Hierarchy, CgroupError> {
        let mounts = cgroup_mounts(mountinfo);
        let own = |version: Version| -> &str {
            self_cgroup
                .lines()
                .filter_map(|l| {
                    let mut f = l.splitn(3, ':');
                    Some((f.next()?, f.next()?, f.next()?))
                })
                .find(|(id, ctl, _)| match version {
                    Version::V2 => *id == "0" && ctl.is_empty(),
                    Version::V1 => ctl.split(',').any(|c| c == "cpu"),
                })
                .map(|(_, _, path)| path)
                .unwrap_or("/")
        };
        let mut why = Vec::new();
        for m in mounts.iter().filter(|m| m.version == Version::V2) {
            let dir = m.dir(root, own(Version::V2));
            let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                m.writable(root)?;
                return Ok(Hierarchy { version: Version::V2, parent: dir });
            }
            why.push(format!("v2 at {} lacks it (cgroup.controllers: {:?})", m.point, controllers.trim()));
        }
        if let Some(m) = mounts.iter().find(|m| m.version == Version::V1) {
            let dir = m.dir(root, own(Version::V1));
            m.writable(root)?;
            if !dir.join("cpu.cfs_quota_us").exists() {
                return Err(CgroupError::NoController(format!("{} has no cpu.cfs_quota_us", dir.display())));
            }
            return Ok(Hierarchy { version: Version::V1, parent: dir });
        }
        why.push("no cgroup v1 hierarchy with the cpu controller is mounted".into());
        Err(CgroupError::NoController(why.join("; ")))
    }

    /// A fresh cgroup under the parent with `budget` written; removed when
    /// dropped.
    pub fn create(&self, budget: &CpuBudget) -> Result<Cgroup, CgroupError> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("{PREFIX}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = self.parent.join(name);
        if self.version == Version::V2 {
            enable_cpu_controller(&self.parent)?;
        }
        std::fs::create_dir(&dir).map_err(io_err("cannot create the cgroup", &dir))?;
        let cgroup = Cgroup { dir, parent: self.parent.clone(), version: self.version };
        cgroup.write_budget(budget)?;
        Ok(cgroup)
    }

    /// Remove the cgroups this project made whose owner (the pid in the
    /// name) is gone: left behind by a sweep killed outright. Returns those
    /// removed.
    pub fn clean_stale(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.parent) else { return Vec::new() };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(owner) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()?.parse::<i32>().ok()) else {
                continue;
            };
            if !pid_alive(owner) && remove(&e.path(), &self.parent, self.version).is_ok() {
                removed.push(e.path());
            }
        }
        removed
    }
}

/// One cgroup mount of mountinfo.
struct Mount<'a> {
    version: Version,
    /// The mount point.
    point: &'a str,
    /// The cgroup path mounted there (`/` but in some containers).
    fs_root: String,
    read_only: bool,
}

/// The v2 mounts, and the v1 mounts carrying the cpu controller.
fn cgroup_mounts(mountinfo: &str) -> Vec<Mount<'_>> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split_whitespace().collect();
            let tail: Vec<&str> = tail.split_whitespace().collect();
            let (fs_root, point, opts) = (*head.get(3)?, *head.get(4)?, *head.get(5)?);
            let read_only = opts.split(',').any(|o| o == "ro");
            let version = match *tail.first()? {
                "cgroup2" => Version::V2,
                "cgroup" if tail.get(2)?.split(',').any(|o| o == "cpu") => Version::V1,
                _ => return None,
            };
            Some(Mount { version, point, fs_root: fs_root.to_string(), read_only })
        })
        .collect()
}

impl Mount<'_> {
    /// Where the cgroup `own` (a path of /proc/self/cgroup) lies under
    /// `root` through this mount.
    fn dir(&self, root: &Path, own: &str) -> PathBuf {
        let rel = own.strip_prefix(self.fs_root.as_str()).unwrap_or(own).trim_start_matches('/');
        root.join(self.point.trim_start_matches('/')).join(rel)
    }

    fn writable(&self, root: &Path) -> Result<(), CgroupError> {
        match self.read_only {
            true => Err(CgroupError::ReadOnly(root.join(self.point.trim_start_matches('/')))),
            false => Ok(()),
        }
    }
}

/// v2: a child gets `cpu.max` only if its parent passes the controller down.
fn enable_cpu_controller(parent: &Path) -> Result<(), CgroupError> {
    let control = parent.join("cgroup.subtree_control");
    let now = std::fs::read_to_string(&control).unwrap_or_default();
    if now.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    std::fs::write(&control, "+cpu").map_err(io_err("cannot enable the cpu controller in", &control))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks only that the process exists.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// One server's budget cgroup. Dropping it moves whatever still runs in it
/// back to the parent and removes it.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    parent: PathBuf,
    version: Version,
}

impl Cgroup {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether the admin thread can be kept outside the budget ([`Cgroup::move_thread_out`]).
    pub fn admin_outside(&self) -> bool {
        self.version == Version::V1
    }

    fn write_budget(&self, b: &CpuBudget) -> Result<(), CgroupError> {
        let writes: Vec<(&str, String)> = match self.version {
            // The period first: the quota is checked against it.
            Version::V1 => {
                vec![("cpu.cfs_period_us", b.period_us().to_string()), ("cpu.cfs_quota_us", b.quota_us().to_string())]
            }
            Version::V2 => vec![("cpu.max", format!("{} {}", b.quota_us(), b.period_us()))],
        };
        for (file, value) in writes {
            let path = self.dir.join(file);
            std::fs::write(&path, value).map_err(io_err("cannot write the budget to", &path))?;
        }
        Ok(())
    }

    /// Make `cmd`'s process join this cgroup before it execs: every thread
    /// it starts is then inside from the first instruction.
    pub fn join_before_exec(&self, cmd: &mut Command) {
        let procs = CString::new(self.dir.join("cgroup.procs").into_os_string().into_encoded_bytes())
            .expect("a cgroup path has no NUL byte");
        // SAFETY: only async-signal-safe calls (open, write, close) on
        // memory prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // "0": the writing process itself.
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if n != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
    }

    /// Move one thread (`tid`) of a process inside back to the parent,
    /// outside the budget (v1 only: v2 moves whole processes).
    pub fn move_thread_out(&self, tid: i32) -> Result<(), CgroupError> {
        if self.version != Version::V1 {
            return Err(CgroupError::Unsupported(format!(
                "cgroup v2 moves whole processes: thread {tid} stays inside {}",
                self.dir.display()
            )));
        }
        let tasks = self.parent.join("tasks");
        std::fs::write(&tasks, tid.to_string()).map_err(io_err("cannot move a thread to", &tasks))
    }

    /// The threads (v1 `tasks`) or processes (v2 `cgroup.procs`) inside now.
    pub fn members(&self) -> Vec<i32> {
        ids(&self.dir, members_file(self.version))
    }

    /// The throttling counters now.
    pub fn stat(&self) -> Result<CpuStat, CgroupError> {
        CpuStat::read(&self.dir)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.dir, &self.parent, self.version) {
            eprintln!("warning: {e}");
        }
    }
}

/// Move whatever is left inside the cgroup `dir` to `parent`, then remove
/// the directory (retrying briefly: the kernel may still be releasing a
/// task that just exited).
fn remove(dir: &Path, parent: &Path, version: Version) -> Result<(), CgroupError> {
    let to = parent.join(members_file(version));
    let mut last = None;
    for _ in 0..50 {
        for id in ids(dir, members_file(version)) {
            let _ = std::fs::write(&to, id.to_string());
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io_err("cannot remove the cgroup", dir)(last.expect("tried at least once")))
}

/// The file that lists what a process is moved by: v1 `tasks` (threads
/// move one by one), v2 `cgroup.procs` (whole processes).
fn members_file(version: Version) -> &'static str {
    match version {
        Version::V1 => "tasks",
        Version::V2 => "cgroup.procs",
    }
}

/// The ids listed in `dir/file`, one a line (none if it cannot be read).
fn ids(dir: &Path, file: &str) -> Vec<i32> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Every thread of the cgroup at `dir`: v1 `tasks`, v2 `cgroup.threads`.
fn threads_in(dir: &Path) -> Vec<i32> {
    ids(dir, if dir.join("tasks").exists() { "tasks" } else { "cgroup.threads" })
}

/// A cgroup's throttling counters (`cpu.stat`), since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStat {
    /// Quota periods in which the group had runnable threads.
    pub periods: u64,
    /// Of those, periods whose quota ran out (the group then waited).
    pub throttled_periods: u64,
    /// Time the group's threads spent throttled, summed over CPUs (µs).
    pub throttled_us: u64,
}

impl CpuStat {
    /// `cpu.stat` of a cgroup directory, v1 (`throttled_time` in ns) or v2
    /// (`throttled_usec`).
    pub fn read(dir: &Path) -> Result<CpuStat, CgroupError> {
        let path = dir.join("cpu.stat");
        let text = std::fs::read_to_string(&path).map_err(io_err("cannot read", &path))?;
        Ok(CpuStat::parse(&text))
    }

    pub fn parse(text: &str) -> CpuStat {
        let mut s = CpuStat::default();
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(k), Some(Ok(v))) = (f.next(), f.next().map(str::parse::<u64>)) else { continue };
            match k {
                "nr_periods" => s.periods = v,
                "nr_throttled" => s.throttled_periods = v,
                "throttled_time" => s.throttled_us = v / 1000,
                "throttled_usec" => s.throttled_us = v,
                _ => {}
            }
        }
        s
    }

    /// The counters' growth from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuStat) -> CpuStat {
        CpuStat {
            periods: self.periods.saturating_sub(earlier.periods),
            throttled_periods: self.throttled_periods.saturating_sub(earlier.throttled_periods),
            throttled_us: self.throttled_us.saturating_sub(earlier.throttled_us),
        }
    }
}

/// The threads of a cgroup at one instant: per thread the kernel's
/// scheduling counters (/proc/TID/schedstat: time on a CPU, time runnable
/// but waiting to run, times scheduled in). schedstat counts only where the
/// kernel's delay accounting is on (`sysctl kernel.task_delayacct=1` before
/// the server starts); otherwise it reads zeros and the waits are unknown.
///
/// Only schedstat is read: it is cheap (about 0.16 s for 5000 threads on
/// this project's 2-core VM under load), where /proc/TID/stat, which would
/// give each thread's state, took 2.1 s for the same 5000 threads (it walks
/// the thread's memory map). How many threads were waiting to run follows
/// from the waits instead (Little's law: the summed wait over the interval
/// is the mean number waiting).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Threads {
    /// TID → (run ns, wait ns, timeslices).
    pub sched: std::collections::BTreeMap<i32, (u64, u64, u64)>,
}

impl Threads {
    /// Read every thread of the cgroup at `dir` (v1 `tasks`, v2 `cgroup.threads`).
    pub fn read(dir: &Path) -> Threads {
        Threads::of_tids(threads_in(dir))
    }

    /// Read every thread of the process `pid` (/proc/PID/task).
    pub fn of_process(pid: u32) -> Threads {
        let tids = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
        Threads::of_tids(tids.filter_map(|e| e.file_name().to_str()?.parse().ok()))
    }

    fn of_tids(tids: impl IntoIterator<Item = i32>) -> Threads {
        let mut t = Threads::default();
        for tid in tids {
            let sched = std::fs::read_to_string(format!("/proc/{tid}/schedstat")).unwrap_or_default();
            if let Some(s) = parse_schedstat(&sched) {
                t.sched.insert(tid, s);
            }
        }
        t
    }

    /// The waits over an interval, from `earlier` to `self`: the time the
    /// threads spent runnable but not running (summed, µs) and the times
    /// they were scheduled in; `None` where the kernel did not count them.
    /// A thread born in between counts from zero; one gone is left out.
    pub fn waits_since(&self, earlier: &Threads) -> Option<(u64, u64)> {
        let (mut run, mut wait, mut slices) = (0u64, 0u64, 0u64);
        for (tid, &(r, w, n)) in &self.sched {
            let (r0, w0, n0) = earlier.sched.get(tid).copied().unwrap_or_default();
            run += r.saturating_sub(r0);
            wait += w.saturating_sub(w0);
            slices += n.saturating_sub(n0);
        }
        (run > 0).then_some((wait / 1000, slices))
    }
}

/// /proc/TID/schedstat: run ns, wait ns, timeslices.
fn parse_schedstat(text: &str) -> Option<(u64, u64, u64)> {
    let mut f = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((f.next()??, f.next()??, f.next()??))
}

/// The budget a cgroup directory holds, from its own files (v1
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us`, v2 `cpu.max`); `None` for no quota.
pub fn read_budget(dir: &Path) -> Result<Option<CpuBudget>, CgroupError> {
    let read = |f: &str| {
        let p = dir.join(f);
        std::fs::read_to_string(&p).map_err(io_err("cannot read", &p))
    };
    let (quota, period) = if dir.join("cpu.max").exists() {
        let text = read("cpu.max")?;
        let mut f = text.split_whitespace();
        (f.next().unwrap_or("max").to_string(), f.next().unwrap_or("100000").to_string())
    } else {
        (read("cpu.cfs_quota_us")?.trim().to_string(), read("cpu.cfs_period_us")?.trim().to_string())
    };
    let (Ok(quota), Ok(period)) = (quota.parse::<i64>(), period.parse::<u64>()) else { return Ok(None) };
    if quota <= 0 || period == 0 {
        return Ok(None);
    }
    Ok(Some(CpuBudget { cpus: quota as f64 / period as f64, period: Duration::from_micros(period) }))
}

/// Whether a thread named `admin` (the servers' STATS thread) is a member
/// of the cgroup at `dir` (v1 `tasks`; v2 `cgroup.threads`).
pub fn admin_inside(dir: &Path) -> bool {
    threads_in(dir)
        .iter()
        .any(|tid| std::fs::read_to_string(format!("/proc/{tid}/comm")).is_ok_and(|c| c.trim_end() == "admin"))
}

/// The thread of process `pid` whose name (`comm`) is `name`.
pub fn thread_named(pid: u32, name: &str) -> Option<i32> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    dir.flatten().find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        (comm.trim_end() == name).then(|| t.file_name().to_string_lossy().parse().ok()).flatten()
    })
}

/// A `Duration` as whole µs in JSON.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::scratch;

    const MOUNTS_HERE: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_is_used_where_v2_lacks_the_cpu_controller() {
        let root = scratch("cgroup-v1");
        std::fs::create_dir_all(root.join("sys/fs/cgroup/cpu/job")).unwrap();
        std::fs::write(root.join("sys/fs/cgroup/cpu/job/cpu.cfs_quota_us"), "-1\n").unwrap();
        std::fs::create_dir_all(root.join("sys/fs/cgroup/unified")).unwrap();
        std::fs::write(root.join("sys/fs/cgroup/unified/cgroup.controllers"), "memory pids\n").unwrap();
        let h = Hierarchy::from_proc(MOUNTS_HERE, "2:cpuacct:/\n1:cpu:/job\n0::/\n", &root).unwrap();
        assert_eq!((h.version, h.parent.clone()), (Version::V1, root.join("sys/fs/cgroup/cpu/job")));
        // Where v2 has it, v2 wins.
        std::fs::write(root.join("sys/fs/cgroup/unified/cgroup.controllers"), "cpu memory\n").unwrap();
        let h = Hierarchy::from_proc(MOUNTS_HERE, "1:cpu:/job\n0::/\n", &root).unwrap();
        assert_eq!((h.version, h.parent), (Version::V2, root.join("sys/fs/cgroup/unified")));
    }

    #[test]
    fn refuses_without_the_cpu_controller_or_on_a_read_only_mount() {
        let root = scratch("cgroup-refuse");
        std::fs::create_dir_all(root.join("sys/fs/cgroup/unified")).unwrap();
        std::fs::write(root.join("sys/fs/cgroup/unified/cgroup.controllers"), "memory pids\n").unwrap();
        let v2_only = "40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let e = Hierarchy::from_proc(v2_only, "0::/\n", &root).unwrap_err();
        assert!(matches!(e, CgroupError::NoController(_)), "{e}");
        assert!(e.to_string().contains("lacks it") && e.to_string().contains("no cgroup v1"), "{e}");
        // A v1 cpu mount whose directory has no quota file (not a cpu hierarchy after all).
        std::fs::create_dir_all(root.join("sys/fs/cgroup/cpu")).unwrap();
        let e = Hierarchy::from_proc(MOUNTS_HERE, "1:cpu:/\n", &root).unwrap_err();
        assert!(e.to_string().contains("no cpu.cfs_quota_us"), "{e}");
        std::fs::write(root.join("sys/fs/cgroup/cpu/cpu.cfs_quota_us"), "-1\n").unwrap();
        let ro = MOUNTS_HERE.replace("/sys/fs/cgroup/cpu rw,relatime", "/sys/fs/cgroup/cpu ro,relatime");
        let e = Hierarchy::from_proc(&ro, "1:cpu:/\n", &root).unwrap_err();
        assert!(matches!(e, CgroupError::ReadOnly(_)), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
        // Nothing mounted at all.
        let e = Hierarchy::from_proc("", "", &root).unwrap_err();
        assert!(e.to_string().contains("no cgroup v1 hierarchy"), "{e}");
    }

    #[test]
    fn a_budget_is_checked_against_the_servers_cpus() {
        let ms = Duration::from_millis;
        let b = CpuBudget::checked(0.3, ms(5), 1).unwrap();
        assert_eq!((b.quota_us(), b.period_us()), (1500, 5000));
        assert!(matches!(CpuBudget::checked(0.0, ms(5), 1), Err(CgroupError::Budget { .. })));
        let e = CpuBudget::checked(1.5, ms(5), 1).unwrap_err().to_string();
        assert!(e.contains("--server-cpu-budget 1.5") && e.contains("1 CPU"), "{e}");
        assert!(CpuBudget::checked(1.5, ms(5), 2).is_ok());
        // 0.05 CPU of a 5 ms period is 250 µs, below the kernel's 1 ms
        // minimum quota: the period grows to 20 ms instead.
        let small = CpuBudget::checked(0.05, ms(5), 1).unwrap();
        assert_eq!((small.quota_us(), small.period), (1000, ms(20)));
        assert_eq!(parse_budget_flag("off"), Ok(BudgetFlag::Off));
        assert_eq!(parse_budget_flag("default"), Ok(BudgetFlag::Cpus(DEFAULT_SERVER_CPU_BUDGET)));
        assert_eq!(parse_budget_flag("0.5"), Ok(BudgetFlag::Cpus(0.5)));
        assert!(parse_budget_flag("-1").is_err() && parse_budget_flag("half").is_err());
    }

    #[test]
    fn reads_thread_states_and_waits() {
        assert_eq!(parse_schedstat("1500 700 3\n"), Some((1500, 700, 3)));
        assert_eq!(parse_schedstat(""), None);
        let at = |v: &[(i32, (u64, u64, u64))]| Threads { sched: v.iter().copied().collect() };
        let start = at(&[(1, (1_000_000, 2_000_000, 10)), (2, (5, 5, 1))]);
        // Thread 2 gone, thread 3 born: 3 ms and 1 ms more waiting, 5 + 4 slices.
        let end = at(&[(1, (2_000_000, 5_000_000, 15)), (3, (10, 1_000_000, 4))]);
        assert_eq!(end.waits_since(&start), Some((4000, 9)));
        // Delay accounting off: every counter reads zero.
        let off = at(&[(1, (0, 0, 7))]);
        assert_eq!(off.waits_since(&at(&[])), None);
        // This process's own threads are read through a fake cgroup's tasks file.
        let dir = scratch("cgroup-threads");
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::syscall(libc::SYS_gettid) };
        std::fs::write(dir.join("tasks"), format!("{me}\n")).unwrap();
        let me_read = Threads::read(&dir);
        assert_eq!(me_read.sched.keys().copied().collect::<Vec<_>>(), [me as i32], "this thread, read by its TID");
    }

    #[test]
    fn reads_both_versions_cpu_stat_and_budget() {
        let v1 = "nr_periods 200\nnr_throttled 150\nthrottled_time 420000000\n";
        let v2 = "usage_usec 9\nnr_periods 200\nnr_throttled 150\nthrottled_usec 420000\n";
        let want = CpuStat { periods: 200, throttled_periods: 150, throttled_us: 420_000 };
        assert_eq!((CpuStat::parse(v1), CpuStat::parse(v2)), (want, want));
        let earlier = CpuStat { periods: 50, throttled_periods: 50, throttled_us: 20_000 };
        assert_eq!(want.since(&earlier), CpuStat { periods: 150, throttled_periods: 100, throttled_us: 400_000 });
        let dir = scratch("cgroup-budget");
        std::fs::write(dir.join("cpu.cfs_quota_us"), "1500\n").unwrap();
        std::fs::write(dir.join("cpu.cfs_period_us"), "5000\n").unwrap();
        assert_eq!(read_budget(&dir).unwrap(), Some(CpuBudget { cpus: 0.3, period: Duration::from_millis(5) }));
        std::fs::write(dir.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        assert_eq!(read_budget(&dir).unwrap(), None);
        std::fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
        assert_eq!(read_budget(&dir).unwrap(), None);
        std::fs::write(dir.join("cpu.max"), "50000 100000\n").unwrap();
        assert_eq!(read_budget(&dir).unwrap().unwrap().cpus, 0.5);
    }

    /// This machine's hierarchy, or why a test cannot use one (printed).
    pub(crate) fn real() -> Option<Hierarchy> {
        Hierarchy::detect().map_err(|e| eprintln!("skipped: no cgroup can be made here: {e}")).ok()
    }

    /// As root on a machine with the cpu controller: the cgroup is made with
    /// the budget written, a child joins it before exec, a spinning child is
    /// throttled and the group's cpu.stat says so, and the group is gone
    /// after the guard is dropped, with the child still running (moved out)
    /// or after it has exited.
    #[test]
    fn a_real_cgroup_is_made_joined_and_removed() {
        let Some(h) = real() else { return };
        let budget = CpuBudget::checked(0.3, DEFAULT_PERIOD, 1).unwrap();
        let cg = h.create(&budget).unwrap();
        let dir = cg.path().to_path_buf();
        assert_eq!(read_budget(&dir).unwrap(), Some(budget));
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        cg.join_before_exec(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id() as i32;
        assert!(cg.members().contains(&pid), "{pid} not in {:?}", cg.members());
        // The exec itself may use more than one period's 1.5 ms quota on a
        // slow machine and be throttled once; asleep, it is never throttled.
        wait_until_asleep(pid);
        let asleep = cg.stat().unwrap();
        std::thread::sleep(DEFAULT_PERIOD * 20);
        assert_eq!(cg.stat().unwrap().since(&asleep).throttled_periods, 0, "a sleeping child is never throttled");
        drop(cg);
        assert!(!dir.exists(), "{} left behind", dir.display());
        // Still running, in the parent now.
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();

        // A child that spins is held to its budget: throttled, and counted.
        let cg = h.create(&budget).unwrap();
        let dir = cg.path().to_path_buf();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "while :; do :; done"]);
        cg.join_before_exec(&mut cmd);
        let mut spinner = cmd.spawn().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let throttled = loop {
            let s = cg.stat().unwrap();
            // throttled_us grows when a throttled period ends, after the count.
            if (s.throttled_periods > 0 && s.throttled_us > 0) || std::time::Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(DEFAULT_PERIOD * 4);
        };
        spinner.kill().unwrap();
        spinner.wait().unwrap();
        assert!(throttled.throttled_periods > 0 && throttled.throttled_us > 0, "never throttled: {throttled:?}");
        drop(cg);
        assert!(!dir.exists(), "{} left behind", dir.display());

        // After the child exits (a crash), the same.
        let cg = h.create(&budget).unwrap();
        let dir = cg.path().to_path_buf();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "kill -SEGV $$"]);
        cg.join_before_exec(&mut cmd);
        assert!(!cmd.status().unwrap().success());
        drop(cg);
        assert!(!dir.exists());
    }

    /// Waits (up to 10 s) until `pid` is in `sleep`'s nanosleep: state S in
    /// `/proc/PID/stat` with its command already `sleep`.
    fn wait_until_asleep(pid: i32) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.contains("(sleep) S") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{pid} never slept: {stat}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A cgroup whose owner is gone is removed at the next start; one whose
    /// owner lives is left alone.
    #[test]
    fn stale_cgroups_of_dead_owners_are_removed() {
        let Some(h) = real() else { return };
        let mut dead = Command::new("true").spawn().unwrap();
        let gone = dead.id();
        dead.wait().unwrap();
        let stale = h.parent.join(format!("{PREFIX}{gone}-1"));
        std::fs::create_dir(&stale).unwrap();
        let ours = h.create(&CpuBudget::checked(0.5, DEFAULT_PERIOD, 1).unwrap()).unwrap();
        let removed = h.clean_stale();
        assert!(removed.contains(&stale) && !stale.exists(), "{removed:?}");
        assert!(ours.path().exists(), "a live owner's cgroup is kept");
    }

    /// The period experiment behind [`DEFAULT_PERIOD`]: one thread spinning
    /// inside a 0.3-CPU group; the longest gap between two clock reads is
    /// one throttling stall.
    #[test]
    #[ignore = "an experiment (6 s of CPU), not a check"]
    fn period_stalls() {
        let Some(h) = real() else { return };
        for period_ms in [5, 10, 20] {
            let cg = h.create(&CpuBudget::checked(0.3, Duration::from_millis(period_ms), 1).unwrap()).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let procs = cg.path().join("tasks");
            let worst = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::syscall(libc::SYS_gettid) };
                let file = if procs.exists() { procs } else { procs.with_file_name("cgroup.threads") };
                std::fs::write(file, tid.to_string()).unwrap();
                tx.send(()).unwrap();
                let (start, mut last, mut stalls) = (std::time::Instant::now(), std::time::Instant::now(), Vec::new());
                while start.elapsed() < Duration::from_secs(2) {
                    let now = std::time::Instant::now();
                    if now - last > Duration::from_micros(500) {
                        stalls.push((now - last).as_secs_f64() * 1e3);
                    }
                    last = now;
                }
                stalls.sort_by(f64::total_cmp);
                stalls
            });
            rx.recv().unwrap();
            let stalls = worst.join().unwrap();
            let at = |q: f64| stalls.get(((stalls.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
            let stat = cg.stat().unwrap();
            eprintln!(
                "period {period_ms} ms, 0.3 CPU: {} stalls over 0.5 ms, median {:.1} ms, p90 {:.1}, max {:.1}; {stat:?}",
                stalls.len(),
                at(0.5),
                at(0.9),
                at(1.0)
            );
        }
    }
}
