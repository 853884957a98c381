//! perf, driven for the measured window only: `perf record` is started
//! before the load with its events disabled (`-D -1`), switched on at the
//! window's start and off at its end through its control FIFO
//! (`--control fifo:CTL,ACK`), then stopped with SIGINT. Starting perf
//! takes a while (it reads every process's memory map); doing it before
//! the load keeps that out of the window, and the FIFO makes the window's
//! edges exact (perf acknowledges each switch), so nothing before or after
//! is sampled.
//!
//! **Per CPU, not per thread.** perf records every CPU (`-a`), and each
//! side's samples are picked out by process afterwards (`perf script
//! --pid`). Attached to the server's threads instead (`-p PID`), perf
//! counts each thread's CPU time apart and samples a thread only once *it*
//! has run a whole period (1 ms at 999 Hz): a thread-per-conn server whose
//! 1000 threads each ran well under 1 ms in a 0.5 s window, 0.87 CPU in
//! all, gave 0 samples (measured here); per CPU it gave 437. Per thread,
//! up to a period per thread is lost each window, which biases exactly the
//! models with many threads. Per CPU, the timer fires on the CPU whatever
//! runs there. The price: recording every CPU needs root (or
//! CAP_PERFMON, or `kernel.perf_event_paranoid` <= 0).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why there is no profile. Every case leaves the run itself untouched.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("perf is not installed (scripts/install-deps installs it): no profiles")]
    Missing,
    #[error("perf refused to record every CPU ({why}); root, CAP_PERFMON or kernel.perf_event_paranoid <= 0 lets it: no profiles")]
    Refused { why: String },
    #[error("perf control for {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("perf did not acknowledge {what} (it exited, or took over {0:?})", ACK_TIMEOUT)]
    NoAck { what: &'static str },
}

/// How long perf may take to attach, or to acknowledge a switch.
const ACK_TIMEOUT: Duration = Duration::from_secs(20);

/// One `perf record` of every CPU, its events off until [`Recorder::enable`].
pub struct Recorder {
    child: Child,
    ctl: File,
    ack: File,
    /// DIR/perf.data, DIR/perf.log and the two FIFOs.
    pub data: PathBuf,
    log: PathBuf,
    fifos: [PathBuf; 2],
}

impl Recorder {
    /// Start `perf record -e cpu-clock -g -F HZ -a` into DIR/perf.data,
    /// events disabled, and wait until it is ready.
    pub fn start(hz: u32, dir: &Path) -> Result<Recorder, CaptureError> {
        let io = |what: String| move |source| CaptureError::Io { what, source };
        let data = dir.join("perf.data");
        let log = dir.join("perf.log");
        let fifos = [dir.join("perf.ctl"), dir.join("perf.ack")];
        for f in &fifos {
            let _ = std::fs::remove_file(f);
            mkfifo(f).map_err(io(format!("mkfifo {}", f.display())))?;
        }
        // Both ends opened read-write: no open blocks waiting for perf, and
        // a command written before perf reads it waits in the pipe.
        let open = |p: &Path| OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(p);
        let ctl = open(&fifos[0]).map_err(io(format!("open {}", fifos[0].display())))?;
        let ack = open(&fifos[1]).map_err(io(format!("open {}", fifos[1].display())))?;
        let log_file = File::create(&log).map_err(io(format!("create {}", log.display())))?;
        let spawned = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-g", "-F", &hz.to_string(), "-a", "-D", "-1"])
            .arg("--control")
            .arg(format!("fifo:{},{}", fifos[0].display(), fifos[1].display()))
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CaptureError::Missing),
            Err(e) => return Err(io("spawn perf".into())(e)),
        };
        let mut r = Recorder { child, ctl, ack, data, log, fifos };
        r.wait_attached()?;
        Ok(r)
    }

    /// perf says "Events disabled" once it has opened every CPU's event.
    fn wait_attached(&mut self) -> Result<(), CaptureError> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("Events disabled") {
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                let why = log.lines().find(|l| !l.trim().is_empty()).unwrap_or("perf exited").trim().to_string();
                return Err(CaptureError::Refused { why });
            }
            if Instant::now() > deadline {
                return Err(CaptureError::NoAck { what: "attach" });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Switch sampling on; the instant perf acknowledged it.
    pub fn enable(&mut self) -> Result<Instant, CaptureError> {
        self.command("enable")
    }

    /// Switch sampling off; the instant perf acknowledged it.
    pub fn disable(&mut self) -> Result<Instant, CaptureError> {
        self.command("disable")
    }

    fn command(&mut self, what: &'static str) -> Result<Instant, CaptureError> {
        let io = |source| CaptureError::Io { what: what.to_string(), source };
        self.ctl.write_all(format!("{what}\n").as_bytes()).map_err(io)?;
        // Wait for "ack", in short slices: a perf that exited meanwhile (a
        // Ctrl-C reaches it too) never answers, and need not be waited for.
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let mut pfd = libc::pollfd { fd: self.ack.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd, for the length of the call.
            if unsafe { libc::poll(&mut pfd, 1, 50) } > 0 {
                let mut buf = [0u8; 16];
                let _ack = self.ack.read(&mut buf).map_err(io)?;
                return Ok(Instant::now());
            }
            if Instant::now() > deadline || !matches!(self.child.try_wait(), Ok(None)) {
                return Err(CaptureError::NoAck { what });
            }
        }
    }

    /// Stop perf (SIGINT, as Ctrl-C would: it then writes its file out) and
    /// wait for it; the path of its data.
    pub fn finish(mut self) -> Result<PathBuf, CaptureError> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().map_err(|source| CaptureError::Io { what: "wait".into(), source })?;
        for f in &self.fifos {
            let _ = std::fs::remove_file(f);
        }
        if !status.success() && !self.data.exists() {
            let why = std::fs::read_to_string(&self.log).unwrap_or_default();
            return Err(CaptureError::Refused { why: why.trim().to_string() });
        }
        Ok(self.data.clone())
    }
}

impl Drop for Recorder {
    /// A recorder dropped unfinished (the run failed) stops its perf too.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill on our own child's pid, still running.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let _ = self.child.wait();
        }
    }
}

/// `perf script` of a recording, the samples of process `pid` only: one
/// text block per sample, which `inferno::collapse::perf` folds.
pub fn script(data: &Path, pid: u32) -> Result<Vec<u8>, CaptureError> {
    let out = Command::new("perf")
        .arg("script")
        .arg(format!("--pid={pid}"))
        .arg("-i")
        .arg(data)
        .stderr(Stdio::null())
        .output()
        .map_err(|source| CaptureError::Io { what: format!("perf script -i {}", data.display()), source })?;
    Ok(out.stdout)
}

/// How many samples a `perf script` output holds: one header line each,
/// naming the event.
pub fn samples(script: &[u8]) -> u64 {
    script.split(|&b| b == b'\n').filter(|l| l.windows(11).any(|w| w == b" cpu-clock:")).count() as u64
}

fn mkfifo(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
