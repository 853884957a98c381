//! What /proc says about a process: its descriptors, threads, CPU time and
//! resident memory.

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Threads of process `pid` now (the `Threads:` line of /proc/PID/status).
pub fn thread_count(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// utime + stime of process `pid`, in clock ticks (fields 14 and 15 of
/// /proc/PID/stat, after the parenthesised command name).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// utime + stime of process `pid`, in microseconds.
pub fn cpu_micros(pid: u32) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    cpu_ticks(pid) * 1_000_000 / hz.max(1)
}

/// Resident memory of process `pid` now, in bytes (the `VmRSS:` line of
/// /proc/PID/status, which the kernel gives in KiB).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}
