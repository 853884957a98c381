//! The iomodels load generator: one mio client that drives every server
//! model the same way, and the tools built on it (sweep, charts, report,
//! regression check).

pub mod cgroup;
pub mod charts;
pub mod check;
pub mod env;
pub mod export;
pub mod files;
pub mod floor;
pub mod fmt;
pub mod merge;
pub mod models;
pub mod netlab;
pub mod procstat;
pub mod reliability;
pub mod report;
pub mod result;
pub mod run;
pub mod sweep;
#[cfg(test)]
mod testdata;
