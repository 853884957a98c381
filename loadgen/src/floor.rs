//! `loadgen floor`: what one request costs at the very least, on this machine.
//!
//! Every CPU-per-request figure in the suite needs a yardstick. A server
//! cannot answer a request with less than one `read` and one `write` on a
//! loopback socket, so the floor is measured here, in the same run as
//! everything else and on the same (virtual) hardware:
//!
//! - **pair**: the CPU cost of one 64-byte `write` plus `read` on a connected
//!   loopback TCP pair, within one thread. No thread ever sleeps or wakes.
//! - **ping-pong**: a one-connection blocking ping-pong between two pinned
//!   threads, once with both on one CPU and once across two CPUs. This adds
//!   what the kernel charges for putting a thread to sleep and waking it,
//!   and, across CPUs, for waking an idle CPU (expensive in many VMs).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::cpus;

/// Flags of `loadgen floor`.
#[derive(Clone, Debug, clap::Args)]
pub struct FloorArgs {
    /// write+read pairs to time on one thread.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1000..))]
    pub pairs: u64,
    /// Round trips per ping-pong measurement.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub round_trips: u64,
    /// CPUs for the ping-pong: the first is used for the one-CPU case, the
    /// first two for the cross-CPU case. Default: the first two CPUs this
    /// process may run on.
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// The floors, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Floor {
    /// CPU µs of one 64-byte write + read on one thread.
    pub pair_cpu_us: f64,
    /// Wall µs of the same (equal to the CPU cost unless preempted).
    pub pair_wall_us: f64,
    /// Both threads on one CPU.
    pub pingpong_same_cpu: Option<PingPong>,
    /// The threads on two different CPUs; `None` with only one CPU.
    pub pingpong_cross_cpu: Option<PingPong>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PingPong {
    pub cpus: (usize, usize),
    /// Wall µs per round trip.
    pub round_trip_us: f64,
    /// CPU µs per round trip spent by each side (mean of the two).
    pub cpu_us_per_side: f64,
}

pub fn run(args: &FloorArgs) -> anyhow::Result<Floor> {
    let allowed = crate::env::affinity();
    let cpus = if args.cpus.is_empty() { &allowed } else { &args.cpus };
    if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
        bail!("--cpus: CPU {bad} is not available to this process (allowed: {allowed:?})");
    }
    let floor = measure(None, cpus, args.pairs, args.round_trips)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&floor)?)
            .with_context(|| format!("--json {}", path.display()))?;
    }
    Ok(floor)
}

/// Measure the floors: the pair on `pair_cpu` (or wherever the calling
/// thread may run, with `None`), the ping-pongs on `cpus[0]` alone and on
/// `cpus[0]` and `cpus[1]`. Runs on a thread of its own, so the caller's
/// CPU affinity is left as it was (the sweep measures on the server's CPUs
/// while it stays pinned to the load generator's).
pub fn measure(pair_cpu: Option<usize>, cpus: &[usize], pairs: u64, round_trips: u64) -> anyhow::Result<Floor> {
    let Some(&first) = cpus.first() else { bail!("--cpus: no CPU to run on") };
    let cpus = cpus.to_vec();
    let worker = std::thread::spawn(move || -> anyhow::Result<Floor> {
        if let Some(cpu) = pair_cpu {
            pin(cpu)?;
        }
        let (pair_cpu_us, pair_wall_us) = pair(pairs).context("measuring the write+read pair")?;
        let same = ping_pong(first, first, round_trips).context("one-CPU ping-pong")?;
        let cross = match cpus.get(1) {
            Some(&b) if b != first => Some(ping_pong(first, b, round_trips).context("cross-CPU ping-pong")?),
            _ => None,
        };
        Ok(Floor { pair_cpu_us, pair_wall_us, pingpong_same_cpu: Some(same), pingpong_cross_cpu: cross })
    });
    worker.join().map_err(|_| anyhow::anyhow!("the floor measurement panicked"))?
}

/// A human summary of the floors.
pub fn describe(f: &Floor) -> String {
    let mut s = format!(
        "floor pair (64 B write + read, one thread): {:.2} µs CPU, {:.2} µs wall\n",
        f.pair_cpu_us, f.pair_wall_us
    );
    for (what, pp) in [("one CPU", &f.pingpong_same_cpu), ("across CPUs", &f.pingpong_cross_cpu)] {
        match pp {
            Some(p) => {
                s += &format!(
                    "ping-pong {what} (CPUs {},{}): {:.2} µs per round trip, {:.2} µs CPU per side\n",
                    p.cpus.0, p.cpus.1, p.round_trip_us, p.cpu_us_per_side
                )
            }
            None => s += &format!("ping-pong {what}: not measured (one CPU available)\n"),
        }
    }
    s
}

fn connected_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(listener.local_addr()?)?;
    let (b, _) = listener.accept()?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

/// Mean CPU and wall µs of one 64-byte write on `a` plus one read on `b`.
fn pair(n: u64) -> io::Result<(f64, f64)> {
    let (mut a, mut b) = connected_pair()?;
    let (msg, mut buf) = ([7u8; 64], [0u8; 64]);
    let (cpu, wall) = timed(1000, n, || {
        a.write_all(&msg)?;
        b.read_exact(&mut buf)
    })?;
    Ok((cpu as f64 / n as f64, wall.as_secs_f64() * 1e6 / n as f64))
}

/// Round trips of 64 bytes between a thread on `cpu_a` and one on `cpu_b`.
fn ping_pong(cpu_a: usize, cpu_b: usize, n: u64) -> io::Result<PingPong> {
    let (mut a, mut b) = connected_pair()?;
    let warm = 500;
    let echo = std::thread::spawn(move || -> io::Result<u64> {
        pin(cpu_b)?;
        let mut buf = [0u8; 64];
        let (cpu, _) = timed(warm, n, || {
            b.read_exact(&mut buf)?;
            b.write_all(&buf)
        })?;
        Ok(cpu)
    });
    let mine = pin(cpu_a).and_then(|()| {
        let (msg, mut buf) = ([1u8; 64], [0u8; 64]);
        timed(warm, n, || {
            a.write_all(&msg)?;
            a.read_exact(&mut buf)
        })
    });
    // If this side failed, closing our end ends the echo thread's read.
    drop(a);
    let theirs = echo.join().map_err(|_| io::Error::other("echo thread panicked"))?;
    let (my_cpu, wall) = mine?;
    let their_cpu = theirs?;
    Ok(PingPong {
        cpus: (cpu_a, cpu_b),
        round_trip_us: wall.as_secs_f64() * 1e6 / n as f64,
        cpu_us_per_side: (my_cpu + their_cpu) as f64 / 2.0 / n as f64,
    })
}

/// `step` run `warm` times, then `n` times measured: the calling thread's
/// CPU µs and the wall time of those `n`.
fn timed(warm: u64, n: u64, mut step: impl FnMut() -> io::Result<()>) -> io::Result<(u64, Duration)> {
    for _ in 0..warm {
        step()?;
    }
    let (cpu0, t0) = (thread_cpu_us(), Instant::now());
    for _ in 0..n {
        step()?;
    }
    Ok((thread_cpu_us() - cpu0, t0.elapsed()))
}

/// CPU time (user + sys) of the calling thread, µs, from
/// CLOCK_THREAD_CPUTIME_ID: exact to the nanosecond, where getrusage's
/// RUSAGE_THREAD can lag by a scheduler tick and read 0 for a short run.
fn thread_cpu_us() -> u64 {
    // SAFETY: clock_gettime fills the zeroed timespec we pass.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Pin the calling thread to one CPU.
fn pin(cpu: usize) -> io::Result<()> {
    cpus::pin_self(&[cpu]).map_err(|e| io::Error::new(e.kind(), format!("--cpus: cannot pin to CPU {cpu}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something_plausible() {
        let cpus = crate::env::affinity();
        assert!(!cpus.is_empty());
        let f = run(&FloorArgs { pairs: 2000, round_trips: 200, cpus: vec![], json: None }).unwrap();
        // A pair is two syscalls: it costs something, and less than a second.
        assert!(f.pair_cpu_us > 0.0 && f.pair_wall_us < 1e6, "{f:?}");
        let same = f.pingpong_same_cpu.clone().unwrap();
        assert_eq!(same.cpus, (cpus[0], cpus[0]));
        assert!(same.round_trip_us > 0.0);
        assert_eq!(f.pingpong_cross_cpu.is_some(), cpus.len() > 1);
        assert!(describe(&f).contains("floor pair"));
    }

    #[test]
    fn measure_pins_only_its_own_thread() {
        let cpus = crate::env::affinity();
        let before = crate::env::affinity();
        let f = measure(Some(*cpus.last().unwrap()), &cpus[..1], 1000, 100).unwrap();
        assert!(f.pair_cpu_us > 0.0, "{f:?}");
        assert_eq!(f.pingpong_same_cpu.unwrap().cpus, (cpus[0], cpus[0]));
        assert!(f.pingpong_cross_cpu.is_none(), "one CPU given: no cross-CPU figure");
        assert_eq!(crate::env::affinity(), before, "the caller's affinity is unchanged");
    }

    #[test]
    fn refuses_a_cpu_it_cannot_use() {
        let err = run(&FloorArgs { pairs: 1000, round_trips: 100, cpus: vec![4095], json: None }).unwrap_err();
        assert!(format!("{err:#}").contains("--cpus"), "{err:#}");
    }
}
