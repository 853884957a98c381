//! What the sweep settles before its first run: the servers binary and the
//! models to run of those it offers, and a results directory of its own.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::models::{self, Availability, Offered};

/// `--servers-bin`, or `servers` next to this executable.
pub(super) fn find_servers(given: Option<&Path>, exe: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        // The reason, not "no such file" for all: a binary under a
        // directory this user may not enter exists, but cannot be run.
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(p.to_path_buf()),
            Ok(_) => bail!("--servers-bin {}: not a file", p.display()),
            Err(e) => bail!("--servers-bin {}: {e}", p.display()),
        };
    }
    let next = exe.with_file_name("servers");
    if next.is_file() {
        return Ok(next);
    }
    bail!(
        "no servers binary next to {} (build it with `cargo build --release -p servers`, or pass --servers-bin PATH)",
        exe.display()
    )
}

/// The models to run, and notes on those left out: `--models` (each a
/// model this project knows or the binary offers), or every model the
/// binary offers, in reading order ([`crate::models`]). A model the binary
/// does not offer, or offers but cannot run here (`unavailable: REASON`),
/// is left out and said so. An alias (`mio-single@twin`, see
/// [`crate::models`]) runs its base, and is left out where its base is.
pub(super) fn choose_models(list: Option<&str>, offered: &[Offered]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let wanted = match list {
        Some(l) => models_asked(l, offered)?,
        None => {
            let names: Vec<String> =
                models::names().map(String::from).chain(offered.iter().map(|o| o.name.clone())).collect();
            let mut all = models::in_order(&names);
            all.dedup();
            all
        }
    };
    let mut skipped = Vec::new();
    let mut chosen = Vec::new();
    for m in wanted {
        match offered.iter().find(|o| o.name == models::base(&m)).map(|o| &o.availability) {
            Some(Availability::Ready) => chosen.push(m),
            Some(Availability::Unavailable(why)) => skipped.push(format!("{m}: unavailable: {why}")),
            None if m == "libevent" => skipped.push("libevent: not built (libevent-dev missing)".to_string()),
            None => skipped.push(format!("{m}: not in this servers binary")),
        }
    }
    if chosen.is_empty() {
        bail!("--models: none of the chosen models can run with this servers binary ({})", skipped.join("; "));
    }
    Ok((chosen, skipped))
}

/// `--models LIST`: known or offered names, or aliases of them
/// (`MODEL@NAME`), each once, in the order given.
fn models_asked(list: &str, offered: &[Offered]) -> anyhow::Result<Vec<String>> {
    let mut v: Vec<String> = Vec::new();
    for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        models::check_alias(m).map_err(|e| anyhow::anyhow!("--models {e}"))?;
        let base = models::base(m);
        if models::known(base).is_none() && !offered.iter().any(|o| o.name == base) {
            let mut all: Vec<&str> = models::names().collect();
            all.extend(offered.iter().map(|o| o.name.as_str()).filter(|o| models::known(o).is_none()));
            bail!("--models {m}: no such model (choose from {})", all.join(", "));
        }
        if !v.iter().any(|x| x == m) {
            v.push(m.to_string());
        }
    }
    Ok(v)
}

/// `--out DIR` (new or empty), or `results/<run-id>[-N]`, created.
pub(super) fn results_dir(out: Option<&Path>, run_id: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = out {
        if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            bail!("--out {}: not empty; a sweep never writes over another run's results", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}: cannot create it", dir.display()))?;
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all("results").context("cannot create results/")?;
    for n in 1..1000 {
        let name = if n == 1 { run_id.to_string() } else { format!("{run_id}-{n}") };
        let dir = Path::new("results").join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!("results/{run_id}: a thousand runs with this id already exist")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(names: &[&str]) -> Vec<Offered> {
        names.iter().map(|n| Offered { name: n.to_string(), availability: Availability::Ready }).collect()
    }

    /// `--servers-bin` is refused with the reason it cannot be used.
    #[test]
    fn a_servers_bin_that_cannot_be_used_is_refused_with_the_reason() {
        let dir = crate::testdata::scratch("servers-bin");
        let exe = dir.join("loadgen");
        let refused = |given: &Path| find_servers(Some(given), &exe).unwrap_err().to_string();
        assert!(refused(&dir.join("absent")).ends_with("absent: No such file or directory (os error 2)"));
        assert!(refused(&dir).ends_with(": not a file"), "{}", refused(&dir));
        std::fs::write(dir.join("servers"), "").unwrap();
        assert_eq!(find_servers(Some(&dir.join("servers")), &exe).unwrap(), dir.join("servers"));
        assert_eq!(find_servers(None, &exe).unwrap(), dir.join("servers"), "next to the executable");
    }

    #[test]
    fn libevent_missing_is_skipped_and_said_so() {
        let offered = ready(&["thread-per-conn", "pool", "mio-single", "mio-multi", "uring", "tokio"]);
        let (chosen, skipped) = choose_models(None, &offered).unwrap();
        assert_eq!(chosen, ["thread-per-conn", "pool", "mio-single", "mio-multi", "uring", "tokio"]);
        assert_eq!(skipped, vec!["libevent: not built (libevent-dev missing)"]);
        let (chosen, _) = choose_models(Some("tokio, pool,tokio"), &offered).unwrap();
        assert_eq!(chosen, ["tokio", "pool"]);
        let e = choose_models(Some("nginx"), &offered).unwrap_err().to_string();
        assert!(e.contains("--models nginx: no such model"), "{e}");
        assert!(choose_models(Some("libevent"), &offered).is_err());
    }

    /// An alias runs where its base runs, under its own name.
    #[test]
    fn an_alias_is_chosen_with_its_base() {
        let offered = ready(&["pool", "mio-single"]);
        let (chosen, skipped) = choose_models(Some("mio-single,mio-single@twin,tokio@twin"), &offered).unwrap();
        assert_eq!(chosen, ["mio-single", "mio-single@twin"]);
        assert_eq!(skipped, ["tokio@twin: not in this servers binary"]);
        let e = choose_models(Some("mio-single@a/b"), &offered).unwrap_err().to_string();
        assert!(e.starts_with("--models mio-single@a/b: an alias is MODEL@NAME"), "{e}");
        let e = choose_models(Some("nginx@twin"), &offered).unwrap_err().to_string();
        assert!(e.contains("--models nginx@twin: no such model"), "{e}");
    }

    /// A model the binary offers but cannot run here is left out, with the
    /// binary's reason; one this project does not know runs after the others.
    #[test]
    fn unavailable_models_are_skipped_with_their_reason_and_unknown_ones_run_last() {
        let mut offered = ready(&["nginx", "tokio", "pool"]);
        offered.push(Offered { name: "uring".into(), availability: Availability::Unavailable("no io_uring".into()) });
        let (chosen, skipped) = choose_models(None, &offered).unwrap();
        assert_eq!(chosen, ["pool", "tokio", "nginx"]);
        assert!(skipped.contains(&"uring: unavailable: no io_uring".to_string()), "{skipped:?}");
        assert!(skipped.contains(&"mio-single: not in this servers binary".to_string()), "{skipped:?}");
        let (chosen, skipped) = choose_models(Some("uring,nginx"), &offered).unwrap();
        assert_eq!((chosen, skipped), (vec!["nginx".to_string()], vec!["uring: unavailable: no io_uring".to_string()]));
        let e = choose_models(Some("uring"), &offered).unwrap_err().to_string();
        assert!(e.contains("none of the chosen models can run") && e.contains("no io_uring"), "{e}");
    }

    #[test]
    fn results_dirs_never_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("full")).unwrap();
        std::fs::write(base.join("full/summary.json"), "{}").unwrap();
        let e = results_dir(Some(&base.join("full")), "x").unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        assert_eq!(results_dir(Some(&base.join("new")), "x").unwrap(), base.join("new"));
    }
}
