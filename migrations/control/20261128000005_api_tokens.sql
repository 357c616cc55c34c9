-- API access: user tokens (short-lived JWT access tokens plus rotating refresh tokens, grouped
-- in families) and organization API keys.

-- One family per API sign-in. Every refresh replaces the refresh token with a new one in the
-- same family; presenting a replaced token again means it was copied, so the whole family is
-- revoked. Access tokens carry the family id and stop working the moment it is revoked.
CREATE TABLE token_families (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mfa            boolean NOT NULL,
    user_agent     text,
    ip             inet,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse', 'password_reset', 'user'))
);
CREATE INDEX token_families_by_user ON token_families (user_id);

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id    uuid NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    -- Set when this token was exchanged for its successor.
    rotated_at   timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Organization API keys: `tsk_<prefix>_<secret>`. Only a SHA-256 of the whole key is kept;
-- the prefix is stored to tell keys apart in lists and logs.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix        text NOT NULL UNIQUE,
    key_hash      bytea NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    -- Keys belong to the organization, but are made by a person, who is recorded as the
    -- actor (with the key) in the audit trail.
    created_by    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at DESC);

-- Within an organization its admins see its keys. Before the organization is known, a key
-- can be found only by presenting it: the lookup sets `app.api_key_hash` to the key's hash.
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY api_keys_in_tenant ON api_keys
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
CREATE POLICY api_keys_by_presented_key ON api_keys FOR SELECT
    USING (key_hash = decode(NULLIF(current_setting('app.api_key_hash', true), ''), 'hex'));
-- The lookup also records when the key was last used.
CREATE POLICY api_keys_touch_presented_key ON api_keys FOR UPDATE
    USING (key_hash = decode(NULLIF(current_setting('app.api_key_hash', true), ''), 'hex'));

-- Which API key acted, when one did (the actor is then the key, not a person at a browser).
ALTER TABLE audit_log ADD COLUMN actor_api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL;

ALTER TABLE security_events DROP CONSTRAINT security_events_event_check;
ALTER TABLE security_events ADD CONSTRAINT security_events_event_check CHECK (event IN (
    'login.succeeded', 'login.failed', 'login.locked',
    'magic_link.requested', 'magic_link.used', 'link.refused',
    'email.verified', 'password.reset_requested', 'password.reset',
    'mfa.enabled', 'mfa.disabled', 'mfa.succeeded', 'mfa.failed', 'mfa.locked',
    'mfa.recovery_code_used', 'mfa.recovery_codes_regenerated',
    'reauth.succeeded', 'reauth.failed',
    'token.issued', 'token.refresh_reused', 'token.revoked'));

GRANT SELECT, INSERT, UPDATE ON token_families, refresh_tokens TO tessera_app;
GRANT SELECT, INSERT, UPDATE ON api_keys TO tessera_app;
