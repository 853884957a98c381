//! Everything a case found wrong, so that one run reports every problem,
//! not just the first; asserted empty at the case's end.
//!
//! Bounds on elapsed time are kept apart ([`Problems::check_time`]): a hang
//! or a stall repeats, a loaded machine's slow moment does not, so a case
//! that fails on time alone may be run again rather than loosened.

#[derive(Default)]
pub struct Problems {
    pub found: Vec<String>,
    pub slow: Vec<String>,
}

impl Problems {
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.found.push(what());
        }
    }

    /// A bound on elapsed time (see the module).
    pub fn check_time(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.slow.push(what());
        }
    }

    pub fn push(&mut self, what: impl Into<String>) {
        self.found.push(what.into());
    }

    /// `other`'s problems as well, each prefixed with `prefix: `.
    pub fn absorb(&mut self, other: Problems, prefix: &str) {
        self.found.extend(other.found.into_iter().map(|e| format!("{prefix}: {e}")));
        self.slow.extend(other.slow.into_iter().map(|e| format!("{prefix}: {e}")));
    }

    pub fn count(&self) -> usize {
        self.found.len() + self.slow.len()
    }

    pub fn all(&self) -> String {
        self.found.iter().chain(&self.slow).cloned().collect::<Vec<_>>().join("; ")
    }

    /// Fail, naming `what` (the model) and every problem, if there was any.
    pub fn assert_none(self, what: &str) {
        assert!(self.count() == 0, "{what}: {}", self.all());
    }
}
