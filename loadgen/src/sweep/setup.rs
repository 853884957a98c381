//! What the sweep settles before its first run: the servers binary and the
//! models it was built with, and a results directory of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::MODELS;

/// `--servers-bin`, or `servers` next to this executable.
pub(super) fn find_servers(given: Option<&Path>, exe: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--servers-bin {}: no such file", p.display());
        }
        return Ok(p.to_path_buf());
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

/// The subcommands `servers --help` lists (the models it was built with).
pub fn built_models(bin: &Path) -> anyhow::Result<Vec<String>> {
    let out =
        Command::new(bin).arg("--help").output().with_context(|| format!("cannot run {} --help", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let models: Vec<String> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(String::from)
        .collect();
    if models.is_empty() {
        bail!("{} --help lists no models: is it the iomodels servers binary?", bin.display());
    }
    Ok(models)
}

/// The models to run, and notes on those left out.
pub(super) fn choose_models(list: Option<&str>, built: &[String]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let known = |m: &str| MODELS.contains(&m) || built.iter().any(|b| b == m);
    let wanted: Vec<String> = match list {
        Some(l) => {
            let mut v: Vec<String> = Vec::new();
            for m in l.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                if !known(m) {
                    bail!("--models {m}: no such model (choose from {})", MODELS.join(", "));
                }
                if !v.iter().any(|x| x == m) {
                    v.push(m.to_string());
                }
            }
            v
        }
        None => MODELS
            .iter()
            .map(|m| m.to_string())
            .chain(built.iter().filter(|b| !MODELS.contains(&b.as_str())).cloned())
            .collect(),
    };
    let mut skipped = Vec::new();
    let mut models = Vec::new();
    for m in wanted {
        if built.contains(&m) {
            models.push(m);
        } else if m == "libevent" {
            skipped.push("libevent: not built (libevent-dev missing)".to_string());
        } else {
            skipped.push(format!("{m}: not in this servers binary"));
        }
    }
    if models.is_empty() {
        bail!("--models: none of the chosen models is in the servers binary ({})", skipped.join("; "));
    }
    Ok((models, skipped))
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

    #[test]
    fn libevent_missing_is_skipped_and_said_so() {
        let built: Vec<String> = MODELS[..5].iter().map(|s| s.to_string()).collect();
        let (models, skipped) = choose_models(None, &built).unwrap();
        assert_eq!(models, built);
        assert_eq!(skipped, vec!["libevent: not built (libevent-dev missing)"]);
        let (models, _) = choose_models(Some("tokio, pool,tokio"), &built).unwrap();
        assert_eq!(models, ["tokio", "pool"]);
        let e = choose_models(Some("nginx"), &built).unwrap_err().to_string();
        assert!(e.contains("--models nginx: no such model"), "{e}");
        assert!(choose_models(Some("libevent"), &built).is_err());
    }

    #[test]
    fn results_dirs_never_collide() {
        let base = std::env::temp_dir().join(format!("loadgen-out-{}", std::process::id()));
        std::fs::create_dir_all(base.join("full")).unwrap();
        std::fs::write(base.join("full/summary.json"), "{}").unwrap();
        let e = results_dir(Some(&base.join("full")), "x").unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        assert_eq!(results_dir(Some(&base.join("new")), "x").unwrap(), base.join("new"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
