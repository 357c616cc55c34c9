//! The durable job queue: work that must happen after a change commits, survive crashes and
//! restarts, and be retried when it fails (mail, scheduled maintenance, and later webhooks and
//! billing). PostgreSQL is the queue (`migrations/control/…_jobs.sql`); no other server.
//!
//! - **Enqueue with the change** ([`enqueue`]): in the same transaction, so a rolled-back
//!   change leaves no job and a committed one always has its job (an outbox).
//! - **Typed jobs** ([`Job`]): a serde payload with a version, registered once with
//!   [`register_job!`]; the registry, not a hand list, is what workers run.
//! - **Retries** with exponential backoff and jitter, up to the kind's `MAX_ATTEMPTS`, then
//!   `dead` with the last error kept (`tessera-server jobs` lists, retries and discards them).
//! - **Leases**: a running job's worker renews its lease; a job whose worker died (`kill -9`)
//!   is claimed again when the lease runs out, so handlers must be idempotent (each job has a
//!   stable id to deduplicate by).
//! - **Fairness**: workers take lanes (organizations) in turn ([`worker`]).
//! - **Recurring** work ([`schedule`]): one tick per schedule cluster-wide.
//!
//! Crates compared before writing this (2026-12): underway (LISTEN and session advisory locks,
//! which PgBouncer's transaction mode breaks; no fairness), graphile_worker (moved to sqlx 0.9;
//! heavy), sqlxmq (needs LISTEN, no cron, keeps no error), apalis-postgres (release candidate,
//! no fairness), pgmq (an extension; no retries or workers). None fits all four of sqlx 0.8,
//! PgBouncer, per-organization fairness and enqueue in the caller's transaction.

pub mod admin;
pub mod housekeeping;
pub mod probe;
pub mod schedule;
pub mod worker;

use crate::error::{Error, Result};
use crate::Backend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::PgConnection;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use uuid::Uuid;

pub use worker::{wake, WorkerConfig, Workers};

/// Whose turn a job takes: an organization's, or the deployment's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Organization(Uuid),
    Deployment,
}

impl Lane {
    pub(crate) fn id(self) -> Uuid {
        match self {
            Lane::Organization(id) => id,
            Lane::Deployment => Uuid::nil(),
        }
    }
}

/// A kind of job. Its payload is the value itself, stored as JSON; `VERSION` changes when the
/// payload's shape does (a server puts a job of a newer version back for one that knows it,
/// and older payloads must still parse: give new fields serde defaults). Workers only claim
/// kinds their server has, so a new kind waits for a server that knows it.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// Unique, lowercase, dotted: `mail.send`.
    const KIND: &'static str;
    const VERSION: i16 = 1;
    /// Attempts before the job is dead (kept, with its last error, for an operator).
    const MAX_ATTEMPTS: i32 = 8;
    /// How long one attempt may run before it is stopped (and counted as failed).
    const TIMEOUT: Duration = Duration::from_secs(600);
    /// How many of this kind may run at once in one lane (`None`: no limit). For kinds whose
    /// run time an organization controls (a webhook endpoint that answers slowly), so one
    /// organization can't hold every worker and starve the others' jobs, mail included.
    const MAX_RUNNING_PER_LANE: Option<u32> = None;

    /// How long to wait before attempt `attempt + 1`, after `attempt` failed (1-based).
    fn retry_after(attempt: i32) -> Duration {
        backoff(attempt)
    }

    /// Does the work. May run more than once (a worker can die after the work and before
    /// recording it), so it must be idempotent: `job.id` is stable across attempts.
    fn run(self, job: &RunningJob) -> impl Future<Output = Result<()>> + Send;
}

/// What a handler knows about the job it runs, and the services it may use.
pub struct RunningJob {
    pub id: Uuid,
    pub lane: Lane,
    /// 1 on the first attempt.
    pub attempt: i32,
    pub backend: Backend,
}

/// Exponential backoff with "equal jitter": half of `min(1 h, 5 s × 2^(n-1))` fixed, the
/// other half random, so retries after an outage don't all arrive at once.
pub fn backoff(attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 20) as u32 - 1;
    let full = Duration::from_secs(5).saturating_mul(2u32.saturating_pow(exponent)).min(Duration::from_secs(3600));
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Enqueues `job` in `lane` inside the caller's transaction. The row policy allows only the
/// transaction's own lane: its organization's, or the deployment's when it acts for none.
pub async fn enqueue<J: Job>(conn: &mut PgConnection, lane: Lane, job: &J) -> Result<Uuid> {
    enqueue_at(conn, lane, job, None).await
}

/// As [`enqueue`], not to run before `run_at`.
pub async fn enqueue_at<J: Job>(conn: &mut PgConnection, lane: Lane, job: &J, run_at: Option<time::OffsetDateTime>) -> Result<Uuid> {
    let id = Uuid::new_v4();
    insert(conn, id, lane, J::KIND, J::VERSION, J::MAX_ATTEMPTS, serde_json::to_value(job)?, run_at, None).await?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    lane: Lane,
    kind: &str,
    version: i16,
    max_attempts: i32,
    payload: serde_json::Value,
    run_at: Option<time::OffsetDateTime>,
    dedupe_key: Option<&str>,
) -> Result<bool> {
    // ON CONFLICT also checks the row against the SELECT policies (so it can't reveal whether
    // a row exists), which only workers pass: only their inserts (schedules) deduplicate.
    let statement = if dedupe_key.is_some() {
        "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts, run_at, dedupe_key)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()), $8) ON CONFLICT (dedupe_key) DO NOTHING"
    } else {
        "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts, run_at, dedupe_key)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()), $8)"
    };
    let inserted = sqlx::query(statement)
        .bind(id)
        .bind(kind)
        .bind(version)
        .bind(payload)
        .bind(lane.id())
        .bind(max_attempts)
        .bind(run_at)
        .bind(dedupe_key)
        .execute(conn)
        .await?;
    Ok(inserted.rows_affected() == 1)
}

type RunFn = fn(serde_json::Value, RunningJob) -> Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A registered kind: how workers run it. Made by [`register_job!`].
pub struct Handler {
    pub kind: &'static str,
    pub version: i16,
    pub max_attempts: i32,
    pub retry_after: fn(i32) -> Duration,
    pub timeout: Duration,
    pub max_running_per_lane: Option<u32>,
    pub run: RunFn,
}

inventory::collect!(Handler);

impl Handler {
    pub const fn of<J: Job>() -> Handler {
        Handler {
            kind: J::KIND,
            version: J::VERSION,
            max_attempts: J::MAX_ATTEMPTS,
            retry_after: J::retry_after,
            timeout: J::TIMEOUT,
            max_running_per_lane: J::MAX_RUNNING_PER_LANE,
            run: run_erased::<J>,
        }
    }

    pub(crate) fn find(kind: &str) -> Option<&'static Handler> {
        inventory::iter::<Handler>.into_iter().find(|h| h.kind == kind)
    }
}

/// The kinds this server can run.
pub(crate) fn known_kinds() -> Vec<&'static str> {
    inventory::iter::<Handler>.into_iter().map(|h| h.kind).collect()
}

/// The kinds limited per lane, and each one's limit.
pub(crate) fn lane_limits() -> (Vec<&'static str>, Vec<i32>) {
    inventory::iter::<Handler>.into_iter().filter_map(|h| h.max_running_per_lane.map(|n| (h.kind, n as i32))).unzip()
}

fn run_erased<J: Job>(payload: serde_json::Value, job: RunningJob) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> {
    Box::pin(async move {
        let value: J = serde_json::from_value(payload).map_err(|e| Error::Internal(format!("the payload doesn't parse as {}: {e}", J::KIND)))?;
        value.run(&job).await
    })
}

/// Registers a [`Job`] type with the workers: `register_job!(SendMail);` next to its type.
#[macro_export]
macro_rules! register_job {
    ($job:ty) => {
        inventory::submit! { $crate::jobs::Handler::of::<$job>() }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_registered_once_with_a_name_the_table_accepts() {
        let mut kinds: Vec<&str> = inventory::iter::<Handler>.into_iter().map(|h| h.kind).collect();
        assert!(kinds.contains(&"jobs.probe"), "{kinds:?}");
        for kind in &kinds {
            let valid = kind.len() <= 64
                && kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            assert!(valid, "{kind} doesn't match the jobs.kind check");
        }
        let count = kinds.len();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), count, "a kind is registered twice");
    }

    #[test]
    fn backoff_grows_to_an_hour_and_keeps_half_of_each_step_fixed() {
        for attempt in 1..30 {
            let full = Duration::from_secs(5).saturating_mul(2u32.saturating_pow(attempt.min(20) as u32 - 1)).min(Duration::from_secs(3600));
            let wait = backoff(attempt);
            assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait:?} outside {:?}..={full:?}", full / 2);
        }
        assert!(backoff(1) <= Duration::from_secs(5));
        assert!(backoff(40) >= Duration::from_secs(1800));
    }
}
