//! How a connection ends, run against every model: input that flow control
//! held back is still answered after the client's FIN, and the lingering
//! close after TOO_LARGE ends once `LINGER` has passed even if the client
//! never closes. (These began as mio-single's own tests, where the held-back
//! input and the lingering phase are states of its connection machine.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use proto::{Frame, Method};
use servers::limits::{LINGER, MIO_LIMITS};
use testkit::Server;

testkit::per_model!(
    held_back_input_is_answered_before_a_half_close,
    lingering_ends_after_linger_without_the_clients_fin
);

/// Every model the binary offers runs every case above.
#[test]
fn every_model_is_in_the_suite() {
    testkit::assert_every_offered_model_runs_every_case();
}

/// Read frames until the server closes; return how many distinct ids were
/// answered (panics on an id answered twice).
fn read_answers(stream: &mut TcpStream, total: u64) -> u64 {
    let (mut buf, mut seen) = (Vec::new(), vec![false; total as usize]);
    let mut chunk = vec![0u8; 65536];
    loop {
        while let Some((f, used)) = proto::decode_with_limit(&buf, u32::MAX).unwrap() {
            buf.drain(..used);
            assert!(!std::mem::replace(&mut seen[f.id as usize], true), "id {} twice", f.id);
        }
        match stream.read(&mut chunk).unwrap() {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    seen.iter().filter(|&&s| s).count() as u64
}

/// Flow control holds input back (STATS answers are 25 times their
/// requests; DELAYs fill the pending limit), the client half-closes, and
/// still every request is answered, exactly once, before the close.
fn held_back_input_is_answered_before_a_half_close(model: &str) {
    const STATS: u64 = 20_000;
    let pending_limit = MIO_LIMITS.flow.expect("the mio row has flow control").pending_limit as u64;
    let total = STATS + 3 * pending_limit;

    let server = Server::start(model, &[]);
    let mut stream = TcpStream::connect(server.data).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    for id in 0..total {
        let f = match id < STATS {
            true => Frame::request(id, Method::Stats, vec![]),
            false => Frame::request(id, Method::Delay, 0u32.to_be_bytes().to_vec()),
        };
        proto::encode(&f, &mut out);
    }
    let mut writer = stream.try_clone().unwrap();
    let w = thread::spawn(move || {
        writer.write_all(&out).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let answered = read_answers(&mut stream, total);
    w.join().unwrap();
    assert_eq!(answered, total, "every request answered before the close");
}

/// After TOO_LARGE the server sends its FIN and discards what follows; a
/// client that keeps its side open is cut off once LINGER has passed.
fn lingering_ends_after_linger_without_the_clients_fin(model: &str) {
    let server = Server::start(model, &[]);
    let mut stream = TcpStream::connect(server.data).unwrap();
    stream.set_read_timeout(Some(LINGER * 4)).unwrap();
    let mut bytes = Vec::new();
    proto::encode(&Frame::request(0, Method::Echo, b"first".to_vec()), &mut bytes);
    proto::encode(&Frame::request(1, Method::Echo, vec![]), &mut bytes);
    let n = bytes.len();
    bytes[n - 16..n - 12].copy_from_slice(&(proto::DEFAULT_MAX_FRAME + 1).to_be_bytes());
    bytes.extend_from_slice(&[7u8; 1000]); // part of the refused payload
    let started = Instant::now();
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_answers(&mut stream, 2), 2, "the echo and TOO_LARGE, before our FIN");
    let _ = stream.write_all(&[7u8; 1000]); // more, discarded; no FIN from us
                                            // The server closes once LINGER is over: then its counters say so.
    server.stats_until("the lingering connection closed", |s| s.connections_open == 0);
    assert!(started.elapsed() >= LINGER, "closed after {:?}, before LINGER", started.elapsed());
}
