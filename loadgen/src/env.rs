//! Where a run happened: kernel, CPU, cores, pinning, git revision, date and
//! host, recorded with every result so that numbers from two machines or two
//! commits are never compared unknowingly.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::result::Env;

/// The environment of this process now. `server_cpus` is what the caller
/// knows about the server's pinning (the load generator cannot see it).
pub fn collect(server_cpus: Option<Vec<usize>>) -> Env {
    Env {
        kernel: kernel(),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        loadgen_cpus: affinity(),
        server_cpus,
        git_rev: git_rev(),
        date: rfc3339(SystemTime::now()),
        hostname: hostname(),
    }
}

/// `uname -sr`, e.g. "Linux 6.1.0-18-amd64".
pub fn kernel() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        let field = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        format!("{} {}", field(&u.sysname), field(&u.release))
    }
}

/// The first "model name" of /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The CPUs this process may run on (`sched_getaffinity`), or none.
pub fn affinity() -> Vec<usize> {
    crate::sweep::cpus::available().unwrap_or_default()
}

/// `git rev-parse --short HEAD` of the source tree this binary was built
/// from (or of the current directory), or "unknown".
pub fn git_rev() -> String {
    let try_in = |dir: &str| {
        std::process::Command::new("git")
            .args(["-C", dir, "rev-parse", "--short", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    try_in(env!("CARGO_MANIFEST_DIR")).or_else(|| try_in(".")).unwrap_or_else(|| "unknown".into())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// RFC 3339 in UTC, to the second: `2024-05-01T12:34:56Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(4_102_444_799)), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn this_machine() {
        let e = collect(Some(vec![0]));
        assert!(e.kernel.starts_with("Linux "), "{}", e.kernel);
        assert!(e.cores >= 1);
        assert!(!e.loadgen_cpus.is_empty());
        assert_eq!(e.server_cpus, Some(vec![0]));
        assert!(e.date.ends_with('Z') && e.date.len() == 20, "{}", e.date);
    }
}
