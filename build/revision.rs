//! The git revision a binary is built from, embedded at build time: both
//! build scripts (`loadgen/build.rs`, `servers/build.rs`) compile this file
//! as a module (`#[path]`) and call [`embed_revision`], so that `--version`, STATS and every
//! run's JSON can name the code that ran, not the code that happens to be
//! checked out when someone reads the figures.
//!
//! The revision is `git rev-parse --short=12 HEAD`, with `-dirty` when
//! `git status --porcelain` lists anything outside `results/` (the same
//! rule as `loadgen::env::GitState::dirty`: sweeps write to `results/`, and
//! it holds no code), or "unknown (no git)" outside a checkout or without
//! git. It reaches the crate as the compile-time variable
//! `IOMODELS_REVISION` (`env!("IOMODELS_REVISION")`).
//!
//! Cargo reruns the script when HEAD moves (the worktree's `HEAD`, the
//! branch it names, `packed-refs`), when the index changes (a commit, an
//! `add`), or when any file of the workspace outside `target/`, `results/`
//! and `.git` changes (rerun-if-changed on a directory is recursive). A
//! worktree's `.git` is a file naming its own git directory, so the paths
//! come from `git rev-parse --git-path`, which resolves both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The value embedded outside a git checkout (or without git).
const NO_GIT: &str = "unknown (no git)";

/// Work out the revision, hand it to the crate, and tell cargo when to
/// work it out again.
pub fn embed_revision() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let revision = match git(&manifest, &["rev-parse", "--show-toplevel"]) {
        Some(top) => {
            let top = PathBuf::from(top);
            watch_git(&top);
            watch_sources(&top);
            revision_of(&top)
        }
        None => NO_GIT.to_string(),
    };
    println!("cargo:rustc-env=IOMODELS_REVISION={revision}");
}

/// `HEAD12` or `HEAD12-dirty`, or [`NO_GIT`] if git cannot say.
fn revision_of(top: &Path) -> String {
    let Some(head) = git(top, &["rev-parse", "--short=12", "HEAD"]) else { return NO_GIT.to_string() };
    match git(top, &["status", "--porcelain", "--", ".", ":(exclude)results"]) {
        Some(status) if status.is_empty() => head,
        // A status git could not give is not a clean one.
        _ => format!("{head}-dirty"),
    }
}

/// Rerun when HEAD moves or the index changes.
fn watch_git(top: &Path) {
    let mut paths = vec!["HEAD".to_string(), "index".to_string(), "packed-refs".to_string()];
    // The branch HEAD names (refs/heads/NAME), kept in the common git dir.
    paths.extend(git(top, &["symbolic-ref", "-q", "HEAD"]));
    for path in paths {
        // A path that does not exist (no packed-refs yet, a packed branch)
        // would make cargo rerun the script on every build.
        let file = git(top, &["rev-parse", "--git-path", &path]).map(|f| top.join(f));
        if let Some(file) = file.filter(|f| f.exists()) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}

/// Rerun when any file of the workspace changes: every entry of its top
/// directory but the build output, the results and git's own.
fn watch_sources(top: &Path) {
    let Ok(entries) = std::fs::read_dir(top) else { return };
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let skipped = ["target", "results", ".git"].iter().any(|s| name == *s)
            || target.as_deref().is_some_and(|t| path.starts_with(t) || t.starts_with(&path));
        if !skipped {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// What `git -C DIR ARGS` printed (trimmed), or `None` if it failed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out =
        Command::new("git").arg("-C").arg(dir).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
