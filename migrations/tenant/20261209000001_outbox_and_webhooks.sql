-- The outbox: jobs a change to tenant data enqueues, written in the change's own transaction.
-- The job queue lives in the control plane, which may be another database or cluster, so a
-- job can't be inserted there in the same transaction; it waits here, and the door moves it
-- to the queue right after the commit (the job keeps the row's id, so moving it twice makes
-- one job). A server that died in between leaves it here for the sweeper (jobs::outbox).
CREATE TABLE outbox (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL DEFAULT app_tenant_id(),
    kind          text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    version       smallint NOT NULL CHECK (version >= 1),
    payload       jsonb NOT NULL,
    max_attempts  integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    run_at        timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_oldest ON outbox (created_at);

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_in_tenant ON outbox
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
-- The sweeper (`app.maintenance = 'outbox'`) sees every organization's leftovers in a place at
-- once, and only leftovers: rows more than a minute old, which it reads and deletes.
CREATE POLICY outbox_sweeper_reads ON outbox FOR SELECT
    USING (current_setting('app.maintenance', true) = 'outbox' AND created_at < now() - interval '1 minute');
CREATE POLICY outbox_sweeper_deletes ON outbox FOR DELETE
    USING (current_setting('app.maintenance', true) = 'outbox' AND created_at < now() - interval '1 minute');

-- Where an organization's events are sent. The signing secret is sealed with the deployment's
-- key (never stored in clear); after a rotation the previous one signs too until
-- `previous_secret_until`, so receivers can switch without missing a delivery.
CREATE TABLE webhook_endpoints (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL DEFAULT app_tenant_id(),
    url                    text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    description            text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types            text[] NOT NULL CHECK (cardinality(event_types) >= 1),
    enabled                boolean NOT NULL DEFAULT true,
    secret_sealed          bytea NOT NULL,
    previous_secret_sealed bytea,
    previous_secret_until  timestamptz,
    -- When its current run of failures began (cleared by a success; restarted when the last
    -- failure is over a day old, longer than any wait between retries, so quiet days don't
    -- count as failing); past the deployment's limit the endpoint is switched off, and
    -- `disabled_reason` says why.
    failing_since          timestamptz,
    last_failed_at         timestamptz,
    disabled_reason        text CHECK (length(disabled_reason) <= 500),
    created_by             uuid NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_endpoints_in_tenant ON webhook_endpoints (tenant_id, created_at);

-- An event as it is sent: the envelope is fixed when the event happens, so every attempt (and a
-- resend days later) sends the same bytes.
CREATE TABLE webhook_events (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id(),
    type         text NOT NULL CHECK (length(type) <= 64),
    -- What it is about (`project:<id>`): one endpoint's deliveries about one thing go in order.
    resource     text NOT NULL CHECK (length(resource) <= 100),
    payload      text NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_events_recent ON webhook_events (tenant_id, occurred_at);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL DEFAULT app_tenant_id(),
    event_id         uuid NOT NULL,
    endpoint_id      uuid NOT NULL,
    resource         text NOT NULL,
    -- held: waits for an earlier delivery about the same resource to the same endpoint.
    status           text NOT NULL CHECK (status IN ('held', 'pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status      integer,
    last_error       text CHECK (length(last_error) <= 4096),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (endpoint_id, event_id),
    CONSTRAINT webhook_deliveries_event_fk FOREIGN KEY (tenant_id, event_id) REFERENCES webhook_events (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_endpoint_fk FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
-- The endpoint list's counts of the last day.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (tenant_id, endpoint_id, status, finished_at);
CREATE INDEX webhook_deliveries_unfinished ON webhook_deliveries (tenant_id, endpoint_id, resource, created_at)
    WHERE status IN ('held', 'pending');

-- Each attempt: what was sent (headers; the body is the event's) and what came back, the
-- response body cut to 4 KiB.
CREATE TABLE webhook_attempts (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL DEFAULT app_tenant_id(),
    delivery_id       uuid NOT NULL,
    attempted_at      timestamptz NOT NULL,
    duration_ms       integer NOT NULL,
    request_headers   jsonb NOT NULL,
    response_status   integer,
    response_headers  jsonb,
    response_body     text CHECK (length(response_body) <= 4096),
    response_truncated boolean NOT NULL DEFAULT false,
    error             text CHECK (length(error) <= 4096),
    CONSTRAINT webhook_attempts_delivery_fk FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_of_delivery ON webhook_attempts (tenant_id, delivery_id, attempted_at);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_in_tenant ON webhook_endpoints USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_events_in_tenant ON webhook_events USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Events (with their deliveries and attempts, by cascade) are kept 30 days. The pruning job
-- (`app.maintenance = 'webhooks.prune'`) sees every organization's in a place at once, and only
-- what it may remove: events past 30 days, and which deliveries are still unfinished.
CREATE POLICY webhook_events_pruned_reads ON webhook_events FOR SELECT
    USING (current_setting('app.maintenance', true) = 'webhooks.prune' AND occurred_at < now() - interval '30 days');
CREATE POLICY webhook_events_pruned ON webhook_events FOR DELETE
    USING (current_setting('app.maintenance', true) = 'webhooks.prune' AND occurred_at < now() - interval '30 days');
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_in_tenant ON webhook_deliveries USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY webhook_deliveries_unfinished_for_pruning ON webhook_deliveries FOR SELECT
    USING (current_setting('app.maintenance', true) = 'webhooks.prune' AND status IN ('held', 'pending'));
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_attempts_in_tenant ON webhook_attempts USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

GRANT SELECT, INSERT, DELETE ON outbox TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_events, webhook_deliveries, webhook_attempts TO tessera_app;
