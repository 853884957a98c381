//! Every CPU's time from /proc/stat, and its difference over the measured
//! window: how busy each CPU was, and how much of that was softirq (where
//! loopback TCP does its receive work) or stolen by a hypervisor.
//!
//! Why it is measured: `getrusage` says what each process was charged, but
//! on loopback the kernel charges the receiver's TCP path to whoever sends,
//! and softirq work that runs on an idle CPU or in ksoftirqd is charged to
//! no process of the run at all. /proc/stat counts every CPU's time by kind,
//! whoever was charged, so the two views together show where the work went.
//!
//! A line of /proc/stat reads `cpuN user nice system idle iowait irq softirq
//! steal guest guest_nice`, cumulative since boot in clock ticks (USER_HZ,
//! usually 100 a second). `guest` and `guest_nice` are already counted in
//! `user` and `nice`, so they are not read.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::records::run::{CpuRole, CpuTimes, ProcStatWindow};

/// One CPU's cumulative counters, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// Every CPU's counters at one instant, by CPU number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub cpus: BTreeMap<usize, Ticks>,
}

#[derive(Debug, Error)]
pub enum ProcStatError {
    #[error("cannot read /proc/stat: {0}")]
    Read(#[from] std::io::Error),
    #[error("/proc/stat line {line} ({text:?}): {why}")]
    Parse { line: usize, text: String, why: String },
    #[error("/proc/stat has no per-CPU lines (cpu0, cpu1, ...)")]
    NoCpus,
}

/// The counters now.
pub fn read() -> Result<ProcStat, ProcStatError> {
    parse(&std::fs::read_to_string("/proc/stat")?)
}

/// The per-CPU lines of a /proc/stat text (the `cpu` total line and the
/// other lines are skipped).
pub fn parse(text: &str) -> Result<ProcStat, ProcStatError> {
    let mut stat = ProcStat::default();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|name| name.strip_prefix("cpu")).filter(|n| !n.is_empty()) else {
            continue;
        };
        let error = |why: String| ProcStatError::Parse { line: i + 1, text: line.to_string(), why };
        let cpu: usize = cpu.parse().map_err(|_| error(format!("cpu{cpu} is not a CPU number")))?;
        let values: Vec<u64> = fields
            .map(|f| f.parse().map_err(|_| error(format!("{f:?} is not a tick count"))))
            .collect::<Result<_, _>>()?;
        stat.cpus.insert(cpu, ticks(&values).ok_or_else(|| error(format!("{} counters, 8 needed", values.len())))?);
    }
    if stat.cpus.is_empty() {
        return Err(ProcStatError::NoCpus);
    }
    Ok(stat)
}

/// The first eight counters of a CPU line (kernels since 2.6.11 have them).
fn ticks(v: &[u64]) -> Option<Ticks> {
    let &[user, nice, system, idle, iowait, irq, softirq, steal, ..] = v else { return None };
    Some(Ticks { user, nice, system, idle, iowait, irq, softirq, steal })
}

/// How many µs one /proc/stat tick is (`sysconf(_SC_CLK_TCK)`, 100 Hz
/// where it cannot be asked).
pub fn tick_us() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000 / if hz > 0 { hz as u64 } else { 100 }
}

/// Whose CPU `cpu` was: the server's set is known only when the caller
/// pinned it (`--server-cpus`), the load generator's is its affinity.
pub fn role(cpu: usize, server: Option<&[usize]>, loadgen: &[usize]) -> CpuRole {
    let server = server.is_some_and(|s| s.contains(&cpu));
    match (server, loadgen.contains(&cpu)) {
        (true, true) => CpuRole::Both,
        (true, false) => CpuRole::Server,
        (false, true) => CpuRole::Loadgen,
        (false, false) => CpuRole::Neither,
    }
}

/// What happened between two reads: per CPU present in both, its time by
/// kind in µs and its role; `busy_us_per_req` over every CPU.
pub fn window(
    start: &ProcStat,
    end: &ProcStat,
    window_us: u64,
    tick_us: u64,
    answered: u64,
    role: impl Fn(usize) -> CpuRole,
) -> ProcStatWindow {
    let cpus: BTreeMap<usize, CpuTimes> = end
        .cpus
        .iter()
        .filter_map(|(cpu, b)| Some((*cpu, times(start.cpus.get(cpu)?, b, tick_us, role(*cpu)))))
        .collect();
    let busy: u64 = cpus.values().map(|c| c.busy_us).sum();
    let busy_us_per_req = if answered > 0 { busy as f64 / answered as f64 } else { 0.0 };
    ProcStatWindow { window_us, tick_us, busy_us_per_req, cpus }
}

/// One CPU's difference, in µs. A counter that went backwards (iowait can,
/// on a tickless kernel) counts as zero.
fn times(a: &Ticks, b: &Ticks, tick_us: u64, role: CpuRole) -> CpuTimes {
    let d = |x: u64, y: u64| y.saturating_sub(x) * tick_us;
    let user_us = d(a.user, b.user) + d(a.nice, b.nice);
    let system_us = d(a.system, b.system);
    let irq_us = d(a.irq, b.irq);
    let softirq_us = d(a.softirq, b.softirq);
    CpuTimes {
        role,
        busy_us: user_us + system_us + irq_us + softirq_us,
        user_us,
        system_us,
        irq_us,
        softirq_us,
        steal_us: d(a.steal, b.steal),
        idle_us: d(a.idle, b.idle) + d(a.iowait, b.iowait),
    }
}

impl CpuRole {
    /// As the JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            CpuRole::Server => "server",
            CpuRole::Loadgen => "loadgen",
            CpuRole::Both => "both",
            CpuRole::Neither => "neither",
        }
    }
}

/// One side of the run: whose CPUs are summed, whose profile is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Loadgen,
}

impl Side {
    /// As the JSON, the file names and the summary spell it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Loadgen => "loadgen",
        }
    }

    /// A CPU in both sets counts for each side.
    pub fn holds(self, role: CpuRole) -> bool {
        matches!(
            (self, role),
            (Side::Server, CpuRole::Server | CpuRole::Both) | (Side::Loadgen, CpuRole::Loadgen | CpuRole::Both)
        )
    }
}

impl ProcStatWindow {
    /// Steal over all the time of every CPU (0–1): how much a hypervisor
    /// took away while the run wanted the CPUs.
    pub fn steal_share(&self) -> f64 {
        let steal: u64 = self.cpus.values().map(|c| c.steal_us).sum();
        let all: u64 = self.cpus.values().map(|c| c.busy_us + c.steal_us + c.idle_us).sum();
        if all > 0 {
            steal as f64 / all as f64
        } else {
            0.0
        }
    }

    /// Softirq over busy time on `side`'s CPUs (0–1): how much of what ran
    /// there was the kernel's packet work. `None` when the side's CPUs are
    /// unknown or were never busy.
    pub fn softirq_share(&self, side: Side) -> Option<f64> {
        let cpus = self.cpus.values().filter(|c| side.holds(c.role));
        let (busy, softirq) = cpus.fold((0, 0), |(busy, softirq), c| (busy + c.busy_us, softirq + c.softirq_us));
        (busy > 0).then(|| softirq as f64 / busy as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two reads of a 2-CPU machine one second apart (100 Hz ticks), as a
    /// 6.x kernel writes them (the `intr` line cut short).
    const BEFORE: &str = "cpu  483641 22822 580175 770269 2118 0 325091 3026 0 0
cpu0 247380 9602 327237 363308 1087 0 150040 1342 0 0
cpu1 236260 13219 252937 406960 1030 0 175051 1683 0 0
intr 90390025 0 0 0
ctxt 332646041
btime 1700000000
processes 123456
procs_running 3
procs_blocked 0
softirq 1 2 3 4 5 6 7 8 9 10 11
";
    const AFTER: &str = "cpu  483701 22822 580215 770348 2118 0 325111 3027 0 0
cpu0 247390 9602 327267 363348 1087 0 150060 1342 0 0
cpu1 236310 13219 252947 406999 1030 0 175051 1684 0 0
intr 90391025 0 0 0
ctxt 332656041
";

    #[test]
    fn parses_every_cpu_line_and_skips_the_rest() {
        let s = parse(BEFORE).unwrap();
        assert_eq!(
            s.cpus.keys().copied().collect::<Vec<_>>(),
            vec![0, 1],
            "the `cpu` total and `softirq` lines are not CPUs"
        );
        assert_eq!(
            s.cpus[&1],
            Ticks {
                user: 236260,
                nice: 13219,
                system: 252937,
                idle: 406960,
                iowait: 1030,
                irq: 0,
                softirq: 175051,
                steal: 1683
            }
        );
    }

    #[test]
    fn differences_are_per_cpu_in_microseconds() {
        let roles = |cpu| role(cpu, Some(&[0]), &[1]);
        let w = window(&parse(BEFORE).unwrap(), &parse(AFTER).unwrap(), 1_000_000, 10_000, 1000, roles);
        let c0 = &w.cpus[&0];
        // cpu0: user +10, system +30, softirq +20, idle +40 ticks: 100 in the second.
        assert_eq!(c0.role, CpuRole::Server);
        assert_eq!((c0.user_us, c0.system_us, c0.softirq_us, c0.idle_us), (100_000, 300_000, 200_000, 400_000));
        assert_eq!(c0.busy_us, 600_000);
        let c1 = &w.cpus[&1];
        // cpu1: user +50, system +10, idle +39, steal +1.
        assert_eq!(c1.role, CpuRole::Loadgen);
        assert_eq!((c1.busy_us, c1.softirq_us, c1.idle_us, c1.steal_us), (600_000, 0, 390_000, 10_000));
        assert_eq!(w.busy_us_per_req, 1200.0, "1.2 s busy over 1000 requests");
        assert_eq!(w.softirq_share(Side::Server), Some(200_000.0 / 600_000.0));
        assert_eq!(w.softirq_share(Side::Loadgen), Some(0.0));
        assert_eq!(w.steal_share(), 10_000.0 / 2_000_000.0, "one tick of cpu1 in two CPU-seconds");
    }

    #[test]
    fn a_counter_going_backwards_counts_as_zero_and_new_cpus_are_left_out() {
        let after = AFTER.replace("cpu1 236310 13219 252947 406999 1030", "cpu1 236310 13219 252947 406999 1000");
        let after = format!("{after}cpu2 1 1 1 1 1 1 1 1 0 0\n");
        let w = window(&parse(BEFORE).unwrap(), &parse(&after).unwrap(), 1_000_000, 10_000, 0, |_| CpuRole::Both);
        assert_eq!(w.cpus[&1].idle_us, 390_000, "iowait 1030 -> 1000 adds nothing");
        assert!(!w.cpus.contains_key(&2), "a CPU that came online meanwhile has no window");
        assert_eq!(w.busy_us_per_req, 0.0, "no answers: no per-request figure");
    }

    #[test]
    fn roles_follow_the_sets() {
        assert_eq!(role(0, Some(&[0]), &[1]), CpuRole::Server);
        assert_eq!(role(1, Some(&[0]), &[1]), CpuRole::Loadgen);
        assert_eq!(role(0, Some(&[0]), &[0, 1]), CpuRole::Both);
        assert_eq!(role(0, None, &[1]), CpuRole::Neither, "the server's set unknown");
        assert_eq!(role(5, Some(&[0]), &[1]), CpuRole::Neither);
        assert!(Side::Server.holds(CpuRole::Both) && Side::Loadgen.holds(CpuRole::Both));
        assert!(!Side::Server.holds(CpuRole::Loadgen) && !Side::Loadgen.holds(CpuRole::Neither));
        for r in [CpuRole::Server, CpuRole::Loadgen, CpuRole::Both, CpuRole::Neither] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name(), "the name is the JSON's");
        }
    }

    #[test]
    fn malformed_text_is_refused_naming_the_line() {
        let e = parse("cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 x 4 5 6 7 8\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"x\" is not a tick count"), "{e}");
        let e = parse("cpu0 1 2 3 4\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("4 counters, 8 needed"), "{e}");
        let e = parse("cpuX 1 2 3 4 5 6 7 8\n").unwrap_err().to_string();
        assert!(e.contains("cpuX is not a CPU number"), "{e}");
        assert!(matches!(parse("intr 1 2 3\n"), Err(ProcStatError::NoCpus)));
    }

    #[test]
    fn this_machine_has_cpus_and_a_tick() {
        let s = read().unwrap();
        assert!(!s.cpus.is_empty());
        assert!((1_000..=100_000).contains(&tick_us()), "{}", tick_us());
    }
}
