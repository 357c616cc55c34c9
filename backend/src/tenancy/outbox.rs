//! Jobs enqueued by changes to tenant data. The job queue is in the control plane, which can be
//! another database (or cluster) than the tenant's data, so no single transaction covers both.
//! Instead the change writes its jobs to its own place's `outbox` table in its transaction (a
//! rolled-back change leaves none), and they are moved to the queue after the commit:
//!
//! - at once by the door ([`Tenancy::relay`], in the background so the request doesn't wait);
//! - or, if that didn't happen (the server died in between, the control plane was down), by the
//!   sweeper schedule ([`SweepOutbox`]), which takes rows older than a minute.
//!
//! A moved job keeps its outbox row's id as its own, so moving one twice (relay and sweeper,
//! or a relay whose clean-up failed) makes one job: the second insert finds the id taken.

use super::placement::{Placement, SHARED_SCHEMA};
use super::Tenancy;
use crate::ctx::TenantRef;
use crate::db::Setting;
use crate::error::Result;
use crate::jobs::{Job, Lane, RunningJob};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A job waiting in an outbox.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct OutboxJob {
    id: Uuid,
    kind: String,
    version: i16,
    payload: serde_json::Value,
    max_attempts: i32,
    run_at: Option<OffsetDateTime>,
}

impl OutboxJob {
    pub(crate) fn of<J: Job>(job: &J, run_at: Option<OffsetDateTime>) -> Result<Self> {
        Ok(Self {
            id: Uuid::new_v4(),
            kind: J::KIND.to_string(),
            version: J::VERSION,
            payload: serde_json::to_value(job)?,
            max_attempts: J::MAX_ATTEMPTS,
            run_at,
        })
    }

    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// Writes it to the outbox of the transaction's place (the tenant's, by row policy).
    pub(crate) async fn insert(&self, conn: &mut PgConnection) -> Result<()> {
        sqlx::query("INSERT INTO outbox (id, kind, version, payload, max_attempts, run_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(self.id)
            .bind(&self.kind)
            .bind(self.version)
            .bind(&self.payload)
            .bind(self.max_attempts)
            .bind(self.run_at)
            .execute(conn)
            .await?;
        Ok(())
    }
}

impl Tenancy {
    /// Moves `jobs`, just committed to `tenant`'s outbox, into the job queue, in the background.
    /// A failure is logged and left to the sweeper.
    pub(crate) fn relay(&self, tenant: TenantRef, jobs: Vec<OutboxJob>) {
        if jobs.is_empty() {
            return;
        }
        let tenancy = self.clone();
        tokio::spawn(async move {
            if let Err(e) = tenancy.relay_now(&tenant, &jobs).await {
                tracing::warn!(tenant = %tenant.slug, jobs = jobs.len(), error = %e, "moving jobs from the outbox failed; the sweeper moves them within two minutes");
            }
        });
    }

    async fn relay_now(&self, tenant: &TenantRef, jobs: &[OutboxJob]) -> Result<()> {
        // The organization's own transaction may enqueue in its own lane (the jobs policy).
        let mut control = self.begin_control(tenant.id, false).await?;
        for job in jobs {
            crate::jobs::insert(
                &mut control,
                job.id,
                Lane::Organization(tenant.id),
                &job.kind,
                job.version,
                job.max_attempts,
                job.payload.clone(),
                job.run_at,
                None,
            )
            .await?;
        }
        control.commit().await?;
        crate::jobs::wake();
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
        let mut data = self.begin_data(tenant, super::Sight::Everything, false).await?;
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)").bind(&ids).execute(&mut *data).await?;
        data.commit().await?;
        Ok(())
    }

    /// Every place tenant data lives, by database: each region's shared schema, and the
    /// schemas of tenants with their own schema or database.
    async fn places_by_database(&self) -> Result<Vec<(Placement, Vec<String>)>> {
        let mut databases: BTreeMap<(String, Option<String>), (Placement, Vec<String>)> = BTreeMap::new();
        for region in self.topology.regions() {
            let shared = Placement {
                model: tessera_domain::placement::TenancyModel::Pooled,
                region: region.name.to_string(),
                database: None,
                schema: SHARED_SCHEMA.into(),
            };
            databases.insert((shared.region.clone(), None), (shared, vec![SHARED_SCHEMA.to_string()]));
        }
        let own: Vec<(String, String, Option<String>, String)> = {
            let mut tx = crate::db::open(&self.control, true).await?;
            let rows = sqlx::query_as(
                "SELECT model, region, database, schema_name FROM tenants WHERE model <> 'pooled' AND status IN ('active', 'moving', 'deleting')",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        };
        for (model, region, database, schema) in own {
            let placement = Placement::from_row(&model, region.clone(), database.clone(), schema.clone())?;
            databases.entry((region, database)).or_insert_with(|| (placement, Vec::new())).1.push(schema);
        }
        Ok(databases.into_values().collect())
    }

    /// Moves what the relay left behind in every place tenant data lives (rows older than a
    /// minute, so a relay still under way isn't raced). Returns how many jobs it moved.
    pub async fn sweep_outbox(&self) -> Result<u64> {
        let mut moved = 0;
        let mut failed = Vec::new();
        for (placement, schemas) in &self.places_by_database().await? {
            for chunk in schemas.chunks(200) {
                match self.sweep_schemas(placement, chunk).await {
                    Ok(n) => moved += n,
                    Err(e) => failed.push(format!("{}: {e}", placement.describe())),
                }
            }
        }
        // Every place was tried; a failure fails the tick, so the job queue shows it.
        if !failed.is_empty() {
            return Err(crate::Error::Internal(format!("sweeping outboxes failed ({moved} jobs moved elsewhere): {}", failed.join("; "))));
        }
        Ok(moved)
    }

    /// Moves the leftovers of `schemas`, all in `placement`'s database.
    async fn sweep_schemas(&self, placement: &Placement, schemas: &[String]) -> Result<u64> {
        let pool = self.topology.pool_for(placement)?;
        let mut data = crate::db::begin(&pool, false, &[(Setting::Maintenance, "outbox")]).await?;
        let select = schemas
            .iter()
            .map(|schema| {
                let schema = quote_ident(schema);
                format!(
                    "(SELECT {} AS schema, tenant_id, id, kind, version, payload, max_attempts, run_at FROM {schema}.outbox
                       WHERE created_at < now() - interval '1 minute' ORDER BY created_at LIMIT 500)",
                    crate::db::literal(schema.trim_matches('"'))
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows: Vec<SweptRow> = sqlx::query_as(&select).fetch_all(&mut *data).await?;
        if rows.is_empty() {
            data.commit().await?;
            return Ok(0);
        }
        // As the workers: any organization's lane, and a job already moved stays one job (no row
        // locks needed: two sweeps, or a sweep and a late relay, insert the same ids).
        let mut control = self.maintenance("jobs").await?;
        let mut moved = 0;
        for row in &rows {
            moved += sqlx::query(
                "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts, run_at)
                 VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now())) ON CONFLICT (id) DO NOTHING",
            )
            .bind(row.job.id)
            .bind(&row.job.kind)
            .bind(row.job.version)
            .bind(&row.job.payload)
            .bind(row.tenant_id)
            .bind(row.job.max_attempts)
            .bind(row.job.run_at)
            .execute(control.conn())
            .await?
            .rows_affected();
        }
        control.commit(moved).await?;
        crate::jobs::wake();
        for schema in schemas {
            let ids: Vec<Uuid> = rows.iter().filter(|r| &r.schema == schema).map(|r| r.job.id).collect();
            if !ids.is_empty() {
                sqlx::query(&format!("DELETE FROM {}.outbox WHERE id = ANY($1)", quote_ident(schema))).bind(&ids).execute(&mut *data).await?;
            }
        }
        data.commit().await?;
        Ok(moved)
    }
}

impl Tenancy {
    /// Deletes webhook events older than `days` everywhere (their deliveries and attempts go
    /// with them), except those still being delivered. Returns how many.
    pub(crate) async fn prune_webhook_events(&self, days: i32) -> Result<u64> {
        let mut pruned = 0;
        for (placement, schemas) in &self.places_by_database().await? {
            let pool = self.topology.pool_for(placement)?;
            for schema in schemas {
                let schema = quote_ident(schema);
                let mut tx = crate::db::begin(&pool, false, &[(Setting::Maintenance, "webhooks.prune")]).await?;
                let deleted = sqlx::query(&format!(
                    "DELETE FROM {schema}.webhook_events e WHERE e.occurred_at < now() - make_interval(days => $1)
                        AND NOT EXISTS (SELECT 1 FROM {schema}.webhook_deliveries d WHERE d.event_id = e.id AND d.status IN ('held', 'pending'))"
                ))
                .bind(days)
                .execute(&mut *tx)
                .await;
                match deleted {
                    Ok(done) => {
                        tx.commit().await?;
                        pruned += done.rows_affected();
                    }
                    Err(e) => tracing::warn!(place = %placement.describe(), schema, error = %e, "pruning webhook events failed; tomorrow again"),
                }
            }
        }
        Ok(pruned)
    }
}

#[derive(sqlx::FromRow)]
struct SweptRow {
    schema: String,
    tenant_id: Uuid,
    #[sqlx(flatten)]
    job: OutboxJob,
}

/// Schema names are ours (`shared`, `t_<hex>`); quoted all the same.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The sweeper's tick (every minute).
#[derive(Serialize, Deserialize)]
pub struct SweepOutbox {}

impl Job for SweepOutbox {
    const KIND: &'static str = "jobs.sweep_outbox";
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

    async fn run(self, job: &RunningJob) -> Result<()> {
        let moved = job.backend.tenancy.sweep_outbox().await?;
        if moved > 0 {
            tracing::info!(moved, "moved jobs left in outboxes to the queue");
        }
        Ok(())
    }
}

crate::register_job!(SweepOutbox);
crate::register_schedule!("jobs.sweep_outbox", "* * * * *", SweepOutbox {});
