//! perf's samples folded into one line per distinct stack
//! (`root;...;leaf COUNT`, kernel frames suffixed `_[k]`) and drawn as a
//! flame graph, both with the `inferno` crate, used as a library.

use std::io;
use std::path::Path;

use inferno::collapse::Collapse;

/// Fold `perf script` output. Kernel frames carry inferno's `_[k]` suffix,
/// which the category table uses to tell kernel from user code.
pub fn collapse(script: &[u8]) -> io::Result<String> {
    let mut opts = inferno::collapse::perf::Options::default();
    opts.annotate_kernel = true;
    let mut out = Vec::new();
    inferno::collapse::perf::Folder::from(opts).collapse(script, &mut out)?;
    String::from_utf8(out).map_err(io::Error::other)
}

/// Draw the folded stacks as an SVG flame graph at `svg`.
pub fn flamegraph(folded: &str, title: &str, svg: &Path) -> io::Result<()> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "samples".to_string();
    let file = std::fs::File::create(svg)?;
    inferno::flamegraph::from_lines(&mut opts, folded.lines(), io::BufWriter::new(file)).map_err(io::Error::other)
}

/// The folded lines as (frames from root to leaf, samples); lines that do
/// not parse are skipped.
pub fn stacks(folded: &str) -> impl Iterator<Item = (Vec<&str>, u64)> {
    folded.lines().filter_map(|line| {
        let (stack, count) = line.trim_end().rsplit_once(' ')?;
        Some((stack.split(';').collect(), count.parse().ok()?))
    })
}
