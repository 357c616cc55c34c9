//! Creating, migrating and dropping the places tenant data lives. All of it runs as the owner
//! role over direct connections (never through PgBouncer): DDL, session advisory locks and
//! `CREATE DATABASE` need a real session.

use super::placement::{Placement, SHARED_SCHEMA};
use super::topology::Topology;
use crate::error::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use tessera_domain::placement::TenancyModel;
use uuid::Uuid;

/// The tenant migrations, applied to every place tenant data lives.
pub fn tenant_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("../migrations/tenant");
    // sqlx's lock is per database; many schemas of one database migrate in parallel, so each
    // schema takes its own lock instead (see `migrate_schema`).
    migrator.set_locking(false);
    migrator
}

/// The tenant schema version this build expects; tenants behind it are not served.
pub fn latest_tenant_version() -> i64 {
    static LATEST: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *LATEST.get_or_init(|| tenant_migrator().iter().map(|m| m.version).max().unwrap_or(0))
}

/// The control-plane migrations.
pub fn control_migrator() -> Migrator {
    sqlx::migrate!("../migrations/control")
}

pub(crate) async fn connect(options: &PgConnectOptions) -> Result<PgConnection> {
    Ok(PgConnection::connect_with(options).await?)
}

/// Brings one schema up to date and returns its version. Idempotent; concurrent runs on the
/// same schema wait for each other.
pub(crate) async fn migrate_schema(conn: &mut PgConnection, schema: &str) -> Result<i64> {
    check_identifier(schema)?;
    // Locked before anything else, so two servers starting at once (or the CLI during a
    // start-up) don't race on creating the same schema.
    let lock_key = format!("tessera-migrate:{schema}");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))").bind(&lock_key).execute(&mut *conn).await?;
    let result = async {
        conn.execute(
            format!("CREATE SCHEMA IF NOT EXISTS {schema}; GRANT USAGE ON SCHEMA {schema} TO tessera_app; SET search_path TO {schema}").as_str(),
        )
        .await?;
        let migrated = tenant_migrator().run_direct(&mut *conn).await;
        conn.execute("RESET search_path").await?;
        migrated.map_err(|e| Error::Internal(format!("migrating schema {schema}: {e}")))
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))").bind(&lock_key).execute(&mut *conn).await?;
    result?;
    Ok(latest_tenant_version())
}

/// Creates the schema or database a new (or moving) tenant needs and migrates it. Pooled
/// tenants need nothing: their region's shared schema already exists.
pub(crate) async fn create_storage(topology: &Topology, placement: &Placement) -> Result<i64> {
    match placement.model {
        TenancyModel::Pooled => Ok(latest_tenant_version()),
        TenancyModel::Schema => {
            let mut conn = connect(&topology.owner_options(&placement.region, None)?).await?;
            let version = migrate_schema(&mut conn, &placement.schema).await?;
            conn.close().await.ok();
            Ok(version)
        }
        TenancyModel::Dedicated => {
            let database = placement.database.as_deref().ok_or_else(|| Error::Internal("dedicated without database".into()))?;
            check_identifier(database)?;
            let mut conn = connect(&topology.admin_options(placement)?).await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)").bind(database).fetch_one(&mut conn).await?;
            if !exists {
                // Only the app role may connect (besides the owner), not every role on the cluster.
                conn.execute(format!("CREATE DATABASE {database}").as_str()).await?;
                conn.execute(format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC; GRANT CONNECT ON DATABASE {database} TO tessera_app").as_str())
                    .await?;
            }
            conn.close().await.ok();
            let mut conn = connect(&topology.owner_options(&placement.region, Some(database))?).await?;
            let version = migrate_schema(&mut conn, &placement.schema).await?;
            conn.close().await.ok();
            Ok(version)
        }
    }
}

/// What happens to the fence when a tenant's pooled rows are removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fence {
    /// Leave it sealed: the tenant moved away or was purged, and a request still routed here by
    /// a stale read of the control plane must not write rows nobody will ever read.
    KeepSealed,
    /// Remove it too: the tenant is about to live here (clearing leftovers) or never did.
    Remove,
}

/// Removes a tenant's data from one place: its schema, its database, or its rows in the shared
/// schema. Used by the purge after the retention period, by a move (for the old place), and to
/// undo a half-made tenant. Idempotent.
pub(crate) async fn drop_storage(topology: &Topology, tenant_id: Uuid, placement: &Placement, fence: Fence) -> Result<()> {
    match placement.model {
        TenancyModel::Pooled => {
            let mut conn = connect(&topology.owner_options(&placement.region, None)?).await?;
            let mut tx = conn.begin().await?;
            enter_as_owner(&mut tx, SHARED_SCHEMA, tenant_id).await?;
            // The explicit filter is the real guard; RLS (which an owner with BYPASSRLS would
            // not feel) is the second one.
            for table in tenant_tables(&mut tx, SHARED_SCHEMA).await?.iter().rev() {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1")).bind(tenant_id).execute(&mut *tx).await?;
            }
            match fence {
                Fence::Remove => {
                    sqlx::query("DELETE FROM tenant_fence WHERE tenant_id = $1").bind(tenant_id).execute(&mut *tx).await?;
                }
                Fence::KeepSealed => {
                    sqlx::query(
                        "INSERT INTO tenant_fence (tenant_id, reason) VALUES ($1, 'vacated')
                         ON CONFLICT (tenant_id) DO UPDATE SET reason = 'vacated', sealed_at = now()",
                    )
                    .bind(tenant_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }
        TenancyModel::Schema => {
            check_identifier(&placement.schema)?;
            let mut conn = connect(&topology.owner_options(&placement.region, None)?).await?;
            conn.execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", placement.schema).as_str()).await?;
            Ok(())
        }
        TenancyModel::Dedicated => {
            let database = placement.database.as_deref().ok_or_else(|| Error::Internal("dedicated without database".into()))?;
            check_identifier(database)?;
            topology.forget_dedicated(&placement.region, database);
            let mut conn = connect(&topology.admin_options(placement)?).await?;
            conn.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str()).await?;
            Ok(())
        }
    }
}

/// Points an owner transaction at one tenant's rows in one schema. FORCE row-level security
/// binds the owner too, so the tenant id must be set even for maintenance.
pub(crate) async fn enter_as_owner(conn: &mut PgConnection, schema: &str, tenant_id: Uuid) -> Result<()> {
    check_identifier(schema)?;
    crate::db::set_local(
        conn,
        &[
            (crate::db::Setting::SearchPath(super::SEAL), schema),
            (crate::db::Setting::TenantId(super::SEAL), &tenant_id.to_string()),
            // Restricted projects too: maintenance moves and removes everything.
            (crate::db::Setting::SeesAll(super::SEAL), "on"),
        ],
    )
    .await
}

/// The physical place a placement names: (cluster, database, schema). Two region names may
/// point at the same cluster; comparing this keeps a move from "copying" onto its own source.
pub(crate) async fn physical_place(topology: &Topology, placement: &Placement) -> Result<(String, String, String)> {
    let mut conn = connect(&topology.admin_options(placement)?).await?;
    // The postmaster's start time (to the microsecond) tells clusters apart without needing
    // the superuser-only pg_control_system().
    let (cluster, region_db): (String, String) =
        sqlx::query_as("SELECT pg_postmaster_start_time()::text || '@' || COALESCE(inet_server_port(), 0)::text, current_database()::text")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await.ok();
    Ok((cluster, placement.database.clone().unwrap_or(region_db), placement.schema.clone()))
}

/// Each column of a table as `name type`, in order: both sides of a move must agree exactly.
pub(crate) async fn table_shape(conn: &mut PgConnection, schema: &str, table: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?)
}

/// The tenant tables of a schema (every table with a `tenant_id`, except the fence), parents
/// before children so rows can be inserted in this order.
pub(crate) async fn tenant_tables(conn: &mut PgConnection, schema: &str) -> Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> 'tenant_fence'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          ORDER BY c.relname",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT child.relname::text, parent.relname::text FROM pg_constraint k
           JOIN pg_class child ON child.oid = k.conrelid JOIN pg_class parent ON parent.oid = k.confrelid
           JOIN pg_namespace n ON n.oid = child.relnamespace
          WHERE k.contype = 'f' AND n.nspname = $1 AND child.oid <> parent.oid",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    // Topological order: repeatedly take the tables whose parents are all placed.
    let mut ordered: Vec<String> = Vec::new();
    let mut left = tables;
    while !left.is_empty() {
        let (ready, blocked): (Vec<String>, Vec<String>) =
            left.into_iter().partition(|t| edges.iter().filter(|(child, _)| child == t).all(|(_, parent)| ordered.contains(parent) || parent == t));
        if ready.is_empty() {
            return Err(Error::Internal(format!("foreign keys form a cycle among {blocked:?}")));
        }
        ordered.extend(ready);
        left = blocked;
    }
    Ok(ordered)
}

/// Schema and database names are generated (`t_<hex>`), but they end up in DDL, so check.
pub(crate) fn check_identifier(name: &str) -> Result<()> {
    if !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(())
    } else {
        Err(Error::Internal(format!("refusing to use {name:?} as an SQL identifier")))
    }
}
