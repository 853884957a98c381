//! Files and file descriptors: the two small utilities that every part of
//! loadgen shares (the run, the sweep, the report, the check and the
//! reliability table), kept here rather than in any one of them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` through a temporary file and a rename, so that a
/// reader (or an interrupted sweep) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = PathBuf::from(path);
    let name = format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"));
    tmp.set_file_name(name);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Raise the soft open-files limit to the hard one. `loadgen run` at 5000
/// connections needs more than the usual 1024 descriptors, and a sweep's
/// children (the servers, `loadgen run`) inherit the raised limit.
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a valid struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_leaves_no_temporary_file() {
        let dir = crate::testdata::scratch("files");
        let path = dir.join("out.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out.json"]);
    }
}
