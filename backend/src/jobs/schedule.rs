//! Recurring work: a job enqueued on a cron schedule (UTC), once per tick across all servers.
//! Each schedule is a row in `job_schedules` with its next tick; whichever server's
//! housekeeping first finds it due moves it on under the row's lock and enqueues the tick's
//! job in the same transaction (with the tick in its dedupe key), so no tick runs twice and
//! none is lost when a server stops. Ticks missed while no server ran are not made up: the
//! next one is computed from now. A tick that comes while the last one's job is still queued
//! or running is skipped, so a schedule's runs never overlap.

use super::{Job, Lane};
use crate::error::{Error, Result};
use crate::Backend;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// A schedule, registered with [`register_schedule!`](crate::register_schedule).
pub struct Recurring {
    /// Unique; also the row's key.
    pub name: &'static str,
    /// Five fields (minute hour day month weekday), UTC: `*/5 * * * *`.
    pub cron: &'static str,
    pub job: fn() -> Scheduled,
}

inventory::collect!(Recurring);

/// The job a tick enqueues, in the deployment's lane.
pub struct Scheduled {
    kind: &'static str,
    version: i16,
    max_attempts: i32,
    payload: serde_json::Value,
}

impl Scheduled {
    pub fn of<J: Job>(job: J) -> Scheduled {
        Scheduled {
            kind: J::KIND,
            version: J::VERSION,
            max_attempts: J::MAX_ATTEMPTS,
            payload: serde_json::to_value(job).expect("a job's payload serializes"),
        }
    }
}

/// Registers recurring work: `register_schedule!("prune", "*/5 * * * *", || Prune);`.
#[macro_export]
macro_rules! register_schedule {
    ($name:literal, $cron:literal, $job:expr) => {
        inventory::submit! { $crate::jobs::schedule::Recurring { name: $name, cron: $cron, job: || $crate::jobs::schedule::Scheduled::of($job) } }
    };
}

fn next_tick(recurring: &Recurring, after: OffsetDateTime) -> Result<OffsetDateTime> {
    let cron = croner::Cron::from_str(recurring.cron).map_err(|e| Error::Internal(format!("schedule {}: {e}", recurring.name)))?;
    let after = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0).ok_or_else(|| Error::Internal("time out of range".into()))?;
    let next = cron.find_next_occurrence(&after, false).map_err(|e| Error::Internal(format!("schedule {}: {e}", recurring.name)))?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).map_err(|e| Error::Internal(e.to_string()))
}

/// Adds the rows of schedules this server knows and the table doesn't yet (at start).
pub(crate) async fn register_all(backend: &Backend) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    for recurring in inventory::iter::<Recurring> {
        sqlx::query("INSERT INTO job_schedules (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(recurring.name)
            .bind(next_tick(recurring, now)?)
            .execute(tx.conn())
            .await?;
    }
    tx.commit(0).await
}

/// Enqueues the job of every schedule that is due and moves it to its next tick. Returns how
/// many were enqueued.
pub(crate) async fn enqueue_due(backend: &Backend) -> Result<u64> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    // Locked, and skipped when another server holds them: that server is enqueuing them.
    let due: Vec<(String, OffsetDateTime)> =
        sqlx::query_as("SELECT name, next_run_at FROM job_schedules WHERE next_run_at <= now() FOR UPDATE SKIP LOCKED").fetch_all(tx.conn()).await?;
    let mut enqueued = 0;
    for (name, tick) in due {
        // A row no longer in the code (a schedule removed) waits for its server to come back.
        let Some(recurring) = inventory::iter::<Recurring>.into_iter().find(|r| r.name == name) else {
            continue;
        };
        let job = (recurring.job)();
        // One at a time: while the last tick's job is queued or running (retrying, say), this
        // tick is skipped, not stacked behind it.
        let busy: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = $1 AND status IN ('queued', 'running') AND dedupe_key LIKE 'schedule:' || $2 || ':%')",
        )
        .bind(job.kind)
        .bind(&name)
        .fetch_one(tx.conn())
        .await?;
        let dedupe = format!("schedule:{name}:{}", tick.unix_timestamp());
        if !busy
            && super::insert(tx.conn(), Uuid::new_v4(), Lane::Deployment, job.kind, job.version, job.max_attempts, job.payload, None, Some(&dedupe))
                .await?
        {
            enqueued += 1;
        }
        sqlx::query("UPDATE job_schedules SET next_run_at = $2 WHERE name = $1")
            .bind(&name)
            .bind(next_tick(recurring, OffsetDateTime::now_utc().max(tick))?)
            .execute(tx.conn())
            .await?;
    }
    tx.commit(0).await?;
    if enqueued > 0 {
        super::wake();
    }
    Ok(enqueued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_has_a_unique_name_and_a_cron_that_parses() {
        let mut names = Vec::new();
        for recurring in inventory::iter::<Recurring> {
            let next = next_tick(recurring, OffsetDateTime::now_utc()).unwrap_or_else(|e| panic!("{e}"));
            let kind = (recurring.job)().kind;
            assert!(super::super::Handler::find(kind).is_some(), "{}: its job kind {kind} isn't registered (register_job!)", recurring.name);
            assert!(next > OffsetDateTime::now_utc(), "{}", recurring.name);
            assert!(!names.contains(&recurring.name), "{} registered twice", recurring.name);
            names.push(recurring.name);
        }
        assert!(!names.is_empty());
    }

    #[test]
    fn the_next_tick_of_every_five_minutes_is_on_the_five_minute_mark() {
        let every_five = Recurring { name: "test", cron: "*/5 * * * *", job: || unreachable!() };
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_123).unwrap();
        let next = next_tick(&every_five, at).unwrap();
        assert_eq!(next.unix_timestamp() % 300, 0);
        assert!(next > at && next - at <= time::Duration::minutes(5));
    }
}
