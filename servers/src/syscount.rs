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
//! Both sides of a comparison pay it, since every server counts. Set
//! `IOMODELS_COUNT_SYSCALLS=0` to turn it off.
//!
//! Where it cannot count (no perf_event_open, perf_event_paranoid too high
//! for a non-root user, no tracefs), `STATS` leaves the fields out and
//! [`status`] says why in the server's log; the ready path never fails for
//! it. Where tracefs is not mounted and we are root, it is mounted at
//! /sys/kernel/tracing, as `perf` itself does, and left mounted.

use std::ffi::CString;
use std::fs;
use std::io;
use std::sync::OnceLock;

/// The two open counters (every call, and the waiting calls only), or why
/// there are none.
static COUNTERS: OnceLock<Result<(i32, i32), String>> = OnceLock::new();

/// Where the tracepoint's id may be found.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
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

/// Open the process-wide counters. Call once, from the main thread, before
/// any thread is spawned (threads that exist already are not counted).
pub fn start() {
    COUNTERS.get_or_init(|| {
        if std::env::var("IOMODELS_COUNT_SYSCALLS").is_ok_and(|v| v == "0") {
            return Err("turned off (IOMODELS_COUNT_SYSCALLS=0)".into());
        }
        if WAITS.is_empty() {
            return Err("no table of waiting system calls for this architecture".into());
        }
        open_pair(Scope::ProcessFromNowOn)
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
        Some(Err(why)) => format!("not counting system calls: {why}"),
        None => "not counting system calls: never started".into(),
    }
}

/// The tracepoint's id from tracefs, mounting tracefs first if it is
/// missing and we may (root): perf does the same.
fn tracepoint_id() -> Result<u64, String> {
    let read = || TRACEFS.iter().find_map(|dir| fs::read_to_string(format!("{dir}/{EVENT}")).ok());
    let text = read().or_else(|| mount_tracefs().then(read).flatten());
    let text = text.ok_or_else(|| "no tracefs with raw_syscalls/sys_enter (mount tracefs, as root)".to_string())?;
    text.trim().parse().map_err(|e| format!("{}/{EVENT}: not a number: {e}", TRACEFS[0]))
}

fn mount_tracefs() -> bool {
    let (Ok(src), Ok(target), Ok(kind)) = (CString::new("nodev"), CString::new(TRACEFS[0]), CString::new("tracefs"))
    else {
        return false;
    };
    // SAFETY: valid C strings; mount fails harmlessly without privilege.
    unsafe { libc::mount(src.as_ptr(), target.as_ptr(), kind.as_ptr(), 0, std::ptr::null()) == 0 }
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
        start();
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
        start();
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
        assert!((1000..1000 + 200).contains(&counted), "this thread made about 1000 calls, counted {counted}");
    }
}
