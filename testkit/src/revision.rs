//! The revision a binary built from this checkout must report (`--version`,
//! STATS `revision`, a run's `binaries`), worked out independently of the
//! build script: `git rev-parse --short=12 HEAD`, plus `-dirty` when `git
//! status --porcelain` lists anything outside `results/`.

use std::path::Path;
use std::process::Command;

/// The expected revision, or why it cannot be known here (no git, not a
/// checkout): the caller then skips, saying so.
pub fn expected_revision() -> Result<String, String> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| -> Result<String, String> {
        let out =
            Command::new("git").arg("-C").arg(&top).args(args).output().map_err(|e| format!("git cannot run ({e})"))?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            false => Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())),
        }
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let status = git(&["status", "--porcelain", "--", ".", ":(exclude)results"])?;
    Ok(if status.is_empty() { head } else { format!("{head}-dirty") })
}
