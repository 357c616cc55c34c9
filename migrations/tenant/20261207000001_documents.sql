-- Documents: pages of text inside a project. The reference to the project carries tenant_id
-- too: a foreign-key check doesn't see row-level security, so a plain `project_id` reference
-- could point at another tenant's project (and be deleted with it).
CREATE UNIQUE INDEX projects_tenant_and_id ON projects (tenant_id, id);

CREATE TABLE documents (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_tenant_id(),
    project_id  uuid NOT NULL,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 50000),
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX documents_in_project ON documents (tenant_id, project_id, updated_at DESC);

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY documents_in_tenant ON documents
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());

GRANT SELECT, INSERT, UPDATE, DELETE ON documents TO tessera_app;
