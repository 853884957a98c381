//! The classic libevent echo server's design (this project's seed: where the argument started), kept as a reference peer: one libevent 2.1
//! `event_base`, an `evconnlistener`, one `bufferevent` per connection.
//!
//! The event loop is C (`csrc/libevent_server.c`, built by `build.rs` with
//! the `libevent` feature) and links the system's libevent, so this model
//! measures libevent's own loop, buffers and timers. The protocol stays in
//! Rust, as for every model: C hands each connection's input bytes to
//! [`Connection::handle_input`], which decodes frames with `proto`, answers
//! through `dispatch`, and returns the bytes to write, the DELAYs to arm and
//! whether to close. C writes the bytes with `bufferevent_write`, arms one
//! `evtimer` per DELAY, and counts bytes through evbuffer callbacks.
//!
//! - DELAY: an evtimer on the loop; its answer may overtake later requests.
//! - COMPUTE: inline on the only loop thread, as the seed would.
//! - Raw mode: C moves the input evbuffer to the output, no Rust call.
//! - Answer order: **out of order** for DELAY (its evtimer fires after later
//!   requests were answered); ECHO and COMPUTE are answered as they are read.
//! - Flow control (`limits::LIBEVENT_LIMITS`, which the C file reads from a header
//!   that build.rs generates): a connection stops reading while its output
//!   limit is queued or its pending limit of DELAYs waits, until the client
//!   drains it.
//! - Accept failures (EMFILE...): logged rate-limited; accepting pauses for
//!   `limits::ACCEPT_PAUSE`.
//! - Shutdown: the hook writes an eventfd the loop watches; the loop breaks
//!   and C frees every connection.
//!
//! Trade-off: libevent's loop is lean and mature, and one thread serves
//! thousands of idle or I/O-bound connections cheaply. It uses one core, and
//! a long COMPUTE stalls every connection for its duration.
//!
//! Unsupported, compared with the other models: none of the protocol's
//! cases. The differences to know: a DELAY still pending when a connection
//! is reset, or when the server shuts down, is dropped with the connection;
//! after TOO_LARGE the server first answers the DELAYs read before it, then
//! sends FIN, discards input for at most `limits::LINGER`, and closes; and the model
//! exists only when the binary is built with `--features libevent`
//! (scripts/install-deps installs libevent).

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use proto::{Frame, Stop};

use crate::dispatch::{self, Reply};
use crate::limits::{self, ACCEPT_PAUSE, LIBEVENT_LIMITS};
use crate::log::RateLimited;
use crate::stats::COUNTERS;
use crate::{net, CommonOptions, Protocol, Shutdown};

/// DELAYs one connection may have on timers before it stops reading.
const MAX_PENDING_DELAYS: usize = match LIBEVENT_LIMITS.flow {
    Some(flow) => flow.pending_limit,
    None => panic!("the libevent model needs flow control"),
};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,
}

/// `struct iom_delay` in the C file: a DELAY to arm. C owns `frame` until it
/// hands it back to `delay_fire` or `delay_drop`.
#[repr(C)]
struct Delay {
    micros: u64,
    frame: *mut c_void,
}

/// `struct iom_step`: what [`Connection::handle_input`] made of the input.
#[repr(C)]
struct Step {
    consumed: usize,
    want: usize,
    out: *const u8,
    out_len: usize,
    delays: *const Delay,
    n_delays: usize,
    blocked: c_int,
    close: c_int,
}

/// `struct iom_callbacks`: how C calls back into Rust. C sees the
/// [`Server`], each [`Connection`] and each DELAY's [`Frame`] as `void *`.
#[repr(C)]
struct Callbacks {
    ctx: *const c_void,
    conn_open: extern "C" fn(*const c_void) -> *mut c_void,
    conn_close: unsafe extern "C" fn(*const c_void, *mut c_void),
    process: unsafe extern "C" fn(*mut c_void, *const u8, usize, usize, *mut Step),
    delay_fire: unsafe extern "C" fn(*mut c_void, *mut c_void, *mut *const u8, *mut usize),
    delay_drop: unsafe extern "C" fn(*mut c_void, *mut c_void),
    count: extern "C" fn(c_int, u64),
    accept_error: extern "C" fn(*const c_void, c_int) -> c_int,
    admit: extern "C" fn(*const c_void) -> c_int,
}

extern "C" {
    /// Serve `listen_fd` until `wake_fd` is readable; NULL or a static message.
    fn iom_ev_run(
        listen_fd: c_int,
        wake_fd: c_int,
        framed: c_int,
        partial_frame_timeout_ms: c_long,
        write_timeout_ms: c_long,
        cb: *const Callbacks,
    ) -> *const c_char;
}

/// What the callbacks share: the options that shape every connection.
struct Server {
    protocol: Protocol,
    max_frame: u32,
}

/// Run the libevent loop on this thread until shutdown.
pub fn run(listener: TcpListener, options: &Options, shutdown: Shutdown) -> io::Result<()> {
    // evconnlistener accepts until EAGAIN, so the socket must not block.
    listener.set_nonblocking(true)?;
    // SAFETY: eventfd has no preconditions; a valid result is a fresh fd we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    // The hook keeps the eventfd open as long as the Shutdown lives, so a
    // late trigger never writes to a closed (or reused) descriptor.
    let hook_fd = wake.clone();
    shutdown.on_trigger(move || {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to an fd the closure owns.
        unsafe { libc::write(hook_fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    });

    let server = Server { protocol: options.common.protocol, max_frame: options.common.max_frame };
    let callbacks = Callbacks {
        ctx: (&server as *const Server).cast(),
        conn_open,
        conn_close,
        process,
        delay_fire,
        delay_drop,
        count,
        accept_error,
        admit,
    };
    let framed = (server.protocol == Protocol::Framed) as c_int;
    // SAFETY: C takes ownership of the listening fd; `callbacks` and
    // `server` outlive the call, which returns only after the loop is freed.
    let (common, fd) = (&options.common, listener.into_raw_fd());
    let partial_ms = common.partial_frame_timeout_ms.min(c_long::MAX as u64) as c_long;
    let write_ms = common.write_timeout_ms.min(c_long::MAX as u64) as c_long;
    let err = unsafe { iom_ev_run(fd, wake.as_raw_fd(), framed, partial_ms, write_ms, &callbacks) };
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null result is one of the C file's static strings.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy();
    Err(io::Error::other(format!("libevent: {msg}")))
}

/// Rust's half of one framed connection; C keeps the socket and buffers.
struct Connection {
    max_frame: u32,
    /// Responses for C to write, valid until the next call.
    out: Vec<u8>,
    /// DELAYs for C to arm, valid until the next call.
    delays: Vec<Delay>,
    /// DELAYs armed and not yet fired or dropped.
    pending_delays: usize,
    /// Output bytes C has room for in this call.
    out_room: usize,
}

/// What one call to [`Connection::handle_input`] did, besides `out` and `delays`.
struct Handled {
    consumed: usize,
    want: usize,
    blocked: bool,
    close: bool,
}

impl Connection {
    fn new(max_frame: u32) -> Connection {
        Connection { max_frame, out: Vec::new(), delays: Vec::new(), pending_delays: 0, out_room: 0 }
    }

    /// Start a call: C has copied the last output and armed the last DELAYs.
    fn reset(&mut self) {
        self.out.clear();
        limits::shrink_if_idle(&mut self.out); // a 1 MiB echo should not pin 1 MiB per idle connection
        self.delays.clear();
    }

    /// Answer every whole request at the front of `input`
    /// (`proto::answer_frames`) while there is room: `out_room` output
    /// bytes, and DELAY slots.
    fn handle_input(&mut self, input: &[u8], out_room: usize) -> Handled {
        self.reset();
        self.out_room = out_room;
        let done = proto::answer_frames(input, self.max_frame, self);
        match done.stop {
            Stop::Partial { need } => Handled { consumed: done.used, want: need, blocked: false, close: false },
            // A whole frame waits: C calls again once output drains or a DELAY fires.
            Stop::Full => Handled { consumed: done.used, want: 0, blocked: true, close: false },
            Stop::TooLarge(e) => {
                dispatch::queue_reply(&dispatch::too_large_reply(&e), &mut self.out);
                Handled { consumed: input.len(), want: 0, blocked: false, close: true }
            }
        }
    }

    /// A DELAY's timer fired: its response becomes the output.
    fn handle_delay_fired(&mut self, frame: Box<Frame>) {
        self.reset();
        self.pending_delays -= 1;
        dispatch::queue_reply(&frame, &mut self.out);
    }
}

/// What libevent's Rust side does with each request `proto::answer_frames`
/// decodes: a DELAY becomes an evtimer for C to arm.
impl proto::Answer for Connection {
    fn full(&self) -> bool {
        self.out.len() >= self.out_room || self.pending_delays >= MAX_PENDING_DELAYS
    }

    fn answer(&mut self, req: Frame) {
        match dispatch::handle_request(req) {
            Reply::Now(frame) => dispatch::queue_reply(&frame, &mut self.out),
            Reply::After { delay, frame } => {
                self.pending_delays += 1;
                let micros = delay.as_micros().try_into().unwrap_or(u64::MAX);
                self.delays.push(Delay { micros, frame: Box::into_raw(Box::new(frame)).cast() });
            }
            // Inline on the loop: every other connection waits meanwhile.
            Reply::Compute { id, rounds } => dispatch::queue_reply(&dispatch::compute_reply(id, rounds), &mut self.out),
        }
    }
}

// The callbacks below are what C calls. Each is a thin trampoline.

extern "C" fn conn_open(server: *const c_void) -> *mut c_void {
    COUNTERS.accepted();
    // SAFETY: `server` is the `Server` in `run`, alive for the whole loop.
    let server = unsafe { &*server.cast::<Server>() };
    match server.protocol {
        Protocol::Framed => Box::into_raw(Box::new(Connection::new(server.max_frame))).cast(),
        Protocol::Raw => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn conn_close(_server: *const c_void, conn: *mut c_void) {
    COUNTERS.closed();
    if !conn.is_null() {
        // SAFETY: `conn` came from `conn_open` and C frees each once, last.
        drop(unsafe { Box::from_raw(conn.cast::<Connection>()) });
    }
}

unsafe extern "C" fn process(conn: *mut c_void, input: *const u8, len: usize, out_room: usize, step: *mut Step) {
    // SAFETY: C passes a live connection, `len` contiguous input bytes
    // (evbuffer_pullup) and a Step to fill; none alias each other.
    let (conn, input, step) =
        unsafe { (&mut *conn.cast::<Connection>(), std::slice::from_raw_parts(input, len), &mut *step) };
    let p = conn.handle_input(input, out_room);
    *step = Step {
        consumed: p.consumed,
        want: p.want,
        out: conn.out.as_ptr(),
        out_len: conn.out.len(),
        delays: conn.delays.as_ptr(),
        n_delays: conn.delays.len(),
        blocked: p.blocked as c_int,
        close: p.close as c_int,
    };
}

unsafe extern "C" fn delay_fire(conn: *mut c_void, frame: *mut c_void, out: *mut *const u8, out_len: *mut usize) {
    // SAFETY: `frame` came from `handle_request` and C hands it back once;
    // `conn` is live; `out` and `out_len` point to C locals.
    unsafe {
        let conn = &mut *conn.cast::<Connection>();
        conn.handle_delay_fired(Box::from_raw(frame.cast::<Frame>()));
        (*out, *out_len) = (conn.out.as_ptr(), conn.out.len());
    }
}

unsafe extern "C" fn delay_drop(conn: *mut c_void, frame: *mut c_void) {
    // SAFETY: as in `delay_fire`; the connection is closing, nobody is answered.
    unsafe {
        (*conn.cast::<Connection>()).pending_delays -= 1;
        drop(Box::from_raw(frame.cast::<Frame>()));
    }
}

extern "C" fn count(what: c_int, n: u64) {
    match what {
        0 => COUNTERS.read(n as usize),
        1 => COUNTERS.wrote(n as usize),
        3 => COUNTERS.partial_frame_timeout(),
        4 => COUNTERS.write_timeout(),
        5 => COUNTERS.error(),
        _ => COUNTERS.answered(n),
    }
}

/// Whether C may keep a connection it just accepted (zero: close it, past
/// `--max-connections`; counted as refused).
extern "C" fn admit(_server: *const c_void) -> c_int {
    COUNTERS.admit() as c_int
}

/// Log a failed accept; nonzero asks C to stop accepting for ACCEPT_PAUSE.
extern "C" fn accept_error(_server: *const c_void, errno: c_int) -> c_int {
    static LOG: RateLimited = RateLimited::new("libevent: accept", Duration::from_secs(1));
    let e = io::Error::from_raw_os_error(errno);
    if net::is_per_connection(&e) {
        return 0;
    }
    LOG.log(format_args!("{e}; not accepting for {ACCEPT_PAUSE:?}"));
    1
}
