-- Two-factor authentication: an authenticator app (TOTP) and single-use recovery codes, plus
-- an organization's "members must use two-factor authentication" policy.

-- The TOTP secret has to be readable to check codes, so it can't be hashed; it is sealed
-- (XChaCha20-Poly1305 under a key derived from TESSERA_SECRET_KEY), so a copy of the table
-- alone can't mint codes. `confirmed_at` is NULL while enrolment waits for the first code.
-- `last_step` is the newest 30-second step a code was accepted for: a code is never accepted
-- twice, not even within its own window.
CREATE TABLE user_totp (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed bytea NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes are random enough that a plain SHA-256 is a safe way to store them.
CREATE TABLE recovery_codes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, code_hash)
);

ALTER TABLE tenants
    ADD COLUMN require_mfa boolean NOT NULL DEFAULT false,
    -- Whether a sign-in through the organization's own SAML IdP counts as two-factor (the IdP
    -- is trusted to have done its own MFA).
    ADD COLUMN sso_satisfies_mfa boolean NOT NULL DEFAULT true;

ALTER TABLE security_events DROP CONSTRAINT security_events_event_check;
ALTER TABLE security_events ADD CONSTRAINT security_events_event_check CHECK (event IN (
    'login.succeeded', 'login.failed', 'login.locked',
    'magic_link.requested', 'magic_link.used', 'link.refused',
    'email.verified', 'password.reset_requested', 'password.reset',
    'mfa.enabled', 'mfa.disabled', 'mfa.succeeded', 'mfa.failed', 'mfa.locked',
    'mfa.recovery_code_used', 'mfa.recovery_codes_regenerated',
    'reauth.succeeded', 'reauth.failed'));

GRANT SELECT, INSERT, UPDATE, DELETE ON user_totp, recovery_codes TO tessera_app;
