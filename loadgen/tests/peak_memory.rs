//! A run's `loadgen.max_rss_bytes` is the load generator's own peak
//! resident memory, not its parent's: `ru_maxrss` carries the parent's peak
//! across fork and exec, so a `loadgen run` started by a large process (the
//! sweep, a test runner) would report that instead. A test binary of its
//! own, so that the ballast it holds weighs on no other test.

mod common;

use common::*;
use testkit::Server;

const BALLAST: usize = 200 << 20;

#[test]
fn a_run_started_by_a_large_process_reports_its_own_peak() {
    let server = Server::start("mio-single", &[]);
    // Resident while `loadgen run` is forked: vec![1; n] writes every page.
    let ballast = vec![1u8; BALLAST];
    let own_peak = proto::peak_rss_from_status(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap();
    assert!(own_peak >= BALLAST as u64, "the test process's peak is only {own_peak} bytes");

    let target = server.data.to_string();
    let (out, r) = run(&["--target", &target, "-c", "1", "--warmup", "0", "--duration", "1"]);
    std::hint::black_box(&ballast);
    let r = r.unwrap_or_else(|| panic!("no result: {}", stderr(&out)));
    let peak = r.loadgen.max_rss_bytes;
    assert!(peak > 0, "no peak reported");
    assert!(
        peak < (BALLAST / 2) as u64,
        "loadgen reports a peak of {} MiB, its parent's ({} MiB), not its own",
        peak >> 20,
        own_peak >> 20
    );
}
