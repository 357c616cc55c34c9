-- A SAML sign-in ends in the browser that started it (login CSRF: otherwise an attacker could
-- post their own valid response from a victim's browser and sign it in as them).
--
-- SP-initiated: the start leaves a random nonce in a cookie of that browser; its SHA-256 is kept
-- with the request. The ACS (a cross-site POST, which carries none of our SameSite cookies)
-- only checks the response and leaves a single-use handoff; the browser then redeems it on a
-- top-level GET, which does carry the cookie, and the nonce must match.
-- IdP-initiated: there is no request to bind to, so the handoff is redeemed only after the
-- person confirms, on our own page, that they mean to continue as that account.
ALTER TABLE saml_requests ADD COLUMN browser_hash bytea;

CREATE TABLE sso_handoffs (
    token_hash    bytea PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         text NOT NULL,
    -- The request's browser hash for SP-initiated sign-ins; NULL for IdP-initiated ones.
    browser_hash  bytea,
    next_path     text NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

ALTER TABLE sso_handoffs ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_handoffs FORCE ROW LEVEL SECURITY;
-- Made inside the organization's transaction at the ACS...
CREATE POLICY sso_handoffs_made_in_tenant ON sso_handoffs FOR INSERT
    WITH CHECK (tenant_id = app_tenant_id());
-- ...and visible afterwards only to whoever presents its token (as for API keys).
CREATE POLICY sso_handoffs_by_token ON sso_handoffs FOR SELECT
    USING (token_hash = decode(current_setting('app.sso_handoff', true), 'hex'));
CREATE POLICY sso_handoffs_redeem ON sso_handoffs FOR UPDATE
    USING (token_hash = decode(current_setting('app.sso_handoff', true), 'hex'));
CREATE POLICY sso_handoffs_prune_read ON sso_handoffs FOR SELECT
    USING (current_setting('app.maintenance', true) = 'prune' AND expires_at < now() - interval '1 hour');
CREATE POLICY sso_handoffs_prune ON sso_handoffs FOR DELETE
    USING (current_setting('app.maintenance', true) = 'prune' AND expires_at < now() - interval '1 hour');
GRANT SELECT, INSERT, UPDATE, DELETE ON sso_handoffs TO tessera_app;
