-- A project with documents can't be deleted by the database on its own: the service deletes
-- them first, each checked against the actor's rights and audited (documents::delete_with_project).
-- Tenant purges and moves delete child tables first, so they are unaffected.
ALTER TABLE documents DROP CONSTRAINT documents_project_fk;
ALTER TABLE documents ADD CONSTRAINT documents_project_fk FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id);
