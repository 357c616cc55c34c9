-- The control plane: tenants and where their data lives, users, memberships, sessions.
-- Tenant data (projects, its audit trail, ...) is in migrations/tenant, applied to every place
-- tenant data can live.
--
-- Migrations run as the owner role. The application connects as `tessera_app`, which owns no
-- table and cannot bypass row-level security, so the policies below bind it even if a query
-- forgets its WHERE clause.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tessera_app') THEN
        CREATE ROLE tessera_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;

-- The tenant and user the current transaction acts for. Set only with set_config(.., true), so
-- the value dies with the transaction and nothing leaks across pooled connections.
CREATE FUNCTION app_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;

-- Every tenant, and where its data lives. `model` is how it is isolated; `region` names the
-- PostgreSQL cluster (from configuration) holding its data; `database` is set for a dedicated
-- tenant; `schema_name` is `shared` for pooled tenants and `t_<id>` otherwise. The door reads
-- this row on every request, so moving a tenant is one UPDATE away from taking effect.
CREATE TABLE tenants (
    id              uuid PRIMARY KEY,
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 40),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'suspended', 'moving', 'deleting', 'purging', 'deleted')),
    model           text NOT NULL DEFAULT 'pooled' CHECK (model IN ('pooled', 'schema', 'dedicated')),
    region          text NOT NULL CHECK (region ~ '^[a-z][a-z0-9-]{1,30}$'),
    database        text CHECK (database ~ '^[a-z0-9_]{1,63}$'),
    schema_name     text NOT NULL DEFAULT 'shared' CHECK (schema_name ~ '^[a-z0-9_]{1,63}$'),
    -- Tenant migrations applied to a schema/dedicated tenant's own tables (pooled tenants
    -- follow their region's shared schema, in pooled_schemas).
    schema_version  bigint NOT NULL DEFAULT 0,
    delete_after    timestamptz,
    -- When a purge claimed it (status 'purging'); a stale claim is retried.
    purge_claimed_at timestamptz,
    deleted_at      timestamptz,
    -- While 'moving': where to, so an interrupted move can be aborted (`move --abort`).
    moving_to_model  text CHECK (moving_to_model IN ('pooled', 'schema', 'dedicated')),
    moving_to_region text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((model = 'dedicated') = (database IS NOT NULL)),
    CHECK ((model = 'pooled') = (schema_name = 'shared')),
    CHECK ((status = 'deleting') <= (delete_after IS NOT NULL)),
    CHECK ((status = 'moving') = (moving_to_model IS NOT NULL AND moving_to_region IS NOT NULL))
);
CREATE INDEX tenants_to_purge ON tenants (delete_after) WHERE status = 'deleting';

-- The tenant-migration version of each region's shared (pooled) schema.
CREATE TABLE pooled_schemas (
    region      text PRIMARY KEY,
    version     bigint NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    display_name   text,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
-- Inside a tenant: the tenant's whole team.
CREATE POLICY memberships_in_tenant ON memberships
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
-- Outside any tenant: a user may read their own memberships (the tenant switcher).
CREATE POLICY memberships_of_user ON memberships FOR SELECT
    USING (user_id = app_user_id());

-- Control-plane history: tenant lifecycle (creation, moves, deletion) and team changes. It
-- lives here, not with the tenant's data, because it must outlive that data (a purge is
-- recorded after the tenant's own tables are gone) and sits in the same transaction as the
-- membership change it records. Append-only for the app role.
CREATE TABLE audit_log (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    actor_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    changes      jsonb NOT NULL DEFAULT '{}',
    ip           inet,
    user_agent   text,
    request_id   text,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_recent ON audit_log (tenant_id, occurred_at DESC);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_in_tenant ON audit_log
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

-- Browser sessions (tower-sessions records, stored by backend::sessions).
CREATE TABLE sessions (
    id          text PRIMARY KEY,
    data        bytea NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

GRANT USAGE ON SCHEMA public TO tessera_app;
GRANT SELECT, INSERT, UPDATE ON tenants, users TO tessera_app;
GRANT SELECT ON pooled_schemas TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON memberships TO tessera_app;
GRANT SELECT, INSERT ON audit_log TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO tessera_app;
GRANT EXECUTE ON FUNCTION app_tenant_id(), app_user_id() TO tessera_app;
