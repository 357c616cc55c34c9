-- When the daily metadata refresh finds new signing certificates, the ones trusted until then
-- stay trusted alongside them for an overlap: an IdP (or a node of it) may go on signing with
-- the old key for a while after publishing the new one, or drop the old one from its metadata
-- before every signer has switched. The organization's Owners are emailed about the change.
ALTER TABLE tenant_sso
    ADD COLUMN previous_metadata_xml text,
    ADD COLUMN previous_trusted_until timestamptz;

-- Refused SAML responses, counted per organization, quarter hour and reason. Anyone can post to
-- an organization's ACS, so only the first refusal of each reason in a quarter hour (and only a
-- few reasons per quarter hour) is written to the audit log; the rest are counted here, and
-- the SSO settings page shows the counts.
CREATE TABLE sso_refusals (
    tenant_id     uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    window_start  timestamptz NOT NULL,
    reason        text NOT NULL,
    refused       integer NOT NULL DEFAULT 1,
    last_ip       inet,
    PRIMARY KEY (tenant_id, window_start, reason)
);

ALTER TABLE sso_refusals ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_refusals FORCE ROW LEVEL SECURITY;
CREATE POLICY sso_refusals_in_tenant ON sso_refusals
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Kept 30 days; the maintenance job forgets older counts in every organization.
CREATE POLICY sso_refusals_prune_read ON sso_refusals FOR SELECT
    USING (current_setting('app.maintenance', true) = 'prune' AND window_start < now() - interval '30 days');
CREATE POLICY sso_refusals_prune ON sso_refusals FOR DELETE
    USING (current_setting('app.maintenance', true) = 'prune' AND window_start < now() - interval '30 days');

GRANT SELECT, INSERT, UPDATE, DELETE ON sso_refusals TO tessera_app;
