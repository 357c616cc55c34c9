//! What an operator sees and does with the queue (`tessera-server jobs`); the back office will
//! use the same queries.

use crate::error::Result;
use crate::Backend;
use time::OffsetDateTime;
use uuid::Uuid;

/// How many jobs of a kind are in a state.
#[derive(Debug, sqlx::FromRow)]
pub struct Count {
    pub kind: String,
    pub status: String,
    pub jobs: i64,
}

/// A job out of attempts, with what went wrong last.
#[derive(Debug, sqlx::FromRow)]
pub struct DeadJob {
    pub id: Uuid,
    pub kind: String,
    pub lane: Uuid,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub finished_at: Option<OffsetDateTime>,
}

pub async fn counts(backend: &Backend) -> Result<Vec<Count>> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let counts =
        sqlx::query_as("SELECT kind, status, count(*) AS jobs FROM jobs GROUP BY kind, status ORDER BY kind, status").fetch_all(tx.conn()).await?;
    tx.commit(0).await?;
    Ok(counts)
}

/// The most recently dead jobs, newest first.
pub async fn dead(backend: &Backend, limit: i64) -> Result<Vec<DeadJob>> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let dead = sqlx::query_as(
        "SELECT id, kind, lane, attempts, last_error, finished_at FROM jobs WHERE status = 'dead' ORDER BY finished_at DESC NULLS LAST LIMIT $1",
    )
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    tx.commit(0).await?;
    Ok(dead)
}

/// Gives a dead job its attempts back and queues it now. False if no dead job has that id.
pub async fn retry(backend: &Backend, id: Uuid) -> Result<bool> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let retried =
        sqlx::query("UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), finished_at = NULL WHERE id = $1 AND status = 'dead'")
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
    tx.commit(retried).await?;
    super::wake();
    Ok(retried == 1)
}

/// Removes a dead job for good. False if no dead job has that id.
pub async fn discard(backend: &Backend, id: Uuid) -> Result<bool> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let discarded = sqlx::query("DELETE FROM jobs WHERE id = $1 AND status = 'dead'").bind(id).execute(tx.conn()).await?.rows_affected();
    tx.commit(discarded).await?;
    Ok(discarded == 1)
}

/// Whether a probe job has run (its effect is recorded).
pub async fn probe_ran(backend: &Backend, id: Uuid) -> Result<bool> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let ran: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM job_probes WHERE job_id = $1)").bind(id).fetch_one(tx.conn()).await?;
    tx.commit(0).await?;
    Ok(ran)
}

/// Enqueues a probe in the deployment's lane (`tessera-server jobs check`).
pub async fn enqueue_probe(backend: &Backend, probe: &super::probe::Probe) -> Result<Uuid> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let id = super::enqueue(tx.conn(), super::Lane::Deployment, probe).await?;
    tx.commit(0).await?;
    super::wake();
    Ok(id)
}

/// Forgets finished jobs after a day and dead ones after 30 (recurring, see `Prune`).
pub(crate) async fn prune(backend: &Backend) -> Result<u64> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let pruned = sqlx::query(
        "DELETE FROM jobs WHERE (status = 'done' AND finished_at < now() - interval '1 day')
                             OR (status = 'dead' AND finished_at < now() - interval '30 days')",
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    let probes = sqlx::query("DELETE FROM job_probes WHERE ran_at < now() - interval '1 day'").execute(tx.conn()).await?.rows_affected();
    tx.commit(pruned + probes).await?;
    Ok(pruned)
}
