//! `loadgen check --base REV`: build the base's binaries, run base and head
//! alternately, judge the pairs ([`ab`]) and write the outputs.
//!
//! Each side is a whole revision: its own `loadgen sweep` drives its own
//! `servers`, so a costlier load generator shows as well as a costlier
//! server. Both run on the same CPUs (the sweep's default pinning), with the
//! same scenarios and levels, in the order A B, B A, A B, ... so that a
//! drift of the machine during the check favours neither side.
//!
//! Flags a revision's servers know are its own sweep's business: the head's
//! `loadgen sweep` never starts the base's `servers`, nor the reverse. So a
//! base from before `--count-syscalls` (or `--admin-realtime`) is not sent
//! a flag it would refuse: its own sweep starts its servers without them,
//! and those count system calls by default, as the head's sweep asks its
//! own to. Both sides count, and pay the traced-path cost alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use super::ab::{self, AbEvaluation};
use super::{git, output, CheckArgs};
use crate::models;
use crate::records::sweep::Summary;

/// Pairs of sweeps by default: the fewest for which the sign test gives an
/// interval (93.75% two-sided).
pub const PAIRS: u32 = 5;
/// What every side's sweep runs: full load, where counted figures and CPU
/// per request are steady enough to gate on.
pub const SCENARIOS: &str = "echo-saturate";
pub const LEVELS: &str = "1000";
pub const WARMUP: &str = "300ms";
pub const WINDOW: &str = "1s";

/// The servers' debug knobs that make a head costlier on purpose.
pub const DEBUG_KNOBS: [&str; 2] = ["IOMODELS_DEBUG_EXTRA_SYSCALLS", "IOMODELS_DEBUG_EXTRA_WORK"];

/// Which side of the comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Base,
    Head,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Base => "base",
            Which::Head => "head",
        }
    }
}

/// One side of the comparison.
struct Side {
    which: Which,
    revision: String,
    loadgen: PathBuf,
    servers: PathBuf,
    env: Vec<(String, String)>,
    /// Its `loadgen sweep` takes `--repeat` (see [`takes_repeat`]).
    repeats: bool,
}

/// Whether a `loadgen` binary's sweep has `--repeat`: a base revision from
/// before it does not, and runs one pass without being asked.
fn takes_repeat(loadgen: &Path) -> bool {
    Command::new(loadgen)
        .args(["sweep", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--repeat"))
}

/// Run the check. `Ok(None)`: the base could not be built or run (the
/// reason is printed), so A/B cannot judge; `Err`: the head or the
/// arguments are at fault.
pub fn check(args: &CheckArgs) -> anyhow::Result<Option<AbEvaluation>> {
    let rev = args.base.as_str();
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let repo = git::toplevel(&here).context("--base needs a git checkout")?;
    let commit = git::resolve(&repo, rev)?;
    let head = head_side(args, &repo)?;
    let Some(base) = base_side(args, &repo, rev, &commit) else { return Ok(None) };
    let models = match common_models(&base, &head) {
        Ok(m) => m,
        Err(Failure(Which::Base, e)) => {
            eprintln!("loadgen check: cannot list the base's models: {e:#}");
            return Ok(None);
        }
        Err(Failure(Which::Head, e)) => return Err(e),
    };
    let out = super::fresh_out_dir(args.out.as_deref(), "iomodels-ab")?;
    let started = Instant::now();
    let pairs = match run_pairs(args.pairs as usize, &models, &base, &head, &out) {
        Ok(p) => p,
        Err(Failure(Which::Base, e)) => {
            eprintln!("loadgen check: the base's sweep failed: {e:#}");
            return Ok(None);
        }
        Err(Failure(Which::Head, e)) => return Err(e),
    };
    let eval = ab::evaluate(&pairs);
    write_outputs(args, &eval, (&base, &head), pairs.len(), started, &out)?;
    Ok(Some(eval))
}

/// The base's side: `--base-bin`, or the base built in a worktree. `None`
/// (having said why) when it cannot be built.
fn base_side(args: &CheckArgs, repo: &Path, rev: &str, commit: &str) -> Option<Side> {
    let base_bin = match &args.base_bin {
        Some(dir) => dir.clone(),
        None => {
            let features: Vec<String> =
                args.features.iter().flat_map(|f| f.split(',')).filter(|f| !f.is_empty()).map(String::from).collect();
            let cache = args.cache.clone().unwrap_or_else(|| repo.join("target/ab"));
            match git::build(repo, commit, &cache, &features) {
                Ok(bin) => bin,
                Err(e) => {
                    eprintln!("loadgen check: cannot build the base {rev} ({}): {e:#}", git::short(commit));
                    return None;
                }
            }
        }
    };
    Some(Side {
        which: Which::Base,
        revision: format!("{rev} = {}", git::short(commit)),
        repeats: takes_repeat(&base_bin.join("loadgen")),
        loadgen: base_bin.join("loadgen"),
        servers: base_bin.join("servers"),
        env: vec![],
    })
}

/// The markdown table (printed, `--summary`, the CI summary), the bench
/// JSON, `check.md` and `ab.json` in the out directory, and one line per
/// regression.
fn write_outputs(
    args: &CheckArgs,
    eval: &AbEvaluation,
    (base, head): (&Side, &Side),
    pairs: usize,
    started: Instant,
    out: &Path,
) -> anyhow::Result<()> {
    let env: Vec<String> = head.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let with = if env.is_empty() { String::new() } else { format!(" (with {})", env.join(" ")) };
    let context = format!(
        "Head `{}`{with} against base `{}`: {pairs} pairs of sweeps ({SCENARIOS} at {LEVELS} connections, {WINDOW} \
         windows), interleaved on the same CPUs, in {:.0} s; sweeps in `{}`.",
        head.revision,
        base.revision,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let table = output::markdown(eval, &context);
    super::publish(&table, args.summary.as_deref())?;
    if let Some(path) = &args.bench_json {
        std::fs::write(path, output::bench_json(eval))
            .with_context(|| format!("--bench-json {}: cannot write it", path.display()))?;
    }
    // The table and every figure's per-pair values: enough to judge again.
    let record = serde_json::json!({
        "head": head.revision, "head_env": head.env, "base": base.revision,
        "scenarios": SCENARIOS, "levels": LEVELS, "warmup": WARMUP, "window": WINDOW,
        "seconds": started.elapsed().as_secs_f64(), "passed": eval.passed(), "evaluation": eval,
    });
    std::fs::write(out.join("check.md"), &table).with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(out.join("ab.json"), serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    for line in output::regression_lines(eval) {
        eprintln!("{line}");
    }
    Ok(())
}

/// This checkout's binaries: this executable and `servers` beside it.
fn head_side(args: &CheckArgs, repo: &Path) -> anyhow::Result<Side> {
    let loadgen = std::env::current_exe().context("cannot find this executable")?;
    let servers = args.servers_bin.clone().unwrap_or_else(|| loadgen.with_file_name("servers"));
    if !servers.is_file() {
        let flag = if args.servers_bin.is_some() { "--servers-bin " } else { "the head's servers binary, " };
        bail!("{flag}{}: no such file (build the workspace's binaries first)", servers.display());
    }
    let mut env: Vec<(String, String)> =
        DEBUG_KNOBS.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
    env.extend(args.head_env.iter().cloned());
    // A misspelt model would make the knob do nothing, and the gate look blind.
    for (k, v) in env.iter().filter(|(k, _)| k == "IOMODELS_DEBUG_EXTRA_WORK") {
        let model = v.split(':').next().unwrap_or_default();
        if models::known(model).is_none() {
            bail!("{k}={v}: no model `{model}` (choose from {})", models::names().collect::<Vec<_>>().join(", "));
        }
    }
    if let Some(n) = args.slow_server {
        env.push(("IOMODELS_DEBUG_EXTRA_SYSCALLS".into(), n.to_string()));
    }
    Ok(Side { which: Which::Head, revision: git::describe_head(repo), loadgen, servers, env, repeats: true })
}

/// The models both servers binaries can run here, in reading order: a
/// model one side lacks (not built, new in the head, or unavailable on this
/// machine) is left out of both, and said so.
fn common_models(base: &Side, head: &Side) -> Result<String, Failure> {
    let h = models::ready(&head.servers).map_err(|e| Failure(Which::Head, e))?;
    let b = models::ready(&base.servers).map_err(|e| Failure(Which::Base, e))?;
    let (both, one): (Vec<String>, Vec<String>) = models::in_order(&h).into_iter().partition(|m| b.contains(m));
    if !one.is_empty() {
        eprintln!("loadgen check: not compared, the base has no such model or cannot run it: {}", one.join(", "));
    }
    if both.is_empty() {
        return Err(Failure(Which::Base, anyhow::anyhow!("the base and the head have no model in common")));
    }
    Ok(both.join(","))
}

/// What failed, and on which side: the base's failures mean the check could
/// not run, the head's fail it.
struct Failure(Which, anyhow::Error);

/// `n` pairs, the base first in even pairs and the head first in odd ones.
fn run_pairs(n: usize, models: &str, base: &Side, head: &Side, out: &Path) -> Result<Vec<(Summary, Summary)>, Failure> {
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let order = if i % 2 == 0 { [base, head] } else { [head, base] };
        let (mut b, mut h) = (None, None);
        for side in order {
            let name = side.which.name();
            eprintln!("loadgen check: pair {} of {n}: {name} ({})", i + 1, side.revision);
            let dir = out.join(format!("pair-{}", i + 1)).join(name);
            let summary =
                sweep(side, models, &dir).and_then(|()| Summary::load(&dir)).map_err(|e| Failure(side.which, e))?;
            match side.which {
                Which::Base => b = Some(summary),
                Which::Head => h = Some(summary),
            }
        }
        pairs.push((b.expect("the base ran"), h.expect("the head ran")));
    }
    Ok(pairs)
}

/// One side's sweep, by its own load generator, progress on our stderr.
fn sweep(side: &Side, models: &str, dir: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new(&side.loadgen);
    cmd.args(["sweep", "--no-charts", "--no-floor", "--models", models]);
    cmd.args(["--scenario", SCENARIOS, "--levels", LEVELS, "--warmup", WARMUP, "--duration", WINDOW]);
    // One pass per side: the pairs are the repeats. A base from before
    // `--repeat` ran one pass anyway, and would refuse the flag.
    if side.repeats {
        cmd.args(["--repeat", "1"]);
    }
    cmd.arg("--out").arg(dir).arg("--servers-bin").arg(&side.servers);
    // The debug knobs in our own environment belong to the head: the base
    // never sees them, so `IOMODELS_DEBUG_... bash .ci/run` fails as a
    // costlier commit would.
    if side.which == Which::Base {
        for knob in DEBUG_KNOBS {
            cmd.env_remove(knob);
        }
    }
    cmd.envs(side.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null()).stdout(Stdio::from(std::io::stderr()));
    let status = cmd.status().with_context(|| format!("cannot start {}", side.loadgen.display()))?;
    if !status.success() {
        bail!("{}'s sweep into {} failed ({status})", side.which.name(), dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_each_loadgen_whether_its_sweep_repeats() {
        let dir = crate::testdata::scratch("ab-repeat");
        // Written by a child, so that no descriptor of ours open for writing
        // can leak into a concurrent fork and make the exec fail (ETXTBSY).
        let script = |name: &str, help: &str| {
            let path = dir.join(name);
            let text = format!("#!/bin/sh\n[ \"$1 $2\" = 'sweep --help' ] && echo '{help}'\n");
            let made = Command::new("sh")
                .args(["-c", "printf '%s' \"$1\" > \"$2\" && chmod +x \"$2\"", "sh", &text])
                .arg(&path)
                .status()
                .unwrap();
            assert!(made.success());
            path
        };
        assert!(takes_repeat(&script("new", "      --repeat <N>  Passes")));
        assert!(!takes_repeat(&script("old", "      --quick  Fewer levels")));
        assert!(!takes_repeat(&dir.join("missing")));
    }
}
