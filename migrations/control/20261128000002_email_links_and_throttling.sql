-- Email ownership, one-time links sent by email, and throttling of sign-in attempts.

ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- Whose session this is (copied from the session record on save), so a password reset can
-- end a user's other sessions.
ALTER TABLE sessions ADD COLUMN user_id uuid REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;

-- Links mailed to people: sign-in (magic link), email verification, password reset. Only a
-- SHA-256 of the token is stored, so a leaked table signs nobody in. `browser_hash` binds a
-- magic link to the browser session that asked for it.
CREATE TABLE auth_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash    bytea NOT NULL UNIQUE,
    purpose       text NOT NULL CHECK (purpose IN ('magic_link', 'verify_email', 'reset_password')),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         text NOT NULL,
    browser_hash  bytea,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_tokens_by_user ON auth_tokens (user_id, purpose);

-- Fixed-window counters: how often a bucket ("login:email:x", "link:ip:1.2.3.4") was hit in
-- the current window. Old windows are deleted by the maintenance job.
CREATE TABLE auth_throttle (
    bucket        text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

GRANT SELECT, INSERT, UPDATE ON auth_tokens TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_throttle TO tessera_app;
