//! Which models the tests cover, asked of the `servers` binary itself
//! (`servers models`, or its `--help` for a binary without that command),
//! so that a model added to the binary and to no test shows up; and what a
//! per-model test does where its model cannot run: skip, saying `SKIPPED`
//! on stderr, or fail where every model is required
//! (IOMODELS_REQUIRE_ALL_MODELS=1, as `.ci/run` sets it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;

use loadgen::models::{Availability, Offered};

use crate::servers_bin;

/// Every model the servers binary offers, ready or not, in its order.
fn offered() -> &'static [Offered] {
    static OFFERED: OnceLock<Vec<Offered>> = OnceLock::new();
    OFFERED.get_or_init(|| {
        let bin = servers_bin();
        loadgen::models::offered(&bin).unwrap_or_else(|e| panic!("the models of {}: {e:#}", bin.display()))
    })
}

/// Every model the servers binary offers, by subcommand name (ready or not).
pub fn models() -> Vec<&'static str> {
    offered().iter().map(|m| m.name.as_str()).collect()
}

/// The variable that turns a skipped per-model test into a failed one.
/// `.ci/run` sets it to 1, so that CI never passes a model it did not test.
pub const REQUIRE_ALL_MODELS: &str = "IOMODELS_REQUIRE_ALL_MODELS";

/// What a per-model test does about its model here.
#[derive(Debug, PartialEq, Eq)]
pub enum Here {
    /// The binary offers the model ready: run the case.
    Run,
    /// It does not (the reason): skip the case, saying so.
    Skip(String),
    /// It does not, and every model is required: fail, saying why.
    Fail(String),
}

/// What the per-model test `case` of `model` does, given the models the
/// binary offers and whether every model is required.
pub fn decide(offered: &[Offered], case: &str, model: &str, require_all: bool) -> Here {
    let why = match offered.iter().find(|m| m.name == model).map(|m| &m.availability) {
        Some(Availability::Ready) => return Here::Run,
        Some(Availability::Unavailable(why)) => format!("{model} is unavailable here ({why})"),
        None => format!("the servers binary has no {model} model (not built)"),
    };
    if require_all {
        Here::Fail(format!("{case}::{model}: {why}, and {REQUIRE_ALL_MODELS}=1 requires every model"))
    } else {
        Here::Skip(format!(
            "SKIPPED {case}::{model}: {why}; nothing was tested ({REQUIRE_ALL_MODELS}=1 makes this fail)"
        ))
    }
}

/// Whether the per-model test `case` of `model` runs here ([`decide`], with
/// [`REQUIRE_ALL_MODELS`] from the environment). A skip writes its
/// `SKIPPED` line to the process's stderr directly, past the test
/// harness's capture, so that it shows in every run and not only in a
/// failed one; a required model that cannot run panics.
pub fn runs_here(case: &str, model: &str) -> bool {
    let require_all = std::env::var(REQUIRE_ALL_MODELS).is_ok_and(|v| v == "1");
    match decide(offered(), case, model, require_all) {
        Here::Run => true,
        Here::Skip(line) => {
            let _ = writeln!(std::io::stderr(), "{line}");
            false
        }
        Here::Fail(why) => panic!("{why}"),
    }
}

/// The name a model's tests go by in a test path (`thread_per_conn`).
pub fn test_name(model: &str) -> String {
    model.replace('-', "_")
}

/// Every test of the running test binary (`module::test`), ignored ones
/// included: what the binary itself prints for `--list`.
pub fn listed_tests() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe).arg("--list").output().expect("run the test binary with --list");
    assert!(out.status.success(), "{} --list failed", exe.display());
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.strip_suffix(": test")).map(String::from).collect()
}

/// Every model the servers binary offers has a test of every per-model
/// case of this test binary (`CASE::MODEL`, see [`crate::per_model!`]),
/// and every case runs the same models. Both sides are read, not written
/// down: the models from the binary, the cases from this test binary's own
/// list of tests.
pub fn assert_every_offered_model_runs_every_case() {
    let mut models_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for test in listed_tests() {
        if let Some((case, model)) = test.split_once("::") {
            models_of.entry(case.to_string()).or_default().insert(model.to_string());
        }
    }
    assert!(!models_of.is_empty(), "no CASE::MODEL tests listed");
    let offered: BTreeSet<String> = models().into_iter().map(test_name).collect();
    for (case, covered) in &models_of {
        let missing: Vec<&String> = offered.difference(covered).collect();
        assert!(missing.is_empty(), "{case}: no test for {missing:?}, which `servers models` offers");
    }
    let first = models_of.values().next().expect("a case");
    for (case, covered) in &models_of {
        assert_eq!(covered, first, "{case} runs other models than the other cases");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(uring: Availability) -> Vec<Offered> {
        vec![
            Offered { name: "mio-single".into(), availability: Availability::Ready },
            Offered { name: "uring".into(), availability: uring },
        ]
    }

    #[test]
    fn a_model_that_cannot_run_is_skipped_or_fails_never_passes_silently() {
        let off = offered(Availability::Unavailable("io_uring is disabled".into()));
        assert_eq!(decide(&off, "echo", "mio-single", true), Here::Run);
        let Here::Skip(line) = decide(&off, "echo", "uring", false) else { panic!("uring must be skipped") };
        assert!(line.starts_with("SKIPPED echo::uring: uring is unavailable here (io_uring is disabled)"), "{line}");
        let Here::Fail(why) = decide(&off, "echo", "uring", true) else { panic!("uring must fail when required") };
        assert!(why.contains("io_uring is disabled") && why.contains(REQUIRE_ALL_MODELS), "{why}");
        // A model the binary was built without: the same.
        assert!(matches!(decide(&off, "echo", "libevent", false), Here::Skip(l) if l.contains("not built")));
        assert!(matches!(decide(&off, "echo", "libevent", true), Here::Fail(_)));
    }
}
