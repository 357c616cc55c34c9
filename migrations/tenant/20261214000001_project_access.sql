-- Restricted projects, groups and grants (see tessera_domain::access).
--
-- A project is open to the whole organization (as before) or restricted: then only people with
-- a grant on it, directly or through one of their groups, see it, and whoever the door says
-- sees every project (Owners and Admins, and system work). The door says who is asking with two
-- transaction-local settings next to app.tenant_id: app.user_id and app.sees_all.
--
-- Groups live here, not in the control plane, because the policies below must read them in the
-- same database as the projects they open.

CREATE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;

CREATE FUNCTION app_sees_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT COALESCE(current_setting('app.sees_all', true), '') = 'on' $$;

ALTER TABLE projects ADD COLUMN visibility text NOT NULL DEFAULT 'organization'
    CHECK (visibility IN ('organization', 'restricted'));

CREATE TABLE groups (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- The identity provider's group this one mirrors: its members are then set at each SAML
    -- sign-in, not by hand.
    idp_group    text CHECK (idp_group IS NULL OR length(idp_group) BETWEEN 1 AND 256),
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX groups_name_unique ON groups (tenant_id, lower(name));
CREATE UNIQUE INDEX groups_idp_group_unique ON groups (tenant_id, idp_group);
CREATE UNIQUE INDEX groups_tenant_and_id ON groups (tenant_id, id);

CREATE TABLE group_members (
    tenant_id  uuid NOT NULL DEFAULT app_tenant_id(),
    group_id   uuid NOT NULL,
    user_id    uuid NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id, user_id)
);
-- A membership goes with its group.
ALTER TABLE group_members ADD CONSTRAINT group_members_group_fk
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX group_members_of_user ON group_members (tenant_id, user_id);

CREATE TABLE project_grants (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_tenant_id(),
    project_id  uuid NOT NULL,
    user_id     uuid,
    group_id    uuid,
    role        text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    granted_by  uuid NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_grants_one_grantee CHECK (num_nonnulls(user_id, group_id) = 1)
);
-- A grant goes with its project, and with its group. (Foreign-key checks don't see row-level
-- security: the service checks the actor can see both before it writes.)
ALTER TABLE project_grants ADD CONSTRAINT project_grants_project_fk
    FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE project_grants ADD CONSTRAINT project_grants_group_fk
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE;
-- One grant per person or group on a project (NULLs are distinct, so each index binds one kind).
CREATE UNIQUE INDEX project_grants_user_unique ON project_grants (tenant_id, project_id, user_id);
CREATE UNIQUE INDEX project_grants_group_unique ON project_grants (tenant_id, project_id, group_id);
CREATE INDEX project_grants_of_user ON project_grants (tenant_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX project_grants_of_group ON project_grants (tenant_id, group_id) WHERE group_id IS NOT NULL;

-- When each person's groups were last set from their IdP's word (a sign-in): an older sign-in's
-- sync that runs late is skipped.
CREATE TABLE idp_group_syncs (
    tenant_id     uuid NOT NULL DEFAULT app_tenant_id(),
    user_id       uuid NOT NULL,
    signed_in_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
ALTER TABLE idp_group_syncs ENABLE ROW LEVEL SECURITY;
ALTER TABLE idp_group_syncs FORCE ROW LEVEL SECURITY;
CREATE POLICY idp_group_syncs_in_tenant ON idp_group_syncs
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
GRANT SELECT, INSERT, UPDATE ON idp_group_syncs TO tessera_app;

-- Who has access to which project, and who is in which group, are visible to the whole
-- organization by id (as a team's membership is): a policy on projects must read them, and a
-- policy on them that read projects would go round in a circle. What a restricted project is
-- called and holds stays behind the projects and documents policies.
ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE groups FORCE ROW LEVEL SECURITY;
CREATE POLICY groups_in_tenant ON groups
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY group_members_in_tenant ON group_members
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

ALTER TABLE project_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY project_grants_in_tenant ON project_grants
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

-- A restricted project is visible only with a grant (the asker's or one of their groups').
-- Written as one policy for every command, so a raw UPDATE or DELETE can't reach what a SELECT
-- can't see either. New rows only need the tenant: a restricted project is created before its
-- creator's grant (which references it), and read back after.
DROP POLICY projects_in_tenant ON projects;
CREATE POLICY projects_in_tenant ON projects
    USING (tenant_id = app_tenant_id() AND (
        visibility = 'organization'
        OR app_sees_all()
        OR EXISTS (
            SELECT 1 FROM project_grants g
             WHERE g.tenant_id = projects.tenant_id AND g.project_id = projects.id
               AND (g.user_id = app_user_id()
                    OR g.group_id IN (SELECT m.group_id FROM group_members m
                                       WHERE m.tenant_id = projects.tenant_id AND m.user_id = app_user_id())))))
    WITH CHECK (tenant_id = app_tenant_id());

-- A document is visible (and writable) only where its project is.
DROP POLICY documents_in_tenant ON documents;
CREATE POLICY documents_in_tenant ON documents
    USING (tenant_id = app_tenant_id() AND (
        app_sees_all()
        OR EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = documents.tenant_id AND p.id = documents.project_id)))
    WITH CHECK (tenant_id = app_tenant_id() AND (
        app_sees_all()
        OR EXISTS (SELECT 1 FROM projects p WHERE p.tenant_id = documents.tenant_id AND p.id = documents.project_id)));

GRANT SELECT, INSERT, UPDATE, DELETE ON groups, group_members, project_grants TO tessera_app;
GRANT EXECUTE ON FUNCTION app_user_id(), app_sees_all() TO tessera_app;
