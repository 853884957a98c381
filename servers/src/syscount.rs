//! Counting the server's own system calls, for `STATS` (`syscalls`).
//!
//! Context switches and CPU time say what a request cost; system calls say
//! why. A readiness loop pays recv + send per echo, libevent's bufferevents
//! pay readv, ioctl, two epoll_ctl and writev, a blocking thread pays read +
//! write plus the futex of its wake-up. A code change that adds one call per
//! request shows here exactly, however noisy the machine is, which is why
//! the regression check gates on this figure first.
//!
//! How: two perf counters on the `raw_syscalls:sys_enter` tracepoint, one
//! for every call and one filtered to the calls that wait ([`WAITS`]:
//! epoll_wait and friends, poll, select, futex), opened by the main thread
//! before any other thread exists, with `inherit` set, so that every thread
//! the process creates later is counted too (reading a counter adds up the
//! live threads' counts and those of threads that have exited). They are
//! counters, not traces: nothing is recorded per call.
//!
//! The admin thread opens a second pair for itself alone ([`ThreadCounters`],
//! no `inherit`), so that STATS can leave its own calls out (`stats.rs`).
//!
//! STATS reports both (`syscalls`, `syscalls_wait`). The calls that do
//! work (all minus waits) are exact per request: one read and one write per
//! ECHO for every model but libevent, whose bufferevents make five. The
//! waits are not: an event loop shares one `epoll_wait` among however many
//! sockets are ready at that moment, which the machine's timing decides.
//!
//! What it costs: while any such counter is open, every system call on the
//! machine takes the kernel's traced entry path, a fraction of a µs each.
//! So it is off unless asked: `--count-syscalls` (or
//! `IOMODELS_COUNT_SYSCALLS=1`); without it nothing here touches the
//! machine. Whatever needs the figures asks, for every server it compares,
//! so that both sides of a comparison pay the same: the sweep (and so
//! `loadgen check`), scripts/try, and the tests that check the counts.
//!
//! Where it does not count (not asked; or no perf_event_open,
//! perf_event_paranoid too high for a non-root user, no tracefs), `STATS`
//! leaves the fields out and says why in `syscalls_not_counted` ([`why_not`]),
//! and the server's log says it too ([`status`]); the ready path never
//! fails for it.
//!
//! tracefs. The tracepoint's id is read from a tracefs already mounted
//! anywhere (found in /proc/self/mountinfo, so that merely looking does not
//! trigger debugfs's automount of it). Where none is and we are root, it is
//! mounted at /sys/kernel/tracing, as `perf` does, but only for as long as
//! the server runs: the mount's id is remembered and [`release_tracefs`]
//! (called on every way out of `launch`: returning, unwinding, the signal
//! path) detaches that mount and no other. It is also released at once
//! when the counters then fail to open. A mount found there first is never
//! touched. A SIGKILL, which runs nothing, leaves it mounted.

use std::ffi::CString;
use std::fs;
use std::io;
use std::sync::{Mutex, OnceLock};

/// The two open counters (every call, and the waiting calls only), or why
/// there are none.
static COUNTERS: OnceLock<Result<(i32, i32), String>> = OnceLock::new();

/// The mount id (first field of /proc/self/mountinfo) of the tracefs this
/// process mounted, until [`release_tracefs`] detaches it.
static OUR_MOUNT: Mutex<Option<u64>> = Mutex::new(None);

/// Where tracefs is mounted when none is.
const TRACEFS: &str = "/sys/kernel/tracing";
const EVENT: &str = "events/raw_syscalls/sys_enter/id";

/// The calls that wait for something to happen rather than do work:
/// readiness waits and futex. How many of them a request costs depends on
/// timing (how many sockets are ready at once, whether a thread was
/// already awake), so they are counted apart from the calls that move
/// bytes, whose count per request a change of code moves and the machine
/// does not.
#[cfg(target_arch = "x86_64")]
const WAITS: &[i64] = &[232, 281, 441, 7, 271, 23, 270, 202, 449]; // epoll_wait, epoll_pwait, epoll_pwait2, poll, ppoll, select, pselect6, futex, futex_waitv
#[cfg(target_arch = "aarch64")]
const WAITS: &[i64] = &[22, 441, 73, 72, 98, 449]; // epoll_pwait, epoll_pwait2, ppoll, pselect6, futex, futex_waitv
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const WAITS: &[i64] = &[];

/// Why nothing is counted when the server was not asked to count.
pub const NOT_ASKED: &str = "not asked (--count-syscalls)";

/// Open the process-wide counters if `asked` (`--count-syscalls`). Call
/// once, from the main thread, before any thread is spawned (threads that
/// exist already are not counted).
pub fn start(asked: bool) {
    COUNTERS.get_or_init(|| {
        if !asked {
            return Err(NOT_ASKED.into());
        }
        if WAITS.is_empty() {
            return Err("no table of waiting system calls for this architecture".into());
        }
        let opened = open_pair(Scope::ProcessFromNowOn);
        if opened.is_err() {
            // Nothing will count: a tracefs mounted for it has no reason to stay.
            release_tracefs();
        }
        opened
    });
}

/// (every system call, waiting calls only) made by this process since
/// [`start`], or `None` when they are not counted.
pub fn read() -> Option<(u64, u64)> {
    let (all, waits) = *COUNTERS.get()?.as_ref().ok()?;
    read_pair(all, waits)
}

/// The same two counts for one thread only: the thread that opened them.
pub struct ThreadCounters {
    all: i32,
    waits: i32,
}

impl ThreadCounters {
    /// Count the calling thread's own system calls from now on; `None`
    /// where the process's calls are not counted (nothing to subtract from).
    pub fn open_for_this_thread() -> Option<ThreadCounters> {
        counting()
            .then(|| open_pair(Scope::ThisThread).ok())
            .flatten()
            .map(|(all, waits)| ThreadCounters { all, waits })
    }

    /// (every system call, waiting calls only) of the thread that opened them.
    pub fn read(&self) -> Option<(u64, u64)> {
        read_pair(self.all, self.waits)
    }
}

fn read_pair(all: i32, waits: i32) -> Option<(u64, u64)> {
    Some((read_counter(all)?, read_counter(waits)?))
}

/// Whose calls a counter counts.
#[derive(Clone, Copy)]
enum Scope {
    /// The calling thread and every thread created after (`inherit`).
    ProcessFromNowOn,
    /// The calling thread alone.
    ThisThread,
}

/// Open the counter of every call and the counter of waiting calls.
fn open_pair(scope: Scope) -> Result<(i32, i32), String> {
    let id = tracepoint_id()?;
    let all = open_counter(id, None, scope).map_err(|e| format!("perf_event_open(raw_syscalls:sys_enter): {e}"))?;
    let filter = WAITS.iter().map(|n| format!("id == {n}")).collect::<Vec<_>>().join(" || ");
    let waits = open_counter(id, Some(&filter), scope).map_err(|e| {
        // SAFETY: closing the fd we opened above, which nothing else holds.
        unsafe { libc::close(all) };
        format!("perf_event_open with a filter: {e}")
    })?;
    Ok((all, waits))
}

fn read_counter(fd: i32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: reading 8 bytes into a u64 we own from a perf counter fd.
    let n = unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
    (n == 8).then_some(value)
}

/// Whether [`start`] opened the counters.
pub fn counting() -> bool {
    matches!(COUNTERS.get(), Some(Ok(_)))
}

/// `counting` or the reason it does not, for the server's log.
pub fn status() -> String {
    match COUNTERS.get() {
        Some(Ok(_)) => "counting system calls (raw_syscalls:sys_enter)".into(),
        _ => format!("not counting system calls: {}", why_not()),
    }
}

/// Why [`read`] has nothing to give, for STATS (`syscalls_not_counted`):
/// [`NOT_ASKED`], or what stopped the counters opening or being read.
pub fn why_not() -> String {
    match COUNTERS.get() {
        Some(Ok(_)) => "the counters could not be read".into(),
        Some(Err(why)) => why.clone(),
        None => "never started".into(),
    }
}

/// The tracepoint's id, looked up once per process (the admin thread's
/// counters need it again, when a tracefs mount may be gone).
fn tracepoint_id() -> Result<u64, String> {
    static ID: OnceLock<Result<u64, String>> = OnceLock::new();
    ID.get_or_init(look_up_tracepoint_id).clone()
}

/// The tracepoint's id from a mounted tracefs, mounting one first if there
/// is none and we may (root): perf does the same.
fn look_up_tracepoint_id() -> Result<u64, String> {
    let read = || tracefs_mounts().iter().find_map(|m| fs::read_to_string(format!("{}/{EVENT}", m.point)).ok());
    let text = match read() {
        Some(text) => text,
        None => {
            mount_tracefs()?;
            read().ok_or_else(|| format!("{TRACEFS}/{EVENT}: not found after mounting tracefs there"))?
        }
    };
    text.trim().parse().map_err(|e| format!("{EVENT}: not a number: {e}"))
}

/// One tracefs mount, from /proc/self/mountinfo.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    id: u64,
    point: String,
}

/// This process's tracefs mounts, in mountinfo's order: a mount stacked on
/// another at the same point comes after it.
fn tracefs_mounts() -> Vec<Mount> {
    fs::read_to_string("/proc/self/mountinfo").map(|text| parse_tracefs_mounts(&text)).unwrap_or_default()
}

/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE ...`
fn parse_tracefs_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            (tail.split(' ').next()? == "tracefs").then_some(())?;
            let fields: Vec<&str> = head.split(' ').collect();
            Some(Mount { id: fields.first()?.parse().ok()?, point: fields.get(4)?.to_string() })
        })
        .collect()
}

/// Mount tracefs at [`TRACEFS`] and remember which mount is ours: the one
/// at that point that was not there before (if another process mounted one
/// there at the same instant, which is ours cannot be told: then neither
/// is remembered, and ours is left mounted rather than risk another's).
fn mount_tracefs() -> Result<(), String> {
    let before: Vec<u64> = tracefs_mounts().iter().map(|m| m.id).collect();
    let c = |s: &str| CString::new(s).expect("no NUL in a constant");
    let (src, target, kind) = (c("nodev"), c(TRACEFS), c("tracefs"));
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: valid C strings and no data; mount fails harmlessly without privilege.
    if unsafe { libc::mount(src.as_ptr(), target.as_ptr(), kind.as_ptr(), flags, std::ptr::null()) } != 0 {
        let e = io::Error::last_os_error();
        return Err(format!("no tracefs mounted, and mounting one at {TRACEFS} failed: {e}"));
    }
    let new: Vec<u64> =
        tracefs_mounts().into_iter().filter(|m| m.point == TRACEFS && !before.contains(&m.id)).map(|m| m.id).collect();
    match new[..] {
        [ours] => *OUR_MOUNT.lock().unwrap_or_else(|e| e.into_inner()) = Some(ours),
        _ => eprintln!("syscount: cannot tell which tracefs at {TRACEFS} is ours; leaving it mounted on exit"),
    }
    Ok(())
}

/// Detach the tracefs this process mounted, if it did and that mount is
/// still the one on top at [`TRACEFS`] (unmounting by path takes the top
/// one, which may be another's). Lazily (`MNT_DETACH`): a file another
/// process still holds open in it then keeps it alive until closed, out of
/// sight, instead of keeping it mounted. Idempotent; safe from any thread.
pub fn release_tracefs() {
    let Some(ours) = OUR_MOUNT.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    let top = tracefs_mounts().into_iter().rfind(|m| m.point == TRACEFS);
    match top {
        Some(m) if m.id == ours => {
            let target = CString::new(TRACEFS).expect("no NUL in a constant");
            // SAFETY: a valid C string; the mount on top there is the one we made.
            if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
                eprintln!("syscount: cannot unmount the tracefs mounted at {TRACEFS}: {}", io::Error::last_os_error());
            }
        }
        Some(_) => eprintln!("syscount: another mount covers the tracefs mounted at {TRACEFS}; leaving both"),
        None => {} // someone unmounted it already
    }
}

/// perf_event_open(2) for one tracepoint, the calling thread (pid 0) and,
/// for [`Scope::ProcessFromNowOn`], its future threads (`inherit`), any
/// CPU, counting from now; with an ftrace filter on the event's fields
/// (`id == 232 || ...`) when one is given.
fn open_counter(tracepoint: u64, filter: Option<&str>, scope: Scope) -> io::Result<i32> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const INHERIT: u64 = 1 << 1;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    const PERF_EVENT_IOC_SET_FILTER: libc::c_ulong = 0x4008_2406; // _IOW('$', 6, char *)
                                                                  // perf_event_attr (PERF_ATTR_SIZE_VER5, 112 bytes): type, size, config,
                                                                  // sample_period, sample_type, read_format, then the flag bits.
    let mut attr = [0u64; 14];
    attr[0] = PERF_TYPE_TRACEPOINT as u64 | (112u64 << 32);
    attr[1] = tracepoint;
    attr[5] = match scope {
        Scope::ProcessFromNowOn => INHERIT,
        Scope::ThisThread => 0,
    };
    // SAFETY: attr is a zero-padded perf_event_attr of the size it declares.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, PERF_FLAG_FD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = fd as i32;
    if let Some(filter) = filter {
        let text = CString::new(filter).map_err(io::Error::other)?;
        // SAFETY: a NUL-terminated filter string for our own perf fd.
        if unsafe { libc::ioctl(fd, PERF_EVENT_IOC_SET_FILTER as _, text.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: closing the fd we opened above.
            unsafe { libc::close(fd) };
            return Err(e);
        }
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where counting works (root here), threads spawned after `start` are
    /// counted, whether they are still alive or have exited.
    #[test]
    fn counts_this_process_and_its_threads() {
        start(true);
        let Some((all, waits)) = read() else {
            eprintln!("skipped: {}", status());
            return;
        };
        let worker = std::thread::spawn(|| {
            // SAFETY: plain system calls on a descriptor this thread owns.
            unsafe {
                let ep = libc::epoll_create1(0);
                let mut ev: libc::epoll_event = std::mem::zeroed();
                for _ in 0..1000 {
                    libc::getppid();
                    libc::epoll_wait(ep, &mut ev, 1, 0);
                }
                libc::close(ep);
            }
        });
        worker.join().unwrap();
        let (all2, waits2) = read().unwrap();
        assert!(all2 - all >= 2000, "counted {} system calls, expected ≥ 2000", all2 - all);
        // Other tests' threads may wait meanwhile: at least ours are there.
        assert!(waits2 - waits >= 1000, "counted {} waits, expected ≥ 1000", waits2 - waits);
        assert!(waits2 - waits < all2 - all - 1000, "the getppid calls are not waits");
        release_tracefs();
    }

    /// Only tracefs lines count, and a stacked mount comes last.
    #[test]
    fn tracefs_mounts_are_read_from_mountinfo() {
        let text = "\
22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
41 22 0:12 / /sys/kernel/tracing rw,relatime shared:17 - tracefs tracefs rw
43 40 0:7 / /sys/kernel/debug rw - debugfs debugfs rw
90 41 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec - tracefs nodev rw
";
        let point = || "/sys/kernel/tracing".to_string();
        assert_eq!(parse_tracefs_mounts(text), [Mount { id: 41, point: point() }, Mount { id: 90, point: point() }]);
    }

    fn getppid_times(n: usize) {
        for _ in 0..n {
            // SAFETY: getppid has no preconditions.
            unsafe { libc::getppid() };
        }
    }

    /// A thread's own counters see its calls and no other thread's.
    #[test]
    fn thread_counters_count_one_thread() {
        start(true);
        if !counting() {
            eprintln!("skipped: {}", status());
            return;
        }
        let own = std::thread::spawn(|| {
            let mine = ThreadCounters::open_for_this_thread().expect("counting, so a thread's counters open");
            let (before, _) = mine.read().unwrap();
            // Another thread's calls meanwhile must not show in ours.
            std::thread::spawn(|| getppid_times(5000)).join().unwrap();
            getppid_times(1000);
            let (after, _) = mine.read().unwrap();
            after - before
        });
        let counted = own.join().unwrap();
        release_tracefs();
        assert!((1000..1000 + 200).contains(&counted), "this thread made about 1000 calls, counted {counted}");
    }
}
