//! The hook through which a passed assertion in a test body is recorded. The runner
//! installs one on the body's thread while the body runs; an assertion anywhere else
//! records nothing. Assertions call [`notify`] and know nothing of the runner.

use std::cell::RefCell;

use crate::class::ErrorClass;

/// A passed assertion.
pub(crate) struct Asserted<'a> {
    /// The scheme of the provider that recognised the error (`http`, `io`, or empty).
    pub(crate) scheme: &'a str,
    /// The asserted expression, as written.
    pub(crate) expression: &'a str,
    /// The class the error was asserted to have.
    pub(crate) class: ErrorClass,
}

type Hook = Box<dyn Fn(&Asserted<'_>)>;

thread_local! {
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Installs `hook` on this thread for the rest of its life.
pub(crate) fn install(hook: impl Fn(&Asserted<'_>) + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

/// Reports a passed assertion to this thread's hook, if any.
pub(crate) fn notify(asserted: &Asserted<'_>) {
    HOOK.with(|h| {
        if let Some(hook) = h.borrow().as_ref() {
            hook(asserted);
        }
    });
}
