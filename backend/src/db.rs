//! Connections, migrations and the start-up guard on the application role.

use crate::error::{Error, Result};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?)
}

/// Applies the migrations. `owner_url` must connect as the role that owns the schema.
pub async fn migrate(owner_url: &str) -> Result<()> {
    let pool = connect(owner_url, 2).await?;
    sqlx::migrate!("../migrations").run(&pool).await.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
    pool.close().await;
    Ok(())
}

/// Refuses to serve when the application role could see past row-level security: a superuser,
/// a BYPASSRLS role, or the owner of a table (owners can switch RLS off) would turn every
/// tenant policy into a suggestion.
pub async fn check_app_role(pool: &PgPool) -> Result<()> {
    let (user, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await?;
    if superuser || bypass {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" is a superuser or has BYPASSRLS; connect DATABASE_URL as the confined role (tessera_app)"
        )));
    }
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(pool)
    .await?;
    if owned > 0 {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" owns {owned} table(s) and could disable row-level security; run migrations as a separate owner role"
        )));
    }
    Ok(())
}
