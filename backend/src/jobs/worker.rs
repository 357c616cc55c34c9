//! Workers: claim a job, run it while renewing its lease, record how it went.
//!
//! **Fairness.** Each worker remembers the lane (organization) it served last and claims next
//! from the first lane after it that has a job ready, wrapping around: lanes take turns, one
//! job each. A lane with 100,000 ready jobs and a lane with one are served alike, so the one
//! job waits at most one turn of the lanes that have work, not behind the 100,000. Within a
//! lane, jobs run in `run_at` order.
//!
//! **Waking.** Workers poll (every `poll_interval` when idle, with jitter): PgBouncer in
//! transaction mode can't hold a LISTEN, and one short statement per idle worker per poll is
//! cheap. A job enqueued by this process wakes its workers at once ([`super::wake`]).

use super::{Handler, Lane, RunningJob};
use crate::error::Result;
use crate::Backend;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Jobs run at once in this process; 0 runs none (another process runs the workers).
    pub workers: usize,
    /// How often an idle worker looks for work.
    pub poll_interval: Duration,
    /// How long a claim holds without renewal: a job whose worker died is claimed again after
    /// at most this long. Renewed every third of it while the job runs.
    pub lease: Duration,
    /// On shutdown, how long running jobs may take to finish before they are put back.
    pub shutdown_grace: Duration,
    /// Whether this process enqueues recurring work when due (tests that don't want a tick
    /// landing mid-test switch it off).
    pub schedules: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(20),
            schedules: true,
        }
    }
}

/// This process's workers, with the scheduler and the lease reaper beside them.
pub struct Workers {
    stop_claiming: watch::Sender<bool>,
    stop_running: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

/// Wakes this process's idle workers (after committing a transaction that enqueued).
static WAKE: Notify = Notify::const_new();

/// Tells this process's idle workers there is work now, rather than at their next poll.
pub fn wake() {
    WAKE.notify_waiters();
}

impl Workers {
    /// Starts `config.workers` workers (none if 0), the recurring-work scheduler and the
    /// lease reaper.
    pub async fn start(backend: Backend, config: WorkerConfig) -> Result<Workers> {
        let (stop_claiming, claiming) = watch::channel(false);
        let (stop_running, running) = watch::channel(false);
        let mut tasks = Vec::new();
        let grace = config.shutdown_grace;
        if config.workers > 0 {
            if config.schedules {
                super::schedule::register_all(&backend).await?;
            }
            let config = Arc::new(config);
            for _ in 0..config.workers {
                tasks.push(tokio::spawn(work(backend.clone(), config.clone(), claiming.clone(), running.clone())));
            }
            tasks.push(tokio::spawn(keep_house(backend, config, claiming)));
        }
        Ok(Workers { stop_claiming, stop_running, tasks, grace })
    }

    /// Stops claiming; waits up to the grace period for running jobs, then stops the rest and
    /// puts them back in the queue (the attempt counts) and returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop_claiming.send(true);
        wake();
        let mut tasks = std::mem::take(&mut self.tasks);
        let finished = tokio::time::timeout(self.grace, async {
            for task in &mut tasks {
                let _ = task.await;
            }
        })
        .await;
        if finished.is_err() {
            let _ = self.stop_running.send(true);
            for task in tasks.into_iter().filter(|task| !task.is_finished()) {
                let _ = task.await;
            }
        }
    }
}

/// Dropped without `shutdown` (a test ending): stop at once; running jobs are abandoned and
/// come back when their lease runs out.
impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop_claiming.send(true);
        let _ = self.stop_running.send(true);
    }
}

/// One worker: claim, run, record, until told to stop.
async fn work(backend: Backend, config: Arc<WorkerConfig>, mut claiming: watch::Receiver<bool>, running: watch::Receiver<bool>) {
    let mut after_lane = Uuid::nil();
    let mut busy_lanes = 0;
    while !*claiming.borrow() {
        match claim(&backend, &mut after_lane, config.lease).await {
            Ok(Claim::Job(job)) => {
                busy_lanes = 0;
                run(&backend, &config, job, running.clone()).await;
            }
            // Its ready jobs were being claimed by others: try the next lane now.
            Ok(Claim::LaneBusy) if busy_lanes < 8 => busy_lanes += 1,
            Ok(_) => {
                busy_lanes = 0;
                idle(&config, &mut claiming).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job");
                idle(&config, &mut claiming).await;
            }
        }
    }
}

async fn idle(config: &WorkerConfig, claiming: &mut watch::Receiver<bool>) {
    let jitter = config.poll_interval.mul_f64(rand::random::<f64>() * 0.5);
    tokio::select! {
        _ = tokio::time::sleep(config.poll_interval + jitter) => {}
        _ = WAKE.notified() => {}
        _ = claiming.changed() => {}
    }
}

/// A claimed job, as its row says.
#[derive(sqlx::FromRow)]
pub(crate) struct Claimed {
    id: Uuid,
    kind: String,
    version: i16,
    payload: serde_json::Value,
    lane: Uuid,
    attempts: i32,
    lease_token: Uuid,
}

enum Claim {
    Job(Claimed),
    /// A lane had ready jobs, but others claimed them first.
    LaneBusy,
    Empty,
}

/// Claims the oldest ready job of the next lane after `after_lane` that has one.
async fn claim(backend: &Backend, after_lane: &mut Uuid, lease: Duration) -> Result<Claim> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    // Only kinds this server has: during a rolling deploy, a new kind waits for a new server.
    let kinds = super::known_kinds();
    let (limited, limits) = super::lane_limits();
    let next: Option<Uuid> = sqlx::query_scalar(
        "(SELECT lane FROM jobs WHERE status = 'queued' AND run_at <= now() AND lane > $1 AND kind = ANY($2) ORDER BY lane LIMIT 1)
         UNION ALL
         (SELECT lane FROM jobs WHERE status = 'queued' AND run_at <= now() AND kind = ANY($2) ORDER BY lane LIMIT 1)
         LIMIT 1",
    )
    .bind(*after_lane)
    .bind(&kinds)
    .fetch_optional(tx.conn())
    .await?;
    let Some(lane) = next else {
        tx.commit(0).await?;
        return Ok(Claim::Empty);
    };
    *after_lane = lane;
    // Kinds limited per lane that are at their limit here wait. Claims in the lane take its lock
    // first and count after it (a statement of their own, so its snapshot sees the last claim's
    // commit): two claims can't both see room for one more.
    let mut runnable = kinds;
    if !limited.is_empty() {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('jobs.lane:' || $1::text, 0))").bind(lane).execute(tx.conn()).await?;
        let full: Vec<String> = sqlx::query_scalar(
            "SELECT l.kind FROM unnest($2::text[], $3::int[]) AS l(kind, most)
              WHERE (SELECT count(*) FROM jobs r WHERE r.lane = $1 AND r.kind = l.kind AND r.status = 'running') >= l.most",
        )
        .bind(lane)
        .bind(&limited)
        .bind(&limits)
        .fetch_all(tx.conn())
        .await?;
        runnable.retain(|kind| !full.iter().any(|f| f == kind));
    }
    let claimed: Option<Claimed> = sqlx::query_as(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_token = $2,
                         lease_until = now() + make_interval(secs => $3)
          WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND lane = $1 AND run_at <= now() AND kind = ANY($4)
                       ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING id, kind, version, payload, lane, attempts, lease_token",
    )
    .bind(lane)
    .bind(Uuid::new_v4())
    .bind(lease.as_secs_f64())
    .bind(&runnable)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit(0).await?;
    Ok(claimed.map_or(Claim::LaneBusy, Claim::Job))
}

/// How a run ended, when it didn't end by itself.
enum Stopped {
    /// The worker is shutting down: the job goes back in the queue.
    ShuttingDown,
    /// The lease couldn't be renewed in time (or another worker holds the job now): whatever
    /// this run does is no longer recorded, so it stops.
    LostLease,
    /// It ran past its kind's time limit.
    TimedOut,
}

/// Runs a claimed job, renewing its lease, and records the outcome.
async fn run(backend: &Backend, config: &WorkerConfig, job: Claimed, mut running: watch::Receiver<bool>) {
    // Claims only take kinds this server has (see `claim`); a newer payload than it knows
    // goes back for a newer server, the attempt not counted.
    let Some(handler) = Handler::find(&job.kind) else { return };
    if job.version > handler.version {
        tracing::warn!(job = %job.id, kind = %job.kind, version = job.version, "a job's payload is newer than this server knows; left for another");
        let put_back = "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = now() + interval '30 seconds',
                               lease_token = NULL, lease_until = NULL WHERE id = $1 AND lease_token = $2";
        let _ = finish(backend, &job, put_back).await;
        return;
    }
    let lane = if job.lane.is_nil() { Lane::Deployment } else { Lane::Organization(job.lane) };
    let running_job = RunningJob { id: job.id, lane, attempt: job.attempts, backend: backend.clone() };
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts);
    let mut task = tokio::spawn(tracing::Instrument::instrument((handler.run)(job.payload.clone(), running_job), span));
    let mut renew = tokio::time::interval(config.lease / 3);
    renew.tick().await;
    let mut renewed = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(handler.timeout);
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            outcome = &mut task => break Ok(outcome),
            _ = renew.tick() => {
                // Bounded: a renewal stuck on a stalled connection must not outlast the lease.
                let asked = tokio::time::Instant::now();
                let left = config.lease.saturating_sub(renewed.elapsed()).saturating_sub(config.lease / 6);
                match tokio::time::timeout(left, renew_lease(backend, &job, config.lease)).await {
                    Ok(Ok(true)) => renewed = asked,
                    Ok(Ok(false)) => break Err(Stopped::LostLease),
                    // Out of reach for now: fine until the lease would run out.
                    Ok(Err(e)) if renewed.elapsed() + config.lease / 3 < config.lease => {
                        tracing::warn!(job = %job.id, error = %e, "could not renew a job's lease; trying again");
                    }
                    Ok(Err(_)) | Err(_) => break Err(Stopped::LostLease),
                }
            }
            _ = &mut deadline => break Err(Stopped::TimedOut),
            _ = running.changed() => break Err(Stopped::ShuttingDown),
        }
    };
    if outcome.is_err() {
        // Stopped here, and waited for: nothing of this run happens after it is recorded.
        task.abort();
        let _ = (&mut task).await;
    }
    match outcome {
        Ok(Ok(Ok(()))) => {
            let done = "UPDATE jobs SET status = 'done', finished_at = now(), last_error = NULL, lease_token = NULL, lease_until = NULL
                         WHERE id = $1 AND lease_token = $2";
            match finish(backend, &job, done).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(job = %job.id, kind = %job.kind, "a job finished after its lease was taken over; the other run counts"),
                Err(e) => tracing::error!(job = %job.id, error = %e, "a job ran but could not be marked done; it runs again when its lease runs out"),
            }
        }
        Ok(Ok(Err(e))) => record_failure(backend, &job, Some(handler), &e.to_string()).await,
        Ok(Err(joined)) => {
            let error = if joined.is_panic() { "The handler panicked.".to_string() } else { format!("The handler stopped: {joined}") };
            record_failure(backend, &job, Some(handler), &error).await;
        }
        Err(Stopped::TimedOut) => {
            let error = format!("It ran longer than its limit of {} s and was stopped.", handler.timeout.as_secs());
            record_failure(backend, &job, Some(handler), &error).await;
        }
        Err(Stopped::LostLease) => {
            tracing::warn!(job = %job.id, kind = %job.kind, "lost a job's lease (the database was out of reach too long); stopped it, it runs again")
        }
        // Back in the queue now rather than when the lease runs out. The attempt counts: a
        // job that never finishes within the grace period must still end up dead.
        Err(Stopped::ShuttingDown) => {
            let put_back = "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                                   finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                                   last_error = 'Stopped by a shutdown before it finished.', lease_token = NULL, lease_until = NULL
                             WHERE id = $1 AND lease_token = $2";
            if let Err(e) = finish(backend, &job, put_back).await {
                tracing::warn!(job = %job.id, error = %e, "could not put a job back on shutdown; it runs again when its lease runs out");
            }
        }
    }
}

/// Runs `statement` on the job if this worker still holds it; whether it did.
async fn finish(backend: &Backend, job: &Claimed, statement: &str) -> Result<bool> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let held = sqlx::query(statement).bind(job.id).bind(job.lease_token).execute(tx.conn()).await?.rows_affected() == 1;
    tx.commit(0).await?;
    Ok(held)
}

/// Extends the lease; false if this worker no longer holds the job.
async fn renew_lease(backend: &Backend, job: &Claimed, lease: Duration) -> Result<bool> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let held =
        sqlx::query("UPDATE jobs SET lease_until = now() + make_interval(secs => $3) WHERE id = $1 AND lease_token = $2 AND status = 'running'")
            .bind(job.id)
            .bind(job.lease_token)
            .bind(lease.as_secs_f64())
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1;
    tx.commit(0).await?;
    Ok(held)
}

/// A failed attempt: retried after the kind's backoff, or dead once out of attempts.
async fn record_failure(backend: &Backend, job: &Claimed, handler: Option<&Handler>, error: &str) {
    let retry_after = handler.map_or_else(|| super::backoff(job.attempts), |h| (h.retry_after)(job.attempts));
    let recorded = async {
        let mut tx = backend.tenancy.maintenance("jobs").await?;
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                             finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                             run_at = now() + make_interval(secs => $3), last_error = left($4, 2000),
                             lease_token = NULL, lease_until = NULL
              WHERE id = $1 AND lease_token = $2 RETURNING status",
        )
        .bind(job.id)
        .bind(job.lease_token)
        .bind(retry_after.as_secs_f64())
        .bind(error)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit(0).await?;
        Ok::<_, crate::Error>(status)
    };
    match recorded.await {
        Ok(Some(status)) if status == "dead" => {
            tracing::error!(job = %job.id, kind = %job.kind, attempts = job.attempts, error, "a job failed for the last time")
        }
        Ok(Some(_)) => {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error, retry_in = ?retry_after, "a job failed; it will be retried")
        }
        Ok(None) => tracing::warn!(job = %job.id, kind = %job.kind, error, "a job failed after its lease was taken over; the other run counts"),
        Err(e) => tracing::error!(job = %job.id, error = %e, "could not record a job's failure; it runs again when its lease runs out"),
    }
}

/// Every few seconds: jobs whose lease ran out go back in the queue (their worker died), and
/// recurring work that is due is enqueued.
async fn keep_house(backend: Backend, config: Arc<WorkerConfig>, mut claiming: watch::Receiver<bool>) {
    let every = (config.lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
    while !*claiming.borrow() {
        if let Err(e) = reclaim_expired_leases(&backend).await {
            tracing::warn!(error = %e, "could not reclaim expired job leases");
        }
        if config.schedules {
            if let Err(e) = super::schedule::enqueue_due(&backend).await {
                tracing::warn!(error = %e, "could not enqueue recurring jobs");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = claiming.changed() => {}
        }
    }
}

/// Jobs whose worker stopped renewing their lease: an attempt spent, retried now (or dead).
pub(crate) async fn reclaim_expired_leases(backend: &Backend) -> Result<u64> {
    let mut tx = backend.tenancy.maintenance("jobs").await?;
    let reclaimed = sqlx::query(
        "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                         finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                         -- Backed off, as any failure: a job that crashes its worker mustn't take
                         -- down the next one at once.
                         run_at = now() + make_interval(secs => least(3600, 5 * 2 ^ least(attempts - 1, 20))),
                         lease_token = NULL, lease_until = NULL,
                         last_error = 'Its worker stopped while running it (the lease ran out).'
          WHERE status = 'running' AND lease_until < now()",
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit(reclaimed).await?;
    if reclaimed > 0 {
        wake();
    }
    Ok(reclaimed)
}
