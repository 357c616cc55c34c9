-- The account-level audit trail: sign-ins, failures, lockouts, emailed links used or refused,
-- password resets. Per user rather than per tenant (signing in happens before any tenant), so
-- it sits beside `users`; failures against unknown addresses keep only the address typed.
-- Append-only for the app role.
CREATE TABLE security_events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    email        text,
    event        text NOT NULL CHECK (event IN (
                     'login.succeeded', 'login.failed', 'login.locked',
                     'magic_link.requested', 'magic_link.used', 'link.refused',
                     'email.verified', 'password.reset_requested', 'password.reset')),
    ip           inet,
    user_agent   text,
    request_id   text,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_events_by_user ON security_events (user_id, occurred_at DESC);

GRANT SELECT, INSERT ON security_events TO tessera_app;
