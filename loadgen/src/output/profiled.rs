//! What became of each profiled run (`loadgen sweep --profile`), read from
//! its own JSON under `profiles/runs/`: the summaries never hold those
//! runs, yet a breakdown row of a run that failed is not a profile of the
//! work asked for, and the tables of REPORT.md and the page say so.

use std::path::Path;

use crate::records::run::RunResult;
use crate::records::sweep::RunFiles;
use crate::sweep::cells::AsDesigned;

/// What became of a profiled run, from its JSON under `profiles/` (the
/// summaries never hold it): "ok", pool's "starved, as designed: …",
/// "failed", or "–" where its JSON cannot be read.
pub fn fate(dir: &Path, scenario: &str, model: &str, level: &str) -> String {
    let Ok(level) = level.parse::<u64>() else { return "–".into() };
    let path = dir.join("profiles").join(RunFiles::for_run(scenario, model, level, 1).json);
    let Some(x) = std::fs::read(&path).ok().and_then(|b| RunResult::from_json_slice(&b).ok()) else {
        return "–".into();
    };
    match (&x.failure, AsDesigned::of_result(model, &x)) {
        (None, _) => "ok".into(),
        (Some(_), Some(designed)) => designed.text(),
        (Some(_), None) => "failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profiled run's fate is read from its own JSON under profiles/.
    #[test]
    fn a_profiled_run_says_whether_it_failed() {
        let dir = crate::testdata::scratch("profiled");
        let runs = dir.join("profiles/runs/echo-saturate");
        std::fs::create_dir_all(&runs).unwrap();
        let ok = crate::testdata::result("mio-single", 200, 1000.0);
        let mut crashed = crate::testdata::result("tokio", 200, 1000.0);
        crashed.failure = Some("the server exited with signal 11".into());
        std::fs::write(runs.join("mio-single-c200-r1.json"), serde_json::to_vec(&ok).unwrap()).unwrap();
        std::fs::write(runs.join("tokio-c200-r1.json"), serde_json::to_vec(&crashed).unwrap()).unwrap();
        assert_eq!(fate(&dir, "echo-saturate", "mio-single", "200"), "ok");
        assert_eq!(fate(&dir, "echo-saturate", "tokio", "200"), "failed");
        assert_eq!(fate(&dir, "echo-saturate", "uring", "200"), "–", "no JSON");
    }
}
