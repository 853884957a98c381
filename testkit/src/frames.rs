//! What the tests send: requests by method, a frame with any header
//! fields, payload patterns, and reproducible random bytes.

use proto::{Frame, Method};

pub fn echo(id: u64, payload: &[u8]) -> Frame {
    Frame::request(id, Method::Echo, payload.to_vec())
}

pub fn delay(id: u64, micros: u32) -> Frame {
    Frame::request(id, Method::Delay, micros.to_be_bytes().to_vec())
}

pub fn compute(id: u64, rounds: u32) -> Frame {
    Frame::request(id, Method::Compute, rounds.to_be_bytes().to_vec())
}

/// Frames on the wire, one after the other.
pub fn encoded(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        proto::encode(f, &mut out);
    }
    out
}

/// One frame on the wire.
pub fn wire(f: &Frame) -> Vec<u8> {
    encoded(std::slice::from_ref(f))
}

/// A request with any header fields, `reserved` included (which
/// `proto::encode` always writes as 0).
pub fn raw_frame(id: u64, method: u8, status: u8, reserved: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_parts(id, method, status, payload, &mut out);
    out[14..16].copy_from_slice(&reserved.to_be_bytes());
    out
}

/// `len` bytes that differ with `seed` and along the payload, so that a
/// shifted or mixed-up payload shows.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len).map(|i| (i as u64).wrapping_mul(31).wrapping_add(seed) as u8).collect()
}

/// Reproducible randomness: xorshift64, one step of `proto::compute` per
/// number (compute seeds its state with the id xor a constant, undone here).
pub struct Rng(u64);

/// What `proto::compute` xors the id with before its rounds.
const COMPUTE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// A generator whose state is `seed`, mixed so that small seeds differ.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator whose state is `seed` itself (0 stays 0).
    pub fn from_state(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = proto::compute(self.0 ^ COMPUTE_SEED, 1);
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` bytes, the low byte of one number each.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator is the xorshift64 the tests wrote out by hand before.
    #[test]
    fn one_step_is_xorshift64() {
        let mut x = 11u64;
        let mut rng = Rng::from_state(11);
        for _ in 0..100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(rng.next_u64(), x);
        }
    }

    #[test]
    fn raw_frames_carry_any_reserved_field() {
        let f = raw_frame(7, 1, 0, 0xBEEF, b"hi");
        assert_eq!(&f[14..16], &[0xBE, 0xEF]);
        assert_eq!(f.len(), proto::HEADER_LEN + 2);
    }
}
