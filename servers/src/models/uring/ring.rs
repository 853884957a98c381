//! The io_uring plumbing under `models::uring`: the ring and its setup
//! flags, the buffer ring that multishot recv reads into, and the probe
//! that tells whether this kernel can run the model at all (and if not, why).

use std::io;
use std::mem;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{opcode, IoUring, Probe};

/// Submission queue entries; the completion queue gets four times as many.
pub const RING_ENTRIES: u32 = 4096;
/// Receive buffers: how many, and how large each.
const PROVIDED: (usize, usize) = match crate::limits::URING_LIMITS.read_room {
    crate::limits::ReadRoom::Provided { size, count } => (size, count),
    _ => panic!("uring reads into provided buffers"),
};
/// The buffer ring's size, from the limits table (`limits::URING_LIMITS`).
pub const BUF_COUNT: u16 = PROVIDED.1 as u16;
pub const BUF_SIZE: usize = PROVIDED.0;
/// The buffer group id of our one buffer ring.
pub const BGID: u16 = 0;

/// The buffer ring: BUF_COUNT buffers the kernel picks from as data
/// arrives, so that only a connection with data in flight holds a buffer.
pub struct BufRing {
    entries: *mut BufRingEntry,
    data: Vec<u8>,
    tail: u16,
}

impl BufRing {
    pub fn new(ring: &IoUring) -> io::Result<BufRing> {
        let bytes = BUF_COUNT as usize * mem::size_of::<BufRingEntry>();
        // SAFETY: a fresh private anonymous mapping (page-aligned, as the kernel wants).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut bufs = BufRing { entries: ptr.cast(), data: vec![0; BUF_COUNT as usize * BUF_SIZE], tail: 0 };
        // SAFETY: the mapping lives as long as `bufs`, which the loop drops after the ring.
        unsafe { ring.submitter().register_buf_ring_with_flags(ptr as u64, BUF_COUNT, BGID, 0)? };
        (0..BUF_COUNT).for_each(|bid| bufs.give_back(bid));
        Ok(bufs)
    }

    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        &self.data[bid as usize * BUF_SIZE..][..len]
    }

    /// Hand buffer `bid` to the kernel again.
    pub fn give_back(&mut self, bid: u16) {
        let addr = self.data[bid as usize * BUF_SIZE..].as_ptr() as u64;
        // SAFETY: the slot at tail is ours until the tail moves past it; the
        // tail is published with a release store, as the kernel reads it.
        unsafe {
            let entry = &mut *self.entries.add((self.tail % BUF_COUNT) as usize);
            entry.set_addr(addr);
            entry.set_len(BUF_SIZE as u32);
            entry.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            AtomicU16::from_ptr(BufRingEntry::tail(self.entries) as *mut u16).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped.
        unsafe { libc::munmap(self.entries.cast(), BUF_COUNT as usize * mem::size_of::<BufRingEntry>()) };
    }
}

/// The ring: single issuer, completions run on this thread when it waits
/// (DEFER_TASKRUN), which needs Linux 6.1.
pub fn new_ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_cqsize(RING_ENTRIES * 4)
        .setup_submit_all()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(RING_ENTRIES)
}

/// The operations this model submits.
const NEEDED: [(u8, &str); 6] = [
    (opcode::AcceptMulti::CODE, "ACCEPT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::Read::CODE, "READ"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// `Ok` where this model can run, or why not: `servers uring` refuses to
/// start with this reason, and `servers models` prints it.
pub fn available() -> Result<(), String> {
    let ring = new_ring().map_err(|e| setup_error(e.raw_os_error(), disabled_sysctl()))?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| format!("cannot probe io_uring's operations: {e}"))?;
    missing_op(|code| probe.is_supported(code)).map_or(Ok(()), Err)?;
    BufRing::new(&ring).map(drop).map_err(|e| buf_ring_error(&e).to_string())
}

/// The first operation in [`NEEDED`] the kernel lacks, named.
fn missing_op(supported: impl Fn(u8) -> bool) -> Option<String> {
    NEEDED.iter().find(|(code, _)| !supported(*code)).map(|(_, name)| format!("the kernel lacks IORING_OP_{name}"))
}

/// /proc/sys/kernel/io_uring_disabled, where the kernel has it (6.6+).
pub fn disabled_sysctl() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok().map(|s| s.trim().to_string())
}

/// Why io_uring_setup failed with `errno`, in words.
pub fn setup_error(errno: Option<i32>, disabled: Option<String>) -> String {
    match (errno, disabled) {
        (Some(libc::ENOSYS), _) => {
            "io_uring_setup does not exist here (ENOSYS): the kernel is older than 5.1, was built without \
             CONFIG_IO_URING, or a seccomp filter hides it"
                .into()
        }
        (Some(libc::EPERM | libc::EACCES), Some(v)) if v != "0" => {
            format!("io_uring is disabled (/proc/sys/kernel/io_uring_disabled = {v})")
        }
        (Some(e @ (libc::EPERM | libc::EACCES)), v) => format!(
            "io_uring_setup was refused ({}) though io_uring_disabled is {}: a seccomp filter or a security \
             module forbids it",
            io::Error::from_raw_os_error(e),
            v.as_deref().unwrap_or("absent")
        ),
        (Some(libc::EINVAL), _) => {
            "the kernel rejects the ring's setup flags (SINGLE_ISSUER, DEFER_TASKRUN): Linux 6.1 or later is needed"
                .into()
        }
        (Some(libc::ENOMEM), _) => "cannot allocate the ring (ENOMEM): RLIMIT_MEMLOCK may be too low".into(),
        (Some(e), _) => format!("io_uring_setup: {}", io::Error::from_raw_os_error(e)),
        (None, _) => "io_uring_setup failed".into(),
    }
}

pub fn buf_ring_error(e: &io::Error) -> io::Error {
    io::Error::other(format!(
        "cannot register the receive buffer ring (Linux 5.19+; pinned memory counts against RLIMIT_MEMLOCK): {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_errors_name_their_cause() {
        let e = |errno, sysctl: Option<&str>| setup_error(Some(errno), sysctl.map(String::from));
        assert!(e(libc::ENOSYS, None).contains("CONFIG_IO_URING"));
        assert_eq!(e(libc::EPERM, Some("2")), "io_uring is disabled (/proc/sys/kernel/io_uring_disabled = 2)");
        assert_eq!(e(libc::EACCES, Some("1")), "io_uring is disabled (/proc/sys/kernel/io_uring_disabled = 1)");
        assert!(e(libc::EPERM, Some("0")).contains("seccomp"), "{}", e(libc::EPERM, Some("0")));
        assert!(e(libc::EPERM, None).contains("io_uring_disabled is absent"));
        assert!(e(libc::EINVAL, None).contains("Linux 6.1"));
        assert!(e(libc::ENOMEM, None).contains("RLIMIT_MEMLOCK"));
    }

    #[test]
    fn a_missing_operation_is_named() {
        assert_eq!(missing_op(|_| true), None);
        let no_send = missing_op(|code| code != opcode::Send::CODE);
        assert_eq!(no_send.as_deref(), Some("the kernel lacks IORING_OP_SEND"));
    }
}
