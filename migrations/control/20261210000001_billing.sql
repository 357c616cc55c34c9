-- Billing (backend/src/billing): Stripe is the source of truth for money; these tables keep what
-- Tessera needs to act without asking it on every request.

-- What the door needs, read with the organization's row on every request (also by
-- session_context and api_key_entrance below): the newest subscription snapshot Tessera has seen
-- and how far the customer's Stripe clock is ahead of ours (a test clock's), as JSON
-- (`billing::Record`). NULL: never billed (the free tier).
ALTER TABLE tenants ADD COLUMN billing jsonb;

-- An organization's Stripe customer, and what was last announced of its billing state (a
-- change from it is a transition: audit record, notification, mail).
CREATE TABLE billing_accounts (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id  text UNIQUE CHECK (customer_id ~ '^cus_[A-Za-z0-9_]{1,250}$'),
    test_clock   text CHECK (test_clock ~ '^clock_[A-Za-z0-9_]{1,250}$'),
    announced    text NOT NULL DEFAULT 'free',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_accounts_by_clock ON billing_accounts (test_clock) WHERE test_clock IS NOT NULL;

-- Every Stripe event received, by its id: a repeat is a no-op. A job processes each one.
CREATE TABLE stripe_events (
    id           text PRIMARY KEY CHECK (id ~ '^evt_[A-Za-z0-9_]{1,250}$'),
    type         text NOT NULL CHECK (length(type) <= 100),
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    -- 'applied', or 'ignored' with why (an unknown type, a customer that isn't ours).
    outcome      text CHECK (length(outcome) <= 500)
);
CREATE INDEX stripe_events_received ON stripe_events (received_at);

-- Side effects that must happen once (a dunning mail for one failed attempt, the trial
-- reminder): inserting the key claims it.
CREATE TABLE billing_notices (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        text NOT NULL CHECK (length(key) <= 300),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- The organization's invoices as Stripe last described them (for the billing page and PDFs).
CREATE TABLE billing_invoices (
    id           text PRIMARY KEY CHECK (id ~ '^in_[A-Za-z0-9_]{1,250}$'),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number       text,
    status       text NOT NULL,
    currency     text NOT NULL,
    total        bigint NOT NULL,
    amount_due   bigint NOT NULL,
    amount_paid  bigint NOT NULL,
    period_start timestamptz,
    period_end   timestamptz,
    created      timestamptz NOT NULL,
    -- The whole invoice object with its lines, as Stripe sent it.
    object       jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_invoices_of_tenant ON billing_invoices (tenant_id, created DESC);

-- API calls counted per organization and minute; the usage job reports what a minute gained
-- since its last report to Stripe (the meter event's identifier names the row and the count it
-- reached, so a repeat is refused by Stripe as a duplicate, not billed twice).
CREATE TABLE api_usage (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    minute         timestamptz NOT NULL CHECK (date_trunc('minute', minute) = minute),
    calls          bigint NOT NULL CHECK (calls > 0),
    reported_calls bigint NOT NULL DEFAULT 0 CHECK (reported_calls BETWEEN 0 AND calls),
    reported_at    timestamptz,
    PRIMARY KEY (tenant_id, minute)
);
CREATE INDEX api_usage_unreported ON api_usage (minute) WHERE calls > reported_calls;

-- Billing's jobs declare themselves with `app.maintenance = 'billing'`; an organization's own
-- transactions (its billing page, counting its API calls) see only its rows.
CREATE FUNCTION app_billing() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT current_setting('app.maintenance', true) = 'billing' $$;

ALTER TABLE billing_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY billing_accounts_in_tenant ON billing_accounts FOR SELECT USING (tenant_id = app_tenant_id());
CREATE POLICY billing_accounts_jobs ON billing_accounts USING (app_billing()) WITH CHECK (app_billing());
ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY stripe_events_jobs ON stripe_events USING (app_billing()) WITH CHECK (app_billing());
ALTER TABLE billing_notices ENABLE ROW LEVEL SECURITY;
CREATE POLICY billing_notices_jobs ON billing_notices USING (app_billing()) WITH CHECK (app_billing());
ALTER TABLE billing_invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY billing_invoices_in_tenant ON billing_invoices FOR SELECT USING (tenant_id = app_tenant_id());
CREATE POLICY billing_invoices_jobs ON billing_invoices USING (app_billing()) WITH CHECK (app_billing());
ALTER TABLE api_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_usage_in_tenant ON api_usage FOR SELECT USING (tenant_id = app_tenant_id());
CREATE POLICY api_usage_jobs ON api_usage USING (app_billing()) WITH CHECK (app_billing());

GRANT SELECT, INSERT, UPDATE ON billing_accounts, stripe_events, billing_invoices, api_usage TO tessera_app;
GRANT SELECT, INSERT ON billing_notices TO tessera_app;
GRANT EXECUTE ON FUNCTION app_billing() TO tessera_app;

-- The app role can't update `tenants.billing` (it decides every organization's access: a stray
-- UPDATE, or an injected one, must not hand out a plan). Only billing's jobs set it, through this.
CREATE FUNCTION tenant_set_billing(p_tenant uuid, p_record jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS $$
BEGIN
    IF NOT public.app_billing() THEN
        RAISE EXCEPTION 'tenant_set_billing is for billing''s jobs (app.maintenance = billing)' USING ERRCODE = '42501';
    END IF;
    UPDATE public.tenants SET billing = p_record WHERE id = p_tenant;
END
$$;
REVOKE ALL ON FUNCTION tenant_set_billing(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_set_billing(uuid, jsonb) TO tessera_app;

-- The two one-round-trip entrances also carry `billing` (the rest as before).
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
                       'require_sso', t.require_sso, 'billing', t.billing, 'role', m.role)
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
        'sso_satisfies_mfa', found_key.sso_satisfies_mfa, 'require_sso', found_key.require_sso,
        'billing', found_key.billing);
END
$$;
