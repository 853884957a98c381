//! Counting the server's own system calls, for `STATS` (`syscalls`).
//!
//! Context switches and CPU time say what a request cost; system calls say
//! why. A readiness loop pays recv + send per echo, libevent's bufferevents
//! pay readv, ioctl, two epoll_ctl and writev, a blocking thread pays read +
//! write plus the futex of its wake-up. A code change that adds one call per
//! request shows here exactly, however noisy the machine is, which is why
//! the regression check gates on this figure first.
//!
//! How: one perf counter on the `raw_syscalls:sys_enter` tracepoint, opened
//! by the main thread before any other thread exists, with `inherit` set, so
//! that every thread the process creates later is counted too (reading the
//! counter adds up the live threads' counts and those of threads that have
//! exited). It is a counter, not a trace: nothing is recorded per call.
//!
//! What it costs: while any such counter is open, every system call on the
//! machine takes the kernel's traced entry path, a fraction of a µs each.
//! Both sides of a comparison pay it, since every server counts. Set
//! `IOMODELS_COUNT_SYSCALLS=0` to turn it off.
//!
//! Where it cannot count (no perf_event_open, perf_event_paranoid too high
//! for a non-root user, no tracefs), `STATS` leaves the field out and
//! [`status`] says why; the ready path never fails for it.

use std::ffi::CString;
use std::fs;
use std::io;
use std::sync::OnceLock;

/// The open counter, or why there is none.
static COUNTER: OnceLock<Result<i32, String>> = OnceLock::new();

/// Where the tracepoint's id may be found.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
const EVENT: &str = "events/raw_syscalls/sys_enter/id";

/// Open the process-wide counter. Call once, from the main thread, before
/// any thread is spawned (threads that exist already are not counted).
pub fn start() {
    COUNTER.get_or_init(|| {
        if std::env::var("IOMODELS_COUNT_SYSCALLS").is_ok_and(|v| v == "0") {
            return Err("turned off (IOMODELS_COUNT_SYSCALLS=0)".into());
        }
        let id = tracepoint_id()?;
        open_counter(id).map_err(|e| format!("perf_event_open(raw_syscalls:sys_enter): {e}"))
    });
}

/// System calls made by this process since [`start`], or `None` when they
/// are not counted.
pub fn read() -> Option<u64> {
    let fd = *COUNTER.get()?.as_ref().ok()?;
    let mut value = 0u64;
    // SAFETY: reading 8 bytes into a u64 we own from a perf counter fd.
    let n = unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
    (n == 8).then_some(value)
}

/// `counting` or the reason it does not, for the server's log.
pub fn status() -> String {
    match COUNTER.get() {
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

/// perf_event_open(2) for one tracepoint, this process and its future
/// threads (`inherit`), any CPU, counting from now.
fn open_counter(tracepoint: u64) -> io::Result<i32> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const INHERIT: u64 = 1 << 1;
    // perf_event_attr (PERF_ATTR_SIZE_VER5, 112 bytes): type, size, config,
    // sample_period, sample_type, read_format, then the flag bits.
    let mut attr = [0u64; 14];
    attr[0] = PERF_TYPE_TRACEPOINT as u64 | (112u64 << 32);
    attr[1] = tracepoint;
    attr[5] = INHERIT;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    let flags = PERF_FLAG_FD_CLOEXEC;
    // SAFETY: attr is a zero-padded perf_event_attr of the size it declares.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where counting works (root here), threads spawned after `start` are
    /// counted, whether they are still alive or have exited.
    #[test]
    fn counts_this_process_and_its_threads() {
        start();
        let Some(before) = read() else {
            eprintln!("skipped: {}", status());
            return;
        };
        let worker = std::thread::spawn(|| {
            for _ in 0..1000 {
                // SAFETY: getppid has no preconditions.
                unsafe { libc::getppid() };
            }
        });
        worker.join().unwrap();
        let after = read().unwrap();
        assert!(after - before >= 1000, "counted {} system calls, expected ≥ 1000", after - before);
    }
}
