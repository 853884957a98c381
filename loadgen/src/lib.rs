//! The iomodels load generator: one mio client that drives every server
//! model the same way, and the tools built on it (sweep, charts, report,
//! regression check).

pub mod floor;
pub mod result;
