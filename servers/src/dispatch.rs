//! What every model does with a decoded request, whatever its I/O model.
//!
//! [`handle_request`] validates a frame and turns it into a [`Reply`]:
//! an answer to send now, an answer to send after a delay, or a COMPUTE to
//! run somewhere. *Where* the delay is waited out and *where* the compute
//! runs is the one thing the models disagree about, so that part is theirs:
//!
//! | model           | DELAY                     | COMPUTE                                |
//! |-----------------|---------------------------|----------------------------------------|
//! | thread-per-conn | `thread::sleep`           | inline, on the conn's thread           |
//! | pool            | `thread::sleep`           | inline, on the worker                  |
//! | mio-single      | timer heap + poll timeout | inline, on the only loop               |
//! | mio-multi       | per-loop timer heap       | rayon pool, back via Waker             |
//! | uring           | an io_uring TIMEOUT       | inline, on the only loop               |
//! | tokio           | `tokio::time::sleep` task | inline when short, else `spawn_blocking` |
//! | libevent        | an evtimer                | inline, on the only loop               |
//!
//! (One row per model of `models::MODELS`, in its order; a test keeps them equal.)

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proto::{Frame, Method, Request, Status};

use crate::stats::{self, COUNTERS};

/// What to do about one request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response now.
    Now(Frame),
    /// Send this (empty, OK) response once `delay` has passed.
    After { delay: Duration, frame: Frame },
    /// Run `proto::compute(id, rounds)` and send [`compute_reply`].
    Compute { id: u64, rounds: u32 },
}

/// Validate `req` and decide what to answer. Error responses are counted.
pub fn handle_request(req: Frame) -> Reply {
    match proto::classify(&req) {
        // Echo moves the request's payload into the response: no copy.
        Ok(Request::Echo) => Reply::Now(Frame::response(req.id, req.method, Status::Ok, req.payload)),
        Ok(Request::Delay { micros }) => Reply::After {
            delay: Duration::from_micros(micros as u64),
            frame: Frame::response(req.id, req.method, Status::Ok, Vec::new()),
        },
        Ok(Request::Compute { rounds }) => Reply::Compute { id: req.id, rounds },
        Ok(Request::Stats) => Reply::Now(stats::stats_frame(req.id)),
        Err((status, msg)) => {
            COUNTERS.error();
            Reply::Now(Frame::response(req.id, req.method, status, msg.as_bytes().to_vec()))
        }
    }
}

/// The response to a COMPUTE, computed on the calling thread.
pub fn compute_reply(id: u64, rounds: u32) -> Frame {
    let x = proto::compute(id, rounds);
    Frame::response(id, Method::Compute as u8, Status::Ok, x.to_be_bytes().to_vec())
}

/// The last answer on a connection whose header announced too large a
/// payload: the payload cannot be skipped safely, so the model sends this
/// and closes. Counted as an error.
pub fn too_large_reply(err: &proto::Error) -> Frame {
    COUNTERS.error();
    let proto::Error::TooLarge { id, method, .. } = *err;
    Frame::response(id, method, Status::TooLarge, err.to_string().into_bytes())
}

/// Encode `frame` onto a connection's output buffer and count it answered.
/// Every model sends every response through here, so `requests` in STATS
/// means the same thing for all of them.
pub fn queue_reply(frame: &Frame, out: &mut Vec<u8>) {
    proto::encode(frame, out);
    COUNTERS.answered(1);
    debug_slowdown();
}

/// Raw mode (`--protocol raw`): the plain echo of the classic libevent
/// echo server. Every read is one "request", answered with the same bytes:
/// appended to `out` and counted answered. Returns the bytes used (all).
pub fn echo_raw(data: &[u8], out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(data);
    COUNTERS.answered(1);
    debug_slowdown();
    data.len()
}

/// `--debug-extra-syscalls`: 0 except when CI proves it catches a regression.
static DEBUG_EXTRA_SYSCALLS: AtomicU32 = AtomicU32::new(0);

pub fn set_debug_extra_syscalls(n: u32) {
    DEBUG_EXTRA_SYSCALLS.store(n, Ordering::Relaxed);
}

/// `--debug-extra-work`: 0 except when CI proves its A/B check names the
/// one model made costlier.
static DEBUG_EXTRA_WORK: AtomicU32 = AtomicU32::new(0);

pub fn set_debug_extra_work(rounds: u32) {
    DEBUG_EXTRA_WORK.store(rounds, Ordering::Relaxed);
}

/// A deliberate, measurable slowdown per answer (two relaxed loads otherwise).
#[inline]
pub fn debug_slowdown() {
    let rounds = DEBUG_EXTRA_WORK.load(Ordering::Relaxed);
    if rounds > 0 {
        std::hint::black_box(proto::compute(std::hint::black_box(0), rounds));
    }
    for _ in 0..DEBUG_EXTRA_SYSCALLS.load(Ordering::Relaxed) {
        // SAFETY: getppid has no preconditions; the call is the point.
        unsafe { libc::getppid() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_moves_the_payload() {
        let Reply::Now(f) = handle_request(Frame::request(9, Method::Echo, b"abc".to_vec())) else { panic!() };
        assert_eq!((f.id, f.method, f.status, &f.payload[..]), (9, 1, 0, &b"abc"[..]));
    }

    #[test]
    fn delay_and_compute_are_left_to_the_model() {
        let d = handle_request(Frame::request(1, Method::Delay, 1500u32.to_be_bytes().to_vec()));
        assert!(matches!(d, Reply::After { delay, .. } if delay == Duration::from_micros(1500)));
        let c = handle_request(Frame::request(42, Method::Compute, 1000u32.to_be_bytes().to_vec()));
        assert!(matches!(c, Reply::Compute { id: 42, rounds: 1000 }));
        assert_eq!(compute_reply(42, 1000).payload, 0x49e9dfcd6219dc1cu64.to_be_bytes());
    }

    /// The header's table has one row per model the binary can offer,
    /// in `models::MODELS`' order (libevent's row stays when it is not built).
    #[test]
    fn the_header_table_names_every_model() {
        let rows: Vec<&str> = include_str!("dispatch.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! | "))
            .filter_map(|l| l.split(' ').next())
            .filter(|name| *name != "model" && !name.starts_with('-'))
            .collect();
        let mut models: Vec<&str> = crate::models::MODELS.iter().map(|m| m.name).collect();
        if !cfg!(feature = "libevent") {
            models.push("libevent");
        }
        assert_eq!(rows, models, "dispatch.rs's table, against models::MODELS");
    }

    #[test]
    fn errors_keep_id_and_method_and_are_counted_once() {
        // This thread's count, not the process-wide one other tests bump.
        let counted = || stats::ERRORS_ON_THIS_THREAD.with(|n| n.get());
        let before = counted();
        let Reply::Now(f) = handle_request(Frame { id: 5, method: 77, ..Default::default() }) else { panic!() };
        assert_eq!((f.id, f.method, f.status), (5, 77, Status::UnknownMethod as u8));
        assert_eq!(counted() - before, 1, "one error response, one error counted");
        let Reply::Now(_) = handle_request(Frame::request(6, Method::Echo, vec![])) else { panic!() };
        assert_eq!(counted() - before, 1, "an answered ECHO is no error");
    }
}
