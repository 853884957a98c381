//! Tests of what is particular to the libevent model (C loop, Rust protocol):
//! the edges between the two halves that the shared suite does not aim at.
//! Built only with `--features libevent`.
#![cfg(feature = "libevent")]

use std::io::{Read, Write};
use std::net::Shutdown as Half;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use proto::{Frame, Method, Status};
use testkit::procfs::cpu_ticks;
use testkit::{compute, delay, echo, Client, Server};

fn start(extra: &[&str]) -> Server {
    Server::start("libevent", extra)
}

#[test]
fn byte_and_connection_counters_are_exact() {
    let server = start(&[]);
    let mut sent = 0u64;
    let mut received = 0u64;
    for n in [0usize, 1, 5000, 70_000] {
        let mut c = server.connect();
        let req = echo(n as u64, &vec![7u8; n]);
        let resp = c.call(&req);
        assert_eq!(resp.payload.len(), n);
        sent += req.wire_len() as u64;
        received += resp.wire_len() as u64;
        let r = c.call(&compute(42, 1000));
        assert_eq!(r.payload, 0x49e9dfcd6219dc1cu64.to_be_bytes());
        sent += 20;
        received += 24;
    }
    let s = server.stats_until("all four connections closed", |s| s.connections_open == 0);
    assert_eq!((s.connections_accepted, s.requests), (4, 8));
    assert_eq!((s.bytes_in, s.bytes_out), (sent, received), "evbuffer callbacks count socket bytes");
    assert_eq!(s.model, "libevent");
}

#[test]
fn delay_is_overtaken_and_half_close_waits_for_its_timer() {
    let server = start(&[]);
    let mut c = server.connect();
    c.send(&delay(1, 300_000));
    c.send(&echo(2, b"fast"));
    c.send(&delay(3, 100_000));
    c.stream.shutdown(Half::Write).unwrap();
    // The connection is half-closed with two timers pending: both answers
    // still come, the echo first, then the server closes.
    let ids: Vec<u64> = std::iter::from_fn(|| c.recv()).map(|f| f.id).collect();
    assert_eq!(ids, [2, 3, 1]);
}

#[test]
fn more_delays_than_the_pending_limit_are_each_answered_once() {
    // 1024 DELAYs may wait per connection; the rest wait in the input buffer.
    let server = start(&[]);
    let mut c = server.connect();
    let n = 3000u64;
    let mut wire = Vec::new();
    for id in 0..n {
        proto::encode(&delay(id, 2000 + (id % 7) as u32 * 1000), &mut wire);
    }
    c.send_bytes(&wire);
    let mut seen = vec![false; n as usize];
    for _ in 0..n {
        let f = c.recv().expect("answer");
        assert_eq!((f.method, f.status), (Method::Delay as u8, 0));
        assert!(!std::mem::replace(&mut seen[f.id as usize], true), "id {} answered twice", f.id);
    }
    // Nothing more is owed: a STATS on the same connection is the next frame.
    assert_eq!(c.call(&Frame::request(u64::MAX, Method::Stats, vec![])).id, u64::MAX);
}

#[test]
fn too_large_answers_earlier_requests_then_closes_without_reset() {
    let server = start(&["--max-frame", "1000"]);
    let mut c = server.connect();
    c.send(&echo(1, b"before"));
    let mut big = Vec::new();
    proto::encode_parts(2, Method::Echo as u8, 0, &[], &mut big);
    big[..4].copy_from_slice(&1001u32.to_be_bytes());
    big.extend_from_slice(&[9u8; 600]); // payload the server must not read as frames
    c.send_bytes(&big);
    let first = c.recv().unwrap();
    assert_eq!((first.id, &first.payload[..]), (1, &b"before"[..]));
    let last = c.recv().unwrap();
    assert_eq!((last.id, last.status), (2, Status::TooLarge as u8));
    // The client keeps writing after the refusal: the server discards it,
    // and the end of the stream is a clean EOF.
    let _ = c.stream.write_all(&[1u8; 4096]);
    let mut rest = Vec::new();
    assert_eq!(c.stream.read_to_end(&mut rest).map(|_| rest.len()).ok(), Some(0));
    // Other connections are unaffected.
    assert_eq!(server.connect().call(&echo(3, b"x")).payload, b"x");
    assert_eq!(server.stats().errors, 1);
}

#[test]
fn a_client_that_does_not_read_stops_being_read() {
    let server = start(&[]);
    let c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let rss_before = server.stats().rss_bytes;
    // 96 MiB of 256 KiB echoes, written while nobody reads the answers.
    let t = std::thread::spawn(move || {
        let mut wire = Vec::new();
        for id in 0..384u64 {
            wire.clear();
            proto::encode(&echo(id, &vec![id as u8; 256 * 1024]), &mut wire);
            if writer.write_all(&wire).is_err() {
                return id;
            }
        }
        384
    });
    // The reads stop: bytes_in settles far below what the client wants to send.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = server.stats();
    let s = loop {
        std::thread::sleep(Duration::from_millis(300));
        let s = server.stats();
        if s.bytes_in > 0 && s.bytes_in == last.bytes_in {
            break s;
        }
        assert!(Instant::now() < deadline, "bytes_in never settled: {s:?}");
        last = s;
    };
    assert!(s.bytes_in < 32 << 20, "server read {} bytes from a client that reads nothing", s.bytes_in);
    assert!(s.rss_bytes < rss_before + (64 << 20), "rss grew from {rss_before} to {}", s.rss_bytes);
    // Now read everything: every request is answered, in full.
    let mut c = c;
    for id in 0..384u64 {
        let f = c.recv().expect("answer");
        assert_eq!((f.id, f.payload.len()), (id, 256 * 1024));
    }
    assert_eq!(t.join().unwrap(), 384);
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
#[test]
fn out_of_descriptors_backs_off_then_accepts_again() {
    // Hard limit 48 descriptors: the server (which raises soft to hard) runs
    // out after some 35 connections; the rest wait in the listen backlog.
    // No admin port: its thread would need a descriptor too. The connection
    // limit (by default half of these 48) is put past the 80 clients: this
    // case is about running out of descriptors.
    let server = Server::start_with("libevent", &["--admin", "none", "--max-connections", "1000"], |cmd| unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 48, rlim_max: 48 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    let mut clients: Vec<Client> = (0..80).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&echo(i as u64, b"late"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(server.pid());
    std::thread::sleep(Duration::from_millis(1000));
    let spent = cpu_ticks(server.pid()) - before;
    assert!(spent < 50, "{spent} ticks of CPU in 1 s at EMFILE: the accept loop spins");
    // Each answered client hangs up and frees a descriptor, so the server
    // must come back from its back-off and accept every one still waiting.
    for (i, mut c) in clients.into_iter().enumerate() {
        let f = c.recv().unwrap_or_else(|| panic!("client {i} closed unanswered"));
        assert_eq!((f.id, &f.payload[..]), (i as u64, &b"late"[..]));
    }
}

#[test]
fn raw_mode_echoes_a_stream_larger_than_the_output_limit() {
    let server = start(&["--protocol", "raw"]);
    let mut c = server.connect();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut writer = c.stream.try_clone().unwrap();
    let to_send = data.clone();
    let t = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(Half::Write).unwrap();
    });
    let mut got = Vec::new();
    c.stream.read_to_end(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == data, "raw echo differs ({} of {} bytes)", got.len(), data.len());
}

#[test]
fn sigterm_exits_zero_with_timers_and_connections_open() {
    let server = start(&[]);
    let mut clients: Vec<Client> = (0..200).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&delay(i as u64, 10_000_000));
    }
    server.stats_until("all connected", |s| s.connections_open == 200);
    let status = server.terminate(Duration::from_secs(2)).expect("exit within 2 s");
    assert_eq!(status.code(), Some(0));
}
