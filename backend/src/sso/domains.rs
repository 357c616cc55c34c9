//! Email domains an organization owns, proved with a DNS TXT record, as is usual for SSO:
//! `_tessera-challenge.<domain>  TXT  "tessera-verification=<token>"`.

use super::Sso;
use crate::audit::AuditEntry;
use crate::error::{unique_violation, Result};
use crate::tenancy::Tenancy;
use crate::Org;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use rand::RngCore;
use std::sync::Arc;
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission};

#[derive(Clone)]
pub struct Resolver(Arc<TokioResolver>);

impl Resolver {
    /// The system's resolver, or (tests, split-horizon set-ups) one given name server.
    pub fn new(server: Option<std::net::SocketAddr>) -> Result<Self> {
        let mut opts = ResolverOpts::default();
        // A record just published must be seen on the next click of "Verify".
        opts.cache_size = 0;
        let builder = match server {
            Some(addr) => TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true)),
                TokioConnectionProvider::default(),
            ),
            None => TokioResolver::builder_tokio().map_err(|e| crate::Error::Internal(format!("DNS resolver: {e}")))?,
        };
        Ok(Self(Arc::new(builder.with_options(opts).build())))
    }

    async fn txt(&self, name: &str) -> Vec<String> {
        match self.0.txt_lookup(name).await {
            Ok(lookup) => {
                lookup.iter().map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect::<String>()).collect()
            }
            Err(e) => {
                tracing::debug!(name, error = %e, "TXT lookup found nothing");
                Vec::new()
            }
        }
    }
}

pub fn challenge_name(domain: &str) -> String {
    format!("_tessera-challenge.{domain}")
}

pub fn challenge_value(token: &str) -> String {
    format!("tessera-verification={token}")
}

/// A domain as typed ("Acme.com", "@acme.com", " acme.com. ") in its plain form, if it is one.
pub fn parse_domain(raw: &str) -> Result<String> {
    let domain = raw.trim().trim_start_matches('@').trim_end_matches('.').to_ascii_lowercase();
    let valid = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(domain)
    } else {
        Err(AppError::Invalid(FieldError::new("domain", "Enter a domain such as acme.com (the part after @ in your team's addresses).")).into())
    }
}

pub async fn add(org: &Org, raw: &str) -> Result<()> {
    org.require(Permission::ManageSecurity)?;
    let domain = parse_domain(raw)?;
    let token = {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        crate::db::hex(&bytes)
    };
    let mut tx = org.control_write(Permission::ManageSecurity).await?;
    let inserted =
        sqlx::query("INSERT INTO tenant_domains (domain, verification_token) VALUES ($1, $2)").bind(&domain).bind(&token).execute(tx.conn()).await;
    match inserted {
        Ok(_) => {}
        Err(e) if unique_violation(&e).is_some() => {
            return Err(AppError::Conflict(FieldError::new("domain", "You've already added that domain.")).into())
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit(AuditEntry::new("domain.added", "domain", &domain, serde_json::json!({ "domain": { "new": domain } }))).await
}

/// Looks for the TXT record and marks the domain verified when it is there.
pub async fn verify(org: &Org, sso: &Sso, raw: &str) -> Result<()> {
    org.require(Permission::ManageSecurity)?;
    let domain = parse_domain(raw)?;
    let token: Option<(String, bool)> = {
        let mut tx = org.control_read(Permission::ManageSecurity).await?;
        sqlx::query_as("SELECT verification_token, verified_at IS NOT NULL FROM tenant_domains WHERE domain = $1")
            .bind(&domain)
            .fetch_optional(tx.conn())
            .await?
    };
    let Some((token, already)) = token else {
        return Err(AppError::NotFound("Add the domain first.".into()).into());
    };
    if already {
        return Ok(());
    }
    let expected = challenge_value(&token);
    let found = sso.resolver.txt(&challenge_name(&domain)).await;
    if !found.iter().any(|v| v.trim() == expected) {
        return Err(AppError::Invalid(FieldError::new(
            "domain",
            format!(
                "We couldn't find the TXT record yet. Add `{}` with the value `{expected}` at your DNS provider, wait a few minutes, and try again.",
                challenge_name(&domain)
            ),
        ))
        .into());
    }
    let mut tx = org.control_write(Permission::ManageSecurity).await?;
    let verified =
        sqlx::query("UPDATE tenant_domains SET verified_at = now() WHERE domain = $1 AND verified_at IS NULL").bind(&domain).execute(tx.conn()).await;
    match verified {
        Ok(_) => {}
        Err(e) if unique_violation(&e).is_some() => {
            return Err(AppError::Conflict(FieldError::new(
                "domain",
                "Another organization has already verified this domain. Contact support if it is yours.",
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit(AuditEntry::new("domain.verified", "domain", &domain, serde_json::json!({ "verified": { "old": false, "new": true } }))).await
}

pub async fn remove(org: &Org, raw: &str) -> Result<()> {
    let domain = parse_domain(raw)?;
    let mut tx = org.control_write_removal(Permission::ManageSecurity).await?;
    let (required, others): (bool, i64) = sqlx::query_as(
        "SELECT t.require_sso, (SELECT count(*) FROM tenant_domains WHERE verified_at IS NOT NULL AND domain <> $1) FROM tenants t WHERE t.id = $2",
    )
    .bind(&domain)
    .bind(org.tenant.id)
    .fetch_one(tx.conn())
    .await?;
    if required && others == 0 {
        return Err(AppError::Conflict(FieldError::new(
            "domain",
            "Single sign-on is required and this is your last verified domain: nobody could sign in. Stop requiring SSO first.",
        ))
        .into());
    }
    let removed =
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $2 AND domain = $1").bind(&domain).bind(org.tenant.id).execute(tx.conn()).await?;
    if removed.rows_affected() == 0 {
        return Err(AppError::NotFound("That domain isn't on the list.".into()).into());
    }
    // The domain was what let this organization's IdP speak for these addresses: the accounts
    // it linked there stop answering to it (they sign in as before by other means).
    let unlinked = sqlx::query(
        "DELETE FROM user_identities i USING users u
          WHERE u.id = i.user_id AND i.provider = $1
            AND (lower(split_part(u.email, '@', 2)) = $2 OR lower(split_part(i.email, '@', 2)) = $2)",
    )
    .bind(format!("saml:{}", org.tenant.id))
    .bind(&domain)
    .execute(tx.conn())
    .await?
    .rows_affected();
    tx.commit(AuditEntry::new("domain.removed", "domain", &domain, serde_json::json!({ "domain": { "old": domain }, "sso_links_removed": unlinked })))
        .await
}

/// The organization (slug, name) that verified the domain of `email` and has an IdP
/// connected, plus whether it requires members to use it: the login page's routing.
pub async fn organization_for_email(tenancy: &Tenancy, email: &str) -> Result<Option<(String, String, bool)>> {
    let Some((_, domain)) = email.trim().rsplit_once('@') else { return Ok(None) };
    let Ok(domain) = parse_domain(domain) else { return Ok(None) };
    let mut read = tenancy.system_read(&[(crate::db::Setting::EmailDomain, &domain)]).await?;
    let found: Option<(uuid::Uuid, String, String, bool)> = sqlx::query_as(
        "SELECT t.id, t.slug, t.name, t.require_sso FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id
          WHERE d.domain = $1 AND d.verified_at IS NOT NULL AND t.status IN ('active', 'moving', 'deleting')",
    )
    .bind(&domain)
    .fetch_optional(read.conn())
    .await?;
    let Some((tenant_id, slug, name, require_sso)) = found else {
        return Ok(None);
    };
    // Only if its IdP is connected (read within that organization's context).
    read.within(tenant_id).await?;
    let connected: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenant_sso)").fetch_one(read.conn()).await?;
    Ok(connected.then_some((slug, name, require_sso)))
}

/// The rule for every way of signing in except the organization's own IdP (password, emailed
/// link, password reset, OpenID Connect, GitHub, API sign-in, sign-up): an address at a domain
/// whose organization requires its single sign-on must use it. That organization's Owners keep
/// their other ways in, so a broken IdP set-up can still be fixed.
pub async fn check_first_factor(tenancy: &Tenancy, email: &str) -> Result<()> {
    if let Some((slug, name, true)) = organization_for_email(tenancy, email).await? {
        if !is_owner(tenancy, &slug, email).await? {
            return Err(AppError::SsoRequired(format!(
                "{name} signs its people in with single sign-on: use \"Sign in with SSO\" with this address."
            ))
            .into());
        }
    }
    Ok(())
}

/// Whether `email`'s account is an Owner of the organization `slug`.
pub async fn is_owner(tenancy: &Tenancy, slug: &str, email: &str) -> Result<bool> {
    let Ok(slug) = crate::tenancy::known_slug(slug) else { return Ok(false) };
    // The lookup form, not the sign-up rules: an Owner whose address predates today's rules
    // must keep this way in.
    let Some(email) = tessera_domain::input::Email::for_lookup(email) else { return Ok(false) };
    let email = email.as_str();
    let mut read = tenancy.system_read(&[]).await?;
    let tenant: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1").bind(slug.as_str()).fetch_optional(read.conn()).await?;
    let Some(tenant) = tenant else {
        return Ok(false);
    };
    read.within(tenant).await?;
    let owner: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE lower(u.email) = lower($1) AND m.role = 'owner')",
    )
    .bind(email.trim())
    .fetch_one(read.conn())
    .await?;
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::parse_domain;

    #[test]
    fn domains_are_accepted_as_people_type_them_and_junk_is_refused() {
        assert_eq!(parse_domain(" @Acme.COM. ").unwrap(), "acme.com");
        assert_eq!(parse_domain("eu.acme-corp.co.uk").unwrap(), "eu.acme-corp.co.uk");
        for junk in ["", "localhost", "acme..com", "-acme.com", "acme.com/x", "ac me.com", "http://acme.com"] {
            assert!(parse_domain(junk).is_err(), "{junk}");
        }
    }
}
