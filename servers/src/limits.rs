//! Every model's limits, in one table: how much a connection may have
//! queued before it stops reading, how much one read asks for, how long a
//! close lingers. The suite compares the models, so a difference between
//! two of them is either absent or stated here with its reason.
//!
//! | models                | stop reading at  | read again below | answers to come | read room              |
//! |-----------------------|------------------|------------------|-----------------|------------------------|
//! | thread-per-conn, pool | (blocking write) | (blocking write) | (DELAY blocks)  | 4 KiB per connection   |
//! | mio-single, mio-multi | 256 KiB          | 256 KiB          | 1024            | 64 KiB per loop        |
//! | uring                 | 256 KiB          | 256 KiB          | 1024            | 1024 x 16 KiB per loop |
//! | tokio                 | 256 KiB          | 256 KiB          | 1024            | 16 KiB per connection  |
//! | libevent              | 256 KiB          | 64 KiB           | 1024            | 4 KiB per connection   |
//!
//! (The table is [`table()`]'s output; a unit test keeps the two equal.)
//! Each row's reasons are in the comments of its constant below:
//! [`BLOCKING_LIMITS`], [`MIO_LIMITS`], [`URING_LIMITS`], [`TOKIO_LIMITS`],
//! [`LIBEVENT_LIMITS`]. The event-driven models stop reading at the first
//! figure and read again below the second. The Rust ones read again as
//! soon as they are under the limits (the two figures are equal, and
//! [`FlowControl::stops_reading`] is their one check); only the C loop,
//! told of drained output at its write watermark, resumes lower.
//!
//! The same for every model: [`LINGER`], [`ACCEPT_PAUSE`],
//! [`KEEP_CAPACITY`] (applied by [`shrink_if_idle`]), the hostile-client limits (`--max-connections`,
//! default [`default_max_connections`]; [`PARTIAL_FRAME_TIMEOUT`];
//! [`WRITE_TIMEOUT`]), and the largest frame, `--max-frame` (default
//! `proto::DEFAULT_MAX_FRAME`), which every model enforces through
//! `proto::answer_frames` (the C loop hands its bytes to Rust).
//!
//! The libevent model's C loop takes its row from `OUT_DIR/iom_limits.h`,
//! which `build.rs` writes from this file, so the C side cannot differ
//! silently. That is why this file uses nothing but `std`.

use std::time::Duration;

/// After TOO_LARGE and our FIN: how long a connection goes on reading and
/// discarding before it closes, if the client does not close first.
/// Closing with unread input would make the kernel send a reset, which can
/// destroy answers the client has not read yet (the lingering close of
/// HTTP servers); a client that never stops sending is cut off after this.
pub const LINGER: Duration = Duration::from_secs(5);

/// How long accepting pauses after EMFILE and its relatives (every model,
/// and the admin port): accepting again at once would fail again at once.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The admin port's clients at once (every model). One `loadgen run` holds
/// one, and a probe or a person a few more; past this an admin connection
/// is accepted and closed at once, and counted (`admin.clients_refused` in
/// STATS), so that connections left open cannot pile up in the one thread
/// that must answer STATS.
pub const ADMIN_MAX_CLIENTS: usize = 16;

/// How long an admin client may go without sending a byte or taking a byte
/// of its answers before it is closed (`--admin-idle-timeout`, default).
/// The load generator asks once a second, so 30 s leaves it a wide margin.
pub const ADMIN_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How fast one admin client may ask: [`ADMIN_BURST`] requests at once, then
/// one per this interval (20 a second). A faster client is slowed, not
/// refused: its next request is read and answered when it is due, and
/// each answer held back is counted (`admin.requests_delayed`). The load
/// generator asks once a second, plus one snapshot at each end of its
/// window: far below it. Each answer costs the admin thread, which may run
/// at real-time priority, tens of µs; the limit keeps a client in a loop
/// from turning that into a CPU's worth.
pub const ADMIN_REQUEST_INTERVAL: Duration = Duration::from_millis(50);

/// How many requests an admin client may send at once before
/// [`ADMIN_REQUEST_INTERVAL`] spaces them out.
pub const ADMIN_BURST: u32 = 10;

/// A buffer that one large frame (a 1 MiB echo) grew past this is freed
/// once empty, so that an idle connection does not pin it.
pub const KEEP_CAPACITY: usize = 64 * 1024;

/// Free `buf` if it is empty and grew past [`KEEP_CAPACITY`]: every
/// model's buffers go through here once emptied.
pub fn shrink_if_idle(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    }
}

/// Descriptors kept out of `--max-connections`' default: the listeners,
/// the admin port and its connections, epoll and io_uring instances, the
/// loops' wakers, stdio. The default is the descriptor limit less these,
/// so that a connection past it is refused cleanly (accepted and closed,
/// counted in STATS `connections_refused`) before accept runs out of
/// descriptors. With a usual hard limit (tens of thousands to 1,048,576)
/// that is far above the sweep's 5000 connections.
pub const DESCRIPTOR_RESERVE: u64 = 64;

/// `--max-connections`' default for a process that may open `nofile`
/// descriptors (RLIMIT_NOFILE after `net::raise_nofile_limit`): all but
/// the reserve, or half of a limit too small for that.
pub fn default_max_connections(nofile: u64) -> u64 {
    nofile.saturating_sub(DESCRIPTOR_RESERVE).max(nofile / 2).max(1)
}

/// `--partial-frame-timeout-ms`' default: a frame whose bytes stop
/// arriving for this long is dropped and its connection closed (a
/// slowloris). Only a frame that has started: a connection idle between
/// frames may stay idle. The suite's slowest frame sends a byte every
/// 50 ms (hardening's slowloris); a benchmark's frames arrive whole.
pub const PARTIAL_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// `--write-timeout-ms`' default: a connection whose answers cannot be
/// written for this long (the client sends but never reads) is closed,
/// so that it pins neither a thread in `write_all` nor its buffers. The
/// suite's slowest reader pauses for a DELAY of a few ms, a 400 ms think
/// time at most.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One row of the table: the limits of the models named in `models`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub models: &'static str,
    /// `None`: blocking I/O is the flow control.
    pub flow: Option<FlowControl>,
    pub read_room: ReadRoom,
}

/// When a connection stops reading, so that a client that sends without
/// reading the answers cannot make the server buffer without bound.
/// Input already read waits, unparsed, until the connection reads again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowControl {
    /// Stop reading while this many answer bytes wait unsent...
    pub output_limit: usize,
    /// ...and read again once fewer than this wait (for every Rust model
    /// `output_limit` itself: it reads again as soon as it is under the
    /// limits; only libevent's C loop uses a lower figure)...
    pub resume_below: usize,
    /// ...or while this many DELAY and COMPUTE answers are still to come.
    pub pending_limit: usize,
}

impl FlowControl {
    /// A connection that reads stops once `unsent` answer bytes or
    /// `pending` answers to come reach their limit.
    pub fn stops_reading(self, unsent: usize, pending: usize) -> bool {
        unsent >= self.output_limit || pending >= self.pending_limit
    }
}

/// What one read asks for, at least.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRoom {
    /// A buffer of each connection's own.
    PerConnection(usize),
    /// One buffer per event loop, shared by all its connections.
    PerLoop(usize),
    /// A ring of `count` buffers of `size` bytes that the kernel picks from
    /// as data arrives (io_uring's provided buffers), shared by a loop.
    Provided { size: usize, count: usize },
}

impl ReadRoom {
    pub const fn bytes(self) -> usize {
        match self {
            ReadRoom::PerConnection(n) | ReadRoom::PerLoop(n) => n,
            ReadRoom::Provided { size, .. } => size,
        }
    }
}

/// The event-driven models' flow control.
const FLOW: FlowControl = FlowControl { output_limit: 256 * 1024, resume_below: 256 * 1024, pending_limit: 1024 };

/// thread-per-conn and pool (the same connection code).
pub const BLOCKING_LIMITS: Limits = Limits {
    models: "thread-per-conn, pool",
    // A blocking `write` stops the thread, and with it the reading, while
    // the client does not read; a DELAY blocks it, so at most one answer
    // is ever to come.
    flow: None,
    // `resize` zeroes the buffer and so makes it resident: 5000 idle
    // connections x 4 KiB is 20 MB, where 16 KiB would be 80 MB. A read
    // asks for more when the rest of a large frame is due, but never more
    // than has arrived, so memory follows the bytes received, not the
    // length a header announces.
    read_room: ReadRoom::PerConnection(4 * 1024),
};

/// mio-single and mio-multi (the same connection code).
pub const MIO_LIMITS: Limits = Limits {
    models: "mio-single, mio-multi",
    flow: Some(FLOW),
    // One buffer per loop: an idle connection holds none, so it can be
    // large, and a burst of pipelined requests takes few reads.
    read_room: ReadRoom::PerLoop(64 * 1024),
};

/// tokio.
pub const TOKIO_LIMITS: Limits = Limits {
    models: "tokio",
    flow: Some(FLOW),
    // `read_buf` reads into spare capacity without zeroing it, so a small
    // request makes one page resident, not four, and a pipelined burst
    // takes fewer reads. A read asks for more when a large frame is due.
    read_room: ReadRoom::PerConnection(16 * 1024),
};

/// uring: the same flow control as the mio loops, so that the two are
/// compared on how they wait for I/O alone.
pub const URING_LIMITS: Limits = Limits {
    models: "uring",
    flow: Some(FLOW),
    // The kernel fills a buffer of the ring as data arrives, so an idle
    // connection holds none (as with mio's per-loop buffer), and a multishot
    // recv needs no buffer of ours per connection. 1024 x 16 KiB: 16 MiB
    // of ordinary memory for the loop; a burst that uses every buffer ends
    // the multishot recvs, which are re-armed as buffers come back.
    read_room: ReadRoom::Provided { size: 16 * 1024, count: 1024 },
};

/// libevent (the C loop reads this row from `iom_limits.h`).
pub const LIBEVENT_LIMITS: Limits = Limits {
    models: "libevent",
    flow: Some(FlowControl {
        // libevent reports "output drained" only at a low watermark. The
        // seed's quarter keeps a connection that is just at the limit from
        // pausing and resuming (an epoll_ctl each) after every write.
        resume_below: FLOW.output_limit / 4,
        ..FLOW
    }),
    // Not ours to raise: libevent 2.1 reads at most 4096 bytes a call
    // (EVBUFFER_MAX_READ). The C loop also sets each bufferevent's largest
    // single read to this, so that the figure holds on later versions.
    read_room: ReadRoom::PerConnection(4 * 1024),
};

/// Every row, in the models' reading order.
pub const ROWS: [Limits; 5] = [BLOCKING_LIMITS, MIO_LIMITS, URING_LIMITS, TOKIO_LIMITS, LIBEVENT_LIMITS];

/// The table at the top of this file, as markdown.
pub fn table() -> String {
    let kib = |n: usize| format!("{} KiB", n / 1024);
    let mut rows = vec![
        ["models", "stop reading at", "read again below", "answers to come", "read room"].map(String::from),
        ["-"; 5].map(String::from),
    ];
    for row in ROWS {
        let flow = match row.flow {
            Some(f) => [kib(f.output_limit), kib(f.resume_below), f.pending_limit.to_string()],
            None => ["(blocking write)", "(blocking write)", "(DELAY blocks)"].map(String::from),
        };
        let room = match row.read_room {
            ReadRoom::PerConnection(n) => format!("{} per connection", kib(n)),
            ReadRoom::PerLoop(n) => format!("{} per loop", kib(n)),
            ReadRoom::Provided { size, count } => format!("{count} x {} per loop", kib(size)),
        };
        let [a, b, c] = flow;
        rows.push([row.models.to_string(), a, b, c, room]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = (0..5)
            .map(|i| match r[i].as_str() {
                "-" => "-".repeat(widths[i] + 2),
                cell => format!(" {cell:<w$} ", w = widths[i]),
            })
            .collect();
        out.push_str(&format!("|{}|\n", cells.join("|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table in this file's header is the table the constants make.
    #[test]
    fn the_header_table_is_the_constants() {
        let header: String = include_str!("limits.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! |"))
            .map(|l| format!("|{l}\n"))
            .collect();
        assert_eq!(header, table(), "update the table at the top of limits.rs to:\n{}", table());
    }

    /// Every model the binary offers is in exactly one row, and every row
    /// names only models (the libevent row only when it is compiled in).
    #[test]
    fn every_model_is_in_exactly_one_row() {
        let named: Vec<&str> = ROWS
            .iter()
            .filter(|row| cfg!(feature = "libevent") || **row != LIBEVENT_LIMITS)
            .flat_map(|row| row.models.split(", "))
            .collect();
        let offered: Vec<&str> = crate::models::MODELS.iter().map(|m| m.name).collect();
        for model in &offered {
            let rows = named.iter().filter(|name| *name == model).count();
            assert_eq!(rows, 1, "model {model} is in {rows} rows of the limits table");
        }
        for name in &named {
            assert!(offered.contains(name), "the limits table names {name:?}, which is no model: {offered:?}");
        }
    }

    /// The connection limit's default leaves the server its own
    /// descriptors, and stays far above the sweep's 5000 connections
    /// wherever the descriptor limit lets a sweep run at all.
    #[test]
    fn the_default_connection_limit_follows_the_descriptor_limit() {
        assert_eq!(default_max_connections(1_048_576), 1_048_576 - DESCRIPTOR_RESERVE);
        assert_eq!(default_max_connections(20_000), 19_936);
        assert_eq!(default_max_connections(256), 192);
        assert_eq!(default_max_connections(64), 32, "half of a small limit");
        assert_eq!(default_max_connections(1), 1);
        assert!(PARTIAL_FRAME_TIMEOUT >= Duration::from_secs(10) && WRITE_TIMEOUT >= Duration::from_secs(10));
    }

    /// The Rust models have one flow-control check, `stops_reading`: they
    /// read again as soon as it is false, so their rows must say so. Only
    /// the C loop resumes lower.
    #[test]
    fn flow_control_resumes_below_its_limit() {
        for row in ROWS {
            if let Some(f) = row.flow {
                assert!(0 < f.resume_below && f.resume_below <= f.output_limit, "{}", row.models);
                if row != LIBEVENT_LIMITS {
                    assert_eq!(f.resume_below, f.output_limit, "{}: a Rust model has no resume figure", row.models);
                }
            }
        }
    }
}
