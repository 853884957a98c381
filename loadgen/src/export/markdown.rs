//! `tables.md`, and the tables that `loadgen report --update-report` puts
//! into REPORT.md between marker comments.
//!
//! Per scenario, two tables:
//!
//! - [`scenario_table`]: one row per model × level with throughput, latency
//!   percentiles, context switches and CPU per request, memory, threads,
//!   connections established, mismatches and the failure, if any.
//! - [`peer_table`]: the event-loop peers (mio-multi, mio-single, tokio,
//!   libevent) side by side per level: throughput, CPU µs and context
//!   switches per request.
//! - [`attribution_table`]: who was charged for the CPU, per model × level:
//!   server, load generator and both together, and from /proc/stat the
//!   softirq share on each side's CPUs; with [`ATTRIBUTION`], the note that
//!   says which side each figure charges.
//!
//! A scenario that ran a ladder of offered rates (`knee`) has two others
//! instead, see [`crate::sweep::knee`]:
//!
//! - [`knee_table`]: per model × level, the highest offered rate sustained
//!   within the SLO, and that rung's latency, CPU and context switches per
//!   request; "≥ X (load generator's limit)" where the ladder could not
//!   find the model's knee.
//! - [`rung_table`]: every rung, with its verdict.
//!
//! A scenario whose runs kept ECHO's and DELAY's latency apart
//! (`multiplex`) has one more, [`method_table`]: ECHO's p50 and p99 beside
//! the DELAY's length, and whether ECHOs waited behind DELAYs.
//!
//! And two that set the figures against the floor the sweep measured
//! (`env.json`, see `loadgen floor`), for REPORT.md's regions `floor` and
//! `performance`:
//!
//! - [`floor_table`]: the floors themselves.
//! - [`performance_table`]: echo-saturate per model × level: server CPU per
//!   request against the floor pair, throughput, the load generator's own
//!   CPU per request and RSS, and the spread of answers per connection;
//!   then the performance targets, each marked met or not from these data.

use std::fmt::Write;

use super::Exporter;
use crate::sweep::env::SweepFloor;
use crate::sweep::knee::{self, Knee};
use crate::sweep::summary::{Record, Status, Summary};

pub struct Markdown;

/// The models the peer table compares, in column order.
pub const PEERS: [&str; 4] = ["mio-multi", "mio-single", "tokio", "libevent"];

impl Exporter for Markdown {
    fn file_name(&self) -> &'static str {
        "tables.md"
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut out = format!("# Sweep {}\n", summary.run_id);
        for scenario in summary.scenarios.iter().filter(|s| summary.is_ladder(s)) {
            let _ = write!(out, "\n## {scenario}\n\n{}", knee_table(summary, scenario));
            let _ = write!(out, "\n### {scenario}: every rung\n\n{}", rung_table(summary, scenario));
        }
        for scenario in summary.scenarios.iter().filter(|s| !summary.is_ladder(s)) {
            let _ = write!(out, "\n## {scenario}\n\n{}", scenario_table(summary, scenario));
            let peers = peer_table(summary, scenario);
            if !peers.is_empty() {
                let _ = write!(out, "\n### {scenario}: event-loop peers\n\n{peers}");
            }
            if delay_us(summary, scenario).is_some() {
                let _ = write!(out, "\n### {scenario}: ECHO beside DELAY\n\n{}", method_table(summary, scenario));
            }
            let _ = write!(
                out,
                "\n### {scenario}: who was charged for the CPU\n\n{}",
                attribution_table(summary, scenario)
            );
        }
        Ok(out.into_bytes())
    }
}

/// Rows model × level (models in sweep order, levels ascending).
pub fn scenario_table(summary: &Summary, scenario: &str) -> String {
    let mut out = String::from(
        "| model | conns | est./req. | req/s | p50 | p99 | p99.9 | cs/req (vol+invol) | CPU µs/req | RSS | threads | answers/conn min/p1/med/max | mismatches | failure |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut bound = false;
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let Some(r) = summary.find(scenario, &model, level) else { continue };
            bound |= r.loadgen_bound && r.status == Status::Ok;
            let _ = writeln!(out, "{}", row(r));
        }
    }
    if bound {
        out.push_str("\n\\* loadgen-bound: the load generator's CPU, not the server, was the limit.\n");
    }
    out
}

fn row(r: &Record) -> String {
    let dash = || "–".to_string();
    let res = r.result.as_ref();
    let server = res.and_then(|x| x.server.as_ref());
    let est = res.map(|x| format!("{}/{}", x.connections.established, x.connections.requested)).unwrap_or_else(dash);
    let (rps, p50, p99, p999) = match res.filter(|_| r.status == Status::Ok) {
        Some(x) => (
            format!("{}{}", thousands(x.throughput_rps), if r.loadgen_bound { "\\*" } else { "" }),
            us(x.latency.p50),
            us(x.latency.p99),
            us(x.latency.p999),
        ),
        None => (dash(), dash(), dash(), dash()),
    };
    let cs = server
        .map(|s| {
            format!(
                "{} ({}+{})",
                num(s.voluntary_cs_per_req + s.involuntary_cs_per_req),
                num(s.voluntary_cs_per_req),
                num(s.involuntary_cs_per_req)
            )
        })
        .unwrap_or_else(dash);
    let cpu = server.map(|s| num(s.cpu_us_per_req)).unwrap_or_else(dash);
    let rss = server.map(|s| mib(s.rss_bytes)).unwrap_or_else(dash);
    let threads = server.map(|s| s.threads.to_string()).unwrap_or_else(dash);
    let per_conn = fairness(r);
    let mismatches = res.map(|x| x.counts.mismatches.to_string()).unwrap_or_else(dash);
    let failure = r.failure.as_deref().map(cell).unwrap_or_default();
    format!(
        "| {} | {} | {est} | {rps} | {p50} | {p99} | {p999} | {cs} | {cpu} | {rss} | {threads} | {per_conn} | {mismatches} | {failure} |",
        r.model, r.level
    )
}

/// The peers present in this scenario side by side: for each level, one row
/// each for throughput, CPU µs per request and context switches per request.
/// Empty when fewer than two peers ran.
pub fn peer_table(summary: &Summary, scenario: &str) -> String {
    let ran = summary.models_in(scenario);
    let peers: Vec<&str> = PEERS.iter().copied().filter(|p| ran.iter().any(|m| m == p)).collect();
    if peers.len() < 2 {
        return String::new();
    }
    let mut out = format!("| conns | figure | {} |\n|---:|---|{}\n", peers.join(" | "), "---:|".repeat(peers.len()));
    type Figure = fn(&Record) -> Option<String>;
    let figures: [(&str, Figure); 3] = [
        ("req/s", |r| {
            r.result
                .as_ref()
                .map(|x| format!("{}{}", thousands(x.throughput_rps), if r.loadgen_bound { "\\*" } else { "" }))
        }),
        ("CPU µs/req", |r| r.result.as_ref()?.server.as_ref().map(|s| num(s.cpu_us_per_req))),
        ("cs/req", |r| {
            r.result.as_ref()?.server.as_ref().map(|s| num(s.voluntary_cs_per_req + s.involuntary_cs_per_req))
        }),
    ];
    for level in summary.levels(scenario) {
        for (name, figure) in figures {
            let cells: Vec<String> = peers
                .iter()
                .map(|p| match summary.find(scenario, p, level) {
                    Some(r) if r.status == Status::Ok => figure(r).unwrap_or_else(|| "–".into()),
                    Some(_) => "failed".into(),
                    None => "–".into(),
                })
                .collect();
            let _ = writeln!(out, "| {level} | {name} | {} |", cells.join(" | "));
        }
    }
    out
}

/// Which side each CPU figure charges: under every attribution table, and
/// the explanation REPORT.md's cost claims rest on.
pub const ATTRIBUTION: &str = "\
Server and load generator CPU are each side's own `getrusage` (the server's through STATS), over the \
requests it handled in the window. On loopback they do not divide the work as the code does: the sender's \
system call runs the receiver's TCP path (the packet is processed in softirq on the sender's CPU and \
charged to the sender), and a thread that wakes another pays for the wake-up. A model that makes the \
load generator do more of the kernel's work looks cheaper on its own side and makes the load generator \
look dearer. *Both* adds the two: it does not depend on who was charged, and cost claims rest on it. \
*Softirq* is the share of the busy time of each side's CPUs spent in softirq (/proc/stat: where the \
packet work ran); *all CPUs busy* is every CPU's busy time per request, whoever was charged (softirq on \
an idle CPU or in ksoftirqd included, and anything else the machine ran). Each figure is valid only \
within its own run.
";

/// Per model × level: each side's CPU per request, the two together, and
/// the /proc/stat view; then [`ATTRIBUTION`].
pub fn attribution_table(summary: &Summary, scenario: &str) -> String {
    let mut out = String::from(
        "| model | conns | server CPU µs/req (user+sys) | loadgen CPU µs/req (user+sys) | both CPU µs/req | server's share | both sys µs/req | all CPUs busy µs/req | softirq % of busy: server's CPUs / loadgen's | steal % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let Some(r) = summary.find(scenario, &model, level) else { continue };
            let _ = writeln!(out, "{}", attribution_row(r));
        }
    }
    out.push('\n');
    out.push_str(ATTRIBUTION);
    out
}

fn attribution_row(r: &Record) -> String {
    let dash = || "–".to_string();
    let Some(x) = r.result.as_ref().filter(|_| r.status == Status::Ok) else {
        let why = r.failure.as_deref().map(cell).unwrap_or_default();
        return format!("| {} | {} | failed: {why} | – | – | – | – | – | – | – |", r.model, r.level);
    };
    let server = x.server.as_ref().map(|s| split(s.cpu_us_per_req, s.user_us_per_req, s.sys_us_per_req));
    let l = &x.loadgen;
    let loadgen = split(l.cpu_us_per_req, l.user_us_per_req, l.sys_us_per_req);
    let both = x.combined.as_ref();
    let p = x.proc_stat.as_ref();
    let percent = |v: f64| format!("{:.0}%", 100.0 * v);
    let softirq = p.map(|p| {
        use crate::procstat::Side;
        let share = |side| p.softirq_share(side).map(percent).unwrap_or_else(dash);
        format!("{} / {}", share(Side::Server), share(Side::Loadgen))
    });
    let steal = p.map(|p| format!("{:.1}%", 100.0 * p.steal_share()));
    format!(
        "| {} | {} | {} | {loadgen} | {} | {} | {} | {} | {} | {} |",
        r.model,
        r.level,
        server.unwrap_or_else(dash),
        both.map(|b| num(b.cpu_us_per_req)).unwrap_or_else(dash),
        both.map(|b| percent(b.server_share)).unwrap_or_else(dash),
        both.map(|b| num(b.sys_us_per_req)).unwrap_or_else(dash),
        p.map(|p| num(p.busy_us_per_req)).unwrap_or_else(dash),
        softirq.unwrap_or_else(dash),
        steal.unwrap_or_else(dash),
    )
}

/// "10.0 (3.00+7.00)": CPU µs per request (user+sys); the total alone
/// where the split was not recorded (results older than it).
fn split(cpu: f64, user: f64, sys: f64) -> String {
    if user + sys > 0.0 {
        format!("{} ({}+{})", num(cpu), num(user), num(sys))
    } else {
        num(cpu)
    }
}

/// The SLO a summary's ladder was judged against (µs).
fn slo_of(summary: &Summary) -> u64 {
    summary.slo_us.unwrap_or(knee::DEFAULT_SLO_US)
}

/// Per model × level: the knee, and the figures of that rung.
pub fn knee_table(summary: &Summary, scenario: &str) -> String {
    let slo = slo_of(summary);
    let mut out = String::from(
        "| model | conns | highest rate sustained (req/s) | p99 there | server CPU µs/req | cs/req (vol+invol) | next rung up |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let rungs = summary.rungs(scenario, &model, level);
            let Some(k) = knee::knee(&rungs, slo) else { continue };
            let at = k.record().and_then(|r| r.result.as_ref());
            let server = at.and_then(|x| x.server.as_ref());
            let dash = || "–".to_string();
            let next = match &k {
                Knee::At(r) | Knee::AtLeast(r, _) => rungs
                    .iter()
                    .find(|n| n.offered_rps > r.offered_rps)
                    .map(|n| format!("{}: {}", thousands(n.offered_rps.unwrap_or(0.0)), knee::judge(n, slo).word()))
                    .unwrap_or_else(dash),
                Knee::Below(..) => dash(),
            };
            let _ = writeln!(
                out,
                "| {model} | {level} | {} | {} | {} | {} | {} |",
                k.describe(),
                at.map(|x| us(x.latency.p99)).unwrap_or_else(dash),
                server.map(|s| num(s.cpu_us_per_req)).unwrap_or_else(dash),
                server.map(cs).unwrap_or_else(dash),
                cell(&next),
            );
        }
    }
    let _ = write!(
        out,
        "\nSustained: at least {:.0}% of the offered rate answered, with p99 ≤ {} (the SLO). \"≥ X (load generator's \
         limit)\": the next rung was not sustained because the load generator itself was the limit there (its CPUs \
         90% busy or more; its send lag p99 a quarter of the p99 or more; or it was the busier side, 75% busy or \
         more), so the model's knee lies somewhere above X. \"≥ X (top of the ladder)\": sustained at every rung.\n",
        100.0 * knee::ACHIEVED_SHARE,
        us(slo)
    );
    out
}

/// Every rung of a ladder: offered, achieved, latency, the load
/// generator's send lag, the server's cost, and the verdict.
pub fn rung_table(summary: &Summary, scenario: &str) -> String {
    let slo = slo_of(summary);
    let mut out = String::from(
        "| model | conns | offered req/s | achieved req/s | p50 | p99 | p99.9 | send lag p99 | server CPU µs/req | cs/req | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let dash = || "–".to_string();
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            for r in summary.rungs(scenario, &model, level) {
                let x = r.result.as_ref();
                let server = x.and_then(|x| x.server.as_ref());
                let _ = writeln!(
                    out,
                    "| {model} | {level} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
                    thousands(r.offered_rps.unwrap_or(0.0)),
                    x.map(|x| thousands(x.throughput_rps)).unwrap_or_else(dash),
                    if r.loadgen_bound { "\\*" } else { "" },
                    x.map(|x| us(x.latency.p50)).unwrap_or_else(dash),
                    x.map(|x| us(x.latency.p99)).unwrap_or_else(dash),
                    x.map(|x| us(x.latency.p999)).unwrap_or_else(dash),
                    x.and_then(|x| x.send_lag.as_ref()).map(|l| us(l.p99)).unwrap_or_else(dash),
                    server.map(|s| num(s.cpu_us_per_req)).unwrap_or_else(dash),
                    server.map(cs).unwrap_or_else(dash),
                    cell(&knee::judge(r, slo).word()),
                );
            }
        }
    }
    if summary.scenario(scenario).any(|r| r.loadgen_bound) {
        out.push_str("\n\\* loadgen-bound: the load generator's CPU or its send lag was a limit of this rung.\n");
    }
    out
}

/// ECHO's own latency in a run, if it kept one apart.
pub fn echo(x: &crate::result::RunResult) -> Option<&crate::result::Latency> {
    x.latency_by_method.get("ECHO")
}

/// The DELAY a scenario's runs asked for (µs, their `--delay-us`), if they
/// kept ECHO's and DELAY's latency apart.
pub fn delay_us(summary: &Summary, scenario: &str) -> Option<u64> {
    summary.scenario(scenario).filter_map(|r| r.result.as_ref()).find_map(|x| {
        let both = x.latency_by_method.contains_key("ECHO") && x.latency_by_method.contains_key("DELAY");
        let flag = x.args.windows(2).find(|w| w[0] == "--delay-us")?;
        both.then(|| flag[1].parse().ok()).flatten()
    })
}

/// Per model × level: ECHO's and DELAY's latency apart, and whether ECHO's
/// p99 lies above one DELAY (ECHOs waited behind DELAYs: answers in order)
/// or below it (ECHOs passed them: answers out of order).
pub fn method_table(summary: &Summary, scenario: &str) -> String {
    let Some(delay) = delay_us(summary, scenario) else { return String::new() };
    let mut out = format!(
        "| model | conns | req/s | ECHO p50 | ECHO p99 | DELAY p50 | DELAY p99 | ECHO p99 against one DELAY ({}) |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
        us(delay)
    );
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let Some(r) = summary.find(scenario, &model, level) else { continue };
            let Some(x) = r.result.as_ref().filter(|_| r.status == Status::Ok) else {
                let why = r.failure.as_deref().map(cell).unwrap_or_default();
                let _ = writeln!(out, "| {model} | {level} | failed: {why} | – | – | – | – | – |");
                continue;
            };
            let method = |m: &str| x.latency_by_method.get(m);
            let p = |m: &str, f: fn(&crate::result::Latency) -> u64| method(m).map(|l| us(f(l))).unwrap_or("–".into());
            let verdict = match echo(x).map(|l| l.p99) {
                Some(p99) if p99 > delay => "above: ECHOs waited behind DELAYs (in order)",
                Some(_) => "below: ECHOs passed the DELAYs (out of order)",
                None => "–",
            };
            let _ = writeln!(
                out,
                "| {model} | {level} | {}{} | {} | {} | {} | {} | {verdict} |",
                thousands(x.throughput_rps),
                if r.loadgen_bound { "\\*" } else { "" },
                p("ECHO", |l| l.p50),
                p("ECHO", |l| l.p99),
                p("DELAY", |l| l.p50),
                p("DELAY", |l| l.p99),
            );
        }
    }
    out
}

/// Context switches per request: "total (voluntary+involuntary)".
fn cs(s: &crate::result::ServerCost) -> String {
    format!(
        "{} ({}+{})",
        num(s.voluntary_cs_per_req + s.involuntary_cs_per_req),
        num(s.voluntary_cs_per_req),
        num(s.involuntary_cs_per_req)
    )
}

/// Requests answered per connection in the window: `min/p1/median/max`,
/// so that a model that starves some connections shows it.
fn fairness(r: &Record) -> String {
    match r.result.as_ref().filter(|_| r.status == Status::Ok) {
        Some(x) => {
            let f = &x.fairness;
            format!("{}/{}/{}/{}", f.min, f.p1, f.median, f.max)
        }
        None => "–".into(),
    }
}

/// The scenario the performance table and targets are about.
pub const SATURATE: &str = "echo-saturate";
/// Target 1: server CPU per request at most this many floor pairs.
pub const FLOOR_RATIO_TARGET: f64 = 1.5;
/// Target 1 holds for the event loops at these levels (inclusive).
const TARGET_LEVELS: (u64, u64) = (200, 5000);
/// Target 2 compares mio-multi with these peers at these levels.
const PEER_LEVELS: [u64; 2] = [1000, 5000];
/// Target 3: the load generator's RSS at the top level stays under this.
const LOADGEN_RSS_LIMIT: u64 = 64 << 20;
const LOADGEN_RSS_LEVEL: u64 = 5000;

/// The floors a sweep measured at its start.
pub fn floor_table(floor: &SweepFloor) -> String {
    let f = &floor.figures;
    let mut out = String::from("| floor | CPUs | wall µs | CPU µs |\n|---|---|---:|---:|\n");
    let _ = writeln!(
        out,
        "| pair: one 64 B write + read, one thread | {} | {} | {} |",
        floor.pair_cpu,
        num(f.pair_wall_us),
        num(f.pair_cpu_us)
    );
    for (what, pp) in [("one CPU", &f.pingpong_same_cpu), ("across CPUs", &f.pingpong_cross_cpu)] {
        match pp {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "| ping-pong {what}: round trip, CPU per side | {},{} | {} | {} |",
                    p.cpus.0,
                    p.cpus.1,
                    num(p.round_trip_us),
                    num(p.cpu_us_per_side)
                );
            }
            None => {
                let _ = writeln!(out, "| ping-pong {what} | – | not measured | – |");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} pairs and {} round trips; a server cannot answer a request for less than one pair.",
        floor.pairs, floor.round_trips
    );
    out
}

/// echo-saturate, every model × level, against the floor pair; then the targets.
pub fn performance_table(summary: &Summary, floor: Option<&SweepFloor>) -> String {
    let pair = floor.map(|f| f.figures.pair_cpu_us).filter(|&p| p > 0.0);
    let mut out = String::from(
        "| model | conns | req/s | server CPU µs/req | floor pair µs | server ÷ floor | loadgen CPU µs/req | loadgen ÷ server | loadgen RSS | answers/conn min/p1/med/max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let dash = || "–".to_string();
    for model in summary.models_in(SATURATE) {
        for level in summary.levels(SATURATE) {
            let Some(r) = summary.find(SATURATE, &model, level) else { continue };
            let Some(x) = r.result.as_ref().filter(|_| r.status == Status::Ok) else {
                let why = r.failure.as_deref().map(cell).unwrap_or_default();
                let _ = writeln!(out, "| {model} | {level} | failed: {why} | – | – | – | – | – | – | – |");
                continue;
            };
            let server = x.server.as_ref().map(|s| s.cpu_us_per_req).filter(|&c| c > 0.0);
            let lg = x.loadgen.cpu_us_per_req;
            let _ = writeln!(
                out,
                "| {model} | {level} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(x.throughput_rps),
                if r.loadgen_bound { "\\*" } else { "" },
                server.map(num).unwrap_or_else(dash),
                pair.map(num).unwrap_or_else(dash),
                server.zip(pair).map(|(s, p)| format!("{:.2}×", s / p)).unwrap_or_else(dash),
                num(lg),
                server.map(|s| format!("{:.2}", lg / s)).unwrap_or_else(dash),
                mib(x.loadgen.max_rss_bytes),
                fairness(r),
            );
        }
    }
    if summary.scenario(SATURATE).any(|r| r.loadgen_bound && r.status == Status::Ok) {
        out.push_str("\n\\* loadgen-bound: the load generator's CPU, not the server, was the limit.\n");
    }
    out.push_str(
        "\nTargets (echo-saturate, 64 B, depth 1; server and load generator each pinned to a CPU of its own):\n\n",
    );
    for t in targets(summary, pair) {
        let _ = writeln!(out, "- {}: **{}**{}", t.what, t.verdict.word(), t.detail());
    }
    out
}

/// One performance target, judged from a sweep.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub what: String,
    pub verdict: Verdict,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Met,
    /// The cases that missed it.
    NotMet(Vec<String>),
    /// Why it could not be judged.
    NoData(String),
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet(_) => "not met",
            Verdict::NoData(_) => "not judged",
        }
    }

    /// Met when something was judged and nothing missed.
    fn from(judged: usize, misses: Vec<String>, none: &str) -> Verdict {
        match (judged, misses.is_empty()) {
            (0, _) => Verdict::NoData(none.to_string()),
            (_, true) => Verdict::Met,
            (_, false) => Verdict::NotMet(misses),
        }
    }
}

impl Target {
    fn detail(&self) -> String {
        match &self.verdict {
            Verdict::Met => String::new(),
            Verdict::NotMet(misses) => format!(" ({})", misses.join("; ")),
            Verdict::NoData(why) => format!(" ({why})"),
        }
    }
}

/// The valid echo-saturate result of `model` at `level`, if any.
fn ok_result<'a>(summary: &'a Summary, model: &str, level: u64) -> Option<&'a crate::result::RunResult> {
    summary.find(SATURATE, model, level).filter(|r| r.status == Status::Ok)?.result.as_ref()
}

fn server_cpu(x: &crate::result::RunResult) -> Option<f64> {
    x.server.as_ref().map(|s| s.cpu_us_per_req).filter(|&c| c > 0.0)
}

/// Judge the targets from the echo-saturate runs (`pair`: the floor pair, CPU µs).
pub fn targets(summary: &Summary, pair: Option<f64>) -> Vec<Target> {
    let levels = summary.levels(SATURATE);
    let mut out = Vec::new();

    // 1. The event loops' server CPU per request against the floor pair.
    let (mut judged, mut misses) = (0, Vec::new());
    if let Some(pair) = pair {
        for model in ["mio-single", "mio-multi"] {
            for &level in levels.iter().filter(|&&l| (TARGET_LEVELS.0..=TARGET_LEVELS.1).contains(&l)) {
                let Some(cpu) = ok_result(summary, model, level).and_then(server_cpu) else { continue };
                judged += 1;
                if cpu > FLOOR_RATIO_TARGET * pair {
                    misses.push(format!("{model} at {level}: {:.2}×", cpu / pair));
                }
            }
        }
    }
    let none = if pair.is_none() { "no floor measured (--no-floor)" } else { "no mio-single or mio-multi run" };
    out.push(Target {
        what: format!(
            "1. mio-single and mio-multi server CPU per request ≤ {FLOOR_RATIO_TARGET}× the floor pair at {}–{} connections",
            TARGET_LEVELS.0, TARGET_LEVELS.1
        ),
        verdict: Verdict::from(judged, misses, none),
    });

    // 2. mio-multi against tokio and libevent.
    let (mut judged, mut misses) = (0, Vec::new());
    for peer in ["tokio", "libevent"] {
        for level in PEER_LEVELS {
            let (Some(m), Some(p)) = (ok_result(summary, "mio-multi", level), ok_result(summary, peer, level)) else {
                continue;
            };
            judged += 1;
            if m.throughput_rps < p.throughput_rps {
                misses.push(format!(
                    "{level} conns: {} req/s < {peer}'s {}",
                    thousands(m.throughput_rps),
                    thousands(p.throughput_rps)
                ));
            }
            if let (Some(mc), Some(pc)) = (server_cpu(m), server_cpu(p)) {
                if mc > pc {
                    misses.push(format!("{level} conns: {} CPU µs/req > {peer}'s {}", num(mc), num(pc)));
                }
            }
        }
    }
    out.push(Target {
        what: format!(
            "2. mio-multi's throughput ≥ tokio's and libevent's, and its server CPU per request ≤ theirs, at {} connections",
            PEER_LEVELS.map(|l| l.to_string()).join(" and ")
        ),
        verdict: Verdict::from(judged, misses, "mio-multi and a peer did not both run at those levels"),
    });

    // 3. The load generator cheaper than every server, and small.
    let (mut judged, mut misses) = (0, Vec::new());
    for model in summary.models_in(SATURATE) {
        for &level in &levels {
            let Some(x) = ok_result(summary, &model, level) else { continue };
            let Some(cpu) = server_cpu(x) else { continue };
            judged += 1;
            if x.loadgen.cpu_us_per_req >= cpu {
                misses.push(format!("{model} at {level}: {:.2}× the server's", x.loadgen.cpu_us_per_req / cpu));
            }
        }
    }
    out.push(Target {
        what: "3a. the load generator's CPU per request below the server's, for every model and level".into(),
        verdict: Verdict::from(judged, misses, "no run with server figures"),
    });
    let (mut judged, mut misses) = (0, Vec::new());
    for model in summary.models_in(SATURATE) {
        let Some(x) = ok_result(summary, &model, LOADGEN_RSS_LEVEL) else { continue };
        judged += 1;
        if x.loadgen.max_rss_bytes >= LOADGEN_RSS_LIMIT {
            misses.push(format!("against {model}: {}", mib(x.loadgen.max_rss_bytes)));
        }
    }
    out.push(Target {
        what: format!(
            "3b. the load generator's peak RSS at {LOADGEN_RSS_LEVEL} connections under {}",
            mib(LOADGEN_RSS_LIMIT)
        ),
        verdict: Verdict::from(judged, misses, "no valid run at that level"),
    });
    out
}

/// A latency in µs, in the unit that reads best.
pub fn us(v: u64) -> String {
    match v {
        0..=999 => format!("{v} µs"),
        1_000..=9_999 => format!("{:.2} ms", v as f64 / 1e3),
        10_000..=999_999 => format!("{:.1} ms", v as f64 / 1e3),
        _ => format!("{:.2} s", v as f64 / 1e6),
    }
}

/// 12345.6 -> "12,346".
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three significant digits (whole numbers from 100 on).
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Text safe inside a table cell: no pipes or newlines, not too long.
fn cell(text: &str) -> String {
    let one_line = text.replace('|', "/").replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::testdata;

    #[test]
    fn scenario_table_has_a_row_per_record_and_notes_failures() {
        let summary = testdata::summary();
        let table = scenario_table(&summary, "echo-saturate");
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| model")).collect();
        assert_eq!(rows.len(), 15);
        let pool = rows.iter().find(|l| l.starts_with("| pool | 1000 |")).unwrap();
        assert!(pool.contains("never served"), "{pool}");
        assert!(pool.contains("| – | – |"), "a failed run shows no figures: {pool}");
        let bound = rows.iter().find(|l| l.starts_with("| mio-single | 200 |")).unwrap();
        assert!(bound.contains("20,000\\*"), "{bound}");
        assert!(table.contains("loadgen-bound"));
    }

    #[test]
    fn peer_table_puts_peers_side_by_side() {
        let summary = testdata::summary();
        let table = peer_table(&summary, "echo-saturate");
        let header = table.lines().next().unwrap();
        assert_eq!(header, "| conns | figure | mio-multi | mio-single | tokio |");
        assert_eq!(table.lines().filter(|l| l.contains("| req/s |")).count(), 3);
        assert!(table.contains("| 1000 | CPU µs/req | 10.0 | 10.0 | 10.0 |"), "{table}");
    }

    #[test]
    fn attribution_table_adds_the_sides_and_says_who_pays() {
        let summary = testdata::summary();
        let table = attribution_table(&summary, "echo-saturate");
        // testdata: server 10 (3+7), load generator 5 (2+3), together 15 (10 sys);
        // CPU 0 (server) 25% softirq, CPU 1 (load generator) 10%; steal 10 ms of 8 s.
        let row = table.lines().find(|l| l.starts_with("| tokio | 500 |")).unwrap();
        assert_eq!(
            row,
            "| tokio | 500 | 10.0 (3.00+7.00) | 5.00 (2.00+3.00) | 15.0 | 67% | 10.0 | 18.0 | 25% / 10% | 0.1% |"
        );
        let failed = table.lines().find(|l| l.starts_with("| pool | 1000 |")).unwrap();
        assert!(failed.contains("failed: 800 of 1000"), "{failed}");
        assert!(table.contains("sender's CPU") && table.contains("cost claims rest on it"), "{table}");
        assert!(String::from_utf8(Markdown.serialize(&summary).unwrap()).unwrap().contains(&table));

        let mut old = summary.clone();
        for r in old.records.iter_mut().filter_map(|r| r.result.as_mut()) {
            (r.combined, r.proc_stat) = (None, None);
            (r.loadgen.user_us_per_req, r.loadgen.sys_us_per_req) = (0.0, 0.0);
        }
        let row = attribution_table(&old, "echo-saturate")
            .lines()
            .find(|l| l.starts_with("| tokio | 500 |"))
            .unwrap()
            .to_string();
        assert_eq!(row, "| tokio | 500 | 10.0 (3.00+7.00) | 5.00 | – | – | – | – | – | – |", "not measured: dashes");
    }

    #[test]
    fn scenario_table_shows_answers_per_connection() {
        let table = scenario_table(&testdata::summary(), "echo-saturate");
        assert!(table.contains("answers/conn min/p1/med/max"));
        let row = table.lines().find(|l| l.starts_with("| tokio | 500 |")).unwrap();
        assert!(row.contains("| 1/2/3/4 |"), "{row}");
    }

    fn floor(pair_cpu_us: f64) -> SweepFloor {
        let figures = crate::floor::Floor { pair_cpu_us, pair_wall_us: pair_cpu_us, ..Default::default() };
        SweepFloor { pair_cpu: 0, pairs: 1000, round_trips: 100, figures }
    }

    #[test]
    fn performance_table_sets_cpu_against_the_floor() {
        let summary = testdata::summary();
        let table = performance_table(&summary, Some(&floor(8.0)));
        // testdata: server 10 µs/req, loadgen 5 µs/req.
        let row = table.lines().find(|l| l.starts_with("| mio-multi | 1000 |")).unwrap();
        assert!(row.contains("| 10.0 | 8.00 | 1.25× | 5.00 | 0.50 |"), "{row}");
        assert!(table.contains("| pool | 1000 | failed: 800 of 1000"), "{table}");
        assert!(table.contains("20,000\\*"), "loadgen-bound runs are marked: {table}");
        let no_floor = performance_table(&summary, None);
        assert!(no_floor.contains("| 10.0 | – | – |"), "{no_floor}");
        assert!(no_floor.contains("not judged** (no floor measured"), "{no_floor}");
    }

    #[test]
    fn targets_are_judged_from_the_data() {
        let mut summary = testdata::summary();
        // Floor 8 µs: 10 µs is 1.25×, met; floor 5 µs: 2×, not met at every level.
        assert_eq!(targets(&summary, Some(8.0))[0].verdict, Verdict::Met);
        match &targets(&summary, Some(5.0))[0].verdict {
            Verdict::NotMet(m) => assert_eq!(m.len(), 6, "{m:?}"),
            v => panic!("{v:?}"),
        }
        // No libevent, and tokio at 1000 only: one comparison, equal figures: met.
        assert_eq!(targets(&summary, None)[1].verdict, Verdict::Met);
        // The load generator (5 µs) is cheaper than every server (10 µs).
        assert_eq!(targets(&summary, None)[2].verdict, Verdict::Met);
        assert!(matches!(targets(&summary, None)[3].verdict, Verdict::NoData(_)), "no run at 5000");
        let tokio = summary.records.iter_mut().find(|r| r.model == "tokio" && r.level == 1000).unwrap();
        let x = tokio.result.as_mut().unwrap();
        x.throughput_rps = 1e6;
        x.server.as_mut().unwrap().cpu_us_per_req = 4.0;
        x.loadgen.cpu_us_per_req = 4.0;
        match &targets(&summary, None)[1].verdict {
            Verdict::NotMet(m) => assert_eq!(m.len(), 2, "throughput and CPU both missed: {m:?}"),
            v => panic!("{v:?}"),
        }
        match &targets(&summary, None)[2].verdict {
            Verdict::NotMet(m) => assert_eq!(m, &["tokio at 1000: 1.00× the server's"]),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn floor_table_lists_every_floor() {
        let table = floor_table(&floor(2.5));
        assert!(table.contains("| pair: one 64 B write + read, one thread | 0 | 2.50 | 2.50 |"), "{table}");
        assert!(table.contains("ping-pong one CPU | – | not measured"), "{table}");
    }

    #[test]
    fn knee_table_gives_each_models_knee_and_its_cost() {
        let summary = testdata::knee_summary();
        let table = knee_table(&summary, "knee");
        let tpc = table.lines().find(|l| l.starts_with("| thread-per-conn | 1000 |")).unwrap();
        // testdata: server 10 µs/req, 0.6 voluntary + 0.01 involuntary switches at 1000.
        assert_eq!(
            tpc,
            "| thread-per-conn | 1000 | 20,000 | 2.00 ms | 10.0 | 0.610 (0.600+0.0100) | 30,000: missed: achieved 83.3% \
             of the offered rate; p99 900.0 ms > SLO 10.0 ms |"
        );
        let single = table.lines().find(|l| l.starts_with("| mio-single | 5000 |")).unwrap();
        assert!(single.contains("| ≥ 30,000 (top of the ladder) |"), "{single}");
        assert!(table.contains("p99 ≤ 10.0 ms (the SLO)"), "{table}");
        let rungs = rung_table(&summary, "knee");
        assert_eq!(rungs.lines().filter(|l| l.starts_with("| thread-per-conn |")).count(), 6);
        assert!(rungs.contains("| thread-per-conn | 5000 | 30,000 | 25,000 |"), "{rungs}");
        let md = String::from_utf8(Markdown.serialize(&summary).unwrap()).unwrap();
        assert!(md.contains("## knee\n\n| model | conns | highest rate sustained"), "{md}");
        assert!(md.contains("### knee: every rung"), "{md}");
    }

    #[test]
    fn method_table_sets_echo_against_the_delay() {
        let summary = testdata::multiplex_summary();
        let table = method_table(&summary, "multiplex");
        assert!(table.contains("| ECHO p99 against one DELAY (5.00 ms) |"), "{table}");
        let tpc = table.lines().find(|l| l.starts_with("| thread-per-conn | 200 |")).unwrap();
        assert!(
            tpc.contains("| 80 µs | 9.00 ms | 5.05 ms | 5.10 ms |")
                && tpc.ends_with("| above: ECHOs waited behind DELAYs (in order) |")
        );
        let single = table.lines().find(|l| l.starts_with("| mio-single | 50 |")).unwrap();
        assert!(single.ends_with("| below: ECHOs passed the DELAYs (out of order) |"), "{single}");
        assert_eq!(method_table(&testdata::summary(), "echo-saturate"), "", "no DELAY apart: no table");
        let md = String::from_utf8(Markdown.serialize(&summary).unwrap()).unwrap();
        assert!(md.contains("### multiplex: ECHO beside DELAY"), "{md}");
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(us(950), "950 µs");
        assert_eq!(us(5_019), "5.02 ms");
        assert_eq!(us(12_345), "12.3 ms");
        assert_eq!(us(2_500_000), "2.50 s");
        assert_eq!(num(0.5123), "0.512");
        assert_eq!(num(0.0095), "0.00950");
        assert_eq!(num(36.94), "36.9");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(0.0), "0");
        assert_eq!(cell("a|b\nc"), "a/b c");
    }
}
