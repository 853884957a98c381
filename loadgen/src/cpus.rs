//! Which CPUs the server and the load generator run on, and pinning a child
//! process (or the calling thread) to its set: the layer below the sweep,
//! `loadgen floor` and the environment record, which all read or pin CPUs.
//!
//! A server and its load generator sharing a CPU measure each other's
//! scheduling as much as the model: the sweep gives them disjoint sets. By
//! default it splits the CPUs this process may use in half, the first half
//! for the server (on 2 cores: CPU 0 for the server, CPU 1 for the load
//! generator). The children are pinned with `sched_setaffinity` between
//! fork and exec.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::bail;
use serde::Serialize;

/// The split the sweep used, as env.json records it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Pinning {
    /// CPUs this process was allowed to use.
    pub available: Vec<usize>,
    pub server_cpus: Vec<usize>,
    pub loadgen_cpus: Vec<usize>,
    /// How the split was chosen, and any caveat.
    pub how: String,
}

/// The CPUs this process may run on.
pub fn available() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Choose the sets: the given ones (checked), or half and half.
pub fn split(available: &[usize], server: Option<Vec<usize>>, loadgen: Option<Vec<usize>>) -> anyhow::Result<Pinning> {
    let check = |flag: &str, cpus: &[usize]| -> anyhow::Result<()> {
        if let Some(c) = cpus.iter().find(|c| !available.contains(c)) {
            bail!("{flag}: CPU {c} is not available to this process (available: {})", list(available));
        }
        Ok(())
    };
    let (server_cpus, loadgen_cpus, how) = match (server, loadgen) {
        (Some(s), Some(l)) => {
            check("--server-cpus", &s)?;
            check("--loadgen-cpus", &l)?;
            (s, l, "as given by --server-cpus and --loadgen-cpus".to_string())
        }
        (Some(s), None) => {
            check("--server-cpus", &s)?;
            let l: Vec<usize> = available.iter().copied().filter(|c| !s.contains(c)).collect();
            if l.is_empty() {
                bail!("--server-cpus {} leaves no CPU for the load generator: give --loadgen-cpus too", list(&s));
            }
            (s, l, "--server-cpus as given; the load generator on the other available CPUs".to_string())
        }
        (None, Some(l)) => {
            check("--loadgen-cpus", &l)?;
            let s: Vec<usize> = available.iter().copied().filter(|c| !l.contains(c)).collect();
            if s.is_empty() {
                bail!("--loadgen-cpus {} leaves no CPU for the server: give --server-cpus too", list(&l));
            }
            (s, l, "--loadgen-cpus as given; the server on the other available CPUs".to_string())
        }
        (None, None) if available.len() < 2 => (
            available.to_vec(),
            available.to_vec(),
            "only one CPU available: server and load generator share it (figures include their contention)".into(),
        ),
        (None, None) => {
            let half = available.len() / 2;
            (
                available[..half].to_vec(),
                available[half..].to_vec(),
                "default: the available CPUs split in half, the first half for the server".into(),
            )
        }
    };
    if server_cpus.iter().any(|c| loadgen_cpus.contains(c)) && available.len() >= 2 {
        bail!(
            "--server-cpus {} and --loadgen-cpus {} overlap: give them disjoint CPU sets",
            list(&server_cpus),
            list(&loadgen_cpus)
        );
    }
    Ok(Pinning { available: available.to_vec(), server_cpus, loadgen_cpus, how })
}

/// One step of the `scaling` scenario: the server on `server_cpus` (1, 2,
/// 4, … of them), the load generator on every other available CPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScalingStep {
    pub server_cpus: Vec<usize>,
    pub loadgen_cpus: Vec<usize>,
}

/// The fewest CPUs the `scaling` scenario runs on.
pub const SCALING_MIN_CPUS: usize = 4;

/// Why the `scaling` scenario cannot run on these CPUs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--scenario scaling: needs at least {SCALING_MIN_CPUS} CPUs, and this process may use {count} ({cpus}): it gives \
     the server 1, then 2, 4, … CPUs while the load generator keeps at least as many of the rest, so that the \
     server, not the load generator, is what runs out; with {count} there is no second step to compare the first \
     with"
)]
pub struct ScalingRefused {
    pub count: usize,
    pub cpus: String,
}

/// Plan the `scaling` scenario on the CPUs `available` to the sweep: the
/// server gets the first 1, 2, 4, … of them, doubling while the load
/// generator, on all the rest, keeps at least as many as the server (a
/// load generator with fewer CPUs than the server it drives measures
/// itself; the sweep's own default split gives it half too). Refused below
/// [`SCALING_MIN_CPUS`], where that leaves a single step.
///
/// The CPUs are taken in the order the kernel numbers them; on a machine
/// with SMT siblings numbered apart (0-15 cores, 16-31 their siblings)
/// the first steps get whole cores.
pub fn scaling_steps(available: &[usize]) -> Result<Vec<ScalingStep>, ScalingRefused> {
    let n = available.len();
    if n < SCALING_MIN_CPUS {
        return Err(ScalingRefused { count: n, cpus: list(available) });
    }
    let counts = std::iter::successors(Some(1usize), |k| Some(k * 2)).take_while(|&k| k <= n - k);
    Ok(counts
        .map(|k| ScalingStep { server_cpus: available[..k].to_vec(), loadgen_cpus: available[k..].to_vec() })
        .collect())
}

/// `[0, 2, 3]` -> `0,2,3` (the form `--server-cpus` takes).
pub fn list(cpus: &[usize]) -> String {
    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

/// Pin the process `cmd` will start to `cpus`, put it in a process group of
/// its own (a Ctrl-C at the terminal reaches only the sweep, which stops its
/// children itself), and have the kernel send it `death_signal` should the
/// sweep die first.
pub fn confine(cmd: &mut Command, cpus: &[usize], death_signal: libc::c_int) {
    let set = cpu_set(cpus);
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, sched_setaffinity) on
    // memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            set_affinity(&set)
        });
    }
}

/// Pin the calling thread (and the threads it starts afterwards) to `cpus`:
/// the sweep pins itself so that its progress bar never lands on the
/// server's CPUs, and `floor` pins each of its measuring threads.
pub fn pin_self(cpus: &[usize]) -> io::Result<()> {
    set_affinity(&cpu_set(cpus))
}

/// `cpus` as the kernel's CPU mask.
fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET only sets bits in it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    set
}

/// sched_setaffinity(2) of the calling thread (async-signal-safe).
fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid mask of the size given.
    match unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_split_zero_and_one_and_one_cpu_is_shared_and_said_so() {
        let p = split(&[0, 1], None, None).unwrap();
        assert_eq!((p.server_cpus, p.loadgen_cpus), (vec![0], vec![1]));
        let p = split(&[0, 1, 2, 3, 4], None, None).unwrap();
        assert_eq!((p.server_cpus, p.loadgen_cpus), (vec![0, 1], vec![2, 3, 4]));
        let p = split(&[0], None, None).unwrap();
        assert_eq!((p.server_cpus, p.loadgen_cpus), (vec![0], vec![0]));
        assert!(p.how.contains("share"));
    }

    #[test]
    fn given_sets_are_checked() {
        let p = split(&[0, 1, 2, 3], Some(vec![3]), None).unwrap();
        assert_eq!(p.loadgen_cpus, vec![0, 1, 2]);
        let e = split(&[0, 1], Some(vec![0, 1]), Some(vec![1])).unwrap_err().to_string();
        assert!(e.contains("overlap"), "{e}");
        let e = split(&[0, 1], Some(vec![7]), None).unwrap_err().to_string();
        assert!(e.contains("--server-cpus: CPU 7"), "{e}");
        let e = split(&[0, 1], Some(vec![0, 1]), None).unwrap_err().to_string();
        assert!(e.contains("no CPU for the load generator"), "{e}");
    }

    /// The planner on the CPU sets of 2-, 4-, 16- and 64-CPU machines.
    #[test]
    fn scaling_doubles_the_servers_cpus_while_the_load_generator_keeps_as_many() {
        let e = scaling_steps(&[0, 1]).unwrap_err();
        assert_eq!(e, ScalingRefused { count: 2, cpus: "0,1".into() });
        let why = e.to_string();
        assert!(why.contains("at least 4 CPUs") && why.contains("may use 2 (0,1)"), "{why}");

        let four = scaling_steps(&[0, 1, 2, 3]).unwrap();
        let step = |s: &[usize], l: &[usize]| ScalingStep { server_cpus: s.to_vec(), loadgen_cpus: l.to_vec() };
        assert_eq!(four, [step(&[0], &[1, 2, 3]), step(&[0, 1], &[2, 3])]);

        let sixteen: Vec<usize> = (0..16).collect();
        let steps = scaling_steps(&sixteen).unwrap();
        let shape: Vec<(usize, usize)> = steps.iter().map(|s| (s.server_cpus.len(), s.loadgen_cpus.len())).collect();
        assert_eq!(shape, [(1, 15), (2, 14), (4, 12), (8, 8)]);

        // A 64-CPU machine where the sweep may use every other CPU from 64 on.
        let sixty_four: Vec<usize> = (0..64).map(|c| 64 + 2 * c).collect();
        let steps = scaling_steps(&sixty_four).unwrap();
        let counts: Vec<usize> = steps.iter().map(|s| s.server_cpus.len()).collect();
        assert_eq!(counts, [1, 2, 4, 8, 16, 32]);
        for s in &steps {
            assert_eq!(s.server_cpus.len() + s.loadgen_cpus.len(), 64, "every CPU used once: {s:?}");
            assert!(s.server_cpus.iter().all(|c| !s.loadgen_cpus.contains(c) && sixty_four.contains(c)));
            assert!(s.loadgen_cpus.len() >= s.server_cpus.len());
        }
        assert_eq!(steps[1].server_cpus, [64, 66]);

        // Odd counts: 5 CPUs give 1 and 2 (a 4-CPU server would leave 1).
        assert_eq!(scaling_steps(&[0, 1, 2, 3, 4]).unwrap().len(), 2);
    }

    #[test]
    fn this_process_has_cpus() {
        assert!(!available().unwrap().is_empty());
    }
}
