-- Tenant data. These migrations run once per place tenant data lives: each region's `shared`
-- schema (pooled tenants), each `t_<id>` schema, and each dedicated database. The migrator sets
-- search_path to the target schema, so every name below is unqualified on purpose. The SQL is
-- identical in all three models, and every table keeps `tenant_id` with row-level security on:
-- in a tenant's own schema or database RLS is the second wall, not the only one.
--
-- No foreign keys point outside this set: users and tenants live in the control plane, which
-- may be another database or another cluster entirely.

CREATE FUNCTION app_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

-- A row here means "this tenant's data in this place is sealed": a move is copying it elsewhere
-- (or has copied it), so writes must stop. Written only by the owner role during a move.
CREATE TABLE tenant_fence (
    tenant_id  uuid PRIMARY KEY DEFAULT app_tenant_id(),
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    reason     text NOT NULL
);
ALTER TABLE tenant_fence ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_fence FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_fence_in_tenant ON tenant_fence
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX projects_name_unique ON projects (tenant_id, lower(name));
CREATE INDEX projects_recent ON projects (tenant_id, created_at DESC);

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_in_tenant ON projects
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

-- The tenant's own history (changes to its data). Append-only for the app role.
CREATE TABLE audit_log (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id(),
    actor_id     uuid,
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

GRANT SELECT ON tenant_fence TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects TO tessera_app;
GRANT SELECT, INSERT ON audit_log TO tessera_app;
GRANT EXECUTE ON FUNCTION app_tenant_id() TO tessera_app;
