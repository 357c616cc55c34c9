//! The job queue: a job exists exactly when the change that caused it committed; it is retried
//! and then kept dead with its error; a worker that dies mid-job (SIGKILL) loses the job only
//! until its lease runs out, and the job's effect still happens once; workers never run a job
//! twice; one organization's flood doesn't hold up another's job; shutdown lets running jobs
//! finish or puts them back; recurring work ticks once across servers; mail goes through it.

mod common;
use common::TestApp;
use sqlx::{Connection, PgConnection};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tessera_backend::jobs::{self, admin, probe::Probe, Lane, WorkerConfig, Workers};
use uuid::Uuid;

fn quick_workers(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(5),
        schedules: false,
    }
}

/// Waits up to `seconds` for `done` to hold.
async fn eventually<F, Fut>(seconds: u64, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < Duration::from_secs(seconds), "not within {seconds} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job(app: &TestApp, id: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT status, attempts, last_error FROM jobs WHERE id = $1").bind(id).fetch_one(&app.inspect).await.unwrap()
}

async fn runs(app: &TestApp, id: Uuid) -> Option<i32> {
    sqlx::query_scalar("SELECT runs FROM job_probes WHERE job_id = $1").bind(id).fetch_optional(&app.inspect).await.unwrap()
}

#[tokio::test]
async fn a_job_exists_exactly_when_the_change_that_caused_it_commits() {
    let app = TestApp::spawn().await;
    let mut conn = PgConnection::connect(&app.app_db_url).await.unwrap();

    let mut rolled_back = conn.begin().await.unwrap();
    let gone = jobs::enqueue(&mut rolled_back, Lane::Deployment, &Probe { hold_ms: 0, fail_attempts: 0 }).await.unwrap();
    rolled_back.rollback().await.unwrap();

    let mut committed = conn.begin().await.unwrap();
    let kept = jobs::enqueue(&mut committed, Lane::Deployment, &Probe { hold_ms: 0, fail_attempts: 0 }).await.unwrap();
    committed.commit().await.unwrap();
    jobs::wake();

    eventually(10, "the committed job runs", || async { runs(&app, kept).await == Some(1) }).await;
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE id = $1").bind(gone).fetch_one(&app.inspect).await.unwrap();
    assert_eq!(found, 0, "a rolled-back change leaves no job");
    assert_eq!(job(&app, kept).await, ("done".to_string(), 1, None));

    // A transaction acting for no organization enqueues only in the deployment's lane.
    let mut tx = conn.begin().await.unwrap();
    let refused = jobs::enqueue(&mut tx, Lane::Organization(Uuid::new_v4()), &Probe { hold_ms: 0, fail_attempts: 0 }).await;
    assert!(refused.is_err(), "another organization's lane is refused by the row policy");
    tx.rollback().await.unwrap();
    // ...and the app role sees no jobs outside the workers' transactions.
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs").fetch_one(&mut conn).await.unwrap();
    assert_eq!(visible, 0);
}

#[tokio::test]
async fn a_failing_job_is_retried_then_kept_dead_with_its_last_error_until_an_operator_retries_it() {
    let app = TestApp::spawn().await;
    let recovers = admin::enqueue_probe(&app.backend, &Probe { hold_ms: 0, fail_attempts: 2 }).await.unwrap();
    let hopeless = admin::enqueue_probe(&app.backend, &Probe { hold_ms: 0, fail_attempts: 50 }).await.unwrap();

    eventually(20, "the probe that fails twice succeeds on its third attempt", || async { runs(&app, recovers).await == Some(1) }).await;
    assert_eq!(job(&app, recovers).await, ("done".to_string(), 3, None));

    eventually(20, "the hopeless probe is dead after its 3 attempts", || async { job(&app, hopeless).await.0 == "dead" }).await;
    let (_, attempts, error) = job(&app, hopeless).await;
    assert_eq!(attempts, 3);
    assert!(error.unwrap().contains("fails attempt 3 on purpose"));
    let dead = admin::dead(&app.backend, 10).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), vec![hopeless]);
    assert!(admin::counts(&app.backend).await.unwrap().iter().any(|c| c.kind == "jobs.probe" && c.status == "dead" && c.jobs == 1));

    // Retried by an operator: its attempts back, so it fails three more times before dying again.
    assert!(admin::retry(&app.backend, hopeless).await.unwrap());
    assert!(!admin::retry(&app.backend, recovers).await.unwrap(), "only dead jobs are retried");
    eventually(20, "the retried job is dead again", || async { job(&app, hopeless).await.0 == "dead" }).await;
    assert_eq!(job(&app, hopeless).await.1, 3, "three attempts again");
    assert!(admin::discard(&app.backend, hopeless).await.unwrap());
    assert!(admin::dead(&app.backend, 10).await.unwrap().is_empty());
}

/// The worker process the way a deployment runs it (`tessera-server worker`), on the test's
/// databases.
fn worker_process(app: &TestApp, lease_secs: u64) -> Child {
    let regions = &app.config.topology.regions;
    let list = |url: &dyn Fn(&tessera_backend::tenancy::topology::RegionConfig) -> String| {
        regions.iter().map(|r| format!("{}={}", r.name, url(r))).collect::<Vec<_>>().join(",")
    };
    Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .arg("worker")
        .env("DATABASE_URL", &app.config.database_url)
        .env("TESSERA_REGIONS", list(&|r| r.app_url.clone()))
        .env("TESSERA_REGION_OWNER_URLS", list(&|r| r.owner_url.clone().unwrap()))
        .env("TESSERA_PGBOUNCER", if app.config.topology.pgbouncer { "1" } else { "0" })
        .env("TESSERA_SECRET_KEY", &app.config.secret_key)
        .env("TESSERA_DATA_DIR", std::env::temp_dir())
        .env("TESSERA_JOB_WORKERS", "1")
        .env("TESSERA_JOB_POLL_MS", "50")
        .env("TESSERA_JOB_LEASE_SECS", lease_secs.to_string())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the server binary runs")
}

#[tokio::test]
async fn a_job_whose_worker_is_killed_runs_again_after_its_lease_and_its_effect_happens_once() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    // It makes its effect, then takes 5 s: the worker is killed in between.
    let id = admin::enqueue_probe(&app.backend, &Probe { hold_ms: 5_000, fail_attempts: 0 }).await.unwrap();
    let mut worker = worker_process(&app, 2);
    eventually(30, "the worker process makes the job's effect", || async { runs(&app, id).await == Some(1) }).await;
    worker.kill().expect("SIGKILL");
    worker.wait().unwrap();
    assert_eq!(job(&app, id).await.0, "running", "nobody told the queue");

    // Another worker takes it once the dead one's lease (2 s) runs out.
    let started = Instant::now();
    let _workers = Workers::start(app.backend.clone(), quick_workers(1)).await.unwrap();
    eventually(30, "the job runs again and is done", || async { job(&app, id).await.0 == "done" }).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the lease ran out");
    assert_eq!(job(&app, id).await.1, 2, "two attempts");
    assert_eq!(runs(&app, id).await, Some(2), "it ran twice, and its effect (one row) happened once");
}

#[tokio::test]
async fn several_workers_never_run_one_job_twice() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts)
         SELECT gen_random_uuid(), 'jobs.probe', 1, '{}', '00000000-0000-0000-0000-000000000000', 3 FROM generate_series(1, 400)
         RETURNING id",
    )
    .fetch_all(&app.inspect)
    .await
    .unwrap();
    // Two "servers" of four workers each.
    let first = Workers::start(app.backend.clone(), quick_workers(4)).await.unwrap();
    let second = Workers::start(app.backend.clone(), quick_workers(4)).await.unwrap();
    eventually(120, "all 400 jobs are done", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'done'").fetch_one(&app.inspect).await.unwrap();
        done == 400
    })
    .await;
    first.shutdown().await;
    second.shutdown().await;
    let (most_runs, most_attempts): (i32, i32) =
        sqlx::query_as("SELECT (SELECT max(runs) FROM job_probes WHERE job_id = ANY($1)), (SELECT max(attempts) FROM jobs WHERE id = ANY($1))")
            .bind(&ids)
            .fetch_one(&app.inspect)
            .await
            .unwrap();
    assert_eq!((most_runs, most_attempts), (1, 1), "each job claimed and run once");
}

#[tokio::test]
async fn one_organizations_flood_does_not_hold_up_another_organizations_job() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let (flooding, other) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts)
         SELECT gen_random_uuid(), 'jobs.probe', 1, '{\"hold_ms\": 5}', $1, 3 FROM generate_series(1, 10000)",
    )
    .bind(flooding)
    .execute(&app.inspect)
    .await
    .unwrap();
    let workers = Workers::start(app.backend.clone(), quick_workers(2)).await.unwrap();
    eventually(30, "the flood is being worked on", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'done'").fetch_one(&app.inspect).await.unwrap();
        done >= 20
    })
    .await;

    let one: Uuid = sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, version, payload, lane, max_attempts) VALUES (gen_random_uuid(), 'jobs.probe', 1, '{}', $1, 3) RETURNING id",
    )
    .bind(other)
    .fetch_one(&app.inspect)
    .await
    .unwrap();
    let enqueued = Instant::now();
    eventually(30, "the other organization's job is done", || async { job(&app, one).await.0 == "done" }).await;
    let waited = enqueued.elapsed();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE lane = $1 AND status = 'queued'").bind(flooding).fetch_one(&app.inspect).await.unwrap();
    drop(workers);
    // The bound: its lane's turn comes after at most one job of the flooding lane per worker
    // and a poll, not after the thousands still queued.
    assert!(left > 9_000, "the flood was still there ({left} queued)");
    assert!(waited < Duration::from_secs(2), "the single job waited {waited:?} behind the flood");
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_the_grace_period_and_puts_back_the_rest() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let quick = admin::enqueue_probe(&app.backend, &Probe { hold_ms: 500, fail_attempts: 0 }).await.unwrap();
    let workers = Workers::start(app.backend.clone(), quick_workers(1)).await.unwrap();
    eventually(10, "the quick job started", || async { runs(&app, quick).await == Some(1) }).await;
    workers.shutdown().await;
    assert_eq!(job(&app, quick).await.0, "done", "finished within the grace period");

    let slow = admin::enqueue_probe(&app.backend, &Probe { hold_ms: 10_000, fail_attempts: 0 }).await.unwrap();
    let workers = Workers::start(app.backend.clone(), WorkerConfig { shutdown_grace: Duration::from_millis(300), ..quick_workers(1) }).await.unwrap();
    eventually(10, "the slow job started", || async { runs(&app, slow).await == Some(1) }).await;
    let stopping = Instant::now();
    workers.shutdown().await;
    assert!(stopping.elapsed() < Duration::from_secs(3), "shutdown waited {:?}", stopping.elapsed());
    let (status, attempts, error) = job(&app, slow).await;
    assert_eq!((status.as_str(), attempts), ("queued", 1), "put back at once, the attempt counted");
    assert!(error.unwrap().contains("shutdown"));
}

#[tokio::test]
async fn recurring_work_is_enqueued_once_per_tick_however_many_servers_run() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let scheduled = |workers| WorkerConfig { schedules: true, ..quick_workers(workers) };
    let first = Workers::start(app.backend.clone(), scheduled(2)).await.unwrap();
    let second = Workers::start(app.backend.clone(), scheduled(2)).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM job_schedules ORDER BY name").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(
        names,
        [
            "audit.prune",
            "billing.reconcile",
            "billing.report_usage",
            "housekeeping.prune",
            "jobs.sweep_outbox",
            "sso.refresh_metadata",
            "tenants.purge",
            "webhooks.prune"
        ]
    );
    // The prune is due now.
    sqlx::query("UPDATE job_schedules SET next_run_at = now() - interval '1 minute' WHERE name = 'housekeeping.prune'")
        .execute(&app.inspect)
        .await
        .unwrap();
    eventually(20, "the tick's job ran", || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'housekeeping.prune' AND status = 'done'")
            .fetch_one(&app.inspect)
            .await
            .unwrap();
        done == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'housekeeping.prune'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(ticks, 1, "one job for the tick, though two servers saw it due");
    let next_in_future: bool =
        sqlx::query_scalar("SELECT next_run_at > now() FROM job_schedules WHERE name = 'housekeeping.prune'").fetch_one(&app.inspect).await.unwrap();
    assert!(next_in_future);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn mail_waits_in_the_queue_sealed_and_a_mail_outage_fails_no_request() {
    // A mail server that hangs up on every connection: every send fails at once. (A port left
    // closed could be taken by another test's server meanwhile, and hang the send instead.)
    let hangs_up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_smtp = hangs_up.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((connection, _)) = hangs_up.accept().await {
            drop(connection);
        }
    });
    let app = TestApp::spawn_with(|c| {
        c.email = tessera_backend::email::EmailConfig::Smtp { url: format!("smtp://{dead_smtp}"), from: "Tessera <no-reply@tessera.test>".into() };
    })
    .await;
    // Signing up works while mail is down (the helper checks the answer).
    app.registered("casey@example.test", common::PASSWORD).await;

    eventually(20, "the confirmation mail's first attempt failed", || async {
        let failed: Option<(i32, Option<String>)> =
            sqlx::query_as("SELECT attempts, last_error FROM jobs WHERE kind = 'mail.send' AND status = 'queued' AND attempts >= 1")
                .fetch_optional(&app.inspect)
                .await
                .unwrap();
        failed.is_some_and(|(_, error)| error.is_some_and(|e| e.contains("sending email")))
    })
    .await;
    let payload: String = sqlx::query_scalar("SELECT payload::text FROM jobs WHERE kind = 'mail.send'").fetch_one(&app.inspect).await.unwrap();
    assert!(!payload.contains("casey@example.test") && !payload.contains("token"), "the mail is sealed in the queue: {payload}");
}
