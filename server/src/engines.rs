//! The mount types built into this server: the one place that names them.
//! Adding an engine is its folder plus one line here.

use crate::engine::Registry;

/// Every built-in secrets engine and auth method.
pub fn builtin() -> Registry {
    Registry::default()
        .with_secrets(crate::secrets::kv::Kv)
        .with_secrets(crate::secrets::cubbyhole::Cubbyhole)
        .with_secrets(crate::secrets::database::Database::default())
        .with_secrets(crate::secrets::identity::Identity)
        .with_secrets(crate::secrets::pki::Pki)
        .with_auth(crate::auth::userpass::Userpass)
        .with_auth(crate::auth::approle::AppRole)
        .with_auth(crate::auth::jwt::Jwt::default())
        .with_auth(crate::auth::cert::Cert)
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_type_name_is_claimed_twice() {
        assert_eq!(super::builtin().conflicts(), &[] as &[&str]);
    }
}
