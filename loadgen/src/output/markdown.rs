//! `tables.md`, and the tables that `loadgen report --update-report` puts
//! into REPORT.md between marker comments.
//!
//! Every figure of a cell (a model at a level, over the passes of
//! `--repeat`) is shown as its median with its min–max range in
//! parentheses, `12,345 (11,900–12,800)`; a cell of one run shows the bare
//! value. Per scenario: [`scenario_table`], one row per model × level;
//! [`compare_table`] of the event-loop peers and of every model, which
//! says which model is ahead by the project's paired rule
//! ([`crate::sweep::cells`]); [`attribution_table`], who was charged for
//! the CPU; [`run_queue_table`], where runs recorded it; and, where ECHO's
//! and DELAY's latency were kept apart (`multiplex`), [`method_table`]. A
//! scenario that ran a ladder of offered rates (`knee`,
//! [`crate::sweep::ladder`]) has [`knee_table`] and [`rung_table`] instead.
//! [`floor_table`] and [`performance_table`] set the figures against the
//! floor the sweep measured (`env.json`, see `loadgen floor`), for
//! REPORT.md's regions `floor` and `performance`.
//!
//! A table of cells is written as columns of data (`cell_table`): each
//! column its header, its alignment and what it shows of a cell, so that a
//! column is added or moved in one line.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::fmt::{mib, num, spread_text, thousands, us, us_f};
use crate::procstat::Side;
use crate::profile::categories::Category;
use crate::records::profile::RunQueue;
use crate::records::run::{Latency, LoadgenCost, RunResult, ServerCost};
use crate::records::sweep::{Record, Summary};
use crate::stats::{self, Spread};
use crate::sweep::cells::{self, Cell, Comparison, Contender, Lead, TwinCount, Verdict, COMPARED};
use crate::sweep::env_json::SweepFloor;
use crate::sweep::ladder;
use crate::sweep::targets::{targets, SATURATE};

/// `tables.md`: every table of every scenario.
pub fn tables_md(summary: &Summary) -> anyhow::Result<String> {
    let mut out = format!("# Sweep {}\n\n{}\n", summary.run_id, passes_note(summary));
    for scenario in summary.scenarios.iter().filter(|s| summary.is_ladder(s)) {
        let _ = write!(out, "\n## {scenario}\n\n{}", knee_table(summary, scenario));
        let _ = write!(out, "\n### {scenario}: every rung\n\n{}", rung_table(summary, scenario));
    }
    for scenario in summary.scenarios.iter().filter(|s| !summary.is_ladder(s)) {
        let _ = write!(out, "\n## {scenario}\n\n{}", scenario_table(summary, scenario));
        // Each table is empty where the scenario has nothing for it.
        for (title, table) in [
            ("event-loop peers", peer_table(summary, scenario)),
            ("ECHO beside DELAY", method_table(summary, scenario)),
            ("who was charged for the CPU", attribution_table(summary, scenario)),
            ("waiting to run", run_queue_table(summary, scenario)),
            ("every model", every_model_table(summary, scenario)),
        ] {
            if !table.is_empty() {
                let _ = write!(out, "\n### {scenario}: {title}\n\n{table}");
            }
        }
    }
    Ok(out)
}

/// How many passes the figures come from, how to read them, the rule for
/// "ahead" with its error rate, and, in an A/A sweep, how often the twins
/// were called apart.
pub fn passes_note(summary: &Summary) -> String {
    let mut note = match summary.passes().len() {
        0 | 1 => "One run per model and level: no spread, so no difference between two models is judged.".into(),
        n => format!(
            "{n} interleaved passes: each figure is the median of a cell's successful runs, (min–max) over them. \
             A model is **ahead** of another only where their ratio, pass by pass (both ran in each pass), differs \
             from 1 by a paired t-test on the log ratios, two-sided, after Holm's correction over every comparison \
             of its table on that figure (every pair of models at every level): the chance of any false \"ahead\" \
             in such a table is at most {:.0}% (if the log ratios are normal and the passes independent). The \
             ahead column gives the winner's ratio to its closest rival (geometric mean over the passes), its 95% \
             interval and the corrected p; it names a model only where it is ahead of every other. With fewer \
             passes fewer differences are called: pairs measured together in fewer than {} passes are not judged. \
             A loadgen-saturated run (\\*) neither wins nor loses on throughput.",
            100.0 * cells::ALPHA,
            stats::MIN_PAIRS
        ),
    };
    let twins = twin_count(summary);
    if twins.tested > 0 {
        let _ = write!(
            note,
            "\n\nA/A: {} of {} tested comparisons between a model and its alias (the same server under two names: \
             every \"ahead\" between them is false) were called ahead, in the every-model tables; the rule allows a \
             false \"ahead\" in at most {:.0}% of tables.",
            twins.ahead,
            twins.tested,
            100.0 * cells::ALPHA
        );
    }
    note
}

/// What a table shows where nothing was measured.
const DASH: &str = "–";

/// A figure's median (min–max) as text, or a dash where nothing measured it.
fn text(spread: Option<Spread>, fmt: impl Fn(f64) -> String) -> String {
    spread.map_or(DASH.into(), |s| spread_text(&s, fmt))
}

/// A figure of a cell's successful runs as text ([`text`]).
fn shown(cell: &Cell, metric: impl Fn(&Record) -> Option<f64>, fmt: fn(f64) -> String) -> String {
    text(cell.spread(metric), fmt)
}

/// `\*` after a throughput that the load generator bounded.
fn bound_mark(cell: &Cell) -> &'static str {
    if cell.loadgen_saturated() {
        "\\*"
    } else {
        ""
    }
}

const BOUND_NOTE: &str =
    "\n\\* loadgen-saturated in at least one run: the load generator's CPU, not the server, was the \
                          limit; its throughput neither wins nor loses against another model's.\n";

/// `table`, then [`BOUND_NOTE`] where the load generator bounded some run.
fn with_bound_note(mut table: String, bound: bool) -> String {
    if bound {
        table.push_str(BOUND_NOTE);
    }
    table
}

/// How a column lines up: text to the left, figures to the right.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
use Align::{Left, Right};

/// A column of a table of cells, as data: its header, its alignment, and
/// what it shows of a cell.
type Column<'a> = (&'a str, Align, &'a dyn Fn(&Cell) -> String);

/// A table's header row, and the row under it that aligns the columns.
fn header<'a>(columns: impl IntoIterator<Item = (&'a str, Align)>) -> String {
    let (mut names, mut rule) = (String::from("|"), String::from("|"));
    for (name, align) in columns {
        let _ = write!(names, " {name} |");
        rule.push_str(if matches!(align, Left) { "---|" } else { "---:|" });
    }
    format!("{names}\n{rule}\n")
}

/// One row of a table: `| a | b |`.
fn push_row(out: &mut String, cells: impl IntoIterator<Item = String>) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {c} |");
    }
    out.push('\n');
}

/// A table with one row per cell: its model, its level (`conns`), then
/// `columns`. With `failed`, a cell none of whose runs succeeded shows
/// `failed: WHY` and dashes after its model and level; or, where every run
/// failed as its model is designed to ([`Cell::as_designed`]: pool past its
/// workers), what happened "as designed" and why.
fn cell_table(columns: &[Column], cells: &[Cell], failed: Option<fn(&Cell) -> String>) -> String {
    let names = columns.iter().map(|&(name, align, _)| (name, align));
    let mut out = header([("model", Left), ("conns", Right)].into_iter().chain(names));
    for c in cells {
        let why = failed.filter(|_| c.ok_runs().count() == 0).map(|why| match c.as_designed() {
            Some(designed) => cell(&designed.text()),
            None => format!("failed: {}", cell(&why(c))),
        });
        let shown = columns.iter().enumerate().map(|(i, (_, _, show))| match (&why, i) {
            (Some(why), 0) => why.clone(),
            (Some(_), 1..) => DASH.into(),
            _ => show(c),
        });
        push_row(&mut out, [c.model.to_string(), c.level.to_string()].into_iter().chain(shown));
    }
    out
}

/// Rows model × level (models in sweep order, levels ascending).
pub fn scenario_table(summary: &Summary, scenario: &str) -> String {
    let latency =
        |p: fn(&Latency) -> u64| move |c: &Cell| shown(c, move |r| Some(p(&r.result.as_ref()?.latency) as f64), us_f);
    let per_request = |f: fn(&ServerCost) -> f64| move |c: &Cell| shown(c, move |r| r.server_per_request().map(f), num);
    let server = |c: &Cell, f: fn(&ServerCost) -> f64| c.spread(|r| r.result.as_ref()?.server.as_ref().map(f));
    let columns: [Column; 14] = [
        ("runs", Right, &|c| match c.ok_runs().count() {
            ok if ok == c.runs.len() => ok.to_string(),
            ok => format!("{ok}/{} ok", c.runs.len()),
        }),
        ("est./req.", Right, &established),
        ("req/s", Right, &|c| shown(c, Record::throughput, thousands) + bound_mark(c)),
        ("p50", Right, &latency(|l| l.p50)),
        ("p99", Right, &latency(|l| l.p99)),
        ("p99.9", Right, &latency(|l| l.p999)),
        ("voluntary cs/req", Right, &per_request(|s| s.voluntary_cs_per_req)),
        ("involuntary cs/req", Right, &per_request(|s| s.involuntary_cs_per_req)),
        ("server CPU µs/req", Right, &|c| shown(c, Record::server_cpu, num)),
        ("RSS", Right, &|c| server(c, |s| s.rss_bytes as f64).map_or(DASH.into(), |s| mib(s.median as u64))),
        ("threads", Right, &|c| server(c, |s| s.threads as f64).map_or(DASH.into(), |s| format!("{:.0}", s.median))),
        ("answers/conn min/p1/med/max", Right, &fairness),
        ("mismatches", Right, &|c| results(c).map(|x| x.counts.mismatches).sum::<u64>().to_string()),
        ("failures", Left, &|c| cell(&c.failure_text())),
    ];
    let cells = summary.cells(scenario);
    with_bound_note(cell_table(&columns, &cells, None), cells.iter().any(Cell::loadgen_saturated))
}

/// Connections established of those requested, in the run that
/// established the fewest.
fn established(c: &Cell) -> String {
    let counts = results(c).map(|x| (x.connections.established, x.connections.requested));
    counts.min().map_or(DASH.into(), |(e, r)| format!("{e}/{r}"))
}

/// The results of every run of a cell that has one, failed runs too.
fn results<'c>(c: &'c Cell) -> impl Iterator<Item = &'c RunResult> {
    c.runs.iter().filter_map(|r| r.result.as_ref())
}

/// The event-loop peers present in this scenario side by side (see
/// [`compare_table`]). Empty when fewer than two peers ran.
pub fn peer_table(summary: &Summary, scenario: &str) -> String {
    compare_table(summary, scenario, &peers(summary, scenario))
}

/// The event-loop peers that ran in `scenario`, in reading order.
pub fn peers(summary: &Summary, scenario: &str) -> Vec<&'static str> {
    let ran = summary.models_in(scenario);
    let peers = crate::models::names().filter(|&m| crate::models::is_event_loop(m));
    peers.filter(|p| ran.iter().any(|m| m == p)).collect()
}

/// Every model of this scenario side by side (see [`compare_table`]).
pub fn every_model_table(summary: &Summary, scenario: &str) -> String {
    let ran = summary.models_in(scenario);
    compare_table(summary, scenario, &ran.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `models` side by side: per level, one row per figure of [`COMPARED`]
/// with each model's median (min–max), and in the last column the model
/// ahead, with its ratio to the closest rival, the ratio's 95% interval
/// and the corrected p, or `tie: ...`. Each figure's comparisons over every
/// level of the table are one family ([`cells::judge`]). Empty when fewer
/// than two models ran.
pub fn compare_table(summary: &Summary, scenario: &str, models: &[&str]) -> String {
    if models.len() < 2 {
        return String::new();
    }
    let named = models.iter().map(|&m| (m, Right));
    let mut out = header([("conns", Right), ("figure", Left)].into_iter().chain(named).chain([("ahead", Left)]));
    let families = summary.families(scenario, models);
    let mut bound = false;
    for (i, level) in summary.levels(scenario).into_iter().enumerate() {
        let cells: Vec<Option<Cell>> = models.iter().map(|m| summary.cell(scenario, m, level)).collect();
        for (figure, family) in COMPARED.iter().zip(&families) {
            let shown: Vec<String> = cells
                .iter()
                .map(|c| match c {
                    None => DASH.into(),
                    Some(c) if c.ok_runs().count() == 0 => "failed".into(),
                    Some(c) => match Contender::of(c, figure) {
                        None => DASH.into(),
                        Some(one) => {
                            bound |= one.loadgen_saturated;
                            let mark = if one.loadgen_saturated { "\\*" } else { "" };
                            format!("{}{mark}", spread_text(&one.spread, figure.fmt))
                        }
                    },
                })
                .collect();
            let (contenders, comparisons) = &family[i];
            let ahead = lead_text(contenders, comparisons);
            let _ = writeln!(out, "| {level} | {} | {} | {ahead} |", figure.name, shown.join(" | "));
        }
    }
    with_bound_note(out, bound)
}

/// The A/A count: in every scenario's table of every model, the tested
/// comparisons between a model and its alias, and how many were called
/// ahead (each one a false verdict).
pub fn twin_count(summary: &Summary) -> TwinCount {
    let mut count = TwinCount::default();
    for scenario in summary.scenarios.iter().filter(|s| !summary.is_ladder(s)) {
        let ran = summary.models_in(scenario);
        let models: Vec<&str> = ran.iter().map(String::as_str).collect();
        for family in summary.families(scenario, &models) {
            count = count + TwinCount::of(family.iter().flat_map(|(_, c)| c));
        }
    }
    count
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
/// the /proc/stat view, each the median over the cell's runs (the figure
/// cost claims rest on, both sides together, with its min–max); then
/// [`ATTRIBUTION`].
pub fn attribution_table(summary: &Summary, scenario: &str) -> String {
    let of = |f: fn(&RunResult) -> Option<f64>, fmt: fn(f64) -> String| {
        move |c: &Cell| median(c, f).map_or(DASH.into(), fmt)
    };
    let softirq = |c: &Cell, side: Side| median(c, |x| x.proc_stat.as_ref()?.softirq_share(side));
    let columns: [Column; 8] = [
        ("server CPU µs/req (user+sys)", Right, &|c| {
            let server = |f: fn(&ServerCost) -> f64| median(c, move |x| x.server.as_ref().map(f));
            split(server(|s| s.cpu_us_per_req), server(|s| s.user_us_per_req), server(|s| s.sys_us_per_req))
        }),
        ("loadgen CPU µs/req (user+sys)", Right, &|c| {
            let loadgen = |f: fn(&LoadgenCost) -> f64| median(c, move |x| Some(f(&x.loadgen)));
            split(loadgen(|l| l.cpu_us_per_req), loadgen(|l| l.user_us_per_req), loadgen(|l| l.sys_us_per_req))
        }),
        ("both CPU µs/req", Right, &|c| {
            text(c.spread(|r| r.result.as_ref()?.combined.as_ref().map(|b| b.cpu_us_per_req)), num)
        }),
        ("server's share", Right, &of(|x| x.combined.as_ref().map(|b| b.server_share), percent)),
        ("both sys µs/req", Right, &of(|x| x.combined.as_ref().map(|b| b.sys_us_per_req), num)),
        ("all CPUs busy µs/req", Right, &of(|x| x.proc_stat.as_ref().map(|p| p.busy_us_per_req), num)),
        ("softirq % of busy: server's CPUs / loadgen's", Right, &|c| match (
            softirq(c, Side::Server),
            softirq(c, Side::Loadgen),
        ) {
            (None, None) => DASH.into(),
            (a, b) => format!("{} / {}", a.map_or(DASH.into(), percent), b.map_or(DASH.into(), percent)),
        }),
        ("steal %", Right, &of(|x| x.proc_stat.as_ref().map(|p| p.steal_share()), percent_1)),
    ];
    let mut out = cell_table(&columns, &summary.cells(scenario), Some(|c| c.failure_text()));
    out.push('\n');
    out.push_str(ATTRIBUTION);
    out
}

/// The run JSON's `run_queue`, where the run recorded it.
fn run_queue(r: &Record) -> Option<&RunQueue> {
    r.result.as_ref()?.run_queue.as_ref()
}

/// Per model × level: how long the server's threads waited to run, from
/// `run_delay` in /proc/TID/schedstat summed over them at the window's
/// edges (`crate::profile::runqueue`): the wait per request, that wait over
/// the mean latency (not a share: a thread may wait after its answer has
/// left, so it can pass 100%), the threads read and what one read of them
/// all cost (kept out of the window). Empty where no run recorded it.
pub fn run_queue_table(summary: &Summary, scenario: &str) -> String {
    let cells = summary.cells(scenario);
    if !cells.iter().any(|c| c.ok_runs().any(|r| run_queue(r).is_some())) {
        return String::new();
    }
    let columns: [Column; 4] = [
        ("run-queue wait µs/req", Right, &|c| shown(c, |r| Some(run_queue(r)?.wait_us_per_req), num)),
        ("wait ÷ mean latency", Right, &|c| shown(c, |r| Some(run_queue(r)?.wait_over_latency), percent)),
        ("server threads", Right, &|c| shown(c, |r| Some(run_queue(r)?.threads as f64), |v| format!("{v:.0}"))),
        ("one read of every thread, ms", Right, &|c| shown(c, |r| Some(run_queue(r)?.read_ms), |v| format!("{v:.1}"))),
    ];
    cell_table(&columns, &cells, Some(|c| c.failure_text()))
}

/// One side (`server` or `loadgen`) of `profiles/breakdown.csv` (written by
/// `loadgen sweep --profile`) as a table: per profiled run, the CPU per
/// request by category in µs (scaled to the run's measured CPU per request,
/// so that the row adds up to it), the total, the scheduler's share of it,
/// and the share of samples the category table named. `run` says what
/// became of each run (scenario, model, level): a failed run's profile is
/// of a server that did not do the run's work (pool starved past its
/// workers serves 64 connections), and the row says so. Empty where the
/// CSV has no row for the side; a malformed row is named.
pub fn breakdown_table(csv: &str, side: &str, run: &dyn Fn(&str, &str, &str) -> String) -> anyhow::Result<String> {
    // (scenario, model, level) in the CSV's order, each with its figures
    // by category and its named share.
    type Run = ((String, String, String), BTreeMap<String, f64>, f64);
    let mut runs: Vec<Run> = Vec::new();
    for (n, line) in csv.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let [scenario, model, level, row_side, category, us, _share, _samples, named] = f[..] else {
            anyhow::bail!("breakdown.csv line {}: expected 9 fields, found {}", n + 1, f.len());
        };
        if row_side != side {
            continue;
        }
        let number =
            |v: &str| v.parse::<f64>().map_err(|e| anyhow::anyhow!("breakdown.csv line {}: {v:?}: {e}", n + 1));
        let key = (scenario.to_string(), model.to_string(), level.to_string());
        let at = match runs.iter().position(|(k, _, _)| *k == key) {
            Some(at) => at,
            None => {
                runs.push((key, BTreeMap::new(), number(named)?));
                runs.len() - 1
            }
        };
        runs[at].1.insert(category.to_string(), number(us)?);
    }
    if runs.is_empty() {
        return Ok(String::new());
    }
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
    let mut columns = vec![("scenario", Left), ("model", Left), ("conns", Right), ("run", Left)];
    columns.extend(names.iter().map(|n| (*n, Right)));
    columns.extend([("total µs/req", Right), ("scheduler's share", Right), ("samples named", Right)]);
    let mut out = header(columns);
    for ((scenario, model, level), by_category, named) in &runs {
        let total: f64 = by_category.values().sum();
        let scheduler = by_category.get(Category::Scheduler.name()).copied().unwrap_or(0.0);
        let mut row = vec![scenario.clone(), model.clone(), level.clone(), run(scenario, model, level)];
        row.extend(names.iter().map(|n| num(by_category.get(*n).copied().unwrap_or(0.0))));
        row.push(num(total));
        row.push(if total > 0.0 { percent(scheduler / total) } else { DASH.into() });
        row.push(percent_1(*named));
        push_row(&mut out, row);
    }
    Ok(out)
}

/// The median of a figure of a cell's successful runs.
fn median(c: &Cell, f: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
    c.spread(|r| r.result.as_ref().and_then(&f)).map(|s| s.median)
}

/// "10.0 (3.00+7.00)": CPU µs per request (user+sys); the total alone
/// where the split was not recorded (results older than it).
fn split(cpu: Option<f64>, user: Option<f64>, sys: Option<f64>) -> String {
    let (user, sys) = (user.unwrap_or(0.0), sys.unwrap_or(0.0));
    match cpu {
        None => DASH.into(),
        Some(cpu) if user + sys > 0.0 => format!("{} ({}+{})", num(cpu), num(user), num(sys)),
        Some(cpu) => num(cpu),
    }
}

/// A rung's figure over every run that measured it (failed runs too), as
/// text: median (min–max).
fn rung_figure(c: &Cell, metric: impl Fn(&RunResult) -> Option<f64>, fmt: fn(f64) -> String) -> String {
    text(Spread::of(&results(c).filter_map(metric).collect::<Vec<f64>>()), fmt)
}

/// A server figure per request, where STATS counted requests.
fn cost(x: &RunResult, f: fn(&ServerCost) -> f64) -> Option<f64> {
    x.server.as_ref().filter(|s| s.requests > 0).map(f)
}

fn cs_of(s: &ServerCost) -> f64 {
    s.voluntary_cs_per_req + s.involuntary_cs_per_req
}

/// Per model × level: the knee, and the figures of that rung.
pub fn knee_table(summary: &Summary, scenario: &str) -> String {
    let slo = ladder::slo_of(summary);
    let mut out = header([
        ("model", Left),
        ("conns", Right),
        ("highest rate sustained (req/s)", Right),
        ("per budgeted CPU", Right),
        ("p99 there", Right),
        ("loadgen busy there", Right),
        ("server CPU µs/req", Right),
        ("cs/req", Right),
        ("next rung up", Left),
        ("host steal at next rung", Right),
    ]);
    for model in summary.models_in(scenario) {
        for level in summary.levels(scenario) {
            let rungs = summary.rungs(scenario, &model, level);
            let Some(k) = ladder::knee_of(summary, scenario, &model, level, slo) else { continue };
            let next = k.cell().and_then(|at| rungs.iter().find(|n| n.offered_rps > at.offered_rps));
            let there = match k.cell() {
                None => vec![DASH.to_string(); 7],
                Some(at) => vec![
                    per_budgeted_cpu(&k, at),
                    rung_figure(at, |x| Some(x.latency.p99 as f64), us_f),
                    rung_figure(at, |x| Some(ladder::loadgen_busy(x)), percent),
                    rung_figure(at, |x| cost(x, |s| s.cpu_us_per_req), num),
                    rung_figure(at, |x| cost(x, cs_of), num),
                    next.map_or(DASH.into(), |n| {
                        let rate = thousands(n.offered_rps.unwrap_or(0.0));
                        cell(&format!("{rate}: {}", ladder::judge_rung(summary, n, slo).word()))
                    }),
                    next.map_or(DASH.into(), host_steal),
                ],
            };
            push_row(&mut out, [model.clone(), level.to_string(), k.describe()].into_iter().chain(there));
        }
    }
    let _ = write!(
        out,
        "\nSustained: at least {:.0}% of the offered rate answered, with p99 ≤ {} (the SLO), in more than half of \
         the rung's runs. \"≥ X (load generator's limit)\": the next rung was not sustained because the load \
         generator itself was the limit there (its CPUs 90% busy or more; its send lag p99 a quarter of the p99 or \
         more; or it was the busier side, 75% busy or more) and no other model sustained that rate at that level, \
         so the model's knee lies somewhere above X. Where another model did, the load generator could offer the \
         rate, and the miss is the model's (on loopback the sender pays for the receiver's TCP path and the waker \
         for the wake-up). \"≥ X (top of the ladder)\": sustained at every rung. Per budgeted CPU: the knee over \
         the server's CPU budget (`--server-cpu-budget`; – without one). Loadgen busy: the load generator's \
         share of its CPUs at the knee; below 80% the knee is the server's. Next rung up: its verdict, and over \
         several runs how many gave it and the median one's reason (by p99). Host steal: the share of the \
         machine's CPU time that the virtual machine's host took during the window (`/proc/stat`'s steal), \
         median (min–max) over the rung's runs; no verdict reads it, so a rung missed while the host took the CPUs \
         is still charged to the model.\n",
        100.0 * ladder::ACHIEVED_SHARE,
        us(slo)
    );
    out
}

/// The knee over the server's CPU budget (req/s per CPU), "≥" where the
/// knee is a lower bound; "–" without a budget.
fn per_budgeted_cpu(k: &ladder::Knee, at: &Cell) -> String {
    let budget = results(at).find_map(ladder::budget_cpus);
    match (budget, at.offered_rps) {
        (Some(cpus), Some(rate)) => {
            let bound = if matches!(k, ladder::Knee::AtLeast(..)) { "≥ " } else { "" };
            format!("{bound}{}", thousands(rate / cpus))
        }
        _ => DASH.into(),
    }
}

/// The share of the machine's CPU time the host took over a rung's runs
/// (`/proc/stat` steal): median (min–max), to one decimal in percent.
fn host_steal(c: &Cell) -> String {
    rung_figure(c, |x| x.proc_stat.as_ref().map(|p| p.steal_share()), percent_1)
}

fn percent(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn percent_1(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Every rung of a ladder: offered, achieved, latency, the load
/// generator's send lag, the host's steal, the server's cost, and the
/// verdict.
pub fn rung_table(summary: &Summary, scenario: &str) -> String {
    let slo = ladder::slo_of(summary);
    let latency = |f: fn(&Latency) -> u64| move |c: &Cell| rung_figure(c, move |x| Some(f(&x.latency) as f64), us_f);
    let columns: [Column; 11] = [
        ("offered req/s", Right, &|c| thousands(c.offered_rps.unwrap_or(0.0))),
        ("runs ok", Right, &|c| format!("{}/{}", c.ok_runs().count(), c.runs.len())),
        ("achieved req/s", Right, &|c| rung_figure(c, |x| Some(x.throughput_rps), thousands) + bound_mark(c)),
        ("p50", Right, &latency(|l| l.p50)),
        ("p99", Right, &latency(|l| l.p99)),
        ("p99.9", Right, &latency(|l| l.p999)),
        ("send lag p99", Right, &|c| rung_figure(c, |x| x.send_lag.as_ref().map(|l| l.p99 as f64), us_f)),
        ("host steal", Right, &host_steal),
        ("server CPU µs/req", Right, &|c| rung_figure(c, |x| cost(x, |s| s.cpu_us_per_req), num)),
        ("cs/req", Right, &|c| rung_figure(c, |x| cost(x, cs_of), num)),
        ("verdict", Left, &|c| cell(&ladder::judge_rung(summary, c, slo).word())),
    ];
    let levels = summary.levels(scenario);
    let models = summary.models_in(scenario);
    let rungs: Vec<Cell> =
        models.iter().flat_map(|m| levels.iter().flat_map(move |&l| summary.rungs(scenario, m, l))).collect();
    with_bound_note(cell_table(&columns, &rungs, None), summary.scenario(scenario).any(|r| r.loadgen_saturated))
}

/// Per model × level: ECHO's and DELAY's latency apart, and whether ECHO's
/// p99 lies above one DELAY (ECHOs waited behind DELAYs: answers in order)
/// or below it (ECHOs passed them: answers out of order), in every run.
pub fn method_table(summary: &Summary, scenario: &str) -> String {
    let Some(delay) = summary.delay_us(scenario) else { return String::new() };
    let of = |c: &Cell, m: &'static str, p: fn(&Latency) -> u64| {
        c.spread(move |r| r.result.as_ref()?.latency_by_method.get(m).map(|l| p(l) as f64))
    };
    let echo_p99 = |c: &Cell| match of(c, "ECHO", |l| l.p99) {
        Some(s) if s.min > delay as f64 => "above: ECHOs waited behind DELAYs (in order)",
        Some(s) if s.max < delay as f64 => "below: ECHOs passed the DELAYs (out of order)",
        Some(_) => "above in some runs, below in others",
        None => DASH,
    };
    let against = format!("ECHO p99 against one DELAY ({})", us(delay));
    let columns: [Column; 6] = [
        ("req/s", Right, &|c| shown(c, Record::throughput, thousands) + bound_mark(c)),
        ("ECHO p50", Right, &|c| text(of(c, "ECHO", |l| l.p50), us_f)),
        ("ECHO p99", Right, &|c| text(of(c, "ECHO", |l| l.p99), us_f)),
        ("DELAY p50", Right, &|c| text(of(c, "DELAY", |l| l.p50), us_f)),
        ("DELAY p99", Right, &|c| text(of(c, "DELAY", |l| l.p99), us_f)),
        (&against, Left, &|c| echo_p99(c).to_string()),
    ];
    cell_table(&columns, &summary.cells(scenario), Some(|c| c.failure_text()))
}

/// The last column of a comparison: who is ahead (with the ratio to its
/// closest rival: the comparison with the largest corrected p), or who
/// ties.
fn lead_text(contenders: &[Contender], comparisons: &[Comparison]) -> String {
    // A model with too few passes of its own, which some comparison could
    // not test for it (a tie by rule, on a loadgen-saturated throughput, is
    // not one).
    let few = |m: &str| {
        contenders.iter().any(|c| c.model == m && c.passes.len() < stats::MIN_PAIRS)
            && comparisons.iter().any(|c| (c.a == m || c.b == m) && matches!(c.verdict, Verdict::TooFew { .. }))
    };
    let models: Vec<&str> = contenders.iter().map(|c| c.model.as_str()).collect();
    match cells::lead(&models, comparisons) {
        Lead::One(m) => {
            let closest = comparisons
                .iter()
                .filter(|c| c.a == m || c.b == m)
                .filter_map(|c| match c.verdict {
                    Verdict::Tested { test, p_adjusted } => Some((c, test, p_adjusted)),
                    _ => None,
                })
                .max_by(|x, y| x.2.total_cmp(&y.2));
            match closest {
                Some((c, t, p)) => {
                    // The ratio as winner ÷ rival.
                    let (rival, ratio, low, high) = if c.a == m {
                        (&c.b, t.ratio, t.low, t.high)
                    } else {
                        (&c.a, 1.0 / t.ratio, 1.0 / t.high, 1.0 / t.low)
                    };
                    format!(
                        "**{m}** ({ratio:.2}× {rival}'s, 95% {low:.2}–{high:.2}, p {} corrected)",
                        crate::fmt::p_value(p)
                    )
                }
                None => format!("**{m}**"),
            }
        }
        Lead::Tie(ms) => {
            let named: Vec<String> =
                ms.iter().map(|m| if few(m) { format!("{m} (too few passes)") } else { m.clone() }).collect();
            format!("tie: {}", named.join(", "))
        }
        Lead::Unjudged => format!("fewer than {} passes each: not judged", stats::MIN_PAIRS),
        Lead::Alone => "–".into(),
    }
}

/// Requests answered per connection in the window, `min/p1/median/max`
/// (each the median over the cell's runs), so that a model that starves
/// some connections shows it.
fn fairness(c: &Cell) -> String {
    let part = |f: fn(&crate::records::run::Fairness) -> u64| {
        c.spread(move |r: &Record| r.result.as_ref().map(|x| f(&x.fairness) as f64)).map(|s| format!("{:.0}", s.median))
    };
    match (part(|f| f.min), part(|f| f.p1), part(|f| f.median), part(|f| f.max)) {
        (Some(a), Some(b), Some(m), Some(z)) => format!("{a}/{b}/{m}/{z}"),
        _ => DASH.into(),
    }
}

/// The floors a sweep measured at its start.
pub fn floor_table(floor: &SweepFloor) -> String {
    let f = &floor.figures;
    let mut out = header([("floor", Left), ("CPUs", Left), ("wall µs", Right), ("CPU µs", Right)]);
    let pair = "pair: one 64 B write + read, one thread".to_string();
    push_row(&mut out, [pair, floor.pair_cpu.to_string(), num(f.pair_wall_us), num(f.pair_cpu_us)]);
    for (what, pingpong) in [("one CPU", &f.pingpong_same_cpu), ("across CPUs", &f.pingpong_cross_cpu)] {
        let row = match pingpong {
            Some(p) => [
                format!("ping-pong {what}: round trip, CPU per side"),
                format!("{},{}", p.cpus.0, p.cpus.1),
                num(p.round_trip_us),
                num(p.cpu_us_per_side),
            ],
            None => [format!("ping-pong {what}"), DASH.into(), "not measured".into(), DASH.into()],
        };
        push_row(&mut out, row);
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
    let columns: [Column; 8] = [
        ("req/s", Right, &|c| shown(c, Record::throughput, thousands) + bound_mark(c)),
        ("server CPU µs/req", Right, &|c| shown(c, Record::server_cpu, num)),
        ("floor pair µs", Right, &|_| pair.map_or(DASH.into(), num)),
        ("server ÷ floor", Right, &|c| {
            text(c.spread(Record::server_cpu).zip(pair).map(|(s, p)| s.over(p)), |v| format!("{v:.2}×"))
        }),
        ("loadgen CPU µs/req", Right, &|c| shown(c, Record::loadgen_cpu, num)),
        ("loadgen ÷ server", Right, &|c| {
            let (server, lg) = (c.spread(Record::server_cpu), c.spread(Record::loadgen_cpu));
            server.zip(lg).map_or(DASH.into(), |(s, l)| format!("{:.2}", l.median / s.median))
        }),
        ("loadgen RSS", Right, &|c| c.spread(Record::loadgen_rss).map_or(DASH.into(), |s| mib(s.max as u64))),
        ("answers/conn min/p1/med/max", Right, &fairness),
    ];
    let first_failure: fn(&Cell) -> String = |c| c.failures().first().map_or(String::new(), |(_, why)| why.to_string());
    let cells = summary.cells(SATURATE);
    let bound = cells.iter().any(Cell::loadgen_saturated);
    let mut out = with_bound_note(cell_table(&columns, &cells, Some(first_failure)), bound);
    out.push_str(
        "\nTargets (echo-saturate, 64 B, depth 1; server and load generator each pinned to a CPU of its own):\n\n",
    );
    for t in targets(summary, pair) {
        let _ = writeln!(out, "- {}: **{}**{}", t.what, t.judgement.word(), t.detail());
    }
    out
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
    use crate::testdata::{self, jitter, scale};

    /// The line of `table` that starts with `head`.
    fn line_of<'t>(table: &'t str, head: &str) -> &'t str {
        table.lines().find(|l| l.starts_with(head)).unwrap_or_else(|| panic!("no {head} in {table}"))
    }

    #[test]
    fn scenario_table_has_a_row_per_cell_and_notes_failures() {
        let summary = testdata::summary();
        let table = scenario_table(&summary, "echo-saturate");
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| model")).collect();
        assert_eq!(rows.len(), 15);
        let pool = line_of(&table, "| pool | 1000 |");
        assert!(pool.contains("never served"), "{pool}");
        assert!(pool.contains("| 0/1 ok | – | – | – |"), "a failed run shows no figures: {pool}");
        let bound = line_of(&table, "| mio-single | 200 |");
        assert!(bound.contains("| 20,000\\* |"), "one run: the bare value: {bound}");
        assert!(table.contains("loadgen-saturated"));
        assert!(table.contains("answers/conn min/p1/med/max"));
        let row = line_of(&table, "| tokio | 500 |");
        assert!(row.contains("| 1/2/3/4 |"), "answers per connection: {row}");
    }

    #[test]
    fn with_repeats_every_figure_shows_its_median_and_range() {
        let mut summary = testdata::summary_repeated(3);
        let run = summary.records.iter_mut().find(|r| r.model == "tokio" && r.level == 500 && r.repeat == 3).unwrap();
        run.status = crate::records::sweep::RunStatus::Failed;
        run.failure = Some("server exited".into());
        let table = scenario_table(&summary, "echo-saturate");
        let row = line_of(&table, "| mio-multi | 200 |");
        // Passes at 1, 1.02 and 0.98 × 20,000 req/s.
        assert!(row.contains("| 3 | 200/200 | 20,000 (19,600–20,400) |"), "{row}");
        assert!(row.contains("| 10.0 (9.80–10.2) |"), "CPU µs/req: {row}");
        let partly = line_of(&table, "| tokio | 500 |");
        assert!(partly.contains("| 2/3 ok |") && partly.contains("pass 3: server exited"), "{partly}");
        let text = tables_md(&summary).unwrap();
        assert!(text.contains("3 interleaved passes"), "{text}");
        assert!(text.contains("### echo-saturate: every model"), "{text}");
    }

    #[test]
    fn a_cell_that_failed_as_its_model_is_designed_to_says_so() {
        let mut summary = testdata::summary_repeated(1);
        let pool = summary.records.iter_mut().find(|r| r.model == "pool" && r.status.name() == "failed").unwrap();
        let (scenario, level) = (pool.scenario.clone(), pool.level);
        let mut result = testdata::result("pool", level, 640.0);
        result.connections.never_served = level - 64;
        pool.result = Some(result);
        pool.failure = Some(format!("starved: {} of {level} connections never got an answer", level - 64));
        let table = scenario_table(&summary, &scenario);
        let row = line_of(&table, &format!("| pool | {level} |"));
        assert!(row.contains(&format!("starved, as designed: 64 workers, {level} connections")), "{row}");
        assert!(!row.contains("failed:"), "{row}");
        let notes = crate::output::charts::failed_notes(&summary, &scenario);
        assert!(
            notes.contains(&format!("pool: starved, as designed, at {level} connections (not shown)")),
            "{notes:?}"
        );
    }

    #[test]
    fn the_run_queue_table_shows_each_cells_wait_and_is_left_out_without_one() {
        let mut summary = testdata::summary_repeated(3);
        assert_eq!(run_queue_table(&summary, "echo-saturate"), "", "no run recorded it: no table");
        assert!(!tables_md(&summary).unwrap().contains("waiting to run"));
        for (k, wait) in [(1, 9.0), (2, 10.0), (3, 12.0)] {
            let run = summary
                .records
                .iter_mut()
                .find(|r| r.model == "mio-single" && r.level == 1000 && r.repeat == k)
                .and_then(|r| r.result.as_mut())
                .unwrap();
            run.run_queue = Some(RunQueue {
                threads: 3,
                wait_us: 0.0,
                wait_us_per_req: wait,
                wait_over_latency: 0.5,
                read_ms: 0.2,
            });
        }
        let table = run_queue_table(&summary, "echo-saturate");
        let row = line_of(&table, "| mio-single | 1000 |");
        assert_eq!(row, "| mio-single | 1000 | 10.0 (9.00–12.0) | 50% (50%–50%) | 3 (3–3) | 0.2 (0.2–0.2) |");
        let other = line_of(&table, "| tokio | 1000 |");
        assert!(other.ends_with("| – | – | – | – |"), "{other}");
        assert!(tables_md(&summary).unwrap().contains("### echo-saturate: waiting to run"));
    }

    #[test]
    fn the_breakdown_table_adds_up_one_side_of_each_profiled_run() {
        let csv = "scenario,model,level,side,category,us_per_req,share,samples,named_share\n\
                   echo-saturate,thread-per-conn,1000,server,user,2.000,0.2,500,0.9960\n\
                   echo-saturate,thread-per-conn,1000,server,scheduler,6.000,0.6,500,0.9960\n\
                   echo-saturate,thread-per-conn,1000,server,other,2.000,0.2,500,0.9960\n\
                   echo-saturate,thread-per-conn,1000,loadgen,user,1.000,1.0,90,1.0000\n\
                   echo-saturate,mio-single,1000,server,tcp_ip,3.000,1.0,400,1.0000\n";
        let run = |_: &str, model: &str, level: &str| format!("{model} at {level}: ok");
        let table = breakdown_table(csv, "server", &run).unwrap();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert_eq!(
            rows[0],
            "| echo-saturate | thread-per-conn | 1000 | thread-per-conn at 1000: ok | 2.00 | 0 | 0 | 0 | 0 | 6.00 | 0 \
             | 2.00 | 10.0 | 60% | 99.6% |"
        );
        assert!(
            rows[1].starts_with("| echo-saturate | mio-single | 1000 | mio-single at 1000: ok |")
                && rows[1].ends_with("| 3.00 | 0% | 100.0% |")
        );
        assert!(breakdown_table(csv, "loadgen", &run)
            .unwrap()
            .contains("| thread-per-conn | 1000 | thread-per-conn at 1000: ok | 1.00 |"));
        assert_eq!(breakdown_table("scenario,model\n", "server", &run).unwrap(), "");
        let bad = breakdown_table("header\necho-saturate,mio-single,1000,server,user,x,0,1,1\n", "server", &run);
        assert!(bad.unwrap_err().to_string().contains("line 2"), "a malformed figure is named by its line");
    }

    #[test]
    fn peer_table_puts_peers_side_by_side() {
        let summary = testdata::summary();
        let table = peer_table(&summary, "echo-saturate");
        let header = table.lines().next().unwrap();
        assert_eq!(header, "| conns | figure | mio-single | mio-multi | tokio | ahead |");
        assert_eq!(table.lines().filter(|l| l.contains("| req/s |")).count(), 3);
        assert!(
            table.contains("| 1000 | server CPU µs/req | 10.0 | 10.0 | 10.0 | fewer than 3 passes each: not judged |"),
            "one run: no spread to judge by: {table}"
        );
    }

    #[test]
    fn a_model_is_ahead_only_where_the_paired_passes_say_so() {
        let mut summary = testdata::summary_repeated(3);
        // 500: mio-multi's throughput doubled (with 1% noise of its own per
        // pass): ahead of both, by about 2× tokio's, the closest rival.
        scale(&mut summary, "mio-multi", 500, |x| x.throughput_rps *= 2.0);
        jitter(&mut summary, "mio-multi", 500, &[1.0, 1.01, 0.99]);
        jitter(&mut summary, "tokio", 500, &[1.03, 0.99, 1.01]);
        // 1000: tokio's throughput 1% up on average, with ±2% noise of its
        // own: within the noise, a tie. mio-single's CPU halved: ahead.
        jitter(&mut summary, "tokio", 1000, &[1.03, 0.99, 1.01]);
        scale(&mut summary, "mio-single", 1000, |x| x.server.as_mut().unwrap().cpu_us_per_req = 5.0);
        scale(&mut summary, "tokio", 1000, |x| x.server.as_mut().unwrap().cpu_us_per_req = 9.9);
        let table = peer_table(&summary, "echo-saturate");
        let rps = line_of(&table, "| 500 | req/s |");
        assert!(rps.contains("| **mio-multi** (1.9") && rps.contains("× tokio's, 95% 1."), "{rps}");
        assert!(rps.contains(" corrected) |") && rps.contains("| 34,000 (32,987–35,027) |"), "{rps}");
        let cpu = line_of(&table, "| 1000 | server CPU µs/req |");
        assert!(cpu.contains("| **mio-single** (0.5"), "{cpu}");
        let rps = line_of(&table, "| 1000 | req/s |");
        assert!(rps.ends_with("| tie: mio-single, mio-multi, tokio |"), "{rps}");
        scale(&mut summary, "tokio", 1000, |x| x.server.as_mut().unwrap().cpu_us_per_req = 5.0);
        let table = peer_table(&summary, "echo-saturate");
        let cpu = line_of(&table, "| 1000 | server CPU µs/req |");
        assert!(cpu.ends_with("| tie: mio-single, tokio |"), "{cpu}");
        // tokio failed in passes 2 and 3 at 200: one pass, nothing to pair.
        for r in summary.records.iter_mut().filter(|r| r.model == "tokio" && r.level == 200 && r.repeat > 1) {
            r.status = crate::records::sweep::RunStatus::Failed;
        }
        let table = peer_table(&summary, "echo-saturate");
        let p99 = line_of(&table, "| 200 | p99 |");
        assert!(p99.ends_with("| tie: mio-single, mio-multi, tokio (too few passes) |"), "{p99}");
    }

    /// Every model ran 30% faster in pass 2 and 20% slower in pass 3 (the
    /// machine, not the models), and tokio 5% faster than the others in
    /// every pass: the unpaired ranges overlap, the paired ratios do not
    /// waver, and tokio is ahead.
    #[test]
    fn a_difference_hidden_in_the_ranges_by_the_passes_is_found_by_pairing() {
        let mut summary = testdata::summary_repeated(3);
        let machine = [1.0, 1.3, 0.8];
        let own = |model: &str, pass: u32| match model {
            "tokio" => 1.05 * [1.0, 1.004, 0.997][pass as usize - 1],
            "mio-multi" => [1.0, 0.997, 1.003][pass as usize - 1],
            _ => 1.0,
        };
        for r in summary.records.iter_mut().filter(|r| r.level == 500 && r.scenario == "echo-saturate") {
            let factor = machine[r.repeat as usize - 1] * own(&r.model, r.repeat);
            r.result.as_mut().unwrap().throughput_rps = 17_000.0 * factor;
        }
        let table = peer_table(&summary, "echo-saturate");
        let rps = line_of(&table, "| 500 | req/s |");
        assert!(rps.contains("| 17,850 (14,237–23,298) |"), "tokio's range overlaps the others': {rps}");
        assert!(rps.contains("| **tokio** ("), "{rps}");
    }

    /// Ranges that clear each other by a little, over 3 passes, but ratios
    /// that waver (0.97, 0.94, 0.98): no longer enough to call tokio behind.
    #[test]
    fn ranges_that_barely_clear_are_not_a_verdict_without_consistent_ratios() {
        let mut summary = testdata::summary_repeated(3);
        let rps = |model: &str, pass: u32| match model {
            "tokio" => [100.0, 101.0, 102.0][pass as usize - 1],
            _ => [103.0, 108.0, 104.0][pass as usize - 1],
        };
        for r in summary.records.iter_mut().filter(|r| r.level == 500 && r.scenario == "echo-saturate") {
            r.result.as_mut().unwrap().throughput_rps = 100.0 * rps(&r.model, r.repeat);
        }
        let table = peer_table(&summary, "echo-saturate");
        let line = line_of(&table, "| 500 | req/s |");
        assert!(line.contains("| 10,100 (10,000–10,200) |"), "{line}");
        assert!(line.ends_with("| tie: mio-single, mio-multi, tokio |"), "{line}");
    }

    #[test]
    fn a_loadgen_saturated_run_neither_wins_nor_loses_on_throughput() {
        let mut summary = testdata::summary_repeated(3);
        // testdata: mio-single at 200 is loadgen-saturated in every pass.
        scale(&mut summary, "mio-single", 200, |x| x.throughput_rps *= 3.0);
        scale(&mut summary, "mio-multi", 200, |x| x.throughput_rps *= 2.0);
        let table = peer_table(&summary, "echo-saturate");
        let rps = line_of(&table, "| 200 | req/s |");
        // mio-single's threefold throughput is the load generator's limit as
        // much as the server's: it ties; mio-multi beats tokio but not it.
        assert!(rps.contains("| 60,000 (58,800–61,200)\\* |"), "{rps}");
        assert!(rps.ends_with("| tie: mio-single, mio-multi |"), "{rps}");
        assert!(table.contains("neither wins nor loses"), "{table}");
        let all = every_model_table(&summary, "echo-saturate");
        assert!(all.starts_with("| conns | figure | thread-per-conn | pool | mio-single |"), "{all}");
        let failed = line_of(&all, "| 1000 | req/s |");
        assert!(failed.contains("| failed |"), "{failed}");
    }

    #[test]
    fn per_request_figures_of_a_server_that_counted_no_request_are_not_shown() {
        let mut summary = testdata::summary();
        scale(&mut summary, "thread-per-conn", 1000, |x| {
            let s = x.server.as_mut().unwrap();
            (s.requests, s.voluntary_cs_per_req, s.involuntary_cs_per_req, s.cpu_us_per_req) = (0, 0.0, 0.0, 0.0);
        });
        let row = scenario_table(&summary, "echo-saturate");
        let row = line_of(&row, "| thread-per-conn | 1000 |");
        assert!(row.contains("| – | – | – | 10.0 MiB | 1003 |"), "no cs/req nor CPU, but RSS and threads: {row}");
        let all = every_model_table(&summary, "echo-saturate");
        let cs = line_of(&all, "| 1000 | cs/req |");
        assert!(cs.starts_with("| 1000 | cs/req | – |"), "{cs}");
    }

    #[test]
    fn attribution_table_adds_the_sides_and_says_who_pays() {
        let summary = testdata::summary();
        let table = attribution_table(&summary, "echo-saturate");
        // testdata: server 10 (3+7), load generator 5 (2+3), together 15 (10 sys);
        // CPU 0 (server) 25% softirq, CPU 1 (load generator) 10%; steal 10 ms of 8 s.
        let row = line_of(&table, "| tokio | 500 |");
        assert_eq!(
            row,
            "| tokio | 500 | 10.0 (3.00+7.00) | 5.00 (2.00+3.00) | 15.0 | 67% | 10.0 | 18.0 | 25% / 10% | 0.1% |"
        );
        let failed = line_of(&table, "| pool | 1000 |");
        assert!(failed.contains("failed: 800 of 1000"), "{failed}");
        assert!(table.contains("sender's CPU") && table.contains("cost claims rest on it"), "{table}");
        assert!(tables_md(&summary).unwrap().contains(&table));

        let mut old = summary.clone();
        for r in old.records.iter_mut().filter_map(|r| r.result.as_mut()) {
            (r.combined, r.proc_stat) = (None, None);
            (r.loadgen.user_us_per_req, r.loadgen.sys_us_per_req) = (0.0, 0.0);
        }
        let table = attribution_table(&old, "echo-saturate");
        assert_eq!(
            line_of(&table, "| tokio | 500 |"),
            "| tokio | 500 | 10.0 (3.00+7.00) | 5.00 | – | – | – | – | – | – |",
            "not measured: dashes"
        );
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
        let row = line_of(&table, "| mio-multi | 1000 |");
        assert!(row.contains("| 10.0 | 8.00 | 1.25× | 5.00 | 0.50 |"), "{row}");
        assert!(table.contains("| pool | 1000 | failed: 800 of 1000"), "{table}");
        assert!(table.contains("20,000\\*"), "loadgen-saturated runs are marked: {table}");
        let repeated = performance_table(&testdata::summary_repeated(3), Some(&floor(8.0)));
        let row = line_of(&repeated, "| mio-multi | 1000 |");
        assert!(row.contains("| 14,000 (13,720–14,280) | 10.0 (9.80–10.2) | 8.00 | 1.25× ("), "{row}");
        let no_floor = performance_table(&summary, None);
        assert!(no_floor.contains("| 10.0 | – | – |"), "{no_floor}");
        assert!(no_floor.contains("not judged** (no floor measured"), "{no_floor}");
    }

    #[test]
    fn floor_table_lists_every_floor() {
        let table = floor_table(&floor(2.5));
        assert!(table.contains("| pair: one 64 B write + read, one thread | 0 | 2.50 | 2.50 |"), "{table}");
        assert!(table.contains("ping-pong one CPU | – | not measured"), "{table}");
    }

    #[test]
    fn the_host_steal_at_the_next_rung_is_shown_not_judged() {
        // The host takes 2 s of the 10 s of CPU time of thread-per-conn's
        // 30,000 req/s rung at 1000 connections (its first miss): 20%.
        let mut summary = testdata::knee_summary();
        let next = |r: &Record| r.model == "thread-per-conn" && r.level == 1000 && r.offered_rps == Some(30_000.0);
        for r in summary.records.iter_mut().filter(|r| next(r)) {
            let cpu = r.result.as_mut().and_then(|x| x.proc_stat.as_mut()).and_then(|p| p.cpus.get_mut(&0)).unwrap();
            cpu.steal_us = 2_000_000;
        }
        let table = knee_table(&summary, "knee");
        let tpc = line_of(&table, "| thread-per-conn | 1000 |");
        assert!(tpc.ends_with("SLO 10.0 ms | 20.0% |"), "{tpc}");
        assert!(tpc.contains("| 20,000 |"), "the knee stays where the verdicts put it: {tpc}");
        let rungs = rung_table(&summary, "knee");
        assert!(rungs.lines().any(|l| l.starts_with("| thread-per-conn | 1000 | 30,000 |") && l.contains("| 20.0% |")));
        assert!(table.contains("no verdict reads it"), "{table}");
    }

    #[test]
    fn knee_table_gives_each_models_knee_and_its_cost() {
        let summary = testdata::knee_summary();
        let table = knee_table(&summary, "knee");
        let tpc = line_of(&table, "| thread-per-conn | 1000 |");
        // testdata: server 10 µs/req, 0.6 voluntary + 0.01 involuntary switches at 1000, one pass.
        assert_eq!(
            tpc,
            "| thread-per-conn | 1000 | 20,000 | – | 2.00 ms | 50% | 10.0 | 0.610 | 30,000: missed: achieved 83.3% \
             of the offered rate; p99 900.0 ms > SLO 10.0 ms | 0.1% |"
        );
        // Under a budget of 0.25 CPU: 80,000 req/s per budgeted CPU.
        let mut budgeted = testdata::knee_summary();
        for r in budgeted.records.iter_mut().filter_map(|r| r.result.as_mut()) {
            r.server_cgroup = Some(crate::records::run::ServerCgroup {
                budget: Some(crate::cgroup::CpuBudget { cpus: 0.25, period: std::time::Duration::from_millis(5) }),
                ..Default::default()
            });
        }
        let table = knee_table(&budgeted, "knee");
        let tpc = line_of(&table, "| thread-per-conn | 1000 |");
        assert!(tpc.starts_with("| thread-per-conn | 1000 | 20,000 | 80,000 | 2.00 ms | 50% |"), "{tpc}");
        let single = line_of(&table, "| mio-single | 5000 |");
        assert!(single.contains("| ≥ 30,000 (top of the ladder) | ≥ 120,000 |"), "{single}");
        assert!(table.contains("p99 ≤ 10.0 ms (the SLO)"), "{table}");
        let rungs = rung_table(&summary, "knee");
        assert_eq!(rungs.lines().filter(|l| l.starts_with("| thread-per-conn |")).count(), 6);
        assert!(rungs.contains("| 0.1% | 10.0 |"), "host steal beside the server's CPU: {rungs}");
        assert!(
            rungs.contains("| thread-per-conn | 5000 | 30,000 | 0/1 | 25,000 |"),
            "the failed run is measured: {rungs}"
        );
        let md = tables_md(&summary).unwrap();
        assert!(md.contains("## knee\n\n| model | conns | highest rate sustained"), "{md}");
        assert!(md.contains("### knee: every rung"), "{md}");
    }

    #[test]
    fn method_table_sets_echo_against_the_delay() {
        let summary = testdata::multiplex_summary();
        let table = method_table(&summary, "multiplex");
        assert!(table.contains("| ECHO p99 against one DELAY (5.00 ms) |"), "{table}");
        let tpc = line_of(&table, "| thread-per-conn | 200 |");
        assert!(
            tpc.contains("| 80 µs | 9.00 ms | 5.05 ms | 5.10 ms |")
                && tpc.ends_with("| above: ECHOs waited behind DELAYs (in order) |")
        );
        let single = line_of(&table, "| mio-single | 50 |");
        assert!(single.ends_with("| below: ECHOs passed the DELAYs (out of order) |"), "{single}");
        assert_eq!(method_table(&testdata::summary(), "echo-saturate"), "", "no DELAY apart: no table");
        let md = tables_md(&summary).unwrap();
        assert!(md.contains("### multiplex: ECHO beside DELAY"), "{md}");
    }

    #[test]
    fn cells_are_one_line() {
        assert_eq!(cell("a|b\nc"), "a/b c");
    }
}
