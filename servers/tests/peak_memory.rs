//! STATS `max_rss_bytes` is the server's own peak resident memory, not its
//! parent's: `ru_maxrss` carries the parent's peak across fork and exec, so
//! a server started by a large process (a sweep, a test runner) would
//! report that instead. A test binary of its own, so that the ballast it
//! holds weighs on no other test.

use testkit::Server;

const BALLAST: usize = 200 << 20;

#[test]
fn a_server_started_by_a_large_process_reports_its_own_peak() {
    // Resident while the server is forked: vec![1; n] writes every page.
    let ballast = vec![1u8; BALLAST];
    let own_peak = proto::peak_rss_from_status(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap();
    assert!(own_peak >= BALLAST as u64, "the test process's peak is only {own_peak} bytes");

    let server = Server::start("mio-single", &[]);
    std::hint::black_box(&ballast);
    let stats = server.stats();
    assert!(stats.max_rss_bytes > 0, "no peak reported: {stats:?}");
    assert!(
        stats.max_rss_bytes < (BALLAST / 2) as u64,
        "the server reports a peak of {} MiB, its parent's ({} MiB), not its own",
        stats.max_rss_bytes >> 20,
        own_peak >> 20
    );
    assert!(stats.max_rss_bytes >= stats.rss_bytes, "the peak is below the current RSS: {stats:?}");
}
