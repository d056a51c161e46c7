//! `config/<name>` (a database connection) and `rotate-root/<name>`. The root
//! password is stored behind the barrier and never answered; a rotation sets a
//! random one in the database first and stores it only once the database took it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgPool;
use zeroize::Zeroizing;

use super::connection::render_url;
use super::Database;
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// The one plugin Coffer has.
pub(super) const POSTGRES_PLUGIN: &str = "postgresql-database-plugin";

/// One configured database.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct DbConfig {
    pub(super) plugin_name: String,
    pub(super) connection_url: String,
    pub(super) username: String,
    pub(super) password: Zeroizing<String>,
    pub(super) allowed_roles: Vec<String>,
    pub(super) verify_connection: bool,
    pub(super) max_open_connections: u32,
    /// changes with every write, so nodes drop pools built from an older one
    pub(super) version: String,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("plugin_name", &self.plugin_name)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl DbConfig {
    /// Whether `role` may use this database.
    pub(super) fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|r| r == "*" || r == role)
    }
}

fn key(name: &str) -> String {
    format!("config/{name}")
}

pub(super) fn checked_name(name: &str) -> Result<&str, LogicalError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name)
    } else {
        Err(LogicalError::invalid(
            "invalid name: use letters, digits, '-', '_' or '.' (at most 128)",
        ))
    }
}

pub(super) async fn load(view: &View, name: &str) -> Result<Option<DbConfig>, LogicalError> {
    match view.get(&key(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

async fn save(view: &View, name: &str, cfg: &DbConfig) -> Result<(), LogicalError> {
    let raw = Zeroizing::new(serde_json::to_vec(cfg).map_err(|_| LogicalError::Corrupt)?);
    view.apply(vec![view.put_op(&key(name), raw.to_vec(), None)])
        .await?;
    Ok(())
}

impl Database {
    /// A pool for the database `name` of the mount behind `view`.
    pub(super) fn pool(
        &self,
        view: &View,
        name: &str,
        cfg: &DbConfig,
    ) -> Result<PgPool, LogicalError> {
        let url = render_url(&cfg.connection_url, &cfg.username, &cfg.password);
        self.pools.get(
            &view.full_key(&key(name)),
            &cfg.version,
            &url,
            cfg.max_open_connections,
        )
    }
}

async fn verify(pool: &PgPool) -> Result<(), LogicalError> {
    let select = [Zeroizing::new("SELECT 1".to_owned())];
    super::connection::run_statements(pool, &select, "cannot verify the connection", "").await
}

/// `config/<name>`, and `LIST config`.
pub(super) async fn handle(
    db: &Database,
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    if name.is_empty() {
        return crate::engine::list_names(view, "config/").await;
    }
    let name = checked_name(name)?;
    match req.operation {
        Operation::Read => {
            let cfg = load(view, name).await?.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(json!({
                "plugin_name": cfg.plugin_name,
                "connection_details": {
                    "connection_url": cfg.connection_url,
                    "username": cfg.username,
                    "max_open_connections": cfg.max_open_connections,
                },
                "allowed_roles": cfg.allowed_roles,
                "verify_connection": cfg.verify_connection,
                "password_policy": "",
                "root_credentials_rotate_statements": [],
            })))
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&key(name))]).await?;
            db.pools.drop_pool(&view.full_key(&key(name)));
            Ok(Response::no_content())
        }
        Operation::Create | Operation::Update => {
            let f = Fields(&req.data);
            let old = load(view, name).await?;
            let plugin = f
                .string("plugin_name")?
                .or_else(|| old.as_ref().map(|o| o.plugin_name.clone()))
                .ok_or_else(|| LogicalError::invalid("missing required field 'plugin_name'"))?;
            if plugin != POSTGRES_PLUGIN {
                return Err(LogicalError::invalid(format!(
                    "plugin_name \"{plugin}\" is not supported; Coffer has \"{POSTGRES_PLUGIN}\""
                )));
            }
            let connection_url = f
                .string("connection_url")?
                .or_else(|| old.as_ref().map(|o| o.connection_url.clone()))
                .ok_or_else(|| LogicalError::invalid("missing required field 'connection_url'"))?;
            if !(connection_url.starts_with("postgres://")
                || connection_url.starts_with("postgresql://"))
            {
                return Err(LogicalError::invalid(
                    "connection_url must start with postgres:// or postgresql://",
                ));
            }
            let username = f
                .string("username")?
                .or_else(|| old.as_ref().map(|o| o.username.clone()))
                .unwrap_or_default();
            let password = match f.string("password")? {
                Some(p) => Zeroizing::new(p),
                None => old.as_ref().map(|o| o.password.clone()).unwrap_or_default(),
            };
            let cfg = DbConfig {
                plugin_name: plugin,
                connection_url,
                username,
                password,
                allowed_roles: f
                    .string_list("allowed_roles")?
                    .or_else(|| old.as_ref().map(|o| o.allowed_roles.clone()))
                    .unwrap_or_default(),
                verify_connection: f.bool("verify_connection")?.unwrap_or(true),
                max_open_connections: f
                    .u64("max_open_connections")?
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .or_else(|| old.as_ref().map(|o| o.max_open_connections))
                    .unwrap_or(4),
                version: uuid::Uuid::new_v4().to_string(),
            };
            if cfg.verify_connection {
                verify(&db.pool(view, name, &cfg)?).await?;
            }
            save(view, name, &cfg).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

/// A random password of letters and digits (PostgreSQL and URLs take it as is).
pub(super) fn random_password() -> Result<Zeroizing<String>, LogicalError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    // Rejection sampling: bytes past the largest multiple of the alphabet's
    // size are skipped, so every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = Zeroizing::new(String::with_capacity(32));
    out.push_str("A1a");
    while out.len() < 32 {
        let bytes =
            crate::crypto::random_array::<64>().map_err(crate::barrier::BarrierError::from)?;
        for b in bytes.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() == 32 {
                break;
            }
            out.push(ALPHABET[b % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// `rotate-root/<name>`: the database's root user gets a password only Coffer knows.
pub(super) async fn rotate_root(
    db: &Database,
    view: &View,
    name: &str,
) -> Result<Response, LogicalError> {
    let name = checked_name(name)?;
    let mut cfg = load(view, name).await?.ok_or(LogicalError::NotFound)?;
    if cfg.username.is_empty() {
        return Err(LogicalError::invalid(
            "the connection has no username to rotate",
        ));
    }
    let fresh = random_password()?;
    let pool = db.pool(view, name, &cfg)?;
    let statement = Zeroizing::new(format!(
        "ALTER ROLE \"{}\" WITH PASSWORD '{}'",
        cfg.username.replace('"', "\"\""),
        fresh.as_str()
    ));
    super::connection::run_statements(
        &pool,
        std::slice::from_ref(&statement),
        "cannot rotate the root password",
        &fresh,
    )
    .await?;
    cfg.password = fresh;
    cfg.version = uuid::Uuid::new_v4().to_string();
    save(view, name, &cfg).await?;
    Ok(Response::no_content())
}
