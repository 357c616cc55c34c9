-- What a signed-in page needs before it renders, in one round trip instead of four
-- transactions: the session the browser presented, its user, the user's organizations (the
-- switcher), and, for a page inside an organization, that organization's row with where it
-- lives and the user's role in it (what the door's `enter` reads).
--
-- The caller proves who it is with the session's digest, the secret the browser presented:
-- the same thing the sessions_presented policy asks for, so this shows nothing a caller
-- couldn't already read with that digest. It runs with the owner's rights because the
-- memberships policies want app.user_id, which the app role can't set in the middle of a
-- statement; it sets it for its own queries and puts back what was there.
--
-- Answers NULL for an unknown, idle-expired or too-old session (`oldest`: the earliest
-- creation time still accepted, sessions::ABSOLUTE_LIFETIME ago). `slug` may be NULL.
CREATE FUNCTION session_context(presented text, slug text, oldest timestamptz) RETURNS json
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
REVOKE ALL ON FUNCTION session_context(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_context(text, text, timestamptz) TO tessera_app;
