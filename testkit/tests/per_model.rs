//! `per_model!` makes one test per model of the project's table, named
//! `CASE::MODEL`, with the attributes given, through a harness if asked.
//! The tests it makes here are listed, not run (they are ignored): what is
//! checked is that they exist. CI also runs the ignored tests
//! (`scripts/test -- --ignored`), so the listed ones do nothing when run.

use std::collections::BTreeSet;

testkit::per_model!(
    #[ignore = "listed, not run: see one_test_per_known_model"]
    listed_only
);
testkit::per_model!(harness => #[ignore = "listed, not run: see one_test_per_known_model"] through_a_harness);

fn listed_only(_model: &str) {}

fn harness(case: &str, model: &str, f: fn(&str)) {
    assert_eq!(case, "through_a_harness");
    f(model)
}

fn through_a_harness(_model: &str) {}

#[test]
fn one_test_per_known_model() {
    let listed = testkit::listed_tests();
    let known: BTreeSet<String> = testkit::loadgen::models::names().map(testkit::test_name).collect();
    assert!(known.contains("mio_single") && known.contains("uring"), "{known:?}");
    for case in ["listed_only", "through_a_harness"] {
        let prefix = format!("{case}::");
        let made: BTreeSet<String> = listed.iter().filter_map(|t| t.strip_prefix(&prefix)).map(String::from).collect();
        assert_eq!(made, known, "{case}");
    }
}
