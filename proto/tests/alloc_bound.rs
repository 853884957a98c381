//! The decoder never allocates more than the frame limit, whatever the header says.
//!
//! A header is 16 bytes that anybody can send, and its `len` field can claim
//! up to 4 GiB. A decoder that trusted it (reserving `len` bytes up front, say)
//! would let one header take a server's memory. `decode_with_limit` promises
//! to check `len` against `max_frame` before any payload is held, so a single
//! call allocates at most `max_frame` bytes, in total and in one piece.
//!
//! This binary wraps the system allocator in a counting one (a test binary
//! of its own, since `#[global_allocator]` is per binary) that records, on
//! the calling thread only and only while a decode is being measured, the
//! largest single allocation and the total allocated. Proptest then feeds
//! arbitrary headers with arbitrary amounts of payload behind them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proto::{decode_with_limit, HEADER_LEN};

struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: allocations during thread teardown must not panic.
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            LARGEST.with(|l| l.set(l.get().max(size)));
            TOTAL.with(|t| t.set(t.get() + size));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Run `f` and return (largest single allocation, total allocated) on this
/// thread while it ran. The result of `f` is dropped after measuring.
fn measure<T>(f: impl FnOnce() -> T) -> (usize, usize, T) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (LARGEST.with(Cell::get), TOTAL.with(Cell::get), out)
}

/// A header with every field given, followed by `payload`.
fn frame_bytes(len: u32, id: u64, method: u8, status: u8, reserved: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[method, status]);
    b.extend_from_slice(&reserved.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn the_counter_counts() {
    // Without this, a broken counter would make every bound below hold.
    let (largest, total, v) = measure(|| vec![7u8; 1000]);
    assert!(largest >= 1000 && total >= 1000, "largest {largest}, total {total}");
    drop(v);
    let (largest, total, _) = measure(|| 1 + 1);
    assert_eq!((largest, total), (0, 0));
}

#[test]
fn a_header_claiming_4_gib_allocates_nothing() {
    let max = proto::DEFAULT_MAX_FRAME;
    for len in [max + 1, u32::MAX / 2, u32::MAX] {
        let bytes = frame_bytes(len, 1, 1, 0, 0, &[0u8; 100]);
        let (largest, total, result) = measure(|| decode_with_limit(&bytes, max));
        assert!(result.is_err(), "len {len}: {result:?}");
        assert_eq!((largest, total), (0, 0), "len {len}");
    }
    // Exactly at the limit, whole: one payload-sized allocation, no more.
    let bytes = frame_bytes(max, 2, 1, 0, 0, &vec![1u8; max as usize]);
    let (largest, total, result) = measure(|| decode_with_limit(&bytes, max));
    assert_eq!(result.unwrap().unwrap().0.payload.len(), max as usize);
    assert!(largest <= max as usize && total <= max as usize, "largest {largest}, total {total}");
}

/// How a generated header's `len` relates to the limit.
fn len_for(kind: u8, raw: u32, max: u32) -> u32 {
    match kind % 5 {
        0 => raw,                              // anything at all
        1 => raw % (max + 1),                  // within the limit
        2 => max.saturating_add(1 + raw % 64), // just over
        3 => max.saturating_sub(raw % 4),      // at or just under
        _ => u32::MAX - raw % 16,              // absurd
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary header fields, any payload present from none to more than
    /// the frame (trailing bytes), any limit: one call allocates at most
    /// `max_frame` bytes, in total and in one piece; a partial or refused
    /// frame allocates nothing.
    #[test]
    fn decode_allocates_at_most_max_frame(
        max in prop_oneof![0u32..64, 64u32..=70_000],
        kind in any::<u8>(),
        raw_len in any::<u32>(),
        id in any::<u64>(),
        method in any::<u8>(),
        status in any::<u8>(),
        reserved in any::<u16>(),
        present in 0usize..=72_000,
        header_cut in 0usize..=HEADER_LEN,
    ) {
        let len = len_for(kind, raw_len, max);
        let payload: Vec<u8> = (0..present).map(|i| i as u8).collect();
        let mut bytes = frame_bytes(len, id, method, status, reserved, &payload);
        if header_cut < HEADER_LEN {
            bytes.truncate(header_cut); // not even a whole header
        }
        let (largest, total, result) = measure(|| decode_with_limit(&bytes, max));
        prop_assert!(largest <= max as usize, "largest allocation {} > max_frame {}", largest, max);
        prop_assert!(total <= max as usize, "allocated {} in total > max_frame {}", total, max);
        match result {
            Ok(Some((frame, used))) => {
                prop_assert!(frame.payload.len() <= max as usize);
                prop_assert_eq!(used, HEADER_LEN + len as usize);
            }
            Ok(None) | Err(_) => prop_assert_eq!(total, 0, "a partial or refused frame allocates nothing"),
        }
    }
}
