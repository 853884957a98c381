//! The iomodels wire protocol, version 1 (`shared/PROTOCOL.md`), with no I/O.
//!
//! Every server model and the load generator speak through this crate, so
//! that a difference in their numbers is a difference in how they do I/O,
//! never in how they parse bytes.
//!
//! - [`decode`] looks at a byte buffer and returns a whole [`Frame`] plus the
//!   number of bytes it used, or `Ok(None)` while the frame is still partial.
//! - [`answer_frames`] decodes every whole request in a buffer and hands
//!   each to the caller's [`Answer`]: the one decode-and-answer step of
//!   every server model, which differ only in what `Answer` does.
//! - [`encode`] appends a frame to an output buffer.
//! - [`compute`] is the CPU-bound work behind the `COMPUTE` method.
//! - [`Stats`] is the JSON record behind the `STATS` method (with
//!   [`AdminThread`], the admin thread's own share, left out of it).
//!
//! A frame is a 16-byte header followed by `len` payload bytes, big-endian:
//!
//! ```text
//! 0        4                12       13       14       16
//! +--------+----------------+--------+--------+--------+----------------+
//! |  len   |       id       | method | status |reserved| payload (len)  |
//! +--------+----------------+--------+--------+--------+----------------+
//! ```

use serde::{Deserialize, Serialize};

/// Size of the fixed frame header in bytes.
pub const HEADER_LEN: usize = 16;
/// The servers' default maximum payload size (1 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 1 << 20;
/// The largest `DELAY` a request may ask for, in microseconds (10 s).
pub const MAX_DELAY_US: u32 = 10_000_000;
/// The largest `COMPUTE` a request may ask for, in rounds.
pub const MAX_ROUNDS: u32 = 100_000_000;

/// Method codes (byte 12 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Method {
    Echo = 1,
    Delay = 2,
    Compute = 3,
    Stats = 4,
}

impl Method {
    /// The method for a code, or `None` for a code that is not in the table.
    pub fn from_code(code: u8) -> Option<Method> {
        match code {
            1 => Some(Method::Echo),
            2 => Some(Method::Delay),
            3 => Some(Method::Compute),
            4 => Some(Method::Stats),
            _ => None,
        }
    }

    /// The protocol's name for the method, as in PROTOCOL.md.
    pub fn name(self) -> &'static str {
        match self {
            Method::Echo => "ECHO",
            Method::Delay => "DELAY",
            Method::Compute => "COMPUTE",
            Method::Stats => "STATS",
        }
    }
}

/// Status codes (byte 13 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    UnknownMethod = 1,
    BadRequest = 2,
    TooLarge = 3,
    Busy = 4,
}

impl Status {
    /// The status for a code, or `None` for a code that is not in the table.
    pub fn from_code(code: u8) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::UnknownMethod),
            2 => Some(Status::BadRequest),
            3 => Some(Status::TooLarge),
            4 => Some(Status::Busy),
            _ => None,
        }
    }

    /// The protocol's name for the status, as in PROTOCOL.md.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::UnknownMethod => "UNKNOWN_METHOD",
            Status::BadRequest => "BAD_REQUEST",
            Status::TooLarge => "TOO_LARGE",
            Status::Busy => "BUSY",
        }
    }
}

/// One frame, request or response; both have the same layout.
///
/// `method` and `status` stay raw bytes, because a request may carry a code
/// that is not in the table and the server must still answer it (with
/// `UNKNOWN_METHOD` or `BAD_REQUEST`), copying the code back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub id: u64,
    pub method: u8,
    pub status: u8,
    pub reserved: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A request with status and reserved set to 0, as PROTOCOL.md requires.
    pub fn request(id: u64, method: Method, payload: Vec<u8>) -> Frame {
        Frame { id, method: method as u8, status: 0, reserved: 0, payload }
    }

    /// A response to a request with this id and method code.
    pub fn response(id: u64, method: u8, status: Status, payload: Vec<u8>) -> Frame {
        Frame { id, method, status: status as u8, reserved: 0, payload }
    }

    /// Bytes this frame takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// What [`decode`] cannot turn into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The header announces a payload larger than the limit. The payload
    /// cannot be skipped safely, so the peer answers `TOO_LARGE` with the
    /// header's id and method, then closes the connection.
    #[error("frame id {id} announces {len} payload bytes, over the limit of {max}")]
    TooLarge { id: u64, method: u8, len: u32, max: u32 },
}

/// The fixed 16-byte header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub id: u64,
    pub method: u8,
    pub status: u8,
    pub reserved: u16,
}

impl Header {
    /// Parse the first 16 bytes of `buf`, or `None` if there are fewer.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            len: u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
            id: u64::from_be_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]),
            method: h[12],
            status: h[13],
            reserved: u16::from_be_bytes([h[14], h[15]]),
        })
    }
}

/// Decode one frame from the front of `buf`, with the default 1 MiB limit.
///
/// Returns `Ok(Some((frame, used)))` for a whole frame that took `used`
/// bytes, `Ok(None)` when more bytes are needed, and `Err` for a header that
/// can never become a valid frame.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, Error> {
    decode_with_limit(buf, DEFAULT_MAX_FRAME)
}

/// [`decode`] with a payload limit of `max_frame` bytes.
///
/// The limit is checked on the header alone, before any payload arrives, so
/// a decoder never holds (or allocates) more than `max_frame` payload bytes.
pub fn decode_with_limit(buf: &[u8], max_frame: u32) -> Result<Option<(Frame, usize)>, Error> {
    let Some(h) = Header::parse(buf) else {
        return Ok(None);
    };
    if h.len > max_frame {
        return Err(Error::TooLarge { id: h.id, method: h.method, len: h.len, max: max_frame });
    }
    let total = HEADER_LEN + h.len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let frame = Frame {
        id: h.id,
        method: h.method,
        status: h.status,
        reserved: h.reserved,
        payload: buf[HEADER_LEN..total].to_vec(),
    };
    Ok(Some((frame, total)))
}

/// How many bytes the frame at the front of `buf` takes in all, header
/// included, as far as its header tells: [`HEADER_LEN`] while the header
/// is partial, or when it announces more than `max_frame` (the frame
/// [`decode_with_limit`] refuses as soon as its header is there).
pub fn frame_len(buf: &[u8], max_frame: u32) -> usize {
    match Header::parse(buf) {
        Some(h) if h.len <= max_frame => HEADER_LEN + h.len as usize,
        _ => HEADER_LEN,
    }
}

/// What a server does with each request [`answer_frames`] decodes: the
/// one part of serving a connection's bytes in which server models differ
/// (who computes, when a DELAY's answer leaves, in order or not).
pub trait Answer {
    /// Flow control: `true` once no more requests may be taken now; the
    /// rest of the bytes wait, unparsed, until the caller tries again.
    fn full(&self) -> bool {
        false
    }

    /// Take one request: answer it now, or arrange for its answer.
    fn answer(&mut self, request: Frame);
}

/// Where [`answer_frames`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The rest is the start of a frame `need` bytes long in all (see
    /// [`frame_len`]), or nothing: read more.
    Partial { need: usize },
    /// [`Answer::full`] said stop, with a whole frame waiting.
    Full,
    /// A header announced too large a payload. The payload cannot be
    /// skipped, so nothing after it can be parsed: answer `TOO_LARGE` for
    /// it and close (PROTOCOL.md).
    TooLarge(Error),
}

/// What [`answer_frames`] did: the bytes it used (whole frames), and why
/// it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub used: usize,
    pub stop: Stop,
}

/// Decode the requests at the front of `data` and hand each to `to`,
/// until the rest is a partial frame, `to` is full, or a header is too
/// large. Every server model calls this once per batch of bytes read; what
/// is not `used` stays with the caller for the next call.
pub fn answer_frames(data: &[u8], max_frame: u32, to: &mut impl Answer) -> Answered {
    let mut used = 0;
    loop {
        let rest = &data[used..];
        let need = frame_len(rest, max_frame);
        if rest.len() < need {
            return Answered { used, stop: Stop::Partial { need } };
        }
        if to.full() {
            return Answered { used, stop: Stop::Full };
        }
        match decode_with_limit(rest, max_frame) {
            Ok(Some((request, n))) => {
                used += n;
                to.answer(request);
            }
            Ok(None) => return Answered { used, stop: Stop::Partial { need } }, // not reached: `need` is there
            Err(e) => return Answered { used, stop: Stop::TooLarge(e) },
        }
    }
}

/// Append `frame` to `out` in wire format.
///
/// # Panics
/// If the payload is longer than `u32::MAX` bytes, which no caller of this
/// crate can build within the protocol's limits.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    encode_parts(frame.id, frame.method, frame.status, &frame.payload, out);
}

/// Append a frame built from its parts, without building a [`Frame`] first.
/// [`encode`] writes every frame through it; the load generator builds its
/// requests with it straight from their payload buffers, and tests build
/// frames with any header fields from it.
pub fn encode_parts(id: u64, method: u8, status: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payload longer than u32::MAX");
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.push(method);
    out.push(status);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `compute(id, rounds)` from PROTOCOL.md: xorshift64 seeded from the id.
pub fn compute(id: u64, rounds: u32) -> u64 {
    let mut x = id ^ 0x9E37_79B9_7F4A_7C15;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// What a valid request asks a server to do, once its header and payload
/// have been checked. See [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Echo,
    /// Answer with an empty OK no earlier than this many microseconds.
    Delay {
        micros: u32,
    },
    /// Answer with the 8-byte result of [`compute`]`(id, rounds)`.
    Compute {
        rounds: u32,
    },
    Stats,
}

/// Check a request frame against PROTOCOL.md and say what it asks for, or
/// which error status it deserves (with a short message for the payload).
///
/// This is the one place where request validation lives, so that every
/// server model rejects exactly the same inputs.
pub fn classify(frame: &Frame) -> Result<Request, (Status, &'static str)> {
    let Some(method) = Method::from_code(frame.method) else {
        return Err((Status::UnknownMethod, "unknown method"));
    };
    if frame.status != 0 {
        return Err((Status::BadRequest, "request status must be 0"));
    }
    if frame.reserved != 0 {
        return Err((Status::BadRequest, "reserved must be 0"));
    }
    let u32_arg = |max: u32| -> Result<u32, (Status, &'static str)> {
        let bytes: [u8; 4] =
            frame.payload.as_slice().try_into().map_err(|_| (Status::BadRequest, "payload must be exactly 4 bytes"))?;
        let v = u32::from_be_bytes(bytes);
        if v > max {
            return Err((Status::BadRequest, "argument out of range"));
        }
        Ok(v)
    };
    match method {
        Method::Echo => Ok(Request::Echo),
        Method::Delay => Ok(Request::Delay { micros: u32_arg(MAX_DELAY_US)? }),
        Method::Compute => Ok(Request::Compute { rounds: u32_arg(MAX_ROUNDS)? }),
        Method::Stats if frame.payload.is_empty() => Ok(Request::Stats),
        Method::Stats => Err((Status::BadRequest, "STATS takes an empty payload")),
    }
}

/// The `STATS` payload: a JSON object with at least these fields.
///
/// Counters are totals since the process started; a client takes two
/// snapshots and subtracts. CPU and context switches come from
/// `getrusage(RUSAGE_SELF)`, so they include threads that have exited.
///
/// `user_us`, `sys_us`, the context switches and `syscalls` are the whole
/// process's, as PROTOCOL.md words them. A server that reports its admin
/// thread's own use in [`Stats::admin`] lets a client leave the instrument
/// out: [`Stats::less_admin`] takes it away, so that reading STATS once a
/// second does not show up as the server's cost.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub model: String,
    pub pid: u32,
    pub uptime_us: u64,
    pub threads: u64,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub user_us: u64,
    pub sys_us: u64,
    pub voluntary_ctxt_switches: u64,
    pub involuntary_ctxt_switches: u64,
    pub rss_bytes: u64,
    /// This process's own peak resident memory: `VmHWM` of
    /// /proc/self/status ([`peak_rss_from_status`]), not `ru_maxrss`, which
    /// a process inherits from its parent across fork and exec.
    pub max_rss_bytes: u64,
    /// The git revision the server was built from (`servers --version`):
    /// 12 hex digits of HEAD, `-dirty` when its tree had changes, or
    /// "unknown (no git)". An extra field; absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// System calls made by the whole process since it started, where the
    /// server can count them (a perf counter on `raw_syscalls:sys_enter`);
    /// absent otherwise. An extra field: PROTOCOL.md asks for "at least"
    /// its fields, and older readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<u64>,
    /// Of those, the calls that wait (epoll_wait and friends, poll, select,
    /// futex): their count per request depends on timing, the others' on
    /// the code. Absent where `syscalls` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_wait: Option<u64>,
    /// Connections accepted and closed at once because the server's
    /// connection limit (`--max-connections`) was open. An extra field,
    /// like the two below: absent from servers that do not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_refused: Option<u64>,
    /// Connections closed because a frame that had started stopped
    /// arriving for longer than the server's partial-frame timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_frame_timeouts: Option<u64>,
    /// Connections closed because their answers could not be written for
    /// longer than the server's write timeout (a client that never reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeouts: Option<u64>,
    /// Why `syscalls` is absent, in words: `not asked (--count-syscalls)`
    /// (counting is off unless asked: it puts every system call on the
    /// machine on the kernel's traced path), or what stopped the server
    /// counting. Absent where `syscalls` is there, and from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_not_counted: Option<String>,
    /// The admin thread that answers STATS: whether it runs at real-time
    /// priority, and its own cost, which the fields above include (see
    /// [`Stats::less_admin`]). An extra field, absent from servers that do
    /// not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminThread>,
}

/// The admin thread of a server, as its `STATS` reports it.
///
/// Its figures are totals since the thread started, in the units of the
/// same-named [`Stats`] fields: the part of the process's totals that was
/// the instrument's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdminThread {
    /// True when it runs at real-time priority (SCHED_FIFO), so that no
    /// busy thread of the server can keep it from answering.
    pub realtime: bool,
    /// Its scheduling policy in words (`SCHED_FIFO 1`), or why it is not
    /// real-time (`SCHED_OTHER: sched_setscheduler: Operation not permitted`).
    pub priority: String,
    pub user_us: u64,
    pub sys_us: u64,
    pub voluntary_ctxt_switches: u64,
    pub involuntary_ctxt_switches: u64,
    /// Its own system calls, where the server counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_wait: Option<u64>,
    /// Admin connections closed at once because the port had its most
    /// clients already (absent from older servers: 0).
    #[serde(default)]
    pub clients_refused: u64,
    /// Admin connections closed after their idle timeout.
    #[serde(default)]
    pub clients_idle_closed: u64,
    /// Requests whose answer was held back because their client asked
    /// faster than the admin port's rate limit.
    #[serde(default)]
    pub requests_delayed: u64,
}

/// The `VmHWM:` line of a /proc/PID/status text, in bytes: the peak
/// resident memory of that process's own address space. Text in, number
/// out (the caller reads the file), shared by the servers' STATS and the
/// load generator's own figures so both mean the same thing.
pub fn peak_rss_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

impl Stats {
    /// The server's own use: the whole process's less its admin thread's
    /// (when it reports it; else unchanged). Context switches and system
    /// calls are subtracted field by field. CPU time is subtracted in sum
    /// and split in the process's own user:sys proportion: the kernel splits
    /// a thread's run time by its own sampled ticks, so a thread that took
    /// one tick in user mode reports all its time as user while the process
    /// may report most of its time as sys, and field-by-field differences
    /// would go negative. Calls the admin thread could not count itself are
    /// not subtracted.
    pub fn less_admin(&self) -> Stats {
        let Some(a) = &self.admin else { return self.clone() };
        let total = self.user_us + self.sys_us;
        let left = total.saturating_sub(a.user_us + a.sys_us);
        let sys = if total == 0 { 0 } else { (left as u128 * self.sys_us as u128 / total as u128) as u64 };
        let calls = |all: Option<u64>, mine: Option<u64>| match (all, mine, a.syscalls) {
            (Some(all), Some(mine), Some(_)) => Some(all.saturating_sub(mine)),
            (all, _, _) => all,
        };
        Stats {
            user_us: left - sys,
            sys_us: sys,
            voluntary_ctxt_switches: self.voluntary_ctxt_switches.saturating_sub(a.voluntary_ctxt_switches),
            involuntary_ctxt_switches: self.involuntary_ctxt_switches.saturating_sub(a.involuntary_ctxt_switches),
            syscalls: calls(self.syscalls, a.syscalls),
            syscalls_wait: calls(self.syscalls_wait, a.syscalls_wait),
            ..self.clone()
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("Stats always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Stats, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::request(0, Method::Echo, vec![]),
            Frame::request(1, Method::Echo, b"hello".to_vec()),
            Frame::request(u64::MAX, Method::Delay, 300_000u32.to_be_bytes().to_vec()),
            Frame::request(42, Method::Compute, 1000u32.to_be_bytes().to_vec()),
            Frame::request(7, Method::Stats, vec![]),
            Frame::response(9, 3, Status::Ok, (0..=255u8).collect()),
            Frame::response(10, 99, Status::UnknownMethod, b"unknown method".to_vec()),
        ]
    }

    fn encoded(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        frames.iter().for_each(|f| encode(f, &mut out));
        out
    }

    /// Takes requests until told it is full after `room` of them.
    struct Collect {
        got: Vec<u64>,
        room: usize,
    }

    impl Answer for Collect {
        fn full(&self) -> bool {
            self.got.len() >= self.room
        }
        fn answer(&mut self, request: Frame) {
            self.got.push(request.id);
        }
    }

    #[test]
    fn answer_frames_stops_at_a_partial_frame_when_full_and_at_too_large() {
        let mut bytes = encoded(&sample_frames()[..3]);
        let whole = bytes.len();
        bytes.extend_from_slice(&encoded(&sample_frames()[3..4])[..HEADER_LEN + 2]);
        let mut to = Collect { got: vec![], room: usize::MAX };
        let done = answer_frames(&bytes, DEFAULT_MAX_FRAME, &mut to);
        assert_eq!(to.got, [0, 1, u64::MAX]);
        assert_eq!(done, Answered { used: whole, stop: Stop::Partial { need: HEADER_LEN + 4 } });
        assert_eq!(answer_frames(&[], 0, &mut to).stop, Stop::Partial { need: HEADER_LEN });

        let mut to = Collect { got: vec![], room: 2 };
        let done = answer_frames(&bytes, DEFAULT_MAX_FRAME, &mut to);
        assert_eq!((to.got.len(), done.stop), (2, Stop::Full));
        assert_eq!(done.used, sample_frames()[..2].iter().map(Frame::wire_len).sum::<usize>());

        let mut to = Collect { got: vec![], room: usize::MAX };
        let done = answer_frames(&bytes, 4, &mut to); // "hello" is over 4 bytes
        assert_eq!((to.got, done.used), (vec![0], HEADER_LEN));
        assert!(matches!(done.stop, Stop::TooLarge(Error::TooLarge { id: 1, len: 5, max: 4, .. })));
    }

    /// Every status's name and code is a row of PROTOCOL.md's status table.
    #[test]
    fn status_names_are_the_protocols() {
        let spec = include_str!("../PROTOCOL.md");
        for code in 0..=u8::MAX {
            let Some(status) = Status::from_code(code) else { continue };
            let row = format!("| {code}    | `{}`", status.name());
            assert!(spec.contains(&row), "PROTOCOL.md has no row {row:?}");
        }
    }

    #[test]
    fn compute_test_vectors() {
        assert_eq!(compute(0, 0), 0x9e3779b97f4a7c15);
        assert_eq!(compute(1, 1), 0xdc1b77ae4b716dec);
        assert_eq!(compute(42, 1000), 0x49e9dfcd6219dc1c);
        assert_eq!(compute(0xffffffffffffffff, 1_000_000), 0xeca54ac561046bca);
    }

    #[test]
    fn header_layout_is_big_endian_as_documented() {
        let mut out = Vec::new();
        encode(&Frame::request(0x0102030405060708, Method::Compute, vec![0xAA, 0xBB]), &mut out);
        assert_eq!(
            out,
            [0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 3, 0, 0, 0, 0xAA, 0xBB],
            "len, id, method, status, reserved, payload"
        );
    }

    #[test]
    fn round_trip() {
        for f in sample_frames() {
            let mut out = Vec::new();
            encode(&f, &mut out);
            assert_eq!(out.len(), f.wire_len());
            assert_eq!(decode(&out), Ok(Some((f.clone(), out.len()))));
        }
    }

    #[test]
    fn frames_fed_one_byte_at_a_time() {
        let mut wire = Vec::new();
        let frames = sample_frames();
        for f in &frames {
            encode(f, &mut wire);
        }
        // A decoder's buffer grows by one byte per "read"; it must answer
        // Ok(None) until a frame is whole, then yield it exactly once.
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in &wire {
            buf.push(b);
            while let Some((f, used)) = decode(&buf).unwrap() {
                buf.drain(..used);
                got.push(f);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, frames);
    }

    #[test]
    fn frames_split_at_every_offset() {
        for f in sample_frames() {
            let mut wire = Vec::new();
            encode(&f, &mut wire);
            for cut in 0..wire.len() {
                assert_eq!(decode(&wire[..cut]), Ok(None), "cut at {cut} of {}", wire.len());
                let mut buf = wire[..cut].to_vec();
                buf.extend_from_slice(&wire[cut..]);
                assert_eq!(decode(&buf), Ok(Some((f.clone(), wire.len()))));
            }
        }
    }

    #[test]
    fn trailing_bytes_are_left_for_the_next_frame() {
        let mut wire = Vec::new();
        encode(&Frame::request(1, Method::Echo, b"ab".to_vec()), &mut wire);
        wire.extend_from_slice(&[0, 0]);
        let (_, used) = decode(&wire).unwrap().unwrap();
        assert_eq!(used, 18);
    }

    #[test]
    fn too_large_is_refused_from_the_header_alone() {
        let mut wire = Vec::new();
        encode_parts(5, 1, 0, &[], &mut wire);
        wire[..4].copy_from_slice(&(DEFAULT_MAX_FRAME + 1).to_be_bytes());
        // Only the header: no payload has arrived, yet the answer is final.
        assert_eq!(
            decode(&wire),
            Err(Error::TooLarge { id: 5, method: 1, len: DEFAULT_MAX_FRAME + 1, max: DEFAULT_MAX_FRAME })
        );
        wire[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&wire), Err(Error::TooLarge { len: u32::MAX, .. })));
        // Exactly at the limit is fine, just partial.
        wire[..4].copy_from_slice(&DEFAULT_MAX_FRAME.to_be_bytes());
        assert_eq!(decode(&wire), Ok(None));
        assert!(matches!(decode_with_limit(&wire, 10), Err(Error::TooLarge { max: 10, .. })));
    }

    fn raw(method: u8, status: u8, reserved: u16, payload: &[u8]) -> Frame {
        Frame { id: 3, method, status, reserved, payload: payload.to_vec() }
    }

    #[test]
    fn every_malformed_header_is_classified() {
        use Status::{BadRequest, UnknownMethod};
        let four = 5u32.to_be_bytes();
        let cases: &[(Frame, Status)] = &[
            (raw(0, 0, 0, b""), UnknownMethod),
            (raw(5, 0, 0, b""), UnknownMethod),
            (raw(255, 0, 0, b""), UnknownMethod),
            (raw(1, 1, 0, b"x"), BadRequest),
            (raw(1, 0, 1, b"x"), BadRequest),
            (raw(1, 0, 0x8000, b""), BadRequest),
            (raw(2, 0, 0, b""), BadRequest),
            (raw(2, 0, 0, &[0, 0, 0]), BadRequest),
            (raw(2, 0, 0, &[0, 0, 0, 0, 0]), BadRequest),
            (raw(2, 0, 0, &(MAX_DELAY_US + 1).to_be_bytes()), BadRequest),
            (raw(3, 0, 0, b"abc"), BadRequest),
            (raw(3, 0, 0, &(MAX_ROUNDS + 1).to_be_bytes()), BadRequest),
            (raw(4, 0, 0, b"x"), BadRequest),
            (raw(4, 2, 0, b""), BadRequest),
        ];
        for (f, want) in cases {
            assert_eq!(classify(f).map_err(|e| e.0), Err(*want), "{f:?}");
        }
        assert_eq!(classify(&raw(1, 0, 0, b"anything")), Ok(Request::Echo));
        assert_eq!(classify(&raw(2, 0, 0, &four)), Ok(Request::Delay { micros: 5 }));
        assert_eq!(classify(&raw(2, 0, 0, &MAX_DELAY_US.to_be_bytes())), Ok(Request::Delay { micros: MAX_DELAY_US }));
        assert_eq!(classify(&raw(3, 0, 0, &MAX_ROUNDS.to_be_bytes())), Ok(Request::Compute { rounds: MAX_ROUNDS }));
        assert_eq!(classify(&raw(4, 0, 0, b"")), Ok(Request::Stats));
    }

    #[test]
    fn codes_round_trip() {
        for c in 0..=255u8 {
            if let Some(m) = Method::from_code(c) {
                assert_eq!(m as u8, c);
            }
            if let Some(s) = Status::from_code(c) {
                assert_eq!(s as u8, c);
            }
        }
        assert_eq!(Method::from_code(4), Some(Method::Stats));
        assert_eq!(Status::from_code(5), None);
    }

    #[test]
    fn stats_json_has_every_field() {
        let s = Stats { model: "m".into(), pid: 1, requests: 5, ..Default::default() };
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        for k in [
            "model",
            "pid",
            "uptime_us",
            "threads",
            "connections_open",
            "connections_accepted",
            "requests",
            "bytes_in",
            "bytes_out",
            "errors",
            "user_us",
            "sys_us",
            "voluntary_ctxt_switches",
            "involuntary_ctxt_switches",
            "rss_bytes",
            "max_rss_bytes",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(Stats::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn less_admin_takes_the_instruments_use_out() {
        let admin = AdminThread {
            realtime: true,
            priority: "SCHED_FIFO 1".into(),
            // Its own split (all user) need not match the process's.
            user_us: 400,
            sys_us: 0,
            voluntary_ctxt_switches: 10,
            involuntary_ctxt_switches: 20,
            syscalls: Some(300),
            syscalls_wait: Some(20),
            ..Default::default()
        };
        let process = Stats {
            user_us: 1_000,
            sys_us: 3_000,
            voluntary_ctxt_switches: 50,
            involuntary_ctxt_switches: 100,
            syscalls: Some(900),
            syscalls_wait: Some(100),
            admin: Some(admin.clone()),
            ..Default::default()
        };
        let own = process.less_admin();
        assert_eq!(own.user_us + own.sys_us, 3_600, "CPU time is exact in sum");
        assert_eq!((own.user_us, own.sys_us), (900, 2_700), "split as the process's own, 1:3");
        assert_eq!((own.voluntary_ctxt_switches, own.involuntary_ctxt_switches), (40, 80));
        assert_eq!((own.syscalls, own.syscalls_wait), (Some(600), Some(80)));
        let without = Stats { admin: None, ..process.clone() };
        assert_eq!(without.less_admin(), without, "nothing reported, nothing taken");
        // Calls the admin thread did not count are not subtracted.
        let uncounted = AdminThread { syscalls: None, syscalls_wait: None, ..admin };
        let s = Stats { admin: Some(uncounted), ..process }.less_admin();
        assert_eq!((s.syscalls, s.syscalls_wait), (Some(900), Some(100)));
    }

    #[test]
    fn stats_admin_is_optional_and_round_trips() {
        // A reader of older servers (no `admin`) and one of newer servers
        // both get what was sent.
        let old = br#"{"model":"m","pid":1,"uptime_us":0,"threads":1,"connections_open":0,
            "connections_accepted":0,"requests":0,"bytes_in":0,"bytes_out":0,"errors":0,"user_us":0,
            "sys_us":0,"voluntary_ctxt_switches":0,"involuntary_ctxt_switches":0,"rss_bytes":0,"max_rss_bytes":0}"#;
        assert_eq!(Stats::from_json(old).unwrap().admin, None);
        assert_eq!(Stats::from_json(old).unwrap().syscalls_not_counted, None);
        let uncounted =
            Stats { syscalls_not_counted: Some("not asked (--count-syscalls)".into()), ..Default::default() };
        assert_eq!(Stats::from_json(&uncounted.to_json()).unwrap(), uncounted);
        let admin = AdminThread { realtime: true, priority: "SCHED_FIFO 1".into(), user_us: 7, ..Default::default() };
        let s = Stats { admin: Some(admin), ..Default::default() };
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(v["admin"]["realtime"], true);
        assert_eq!(Stats::from_json(&s.to_json()).unwrap(), s);
        // An `admin` from a server that predates the admin port's bounds
        // reads as none of them at work.
        let older_admin = br#"{"model":"m","pid":1,"uptime_us":0,"threads":1,"connections_open":0,
            "connections_accepted":0,"requests":0,"bytes_in":0,"bytes_out":0,"errors":0,"user_us":0,
            "sys_us":0,"voluntary_ctxt_switches":0,"involuntary_ctxt_switches":0,"rss_bytes":0,"max_rss_bytes":0,
            "admin":{"realtime":false,"priority":"SCHED_OTHER","user_us":1,"sys_us":0,
            "voluntary_ctxt_switches":0,"involuntary_ctxt_switches":0}}"#;
        let a = Stats::from_json(older_admin).unwrap().admin.unwrap();
        assert_eq!((a.clients_refused, a.clients_idle_closed, a.requests_delayed), (0, 0, 0));
        let bounded =
            AdminThread { clients_refused: 2, clients_idle_closed: 3, requests_delayed: 4, ..Default::default() };
        let s = Stats { admin: Some(bounded), ..Default::default() };
        assert_eq!(Stats::from_json(&s.to_json()).unwrap(), s);
    }

    proptest::proptest! {
        // Arbitrary bytes in arbitrary splits: never a panic, never a frame
        // over the limit, and the same frames whatever the split.
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                                splits in proptest::collection::vec(0usize..600, 0..8)) {
            let max = 64;
            let whole = drain(&bytes, &[], max);
            let mut cuts = splits.clone();
            cuts.sort();
            proptest::prop_assert_eq!(drain(&bytes, &cuts, max), whole);
        }
    }

    /// Feed `bytes` in pieces cut at `cuts`, decoding greedily; return the
    /// frames and the first error, if any.
    fn drain(bytes: &[u8], cuts: &[usize], max: u32) -> (Vec<Frame>, Option<Error>) {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let end = end.min(bytes.len()).max(start);
            buf.extend_from_slice(&bytes[start..end]);
            start = end;
            loop {
                match decode_with_limit(&buf, max) {
                    Ok(Some((f, used))) => {
                        assert!(f.payload.len() <= max as usize);
                        buf.drain(..used);
                        out.push(f);
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    }
}

#[cfg(test)]
mod peak_rss_tests {
    use super::peak_rss_from_status;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tservers\nVmPeak:\t  20000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(peak_rss_from_status(status), Some(1536 * 1024));
        assert_eq!(peak_rss_from_status("Name:\tkthreadd\n"), None, "kernel threads have no VmHWM");
    }
}

#[cfg(test)]
mod spec_copy {
    /// `proto/PROTOCOL.md` is the repository's copy of the fixed contract in
    /// `shared/PROTOCOL.md` (beside the checkout); it must not drift.
    #[test]
    fn protocol_copy_matches_shared() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let copy = std::fs::read_to_string(here.join("PROTOCOL.md")).expect("proto/PROTOCOL.md");
        match std::fs::read_to_string(here.join("../../shared/PROTOCOL.md")) {
            Ok(shared) => assert_eq!(copy, shared, "proto/PROTOCOL.md differs from shared/PROTOCOL.md"),
            Err(_) => assert!(copy.contains("iomodels wire protocol, version 1")),
        }
    }
}
