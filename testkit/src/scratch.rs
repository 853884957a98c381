//! Scratch directories for tests: each removed, with everything in it, when
//! its guard is dropped, whether the test passed or not.
//!
//! [`copy_for_everyone`]: a test that runs a binary as `nobody` cannot
//! reach one in a checkout under a directory only root may enter (a
//! `mktemp -d` directory is mode 0700).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

/// A copy of `bin` in a fresh scratch directory that every user can enter
/// and execute from: the guard, and the copy's path.
pub fn copy_for_everyone(bin: &Path) -> (Scratch, PathBuf) {
    let dir = scratch("for-everyone");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod 755 the directory");
    let copy = dir.join(bin.file_name().expect("a binary's path names a file"));
    std::fs::copy(bin, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", bin.display()));
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod 755 the binary");
    (dir, copy)
}
