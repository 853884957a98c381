//! Scratch directories for tests: each removed, with everything in it, when
//! its guard is dropped, whether the test passed or not.

use std::ffi::OsStr;
use std::path::Path;

/// A fresh, empty directory under the system's temp dir, named
/// `PREFIX-XXXXXX`. Bind the guard (`let tmp = scratch(..);`) for as long
/// as the test uses the directory: `scratch(..).join(..)` would remove it
/// at once.
pub fn scratch(prefix: &str) -> Scratch {
    let dir = tempfile::Builder::new().prefix(&format!("{prefix}-")).tempdir();
    Scratch(dir.expect("a directory under the system's temp dir"))
}

/// The guard [`scratch`] returns; it reads as the directory's `Path`.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<OsStr> for Scratch {
    fn as_ref(&self) -> &OsStr {
        self.0.path().as_os_str()
    }
}
