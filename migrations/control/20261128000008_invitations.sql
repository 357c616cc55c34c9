-- Joining an organization takes the person's consent: an Owner or Admin invites an address
-- with a role, and the person accepts (from the emailed link, or from their home page once
-- the address is confirmed). Only the token's SHA-256 is stored.
CREATE TABLE invitations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    email        text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   bytea NOT NULL UNIQUE,
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Resending makes a new token (the old link stops working) and starts the clock again.
    sent_at      timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    declined_at  timestamptz,
    revoked_at   timestamptz,
    CHECK (num_nonnulls(accepted_at, declined_at, revoked_at) <= 1)
);
-- One open invitation per address and organization: inviting again resends it.
CREATE UNIQUE INDEX invitations_open ON invitations (tenant_id, email)
    WHERE accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_by_email ON invitations (email)
    WHERE accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
-- Inside the organization: its admins manage its invitations.
CREATE POLICY invitations_in_tenant ON invitations
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
-- Outside it, an invitation is found only by presenting its token...
CREATE POLICY invitations_by_presented_token ON invitations FOR SELECT
    USING (token_hash = decode(NULLIF(current_setting('app.invitation_hash', true), ''), 'hex'));
-- ...or by the person it was sent to, once they have confirmed that address.
CREATE POLICY invitations_to_confirmed_address ON invitations FOR SELECT
    USING (email = NULLIF(current_setting('app.confirmed_email', true), ''));

GRANT SELECT, INSERT, UPDATE ON invitations TO tessera_app;
