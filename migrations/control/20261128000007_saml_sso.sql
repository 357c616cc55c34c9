-- Single sign-on per organization (SAML 2.0): the organization's IdP, its verified email
-- domains, and the bookkeeping that makes responses single-use.

-- Email domains an organization has proved it owns (a DNS TXT record). A domain belongs to at
-- most one organization; only addresses at its verified domains may sign in through its IdP,
-- so an organization's IdP can never speak for anyone else's account.
-- Any organization may claim a domain (so nobody can squat on one by claiming it first); only
-- one can have it verified.
CREATE TABLE tenant_domains (
    domain             text NOT NULL CHECK (domain = lower(domain)),
    tenant_id          uuid NOT NULL DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    verification_token text NOT NULL,
    verified_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, domain)
);
CREATE UNIQUE INDEX tenant_domains_verified_once ON tenant_domains (domain) WHERE verified_at IS NOT NULL;

CREATE TABLE tenant_sso (
    tenant_id          uuid PRIMARY KEY DEFAULT app_tenant_id() REFERENCES tenants (id) ON DELETE CASCADE,
    -- The IdP as its metadata describes it (kept whole: it carries the signing certificates).
    idp_metadata_xml   text NOT NULL,
    idp_metadata_url   text,
    idp_entity_id      text NOT NULL,
    idp_sso_url        text NOT NULL,
    -- Attribute names to read; NULL email means "the NameID, when it is an address".
    email_attribute    text,
    name_attribute     text,
    groups_attribute   text,
    -- {"<group>": "admin" | "member" | "viewer"}; the highest matching role wins.
    group_roles        jsonb NOT NULL DEFAULT '{}',
    default_role       text NOT NULL DEFAULT 'member' CHECK (default_role IN ('admin', 'member', 'viewer')),
    -- Create accounts and memberships on first sign-in (just-in-time provisioning).
    jit_provisioning   boolean NOT NULL DEFAULT true,
    -- Accept responses the IdP sends on its own (a tile in the IdP's app launcher). Off by
    -- default: an unsolicited response can't be tied to the browser it arrives in.
    allow_idp_initiated boolean NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Members must sign in through the organization's IdP to enter it (Owners keep a way in, to
-- fix a broken set-up). On `tenants`, beside require_mfa, because the door enforces both.
ALTER TABLE tenants ADD COLUMN require_sso boolean NOT NULL DEFAULT false;

-- AuthnRequests we sent and haven't seen answered: a response's InResponseTo must name one.
-- Kept in the database because the IdP posts back cross-site, where the browser doesn't send
-- our (SameSite=Lax) session cookie.
CREATE TABLE saml_requests (
    id          text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    next_path   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);

-- Assertion ids already accepted, until they would have expired anyway: a replayed response
-- is refused.
CREATE TABLE saml_assertions_seen (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assertion_id  text NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, assertion_id)
);

ALTER TABLE tenant_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_domains_in_tenant ON tenant_domains
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());
-- Before anyone is signed in, the login page asks "which organization verified this domain?".
CREATE POLICY tenant_domains_lookup ON tenant_domains FOR SELECT
    USING (verified_at IS NOT NULL AND domain = current_setting('app.email_domain', true));

ALTER TABLE tenant_sso ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_sso FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_sso_in_tenant ON tenant_sso
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

ALTER TABLE saml_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE saml_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY saml_requests_in_tenant ON saml_requests
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

ALTER TABLE saml_assertions_seen ENABLE ROW LEVEL SECURITY;
ALTER TABLE saml_assertions_seen FORCE ROW LEVEL SECURITY;
CREATE POLICY saml_assertions_seen_in_tenant ON saml_assertions_seen
    USING (tenant_id = app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id());

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_domains, tenant_sso TO tessera_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON saml_requests, saml_assertions_seen TO tessera_app;
