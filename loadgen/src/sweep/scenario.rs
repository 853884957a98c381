//! The sweep's scenarios: named presets of what `loadgen run` sends, each asking
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
//! 5. `knee`: open loop, a ladder of total rates at 1000 and 5000
//!    connections: latency against offered load, the curve wrk2 users
//!    draw, and the highest rate each model sustains within an SLO (see
//!    [`super::ladder`]).
//! 6. `multiplex`: a few hundred connections, each with many requests in
//!    flight, 90% ECHO and 10% DELAY of 5 ms, at a load every model can
//!    carry: does an ECHO wait behind the DELAYs sent before it on its
//!    connection (head-of-line blocking, an in-order server) or not?
//! 7. `idle-1ms`, `idle-10ms` (`--scenario idle` selects both): closed loop
//!    with a think time equal to a network round trip, as clients over a
//!    real network would send: each connection waits a round trip between
//!    an answer and its next request.
//!
//! 8. `knee-budget`: the knee's ladder with the server under a CPU budget
//!    (`--server-cpu-budget F`, else the default one,
//!    [`crate::cgroup::DEFAULT_SERVER_CPU_BUDGET`]): the server, not the
//!    load generator, saturates first, so the knee is the server's. It is
//!    the one scenario that always runs budgeted ([`Budget::Always`]); see
//!    [`budgets`] for where it is refused or left out.
//!
//! 9. `scaling` (named only, not in `all`; at least 4 CPUs): echo-saturate
//!    with the server given 1, then 2, 4, … CPUs and the load generator the
//!    rest (see [`crate::cpus::scaling_steps`]); mio-multi runs one IO loop
//!    per CPU it is given. Each step is a scenario of its own,
//!    `scaling-<k>cpu`, with its own pinning.
//!
//! A scenario runs at the sweep's connection levels unless it has levels of
//! its own (`knee`, `multiplex`); `--levels` overrides both. A scenario with
//! a [`Ladder`] runs once per rate of it at each level.
//!
//! Each scenario is typed: what its connections send, and when, as a
//! run's configuration holds it ([`Requests`]); the sweep adds the rest of
//! the configuration and turns it into `loadgen run`'s flags in one place
//! (`RunArgs::to_argv`).
use anyhow::bail;

use crate::cgroup::{BudgetFlag, DEFAULT_SERVER_CPU_BUDGET};
use crate::records::config::{MethodArg, Mix, Requests};

/// What a scenario needs to know to build its requests.
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
    requests: fn(&Knobs) -> Requests,
    /// Connection levels of its own; `None`: the sweep's (`--levels`
    /// overrides either).
    pub levels: Option<&'static [u64]>,
    /// Open loop at each rate of a ladder (the rate is set per rung);
    /// `None`: one run per level.
    pub ladder: Option<Ladder>,
    /// Whether its servers run under a CPU budget.
    pub budget: Budget,
}

/// When a scenario's servers run in a cgroup with a CPU quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Only under `--server-cpu-budget F`, as every scenario then does.
    IfAsked,
    /// Always: under `--server-cpu-budget F` if given, else under the
    /// default budget; never without one (`knee-budget`).
    Always,
}

impl Scenario {
    /// What this scenario's connections send, and when (a ladder's rate
    /// is the sweep's to set, per rung).
    pub fn requests(&self, knobs: &Knobs) -> Requests {
        (self.requests)(knobs)
    }

    /// The `loadgen run` flags of this scenario's requests, as `env.json`
    /// lists them.
    pub fn flags(&self, knobs: &Knobs) -> Vec<String> {
        self.requests(knobs).to_argv()
    }

    /// The request rate of an open-loop scenario (its `--rate`), `None`
    /// for a closed loop.
    pub fn rate(&self, knobs: &Knobs) -> Option<f64> {
        self.requests(knobs).rate
    }
}

/// A ladder of offered rates, in two lengths: the full one (`--scenario
/// knee` or `all`, the reference) and a short one for `--quick` (and for
/// the default sweep, should [`DEFAULT`] name a ladder's scenario); and
/// both again for a server under a CPU budget (`--server-cpu-budget`),
/// whose rates are per budgeted CPU (the sweep multiplies them by the
/// budget).
#[derive(Clone, Copy, Debug)]
pub struct Ladder {
    pub full: Rungs,
    pub short: Rungs,
    pub budgeted_full: Rungs,
    pub budgeted_short: Rungs,
}

/// Which rates to offer at which connection levels.
#[derive(Clone, Copy, Debug)]
pub struct Rungs {
    pub levels: &'static [u64],
    /// Requests per second, all connections together, ascending.
    pub rates: &'static [f64],
}

/// 64-byte ECHOs, one in flight per connection: most scenarios' requests,
/// which they change in one or two fields.
fn echo() -> Requests {
    Requests { method: Some(MethodArg::Echo), size: 64, depth: 1, ..Requests::default() }
}

/// A mix, as `--mix` takes it (the scenarios' mixes are constants).
fn mix(text: &str) -> Option<Mix> {
    Some(crate::records::config::parse_mix(text).expect("a scenario's mix parses"))
}

/// `cpu-work`: the share of requests that are COMPUTE, in percent.
pub const COMPUTE_PERCENT: u32 = 20;
/// `backend-delay`: microseconds each DELAY asks for.
pub const DELAY_US: u32 = 1000;

/// `knee`: the rate ladder, requests per second over all connections.
///
/// Chosen by measurement on this project's 2-core machine (server on CPU 0,
/// `loadgen run` on CPU 1, 2 s windows, only while nothing else ran; with
/// other work on the machine every p99 was 10-100× worse and useless).
/// The load generator's limit: against mio-single, the cheapest model, it
/// was 100% busy from 100k on and still kept p99 within 1 ms up to 160k at
/// 1000 connections (4 ms at 180k, 11 ms at 200k, the server 93-96% busy
/// too) and up to 100k at 5000 (2.2 ms at 120k, 370 ms at 140k). The
/// models' knees (first rate over a 10 ms p99): thread-per-conn 70-80k at
/// 1000 connections and 50-60k at 5000; libevent about 100k at 5000 (its
/// server 100% busy); tokio and mio-multi first missed at 140k (5000) and
/// 140-160k (1000), the load generator 96-100% busy there. So the ladder ends at
/// 200k, past the load generator's limit at both levels, in steps of 10k up
/// to 80k (thread-per-conn's knees) and of 20k above.
pub const KNEE_RATES: [f64; 14] =
    [10e3, 20e3, 30e3, 40e3, 50e3, 60e3, 70e3, 80e3, 100e3, 120e3, 140e3, 160e3, 180e3, 200e3];
/// `knee`: the short ladder (`--quick`, or the default sweep should
/// [`DEFAULT`] name the knee), at 5000 connections only,
/// where the argument is decided: one rate every model sustains, one past
/// thread-per-conn's knee, one past libevent's and below the other event
/// loops'.
pub const KNEE_SHORT_RATES: [f64; 3] = [20e3, 60e3, 100e3];
/// `knee` under a CPU budget: the ladder per budgeted CPU (0.3 CPU: 3k to
/// 54k req/s). Steps of 10k per CPU up to 100k, then of 20k. Measured at
/// 0.3 CPU (`results/budget-knee/`, 3 passes, where the ladder ended at
/// 140k per CPU): thread-per-conn's knees were 20k–50k per CPU,
/// mio-single's and mio-multi's 100k–140k, and uring sustained the top,
/// 140k, at 1000 connections in two passes; so the ladder now climbs to
/// 180k per CPU.
pub const KNEE_RATES_PER_CPU: [f64; 14] =
    [10e3, 20e3, 30e3, 40e3, 50e3, 60e3, 70e3, 80e3, 90e3, 100e3, 120e3, 140e3, 160e3, 180e3];
/// `knee` under a CPU budget, `--quick`: per budgeted CPU, at 1000
/// connections (5000 threads' warm-ups alone take about 10 s a run under
/// 0.3 CPU), one rate every model but pool sustained, one past
/// thread-per-conn's knee (20k–50k per CPU in `results/budget-knee/`), and
/// one past every event loop's seen there (at most 140k per CPU).
pub const KNEE_SHORT_RATES_PER_CPU: [f64; 3] = [10e3, 60e3, 160e3];
/// `knee` under a CPU budget, `--quick`: its one level.
pub const KNEE_SHORT_BUDGETED_LEVELS: [u64; 1] = [1000];
/// `knee`: connection levels.
pub const KNEE_LEVELS: [u64; 2] = [1000, 5000];

/// The knee's ladders: `knee` climbs the unbudgeted ones unless the sweep
/// has a budget; `knee-budget` always the budgeted ones.
const KNEE_LADDER: Ladder = Ladder {
    full: Rungs { levels: &KNEE_LEVELS, rates: &KNEE_RATES },
    short: Rungs { levels: &[5000], rates: &KNEE_SHORT_RATES },
    budgeted_full: Rungs { levels: &KNEE_LEVELS, rates: &KNEE_RATES_PER_CPU },
    budgeted_short: Rungs { levels: &KNEE_SHORT_BUDGETED_LEVELS, rates: &KNEE_SHORT_RATES_PER_CPU },
};

/// `multiplex`: microseconds each DELAY asks for, and the mix.
pub const MULTIPLEX_DELAY_US: u32 = 5000;
pub const MULTIPLEX_MIX: &str = "echo=90,delay=10";
/// `multiplex`: requests per connection sent together (`--depth`), and the
/// think time (µs) after each answer before its slot sends again.
///
/// `loadgen run`'s open loop keeps one request in flight per connection, so
/// many in flight at a moderate rate means a closed loop with think time.
/// 16 slots thinking 400 ms offer about 40 requests/s per connection (8k
/// req/s at 200 connections, 20k at 500: far below every model's
/// capacity), and a connection's slots go out together as pipelined
/// bursts. Measured on this project's 2-core machine at 50, 200 and 500
/// connections, in short probes and a whole sweep: ECHO p99 10-15 ms behind
/// DELAYs of 5 ms on thread-per-conn and pool (pool at 50 only: beyond its
/// 64 threads it starves connections), 220-540 µs on mio-single,
/// mio-multi, tokio and libevent (one tokio probe in five: 63 ms, its
/// DELAY p99 85 ms too); ECHO p50 50-125 µs on every model.
pub const MULTIPLEX_DEPTH: u32 = 16;
pub const MULTIPLEX_THINK_US: u64 = 400_000;
/// `multiplex`: connection levels: 50 fits the pool's 64 threads, so the
/// pool shows its answer order too; 200 and 500 are "a few hundred".
pub const MULTIPLEX_LEVELS: [u64; 3] = [50, 200, 500];

/// `idle-*`: the emulated network round trips, as think times (µs).
pub const IDLE_RTT_US: [u64; 2] = [1000, 10_000];

/// What most scenarios share, and change in a field or two: 64-byte ECHOs
/// at the sweep's levels, no ladder, a CPU budget only if asked.
const BASE: Scenario =
    Scenario { name: "", about: "", requests: |_| echo(), levels: None, ladder: None, budget: Budget::IfAsked };

pub const ALL: [Scenario; 9] = [
    Scenario {
        name: "echo-saturate",
        about: "closed loop, depth 1, 64-byte ECHO: throughput, latency and cost per request under full load",
        ..BASE
    },
    Scenario {
        name: "echo-paced",
        about: "open loop at a fixed total rate of 64-byte ECHOs: latency and cost per request as the same work \
                is spread over more connections",
        requests: |k| Requests { rate: Some(k.rate), ..echo() },
        ..BASE
    },
    Scenario {
        name: "backend-delay",
        about: "closed loop, depth 1, every request a 1 ms DELAY: a blocked thread per request, or a timer",
        requests: |_| Requests { method: Some(MethodArg::Delay), delay_us: DELAY_US, ..echo() },
        ..BASE
    },
    Scenario {
        name: "cpu-work",
        about: "closed loop, depth 1, 64-byte ECHO mixed with COMPUTE of about 50 µs",
        requests: |k| Requests {
            method: None,
            mix: mix(&format!("echo={},compute={COMPUTE_PERCENT}", 100 - COMPUTE_PERCENT)),
            rounds: k.rounds,
            ..echo()
        },
        ..BASE
    },
    Scenario {
        name: "knee",
        about: "open loop, 64-byte ECHO, a ladder of offered rates: latency against offered load, and the highest \
                rate each model sustains within the SLO",
        levels: Some(&KNEE_LEVELS),
        ladder: Some(KNEE_LADDER),
        ..BASE
    },
    Scenario {
        name: "knee-budget",
        about: "the knee's ladder with the server under a CPU budget (--server-cpu-budget, else 0.3 CPU): the \
                server saturates before the load generator, so the knee found is the server's",
        levels: Some(&KNEE_LEVELS),
        ladder: Some(KNEE_LADDER),
        budget: Budget::Always,
        ..BASE
    },
    Scenario {
        name: "multiplex",
        about: "closed loop with think time, many requests in flight per connection, 90% ECHO and 10% DELAY of \
                5 ms, at a load every model carries: ECHO latency apart from DELAY shows head-of-line blocking",
        requests: |_| Requests {
            method: None,
            mix: mix(MULTIPLEX_MIX),
            delay_us: MULTIPLEX_DELAY_US,
            depth: MULTIPLEX_DEPTH,
            think_us: Some(MULTIPLEX_THINK_US),
            ..echo()
        },
        levels: Some(&MULTIPLEX_LEVELS),
        ..BASE
    },
    Scenario {
        name: "idle-1ms",
        about: "closed loop, depth 1, 64-byte ECHO, 1 ms think time after each answer: a client one 1 ms round \
                trip away; the offered load is connections / (1 ms + latency)",
        requests: |_| Requests { think_us: Some(IDLE_RTT_US[0]), ..echo() },
        ..BASE
    },
    Scenario {
        name: "idle-10ms",
        about: "closed loop, depth 1, 64-byte ECHO, 10 ms think time after each answer: a client one 10 ms round \
                trip away; the offered load is connections / (10 ms + latency)",
        requests: |_| Requests { think_us: Some(IDLE_RTT_US[1]), ..echo() },
        ..BASE
    },
];

/// The scenarios run when `--scenario` is not given. The knee is not here:
/// its short ladder (3 rates at 5000 connections, about 2.75 s a run)
/// would add 3 runs per model and pass (63 with seven models and the
/// default 3 passes, about 170 s) to a default sweep that already takes
/// about 12 minutes from a fresh clone (a plan of 7m51s with seven models,
/// and a release build of 2m58s). Adding "knee" to this line is all it
/// takes to run it, with its short ladder.
pub const DEFAULT: [&str; 2] = ["echo-saturate", "echo-paced"];

/// `scaling`: the name `--scenario` takes, and its connection levels.
pub const SCALING: &str = "scaling";
pub const SCALING_LEVELS: [u64; 1] = [1000];

/// One step of the `scaling` scenario, `scaling-<k>cpu`: echo-saturate's
/// closed loop at [`SCALING_LEVELS`], for a server on `server_cpus` CPUs
/// (the sweep pins it; see [`crate::cpus::scaling_steps`]). The name lives
/// as long as the sweep, like the others'.
pub fn scaling_step(server_cpus: usize) -> Scenario {
    Scenario {
        name: Box::leak(format!("{SCALING}-{server_cpus}cpu").into_boxed_str()),
        about: "closed loop, depth 1, 64-byte ECHO, the server on a given number of CPUs and the load generator \
                on the rest: how each model's throughput grows with its CPUs",
        levels: Some(&SCALING_LEVELS),
        ..BASE
    }
}

/// Whether `--scenario` names the `scaling` scenario (whose steps the
/// sweep works out from its CPUs: [`select`] leaves it out).
pub fn wants_scaling(list: &str) -> bool {
    list.split(',').map(str::trim).any(|n| n == SCALING)
}

/// Names `--scenario` accepts for several scenarios at once.
const GROUPS: [(&str, &[&str]); 1] = [("idle", &["idle-1ms", "idle-10ms"])];

/// Parse `--scenario`: names (or groups, such as `idle`) separated by
/// commas, or `all`.
pub fn select(list: &str) -> anyhow::Result<Vec<Scenario>> {
    if list.trim() == "all" {
        return Ok(ALL.to_vec());
    }
    let mut out: Vec<Scenario> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty() && *n != SCALING) {
        let members = GROUPS.iter().find(|g| g.0 == name).map_or(vec![name], |g| g.1.to_vec());
        for member in members {
            let Some(s) = ALL.iter().find(|s| s.name == member) else {
                let names: Vec<&str> =
                    ALL.iter().map(|s| s.name).chain(GROUPS.iter().map(|g| g.0)).chain([SCALING]).collect();
                bail!("--scenario {name}: no such scenario (choose from {}, or all)", names.join(", "))
            };
            if !out.iter().any(|o| o.name == s.name) {
                out.push(*s);
            }
        }
    }
    if out.is_empty() && !wants_scaling(list) {
        bail!("--scenario: give at least one scenario name, or all");
    }
    Ok(out)
}

/// A scenario that runs, with its CPU budget (`None`: none).
pub type WithBudget = (Scenario, Option<f64>);

/// The chosen scenarios that run, each with the CPU budget of its servers
/// (CPUs; `None`: none), and a note for each left out.
///
/// With `--server-cpu-budget F` (`flag`) every scenario runs under F, as
/// a budget for the whole sweep always has. Otherwise a [`Budget::Always`]
/// scenario (`knee-budget`) runs under the default budget and the others
/// under none; and where it can have no budget (`--server-cpu-budget off`,
/// or `no_cgroup`: why no cgroup can be made here) it is refused when
/// `--scenario` named it (`named`), and left out of `all`, saying why.
pub fn budgets(
    chosen: Vec<Scenario>,
    flag: Option<BudgetFlag>,
    named: bool,
    no_cgroup: Option<&str>,
) -> anyhow::Result<(Vec<WithBudget>, Vec<String>)> {
    if let (Some(BudgetFlag::Cpus(f)), Some(why)) = (flag, no_cgroup) {
        bail!("--server-cpu-budget {f}: cannot budget the server: {why}");
    }
    let (mut kept, mut notes) = (Vec::new(), Vec::new());
    for s in chosen {
        let budget = match (s.budget, flag) {
            (_, Some(BudgetFlag::Cpus(f))) => Ok(Some(f)),
            (Budget::IfAsked, _) => Ok(None),
            (Budget::Always, Some(BudgetFlag::Off)) => {
                Err("it runs only under a CPU budget, and --server-cpu-budget off gives it none".to_string())
            }
            (Budget::Always, None) => match no_cgroup {
                Some(why) => Err(format!("it runs only under a CPU budget, and none can be set here: {why}")),
                None => Ok(Some(DEFAULT_SERVER_CPU_BUDGET)),
            },
        };
        match budget {
            Ok(budget) => kept.push((s, budget)),
            Err(why_none) if named => bail!("--scenario {}: {why_none}", s.name),
            Err(why_none) => notes.push(format!("{}: left out of --scenario all: {why_none}", s.name)),
        }
    }
    Ok((kept, notes))
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
        assert_eq!(select("all").unwrap().len(), ALL.len());
        let names: Vec<&str> = select("cpu-work, echo-paced,cpu-work").unwrap().iter().map(|s| s.name).collect();
        assert_eq!(names, ["cpu-work", "echo-paced"]);
        let e = select("echo-saturate,fast").unwrap_err().to_string();
        assert!(e.contains("--scenario fast") && e.contains("backend-delay"), "{e}");
        assert!(select(" , ").is_err());
        let idle: Vec<&str> = select("idle,idle-10ms").unwrap().iter().map(|s| s.name).collect();
        assert_eq!(idle, ["idle-1ms", "idle-10ms"]);
        let e = select("knee,nope").unwrap_err().to_string();
        assert!(e.contains("multiplex") && e.contains("idle"), "{e}");
    }

    /// Which scenarios get which budget, and why one is refused or left out.
    #[test]
    fn knee_budget_runs_under_a_budget_or_says_why_not() {
        let budget_of = |chosen: &str, flag, no_cgroup| {
            let named = chosen != "all";
            budgets(select(chosen).unwrap(), flag, named, no_cgroup).map(|(kept, notes)| {
                let each: Vec<(&str, Option<f64>)> = kept.iter().map(|(s, b)| (s.name, *b)).collect();
                (each, notes)
            })
        };
        let default = Some(DEFAULT_SERVER_CPU_BUDGET);
        // No flag: knee-budget alone is budgeted, at the default.
        let (each, notes) = budget_of("knee,knee-budget", None, None).unwrap();
        assert_eq!((each, notes.len()), (vec![("knee", None), ("knee-budget", default)], 0));
        // A budget for the sweep: every scenario under it, knee-budget too.
        let (each, _) = budget_of("echo-saturate,knee-budget", Some(BudgetFlag::Cpus(0.5)), None).unwrap();
        assert_eq!(each, [("echo-saturate", Some(0.5)), ("knee-budget", Some(0.5))]);
        // `off`: named, refused; in `all`, left out with the reason.
        let e = budget_of("knee-budget", Some(BudgetFlag::Off), None).unwrap_err().to_string();
        assert!(e.contains("--scenario knee-budget") && e.contains("--server-cpu-budget off"), "{e}");
        let (each, notes) = budget_of("all", Some(BudgetFlag::Off), None).unwrap();
        assert_eq!(each.len(), ALL.len() - 1);
        assert!(each.iter().all(|(n, b)| *n != "knee-budget" && b.is_none()), "{each:?}");
        assert!(notes.len() == 1 && notes[0].starts_with("knee-budget: left out") && notes[0].contains("off"));
        // No cgroup here: named, refused; in `all`, left out; both say why.
        let why = Some("a CPU budget needs root to create cgroups (running as uid 1000)");
        let e = budget_of("knee-budget", None, why).unwrap_err().to_string();
        assert!(e.contains("--scenario knee-budget") && e.contains("needs root"), "{e}");
        let (each, notes) = budget_of("all", None, why).unwrap();
        assert!(each.iter().all(|(n, b)| *n != "knee-budget" && b.is_none()), "{each:?}");
        assert!(notes.len() == 1 && notes[0].contains("needs root"), "{notes:?}");
        // Nothing that needs one: no cgroup is no matter.
        assert_eq!(budget_of("knee", None, why).unwrap().0, [("knee", None)]);
        // A budget for the sweep that cannot be set: refused, as always.
        let e = budget_of("knee", Some(BudgetFlag::Cpus(0.3)), why).unwrap_err().to_string();
        assert!(e.contains("--server-cpu-budget 0.3: cannot budget the server: a CPU budget needs root"), "{e}");
    }

    /// Each scenario's flags carry its constants and the knobs; a ladder
    /// leaves the rate to each rung.
    #[test]
    fn flags_carry_the_constants_and_the_knobs() {
        let knobs = Knobs { rate: 2500.0, rounds: 777 };
        for (name, pair) in [
            ("multiplex", ["--mix", "echo=90,delay=10"]),
            ("multiplex", ["--delay-us", "5000"]),
            ("idle-10ms", ["--think-us", "10000"]),
            ("echo-paced", ["--rate", "2500"]),
            ("cpu-work", ["--rounds", "777"]),
            ("cpu-work", ["--mix", "echo=80,compute=20"]),
        ] {
            let flags = select(name).unwrap()[0].flags(&knobs);
            assert!(flags.windows(2).any(|w| w == pair), "{name}: {flags:?}");
        }
        assert_eq!(select("echo-paced").unwrap()[0].rate(&knobs), Some(2500.0));
        assert_eq!(select("echo-saturate").unwrap()[0].rate(&knobs), None);
        let knee = select("knee").unwrap()[0];
        assert!(!knee.flags(&knobs).contains(&"--rate".to_string()), "the sweep adds each rung's --rate");
        let ladder = knee.ladder.unwrap();
        assert!(ladder.full.rates.windows(2).all(|w| w[0] < w[1]), "ascending");
        assert!(ladder.short.rates.len() < ladder.full.rates.len());
    }

    #[test]
    fn calibration_gives_a_positive_round_count() {
        let (rounds, us) = calibrate_rounds(50.0);
        assert!(rounds >= 1 && us > 0.0);
    }
}
