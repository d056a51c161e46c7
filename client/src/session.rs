//! The token a [`crate::Client`] sends and the [`Login`] that produced it, in one cell
//! shared by the client's clones, so that a login or a renewal through one clone (or
//! through the [`crate::Renewer`]) is seen by all of them.
//!
//! The lock is held only to copy or replace the two fields, never across an `.await`.
//! A poisoned lock cannot hide a half-made change (each write is one assignment), so
//! its value is used as it stands.

use std::sync::{Arc, Mutex, MutexGuard};

use coffer_proto::SecretString;

use crate::login::Login;

#[derive(Default)]
struct State {
    token: Option<SecretString>,
    login: Option<Login>,
}

/// Cheap to clone: clones share the cell.
#[derive(Clone, Default)]
pub(crate) struct Session(Arc<Mutex<State>>);

impl Session {
    pub(crate) fn new(token: Option<SecretString>) -> Session {
        Session(Arc::new(Mutex::new(State { token, login: None })))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn token(&self) -> Option<SecretString> {
        self.lock().token.clone()
    }

    pub(crate) fn login(&self) -> Option<Login> {
        self.lock().login.clone()
    }

    /// A successful login: its token and how to log in again.
    pub(crate) fn logged_in(&self, token: SecretString, login: Login) {
        let mut state = self.lock();
        state.token = Some(token);
        state.login = Some(login);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_token_and_the_login() {
        let a = Session::new(Some("t1".into()));
        let b = a.clone();
        assert!(b.login().is_none());
        a.logged_in("t2".into(), Login::Token("t2".into()));
        assert_eq!(b.token().unwrap().expose(), "t2");
        assert!(b.login().is_some());
        let separate = Session::new(None);
        assert!(separate.token().is_none() && separate.login().is_none());
    }
}
