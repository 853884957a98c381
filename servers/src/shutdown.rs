//! A shutdown signal that every model can wait on in its own way.
//!
//! A blocking model sits in `accept()`, an event loop in `epoll_wait`, a
//! tokio task in `select!`. Each registers a hook that knocks its own
//! waiting point awake (a connect to itself, a `mio::Waker`, a `Notify`), and
//! checks [`Shutdown::is_triggered`] when it wakes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn Fn() + Send + Sync>;

#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Set the flag and run every hook once.
    pub fn trigger(&self) {
        if self.inner.triggered.swap(true, Ordering::AcqRel) {
            return;
        }
        for hook in self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            hook();
        }
    }

    /// Run `hook` when shutdown is triggered (at once if it already was).
    pub fn on_trigger(&self, hook: impl Fn() + Send + Sync + 'static) {
        let mut hooks = self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_triggered() {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_even_if_registered_late() {
        let s = Shutdown::new();
        let n = Arc::new(AtomicUsize::new(0));
        let n1 = n.clone();
        s.on_trigger(move || {
            n1.fetch_add(1, Ordering::SeqCst);
        });
        s.trigger();
        s.trigger();
        let n2 = n.clone();
        s.on_trigger(move || {
            n2.fetch_add(10, Ordering::SeqCst);
        });
        assert!(s.is_triggered());
        assert_eq!(n.load(Ordering::SeqCst), 11);
    }
}
