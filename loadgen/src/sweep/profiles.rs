//! `loadgen sweep --profile`: after the measured passes, one profiled run of
//! every model per chosen cell, apart from the reported runs (profiling
//! costs CPU, so these runs' figures are never mixed into the summaries).
//!
//! Layout under the results directory:
//! - `profiles/<scenario>/<model>-c<level>/{server,loadgen}.{svg,folded}`:
//!   the flame graphs and folded stacks (`loadgen run --profile`);
//! - `profiles/runs/<scenario>/<model>-c<level>-r1.*`: the runs' own files;
//! - `profiles/breakdown.csv`: one row per profiled run, side and category;
//! - `profiles/breakdown-{server,loadgen}-<scenario>.{svg,png}`: "where a
//!   request's CPU goes", stacked bars per model at each level.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};

use super::env_json::SweepEnv;
use super::one::{run_one, Slot};
use super::progress::SweepProgress;
use super::scenario::Scenario;
use super::SweepPlan;
use crate::output::charts::breakdown::{self, Bar, LevelBars};
use crate::profile::categories::Category;
use crate::profile::{ProfileRecord, Side, SideProfile};
use crate::records::sweep::{Record, RunStatus};

/// The scenario profiled when `--profile` names no cell.
const DEFAULT_SCENARIO: &str = "echo-saturate";

/// The cells `--profile SPEC` asks for: (scenario, level), every model at
/// each. An empty SPEC: echo-saturate at each of its levels in this sweep.
pub(super) fn cells(plan: &SweepPlan, spec: &str) -> anyhow::Result<Vec<(Scenario, u64)>> {
    let find = |name: &str| {
        plan.scenarios.iter().find(|s| s.name == name).with_context(|| {
            format!("--profile {spec}: this sweep runs no scenario {name} (its scenarios: {})", scenario_names(plan))
        })
    };
    let cells: Vec<(Scenario, u64)> = if spec.trim().is_empty() {
        let s = find(DEFAULT_SCENARIO)?;
        plan.grid(s).levels.iter().map(|&l| (*s, l)).collect()
    } else {
        let mut cells = Vec::new();
        for item in spec.split(',') {
            let Some((name, level)) = item.trim().rsplit_once(':') else {
                bail!("--profile {spec}: {item:?} is not SCENARIO:LEVEL");
            };
            let level: u64 = level
                .parse()
                .ok()
                .filter(|&l| l > 0)
                .with_context(|| format!("--profile {spec}: {level:?} is not a connection count"))?;
            cells.push((*find(name)?, level));
        }
        cells
    };
    if let Some((s, _)) = cells.iter().find(|(s, _)| s.ladder.is_some()) {
        bail!(
            "--profile: {} climbs a ladder of rates; profile one rate with `loadgen run --rate R --profile DIR`",
            s.name
        );
    }
    Ok(cells)
}

fn scenario_names(plan: &SweepPlan) -> String {
    plan.scenarios.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// One profiled run's record.
struct Profiled {
    scenario: &'static str,
    model: String,
    level: u64,
    profile: Option<ProfileRecord>,
}

/// Run every model at every cell of the plan's `profiled`, counting each
/// run in `envj` and `progress` as the passes' runs are, then write the
/// CSV and charts. Returns the runs' records (for the sweep's last line:
/// the summaries never hold them).
pub(super) fn run(
    plan: &SweepPlan,
    dir: &Path,
    envj: &mut SweepEnv,
    interrupted: &AtomicBool,
    progress: &mut SweepProgress,
) -> anyhow::Result<Vec<Record>> {
    let root = dir.join("profiles");
    let (mut done, mut records) = (Vec::new(), Vec::new());
    for (scenario, level) in &plan.profiled {
        let level = *level;
        std::fs::create_dir_all(root.join("runs").join(scenario.name))?;
        for model in &plan.models {
            if interrupted.load(Ordering::SeqCst) {
                break;
            }
            let cell = root.join(scenario.name).join(format!("{model}-c{level}"));
            let slot = Slot { scenario, model, level, rate: None, repeat: 1, profile: Some(&cell) };
            let Some(record) = run_one(plan, &root, &slot, interrupted, progress) else { break };
            let profile = record.result.as_ref().and_then(|r| r.profile.clone());
            envj.runs_done += 1;
            envj.runs_failed += (record.status == RunStatus::Failed) as usize;
            let line = format!(
                "[{}/{}] profiled {} · {model} · {level} conns: {} ({:.1} s)",
                envj.runs_done + envj.runs_skipped,
                envj.runs_planned,
                scenario.name,
                match (&record.status, &profile) {
                    (RunStatus::Failed, _) => format!("failed: {}", record.failure.as_deref().unwrap_or("?")),
                    (_, None) => "no profile (see its notes)".to_string(),
                    (_, Some(_)) => format!("{}", cell.display()),
                },
                record.elapsed_s
            );
            progress.finished(&line, plan.profiled_run_seconds(scenario, level), record.elapsed_s);
            done.push(Profiled { scenario: scenario.name, model: model.clone(), level, profile });
            records.push(record);
        }
    }
    std::fs::write(root.join("breakdown.csv"), csv(&done)).context("cannot write profiles/breakdown.csv")?;
    draw(&root, &done)?;
    Ok(records)
}

fn side_of(p: &Profiled, side: Side) -> Option<&SideProfile> {
    let r = p.profile.as_ref()?;
    match side {
        Side::Server => r.server.as_ref(),
        Side::Loadgen => r.loadgen.as_ref(),
    }
}

/// `breakdown.csv`: per profiled run, side and category, µs per request
/// and share of the side's CPU, with the profile's samples and named share.
fn csv(done: &[Profiled]) -> String {
    let mut out = String::from("scenario,model,level,side,category,us_per_req,share,samples,named_share\n");
    for p in done {
        for side in [Side::Server, Side::Loadgen] {
            let Some(s) = side_of(p, side) else { continue };
            for c in Category::ALL {
                let us = s.categories.get(c.name()).copied().unwrap_or(0.0);
                let share = if s.cpu_us_per_req > 0.0 { us / s.cpu_us_per_req } else { 0.0 };
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{us:.3},{share:.4},{},{:.4}",
                    p.scenario,
                    p.model,
                    p.level,
                    side.name(),
                    c.name(),
                    s.samples,
                    s.named_share
                );
            }
        }
    }
    out
}

/// One chart per side and scenario: a panel per level, a bar per model.
fn draw(root: &Path, done: &[Profiled]) -> anyhow::Result<()> {
    let mut scenarios: Vec<&str> = done.iter().map(|p| p.scenario).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let mut levels: Vec<u64> = done.iter().filter(|p| p.scenario == scenario).map(|p| p.level).collect();
        levels.sort_unstable();
        levels.dedup();
        for side in [Side::Server, Side::Loadgen] {
            let panels: Vec<LevelBars> = levels
                .iter()
                .map(|&level| LevelBars {
                    level,
                    bars: done
                        .iter()
                        .filter(|p| p.scenario == scenario && p.level == level)
                        .filter_map(|p| {
                            let s = side_of(p, side)?;
                            let by_category =
                                Category::ALL.iter().map(|c| (*c, s.categories.get(c.name()).copied().unwrap_or(0.0)));
                            Some(Bar { model: p.model.clone(), by_category: by_category.collect() })
                        })
                        .collect(),
                })
                .collect();
            if panels.iter().all(|l| l.bars.is_empty()) {
                continue;
            }
            let who = match side {
                Side::Server => "the server",
                Side::Loadgen => "the load generator",
            };
            let title = format!("{scenario}: where a request's CPU goes, {who} (profiled runs)");
            breakdown::render(&root.join(format!("breakdown-{}-{scenario}", side.name())), &title, &panels)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiled(model: &str, level: u64, user: f64, tcp: f64) -> Profiled {
        let side = SideProfile {
            samples: 100,
            cpu_us_per_req: user + tcp,
            categories: [("user".to_string(), user), ("tcp_ip".to_string(), tcp)].into_iter().collect(),
            named_share: 1.0,
            ..Default::default()
        };
        Profiled {
            scenario: "echo-saturate",
            model: model.into(),
            level,
            profile: Some(ProfileRecord { hz: 999, window_s: 1.0, server: Some(side), loadgen: None }),
        }
    }

    #[test]
    fn the_csv_has_a_row_per_run_side_and_category_and_the_charts_are_drawn() {
        let done = [profiled("mio-single", 1000, 3.0, 1.0), profiled("thread-per-conn", 1000, 6.0, 2.0)];
        let text = csv(&done);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 1 + 2 * Category::ALL.len(), "{text}");
        assert!(rows.contains(&"echo-saturate,mio-single,1000,server,user,3.000,0.7500,100,1.0000"), "{text}");
        assert!(rows.contains(&"echo-saturate,thread-per-conn,1000,server,scheduler,0.000,0.0000,100,1.0000"));
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        draw(dir, &done).unwrap();
        assert!(dir.join("breakdown-server-echo-saturate.svg").exists());
        // No load generator profile: no load generator chart.
        assert!(!dir.join("breakdown-loadgen-echo-saturate.svg").exists());
    }
}
