//! The human summary on stdout: enough to judge a run at a glance, to
//! check that the load generator was not the bottleneck, and to see who was
//! charged for the CPU (each side, both together, and every CPU's time).

use std::fmt::Write;

use crate::fmt::mib;
use crate::procstat::Side;
use crate::records::config::{Protocol, RunArgs, Shape};
use crate::records::run::{Latency, ProcStatWindow, RunResult};

/// The summary: what ran, the connections, the requests, the latency,
/// both sides' costs, every CPU, and the outcome.
pub fn render(args: &RunArgs, r: &RunResult) -> String {
    let mut s = String::new();
    what_ran(&mut s, args, r);
    connection_lines(&mut s, r);
    request_lines(&mut s, r);
    latency_lines(&mut s, r);
    server_lines(&mut s, r);
    loadgen_lines(&mut s, r);
    s += &crate::profile::summary_lines(r);
    if let Some(p) = &r.proc_stat {
        cpu_lines(&mut s, p);
    }
    outcome_lines(&mut s, r);
    s
}

/// The run's flags in words, and its window.
fn what_ran(s: &mut String, args: &RunArgs, r: &RunResult) {
    let c = &r.connections;
    let methods: Vec<String> = args
        .requests
        .mix()
        .0
        .iter()
        .map(|(m, w)| if args.requests.mix.is_some() { format!("{}={w}", m.name()) } else { m.name().to_string() })
        .collect();
    let shape = match args.requests.shape() {
        Shape::Closed { depth, think } if think.is_zero() => format!("closed loop, depth {depth}"),
        Shape::Closed { depth, think } => format!("closed loop, depth {depth}, think {} µs", think.as_micros()),
        Shape::Open { rate } => format!("open loop, {rate} req/s"),
    };
    let protocol = match args.protocol {
        Protocol::Framed => format!("framed {} (ECHO {} B)", methods.join(","), args.requests.size),
        Protocol::Raw => format!("raw {} B messages", args.requests.size),
    };
    let _ = writeln!(
        s,
        "loadgen run: {} connections to {}, {protocol}, {shape}, {} thread(s)",
        c.requested, args.target, args.threads
    );
    let _ = writeln!(s, "window {:.2} s after {:.2} s of warm-up", r.window_s, args.warmup.as_secs_f64());
}

/// How the connections were established and first served.
fn connection_lines(s: &mut String, r: &RunResult) {
    let c = &r.connections;
    let p = &c.connect_us;
    let _ = writeln!(
        s,
        "connections  {} of {} established, {} failed; connect µs p50 {} p90 {} p99 {} max {}",
        c.established, c.requested, c.failed, p.p50, p.p90, p.p99, p.max
    );
    let f = &c.first_answer_us;
    let _ = writeln!(
        s,
        "             first answer µs p50 {} p90 {} p99 {} max {}; unanswered before the load {}; never served {}; \
         stuck {}",
        f.p50, f.p90, f.p99, f.max, c.unanswered_first, c.never_served, c.stuck
    );
}

/// Where every scheduled request went.
fn request_lines(s: &mut String, r: &RunResult) {
    let n = &r.counts;
    let _ = writeln!(
        s,
        "requests     scheduled {} = ok {} + errors {} + timeouts {} + in flight at end {} + unsent {} ({})",
        n.scheduled,
        n.ok,
        n.errors,
        n.timeouts,
        n.in_flight_end,
        n.unsent,
        if n.accounted { "all accounted for" } else { "DOES NOT ADD UP" }
    );
    let by_status: Vec<String> = n.errors_by_status.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        s,
        "             mismatches {} ({} in the whole run), resets {}{}",
        n.mismatches,
        n.mismatches_total,
        n.resets,
        if by_status.is_empty() { String::new() } else { format!("; errors: {}", by_status.join(", ")) }
    );
}

/// Throughput, the latency table and the send lag.
fn latency_lines(s: &mut String, r: &RunResult) {
    let _ = writeln!(s, "throughput   {:.0} req/s", r.throughput_rps);
    let _ = writeln!(
        s,
        "latency µs   {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
    );
    let row = |name: &str, l: &Latency| {
        format!(
            "  {name:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11.1}\n",
            l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.mean
        )
    };
    match &r.latency_uncorrected {
        Some(u) => {
            *s += &row("corrected", &r.latency);
            *s += &row("uncorrect.", u);
        }
        None => *s += &row("", &r.latency),
    }
    if r.latency_by_method.len() > 1 {
        for (method, l) in &r.latency_by_method {
            *s += &row(&method.to_lowercase(), l);
        }
    }
    if let Some(g) = &r.send_lag {
        let _ = writeln!(
            s,
            "send lag µs  p50 {} p99 {} max {} over {} sends; {} held back by a late answer; {:.0}% of the corrected \
             p50{}",
            g.p50,
            g.p99,
            g.max,
            g.count,
            g.held_back,
            100.0 * g.share_of_p50,
            if r.send_lag_large { " (LARGE: that much of the latency is the load generator's)" } else { "" }
        );
    }
}

/// The server's own counters over the window.
fn server_lines(s: &mut String, r: &RunResult) {
    match &r.server {
        Some(v) => {
            let _ =
                writeln!(
                s,
                "server       {}: {:.2} µs CPU/request ({:.2} user + {:.2} sys), {:.3} voluntary + {:.3} involuntary \
                 context switches/request",
                v.model, v.cpu_us_per_req, v.user_us_per_req, v.sys_us_per_req, v.voluntary_cs_per_req,
                v.involuntary_cs_per_req
            );
            let _ = writeln!(
                s,
                "             {} requests in the window, utilization {:.2} CPU; {} threads, {} connections open, RSS {} \
                 (peak {})",
                v.requests,
                v.cpu_utilization,
                v.threads,
                v.connections_open,
                mib(v.rss_bytes),
                mib(v.max_rss_bytes)
            );
        }
        None => *s += "server       counters not measured\n",
    }
    if let Some(c) = &r.server_cgroup {
        s.push_str(&budget_line(c));
    }
}

/// `budget       0.30 CPU (period 5.0 ms): throttled in 40 of 200 periods, ...`
fn budget_line(c: &crate::records::run::ServerCgroup) -> String {
    let budget = match c.budget {
        Some(b) => format!("{:.2} CPU (period {:.1} ms)", b.cpus, b.period.as_secs_f64() * 1e3),
        None => "no quota".into(),
    };
    let waits = match (c.wait_us, c.wait_per_slice_us) {
        (Some(w), Some(per)) => format!("; waited {:.1} ms to run in all, {per:.0} µs each time", w as f64 / 1e3),
        _ => "; waits not counted (kernel.task_delayacct off)".into(),
    };
    let waiting = c.mean_waiting.map(|n| format!(", {n:.1} waiting to run on average")).unwrap_or_default();
    format!(
        "budget       {budget}: throttled in {} of {} periods, {:.1} ms in all; {} threads{waiting}{waits} \
         (reading their schedstat cost {:.1} ms per edge, taken out){}\n",
        c.window.throttled_periods,
        c.window.periods,
        c.window.throttled_us as f64 / 1e3,
        c.threads,
        c.read_cost_ms,
        if c.admin_inside { "; the admin thread (STATS) was inside the budget" } else { "" }
    )
}

/// The load generator's cost, whether it was the bottleneck, and both
/// sides together.
fn loadgen_lines(s: &mut String, r: &RunResult) {
    let l = &r.loadgen;
    let _ = writeln!(
        s,
        "loadgen      {:.2} µs CPU/request ({} user + {} sys µs in the window), utilization {:.2} CPU; RSS {} (peak {}), \
         {} threads",
        l.cpu_us_per_req,
        l.user_us,
        l.sys_us,
        l.cpu_utilization,
        mib(l.rss_bytes),
        mib(l.max_rss_bytes),
        l.threads
    );
    // Two separate findings: a saturated CPU limits the throughput; a large
    // send lag is the load generator's lateness inside the latency, however
    // idle its CPUs (one thread cannot be in two places at once).
    let verdict = match (&r.server, r.loadgen_saturated) {
        (_, true) => "LOADGEN-SATURATED: the load generator's CPUs were 90% busy or more; the throughput is (at least \
                      partly) the load generator's limit (add --threads or pin it to a core of its own)"
            .to_string(),
        (Some(v), false) if v.cpu_us_per_req > 0.0 => {
            format!("not the bottleneck: {:.2}x the server's CPU per request", l.cpu_us_per_req / v.cpu_us_per_req)
        }
        _ => "not the bottleneck by its own CPU (server side unknown)".to_string(),
    };
    let _ = writeln!(s, "             {verdict}");
    if r.send_lag_large {
        let _ = writeln!(
            s,
            "             SEND LAG LARGE: its send lag is a large share of the latency; the latency is (at least \
             partly) the load generator's"
        );
    }
    if let (Some(c), Some(v)) = (&r.combined, &r.server) {
        let _ = writeln!(
            s,
            "both sides   {:.2} µs CPU/request = server {:.2} + loadgen {:.2} (sys {:.2} = {:.2} + {:.2}): on loopback \
             each side is charged some of the other's kernel work; compare models on the sum",
            c.cpu_us_per_req,
            v.cpu_us_per_req,
            l.cpu_us_per_req,
            c.sys_us_per_req,
            v.sys_us_per_req,
            l.sys_us_per_req
        );
    }
}

/// Fairness, the notes and the verdict.
fn outcome_lines(s: &mut String, r: &RunResult) {
    let fa = &r.fairness;
    let _ = writeln!(
        s,
        "fairness     answered per connection in the window: min {}, p1 {}, median {}, max {}",
        fa.min, fa.p1, fa.median, fa.max
    );
    for note in &r.notes {
        let _ = writeln!(s, "note         {note}");
    }
    match &r.failure {
        None => *s += "result       OK\n",
        Some(f) => *s += &format!("result       FAILED: {f}\n"),
    }
}

/// "cpus         0 (server): busy 97.0%, softirq 31.2% of busy, steal 0.1%", one
/// CPU a line, and the machine's busy time per request.
fn cpu_lines(s: &mut String, p: &ProcStatWindow) {
    let window = p.window_us.max(1) as f64;
    for (i, (cpu, t)) in p.cpus.iter().enumerate() {
        let head = if i == 0 { "cpus" } else { "" };
        let of_busy = if t.busy_us > 0 { 100.0 * t.softirq_us as f64 / t.busy_us as f64 } else { 0.0 };
        let _ = writeln!(
            s,
            "{head:<12} {cpu} ({}): busy {:.1}%, softirq {of_busy:.1}% of busy, steal {:.1}%",
            t.role.name(),
            100.0 * t.busy_us as f64 / window,
            100.0 * t.steal_us as f64 / window
        );
    }
    let share = |side| p.softirq_share(side).map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_else(|| "–".into());
    let _ = writeln!(
        s,
        "             all CPUs busy {:.2} µs/request (whoever was charged, other processes included); softirq \
         share of busy: server's CPUs {}, loadgen's {} (/proc/stat, {} µs ticks)",
        p.busy_us_per_req,
        share(Side::Server),
        share(Side::Loadgen),
        p.tick_us
    );
}
