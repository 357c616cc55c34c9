-- The tables that hold a person's credentials answer only for the account a transaction says it
-- handles (`app.account_id`), or for the one secret the request presented (a session cookie's,
-- refresh token's or link's digest). The settings are made with SET LOCAL, which the app role
-- can't slip into a query (it may not call set_config), so SQL injected anywhere reads no
-- one's sessions, second factors, tokens or password hashes.
--
-- Not FORCEd: the owner's functions (evicting a registrant, setting a password) and
-- maintenance by the owner work across accounts by design.
--
-- (The comment on app_tenant_id() in the first migration says the settings are made with
-- set_config; since this change they are made with SET LOCAL, see backend/src/db.rs.)

CREATE FUNCTION app_account_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.account_id', true), '')::uuid $$;

-- The digest the request presented for `setting` (hex), as bytes.
CREATE FUNCTION app_presented(setting text) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT decode(NULLIF(current_setting('app.' || setting, true), ''), 'hex') $$;

-- What expired-row cleanup may see: only what it removes.
CREATE FUNCTION app_pruning() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT current_setting('app.maintenance', true) = 'prune' $$;

-- Browser sessions: the presented cookie's row, or the account's own list (security page,
-- sign-out everywhere, ending a removed member's sessions). 30 days is sessions::ABSOLUTE_LIFETIME.
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY sessions_presented ON sessions
    USING (id = current_setting('app.session_id', true))
    WITH CHECK (id = current_setting('app.session_id', true));
CREATE POLICY sessions_of_account ON sessions
    USING (user_id = app_account_id())
    WITH CHECK (user_id = app_account_id());
CREATE POLICY sessions_prune_read ON sessions FOR SELECT
    USING (app_pruning() AND (expires_at < now() OR created_at < now() - interval '30 days'));
CREATE POLICY sessions_prune ON sessions FOR DELETE
    USING (app_pruning() AND (expires_at < now() OR created_at < now() - interval '30 days'));

-- Second factors.
ALTER TABLE user_totp ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_totp_of_account ON user_totp
    USING (user_id = app_account_id())
    WITH CHECK (user_id = app_account_id());
ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
CREATE POLICY recovery_codes_of_account ON recovery_codes
    USING (user_id = app_account_id())
    WITH CHECK (user_id = app_account_id());

-- Whether each member of the organization acted for has a second factor, and nothing more
-- (its security page counts those without).
CREATE FUNCTION tenant_members_without_second_factor() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$
        SELECT count(*) FROM public.memberships m
         WHERE m.tenant_id = public.app_tenant_id()
           AND NOT EXISTS (SELECT 1 FROM public.user_totp u WHERE u.user_id = m.user_id AND u.confirmed_at IS NOT NULL)
    $$;
REVOKE ALL ON FUNCTION tenant_members_without_second_factor() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_members_without_second_factor() TO tessera_app;

-- Emailed links: the presented one (following it), or the account's (issuing one spends the
-- account's earlier ones).
ALTER TABLE auth_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY auth_tokens_presented ON auth_tokens
    USING (token_hash = app_presented('link_hash'));
CREATE POLICY auth_tokens_of_account ON auth_tokens
    USING (user_id = app_account_id())
    WITH CHECK (user_id = app_account_id());
CREATE POLICY auth_tokens_prune_read ON auth_tokens FOR SELECT
    USING (app_pruning() AND expires_at < now() - interval '1 day');
CREATE POLICY auth_tokens_prune ON auth_tokens FOR DELETE
    USING (app_pruning() AND expires_at < now() - interval '1 day');

-- API sign-ins. A presented refresh token shows itself and its family; the account shows all
-- of its families and their tokens. (The family of a presented token is found by the owner's
-- function: two policies that read each other's tables would recurse.)
CREATE FUNCTION app_presented_token_family() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT family_id FROM public.refresh_tokens WHERE token_hash = public.app_presented('refresh_token_hash') $$;
REVOKE ALL ON FUNCTION app_presented_token_family() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_presented_token_family() TO tessera_app;

ALTER TABLE token_families ENABLE ROW LEVEL SECURITY;
CREATE POLICY token_families_of_account ON token_families
    USING (user_id = app_account_id())
    WITH CHECK (user_id = app_account_id());
-- (A sub-select, so the function runs once per statement, not once per row.)
CREATE POLICY token_families_presented ON token_families
    USING (id = (SELECT app_presented_token_family()));

-- Whether a family has no refresh tokens left (what pruning may remove). The owner's function
-- again: a policy on token_families reading refresh_tokens would recurse.
CREATE FUNCTION token_family_is_empty(p_family uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT NOT EXISTS (SELECT 1 FROM public.refresh_tokens WHERE family_id = p_family) $$;
REVOKE ALL ON FUNCTION token_family_is_empty(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION token_family_is_empty(uuid) TO tessera_app;

CREATE POLICY token_families_prune_read ON token_families FOR SELECT
    USING (app_pruning() AND created_at < now() - interval '1 day' AND token_family_is_empty(id));
CREATE POLICY token_families_prune ON token_families FOR DELETE
    USING (app_pruning() AND created_at < now() - interval '1 day' AND token_family_is_empty(id));

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY refresh_tokens_presented ON refresh_tokens
    USING (token_hash = app_presented('refresh_token_hash'));
CREATE POLICY refresh_tokens_of_account ON refresh_tokens
    USING (family_id IN (SELECT id FROM token_families WHERE user_id = app_account_id()))
    WITH CHECK (family_id IN (SELECT id FROM token_families WHERE user_id = app_account_id()));
CREATE POLICY refresh_tokens_prune_read ON refresh_tokens FOR SELECT
    USING (app_pruning() AND expires_at < now() - interval '1 day');
CREATE POLICY refresh_tokens_prune ON refresh_tokens FOR DELETE
    USING (app_pruning() AND expires_at < now() - interval '1 day');

-- Password hashes: not selectable by the app role. Signing in asks for the hash of the account
-- it is checking, and gets that one only.
REVOKE SELECT ON users FROM tessera_app;
GRANT SELECT (id, email, display_name, email_verified_at, created_at) ON users TO tessera_app;
CREATE FUNCTION account_password_hash() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT password_hash FROM public.users WHERE id = public.app_account_id() $$;
REVOKE ALL ON FUNCTION account_password_hash() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION account_password_hash() TO tessera_app;

-- The owner's functions that act on one account or tenant now check the transaction handles
-- it: an injected call can't confirm or evict someone else's account, nor start purging an
-- organization before its date. "Handles" is not "proved": the code sets the account it is
-- working on (after a link, an IdP's assertion, or while checking a password), and SQL can't
-- pick another.
CREATE OR REPLACE FUNCTION user_confirm_email(p_user uuid)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_user IS DISTINCT FROM public.app_account_id() THEN
        RAISE EXCEPTION 'an address is confirmed only for the account being handled' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE public.users SET email_verified_at = COALESCE(email_verified_at, now()) WHERE id = p_user;
END
$$;

CREATE OR REPLACE FUNCTION user_evict_unconfirmed(p_user uuid)
    RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_user IS DISTINCT FROM public.app_account_id() THEN
        RAISE EXCEPTION 'a registrant is evicted only from the account being handled' USING ERRCODE = 'insufficient_privilege';
    END IF;
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

CREATE OR REPLACE FUNCTION tenant_set_status(p_tenant uuid, p_from text, p_to text, p_delete_after timestamptz DEFAULT NULL)
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
    -- Only the purge, inside the organization it has emptied, marks it deleted.
    IF p_to = 'deleted' AND p_tenant IS DISTINCT FROM public.app_tenant_id() THEN
        RAISE EXCEPTION 'a tenant is marked deleted only by its purge' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Purging starts on the date and not before; a claim is taken over only once its purger
    -- has gone quiet (the maintenance job's rule, lifecycle::claim_next).
    UPDATE public.tenants
       SET status = p_to,
           delete_after = CASE p_to WHEN 'deleting' THEN p_delete_after WHEN 'active' THEN NULL ELSE delete_after END,
           purge_claimed_at = CASE WHEN p_to = 'purging' THEN now() ELSE purge_claimed_at END,
           deleted_at = CASE WHEN p_to = 'deleted' THEN now() ELSE deleted_at END
     WHERE id = p_tenant AND status = p_from
       AND CASE
               WHEN p_from = 'deleting' AND p_to = 'purging' THEN delete_after <= now()
               WHEN p_from = 'purging' AND p_to = 'purging' THEN purge_claimed_at < now() - interval '10 minutes'
               WHEN p_to = 'deleted' THEN purge_claimed_at IS NOT NULL
               ELSE true
           END;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed = 1;
END
$$;

