//! The one set of test helpers that the integration tests of `servers`
//! and `loadgen` share (a dev-dependency of both):
//!
//! - [`per_model!`]: one `#[test]` per model of the project's model table
//!   ([`loadgen::models`]), named `CASE::MODEL`, each run only where the
//!   `servers` binary offers that model ready, and otherwise skipped with a
//!   `SKIPPED` line on stderr, or failed under IOMODELS_REQUIRE_ALL_MODELS=1
//!   ([`runs_here`]); and
//!   [`assert_every_offered_model_runs_every_case`], which fails when the
//!   binary offers a model that the tests do not cover.
//! - [`Server`]: a real `servers` process on 127.0.0.1:0, its stderr kept
//!   and shown when the test fails; [`Client`]: a blocking framed client.
//! - [`frames`]: requests by method, any raw header, payload patterns and
//!   seeded random bytes ([`Rng`], on `proto::compute`'s xorshift).
//! - [`Problems`]: everything a case found wrong, asserted at its end.
//! - [`heavy`]: a lock for the cases that must not overlap, and [`procfs`]:
//!   a process's descriptors, threads and CPU time.
//! - [`expected_revision`]: the git revision a binary built from this
//!   checkout must report.
//! - [`scratch`]: a temporary directory removed when the test ends, and
//!   [`copy_for_everyone`]: a binary that `nobody` can run.

mod client;
pub mod frames;
mod models;
mod problems;
pub mod procfs;
mod revision;
mod scratch;
mod server;

use std::sync::{Mutex, MutexGuard};

pub use client::{Client, Got};
pub use frames::{compute, delay, echo, encoded, pattern, raw_frame, wire, Rng};
pub use loadgen;
pub use loadgen::models::is_event_loop;
pub use models::{
    assert_every_offered_model_runs_every_case, decide, listed_tests, models, runs_here, test_name, Here,
    REQUIRE_ALL_MODELS,
};
pub use problems::Problems;
pub use revision::expected_revision;
pub use scratch::{copy_for_everyone, scratch, Scratch};
pub use server::{servers_bin, Server, StderrLog};

/// Serialize the memory- and descriptor-heavy cases of one test binary.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `#[test]` per known model for each case, in a module named after
/// the case: `CASE::MODEL` (`fd_exhaustion::mio_single`). Each runs only
/// where the servers binary offers its model ready; elsewhere it says
/// SKIPPED on stderr, or fails when every model is required ([`runs_here`]).
///
/// - `per_model!(a, b)`: the tests call `super::a(MODEL)`.
/// - `per_model!(run => a, #[ignore = "slow"] b)`: they call
///   `super::run("a", MODEL, super::a)`, for a harness around every case.
///
/// The models come from the one list, `loadgen::known_models!`.
#[macro_export]
macro_rules! per_model {
    ($runner:ident => $($(#[$attr:meta])* $case:ident),+ $(,)?) => {
        $( $crate::loadgen::known_models!([$crate::__per_model_case] { { $(#[$attr])* } $case { $runner } }); )+
    };
    ($($(#[$attr:meta])* $case:ident),+ $(,)?) => {
        $( $crate::loadgen::known_models!([$crate::__per_model_case] { { $(#[$attr])* } $case {} }); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __per_model_case {
    ({ $attrs:tt $case:ident $runner:tt } $($test:ident => $name:literal, $role:ident, $color:expr;)*) => {
        mod $case {
            $( $crate::__per_model_test!($attrs $case $runner $test $name); )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __per_model_test {
    ({ $(#[$attr:meta])* } $case:ident {} $test:ident $name:literal) => {
        $(#[$attr])*
        #[test]
        fn $test() {
            if $crate::runs_here(stringify!($case), $name) {
                super::$case($name)
            }
        }
    };
    ({ $(#[$attr:meta])* } $case:ident { $runner:ident } $test:ident $name:literal) => {
        $(#[$attr])*
        #[test]
        fn $test() {
            if $crate::runs_here(stringify!($case), $name) {
                super::$runner(stringify!($case), $name, super::$case)
            }
        }
    };
}
