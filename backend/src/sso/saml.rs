//! SAML 2.0 sign-in for one organization: our service provider metadata, the AuthnRequest
//! (SP-initiated), and the assertion consumer service, which accepts a response only if
//!
//! - every signature in it verifies against the IdP's certificate, and only the signed parts
//!   are read (samael prunes the rest, which defeats signature-wrapping);
//! - it is addressed to this organization: Destination/Recipient are its ACS URL and the
//!   audience is its entity id (an audience restriction is required);
//! - it is in date (conditions and subject confirmation, with a little clock skew);
//! - it answers a request we sent and haven't seen answered, or, where the organization
//!   allows IdP-initiated sign-in, answers no request at all;
//! - its assertion id hasn't been seen before (no replay);
//! - the person's address is at one of the organization's verified domains.
//!
//! Every refusal is counted per organization, quarter hour and reason, and the first of each
//! is recorded in the organization's audit log with its reason code. Anyone can post to an
//! ACS: the codes are a fixed list ([`RefusalReason`]), so posts can neither flood the log nor
//! write their own text into it.
//!
//! The IdP's signing certificates come from its metadata. When the daily refresh finds new
//! ones, the previous ones stay trusted alongside them for [`ROLLOVER_OVERLAP_DAYS`].

use super::Sso;
use crate::audit::AuditEntry;
use crate::ctx::RequestMeta;
use crate::error::Result;
use crate::identity::throttle;
use crate::tenancy::{Bookkeeping, SystemActor, Tenancy};
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::Assertion;
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;
use tessera_domain::input::{Email, FieldError};
use tessera_domain::{AppError, Role};
use uuid::Uuid;

/// How long a sign-in may take at the IdP.
const REQUEST_LIFETIME_MINUTES: i32 = 10;
/// The longest a seen assertion id is remembered when the assertion doesn't say.
const REPLAY_MEMORY_MINUTES: i64 = 60;

/// How long signing certificates an IdP dropped from its metadata stay trusted (see the module
/// comment): long enough for a slow rollover, short enough that a key the IdP retired because
/// it leaked stops working soon. The Owners are emailed when it starts.
pub const ROLLOVER_OVERLAP_DAYS: i64 = 14;

/// The parts of an IdP's metadata Tessera needs, checked when an admin connects it.
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    /// SHA-256 fingerprints of its signing certificates, as IdP admin consoles show them.
    pub fingerprints: Vec<String>,
}

fn invalid_metadata(message: impl Into<String>) -> crate::Error {
    AppError::Invalid(FieldError::new("metadata_xml", message)).into()
}

impl IdpMetadata {
    pub fn parse(xml: &str) -> Result<Self> {
        let descriptor: EntityDescriptor =
            xml.parse().map_err(|_| invalid_metadata("That isn't SAML metadata: it should be an XML EntityDescriptor from your IdP."))?;
        let entity_id = descriptor
            .entity_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| invalid_metadata("The metadata doesn't give the IdP's entityID."))?;
        let sp = metadata_reader(descriptor).map_err(|e| crate::Error::Internal(e.to_string()))?;
        let sso_url = sp
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| invalid_metadata("The metadata has no single sign-on endpoint with the HTTP-Redirect binding, which Tessera uses."))?;
        let fingerprints = match sp.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => certs.iter().map(|c| fingerprint(c.der_data())).collect(),
            Ok(_) => return Err(invalid_metadata("The metadata has no signing certificate, so responses from this IdP couldn't be verified.")),
            Err(_) => return Err(invalid_metadata("A signing certificate in the metadata couldn't be read.")),
        };
        Ok(Self { entity_id, sso_url, fingerprints })
    }
}

/// "AB:12:…": the SHA-256 of a certificate, in the form IdP consoles show.
fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The certificates samael would check a response from `descriptor`'s IdP against (keys
/// marked for signing, or failing those, keys of no stated use), as DER.
fn signing_certificates(descriptor: &EntityDescriptor) -> Vec<samael::crypto::CertificateDer> {
    metadata_reader(descriptor.clone()).ok().and_then(|sp| sp.idp_signing_certs().ok().flatten()).unwrap_or_default()
}

/// A throwaway service provider, only to ask samael about an IdP's metadata.
fn metadata_reader(descriptor: EntityDescriptor) -> std::result::Result<ServiceProvider, samael::service_provider::ServiceProviderBuilderError> {
    ServiceProviderBuilder::default()
        .entity_id("urn:tessera:metadata-check".to_string())
        .acs_url("urn:tessera:metadata-check".to_string())
        .idp_metadata(descriptor)
        .build()
}

/// Makes `current` trust the signing certificates of `previous` as well. Each document's
/// certificates are picked by samael's own rule first, then all of them go back in marked for
/// signing: so a key of no stated use that samael wouldn't have trusted (because the same
/// document also has signing keys) doesn't become a signing key here.
fn trust_previous_keys(current: &mut EntityDescriptor, previous: &EntityDescriptor) {
    use base64::Engine;
    let mut trusted = signing_certificates(current);
    if trusted.is_empty() {
        // Nothing samael would trust in the current document (an unreadable certificate):
        // leave it as it is rather than trust only the previous keys.
        return;
    }
    for certificate in signing_certificates(previous) {
        if !trusted.contains(&certificate) {
            trusted.push(certificate);
        }
    }
    let Some(descriptors) = current.idp_sso_descriptors.as_mut() else { return };
    for descriptor in descriptors.iter_mut() {
        descriptor.key_descriptors.retain(|k| !matches!(k.key_use.as_deref(), None | Some("") | Some("signing")));
    }
    let Some(first) = descriptors.first_mut() else { return };
    first.key_descriptors.extend(trusted.iter().map(|certificate| samael::metadata::KeyDescriptor {
        key_use: Some("signing".into()),
        key_info: samael::key_info::KeyInfo {
            id: None,
            x509_data: Some(samael::key_info::X509Data {
                certificates: vec![base64::engine::general_purpose::STANDARD.encode(certificate.der_data())],
            }),
        },
        encryption_methods: None,
    }));
}

/// Fetches metadata an IdP publishes (http or https only).
pub async fn fetch_metadata(sso: &Sso, url: &str) -> Result<String> {
    let bad = |why: &str| AppError::Invalid(FieldError::new("metadata_url", format!("Couldn't load metadata from that URL: {why}.")));
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("it isn't a valid URL"))?;
    // Names are checked by the client's resolver; an address written out is checked here.
    let literal = parsed.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok());
    // The metadata carries the certificates every sign-in is checked against: over plain http,
    // anyone on the path could swap in their own. Only a local IdP (a development or test
    // stand-in, where private hosts are allowed) may serve it over http.
    let local_http =
        sso.private_metadata_hosts() && (literal.is_some_and(|ip| !super::outbound::is_public(ip)) || parsed.host_str() == Some("localhost"));
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only https URLs work").into());
    }
    let private = |why: String| {
        AppError::Invalid(FieldError::new(
            "metadata_url",
            format!("Tessera doesn't fetch metadata from {why}. Use the IdP's public metadata URL, or paste the XML."),
        ))
    };
    if !sso.private_metadata_hosts() && literal.is_some_and(|ip| !super::outbound::is_public(ip)) {
        return Err(private("private or local addresses".into()).into());
    }
    if parsed.scheme() == "http" && !local_http {
        return Err(bad("it must be an https URL, so the certificates in it can't be swapped on the way").into());
    }
    let mut response = sso.http.get(parsed).send().await.map_err(|e| {
        let not_public = std::error::Error::source(&e).and_then(|mut cause| loop {
            if let Some(found) = cause.downcast_ref::<super::outbound::NotPublic>() {
                return Some(found.0.clone());
            }
            cause = cause.source()?;
        });
        match not_public {
            Some(host) => private(format!("{host}, which is a private or local address")),
            None => bad("the server didn't answer"),
        }
    })?;
    if !response.status().is_success() {
        return Err(bad("the server didn't return a document there").into());
    }
    // Read at most 1 MB, whatever the server claims or sends.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|_| bad("the answer couldn't be read"))? {
        body.extend_from_slice(&chunk);
        if body.len() > 1 << 20 {
            return Err(bad("the document is larger than 1 MB").into());
        }
    }
    String::from_utf8(body).map_err(|_| bad("the document isn't text").into())
}

/// An organization's SSO set-up, as the sign-in endpoints need it.
struct Connection {
    tenant_id: Uuid,
    slug: String,
    name: String,
    metadata_xml: String,
    sso_url: String,
    email_attribute: Option<String>,
    name_attribute: Option<String>,
    groups_attribute: Option<String>,
    group_roles: serde_json::Value,
    default_role: Role,
    jit_provisioning: bool,
    allow_idp_initiated: bool,
    /// The metadata in use before the IdP's last certificate change, while its keys are still
    /// trusted.
    previous_metadata_xml: Option<String>,
}

fn not_set_up() -> crate::Error {
    AppError::NotFound("This organization hasn't set up single sign-on. Sign in with your email instead.".into()).into()
}

async fn tenant_by_slug(tenancy: &Tenancy, slug: &str) -> Result<(Uuid, String, String)> {
    let slug = crate::tenancy::known_slug(slug).map_err(|_| not_set_up())?;
    let mut read = tenancy.system_read(&[]).await?;
    let found: Option<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, slug, name FROM tenants WHERE slug = $1 AND status IN ('active', 'moving', 'deleting')")
            .bind(slug.as_str())
            .fetch_optional(read.conn())
            .await?;
    found.ok_or_else(not_set_up)
}

/// The organization's SSO settings as stored.
#[derive(sqlx::FromRow)]
struct SsoRow {
    idp_metadata_xml: String,
    idp_sso_url: String,
    email_attribute: Option<String>,
    name_attribute: Option<String>,
    groups_attribute: Option<String>,
    group_roles: serde_json::Value,
    default_role: String,
    jit_provisioning: bool,
    allow_idp_initiated: bool,
    previous_metadata_xml: Option<String>,
}

async fn connection(tenancy: &Tenancy, slug: &str) -> Result<Connection> {
    let (tenant_id, slug, name) = tenant_by_slug(tenancy, slug).await?;
    let mut read = tenancy.system_read_in(tenant_id).await?;
    let row: Option<SsoRow> = sqlx::query_as(
        "SELECT idp_metadata_xml, idp_sso_url, email_attribute, name_attribute, groups_attribute, group_roles, default_role,
                jit_provisioning, allow_idp_initiated,
                CASE WHEN previous_trusted_until > now() THEN previous_metadata_xml END AS previous_metadata_xml
           FROM tenant_sso",
    )
    .fetch_optional(read.conn())
    .await?;
    let row = row.ok_or_else(not_set_up)?;
    Ok(Connection {
        tenant_id,
        slug,
        name,
        metadata_xml: row.idp_metadata_xml,
        sso_url: row.idp_sso_url,
        email_attribute: row.email_attribute,
        name_attribute: row.name_attribute,
        groups_attribute: row.groups_attribute,
        group_roles: row.group_roles,
        default_role: row.default_role.parse().unwrap_or(Role::Member),
        jit_provisioning: row.jit_provisioning,
        allow_idp_initiated: row.allow_idp_initiated,
        previous_metadata_xml: row.previous_metadata_xml,
    })
}

fn service_provider(sso: &Sso, slug: &str, idp_metadata: Option<EntityDescriptor>, allow_idp_initiated: bool) -> Result<ServiceProvider> {
    use samael::crypto::AllowedSignatureAlgorithm as Alg;
    let mut builder = ServiceProviderBuilder::default();
    builder
        .entity_id(sso.sp_entity_id(slug))
        .metadata_url(sso.sp_entity_id(slug))
        .acs_url(sso.acs_url(slug))
        .slo_url(format!("{}/sso/{slug}/logout", sso.public_url))
        .allow_idp_initiated(allow_idp_initiated)
        // SHA-1 signatures are forgeable in practice; modern IdPs all sign with SHA-256 or better.
        .allowed_signature_algorithms(vec![Alg::RsaSha256, Alg::RsaSha512, Alg::EcdsaSha256, Alg::EcdsaSha512]);
    if let Some(idp) = idp_metadata {
        builder.idp_metadata(idp);
    }
    builder.build().map_err(|e| crate::Error::Internal(format!("SAML service provider: {e}")))
}

/// This organization's service provider metadata, for importing into its IdP.
///
/// The document depends only on the URL name, so it is served for any well-formed name without
/// a lookup: the answer can't tell which organizations exist.
pub async fn sp_metadata(sso: &Sso, slug: &str) -> Result<String> {
    let slug = crate::tenancy::known_slug(slug).map_err(|_| not_set_up())?;
    let sp = service_provider(sso, slug.as_str(), None, false)?;
    sp.metadata().and_then(|m| m.to_string()).map_err(|e| crate::Error::Internal(format!("SP metadata: {e}")))
}

/// An SP-initiated sign-in on its way to the IdP: where to send the browser, and the nonce to
/// leave in a cookie of that browser (the sign-in can only be finished where it is presented).
pub struct StartedLogin {
    pub idp_url: String,
    pub browser_nonce: String,
}

/// Starts an SP-initiated sign-in: remembers the request, bound to a new browser nonce.
pub async fn start_login(tenancy: &Tenancy, sso: &Sso, slug: &str, next: &str, meta: &RequestMeta) -> Result<StartedLogin> {
    let conn = connection(tenancy, slug).await?;
    let idp: EntityDescriptor = conn.metadata_xml.parse().map_err(|_| crate::Error::Internal("stored IdP metadata no longer parses".into()))?;
    let sp = service_provider(sso, &conn.slug, Some(idp), false)?;
    let mut request = sp.make_authentication_request(&conn.sso_url).map_err(|e| crate::Error::Internal(format!("AuthnRequest: {e}")))?;
    // samael's default id has 32 random bits; a request id is a one-time secret, so use 122.
    request.id = format!("id-{}", Uuid::new_v4().simple());
    let mut tx = tenancy.bookkeeping(conn.tenant_id).await?;
    if let Some(ip) = meta.ip {
        throttle::hit(tx.conn(), &format!("sso:start:ip:{ip}"), throttle::SSO_STARTS_PER_IP).await?;
    }
    let browser_nonce = crate::identity::links::new_secret();
    sqlx::query("INSERT INTO saml_requests (id, tenant_id, next_path, browser_hash) VALUES ($1, $2, $3, $4)")
        .bind(&request.id)
        .bind(conn.tenant_id)
        .bind(next)
        .bind(crate::identity::links::digest(&browser_nonce))
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    let url = request
        .redirect("")
        .map_err(|e| crate::Error::Internal(format!("AuthnRequest redirect: {e}")))?
        .ok_or_else(|| crate::Error::Internal("AuthnRequest without destination".into()))?;
    Ok(StartedLogin { idp_url: url.to_string(), browser_nonce })
}

/// A person signed in through their organization's IdP, handed to the browser to finish.
#[derive(Debug)]
pub struct SsoSignIn {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// Where to go: the page they started from, or the organization.
    pub next: String,
}

/// A checked response, waiting for its browser: the single-use token it redeems, and whether
/// the sign-in was started here (then the browser's nonce must match; otherwise the person
/// confirms first).
#[derive(Debug)]
pub struct Handoff {
    pub token: String,
    pub started_here: bool,
}

/// How long the browser has to come back for a checked response.
const HANDOFF_LIFETIME_MINUTES: i32 = 5;

catalogue! {
    /// Why a response posted to an ACS was refused: a fixed code (the tallies and the audit log
    /// key on it, so whoever posts can't write free text there) and the clause a person reads.
    pub enum RefusalReason {
        BadSignature => "bad_signature", "its signature didn't verify against the IdP's certificate";
        WrongDestination => "wrong_destination", "it was addressed to another destination";
        WrongRecipient => "wrong_recipient", "it was meant for another recipient";
        WrongAudience => "wrong_audience", "it was meant for another service (audience)";
        NoAudience => "no_audience", "it doesn't say it is meant for this organization (no matching audience)";
        Expired => "expired", "it has expired";
        NotYetValid => "not_yet_valid", "it isn't valid yet";
        OtherIdp => "other_idp", "it came from another IdP";
        Unsolicited => "unsolicited", "it doesn't answer a sign-in started here (or that sign-in was already completed)";
        IdpReportedFailure => "idp_failure", "the IdP reported that the sign-in failed";
        Malformed => "malformed", "it isn't a valid SAML response";
        StoredMetadataBroken => "stored_metadata_broken", "the stored IdP metadata no longer parses";
        NoAssertionId => "no_assertion_id", "its assertion has no id";
        NoNameId => "no_name_id", "it doesn't name the person (no NameID)";
        NoEmail => "no_email", "it carries no email address Tessera can use (check the email attribute in the SSO settings)";
        UnverifiedDomain => "unverified_domain", "the address isn't at one of the organization's verified email domains";
        Replayed => "replayed", "it was already used (a replayed response)";
        NotInvited => "not_invited", "the person isn't a member and this organization adds people by invitation only";
        NameIdTaken => "name_id_taken", "its NameID already belongs to another account here";
        NoRoom => "no_room", "the organization can't take new members right now (no seat left on its plan, or it is read-only)";
    }
}

/// A refusal: its reason, and what the person is told when that says more than the reason's
/// words (their own address, for instance). Only the reason is stored.
struct Refusal {
    reason: RefusalReason,
    told: Option<String>,
}

impl Refusal {
    fn told(&self) -> &str {
        self.told.as_deref().unwrap_or(self.reason.description())
    }
}

fn refuse(reason: RefusalReason) -> Refusal {
    Refusal { reason, told: None }
}

fn refuse_saying(reason: RefusalReason, told: String) -> Refusal {
    Refusal { reason, told: Some(told) }
}

/// Checks a response with samael, off the async executor (libxml2 and RSA are blocking work;
/// samael's errors aren't `Send`, so they become text here).
async fn verify(
    sso: &Sso,
    conn: &Connection,
    response: String,
    request_ids: Vec<String>,
    allow_idp_initiated: bool,
) -> std::result::Result<Assertion, (bool, RefusalReason)> {
    let mut idp: EntityDescriptor = conn.metadata_xml.parse().map_err(|_| (false, RefusalReason::StoredMetadataBroken))?;
    if let Some(previous) = conn.previous_metadata_xml.as_deref().and_then(|xml| xml.parse::<EntityDescriptor>().ok()) {
        trust_previous_keys(&mut idp, &previous);
    }
    let sp = service_provider(sso, &conn.slug, Some(idp), allow_idp_initiated).map_err(|e| {
        tracing::warn!(error = %e, "the stored IdP metadata makes no service provider");
        (false, RefusalReason::StoredMetadataBroken)
    })?;
    let slug = conn.slug.clone();
    tokio::task::spawn_blocking(move || {
        let ids: Vec<&str> = request_ids.iter().map(String::as_str).collect();
        let compact: String = response.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        sp.parse_base64_response(&compact, Some(&ids)).map_err(|e| {
            use samael::service_provider::Error as E;
            let reason = match e.downcast_ref::<E>() {
                Some(E::FailedToValidateSignature) => RefusalReason::BadSignature,
                Some(E::DestinationValidationError { .. }) => RefusalReason::WrongDestination,
                Some(E::AssertionRecipientMismatch { .. }) => RefusalReason::WrongRecipient,
                Some(E::AssertionConditionAudienceRestrictionFailed { .. }) => RefusalReason::WrongAudience,
                Some(
                    E::AssertionConditionExpired { .. }
                    | E::AssertionSubjectConfirmationExpired { .. }
                    | E::AssertionExpired { .. }
                    | E::ResponseExpired { .. },
                ) => RefusalReason::Expired,
                Some(E::AssertionConditionExpiredBefore { .. } | E::AssertionSubjectConfirmationExpiredBefore { .. }) => RefusalReason::NotYetValid,
                Some(E::AssertionIssuerMismatch { .. } | E::ResponseIssuerMismatch { .. }) => RefusalReason::OtherIdp,
                Some(E::ResponseInResponseToInvalid { .. } | E::AssertionInResponseToInvalid { .. }) => RefusalReason::Unsolicited,
                Some(E::ResponseBadStatusCode { .. }) => RefusalReason::IdpReportedFailure,
                _ => {
                    // The parser's words may quote the posted document: logs only.
                    tracing::info!(tenant = %slug, error = %e, "an unreadable SAML response");
                    RefusalReason::Malformed
                }
            };
            (reason == RefusalReason::Unsolicited, reason)
        })
    })
    .await
    .map_err(|_| (false, RefusalReason::Malformed))?
}

fn attribute_values<'a>(assertion: &'a Assertion, name: &str) -> Vec<&'a str> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
        .flat_map(|a| a.values.iter().filter_map(|v| v.value.as_deref()))
        .collect()
}

/// Common attribute names for an address, tried when the admin named none and NameID isn't one.
const EMAIL_ATTRIBUTES: [&str; 4] =
    ["email", "mail", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", "urn:oid:0.9.2342.19200300.100.1.3"];

/// Accepts a response posted to the organization's ACS. `relay_state` is only a hint of
/// where to go (a local path) for IdP-initiated sign-ins.
pub async fn consume(
    tenancy: &Tenancy,
    sso: &Sso,
    slug: &str,
    saml_response: &str,
    relay_state: Option<&str>,
    meta: &RequestMeta,
) -> Result<Handoff> {
    let conn = connection(tenancy, slug).await?;
    let refusals = meta.ip.map(|ip| format!("sso:refused:ip:{ip}"));
    if let Some(bucket) = &refusals {
        let mut tx = tenancy.bookkeeping_presented(&[]).await?;
        let hits = throttle::current(tx.conn(), bucket, throttle::SSO_REFUSALS_PER_IP).await?;
        tx.commit().await?;
        if hits >= throttle::SSO_REFUSALS_PER_IP.max {
            return Err(AppError::RateLimited(
                "Too many sign-ins from your network were refused just now. Wait 15 minutes, then sign in again from your identity provider.".into(),
            )
            .into());
        }
    }
    match accept(tenancy, sso, &conn, saml_response, relay_state, meta).await {
        Ok(Ok(handoff)) => Ok(handoff),
        Ok(Err(refusal)) => {
            let reason = refusal.reason;
            tracing::warn!(tenant = %conn.slug, reason = reason.name(), told = refusal.told(), "refused a SAML response");
            let mut tally = tenancy.bookkeeping(conn.tenant_id).await?;
            if let Some(bucket) = &refusals {
                throttle::record(tally.conn(), bucket, throttle::SSO_REFUSALS_PER_IP).await?;
            }
            if count_refusal(tally.conn(), reason, meta).await? {
                let entry = AuditEntry::new("sso.login_refused", "tenant", conn.tenant_id, serde_json::json!({ "reason": { "new": reason.name() } }));
                tally.record(&SystemActor::Person(None, meta.clone()), entry).await?;
            }
            tally.commit().await?;
            Err(AppError::Forbidden(format!(
                "We couldn't sign you in to {} through its identity provider: {}. Try signing in again; if it keeps happening, tell your IT team.",
                conn.name,
                refusal.told()
            ))
            .into())
        }
        Err(e) => Err(e),
    }
}

/// Counts a refusal in this organization's quarter-hour tally. True when it should also go into
/// the audit log: the first of its reason this quarter hour. Reasons are a fixed list, so that
/// is at most one entry per reason per quarter hour however many are posted; a bad signature
/// is never crowded out by floods of other reasons.
async fn count_refusal(conn: &mut sqlx::PgConnection, reason: RefusalReason, meta: &RequestMeta) -> Result<bool> {
    let refused: i32 = sqlx::query_scalar(
        "INSERT INTO sso_refusals (window_start, reason, last_ip) VALUES (date_bin('15 minutes', now(), timestamptz 'epoch'), $1, $2::inet)
         ON CONFLICT (tenant_id, window_start, reason) DO UPDATE SET refused = sso_refusals.refused + 1, last_ip = EXCLUDED.last_ip
         RETURNING refused",
    )
    .bind(reason.name())
    .bind(meta.ip.map(|ip| ip.to_string()))
    .fetch_one(&mut *conn)
    .await?;
    Ok(refused == 1)
}

async fn accept(
    tenancy: &Tenancy,
    sso: &Sso,
    conn: &Connection,
    saml_response: &str,
    relay_state: Option<&str>,
    meta: &RequestMeta,
) -> Result<std::result::Result<Handoff, Refusal>> {
    let outstanding: Vec<String> = {
        let mut read = tenancy.system_read_in(conn.tenant_id).await?;
        sqlx::query_scalar("SELECT id FROM saml_requests WHERE used_at IS NULL AND created_at > now() - make_interval(mins => $1)")
            .bind(REQUEST_LIFETIME_MINUTES)
            .fetch_all(read.conn())
            .await?
    };
    let assertion = match verify(sso, conn, saml_response.to_string(), outstanding.clone(), false).await {
        Ok(assertion) => assertion,
        // Not an answer to one of our requests: acceptable only as a genuinely unsolicited
        // (IdP-initiated) response, and only where the organization allows those.
        Err((true, _)) if conn.allow_idp_initiated => match verify(sso, conn, saml_response.to_string(), Vec::new(), true).await {
            Ok(assertion) => assertion,
            Err((_, reason)) => return Ok(Err(refuse(reason))),
        },
        Err((_, reason)) => return Ok(Err(refuse(reason))),
    };
    let answered: Option<String> = assertion
        .subject
        .as_ref()
        .and_then(|s| s.subject_confirmations.as_ref())
        .and_then(|c| c.iter().find_map(|c| c.subject_confirmation_data.as_ref().and_then(|d| d.in_response_to.clone())));
    if let Some(request_id) = &answered {
        if !outstanding.contains(request_id) {
            return Ok(Err(refuse(RefusalReason::Unsolicited)));
        }
    }
    let audience_ok = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .is_some_and(|rs| !rs.is_empty() && rs.iter().all(|r| r.audience.iter().any(|a| *a == sso.sp_entity_id(&conn.slug))));
    if !audience_ok {
        return Ok(Err(refuse(RefusalReason::NoAudience)));
    }
    if assertion.id.trim().is_empty() {
        return Ok(Err(refuse(RefusalReason::NoAssertionId)));
    }

    let name_id = assertion.subject.as_ref().and_then(|s| s.name_id.as_ref()).map(|n| n.value.trim().to_string()).filter(|v| !v.is_empty());
    let Some(name_id) = name_id else {
        return Ok(Err(refuse(RefusalReason::NoNameId)));
    };
    let email = match &conn.email_attribute {
        Some(attribute) => attribute_values(&assertion, attribute).first().map(|v| v.to_string()),
        None if Email::parse(&name_id).is_ok() => Some(name_id.clone()),
        None => EMAIL_ATTRIBUTES.iter().find_map(|a| attribute_values(&assertion, a).first().map(|v| v.to_string())),
    };
    let Some(email) = email.and_then(|e| Email::parse(&e).ok()) else {
        return Ok(Err(refuse(RefusalReason::NoEmail)));
    };
    let display_name =
        conn.name_attribute.as_deref().and_then(|a| attribute_values(&assertion, a).first().map(|v| v.trim().chars().take(100).collect::<String>()));
    let groups: Vec<String> =
        conn.groups_attribute.as_deref().map(|a| attribute_values(&assertion, a).into_iter().map(str::to_string).collect()).unwrap_or_default();
    let mapped_role = groups
        .iter()
        .filter_map(|g| conn.group_roles.get(g).and_then(|r| r.as_str()).and_then(|r| r.parse::<Role>().ok()))
        .filter(|r| *r != Role::Owner)
        // Role's order is Owner < Admin < Member < Viewer: the smallest is the most powerful.
        .min();
    let domain = email.as_str().rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();

    let mut tx = tenancy.system_write(conn.tenant_id, SystemActor::Person(None, meta.clone())).await?;
    let result = async {
        let domain_ok: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenant_domains WHERE domain = $1 AND verified_at IS NOT NULL)")
            .bind(&domain)
            .fetch_one(tx.conn())
            .await?;
        if !domain_ok {
            return Ok(Err(refuse_saying(RefusalReason::UnverifiedDomain, format!("{} isn't at one of the organization's verified email domains", email.as_str()))));
        }
        let expires = assertion
            .conditions
            .as_ref()
            .and_then(|c| c.not_on_or_after)
            .map(|t| t.timestamp())
            .unwrap_or_else(|| chrono::Utc::now().timestamp() + REPLAY_MEMORY_MINUTES * 60);
        let fresh = sqlx::query(
            "INSERT INTO saml_assertions_seen (tenant_id, assertion_id, expires_at) VALUES ($1, $2, to_timestamp($3)) ON CONFLICT DO NOTHING",
        )
        .bind(conn.tenant_id)
        .bind(&assertion.id)
        .bind(expires as f64)
        .execute(tx.conn())
        .await?;
        if fresh.rows_affected() == 0 {
            return Ok(Err(refuse(RefusalReason::Replayed)));
        }
        let mut next = None;
        let mut browser_hash: Option<Vec<u8>> = None;
        if let Some(request_id) = &answered {
            let request: Option<(String, Option<Vec<u8>>)> =
                sqlx::query_as("UPDATE saml_requests SET used_at = now() WHERE id = $1 AND used_at IS NULL RETURNING next_path, browser_hash")
                    .bind(request_id)
                    .fetch_optional(tx.conn())
                    .await?;
            let Some((path, hash)) = request else {
                return Ok(Err(refuse(RefusalReason::Unsolicited)));
            };
            next = Some(path);
            // Requests from before browsers were bound have no nonce: such a sign-in is
            // confirmed on our page instead, like an IdP-initiated one.
            browser_hash = hash;
        }
        let provider = format!("saml:{}", conn.tenant_id);
        let linked: Option<Uuid> = sqlx::query_scalar(
            "UPDATE user_identities SET last_used_at = now(), email = $3 WHERE provider = $1 AND subject = $2 RETURNING user_id",
        )
        .bind(&provider)
        .bind(&name_id)
        .bind(email.as_str())
        .fetch_optional(tx.conn())
        .await?;
        let user_id = match linked {
            Some(user_id) => user_id,
            None => {
                let existing: Option<(Uuid, bool)> = sqlx::query_as("SELECT id, email_verified_at IS NULL FROM users WHERE lower(email) = $1 FOR UPDATE")
                    .bind(email.as_str())
                    .fetch_optional(tx.conn())
                    .await?;
                let user_id = match existing {
                    Some((user_id, unconfirmed)) => {
                        // The organization owns the domain; whoever registered this address
                        // without confirming it is shut out, as with a magic link.
                        if unconfirmed {
                            crate::identity::evict_unconfirmed_registrant(tx.conn(), user_id).await?;
                        }
                        user_id
                    }
                    None if conn.jit_provisioning => {
                        let user_id = Uuid::new_v4();
                        sqlx::query("INSERT INTO users (id, email, display_name, password_hash, email_verified_at) VALUES ($1, $2, $3, '!unusable', now())")
                            .bind(user_id)
                            .bind(email.as_str())
                            .bind(display_name.as_deref().filter(|n| !n.is_empty()))
                            .execute(tx.conn())
                            .await?;
                        user_id
                    }
                    None => return Ok(Err(refuse_saying(RefusalReason::NotInvited, format!("{} has no account yet and this organization adds people by invitation only", email.as_str())))),
                };
                let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_identities WHERE provider = $1 AND subject = $2)")
                    .bind(&provider)
                    .bind(&name_id)
                    .fetch_one(tx.conn())
                    .await?;
                if taken {
                    return Ok(Err(refuse(RefusalReason::NameIdTaken)));
                }
                sqlx::query("INSERT INTO user_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, provider) DO UPDATE SET subject = EXCLUDED.subject, email = EXCLUDED.email, last_used_at = now()")
                    .bind(user_id)
                    .bind(&provider)
                    .bind(&name_id)
                    .bind(email.as_str())
                    .execute(tx.conn())
                    .await?;
                user_id
            }
        };
        let current: Option<(String, Option<Uuid>)> =
            sqlx::query_as("SELECT role, custom_role_id FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE")
                .bind(conn.tenant_id)
                .bind(user_id)
                .fetch_optional(tx.conn())
                .await?;
        tx.acting_as(user_id);
        // Under a custom role the stored role is its base (`viewer`): a mapping to Viewer still
        // replaces the custom role.
        let custom_role = current.as_ref().and_then(|(_, custom)| *custom);
        match current.map(|(r, _)| r.parse::<Role>().unwrap_or(Role::Viewer)) {
            None if !conn.jit_provisioning => {
                return Ok(Err(refuse_saying(RefusalReason::NotInvited, format!("{} isn't a member and this organization adds people by invitation only", email.as_str()))));
            }
            None => {
                // Joining takes a seat like accepting an invitation does; refused, the account
                // made for this sign-in above goes back with the transaction.
                match crate::billing::account::require_room_for_member(tx.conn(), tenancy, conn.tenant_id).await {
                    Ok(()) => {}
                    Err(crate::Error::App(AppError::PaymentRequired(why))) => {
                        let told = format!("{} can't take new members right now ({}); tell one of its admins", conn.name, why.trim_end_matches('.'));
                        return Ok(Err(refuse_saying(RefusalReason::NoRoom, told)));
                    }
                    Err(e) => return Err(e),
                }
                let role = mapped_role.unwrap_or(conn.default_role);
                sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)")
                    .bind(conn.tenant_id)
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(tx.conn())
                    .await?;
                let entry = AuditEntry::new("membership.added", "user", user_id, serde_json::json!({ "role": { "new": role.as_str() }, "via": { "new": "sso" } }));
                tx.record(entry).await?;
                crate::notifications::notify(tx.conn(), crate::notifications::Event::MemberJoined { tenant_id: conn.tenant_id, user_id, role }).await?;
                let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::Added, user_id, role, None);
                crate::webhooks::events::member_changed(tx.conn(), conn.tenant_id, change).await?;
                crate::billing::account::seats_changed(tx.conn(), conn.tenant_id).await?;
            }
            // Groups keep roles in step with the IdP, but never touch an Owner.
            Some(old) if old != Role::Owner && mapped_role.is_some_and(|r| r != old || custom_role.is_some()) => {
                let role = mapped_role.expect("checked");
                // The IdP's word replaces a custom role too.
                sqlx::query("UPDATE memberships SET role = $3, custom_role_id = NULL WHERE tenant_id = $1 AND user_id = $2")
                    .bind(conn.tenant_id)
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(tx.conn())
                    .await?;
                let entry = AuditEntry::new(
                    "membership.role_changed",
                    "user",
                    user_id,
                    serde_json::json!({
                        "role": { "old": custom_role.map_or(old.as_str().to_string(), |id| format!("custom:{id}")), "new": role.as_str() },
                        "via": { "new": "sso groups" }
                    }),
                );
                tx.record(entry).await?;
                let event = crate::notifications::Event::RoleChanged { tenant_id: conn.tenant_id, user_id, role, custom_role: None, by: None };
                crate::notifications::notify(tx.conn(), event).await?;
                let change = crate::webhooks::events::MemberChange::now(crate::webhooks::events::MemberEventKind::RoleChanged, user_id, role, Some(old));
                crate::webhooks::events::member_changed(tx.conn(), conn.tenant_id, change).await?;
            }
            Some(_) => {}
        }
        // Groups that mirror the IdP's follow what this assertion says (in the organization's
        // data, so by a job).
        if conn.groups_attribute.is_some() {
            let sync = crate::access::groups::SyncIdpGroups { tenant_id: conn.tenant_id, user_id, groups: groups.clone(), signed_in_at: time::OffsetDateTime::now_utc() };
            crate::jobs::enqueue(tx.conn(), crate::jobs::Lane::Organization(conn.tenant_id), &sync).await?;
        }
        let entry = AuditEntry::new(
            "sso.login",
            "user",
            user_id,
            serde_json::json!({ "email": { "new": email.as_str() }, "initiated_by": { "new": if answered.is_some() { "sp" } else { "idp" } } }),
        );
        let fallback = format!("/t/{}", conn.slug);
        let next = next.or_else(|| relay_state.and_then(tessera_domain::input::local_path).map(str::to_string)).unwrap_or(fallback);
        let token = crate::identity::links::new_secret();
        sqlx::query(
            "INSERT INTO sso_handoffs (token_hash, tenant_id, user_id, email, browser_hash, next_path, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(mins => $7))",
        )
        .bind(crate::identity::links::digest(&token))
        .bind(conn.tenant_id)
        .bind(user_id)
        .bind(email.as_str())
        .bind(&browser_hash)
        .bind(&next)
        .bind(HANDOFF_LIFETIME_MINUTES)
        .execute(tx.conn())
        .await?;
        Ok::<_, crate::Error>(Ok((Handoff { token, started_here: browser_hash.is_some() }, entry)))
    }
    .await?;
    match result {
        Ok((sign_in, signed_in)) => {
            tx.commit(signed_in).await?;
            crate::jobs::wake();
            Ok(Ok(sign_in))
        }
        Err(refusal) => Ok(Err(refusal)),
    }
}

fn handoff_gone() -> crate::Error {
    AppError::BadRequest("This sign-in has expired or was already used. Start again from the sign-in page.".into()).into()
}

/// Opens a transaction in which the handoff `token` (and only it) is visible.
async fn handoff_tx(tenancy: &Tenancy, token: &str) -> Result<Bookkeeping> {
    let hash = crate::db::hex(&crate::identity::links::digest(token));
    tenancy.bookkeeping_presented(&[(crate::db::Setting::SsoHandoff, &hash)]).await
}

/// Who an IdP-initiated sign-in would sign in, and where, for the confirmation page.
pub async fn preview_handoff(tenancy: &Tenancy, token: &str) -> Result<tessera_domain::dto::SsoHandoffPreview> {
    let mut tx = handoff_tx(tenancy, token).await?;
    let found: Option<(String, String)> = sqlx::query_as(
        "SELECT h.email, t.name FROM sso_handoffs h JOIN tenants t ON t.id = h.tenant_id
          WHERE h.used_at IS NULL AND h.expires_at > now() AND h.browser_hash IS NULL",
    )
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    let (email, organization) = found.ok_or_else(handoff_gone)?;
    Ok(tessera_domain::dto::SsoHandoffPreview { email, organization })
}

/// How the browser redeeming a handoff shows it is the right one.
pub enum Redeemer<'a> {
    /// The nonce cookie left when the sign-in started here (SP-initiated).
    Nonce(Option<&'a str>),
    /// The person confirmed on our own page that they mean to continue (IdP-initiated).
    Confirmed,
}

/// Redeems a handoff, once. An SP-initiated sign-in needs the nonce of the browser that started
/// it; an IdP-initiated one needs the person's confirmation.
pub async fn redeem_handoff(tenancy: &Tenancy, token: &str, redeemer: Redeemer<'_>) -> Result<SsoSignIn> {
    let mut tx = handoff_tx(tenancy, token).await?;
    let found: Option<(Uuid, Uuid, Option<Vec<u8>>, String)> = sqlx::query_as(
        "UPDATE sso_handoffs SET used_at = now() WHERE used_at IS NULL AND expires_at > now()
         RETURNING tenant_id, user_id, browser_hash, next_path",
    )
    .fetch_optional(tx.conn())
    .await?;
    let (tenant_id, user_id, browser_hash, next) = found.ok_or_else(handoff_gone)?;
    match (&browser_hash, redeemer) {
        (Some(expected), Redeemer::Nonce(Some(nonce))) if crate::identity::links::digest(nonce) == *expected => {}
        (Some(_), _) => {
            return Err(AppError::Forbidden(
                "This sign-in was started in another browser, so it can't be finished here. Start again from the sign-in page in this browser."
                    .into(),
            )
            .into())
        }
        (None, Redeemer::Confirmed) => {}
        (None, Redeemer::Nonce(_)) => {
            return Err(AppError::BadRequest("Confirm this sign-in on the page that asks for it.".into()).into());
        }
    }
    tx.commit().await?;
    Ok(SsoSignIn { user_id, tenant_id, next })
}
