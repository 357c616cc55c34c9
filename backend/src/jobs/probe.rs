//! The probe: a job that proves the queue works end to end (`tessera-server jobs check`
//! enqueues one and waits for it). Its effect is a row keyed by the job's id, made once however
//! often the job runs (it also counts the runs): how tests see an idempotent handler's effect
//! happen once across retries and crashes.

use super::{Job, RunningJob};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
pub struct Probe {
    /// How long it takes after recording its effect (tests stop a worker in between, so the
    /// job runs again with its effect already made).
    #[serde(default)]
    pub hold_ms: u64,
    /// Fail this many attempts first (tests of retries and dead jobs).
    #[serde(default)]
    pub fail_attempts: i32,
}

impl Job for Probe {
    const KIND: &'static str = "jobs.probe";
    const MAX_ATTEMPTS: i32 = 3;

    /// Quick retries: the probe is for checking the queue, not for waiting on it.
    fn retry_after(_attempt: i32) -> Duration {
        Duration::from_millis(200)
    }

    async fn run(self, job: &RunningJob) -> Result<()> {
        if job.attempt <= self.fail_attempts {
            return Err(Error::Internal(format!("the probe fails attempt {} on purpose", job.attempt)));
        }
        let mut tx = job.backend.tenancy.maintenance("jobs").await?;
        sqlx::query("INSERT INTO job_probes (job_id) VALUES ($1) ON CONFLICT (job_id) DO UPDATE SET runs = job_probes.runs + 1")
            .bind(job.id)
            .execute(tx.conn())
            .await?;
        tx.commit(0).await?;
        tokio::time::sleep(Duration::from_millis(self.hold_ms.min(600_000))).await;
        Ok(())
    }
}

crate::register_job!(Probe);
