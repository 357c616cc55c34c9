-- What an API call with an organization key needs before it runs, in one round trip (as
-- session_context does for a page, and for the same reasons): the key (found by the hash of the
-- key presented, as the api_keys_by_presented_key policy allows), its organization and where it
-- lives, and the role its creator holds there now (a key never does more than its creator
-- still may). A key that passes every check (live, unexpired, for `slug`, creator still a
-- member) is marked as used, at most once a minute. The settings it makes for its own queries
-- (app.api_key_hash, app.user_id) are put back before it returns. The tenant columns repeat
-- backend/src/tenancy/mod.rs (TENANT_COLUMNS).
CREATE FUNCTION api_key_entrance(presented text, slug text) RETURNS json
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    previous_key text := current_setting('app.api_key_hash', true);
    previous_user text := current_setting('app.user_id', true);
    found_key record;
    key_found boolean;
    creator_role text;
BEGIN
    PERFORM set_config('app.api_key_hash', presented, true);
    SELECT k.id AS key_id, k.scopes, k.created_by, k.expires_at, k.revoked_at,
           (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') AS stale,
           t.id, t.slug, t.name, t.status, t.model, t.region, t.database, t.schema_name,
           CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END AS version,
           t.require_mfa, t.sso_satisfies_mfa, t.require_sso
      INTO found_key
      FROM public.api_keys k
      JOIN public.tenants t ON t.id = k.tenant_id
      LEFT JOIN public.pooled_schemas p ON p.region = t.region
     WHERE k.key_hash = decode(presented, 'hex') AND t.status <> 'deleted';
    key_found := FOUND;
    IF key_found THEN
        PERFORM set_config('app.user_id', found_key.created_by::text, true);
        SELECT m.role INTO creator_role FROM public.memberships m
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
        'sso_satisfies_mfa', found_key.sso_satisfies_mfa, 'require_sso', found_key.require_sso);
END
$$;
REVOKE ALL ON FUNCTION api_key_entrance(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_key_entrance(text, text) TO tessera_app;
