//! Every record `loadgen` writes to disk and reads back, in one place: a
//! run's configuration ([`config`]) and result ([`run`]), the histograms a
//! tagged run adds for `loadgen merge` ([`part`]), a sweep's summary
//! ([`sweep`]) and its headline verdict ([`verdict`]); the times they carry are read and printed by [`clock`].
//! Reading a record, and upgrading one written by an older `loadgen`,
//! lives beside its type.
//!
//! Records sit at the bottom of the crate: they import nothing of `run`,
//! `sweep`, `check` or the outputs, so anything may read them.

pub mod clock;
pub mod config;
pub mod part;
pub mod profile;
pub mod run;
pub mod sweep;
pub mod verdict;
