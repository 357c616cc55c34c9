-- Custom roles: an organization's own roles, each a set of permissions chosen from the
-- catalogue (tessera_domain::role::Permission, by name). A member holding one keeps 'viewer' in
-- memberships.role, the least built-in role, so anything that reads the role alone errs towards
-- less; what they may do is the custom role's (the door reads it with the membership).
CREATE TABLE roles (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    permissions  text[] NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_unique ON roles (tenant_id, lower(name));
CREATE UNIQUE INDEX roles_tenant_and_id ON roles (tenant_id, id);


ALTER TABLE memberships ADD COLUMN custom_role_id uuid;
-- A role in use can't be deleted (the service says by whom first; this catches a race).
ALTER TABLE memberships ADD CONSTRAINT memberships_custom_role_fk
    FOREIGN KEY (tenant_id, custom_role_id) REFERENCES roles (tenant_id, id) ON DELETE RESTRICT;
ALTER TABLE memberships ADD CONSTRAINT memberships_custom_role_base
    CHECK (custom_role_id IS NULL OR role = 'viewer');
CREATE INDEX memberships_by_custom_role ON memberships (tenant_id, custom_role_id) WHERE custom_role_id IS NOT NULL;

ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY roles_in_tenant ON roles
    USING (tenant_id = app_tenant_id())
    WITH CHECK (tenant_id = app_tenant_id());
-- Outside any organization, a user reads the custom roles they hold (the organization switcher,
-- the entrances).
CREATE POLICY roles_of_user ON roles FOR SELECT
    USING (app_tenant_id() IS NULL
           AND EXISTS (SELECT 1 FROM memberships m WHERE m.custom_role_id = roles.id AND m.user_id = app_user_id()));

GRANT SELECT, INSERT, UPDATE, DELETE ON roles TO tessera_app;

-- The two one-round-trip entrances also carry the custom role a member holds (the rest as before).
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
            SELECT json_agg(json_build_object('slug', t.slug, 'name', t.name, 'role', m.role,
                                              'custom_role', (SELECT r.name FROM public.roles r WHERE r.id = m.custom_role_id))
                            ORDER BY lower(t.name), t.slug)
              FROM public.memberships m JOIN public.tenants t ON t.id = m.tenant_id
             WHERE m.user_id = found_session.user_id AND t.status IN ('active', 'moving', 'deleting')), '[]'::json),
        'entrance', (
            SELECT json_build_object(
                       'id', t.id, 'slug', t.slug, 'name', t.name, 'status', t.status, 'model', t.model,
                       'region', t.region, 'database', t.database, 'schema_name', t.schema_name,
                       'version', CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END,
                       'require_mfa', t.require_mfa, 'sso_satisfies_mfa', t.sso_satisfies_mfa,
                       'require_sso', t.require_sso, 'billing', t.billing, 'role', m.role,
                       'custom_role', (SELECT json_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                                         FROM public.roles r WHERE r.id = m.custom_role_id AND r.tenant_id = t.id))
              FROM public.tenants t
              LEFT JOIN public.pooled_schemas p ON p.region = t.region
              LEFT JOIN public.memberships m ON m.tenant_id = t.id AND m.user_id = found_session.user_id
             WHERE t.slug = session_context.slug AND t.status <> 'deleted' AND found_session.user_id IS NOT NULL))
      INTO answer;
    PERFORM set_config('app.user_id', COALESCE(previous_user, ''), true);
    RETURN answer;
END
$$;

CREATE OR REPLACE FUNCTION api_key_entrance(presented text, slug text) RETURNS json
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    previous_key text := current_setting('app.api_key_hash', true);
    previous_user text := current_setting('app.user_id', true);
    found_key record;
    key_found boolean;
    creator_role text;
    creator_custom_role json;
BEGIN
    PERFORM set_config('app.api_key_hash', presented, true);
    SELECT k.id AS key_id, k.scopes, k.created_by, k.expires_at, k.revoked_at,
           (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale,
           t.id, t.slug, t.name, t.status, t.model, t.region, t.database, t.schema_name,
           CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END AS version,
           t.require_mfa, t.sso_satisfies_mfa, t.require_sso, t.billing
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
      LEFT JOIN public.pooled_schemas p ON p.region = t.region
     WHERE k.key_hash = decode(presented, 'hex') AND t.status <> 'deleted';
    key_found := FOUND;
    IF key_found THEN
        PERFORM set_config('app.user_id', found_key.created_by::text, true);
        SELECT m.role, (SELECT json_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                          FROM public.roles r WHERE r.id = m.custom_role_id AND r.tenant_id = m.tenant_id)
          INTO creator_role, creator_custom_role
          FROM public.memberships m
         WHERE m.tenant_id = found_key.id AND m.user_id = found_key.created_by;
        IF found_key.stale AND found_key.revoked_at IS NULL AND creator_role IS NOT NULL
           AND (found_key.expires_at IS NULL OR found_key.expires_at > now()) AND found_key.slug = api_key_entrance.slug THEN
            UPDATE public.api_keys SET last_used_at = now() WHERE id = found_key.key_id;
        END IF;
    END IF;
    PERFORM set_config('app.api_key_hash', COALESCE(previous_key, ''), true);
    PERFORM set_config('app.user_id', COALESCE(previous_user, ''), true);
    IF NOT key_found THEN
        RETURN NULL;
    END IF;
    RETURN json_build_object(
        'key_id', found_key.key_id, 'scopes', found_key.scopes, 'created_by', found_key.created_by,
        'revoked', found_key.revoked_at IS NOT NULL, 'expired', found_key.expires_at <= now(),
        'expired_on', to_char(found_key.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'creator_role', creator_role,
        'id', found_key.id, 'slug', found_key.slug, 'name', found_key.name, 'status', found_key.status,
        'model', found_key.model, 'region', found_key.region, 'database', found_key.database,
        'schema_name', found_key.schema_name, 'version', found_key.version, 'require_mfa', found_key.require_mfa,
        'sso_satisfies_mfa', found_key.sso_satisfies_mfa, 'require_sso', found_key.require_sso,
        'billing', found_key.billing, 'creator_custom_role', creator_custom_role);
END
$$;
