//! The iomodels load generator: one mio client that drives every server
//! model the same way, and the tools built on it (sweep, charts, report,
//! regression check).

pub mod floor;
pub mod result;
pub mod charts;
pub mod export;
pub mod report;
pub mod sweep;
pub mod env;
pub mod run;
pub mod reliability;
