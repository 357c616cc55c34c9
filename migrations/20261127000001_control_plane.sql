-- Control plane and the pooled tenant data plane.
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

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) BETWEEN 3 AND 40),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now()
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

CREATE TABLE projects (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    created_by   uuid NOT NULL REFERENCES users (id),
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

-- Append-only: the app role may insert and read, never change or remove history.
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

-- Browser sessions (tower-sessions-sqlx-store's layout, created here so the app role needs no DDL).
CREATE SCHEMA tower_sessions;
CREATE TABLE tower_sessions.session (
    id           text PRIMARY KEY NOT NULL,
    data         bytea NOT NULL,
    expiry_date  timestamptz NOT NULL
);
CREATE INDEX session_expiry ON tower_sessions.session (expiry_date);

GRANT USAGE ON SCHEMA public, tower_sessions TO tessera_app;
GRANT SELECT, INSERT, UPDATE ON tenants, users TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON memberships, projects TO tessera_app;
GRANT SELECT, INSERT ON audit_log TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tower_sessions.session TO tessera_app;
GRANT EXECUTE ON FUNCTION app_tenant_id(), app_user_id() TO tessera_app;
