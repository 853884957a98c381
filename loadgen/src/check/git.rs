//! The base side of an A/B check: a revision's own binaries, built from a
//! git worktree of it into a target directory of their own, and kept by
//! commit so that a second check against the same base does not rebuild.
//!
//! Layout under the cache directory (default `target/ab`):
//! `<commit>/bin[-features]/{loadgen,servers}` the kept binaries, `target/` the cargo
//! target directory every base build shares (dependencies compile once),
//! and `<commit>/src` the worktree while it builds, removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Run git in `repo`, return its trimmed stdout.
fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = crate::env::git(repo, args).map_err(|e| anyhow::anyhow!("git {}: {e}", args.join(" ")))?;
    Ok(out.trim().to_string())
}

/// The top of the checkout that holds `dir`.
pub fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    git(dir, &["rev-parse", "--show-toplevel"]).map(PathBuf::from)
}

/// The full commit id of `rev` (`HEAD~1`, a branch, a hash).
pub fn resolve(repo: &Path, rev: &str) -> anyhow::Result<String> {
    git(repo, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .with_context(|| format!("--base {rev}: not a commit of {}", repo.display()))
}

/// What HEAD is, and whether the working tree differs from it.
pub fn describe_head(repo: &Path) -> String {
    let rev = git(repo, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let dirty = git(repo, &["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()).unwrap_or(false);
    if dirty {
        format!("{rev} + uncommitted changes")
    } else {
        rev
    }
}

/// The binaries of `commit`: built now, or kept from an earlier check.
/// `features` go to cargo as `--features`. Cargo's output goes to stderr.
pub fn build(repo: &Path, commit: &str, cache: &Path, features: &[String]) -> anyhow::Result<PathBuf> {
    // Kept by commit and features: a build without libevent is not one with it.
    let bin = cache.join(commit).join(match features.is_empty() {
        true => "bin".to_string(),
        false => format!("bin-{}", features.join("+").replace('/', "-")),
    });
    if ["loadgen", "servers"].iter().all(|b| bin.join(b).is_file()) {
        eprintln!("loadgen check: base {} binaries kept from an earlier check: {}", short(commit), bin.display());
        return Ok(bin);
    }
    let src = cache.join(commit).join("src");
    remove_worktree(repo, &src);
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    git(repo, &["worktree", "add", "--detach", "--force", &src.to_string_lossy(), commit])?;
    let built = cargo_build(&src, &cache.join("target"), features);
    // Copied into a temporary directory and renamed, so that a check killed
    // while copying leaves no half binary to be reused.
    let copied = built.and_then(|release| {
        let tmp = bin.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for b in ["loadgen", "servers"] {
            std::fs::copy(release.join(b), tmp.join(b))
                .with_context(|| format!("the base build made no {b} binary in {}", release.display()))?;
        }
        std::fs::rename(&tmp, &bin).with_context(|| format!("cannot rename {} to {}", tmp.display(), bin.display()))?;
        Ok(bin)
    });
    remove_worktree(repo, &src);
    copied
}

fn cargo_build(src: &Path, target: &Path, features: &[String]) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(src).args(["build", "--release", "--workspace", "--bins", "--target-dir"]).arg(target);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr()));
    eprintln!("loadgen check: building the base in {} (its own target directory {})", src.display(), target.display());
    // The target directory is shared by every base build: a binary left by
    // another commit's build must not pass for this one's.
    for b in ["loadgen", "servers"] {
        let _ = std::fs::remove_file(target.join("release").join(b));
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the base's release build failed ({status})");
    }
    Ok(target.join("release"))
}

fn remove_worktree(repo: &Path, src: &Path) {
    if src.exists() {
        let _ = git(repo, &["worktree", "remove", "--force", &src.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(src);
    }
    let _ = git(repo, &["worktree", "prune"]);
}

pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway repository with two commits.
    fn repo() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let run = |args: &[&str]| git(p, args).unwrap();
        run(&["init", "-q"]);
        run(&["config", "user.email", "t@example.invalid"]);
        run(&["config", "user.name", "t"]);
        std::fs::write(p.join("a"), "1").unwrap();
        run(&["add", "a"]);
        run(&["commit", "-q", "-m", "one"]);
        let first = run(&["rev-parse", "HEAD"]);
        std::fs::write(p.join("a"), "2").unwrap();
        run(&["commit", "-q", "-am", "two"]);
        let second = run(&["rev-parse", "HEAD"]);
        (dir, first, second)
    }

    #[test]
    fn resolves_revisions_and_refuses_others() {
        let (dir, first, second) = repo();
        assert_eq!(resolve(dir.path(), "HEAD~1").unwrap(), first);
        assert_eq!(resolve(dir.path(), "HEAD").unwrap(), second);
        assert_eq!(resolve(dir.path(), &first[..8]).unwrap(), first);
        let e = resolve(dir.path(), "HEAD~5").unwrap_err().to_string();
        assert!(e.contains("--base HEAD~5"), "{e}");
        assert_eq!(
            toplevel(&dir.path().join(".git/..")).unwrap().canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
        assert_eq!(describe_head(dir.path()), second[..12]);
        std::fs::write(dir.path().join("a"), "3").unwrap();
        assert!(describe_head(dir.path()).ends_with("+ uncommitted changes"));
    }

    #[test]
    fn kept_binaries_are_reused_and_a_failed_build_leaves_no_worktree() {
        let (dir, first, _) = repo();
        let cache = dir.path().join("cache");
        // No Cargo.toml at that commit: the build fails, the worktree goes.
        let e = build(dir.path(), &first, &cache, &[]).unwrap_err().to_string();
        assert!(e.contains("build failed"), "{e}");
        assert!(!cache.join(&first).join("src").exists());
        assert!(git(dir.path(), &["worktree", "list"]).unwrap().lines().count() == 1);
        // Binaries already kept for a commit are used as they are.
        let bin = cache.join(&first).join("bin-servers-libevent");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("loadgen"), "").unwrap();
        std::fs::write(bin.join("servers"), "").unwrap();
        assert_eq!(build(dir.path(), &first, &cache, &["servers/libevent".into()]).unwrap(), bin);
    }
}
