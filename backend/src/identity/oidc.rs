//! Signing in with outside identity providers: over OpenID Connect (Google, Microsoft, Okta,
//! any provider with discovery), authorization code flow with PKCE, `state` and `nonce`; and
//! GitHub, which is plain OAuth 2 with the same code flow (see `github.rs`).
//!
//! Accounts are matched by the provider's subject id once linked. A first sign-in is linked to
//! an existing account only through an address the provider says it has verified; otherwise
//! anyone who can create a provider account with your address could walk into yours.

use super::events::{self, Event};
use super::Identity;
use crate::ctx::RequestMeta;
use crate::error::Result;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_domain::dto::{CurrentUser, LinkedIdentity};
use tessera_domain::AppError;
use uuid::Uuid;

/// One configured provider (`TESSERA_OIDC_PROVIDERS`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Short name in URLs: `/auth/oidc/<id>/callback`.
    pub id: String,
    /// What the button says: "Continue with <name>".
    pub name: String,
    #[serde(default)]
    pub kind: ProviderKind,
    /// OpenID Connect: exactly as the provider states it in its discovery document.
    #[serde(default)]
    pub issuer: Option<String>,
    /// GitHub: an Enterprise Server's address (`https://github.example.com`); github.com if absent.
    #[serde(default)]
    pub server_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Oidc,
    Github,
}

impl ProviderConfig {
    /// What's wrong with this entry, in words for whoever set the variable.
    pub fn problem(&self) -> Option<String> {
        // https, except on this machine (a local stand-in): secrets and codes travel here.
        let acceptable = |u: &str| match reqwest::Url::parse(u) {
            Ok(url) if url.query().is_none() && url.fragment().is_none() => match url.scheme() {
                "https" => true,
                "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
                _ => false,
            },
            _ => false,
        };
        match self.kind {
            ProviderKind::Oidc => match self.issuer.as_deref() {
                None => Some(format!("provider {:?} needs an \"issuer\" (or \"kind\": \"github\")", self.id)),
                Some(issuer) if !acceptable(issuer) => Some(format!("provider {:?}: issuer {issuer:?} must be an https URL", self.id)),
                _ => self.server_url.as_ref().map(|_| format!("provider {:?}: \"server_url\" is only for \"kind\": \"github\"", self.id)),
            },
            ProviderKind::Github => match (&self.issuer, self.server_url.as_deref()) {
                (Some(_), _) => Some(format!("provider {:?}: GitHub has no issuer; use \"server_url\" for an Enterprise Server", self.id)),
                (None, Some(url)) if !acceptable(url) => Some(format!("provider {:?}: server_url {url:?} must be an https URL", self.id)),
                _ => None,
            },
        }
    }
}

type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Discovery documents are cached this long (providers rotate signing keys, rarely).
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// A sign-in must come back from the provider within this time.
pub const PENDING_LIFETIME_SECS: i64 = 10 * 60;

#[derive(Clone)]
pub struct Oidc {
    http: reqwest::Client,
    providers: Arc<Vec<ProviderConfig>>,
    metadata: Arc<Mutex<HashMap<String, (CoreProviderMetadata, Instant)>>>,
    public_url: String,
}

/// What this browser's session keeps between leaving for the provider and coming back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub provider: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    pub next: String,
    /// Connecting an identity to this signed-in user, rather than signing in.
    pub link_user: Option<Uuid>,
    pub started_at: i64,
}

/// Who the provider says came back.
#[derive(Clone, Debug)]
pub struct ExternalIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

pub(super) fn unavailable(name: &str) -> crate::Error {
    AppError::Unavailable(format!("Signing in with {name} isn't working right now. Try again in a few minutes, or use your email.")).into()
}

fn refused(message: impl Into<String>) -> crate::Error {
    AppError::Forbidden(message.into()).into()
}

impl Oidc {
    pub fn new(providers: Vec<ProviderConfig>, public_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            // Following redirects during token or userinfo calls would let a provider steer our
            // server to arbitrary addresses.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        Ok(Self { http, providers: Arc::new(providers), metadata: Arc::default(), public_url: public_url.trim_end_matches('/').to_string() })
    }

    /// (id, name) of each configured provider, for the sign-in buttons.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.providers.iter().map(|p| (p.id.clone(), p.name.clone())).collect()
    }

    fn provider(&self, id: &str) -> Result<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id).ok_or_else(|| AppError::NotFound("That sign-in provider isn't set up here.".into()).into())
    }

    async fn client(&self, provider: &ProviderConfig) -> Result<Client> {
        let cached = {
            let cache = self.metadata.lock().expect("metadata cache lock");
            cache.get(&provider.id).filter(|(_, at)| at.elapsed() < METADATA_TTL).map(|(m, _)| m.clone())
        };
        let metadata = match cached {
            Some(metadata) => metadata,
            None => {
                let issuer =
                    IssuerUrl::new(provider.issuer.clone().unwrap_or_default()).map_err(|e| crate::Error::Internal(format!("issuer URL: {e}")))?;
                let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| {
                    tracing::warn!(provider = %provider.id, error = %e, "OpenID Connect discovery failed");
                    unavailable(&provider.name)
                })?;
                self.metadata.lock().expect("metadata cache lock").insert(provider.id.clone(), (metadata.clone(), Instant::now()));
                metadata
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url(provider)?))
    }

    fn redirect_url(&self, provider: &ProviderConfig) -> Result<RedirectUrl> {
        RedirectUrl::new(format!("{}/auth/oidc/{}/callback", self.public_url, provider.id))
            .map_err(|e| crate::Error::Internal(format!("redirect URL: {e}")))
    }

    /// Where to send the browser, and what to keep in its session until it comes back.
    pub async fn start(&self, provider_id: &str, next: String, link_user: Option<Uuid>) -> Result<(String, PendingAuthorization)> {
        let provider = self.provider(provider_id)?;
        let started_at = time::OffsetDateTime::now_utc().unix_timestamp();
        if provider.kind == ProviderKind::Github {
            let (url, state, verifier) = super::github::authorize_url(&super::github::client(provider, self.redirect_url(provider)?)?);
            let pending = PendingAuthorization {
                provider: provider.id.clone(),
                state: state.secret().clone(),
                // Plain OAuth 2 has no ID token to carry a nonce; `state` and PKCE bind the flow.
                nonce: String::new(),
                pkce_verifier: verifier.secret().clone(),
                next,
                link_user,
                started_at,
            };
            return Ok((url, pending));
        }
        let client = self.client(provider).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingAuthorization {
            provider: provider.id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
            link_user,
            started_at,
        };
        Ok((url.to_string(), pending))
    }

    /// Completes the flow: the `state` must be the one this browser was sent off with; the
    /// code is exchanged with the PKCE verifier; the ID token's signature, issuer, audience,
    /// expiry and nonce are checked; the profile comes from the userinfo endpoint (for the
    /// same subject), falling back to the ID token's claims.
    pub async fn finish(&self, pending: &PendingAuthorization, state: &str, code: &str) -> Result<ExternalIdentity> {
        let provider = self.provider(&pending.provider)?;
        let age = time::OffsetDateTime::now_utc().unix_timestamp() - pending.started_at;
        if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) || age > PENDING_LIFETIME_SECS {
            return Err(AppError::BadRequest(format!(
                "This sign-in with {} didn't start in this browser, or took too long. Please start again.",
                provider.name
            ))
            .into());
        }
        if provider.kind == ProviderKind::Github {
            let client = super::github::client(provider, self.redirect_url(provider)?)?;
            return super::github::finish(&self.http, provider, &client, code, &pending.pkce_verifier).await;
        }
        let client = self.client(provider).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| unavailable(&provider.name))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %provider.id, error = %e, "OpenID Connect code exchange failed");
                AppError::BadRequest(format!(
                    "{} didn't accept this sign-in (the link may have been used already). Please start again.",
                    provider.name
                ))
            })?;
        let id_token = token.id_token().ok_or_else(|| unavailable(&provider.name))?;
        let claims = id_token.claims(&client.id_token_verifier(), &Nonce::new(pending.nonce.clone())).map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, "an ID token failed verification");
            refused(format!("The answer from {} couldn't be verified, so we didn't sign you in.", provider.name))
        })?;
        let subject = claims.subject().clone();
        let mut identity = ExternalIdentity {
            provider: provider.id.clone(),
            subject: subject.as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()),
        };
        if let Ok(request) = client.user_info(openidconnect::OAuth2TokenResponse::access_token(&token).clone(), Some(subject)) {
            let info: std::result::Result<CoreUserInfoClaims, _> = request.request_async(&self.http).await;
            match info {
                Ok(info) => {
                    if let Some(email) = info.email() {
                        identity.email = Some(email.as_str().to_string());
                        identity.email_verified = info.email_verified().unwrap_or(false);
                    }
                    if let Some(name) = info.name().and_then(|n| n.get(None)) {
                        identity.name = Some(name.as_str().to_string());
                    }
                }
                Err(e) => tracing::warn!(provider = %provider.id, error = %e, "userinfo request failed; using the ID token's claims"),
            }
        }
        Ok(identity)
    }

    pub fn provider_name(&self, id: &str) -> String {
        self.provider(id).map(|p| p.name.clone()).unwrap_or_else(|_| id.to_string())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Identity {
    /// Signs in (or up) with an outside identity. Known subject: that user. Otherwise the
    /// provider must vouch for the address: an existing account with it is linked (and, if
    /// its owner never confirmed the address, whoever registered it is shut out, as with a
    /// magic link); no account means a new one.
    pub async fn sign_in_external(&self, ext: &ExternalIdentity, provider_name: &str, meta: &RequestMeta) -> Result<CurrentUser> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let linked: Option<Uuid> = sqlx::query_scalar(
            "UPDATE user_identities SET last_used_at = now(), email = COALESCE($3, email) WHERE provider = $1 AND subject = $2 RETURNING user_id",
        )
        .bind(&ext.provider)
        .bind(&ext.subject)
        .bind(ext.email.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        let user_id = match linked {
            Some(user_id) => user_id,
            None => {
                let Some(email) = ext.email.as_deref().filter(|_| ext.email_verified).map(str::to_lowercase) else {
                    events::record(&mut tx, Event::ExternalRefused, None, ext.email.as_deref(), meta).await?;
                    tx.commit().await?;
                    return Err(refused(format!(
                        "Your {provider_name} account's email address isn't verified, so we can't use it to sign you in. \
                         Verify it with {provider_name}, or sign in with your email instead."
                    )));
                };
                let existing: Option<(Uuid, bool)> =
                    sqlx::query_as("SELECT id, email_verified_at IS NULL FROM users WHERE lower(email) = $1 FOR UPDATE")
                        .bind(&email)
                        .fetch_optional(&mut *tx)
                        .await?;
                let user_id = match existing {
                    Some((user_id, unconfirmed)) => {
                        if unconfirmed {
                            super::evict_unconfirmed_registrant(&mut tx, user_id).await?;
                        }
                        user_id
                    }
                    None => {
                        let user_id = Uuid::new_v4();
                        let name = ext.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(|n| n.chars().take(100).collect::<String>());
                        sqlx::query(
                            "INSERT INTO users (id, email, display_name, password_hash, email_verified_at) VALUES ($1, $2, $3, '!unusable', now())",
                        )
                        .bind(user_id)
                        .bind(&email)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                        user_id
                    }
                };
                let inserted = sqlx::query(
                    "INSERT INTO user_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, provider) DO NOTHING",
                )
                .bind(user_id)
                .bind(&ext.provider)
                .bind(&ext.subject)
                .bind(&email)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    events::record(&mut tx, Event::ExternalRefused, Some(user_id), Some(&email), meta).await?;
                    tx.commit().await?;
                    return Err(refused(format!(
                        "Your Tessera account is connected to a different {provider_name} account. Sign in with that one, or with your email."
                    )));
                }
                events::record(&mut tx, Event::ExternalLinked, Some(user_id), Some(&email), meta).await?;
                user_id
            }
        };
        events::record(&mut tx, Event::ExternalSignIn, Some(user_id), ext.email.as_deref(), meta).await?;
        crate::notifications::notify(&mut tx, super::new_sign_in(user_id, meta)).await?;
        tx.commit().await?;
        crate::jobs::wake();
        self.user(user_id).await?.ok_or_else(|| AppError::not_found().into())
    }

    /// Connects an outside identity to a signed-in user (any address: they are signed in).
    pub async fn link_external(&self, user_id: Uuid, ext: &ExternalIdentity, provider_name: &str, meta: &RequestMeta) -> Result<()> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let owner: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2")
            .bind(&ext.provider)
            .bind(&ext.subject)
            .fetch_optional(&mut *tx)
            .await?;
        match owner {
            Some(owner) if owner == user_id => return Ok(()),
            Some(_) => {
                return Err(AppError::Conflict(tessera_domain::input::FieldError::new(
                    "provider",
                    format!("That {provider_name} account is already connected to another Tessera account."),
                ))
                .into())
            }
            None => {}
        }
        let inserted = sqlx::query(
            "INSERT INTO user_identities (user_id, provider, subject, email) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, provider) DO NOTHING",
        )
        .bind(user_id)
        .bind(&ext.provider)
        .bind(&ext.subject)
        .bind(ext.email.as_deref())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(AppError::Conflict(tessera_domain::input::FieldError::new(
                "provider",
                format!("You already have a {provider_name} account connected. Disconnect it first to connect another."),
            ))
            .into());
        }
        events::record(&mut tx, Event::ExternalLinked, Some(user_id), ext.email.as_deref(), meta).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn identities_of(&self, user_id: Uuid, oidc: &Oidc) -> Result<Vec<LinkedIdentity>> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let rows: Vec<(Uuid, String, Option<String>, time::OffsetDateTime, time::OffsetDateTime)> =
            sqlx::query_as("SELECT id, provider, email, linked_at, last_used_at FROM user_identities WHERE user_id = $1 ORDER BY linked_at")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, provider, email, linked_at, last_used_at)| LinkedIdentity {
                id,
                provider_name: oidc.provider_name(&provider),
                provider,
                email,
                linked_at: crate::members::rfc3339(linked_at),
                last_used_at: crate::members::rfc3339(last_used_at),
            })
            .collect())
    }

    /// Disconnects an identity. Nobody is locked out by this: an emailed sign-in link always works.
    pub async fn unlink_external(&self, user_id: Uuid, identity_id: Uuid, meta: &RequestMeta) -> Result<()> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let removed: Option<Option<String>> = sqlx::query_scalar("DELETE FROM user_identities WHERE id = $1 AND user_id = $2 RETURNING email")
            .bind(identity_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(email) = removed else {
            return Err(AppError::NotFound("That connection doesn't exist (it may have been removed already).".into()).into());
        };
        events::record(&mut tx, Event::ExternalUnlinked, Some(user_id), email.as_deref(), meta).await?;
        tx.commit().await?;
        Ok(())
    }
}
