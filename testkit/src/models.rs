//! Which models the tests cover, asked of the `servers` binary itself
//! (`servers models`, or its `--help` for a binary without that command),
//! so that a model added to the binary and to no test shows up.

use std::collections::{BTreeMap, BTreeSet};
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

/// Whether the servers binary offers `model` ready to run here. Where it
/// does not (not built, or unavailable on this machine), says so on stdout:
/// a per-model test then has nothing to test.
pub fn offers(model: &str) -> bool {
    match offered().iter().find(|m| m.name == model).map(|m| &m.availability) {
        Some(Availability::Ready) => true,
        Some(Availability::Unavailable(why)) => {
            println!("note: {model} is unavailable here ({why}); nothing to test");
            false
        }
        None => {
            println!("note: the servers binary has no {model} model; nothing to test");
            false
        }
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
