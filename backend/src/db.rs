//! The control-plane connection and the start-up guard on the application role.
//! (Migrations live in `tenancy::migrate`: the control plane and tenant data are separate sets.)

use crate::error::{Error, Result};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// The control-plane pool. Behind PgBouncer (`pgbouncer`), the server-side statement cache is
/// off and every statement runs in an explicit transaction (see `sessions`).
pub async fn connect(url: &str, max_connections: u32, pgbouncer: bool) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(crate::tenancy::topology::connect_options(url, pgbouncer)?)
        .await?)
}

/// Refuses to serve when the application role could see past row-level security: a superuser,
/// a BYPASSRLS role, or the owner of a table (owners can switch RLS off) would turn every
/// tenant policy into a suggestion.
pub async fn check_app_role(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    let (user, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetch_one(&mut *tx).await?;
    if superuser || bypass {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" is a superuser or has BYPASSRLS; connect as the confined role (tessera_app)"
        )));
    }
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut *tx)
    .await?;
    // Rights the migrations take away (least_privilege); a database owned by someone else keeps
    // them until its owner revokes them, which start-up only warns about.
    let (temporary, create): (bool, bool) =
        sqlx::query_as("SELECT has_database_privilege(current_database(), 'TEMPORARY'), has_schema_privilege('public', 'CREATE')")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    if temporary || create {
        tracing::warn!(
            role = %user,
            temporary,
            create_in_public = create,
            "the application role may create temporary tables or objects in schema public; revoke TEMPORARY on the database and CREATE on public from PUBLIC (and grant TEMPORARY to the schema owner role: moves stage rows in temporary tables)"
        );
    }
    if owned > 0 {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" owns {owned} table(s) and could disable row-level security; run migrations as a separate owner role"
        )));
    }
    Ok(())
}
