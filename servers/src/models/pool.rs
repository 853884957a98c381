//! PLACEHOLDER: being written.

use std::io;
use std::net::TcpListener;

use crate::{CommonOptions, Shutdown};

#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    #[command(flatten)]
    pub common: CommonOptions,
}

pub fn run(_listener: TcpListener, _options: &Options, _shutdown: Shutdown) -> io::Result<()> {
    Err(io::Error::other("not written yet"))
}
