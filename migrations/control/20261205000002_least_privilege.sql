-- Least privilege for the application role. Until now `tessera_app` could UPDATE any column
-- of `tenants` and `users`; a single SQL injection could have moved a tenant, lifted its
-- sign-in rules or rewritten a password. Now the columns that carry security decisions change
-- only through the functions below. Each runs as the owner, checks the rule it exists for
-- (a status changes only along the lifecycle, a move lands where it was announced, sign-in
-- rules change only in the organization being acted for, only an unconfirmed registrant is
-- evicted), and pins its search_path so nothing the caller creates can stand in for what it
-- calls. The app role keeps column-level UPDATE of one harmless column per table, because
-- SELECT ... FOR UPDATE needs one.

-- Storage is named after its tenant, however the row was written (creation or a move).
ALTER TABLE tenants ADD CONSTRAINT tenants_storage_named_after_tenant
    CHECK (schema_name IN ('shared', 't_' || replace(id::text, '-', ''))
           AND (database IS NULL OR database = 'tessera_t_' || replace(id::text, '-', '')));

REVOKE UPDATE ON tenants FROM tessera_app;
GRANT UPDATE (name) ON tenants TO tessera_app;
REVOKE UPDATE ON users FROM tessera_app;
GRANT UPDATE (display_name) ON users TO tessera_app;

-- Links are spent, never rewritten: the address, account, binding and carried password of
-- an issued link are fixed.
REVOKE UPDATE ON auth_tokens FROM tessera_app;
GRANT UPDATE (used_at) ON auth_tokens TO tessera_app;

-- Nothing the app role creates can shadow what the owner's functions call: no objects of its
-- own in public, and no temporary ones (pg_temp is searched first).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
BEGIN
    IF (SELECT datdba FROM pg_database WHERE datname = current_database()) = (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    ELSE
        RAISE NOTICE 'not the owner of database %: revoke TEMPORARY from PUBLIC there yourself, and grant it to this role (moves stage rows in temporary tables)', current_database();
    END IF;
END
$$;

-- A tenant's lifecycle: active -> deleting (with a date) -> purging -> deleted, and back from
-- deleting to active. Scheduling or cancelling a deletion happens inside the organization acted
-- for; the purge's steps are the maintenance job's. False when the tenant wasn't in `from` (a
-- lost race: the caller says so).
CREATE FUNCTION tenant_set_status(p_tenant uuid, p_from text, p_to text, p_delete_after timestamptz DEFAULT NULL)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    IF (p_from, p_to) NOT IN (('active', 'deleting'), ('deleting', 'active'), ('deleting', 'purging'), ('purging', 'purging'), ('purging', 'deleted')) THEN
        RAISE EXCEPTION 'a tenant does not go from % to %', p_from, p_to USING ERRCODE = 'check_violation';
    END IF;
    IF p_to = 'deleting' AND p_delete_after IS NULL THEN
        RAISE EXCEPTION 'a deletion needs a date' USING ERRCODE = 'check_violation';
    END IF;
    IF p_to IN ('deleting', 'active') AND p_tenant IS DISTINCT FROM public.app_tenant_id() THEN
        RAISE EXCEPTION 'a deletion is scheduled or cancelled only inside its organization' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE public.tenants
       SET status = p_to,
           delete_after = CASE p_to WHEN 'deleting' THEN p_delete_after WHEN 'active' THEN NULL ELSE delete_after END,
           purge_claimed_at = CASE WHEN p_to = 'purging' THEN now() ELSE purge_claimed_at END,
           deleted_at = CASE WHEN p_to = 'deleted' THEN now() ELSE deleted_at END
     WHERE id = p_tenant AND status = p_from;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed = 1;
END
$$;

-- Moving a tenant: announce where to (active -> moving), then either land exactly there with
-- storage named by the placement rules, or abort back to where it was.
CREATE FUNCTION tenant_move_begin(p_tenant uuid, p_model text, p_region text)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    UPDATE public.tenants SET status = 'moving', moving_to_model = p_model, moving_to_region = p_region
     WHERE id = p_tenant AND status = 'active';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed = 1;
END
$$;

CREATE FUNCTION tenant_move_finish(p_tenant uuid, p_database text, p_schema text, p_version bigint)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    own text := 't_' || replace(p_tenant::text, '-', '');
    expected_schema text;
    target public.tenants%ROWTYPE;
BEGIN
    SELECT * INTO target FROM public.tenants WHERE id = p_tenant AND status = 'moving' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Storage is named after the tenant: a move can't point it at another tenant's.
    expected_schema := CASE WHEN target.moving_to_model = 'pooled' THEN 'shared' ELSE own END;
    IF p_schema <> expected_schema
       OR (target.moving_to_model = 'dedicated') <> (p_database IS NOT NULL)
       OR (p_database IS NOT NULL AND p_database <> 'tessera_' || own) THEN
        RAISE EXCEPTION 'tenant % cannot be placed in database % schema %', p_tenant, p_database, p_schema USING ERRCODE = 'check_violation';
    END IF;
    UPDATE public.tenants
       SET model = target.moving_to_model, region = target.moving_to_region, database = p_database, schema_name = p_schema,
           schema_version = p_version, status = 'active', moving_to_model = NULL, moving_to_region = NULL
     WHERE id = p_tenant;
    RETURN true;
END
$$;

CREATE FUNCTION tenant_move_abort(p_tenant uuid)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    changed integer;
BEGIN
    UPDATE public.tenants SET status = 'active', moving_to_model = NULL, moving_to_region = NULL
     WHERE id = p_tenant AND status = 'moving';
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed = 1;
END
$$;

-- An organization's sign-in rules, only for the organization the transaction acts for
-- (NULL: unchanged). Requiring SSO takes a verified domain, so nobody can lock everyone out.
CREATE FUNCTION tenant_set_sign_in_rules(p_require_mfa boolean, p_sso_satisfies_mfa boolean, p_require_sso boolean)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF public.app_tenant_id() IS NULL THEN
        RAISE EXCEPTION 'sign-in rules change only inside an organization' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_require_sso AND NOT EXISTS (SELECT 1 FROM public.tenant_domains WHERE tenant_id = public.app_tenant_id() AND verified_at IS NOT NULL) THEN
        RAISE EXCEPTION 'requiring SSO takes a verified domain' USING ERRCODE = 'check_violation';
    END IF;
    UPDATE public.tenants
       SET require_mfa = COALESCE(p_require_mfa, require_mfa),
           sso_satisfies_mfa = COALESCE(p_sso_satisfies_mfa, sso_satisfies_mfa),
           require_sso = COALESCE(p_require_sso, require_sso)
     WHERE id = public.app_tenant_id();
END
$$;

-- An address is confirmed once and stays confirmed.
CREATE FUNCTION user_confirm_email(p_user uuid)
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    UPDATE public.users SET email_verified_at = COALESCE(email_verified_at, now()) WHERE id = p_user;
$$;

-- A new password takes the emailed link for the account, spent in this same transaction: a
-- reset link, or a confirmation link carrying the password chosen at a repeated sign-up. The
-- link is presented as sent (only its digest is stored, so reading the table doesn't give one).
-- Setting a password also confirms the address the link went to. Issuing links is the app's own
-- job (it may INSERT them), so this guards against mistakes and narrow injections, not against
-- a role that can run any SQL.
CREATE FUNCTION user_set_password(p_user uuid, p_hash text, p_token text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_hash !~ '^\$argon2id\$' THEN
        RAISE EXCEPTION 'not an Argon2id hash' USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM public.auth_tokens
         WHERE token_hash = sha256(convert_to(p_token, 'UTF8')) AND user_id = p_user AND used_at = now()
           AND (purpose = 'reset_password' OR (purpose = 'verify_email' AND password_hash = p_hash))
    ) THEN
        RAISE EXCEPTION 'no live link for this password change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE public.users SET password_hash = p_hash, email_verified_at = COALESCE(email_verified_at, now()) WHERE id = p_user;
END
$$;

-- The inbox's owner proved the address of an account nobody confirmed: whoever registered it
-- loses its password, sessions, second factor, connected identities and API sign-ins. A
-- confirmed account is left alone (false).
CREATE FUNCTION user_evict_unconfirmed(p_user uuid)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    UPDATE public.users SET password_hash = '!unusable', email_verified_at = now() WHERE id = p_user AND email_verified_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM public.sessions WHERE user_id = p_user;
    DELETE FROM public.user_totp WHERE user_id = p_user;
    DELETE FROM public.recovery_codes WHERE user_id = p_user;
    DELETE FROM public.user_identities WHERE user_id = p_user;
    UPDATE public.token_families SET revoked_at = now(), revoked_reason = 'user' WHERE user_id = p_user AND revoked_at IS NULL;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION tenant_set_status(uuid, text, text, timestamptz), tenant_move_begin(uuid, text, text),
    tenant_move_finish(uuid, text, text, bigint), tenant_move_abort(uuid), tenant_set_sign_in_rules(boolean, boolean, boolean),
    user_confirm_email(uuid), user_set_password(uuid, text, text), user_evict_unconfirmed(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_set_status(uuid, text, text, timestamptz), tenant_move_begin(uuid, text, text),
    tenant_move_finish(uuid, text, text, bigint), tenant_move_abort(uuid), tenant_set_sign_in_rules(boolean, boolean, boolean),
    user_confirm_email(uuid), user_set_password(uuid, text, text), user_evict_unconfirmed(uuid) TO tessera_app;
