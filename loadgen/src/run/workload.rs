//! What each request asks for and how each answer is checked.
//!
//! Every answer is checked, so the checks must cost almost nothing: the ECHO
//! payload of a request is its connection's pattern (built once) with the
//! request's id mixed into every 8 bytes, so that a stale answer, or one
//! that crossed from another request, fails its check; building and
//! comparing it is one XOR a word. A request's method is a hash of its id (no state, no allocation);
//! and a COMPUTE answer is checked without redoing the server's work, since
//! xorshift64 is linear over GF(2): `rounds` steps are one 64x64 bit matrix,
//! built once by repeated squaring, and applying it takes 64 XORs at most.

use std::time::Duration;

use proto::{Method, Status};

use crate::records::config::Mix;

/// Bits of a request id that count requests within one connection; the bits
/// above hold the connection's index, so ids are unique across the run.
pub const SEQ_BITS: u32 = 40;

/// A request id: connection index in the high bits, sequence in the low.
pub fn request_id(conn: u64, seq: u64) -> u64 {
    (conn << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// splitmix64: a cheap, well-mixed hash of a counter.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fill `buf` with the byte pattern of `seed`: a xorshift stream, so that
/// two seeds (two connections, or two raw messages) never share bytes in
/// the same places for long, and a shifted or swapped block shows up.
///
/// The step is written out rather than called ([`step`], one round of
/// `proto::compute`): this runs for every 8 bytes of every raw message, in
/// the load generator's hot path. A test holds the two to the same stream.
pub fn fill_pattern(seed: u64, buf: &mut [u8]) {
    let mut x = splitmix64(seed) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// The ECHO payload of connection `conn`.
pub fn echo_payload(conn: u64, size: usize) -> Vec<u8> {
    let mut v = vec![0; size];
    fill_pattern(conn.wrapping_mul(0x1000_0000_01B3), &mut v);
    v
}

/// The 8 bytes that request `id` mixes into its connection's pattern.
fn id_mask(id: u64) -> [u8; 8] {
    splitmix64(id ^ 0xEC40).to_le_bytes()
}

/// XOR request `id`'s mask into every 8 bytes of `buf` (a copy of the
/// connection's pattern): the ECHO payload of that request.
pub fn mix_id(id: u64, buf: &mut [u8]) {
    let mask = id_mask(id);
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[i & 7];
    }
}

/// The ECHO payload of request `id`, whose connection's pattern is `echo`.
pub fn echo_for_id(id: u64, echo: &[u8]) -> Vec<u8> {
    let mut v = echo.to_vec();
    mix_id(id, &mut v);
    v
}

/// Whether `payload` is the ECHO payload of request `id`, without building it.
fn is_echo_for_id(id: u64, payload: &[u8], echo: &[u8]) -> bool {
    let mask = id_mask(id);
    payload.len() == echo.len() && payload.iter().zip(echo).enumerate().all(|(i, (p, e))| *p == e ^ mask[i & 7])
}

/// Seed of raw message `k` on connection `conn`.
pub fn raw_seed(conn: u64, k: u64) -> u64 {
    request_id(conn, k) ^ 0x5241_5721
}

/// What a run's requests ask for.
pub struct Workload {
    /// (method, cumulative weight), in order.
    mix: Vec<(Method, u64)>,
    total: u64,
    pub size: u32,
    pub delay_us: u32,
    pub rounds: u32,
    compute: ComputeCheck,
}

/// What checking one answer found ([`Workload::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerCheck {
    Ok,
    /// A known error status (the code).
    Error(u8),
    Mismatch(&'static str),
}

impl Workload {
    pub fn new(mix: &Mix, size: u32, delay_us: u32, rounds: u32) -> Workload {
        let mut acc = 0;
        let mix = mix
            .0
            .iter()
            .map(|&(m, w)| {
                acc += w as u64;
                (m, acc)
            })
            .collect();
        Workload { mix, total: acc, size, delay_us, rounds, compute: ComputeCheck::new(rounds) }
    }

    /// The method of request `id`: a deterministic weighted choice.
    pub fn method_for(&self, id: u64) -> Method {
        if self.mix.len() == 1 {
            return self.mix[0].0;
        }
        let r = splitmix64(id) % self.total;
        self.mix.iter().find(|&&(_, upto)| r < upto).map(|&(m, _)| m).unwrap_or(self.mix[0].0)
    }

    /// Append request `id` to `out`; `echo` is the connection's pattern,
    /// which the ECHO payload derives from (see [`echo_for_id`]).
    pub fn encode(&self, id: u64, method: Method, echo: &[u8], out: &mut Vec<u8>) {
        match method {
            Method::Delay => proto::encode_parts(id, method as u8, 0, &self.delay_us.to_be_bytes(), out),
            Method::Compute => proto::encode_parts(id, method as u8, 0, &self.rounds.to_be_bytes(), out),
            _ => {
                let payload_at = out.len() + proto::HEADER_LEN;
                proto::encode_parts(id, method as u8, 0, echo, out);
                mix_id(id, &mut out[payload_at..]);
            }
        }
    }

    /// The largest OK payload an answer may carry.
    pub fn max_answer_payload(&self) -> usize {
        (self.size as usize).max(8)
    }

    /// Check an answer to request `id` (sent as `method`, `since_send` ago).
    pub fn check(
        &self,
        id: u64,
        method: Method,
        header: &proto::Header,
        payload: &[u8],
        echo: &[u8],
        since_send: Duration,
    ) -> AnswerCheck {
        if header.method != method as u8 {
            return AnswerCheck::Mismatch("answer's method differs from the request's");
        }
        if header.reserved != 0 {
            return AnswerCheck::Mismatch("answer's reserved field is not 0");
        }
        match Status::from_code(header.status) {
            None => return AnswerCheck::Mismatch("answer's status is not in the protocol's table"),
            Some(Status::Ok) => {}
            Some(_) => return AnswerCheck::Error(header.status),
        }
        let good = match method {
            Method::Echo => is_echo_for_id(id, payload, echo),
            Method::Delay => payload.is_empty() && since_send >= Duration::from_micros(self.delay_us as u64),
            Method::Compute => payload.len() == 8 && payload == self.compute.expected(id).to_be_bytes(),
            Method::Stats => true,
        };
        if good {
            AnswerCheck::Ok
        } else {
            AnswerCheck::Mismatch(match method {
                Method::Echo => "ECHO payload differs from what was sent",
                Method::Delay => "DELAY answered early or with a payload",
                _ => "COMPUTE result differs from proto::compute(id, rounds)",
            })
        }
    }
}

/// `proto::compute(id, rounds)` for a fixed `rounds`, at a cost that does
/// not grow with `rounds`.
pub struct ComputeCheck {
    rounds: u32,
    /// Column j: `rounds` xorshift steps applied to the vector with only bit j set.
    matrix: Option<Box<[u64; 64]>>,
}

/// What `proto::compute` xors the id with before its rounds.
const SEED_MASK: u64 = 0x9E37_79B9_7F4A_7C15;

/// One xorshift64 step: one round of `proto::compute` (which starts from
/// `id ^ SEED_MASK`, undone here), so that the server's COMPUTE and this
/// check are one implementation.
fn step(x: u64) -> u64 {
    proto::compute(x ^ SEED_MASK, 1)
}

fn apply(m: &[u64; 64], mut v: u64) -> u64 {
    let mut out = 0;
    while v != 0 {
        let j = v.trailing_zeros();
        out ^= m[j as usize];
        v &= v - 1;
    }
    out
}

fn compose(a: &[u64; 64], b: &[u64; 64]) -> Box<[u64; 64]> {
    let mut c = Box::new([0u64; 64]);
    for j in 0..64 {
        c[j] = apply(a, b[j]);
    }
    c
}

impl ComputeCheck {
    pub fn new(rounds: u32) -> ComputeCheck {
        if rounds < 64 {
            return ComputeCheck { rounds, matrix: None };
        }
        let mut base = Box::new([0u64; 64]);
        for (j, col) in base.iter_mut().enumerate() {
            *col = step(1 << j);
        }
        let mut result = Box::new([0u64; 64]);
        for (j, col) in result.iter_mut().enumerate() {
            *col = 1 << j;
        }
        let mut r = rounds;
        while r > 0 {
            if r & 1 == 1 {
                result = compose(&base, &result);
            }
            base = compose(&base, &base);
            r >>= 1;
        }
        ComputeCheck { rounds, matrix: Some(result) }
    }

    pub fn expected(&self, id: u64) -> u64 {
        match &self.matrix {
            Some(m) => apply(m, id ^ SEED_MASK),
            None => proto::compute(id, self.rounds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_check_matches_proto_compute() {
        for rounds in [0, 1, 2, 63, 64, 65, 1000, 4097, 1_000_000] {
            let c = ComputeCheck::new(rounds);
            for id in [0u64, 1, 42, u64::MAX, 0x1234_5678_9ABC_DEF0, request_id(4999, 123_456)] {
                assert_eq!(c.expected(id), proto::compute(id, rounds), "id {id} rounds {rounds}");
            }
        }
        assert_eq!(ComputeCheck::new(1_000_000).expected(u64::MAX), 0xeca54ac561046bca);
    }

    #[test]
    fn patterns_differ_between_connections_and_messages() {
        let a = echo_payload(1, 64);
        assert_eq!(a, echo_payload(1, 64), "deterministic");
        assert_ne!(a, echo_payload(2, 64));
        assert_eq!(&echo_payload(1, 100)[..64], &a[..], "a prefix of a longer payload");
        let (mut m0, mut m1) = ([0u8; 37], [0u8; 37]);
        fill_pattern(raw_seed(3, 0), &mut m0);
        fill_pattern(raw_seed(3, 1), &mut m1);
        assert_ne!(m0, m1);
        // Not a constant fill: a byte shifted by one place is detected.
        assert_ne!(&m0[..36], &m0[1..]);
    }

    #[test]
    fn mix_is_deterministic_and_weighted() {
        let w = Workload::new(&Mix(vec![(Method::Echo, 90), (Method::Compute, 10)]), 64, 0, 10);
        let n = 100_000;
        let computes = (0..n).filter(|&i| w.method_for(request_id(i % 7, i)) == Method::Compute).count();
        assert!((8_000..12_000).contains(&computes), "{computes} of {n}");
        for i in 0..1000 {
            assert_eq!(w.method_for(i), w.method_for(i));
        }
        let single = Workload::new(&Mix(vec![(Method::Delay, 1)]), 0, 5, 0);
        assert!((0..100).all(|i| single.method_for(i) == Method::Delay));
    }

    #[test]
    fn echo_payloads_differ_per_request() {
        let w = Workload::new(&Mix(vec![(Method::Echo, 1)]), 64, 0, 0);
        let pattern = echo_payload(3, 64);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        w.encode(request_id(3, 0), Method::Echo, &pattern, &mut a);
        w.encode(request_id(3, 1), Method::Echo, &pattern, &mut b);
        let (fa, _) = proto::decode(&a).unwrap().unwrap();
        let (fb, _) = proto::decode(&b).unwrap().unwrap();
        assert_eq!(fa.payload.len(), 64);
        assert_ne!(fa.payload, fb.payload, "two requests of one connection carry different payloads");
        assert_eq!(fa.payload, echo_for_id(request_id(3, 0), &pattern));
        // Every 8-byte word differs, not only the first.
        assert!(fa.payload.chunks(8).zip(fb.payload.chunks(8)).all(|(x, y)| x != y));
    }

    /// The pattern's stream is `proto::compute`'s xorshift, step by step.
    #[test]
    fn the_pattern_steps_as_compute_does() {
        let mut buf = [0u8; 64];
        fill_pattern(9, &mut buf);
        let mut x = splitmix64(9) | 1;
        for chunk in buf.chunks(8) {
            x = step(x);
            assert_eq!(chunk, &x.to_le_bytes()[..]);
        }
    }

    #[test]
    fn checks() {
        let w = Workload::new(&Mix(vec![(Method::Echo, 1)]), 4, 1000, 10);
        let echo = echo_payload(0, 4);
        let h = |method: u8, status: u8| proto::Header { len: 0, id: 1, method, status, reserved: 0 };
        let d = Duration::from_millis(2);
        assert_eq!(w.check(1, Method::Echo, &h(1, 0), &echo_for_id(1, &echo), &echo, d), AnswerCheck::Ok);
        // Another request's payload (a stale or crossed answer), or the
        // connection's bare pattern, is not this request's.
        assert!(matches!(
            w.check(1, Method::Echo, &h(1, 0), &echo_for_id(2, &echo), &echo, d),
            AnswerCheck::Mismatch(_)
        ));
        assert!(matches!(w.check(1, Method::Echo, &h(1, 0), &echo, &echo, d), AnswerCheck::Mismatch(_)));
        assert!(matches!(w.check(1, Method::Echo, &h(1, 0), b"abcd", &echo, d), AnswerCheck::Mismatch(_)));
        assert!(matches!(
            w.check(1, Method::Echo, &h(3, 0), &echo_for_id(1, &echo), &echo, d),
            AnswerCheck::Mismatch(_)
        ));
        assert_eq!(w.check(1, Method::Echo, &h(1, 4), b"busy", &echo, d), AnswerCheck::Error(4));
        assert!(matches!(w.check(1, Method::Echo, &h(1, 9), b"", &echo, d), AnswerCheck::Mismatch(_)));
        assert_eq!(w.check(1, Method::Delay, &h(2, 0), b"", &echo, d), AnswerCheck::Ok);
        let early = Duration::from_micros(999);
        assert!(matches!(w.check(1, Method::Delay, &h(2, 0), b"", &echo, early), AnswerCheck::Mismatch(_)));
        let good = proto::compute(7, 10).to_be_bytes();
        assert_eq!(w.check(7, Method::Compute, &h(3, 0), &good, &echo, d), AnswerCheck::Ok);
        assert!(matches!(w.check(8, Method::Compute, &h(3, 0), &good, &echo, d), AnswerCheck::Mismatch(_)));
    }
}
