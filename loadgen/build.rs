//! Build script: embed the git revision the binary is built from as
//! `IOMODELS_REVISION` (../build/revision.rs, shared with the servers'), for
//! `--version` and every run's JSON.

#[path = "../build/revision.rs"]
mod revision;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    revision::embed_revision();
}
