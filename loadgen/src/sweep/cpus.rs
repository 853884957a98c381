//! Which CPUs the server and the load generator run on, and pinning a child
//! process to its set.
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

/// `[0, 2, 3]` -> `0,2,3` (the form `--server-cpus` takes).
pub fn list(cpus: &[usize]) -> String {
    cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

/// Pin the process `cmd` will start to `cpus`, put it in a process group of
/// its own (a Ctrl-C at the terminal reaches only the sweep, which stops its
/// children itself), and have the kernel send it `death_signal` should the
/// sweep die first.
pub fn confine(cmd: &mut Command, cpus: &[usize], death_signal: libc::c_int) {
    let cpus = cpus.to_vec();
    cmd.process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, sched_setaffinity) on
    // memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &cpus {
                libc::CPU_SET(c, &mut set);
            }
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Pin the calling thread (and the threads it starts afterwards) to `cpus`:
/// the sweep pins itself so that its progress bar never lands on the
/// server's CPUs, and `floor` pins each of its measuring threads.
pub fn pin_self(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: as in `confine`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_split_zero_and_one() {
        let p = split(&[0, 1], None, None).unwrap();
        assert_eq!((p.server_cpus, p.loadgen_cpus), (vec![0], vec![1]));
        let p = split(&[0, 1, 2, 3, 4], None, None).unwrap();
        assert_eq!((p.server_cpus, p.loadgen_cpus), (vec![0, 1], vec![2, 3, 4]));
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

    #[test]
    fn one_cpu_is_shared_and_said_so() {
        let p = split(&[0], None, None).unwrap();
        assert_eq!((p.server_cpus.clone(), p.loadgen_cpus.clone()), (vec![0], vec![0]));
        assert!(p.how.contains("share"));
    }

    #[test]
    fn this_process_has_cpus() {
        assert!(!available().unwrap().is_empty());
    }
}
