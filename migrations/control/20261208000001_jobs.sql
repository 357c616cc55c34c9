-- The durable job queue (backend/src/jobs). A job is enqueued in the transaction of the change
-- that causes it, so a rolled-back change leaves no job and a committed one always has its job.
-- Workers claim jobs with FOR UPDATE SKIP LOCKED, one statement per claim (PgBouncer's
-- transaction mode is fine), and hold a lease they renew while the job runs: a job whose worker
-- died is claimed again once its lease runs out.
CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    -- The payload's shape; a worker puts a newer one back for a server that knows it.
    version      smallint NOT NULL CHECK (version >= 1),
    payload      jsonb NOT NULL,
    -- Whose turn it is: the organization the job works for, or the nil uuid for the
    -- deployment's own work. Workers take lanes in turn, so one organization's 100,000 jobs
    -- don't hold up another's one.
    lane         uuid NOT NULL,
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'dead')),
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    -- The running attempt's: only the worker holding the token may finish it.
    lease_token  uuid,
    lease_until  timestamptz,
    last_error   text CHECK (length(last_error) <= 2000),
    -- Enqueuing the same key twice makes one job (a schedule's tick, say).
    dedupe_key   text UNIQUE CHECK (length(dedupe_key) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK ((status = 'running') = (lease_token IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX jobs_ready ON jobs (lane, run_at, id) WHERE status = 'queued';
-- A schedule's next tick waits while its last one is still queued or running.
CREATE INDEX jobs_active_by_kind ON jobs (kind) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status = 'done';
CREATE INDEX jobs_dead ON jobs (finished_at DESC) WHERE status = 'dead';

-- Recurring work: each row is due at `next_run_at`; the server that moves it on (under its row
-- lock) enqueues that tick's job, so a tick runs once however many servers there are.
CREATE TABLE job_schedules (
    name        text PRIMARY KEY,
    next_run_at timestamptz NOT NULL
);

-- A transaction may enqueue only in its own lane: an organization's in its own, anything else
-- in the deployment's. Only the workers (`app.maintenance = 'jobs'`) see jobs and schedules.
CREATE FUNCTION app_jobs() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT current_setting('app.maintenance', true) = 'jobs' $$;

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_enqueue ON jobs FOR INSERT
    WITH CHECK (app_jobs() OR (lane = COALESCE(app_tenant_id(), '00000000-0000-0000-0000-000000000000'::uuid)
                               AND status = 'queued' AND attempts = 0 AND lease_token IS NULL AND dedupe_key IS NULL));
CREATE POLICY jobs_workers ON jobs USING (app_jobs()) WITH CHECK (app_jobs());
ALTER TABLE job_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_schedules_workers ON job_schedules USING (app_jobs()) WITH CHECK (app_jobs());

-- What `tessera-server jobs check` enqueues: the probe job records that it ran, once per job
-- however often it is run, counting the runs (see jobs::probe).
CREATE TABLE job_probes (
    job_id  uuid PRIMARY KEY,
    ran_at  timestamptz NOT NULL DEFAULT now(),
    runs    integer NOT NULL DEFAULT 1
);
ALTER TABLE job_probes ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_probes_workers ON job_probes USING (app_jobs()) WITH CHECK (app_jobs());

GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_schedules, job_probes TO tessera_app;
