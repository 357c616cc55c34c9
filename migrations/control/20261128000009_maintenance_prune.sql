-- The maintenance job forgets sign-in state that can no longer be used. The SAML tables are
-- under forced row-level security per organization; rather than opening one transaction per
-- organization, the job declares itself with `app.maintenance = 'prune'`, and these policies
-- let it see and delete only rows that are past use, in any organization.
CREATE POLICY saml_requests_prune_read ON saml_requests FOR SELECT
    USING (current_setting('app.maintenance', true) = 'prune' AND created_at < now() - interval '1 day');
CREATE POLICY saml_requests_prune ON saml_requests FOR DELETE
    USING (current_setting('app.maintenance', true) = 'prune' AND created_at < now() - interval '1 day');
CREATE POLICY saml_assertions_seen_prune_read ON saml_assertions_seen FOR SELECT
    USING (current_setting('app.maintenance', true) = 'prune' AND expires_at < now() - interval '1 hour');
CREATE POLICY saml_assertions_seen_prune ON saml_assertions_seen FOR DELETE
    USING (current_setting('app.maintenance', true) = 'prune' AND expires_at < now() - interval '1 hour');

-- Expired refresh tokens (and the families left empty) and spent emailed links go too.
GRANT DELETE ON refresh_tokens, token_families, auth_tokens TO tessera_app;
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_at);
