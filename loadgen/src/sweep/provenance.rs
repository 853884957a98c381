//! Whether a sweep's figures can name the code that made them: the
//! checkout's state at the end beside its state at the start (HEAD moved,
//! or `git status --porcelain` changed, during the sweep), and the
//! conditions of a reference sweep (`loadgen sweep --reference`): a clean
//! tree, and both binaries built from exactly that HEAD.
//!
//! A binary's revision is the one its build script embedded (`--version`
//! prints it: `NAME VERSION (REVISION)`, see build/revision.rs), not the
//! checkout's: a binary built before the last commit, or from a dirty tree,
//! says so even if the tree is clean now.

use crate::env::GitState;

/// The revision a binary printed in `--version` (`servers 0.1.0 (REV)`):
/// what the parentheses after the version hold.
pub fn revision_in_version(version: &str) -> Option<&str> {
    version.trim().split_once(" (")?.1.strip_suffix(')')
}

/// HEAD moved, or the porcelain status is not what it was, between `start`
/// and `end` (the sweep's own output under `results/` is not part of it).
/// A state git could not give at either end counts as a change: nothing
/// says it did not.
pub fn changed_during_run(start: &GitState, end: &GitState) -> bool {
    let unknown = |g: &GitState| g.revision.is_none() || g.dirty.is_none();
    unknown(start) || unknown(end) || start.revision != end.revision || start.changes != end.changes
}

/// Why a reference sweep must not start here, if it must not: the tree is
/// not a checkout or has changes (named), or a binary was not built from
/// HEAD exactly (`binaries`: each binary's role and the revision it
/// embedded, `None` when it did not say).
pub fn reference_refusal(git: &GitState, binaries: &[(&str, Option<&str>)]) -> Option<String> {
    let Some(head) = git.revision.as_deref() else {
        let why = git.note.as_deref().unwrap_or("no revision");
        return Some(format!("--reference: needs a git checkout to name the code ({why})"));
    };
    match git.dirty {
        Some(false) => {}
        Some(true) => {
            return Some(format!(
                "--reference: the tree has changes not committed (outside results/): {}; commit or stash them, \
                 then rebuild",
                git.changes.join(", ")
            ))
        }
        None => {
            let why = git.note.as_deref().unwrap_or("git status failed");
            return Some(format!("--reference: cannot tell whether the tree is clean ({why})"));
        }
    }
    let from_head = |r: &str| !r.is_empty() && !r.ends_with("-dirty") && head.starts_with(r);
    let stale: Vec<String> = binaries
        .iter()
        .filter(|(_, rev)| !rev.is_some_and(from_head))
        .map(|(role, rev)| format!("{role} was built from {}", rev.unwrap_or("an unknown revision")))
        .collect();
    (!stale.is_empty()).then(|| {
        format!(
            "--reference: {}, not from HEAD {} as it is: rebuild (cargo build --release --workspace --bins)",
            stale.join("; "),
            &head[..head.len().min(12)]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";

    fn clean() -> GitState {
        GitState { revision: Some(HEAD.into()), dirty: Some(false), ..GitState::default() }
    }

    #[test]
    fn the_revision_is_read_from_version() {
        assert_eq!(revision_in_version("servers 0.1.0 (0123456789ab-dirty)"), Some("0123456789ab-dirty"));
        assert_eq!(revision_in_version("loadgen 0.1.0 (unknown (no git))"), Some("unknown (no git)"));
        assert_eq!(revision_in_version("servers 0.1.0"), None);
    }

    #[test]
    fn a_reference_sweep_needs_a_clean_tree_and_binaries_of_head() {
        let built = [("loadgen", Some("0123456789ab")), ("servers", Some("0123456789ab"))];
        assert_eq!(reference_refusal(&clean(), &built), None);

        let dirty = GitState { dirty: Some(true), changes: vec![" M servers/src/stats.rs".into()], ..clean() };
        let why = reference_refusal(&dirty, &built).unwrap();
        assert!(why.contains("servers/src/stats.rs"), "names the files: {why}");

        let old = [("loadgen", Some("0123456789ab")), ("servers", Some("fedcba987654"))];
        let why = reference_refusal(&clean(), &old).unwrap();
        assert!(why.contains("servers was built from fedcba987654") && !why.contains("loadgen was"), "{why}");
        let was_dirty = [("loadgen", Some("0123456789ab-dirty")), ("servers", None)];
        let why = reference_refusal(&clean(), &was_dirty).unwrap();
        assert!(why.contains("loadgen was built from 0123456789ab-dirty"), "{why}");
        assert!(why.contains("servers was built from an unknown revision"), "{why}");

        let no_git = GitState { note: Some("no git checkout".into()), ..GitState::default() };
        assert!(reference_refusal(&no_git, &built).unwrap().contains("no git checkout"));
    }

    /// A real checkout made dirty: the refusal names the untracked file.
    #[test]
    fn a_dirty_checkout_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let git = |args: &[&str]| crate::env::git(dir, args).unwrap_or_else(|e| panic!("git {args:?}: {e}"));
        git(&["init", "-q"]);
        std::fs::write(dir.join("a"), "a").unwrap();
        git(&["add", "a"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"]);
        let start = crate::env::git_state_in(dir);
        let head = start.revision.clone().unwrap();
        let built = [("loadgen", Some(&head[..12])), ("servers", Some(&head[..12]))];
        assert_eq!(reference_refusal(&start, &built), None, "{start:?}");

        std::fs::write(dir.join("stray.rs"), "").unwrap();
        let end = crate::env::git_state_in(dir);
        let why = reference_refusal(&end, &built).unwrap();
        assert!(why.contains("stray.rs"), "{why}");
        assert!(changed_during_run(&start, &end), "an untracked file appeared");
        assert!(!changed_during_run(&start, &start));
        std::fs::remove_file(dir.join("stray.rs")).unwrap();
        std::fs::write(dir.join("b"), "b").unwrap();
        git(&["add", "b"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "b"]);
        let moved = crate::env::git_state_in(dir);
        assert!(changed_during_run(&start, &moved), "HEAD moved: {start:?} {moved:?}");
    }
}
