//! Single sign-on per organization: each organization can connect its own SAML 2.0 identity
//! provider, prove which email domains it owns, map the IdP's attributes and groups onto
//! Tessera accounts and roles, and require its members to come in through the IdP.
//!
//! Trust is narrow on purpose. An organization's IdP may only sign in people whose address
//! is at one of that organization's verified domains, so configuring an IdP can never let one
//! organization speak for another's accounts.

pub mod domains;
pub mod outbound;
pub mod saml;

use crate::audit::AuditEntry;
use crate::email::{templates, OutgoingEmail};
use crate::error::Result;
use crate::identity::Identity;
use crate::tenancy::SystemActor;
use crate::tenancy::Tenancy;
use crate::Org;
use std::time::Duration;
use tessera_domain::dto::{PreviousCertificates, SsoDomain, SsoMapping, SsoRefusalCount, SsoSettings};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission, Role};
use uuid::Uuid;

/// What SSO needs beyond the database: our public address (for SP URLs), a DNS resolver
/// (domain verification) and an HTTP client (IdP metadata by URL).
#[derive(Clone)]
pub struct Sso {
    public_url: String,
    http: reqwest::Client,
    resolver: domains::Resolver,
    /// Whether metadata URLs may point at private addresses (a local IdP in development and
    /// tests); off in production, see `outbound.rs`.
    private_metadata_hosts: bool,
}

impl Sso {
    pub fn new(public_url: &str, dns_server: Option<std::net::SocketAddr>) -> Result<Self> {
        Ok(Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            http: metadata_client(false)?,
            resolver: domains::Resolver::new(dns_server)?,
            private_metadata_hosts: false,
        })
    }

    /// Lets metadata URLs reach private addresses (`TESSERA_SSO_PRIVATE_METADATA_HOSTS`).
    pub fn allow_private_metadata_hosts(&mut self) -> Result<()> {
        self.http = metadata_client(true)?;
        self.private_metadata_hosts = true;
        Ok(())
    }

    pub(crate) fn private_metadata_hosts(&self) -> bool {
        self.private_metadata_hosts
    }

    /// The organization's SAML service provider entity id (its metadata URL).
    pub fn sp_entity_id(&self, slug: &str) -> String {
        format!("{}/sso/{slug}/metadata", self.public_url)
    }

    pub fn acs_url(&self, slug: &str) -> String {
        format!("{}/sso/{slug}/acs", self.public_url)
    }
}

fn metadata_client(private_hosts: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        // A redirect could steer the fetch of an IdP's metadata somewhere internal.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        // No proxy from the environment: it would resolve names where we can't check them.
        .no_proxy();
    if !private_hosts {
        builder = builder.dns_resolver(std::sync::Arc::new(outbound::PublicOnly));
    }
    builder.build().map_err(|e| crate::Error::Internal(e.to_string()))
}

/// The organization's SSO connection as the settings page reads it.
#[derive(sqlx::FromRow)]
struct SettingsRow {
    idp_metadata_url: Option<String>,
    idp_entity_id: String,
    idp_sso_url: String,
    idp_metadata_xml: String,
    email_attribute: Option<String>,
    name_attribute: Option<String>,
    groups_attribute: Option<String>,
    group_roles: serde_json::Value,
    default_role: String,
    jit_provisioning: bool,
    allow_idp_initiated: bool,
    require_sso: bool,
    /// The certificates before the IdP's last change, while they are still trusted.
    previous_metadata_xml: Option<String>,
    previous_trusted_until: Option<time::OffsetDateTime>,
}

const SETTINGS: &str = "SELECT s.idp_metadata_url, s.idp_entity_id, s.idp_sso_url, s.idp_metadata_xml, s.email_attribute, s.name_attribute,
            s.groups_attribute, s.group_roles, s.default_role, s.jit_provisioning, s.allow_idp_initiated, t.require_sso,
            CASE WHEN s.previous_trusted_until > now() THEN s.previous_metadata_xml END AS previous_metadata_xml,
            CASE WHEN s.previous_trusted_until > now() THEN s.previous_trusted_until END AS previous_trusted_until
       FROM tenant_sso s JOIN tenants t ON t.id = s.tenant_id";

/// Everything an admin sees on the organization's single sign-on page.
pub async fn settings(org: &Org, sso: &Sso) -> Result<SsoSettings> {
    let mut tx = org.control_read(Permission::ManageSecurity).await?;
    let row: Option<SettingsRow> = sqlx::query_as(SETTINGS).fetch_optional(tx.conn()).await?;
    let domains: Vec<(String, String, Option<time::OffsetDateTime>)> =
        sqlx::query_as("SELECT domain, verification_token, verified_at FROM tenant_domains ORDER BY domain").fetch_all(tx.conn()).await?;
    let refusals: Vec<(time::OffsetDateTime, String, i32)> = sqlx::query_as(
        "SELECT window_start, reason, refused FROM sso_refusals WHERE window_start > now() - interval '7 days'
          ORDER BY window_start DESC, refused DESC LIMIT 50",
    )
    .fetch_all(tx.conn())
    .await?;
    let slug = &org.tenant.slug;
    let fingerprints = |xml: &str| saml::IdpMetadata::parse(xml).map(|m| m.fingerprints).unwrap_or_default();
    Ok(SsoSettings {
        sp_entity_id: sso.sp_entity_id(slug),
        sp_acs_url: sso.acs_url(slug),
        sp_metadata_url: sso.sp_entity_id(slug),
        login_url: format!("{}/sso/{slug}/login", sso.public_url),
        idp_entity_id: row.as_ref().map(|r| r.idp_entity_id.clone()),
        idp_sso_url: row.as_ref().map(|r| r.idp_sso_url.clone()),
        idp_metadata_url: row.as_ref().and_then(|r| r.idp_metadata_url.clone()),
        signing_certificates: row.as_ref().map(|r| fingerprints(&r.idp_metadata_xml)).unwrap_or_default(),
        previous_certificates: row.as_ref().and_then(|r| {
            let until = r.previous_trusted_until?;
            let current = fingerprints(&r.idp_metadata_xml);
            let retired: Vec<String> = fingerprints(r.previous_metadata_xml.as_deref()?).into_iter().filter(|f| !current.contains(f)).collect();
            if retired.is_empty() {
                return None; // the change only added certificates
            }
            Some(PreviousCertificates { fingerprints: retired, trusted_until: crate::members::rfc3339(until) })
        }),
        mapping: row.map(|r| SsoMapping {
            email_attribute: r.email_attribute.unwrap_or_default(),
            name_attribute: r.name_attribute.unwrap_or_default(),
            groups_attribute: r.groups_attribute.unwrap_or_default(),
            group_roles: group_roles_text(&r.group_roles),
            default_role: r.default_role.parse().unwrap_or(Role::Member),
            jit_provisioning: r.jit_provisioning,
            allow_idp_initiated: r.allow_idp_initiated,
            require_sso: r.require_sso,
        }),
        domains: domains
            .into_iter()
            .map(|(domain, token, verified_at)| SsoDomain {
                txt_name: domains::challenge_name(&domain),
                txt_value: domains::challenge_value(&token),
                domain,
                verified: verified_at.is_some(),
            })
            .collect(),
        recent_refusals: refusals
            .into_iter()
            .map(|(window_start, reason, refused)| SsoRefusalCount {
                window_start: crate::members::rfc3339(window_start),
                reason: saml::RefusalReason::from_name(&reason).map_or("another reason", saml::RefusalReason::description).to_string(),
                refused: refused.max(0) as u32,
            })
            .collect(),
    })
}

/// `{"engineering": "admin"}` as the lines an admin edits: `engineering = admin`.
fn group_roles_text(roles: &serde_json::Value) -> String {
    roles.as_object().map(|m| m.iter().map(|(g, r)| format!("{g} = {}", r.as_str().unwrap_or(""))).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// Parses `group = role` lines. Owner can't be granted by an IdP: ownership stays a human act.
fn parse_group_roles(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for (n, line) in text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        let bad = || {
            AppError::Invalid(FieldError::new("group_roles", format!("Line {}: write it as `group = role` (role: admin, member or viewer).", n + 1)))
        };
        let (group, role) = line.split_once('=').ok_or_else(bad)?;
        let role: Role = role.trim().parse().map_err(|_| bad())?;
        if role == Role::Owner {
            return Err(
                AppError::Invalid(FieldError::new("group_roles", format!("Line {}: single sign-on can't make anyone an Owner.", n + 1))).into()
            );
        }
        let group = group.trim();
        if group.is_empty() {
            return Err(bad().into());
        }
        map.insert(group.to_string(), serde_json::Value::String(role.as_str().to_string()));
    }
    Ok(map)
}

/// Connects (or replaces) the organization's IdP from its metadata: pasted XML, or a URL we
/// fetch (an admin's own change takes effect at once: certificates still trusted after a
/// refresh's rollover are forgotten). The metadata must name the IdP, offer an HTTP-Redirect sign-on endpoint and carry a
/// signing certificate (without one nothing could be verified, so it is refused).
pub async fn save_idp(org: &Org, sso: &Sso, metadata_xml: &str, metadata_url: &str) -> Result<()> {
    org.require(Permission::ManageSecurity)?;
    // Connecting an IdP is what the plan sells. One already connected keeps signing people in
    // after a downgrade, and its metadata can still be replaced (a rotated certificate), so
    // nobody is locked out of their data.
    let connected: bool = {
        let mut tx = org.control_read(Permission::ManageSecurity).await?;
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenant_sso)").fetch_one(tx.conn()).await?
    };
    if !connected {
        org.require_feature(tessera_domain::billing::Feature::SingleSignOn)?;
    }
    let (xml, url) = match (metadata_xml.trim(), metadata_url.trim()) {
        ("", "") => {
            return Err(
                AppError::Invalid(FieldError::new("metadata_xml", "Paste your IdP's metadata XML, or give the URL it is published at.")).into()
            )
        }
        ("", url) => (saml::fetch_metadata(sso, url).await?, Some(url.to_string())),
        (xml, _) => (xml.to_string(), None),
    };
    let idp = saml::IdpMetadata::parse(&xml)?;
    let mut tx = org.control_write(Permission::ManageSecurity).await?;
    let old: Option<(String, String)> =
        sqlx::query_as("SELECT idp_entity_id, idp_sso_url FROM tenant_sso FOR UPDATE").fetch_optional(tx.conn()).await?;
    sqlx::query(
        "INSERT INTO tenant_sso (idp_metadata_xml, idp_metadata_url, idp_entity_id, idp_sso_url) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET idp_metadata_xml = EXCLUDED.idp_metadata_xml, idp_metadata_url = EXCLUDED.idp_metadata_url,
            idp_entity_id = EXCLUDED.idp_entity_id, idp_sso_url = EXCLUDED.idp_sso_url, updated_at = now(),
            previous_metadata_xml = NULL, previous_trusted_until = NULL",
    )
    .bind(&xml)
    .bind(url.as_deref())
    .bind(&idp.entity_id)
    .bind(&idp.sso_url)
    .execute(tx.conn())
    .await?;
    tx.commit(AuditEntry::new(
        "sso.idp_configured",
        "tenant",
        org.tenant.id,
        serde_json::json!({
            "idp_entity_id": { "old": old.as_ref().map(|o| &o.0), "new": idp.entity_id },
            "idp_sso_url": { "old": old.as_ref().map(|o| &o.1), "new": idp.sso_url },
            "signing_certificates": { "new": idp.fingerprints },
        }),
    ))
    .await
}

/// Attribute mapping, roles and the rules for signing in through the IdP.
pub async fn save_mapping(org: &Org, mapping: &SsoMapping, group_roles: &str) -> Result<()> {
    org.require(Permission::ManageSecurity)?;
    let roles = parse_group_roles(group_roles)?;
    if mapping.default_role == Role::Owner {
        return Err(AppError::Invalid(FieldError::new("default_role", "New members from single sign-on can be admins, members or viewers.")).into());
    }
    let clean = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let mut tx = org.control_write(Permission::ManageSecurity).await?;
    let old: Option<SettingsRow> = sqlx::query_as(&format!("{SETTINGS} FOR UPDATE OF s")).fetch_optional(tx.conn()).await?;
    let Some(old) = old else {
        return Err(AppError::Conflict(FieldError::new("metadata_xml", "Connect your identity provider first.")).into());
    };
    if mapping.require_sso {
        let verified: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_domains WHERE verified_at IS NOT NULL").fetch_one(tx.conn()).await?;
        if verified == 0 {
            return Err(AppError::Invalid(FieldError::new(
                "require_sso",
                "Verify at least one email domain first: only addresses at your verified domains can sign in through your IdP.",
            ))
            .into());
        }
    }
    sqlx::query(
        "UPDATE tenant_sso SET email_attribute = $1, name_attribute = $2, groups_attribute = $3, group_roles = $4, default_role = $5,
                jit_provisioning = $6, allow_idp_initiated = $7, updated_at = now()",
    )
    .bind(clean(&mapping.email_attribute))
    .bind(clean(&mapping.name_attribute))
    .bind(clean(&mapping.groups_attribute))
    .bind(serde_json::Value::Object(roles.clone()))
    .bind(mapping.default_role.as_str())
    .bind(mapping.jit_provisioning)
    .bind(mapping.allow_idp_initiated)
    .execute(tx.conn())
    .await?;
    sqlx::query("SELECT tenant_set_sign_in_rules(NULL, NULL, $1)").bind(mapping.require_sso).execute(tx.conn()).await?;
    let mut changed = serde_json::Map::new();
    let mut note = |field: &str, old: serde_json::Value, new: serde_json::Value| {
        if old != new {
            changed.insert(field.into(), serde_json::json!({ "old": old, "new": new }));
        }
    };
    note("email_attribute", old.email_attribute.clone().into(), clean(&mapping.email_attribute).into());
    note("name_attribute", old.name_attribute.clone().into(), clean(&mapping.name_attribute).into());
    note("groups_attribute", old.groups_attribute.clone().into(), clean(&mapping.groups_attribute).into());
    note("group_roles", old.group_roles.clone(), serde_json::Value::Object(roles));
    note("default_role", old.default_role.clone().into(), mapping.default_role.as_str().into());
    note("jit_provisioning", old.jit_provisioning.into(), mapping.jit_provisioning.into());
    note("allow_idp_initiated", old.allow_idp_initiated.into(), mapping.allow_idp_initiated.into());
    note("require_sso", old.require_sso.into(), mapping.require_sso.into());
    tx.commit(AuditEntry::new("sso.settings_changed", "tenant", org.tenant.id, serde_json::Value::Object(changed))).await
}

/// Reads again the metadata of IdPs connected by URL, once a day each (maintenance job), so
/// a certificate rollover the IdP announces in its metadata reaches us before it happens.
/// The IdP must keep its entity id: metadata naming another IdP is refused and audited, and
/// the connection stays as it was. When the signing certificates change, the previous ones stay
/// trusted for [`saml::ROLLOVER_OVERLAP_DAYS`] and the Owners are emailed: a change they didn't
/// expect (a compromised metadata host) is theirs to stop, while an expected rollover needs
/// nobody to click anything on the day. Returns how many connections changed.
pub async fn refresh_metadata(tenancy: &Tenancy, sso: &Sso, identity: &Identity) -> Result<u64> {
    let mut scan = tenancy.maintenance("refresh").await?;
    let due: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT tenant_id, idp_metadata_url, idp_entity_id, idp_metadata_xml FROM tenant_sso
          WHERE idp_metadata_url IS NOT NULL AND metadata_checked_at < now() - interval '1 day'
          ORDER BY metadata_checked_at LIMIT 100",
    )
    .fetch_all(scan.conn())
    .await?;
    scan.commit(0).await?;
    let mut changed = 0;
    for (tenant_id, url, entity_id, stored) in due {
        let fetched = match saml::fetch_metadata(sso, &url).await {
            Ok(xml) => saml::IdpMetadata::parse(&xml).map(|idp| (xml, idp)),
            Err(e) => Err(e),
        };
        let before = saml::IdpMetadata::parse(&stored).map(|m| m.fingerprints).unwrap_or_default();
        let (entry, update) = match fetched {
            Ok((_, idp)) if idp.entity_id != entity_id => {
                let reason = format!("the metadata at {url} now names another IdP ({})", idp.entity_id);
                (Some(refresh_failed(tenant_id, &reason)), None)
            }
            Ok((xml, _)) if xml == stored => (None, None),
            Ok((xml, idp)) => {
                // A set, not a list: an IdP reordering its certificates changed nothing.
                let sorted = |f: &[String]| std::collections::BTreeSet::from_iter(f.iter().cloned());
                let rollover = sorted(&idp.fingerprints) != sorted(&before);
                let entry = AuditEntry::new(
                    "sso.metadata_refreshed",
                    "tenant",
                    tenant_id,
                    serde_json::json!({
                        "idp_sso_url": { "new": &idp.sso_url },
                        "signing_certificates": { "old": before, "new": idp.fingerprints },
                        "previous_certificates_trusted_days": rollover.then_some(saml::ROLLOVER_OVERLAP_DAYS),
                    }),
                );
                (Some(entry), Some((xml, idp, rollover)))
            }
            Err(e) => (Some(refresh_failed(tenant_id, &e.to_string())), None),
        };
        let Some(entry) = entry else {
            // Unchanged: only when it was looked at.
            let mut tx = tenancy.bookkeeping(tenant_id).await?;
            sqlx::query("UPDATE tenant_sso SET metadata_checked_at = now()").execute(tx.conn()).await?;
            tx.commit().await?;
            continue;
        };
        let mut tx = tenancy.system_write(tenant_id, SystemActor::Job("maintenance".into())).await?;
        let mut notify = None;
        if let Some((xml, idp, rollover)) = &update {
            // A second change inside an overlap ends the first one: the certificates that
            // overlap still trusted are dropped now, and the Owners are told which.
            let overlapping: Option<String> = sqlx::query_scalar(
                "SELECT previous_metadata_xml FROM tenant_sso WHERE previous_trusted_until > now() AND previous_metadata_xml IS NOT NULL",
            )
            .fetch_optional(tx.conn())
            .await?;
            let dropped: Vec<String> = overlapping
                .map(|xml| saml::IdpMetadata::parse(&xml).map(|m| m.fingerprints).unwrap_or_default())
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !before.contains(f) && !idp.fingerprints.contains(f))
                .collect();
            sqlx::query(
                "UPDATE tenant_sso SET idp_metadata_xml = $1, idp_sso_url = $2, updated_at = now(),
                        previous_metadata_xml = CASE WHEN $4 THEN idp_metadata_xml ELSE previous_metadata_xml END,
                        previous_trusted_until = CASE WHEN $4 THEN now() + make_interval(days => $5) ELSE previous_trusted_until END
                  WHERE idp_metadata_url = $3",
            )
            .bind(xml)
            .bind(&idp.sso_url)
            .bind(&url)
            .bind(rollover)
            .bind(saml::ROLLOVER_OVERLAP_DAYS as i32)
            .execute(tx.conn())
            .await?;
            changed += 1;
            if *rollover {
                let change = templates::CertificateChange { before: &before, after: &idp.fingerprints, no_longer_trusted: &dropped };
                notify = Some(rollover_notice(tx.conn(), tenant_id, &change, identity.public_url()).await?);
            }
        }
        sqlx::query("UPDATE tenant_sso SET metadata_checked_at = now()").execute(tx.conn()).await?;
        if update.is_none() {
            tracing::warn!(tenant = %tenant_id, changes = %entry.changes, "could not refresh an IdP's metadata");
        }
        for mail in notify.iter().flatten() {
            identity.queue_mail(tx.conn(), crate::jobs::Lane::Organization(tenant_id), mail).await?;
        }
        tx.commit(entry).await?;
        crate::jobs::wake();
    }
    Ok(changed)
}

/// The mails telling each Owner of the organization that its IdP's signing certificates changed.
async fn rollover_notice(
    conn: &mut sqlx::PgConnection,
    tenant_id: Uuid,
    change: &templates::CertificateChange<'_>,
    public_url: &str,
) -> Result<Vec<OutgoingEmail>> {
    let (name, slug): (String, String) = sqlx::query_as("SELECT name, slug FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(&mut *conn).await?;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY u.email",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(saml::ROLLOVER_OVERLAP_DAYS)).date();
    let settings = format!("{public_url}/t/{slug}/sso");
    Ok(owners.iter().map(|to| templates::idp_certificates_changed(to, &name, change, &until.to_string(), &settings)).collect())
}

fn refresh_failed(tenant_id: Uuid, reason: &str) -> AuditEntry {
    AuditEntry::new("sso.metadata_refresh_failed", "tenant", tenant_id, serde_json::json!({ "reason": { "new": reason } }))
}

/// Forgets SAML requests and replay-cache entries that are past use, in every organization
/// (maintenance job; see the `*_prune` policies).
pub async fn prune_expired(tenancy: &Tenancy) -> Result<u64> {
    let mut tx = tenancy.maintenance("prune").await?;
    let mut n = sqlx::query("DELETE FROM saml_requests WHERE created_at < now() - interval '1 day'").execute(tx.conn()).await?.rows_affected();
    n += sqlx::query("DELETE FROM saml_assertions_seen WHERE expires_at < now() - interval '1 hour'").execute(tx.conn()).await?.rows_affected();
    n += sqlx::query("DELETE FROM sso_handoffs WHERE expires_at < now() - interval '1 hour'").execute(tx.conn()).await?.rows_affected();
    n += sqlx::query("DELETE FROM sso_refusals WHERE window_start < now() - interval '30 days'").execute(tx.conn()).await?.rows_affected();
    tx.commit(n).await?;
    Ok(n)
}

/// Disconnects the IdP (and stops requiring it).
pub async fn remove_idp(org: &Org) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::ManageSecurity).await?;
    let removed: Option<String> = sqlx::query_scalar("DELETE FROM tenant_sso RETURNING idp_entity_id").fetch_optional(tx.conn()).await?;
    let Some(entity_id) = removed else {
        return Err(AppError::NotFound("No identity provider is connected.".into()).into());
    };
    sqlx::query("SELECT tenant_set_sign_in_rules(NULL, NULL, false)").execute(tx.conn()).await?;
    tx.commit(AuditEntry::new("sso.idp_removed", "tenant", org.tenant.id, serde_json::json!({ "idp_entity_id": { "old": entity_id } }))).await
}
