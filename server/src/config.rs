//! Configuration from the environment; every variable is listed in the README.

use std::net::SocketAddr;

#[derive(Clone, Debug)]
pub struct Config {
    /// Connection for serving requests, as the confined `tessera_app` role.
    pub database_url: String,
    /// Connection as the schema owner; when given, migrations run at start-up.
    pub owner_database_url: Option<String>,
    pub addr: SocketAddr,
    /// Where the WASM bundle, CSS and public assets live (`target/site`).
    pub site_root: String,
    /// Mark the session cookie `Secure` (serve over https in production).
    pub secure_cookies: bool,
    pub seed_demo: bool,
    pub db_max_connections: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let database_url = var("DATABASE_URL").ok_or_else(|| {
            ConfigError("DATABASE_URL is not set. Use `cargo xtask dev`, which starts a database for you.".into())
        })?;
        let addr = var("TESSERA_ADDR")
            .or_else(|| var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr = addr.parse().map_err(|e| ConfigError(format!("TESSERA_ADDR {addr:?} is not host:port ({e})")))?;
        let db_max_connections = match var("TESSERA_DB_MAX_CONNECTIONS") {
            Some(v) => v.parse().map_err(|_| ConfigError(format!("TESSERA_DB_MAX_CONNECTIONS {v:?} is not a number")))?,
            None => 20,
        };
        Ok(Self {
            database_url,
            owner_database_url: var("DATABASE_OWNER_URL"),
            addr,
            site_root: var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
            secure_cookies: flag("TESSERA_SECURE_COOKIES"),
            seed_demo: flag("TESSERA_SEED_DEMO"),
            db_max_connections,
        })
    }
}
