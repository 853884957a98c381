//! The project's performance targets, judged from a sweep's echo-saturate
//! cells: each one met, not met (naming the cases that missed), or not
//! judged (saying why). `tables.md` and REPORT.md list them under the
//! performance table ([`crate::output::markdown::performance_table`]).
//!
//! 1. The event loops written here ([`Role::EventLoop`]: mio-single and
//!    mio-multi) cost at most [`FLOOR_RATIO_TARGET`] floor pairs of server
//!    CPU per request.
//! 2. mio-multi keeps up with the peers ([`Role::Peer`]: tokio, libevent)
//!    on throughput and server CPU per request.
//! 3. The load generator is cheaper than every server (a), and small (b).
//!
//! A figure against a fixed limit is judged by its median; one model
//! against another by the project's rule ([`cells::judge`]): paired by
//! pass, with the target's comparisons one family under Holm's correction.

use super::cells::{self, Cell, Comparison, Contender, Order, COMPARED};
use crate::fmt::{mib, spread_text};
use crate::models::{self, Role};
use crate::records::sweep::{Record, Summary};

/// The scenario the performance table and targets are about.
pub const SATURATE: &str = "echo-saturate";
/// Target 1: server CPU per request at most this many floor pairs.
pub const FLOOR_RATIO_TARGET: f64 = 1.5;
/// Target 1 holds for the event loops at these levels (inclusive).
const TARGET_LEVELS: (u64, u64) = (200, 5000);
/// Target 2: this model against the peers, at these levels.
pub const PEERS_CHALLENGER: &str = "mio-multi";
const PEER_LEVELS: [u64; 2] = [1000, 5000];
/// Target 3: the load generator's RSS at the top level stays under this.
const LOADGEN_RSS_LIMIT: u64 = 64 << 20;
const LOADGEN_RSS_LEVEL: u64 = 5000;

/// One performance target, judged from a sweep.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub what: String,
    pub judgement: Judgement,
}

/// How a target fared.
#[derive(Debug, PartialEq)]
pub enum Judgement {
    Met,
    /// The cases that missed it.
    NotMet(Vec<String>),
    /// Why it could not be judged.
    NoData(String),
}

impl Judgement {
    pub fn word(&self) -> &'static str {
        match self {
            Judgement::Met => "met",
            Judgement::NotMet(_) => "not met",
            Judgement::NoData(_) => "not judged",
        }
    }

    /// Met when something was judged and nothing missed.
    fn from(judged: usize, misses: Vec<String>, none: &str) -> Judgement {
        match (judged, misses.is_empty()) {
            (0, _) => Judgement::NoData(none.to_string()),
            (_, true) => Judgement::Met,
            (_, false) => Judgement::NotMet(misses),
        }
    }
}

impl Target {
    /// What missed, or why it was not judged, in parentheses.
    pub fn detail(&self) -> String {
        match &self.judgement {
            Judgement::Met => String::new(),
            Judgement::NotMet(misses) => format!(" ({})", misses.join("; ")),
            Judgement::NoData(why) => format!(" ({why})"),
        }
    }
}

/// Judge every target from the echo-saturate cells (`pair`: the floor
/// pair, CPU µs).
pub fn targets(summary: &Summary, pair: Option<f64>) -> Vec<Target> {
    vec![
        event_loops_near_the_floor(summary, pair),
        challenger_keeps_up_with_the_peers(summary),
        loadgen_cheaper_than_every_server(summary),
        loadgen_small(summary),
    ]
}

/// The echo-saturate cell of `model` at `level`, if any run of it succeeded.
fn ok_cell<'a>(summary: &'a Summary, model: &'a str, level: u64) -> Option<Cell<'a>> {
    summary.cell(SATURATE, model, level).filter(|c| c.ok_runs().count() > 0)
}

/// Whether `a` misses against `b` on a figure: behind after the
/// family's correction; with too few passes for a test, simply worse.
fn misses(a: &Contender, b: &Contender, judged: &Comparison) -> bool {
    match judged.order_of(&a.model) {
        Order::Behind => true,
        Order::Unjudged => match judged.rule.better {
            cells::Better::Higher => a.spread.median < b.spread.median,
            cells::Better::Lower => a.spread.median > b.spread.median,
        },
        Order::Ahead | Order::Tie => false,
    }
}

/// 1. The event loops' server CPU per request against the floor pair.
fn event_loops_near_the_floor(summary: &Summary, pair: Option<f64>) -> Target {
    let event_loops: Vec<&str> = models::with_role(Role::EventLoop).collect();
    let levels = summary.levels(SATURATE);
    let (mut judged, mut missed) = (0, Vec::new());
    if let Some(pair) = pair {
        for &model in &event_loops {
            for &level in levels.iter().filter(|&&l| (TARGET_LEVELS.0..=TARGET_LEVELS.1).contains(&l)) {
                let Some(cpu) = ok_cell(summary, model, level).and_then(|c| c.spread(Record::server_cpu)) else {
                    continue;
                };
                judged += 1;
                if cpu.median > FLOOR_RATIO_TARGET * pair {
                    missed.push(format!("{model} at {level}: {:.2}×", cpu.median / pair));
                }
            }
        }
    }
    let none = match pair {
        None => "no floor measured (--no-floor)".to_string(),
        Some(_) => format!("no {} run", event_loops.join(" or ")),
    };
    Target {
        what: format!(
            "1. {} server CPU per request (median) ≤ {FLOOR_RATIO_TARGET}× the floor pair at {}–{} connections",
            event_loops.join(" and "),
            TARGET_LEVELS.0,
            TARGET_LEVELS.1
        ),
        judgement: Judgement::from(judged, missed, &none),
    }
}

/// 2. [`PEERS_CHALLENGER`] against each peer: behind only beyond the spread.
fn challenger_keeps_up_with_the_peers(summary: &Summary) -> Target {
    let me = PEERS_CHALLENGER;
    let peers: Vec<&str> = models::with_role(Role::Peer).collect();
    let (mut judged, mut missed) = (0, Vec::new());
    // Every comparison first, then the correction over all of them, then
    // the misses.
    let mut family: Vec<(u64, &str, &cells::Compared, Contender, Contender, Comparison)> = Vec::new();
    for &peer in &peers {
        for level in PEER_LEVELS {
            let (Some(m), Some(p)) = (ok_cell(summary, me, level), ok_cell(summary, peer, level)) else {
                continue;
            };
            judged += 1;
            for figure in COMPARED.iter().filter(|f| f.name == "req/s" || f.name == "server CPU µs/req") {
                let (Some(a), Some(b)) = (Contender::of(&m, figure), Contender::of(&p, figure)) else { continue };
                let comparison = Comparison::paired(&a, &b, figure.rule);
                family.push((level, peer, figure, a, b, comparison));
            }
        }
    }
    cells::correct(family.iter_mut().map(|f| &mut f.5));
    for (level, peer, figure, a, b, comparison) in &family {
        if misses(a, b, comparison) {
            let few = if comparison.order_of(me) == Order::Unjudged { ", too few passes to test" } else { "" };
            missed.push(format!(
                "{level} conns: {} {} vs {peer}'s {}{few}",
                spread_text(&a.spread, figure.fmt),
                figure.name,
                spread_text(&b.spread, figure.fmt)
            ));
        }
    }
    let possessive: Vec<String> = peers.iter().map(|p| format!("{p}'s")).collect();
    Target {
        what: format!(
            "2. {me}'s throughput ≥ {}, and its server CPU per request ≤ theirs, at {} connections (a tie unless the \
             paired passes show a difference, or where the throughput was loadgen-saturated)",
            possessive.join(" and "),
            PEER_LEVELS.map(|l| l.to_string()).join(" and ")
        ),
        judgement: Judgement::from(judged, missed, &format!("{me} and a peer did not both run at those levels")),
    }
}

/// 3a. The load generator's CPU per request below the server's, everywhere.
fn loadgen_cheaper_than_every_server(summary: &Summary) -> Target {
    let (mut judged, mut missed) = (0, Vec::new());
    for model in &summary.models_in(SATURATE) {
        for &level in &summary.levels(SATURATE) {
            let Some(c) = ok_cell(summary, model, level) else { continue };
            let (Some(cpu), Some(lg)) = (c.spread(Record::server_cpu), c.spread(Record::loadgen_cpu)) else {
                continue;
            };
            judged += 1;
            if lg.median >= cpu.median {
                missed.push(format!("{model} at {level}: {:.2}× the server's", lg.median / cpu.median));
            }
        }
    }
    Target {
        what: "3a. the load generator's CPU per request (median) below the server's, for every model and level".into(),
        judgement: Judgement::from(judged, missed, "no run with server figures"),
    }
}

/// 3b. The load generator's peak RSS at the top level under its limit.
fn loadgen_small(summary: &Summary) -> Target {
    let (mut judged, mut missed) = (0, Vec::new());
    for model in &summary.models_in(SATURATE) {
        let Some(rss) = ok_cell(summary, model, LOADGEN_RSS_LEVEL).and_then(|c| c.spread(Record::loadgen_rss)) else {
            continue;
        };
        judged += 1;
        if rss.max >= LOADGEN_RSS_LIMIT as f64 {
            missed.push(format!("against {model}: {}", mib(rss.max as u64)));
        }
    }
    Target {
        what: format!(
            "3b. the load generator's peak RSS at {LOADGEN_RSS_LEVEL} connections under {} in every run",
            mib(LOADGEN_RSS_LIMIT)
        ),
        judgement: Judgement::from(judged, missed, "no valid run at that level"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{self, scale};

    /// The misses of a target that was not met.
    fn misses_of(t: &Target) -> &[String] {
        match &t.judgement {
            Judgement::NotMet(m) => m,
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn the_challenger_is_a_known_event_loop() {
        assert_eq!(models::known(PEERS_CHALLENGER).map(|k| k.role), Some(Role::EventLoop));
    }

    #[test]
    fn the_targets_read_as_before() {
        let t = targets(&testdata::summary(), Some(8.0));
        assert_eq!(
            t[0].what,
            "1. mio-single and mio-multi server CPU per request (median) ≤ 1.5× the floor pair at 200–5000 connections"
        );
        assert_eq!(
            t[1].what,
            "2. mio-multi's throughput ≥ tokio's and libevent's, and its server CPU per request ≤ theirs, at 1000 \
             and 5000 connections (a tie unless the paired passes show a difference, or where the throughput was \
             loadgen-saturated)"
        );
    }

    #[test]
    fn targets_are_judged_from_the_data() {
        let mut summary = testdata::summary();
        // Floor 8 µs: 10 µs is 1.25×, met; floor 5 µs: 2×, not met at every level.
        assert_eq!(targets(&summary, Some(8.0))[0].judgement, Judgement::Met);
        assert_eq!(misses_of(&targets(&summary, Some(5.0))[0]).len(), 6);
        // No libevent, and tokio at 1000 only: one comparison, equal figures: met.
        assert_eq!(targets(&summary, None)[1].judgement, Judgement::Met);
        // The load generator (5 µs) is cheaper than every server (10 µs).
        assert_eq!(targets(&summary, None)[2].judgement, Judgement::Met);
        assert!(matches!(targets(&summary, None)[3].judgement, Judgement::NoData(_)), "no run at 5000");
        let tokio = summary.records.iter_mut().find(|r| r.model == "tokio" && r.level == 1000).unwrap();
        let x = tokio.result.as_mut().unwrap();
        x.throughput_rps = 1e6;
        x.server.as_mut().unwrap().cpu_us_per_req = 4.0;
        x.loadgen.cpu_us_per_req = 4.0;
        let t = targets(&summary, None);
        assert_eq!(misses_of(&t[1]).len(), 2, "one run each: both missed on the values");
        assert_eq!(misses_of(&t[2]), ["tokio at 1000: 1.00× the server's"]);
    }

    #[test]
    fn target_2_is_missed_only_beyond_the_spread() {
        let mut summary = testdata::summary_repeated(3);
        assert_eq!(targets(&summary, None)[1].judgement, Judgement::Met);
        // tokio 1% faster on average (and 1% dearer), with ±2% noise of its
        // own per pass: within the noise, a tie.
        testdata::jitter(&mut summary, "tokio", 1000, &[1.03, 0.99, 1.01]);
        assert_eq!(targets(&summary, None)[1].judgement, Judgement::Met, "ties are not misses");
        // tokio twice as fast: a miss, unless mio-multi was loadgen-saturated.
        scale(&mut summary, "tokio", 1000, |x| x.throughput_rps *= 2.0);
        let m = misses_of(&targets(&summary, None)[1]).to_vec();
        assert!(m.len() == 1 && m[0].contains("req/s vs tokio's"), "{m:?}");
        for r in summary.records.iter_mut().filter(|r| r.model == "mio-multi" && r.level == 1000 && r.repeat == 2) {
            r.loadgen_saturated = true;
        }
        assert_eq!(targets(&summary, None)[1].judgement, Judgement::Met, "a loadgen-saturated throughput ties");
    }
}
