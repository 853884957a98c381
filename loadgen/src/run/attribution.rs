//! Who paid for the CPU of a run: the server and the load generator added
//! up ([`CombinedCost`]), and what every CPU did over the window
//! ([`ProcStatWindow`]), from the sampler's two snapshots.
//!
//! On loopback the sender's system call runs the receiver's TCP path (the
//! packet is processed in softirq on the sender's CPU, charged to the
//! sender), and a thread that wakes another pays for the wake-up. So a
//! model whose answers cost the kernel more can look cheap on its own side
//! and make the load generator look expensive. Each side's figure stays as
//! it was measured; these add the two together, and show per CPU how much
//! of the busy time was softirq, so that a reader can compare models on a
//! figure that does not depend on who was charged.

use super::sampler::SamplerReport;
use crate::procstat;
use crate::records::run::{CombinedCost, Env, LoadgenCost, ProcStatWindow, ServerCost};

/// Server plus load generator, per request; `None` without server counters.
pub fn combined(server: Option<&ServerCost>, loadgen: &LoadgenCost) -> Option<CombinedCost> {
    let server = server.filter(|s| s.requests > 0)?;
    let cpu = server.cpu_us_per_req + loadgen.cpu_us_per_req;
    Some(CombinedCost {
        sys_us_per_req: server.sys_us_per_req + loadgen.sys_us_per_req,
        cpu_us_per_req: cpu,
        server_share: if cpu > 0.0 { server.cpu_us_per_req / cpu } else { 0.0 },
    })
}

/// /proc/stat between the window's two snapshots, each CPU labelled with the
/// side it belonged to (`env`: the load generator's affinity, the server's
/// pinning when given). `Ok(None)` when the window has no two snapshots
/// (the run was cut short); `Err` says why /proc/stat could not be read.
pub fn proc_stat(sampled: &SamplerReport, env: &Env, answered: u64) -> Result<Option<ProcStatWindow>, String> {
    let (Some(a), Some(b)) = (&sampled.window_start, &sampled.window_end) else { return Ok(None) };
    let (start, end) = (a.proc_stat.as_ref()?, b.proc_stat.as_ref()?);
    let window_us = (b.at - a.at).as_micros() as u64;
    let server = env.server_cpus.as_deref();
    let role = |cpu| procstat::role(cpu, server, &env.loadgen_cpus);
    Ok(Some(procstat::window(start, end, window_us, procstat::tick_us(), answered, role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(cpu: f64, sys: f64, requests: u64) -> ServerCost {
        ServerCost { cpu_us_per_req: cpu, sys_us_per_req: sys, requests, ..Default::default() }
    }

    #[test]
    fn the_two_sides_add_up() {
        let loadgen = LoadgenCost { cpu_us_per_req: 20.0, sys_us_per_req: 15.0, ..Default::default() };
        let c = combined(Some(&server(10.0, 6.0, 1000)), &loadgen).unwrap();
        assert_eq!((c.cpu_us_per_req, c.sys_us_per_req), (30.0, 21.0));
        assert!((c.server_share - 1.0 / 3.0).abs() < 1e-12, "{}", c.server_share);
    }

    #[test]
    fn no_server_figures_no_sum() {
        let loadgen = LoadgenCost { cpu_us_per_req: 20.0, ..Default::default() };
        assert_eq!(combined(None, &loadgen), None);
        assert_eq!(combined(Some(&server(0.0, 0.0, 0)), &loadgen), None, "a server that answered nothing");
    }
}
