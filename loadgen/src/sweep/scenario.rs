//! The sweep's scenarios: named presets of `loadgen run` flags, each asking
//! one question of every model at every connection level.
//!
//! 1. `echo-saturate`: closed loop, one 64-byte ECHO in flight per
//!    connection. Throughput, latency, context switches and CPU per request
//!    under full load.
//! 2. `echo-paced`: open loop at a fixed total rate, well below what the
//!    slowest model that serves every connection can do. The same work is
//!    spread over more and more connections: what does that cost?
//! 3. `backend-delay`: every request is a 1 ms DELAY, a call to a slow
//!    backend. A blocking model holds a thread for it; an event loop sets a
//!    timer.
//! 4. `cpu-work`: ECHO mixed with COMPUTE of about 50 µs. An event loop that
//!    computes inline stalls every other connection meanwhile.

use anyhow::bail;

/// What a scenario needs to know to build its flags.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// `echo-paced`: requests per second, all connections together.
    pub rate: f64,
    /// `cpu-work`: COMPUTE rounds per request.
    pub rounds: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    flags: fn(&Knobs) -> Vec<String>,
}

impl Scenario {
    /// The `loadgen run` flags of this scenario (besides target, connections,
    /// windows and output files, which the sweep adds).
    pub fn flags(&self, knobs: &Knobs) -> Vec<String> {
        (self.flags)(knobs)
    }

    /// The request rate of an open-loop scenario (its `--rate`), `None`
    /// for a closed loop.
    pub fn rate(&self, knobs: &Knobs) -> Option<f64> {
        let flags = self.flags(knobs);
        flags.windows(2).find(|w| w[0] == "--rate").and_then(|w| w[1].parse().ok())
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `cpu-work`: the share of requests that are COMPUTE, in percent.
pub const COMPUTE_PERCENT: u32 = 20;
/// `backend-delay`: microseconds each DELAY asks for.
pub const DELAY_US: u32 = 1000;

pub const ALL: [Scenario; 4] = [
    Scenario {
        name: "echo-saturate",
        about: "closed loop, depth 1, 64-byte ECHO: throughput, latency and cost per request under full load",
        flags: |_| strings(&["--method", "echo", "--size", "64", "--depth", "1"]),
    },
    Scenario {
        name: "echo-paced",
        about: "open loop at a fixed total rate of 64-byte ECHOs: latency and cost per request as the same work \
                is spread over more connections",
        flags: |k| {
            let mut f = strings(&["--method", "echo", "--size", "64", "--rate"]);
            f.push(format!("{}", k.rate));
            f
        },
    },
    Scenario {
        name: "backend-delay",
        about: "closed loop, depth 1, every request a 1 ms DELAY: a blocked thread per request, or a timer",
        flags: |_| {
            let mut f = strings(&["--method", "delay", "--depth", "1", "--delay-us"]);
            f.push(DELAY_US.to_string());
            f
        },
    },
    Scenario {
        name: "cpu-work",
        about: "closed loop, depth 1, 64-byte ECHO mixed with COMPUTE of about 50 µs",
        flags: |k| {
            vec![
                "--mix".into(),
                format!("echo={},compute={COMPUTE_PERCENT}", 100 - COMPUTE_PERCENT),
                "--rounds".into(),
                k.rounds.to_string(),
                "--size".into(),
                "64".into(),
                "--depth".into(),
                "1".into(),
            ]
        },
    },
];

/// The scenarios run when `--scenario` is not given.
pub const DEFAULT: [&str; 2] = ["echo-saturate", "echo-paced"];

/// Parse `--scenario`: names separated by commas, or `all`.
pub fn select(list: &str) -> anyhow::Result<Vec<Scenario>> {
    if list.trim() == "all" {
        return Ok(ALL.to_vec());
    }
    let mut out: Vec<Scenario> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(s) = ALL.iter().find(|s| s.name == name) else {
            let names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
            bail!("--scenario {name}: no such scenario (choose from {}, or all)", names.join(", "))
        };
        if !out.iter().any(|o| o.name == s.name) {
            out.push(*s);
        }
    }
    if out.is_empty() {
        bail!("--scenario: give at least one scenario name, or all");
    }
    Ok(out)
}

/// COMPUTE rounds that take about `target_us` on this machine, and the
/// measured µs per round: the best of a few timed runs of `proto::compute`.
pub fn calibrate_rounds(target_us: f64) -> (u32, f64) {
    const PROBE: u32 = 2_000_000;
    let best = (0..5)
        .map(|i| {
            let t = std::time::Instant::now();
            std::hint::black_box(proto::compute(std::hint::black_box(i), PROBE));
            t.elapsed().as_secs_f64() * 1e6
        })
        .fold(f64::INFINITY, f64::min);
    let us_per_round = best / PROBE as f64;
    let rounds = (target_us / us_per_round).round().clamp(1.0, proto::MAX_ROUNDS as f64) as u32;
    (rounds, us_per_round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_by_name_or_all() {
        assert_eq!(select("all").unwrap().len(), 4);
        let names: Vec<&str> = select("cpu-work, echo-paced,cpu-work").unwrap().iter().map(|s| s.name).collect();
        assert_eq!(names, ["cpu-work", "echo-paced"]);
        let e = select("echo-saturate,fast").unwrap_err().to_string();
        assert!(e.contains("--scenario fast") && e.contains("backend-delay"), "{e}");
        assert!(select(" , ").is_err());
    }

    #[test]
    fn flags_carry_the_knobs() {
        let knobs = Knobs { rate: 2500.0, rounds: 777 };
        let paced = select("echo-paced").unwrap()[0].flags(&knobs);
        assert!(paced.windows(2).any(|w| w == ["--rate", "2500"]), "{paced:?}");
        let cpu = select("cpu-work").unwrap()[0].flags(&knobs);
        assert!(cpu.windows(2).any(|w| w == ["--rounds", "777"]), "{cpu:?}");
        assert!(cpu.windows(2).any(|w| w == ["--mix", "echo=80,compute=20"]), "{cpu:?}");
        assert_eq!(select("echo-paced").unwrap()[0].rate(&knobs), Some(2500.0));
        assert_eq!(select("echo-saturate").unwrap()[0].rate(&knobs), None);
    }

    #[test]
    fn calibration_gives_a_positive_round_count() {
        let (rounds, us) = calibrate_rounds(50.0);
        assert!(rounds >= 1 && us > 0.0);
    }
}
