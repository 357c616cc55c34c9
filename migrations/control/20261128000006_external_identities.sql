-- Accounts at outside identity providers (OpenID Connect: Google, Microsoft, …) linked to
-- Tessera users. The provider's subject id is the stable key; the email is kept for display.
CREATE TABLE user_identities (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text NOT NULL,
    subject       text NOT NULL,
    email         text,
    linked_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, subject),
    -- One account per provider per user keeps "which Google account is this?" unambiguous.
    UNIQUE (user_id, provider)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON user_identities TO tessera_app;

-- The list of event names lives with the code (identity::events::Event); the database keeps
-- only their shape, so adding an event doesn't need a migration.
ALTER TABLE security_events DROP CONSTRAINT security_events_event_check;
ALTER TABLE security_events ADD CONSTRAINT security_events_event_check CHECK (event ~ '^[a-z_]+\.[a-z_]+$');
