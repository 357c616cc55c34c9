-- IdP metadata connected by URL is read again once a day: IdPs roll their signing
-- certificates over by publishing the new one in their metadata first.
ALTER TABLE tenant_sso ADD COLUMN metadata_checked_at timestamptz NOT NULL DEFAULT now();

-- The maintenance job finds which organizations are due without entering each one (see the
-- prune policies); it then updates each inside that organization's own transaction.
CREATE POLICY tenant_sso_refresh_due ON tenant_sso FOR SELECT
    USING (current_setting('app.maintenance', true) = 'refresh'
           AND idp_metadata_url IS NOT NULL AND metadata_checked_at < now() - interval '1 day');
