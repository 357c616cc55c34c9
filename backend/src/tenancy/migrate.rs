//! Migrating everything: the control plane, every region's shared schema, and every tenant
//! schema and dedicated database, a bounded number at a time.
//!
//! Idempotent and resumable: a tenant's version is recorded in the control plane as soon as
//! its own migration commits, one failing tenant is reported without stopping the rest, and a
//! rerun only touches what is still behind.

use super::placement::{Placement, SHARED_SCHEMA};
use super::provision::{self, control_migrator, latest_tenant_version, migrate_schema};
use super::topology::Topology;
use crate::error::{Error, Result};
use futures_util::stream::{self, StreamExt};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    UpToDate,
    Migrated { from: i64 },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct TenantOutcome {
    pub slug: String,
    pub placement: Placement,
    /// The version the tenant's data is at now.
    pub version: i64,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct Report {
    pub regions: Vec<(String, std::result::Result<i64, String>)>,
    pub tenants: Vec<TenantOutcome>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.regions.iter().filter(|(_, r)| r.is_err()).count() + self.tenants.iter().filter(|t| matches!(t.outcome, Outcome::Failed(_))).count()
    }
}

/// Applies the control-plane migrations (as the schema owner).
pub async fn migrate_control(owner_url: &str) -> Result<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(owner_url).await?;
    control_migrator().run(&pool).await.map_err(|e| {
        let hint = if matches!(e, sqlx::migrate::MigrateError::VersionMismatch(_)) {
            " (a migration file changed after it was applied; a dev database from before 2026-11-28 must be recreated: remove .tessera/)"
        } else {
            ""
        };
        Error::Internal(format!("control-plane migration failed: {e}{hint}"))
    })?;
    pool.close().await;
    Ok(())
}

/// A tenant and the schema version it is at.
#[derive(sqlx::FromRow)]
struct TenantToMigrate {
    id: Uuid,
    slug: String,
    model: String,
    region: String,
    database: Option<String>,
    schema_name: String,
    version: i64,
}

/// Migrates the control plane and then every place tenant data lives. `on_progress(done,
/// total, slug)` is called after each tenant.
pub async fn migrate_all(
    control_owner_url: &str,
    topology: &Topology,
    jobs: usize,
    on_progress: &(dyn Fn(usize, usize, &str) + Sync),
) -> Result<Report> {
    migrate_control(control_owner_url).await?;
    let control = PgPoolOptions::new().max_connections(2).connect(control_owner_url).await?;
    let mut report = Report::default();

    for region in topology.regions() {
        let result = match &region.owner {
            None => Err("no owner connection configured for this region; skipped".to_string()),
            Some(owner) => migrate_region(&control, owner, region.name.as_str()).await.map_err(|e| e.to_string()),
        };
        report.regions.push((region.name.to_string(), result));
    }

    let rows: Vec<TenantToMigrate> = sqlx::query_as(
        "SELECT t.id, t.slug, t.model, t.region, t.database, t.schema_name,
                CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END AS version
           FROM tenants t LEFT JOIN pooled_schemas p ON p.region = t.region
          WHERE t.status <> 'deleted' ORDER BY t.slug",
    )
    .fetch_all(&control)
    .await?;
    let total = rows.len();
    let latest = latest_tenant_version();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<TenantOutcome> = stream::iter(rows)
        .map(|TenantToMigrate { id, slug, model, region, database, schema_name: schema, version }| {
            let control = &control;
            let done = &done;
            async move {
                let placement = match Placement::from_row(&model, region, database, schema) {
                    Ok(p) => p,
                    Err(e) => {
                        let placement = Placement::new(id, tessera_domain::placement::TenancyModel::Pooled, "unknown");
                        return TenantOutcome { slug, placement, version, outcome: Outcome::Failed(e.to_string()) };
                    }
                };
                let outcome = if placement.schema == SHARED_SCHEMA || version >= latest {
                    // Pooled tenants moved with their region's shared schema above.
                    (Outcome::UpToDate, version)
                } else {
                    match migrate_tenant(control, topology, id, &placement).await {
                        Ok(v) => (Outcome::Migrated { from: version }, v),
                        Err(e) => (Outcome::Failed(e.to_string()), version),
                    }
                };
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                on_progress(n, total, &slug);
                TenantOutcome { slug, placement, version: outcome.1, outcome: outcome.0 }
            }
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    report.tenants = outcomes;
    report.tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    control.close().await;
    Ok(report)
}

async fn migrate_region(control: &PgPool, owner: &sqlx::postgres::PgConnectOptions, region: &str) -> Result<i64> {
    let mut conn = provision::connect(owner).await?;
    let version = migrate_schema(&mut conn, SHARED_SCHEMA).await?;
    sqlx::query(
        "INSERT INTO pooled_schemas (region, version) VALUES ($1, $2)
         ON CONFLICT (region) DO UPDATE SET version = excluded.version, migrated_at = now()",
    )
    .bind(region)
    .bind(version)
    .execute(control)
    .await?;
    Ok(version)
}

async fn migrate_tenant(control: &PgPool, topology: &Topology, id: Uuid, placement: &Placement) -> Result<i64> {
    let options = topology.owner_options(&placement.region, placement.database.as_deref())?;
    let mut conn = provision::connect(&options).await?;
    let result = migrate_schema(&mut conn, &placement.schema).await;
    use sqlx::Connection;
    conn.close().await.ok();
    let version = result?;
    sqlx::query("UPDATE tenants SET schema_version = $2 WHERE id = $1 AND schema_name = $3")
        .bind(id)
        .bind(version)
        .bind(&placement.schema)
        .execute(control)
        .await?;
    Ok(version)
}
