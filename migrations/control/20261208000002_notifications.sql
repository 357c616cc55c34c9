-- In-app notifications (backend/src/notifications.rs): one row per person told, made by the
-- job that handles a domain event (an invitation, a role change, a new member, a new API key),
-- so the change that caused it commits first and a job run twice makes one row (dedupe_key).
CREATE TABLE notifications (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The organization it is about, if any.
    tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body         text NOT NULL DEFAULT '' CHECK (length(body) <= 2000),
    -- A path inside the app.
    link         text CHECK (link ~ '^/[!-~]*$' AND link !~ '^//' AND position('\' in link) = 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    dedupe_key   text NOT NULL UNIQUE CHECK (length(dedupe_key) <= 200)
);
CREATE INDEX notifications_of_user ON notifications (user_id, created_at DESC, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- Which kinds also send an email, per person; a kind with no row uses its default.
CREATE TABLE notification_preferences (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,63}$'),
    email    boolean NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- A person reads and marks (only `read_at`) their own, the account the transaction handles;
-- only the job workers make them, so nobody writes a notification's text or link.
ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
CREATE POLICY notifications_of_account ON notifications FOR SELECT USING (user_id = app_account_id());
CREATE POLICY notifications_marked ON notifications FOR UPDATE
    USING (user_id = app_account_id()) WITH CHECK (user_id = app_account_id());
CREATE POLICY notifications_workers ON notifications USING (app_jobs()) WITH CHECK (app_jobs());
ALTER TABLE notification_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY notification_preferences_of_account ON notification_preferences
    USING (user_id = app_account_id()) WITH CHECK (user_id = app_account_id());
CREATE POLICY notification_preferences_workers ON notification_preferences FOR SELECT USING (app_jobs());
GRANT SELECT, INSERT, DELETE ON notifications TO tessera_app;
GRANT UPDATE (read_at) ON notifications TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON notification_preferences TO tessera_app;

-- The page context (see 20261206000002_session_context.sql) also carries the unread count, so
-- the bell costs no extra round trip.
CREATE OR REPLACE FUNCTION session_context(presented text, slug text, oldest timestamptz) RETURNS json
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    found_session record;
    previous_user text := current_setting('app.user_id', true);
    answer json;
BEGIN
    SELECT s.data, s.user_id INTO found_session
      FROM public.sessions s
     WHERE s.id = presented AND s.expires_at > now() AND s.created_at > oldest;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.user_id', COALESCE(found_session.user_id::text, ''), true);
    SELECT json_build_object(
        'data', encode(found_session.data, 'base64'),
        'user_id', found_session.user_id,
        'user', (
            SELECT json_build_object('id', u.id, 'email', u.email, 'display_name', u.display_name,
                                     'email_verified', u.email_verified_at IS NOT NULL)
              FROM public.users u WHERE u.id = found_session.user_id),
        -- The header's bell: unread notifications, counted up to 100 ("99+").
        'unread_notifications', (
            SELECT count(*) FROM (SELECT 1 FROM public.notifications n
                                   WHERE n.user_id = found_session.user_id AND n.read_at IS NULL LIMIT 100) unread),
        'orgs', COALESCE((
            SELECT json_agg(json_build_object('slug', t.slug, 'name', t.name, 'role', m.role) ORDER BY lower(t.name), t.slug)
              FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
             WHERE m.user_id = found_session.user_id AND t.status IN ('active', 'moving', 'deleting')), '[]'::json),
        'entrance', (
            SELECT json_build_object(
                       'id', t.id, 'slug', t.slug, 'name', t.name, 'status', t.status, 'model', t.model,
                       'region', t.region, 'database', t.database, 'schema_name', t.schema_name,
                       'version', CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END,
                       'require_mfa', t.require_mfa, 'sso_satisfies_mfa', t.sso_satisfies_mfa,
                       'require_sso', t.require_sso, 'role', m.role)
              FROM public.tenants t
              LEFT JOIN public.pooled_schemas p ON p.region = t.region
              LEFT JOIN public.memberships m ON m.tenant_id = t.id AND m.user_id = found_session.user_id
             WHERE t.slug = session_context.slug AND t.status <> 'deleted' AND found_session.user_id IS NOT NULL))
      INTO answer;
    PERFORM set_config('app.user_id', COALESCE(previous_user, ''), true);
    RETURN answer;
END
$$;
