//! The iomodels load generator: one mio client that drives every server
//! model the same way, and the tools built on it (sweep, charts, report,
//! regression check).

pub mod archive;
pub mod cgroup;
pub mod check;
pub mod cpus;
pub mod env;
pub mod files;
pub mod floor;
pub mod fmt;
pub mod html;
pub mod merge;
pub mod models;
pub mod output;
pub mod procstat;
pub mod profile;
pub mod records;
pub mod reliability;
pub mod run;
pub mod stats;
pub mod sweep;
#[cfg(test)]
mod testdata;

/// The git revision this binary was built from: 12 hex digits of HEAD,
/// `-dirty` when the tree had changes outside `results/`, or "unknown (no
/// git)" (embedded by build.rs, see build/revision.rs at the workspace root).
pub const REVISION: &str = env!("IOMODELS_REVISION");

/// `--version`: the package version and [`REVISION`].
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("IOMODELS_REVISION"), ")");
