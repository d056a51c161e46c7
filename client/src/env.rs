//! A [`Client`] from the process environment, the way services are configured:
//! `COFFER_ADDR`, `COFFER_CACERT`, `COFFER_CLIENT_CERT` + `COFFER_CLIENT_KEY`,
//! `COFFER_TOKEN`, each falling back to its `VAULT_*` name (what `bao` and `vault`
//! read), and the files they name read with errors that name the file, never its
//! content.

use std::path::{Path, PathBuf};

use coffer_proto::SecretString;
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::{Client, ClientBuilder};

/// Address used when neither `COFFER_ADDR` nor `VAULT_ADDR` is set.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

/// The variables [`Client::from_env`] reads, first name wins.
pub const ADDR_VARS: [&str; 2] = ["COFFER_ADDR", "VAULT_ADDR"];
/// PEM file with the CA certificate(s) to trust.
pub const CACERT_VARS: [&str; 2] = ["COFFER_CACERT", "VAULT_CACERT"];
/// PEM file with the client certificate chain (mTLS, `auth/cert`).
pub const CLIENT_CERT_VARS: [&str; 2] = ["COFFER_CLIENT_CERT", "VAULT_CLIENT_CERT"];
/// PEM file with the client certificate's private key.
pub const CLIENT_KEY_VARS: [&str; 2] = ["COFFER_CLIENT_KEY", "VAULT_CLIENT_KEY"];
/// The token.
pub const TOKEN_VARS: [&str; 2] = ["COFFER_TOKEN", "VAULT_TOKEN"];

/// Looks up one variable; empty values count as unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The first of `names` that is set to a non-blank value: (name, value).
pub fn first_set(env: EnvLookup<'_>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|name| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name.to_string(), v))
    })
}

/// Read a file named by configuration; the error names `what` and the path.
pub fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::File {
        what: what.to_string(),
        path: path.to_path_buf(),
        reason: io_reason(&e),
    })
}

/// An I/O error's text without Rust's ` (os error N)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl Client {
    /// A client configured from the process environment (see the module doc).
    /// A named file that is missing or unreadable, a client certificate without its key
    /// (or the reverse) and a key that does not match its certificate are errors.
    pub fn from_env() -> Result<Client, ClientError> {
        ClientBuilder::from_env()?.build()
    }

    /// As [`Client::from_env`] with another variable lookup (tests, config maps).
    pub fn from_env_with(env: EnvLookup<'_>) -> Result<Client, ClientError> {
        ClientBuilder::from_env_with(env)?.build()
    }
}

impl ClientBuilder {
    /// A builder holding what the environment says; more options can follow.
    pub fn from_env() -> Result<ClientBuilder, ClientError> {
        ClientBuilder::from_env_with(&|name| std::env::var(name).ok())
    }

    /// As [`ClientBuilder::from_env`] with another variable lookup.
    pub fn from_env_with(env: EnvLookup<'_>) -> Result<ClientBuilder, ClientError> {
        let addr = first_set(env, &ADDR_VARS).map_or_else(|| DEFAULT_ADDR.to_string(), |(_, v)| v);
        let mut builder = Client::builder(addr.trim());
        if let Some((name, path)) = first_set(env, &CACERT_VARS) {
            let pem = read_file(&format!("the CA certificate ({name})"), Path::new(&path))?;
            builder = builder.ca_cert_pem(&pem);
        }
        match (
            first_set(env, &CLIENT_CERT_VARS),
            first_set(env, &CLIENT_KEY_VARS),
        ) {
            (Some((cert_var, cert)), Some((key_var, key))) => {
                let cert_pem = read_file(
                    &format!("the client certificate ({cert_var})"),
                    &PathBuf::from(cert),
                )?;
                let key_pem = Zeroizing::new(read_file(
                    &format!("the client key ({key_var})"),
                    &PathBuf::from(key),
                )?);
                builder = builder.client_identity_pem(&cert_pem, &key_pem);
            }
            (Some((cert_var, _)), None) => {
                return Err(ClientError::Config(format!(
                    "{cert_var} is set but no client key is: set COFFER_CLIENT_KEY too"
                )))
            }
            (None, Some((key_var, _))) => {
                return Err(ClientError::Config(format!(
                    "{key_var} is set but no client certificate is: set COFFER_CLIENT_CERT too"
                )))
            }
            (None, None) => {}
        }
        if let Some((_, token)) = first_set(env, &TOKEN_VARS) {
            builder = builder.token(SecretString::new(token.trim().to_string()));
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn coffer_names_win_over_vault_names_and_defaults_apply() {
        let env = lookup(&[
            ("VAULT_ADDR", "http://vault:8200".into()),
            ("COFFER_ADDR", "http://coffer:8200".into()),
            ("VAULT_TOKEN", "hvs.vault".into()),
        ]);
        let c = Client::from_env_with(&env).unwrap();
        assert_eq!(c.address(), "http://coffer:8200/");
        assert_eq!(c.token().unwrap().expose(), "hvs.vault");
        let c = Client::from_env_with(&lookup(&[("COFFER_ADDR", "  ".into())])).unwrap();
        assert_eq!(c.address(), "http://127.0.0.1:8200/");
        assert!(c.token().is_none());
        assert!(!c.has_client_identity());
    }

    #[test]
    fn missing_files_are_named_and_half_identities_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-key.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["svc".into()]).unwrap();
        let cert_path = dir.path().join("cert.pem");
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        let env = lookup(&[
            ("COFFER_CLIENT_CERT", cert_path.display().to_string()),
            ("VAULT_CLIENT_KEY", missing.display().to_string()),
        ]);
        let err = Client::from_env_with(&env).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("client key (VAULT_CLIENT_KEY)") && text.contains("missing-key.pem"),
            "{text}"
        );
        assert!(text.contains("No such file"), "{text}");
        let env = lookup(&[("COFFER_CLIENT_CERT", cert_path.display().to_string())]);
        let err = Client::from_env_with(&env).unwrap_err();
        assert!(matches!(err, ClientError::Config(_)), "{err}");
        let env = lookup(&[("COFFER_CACERT", missing.display().to_string())]);
        let err = Client::from_env_with(&env).unwrap_err();
        assert!(
            err.to_string().contains("CA certificate (COFFER_CACERT)"),
            "{err}"
        );
    }

    #[test]
    fn a_client_identity_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["svc".into()]).unwrap();
        let key = cert.signing_key.serialize_pem();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        let env = lookup(&[
            ("COFFER_ADDR", "https://127.0.0.1:8200".into()),
            ("COFFER_CACERT", cert_path.display().to_string()),
            ("COFFER_CLIENT_CERT", cert_path.display().to_string()),
            ("COFFER_CLIENT_KEY", key_path.display().to_string()),
        ]);
        let c = Client::from_env_with(&env).unwrap();
        assert!(c.has_client_identity());
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        // Cert given as key: refused, and the message shows neither file's content.
        let env = lookup(&[
            ("COFFER_CLIENT_CERT", cert_path.display().to_string()),
            ("COFFER_CLIENT_KEY", cert_path.display().to_string()),
        ]);
        let err = Client::from_env_with(&env).unwrap_err();
        let body_line = cert.cert.pem().lines().nth(1).unwrap().to_string();
        assert!(err.to_string().contains("private key"), "{err}");
        assert!(!err.to_string().contains(&body_line[..20]), "{err}");
    }
}
