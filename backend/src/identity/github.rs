//! "Continue with GitHub": GitHub (and GitHub Enterprise Server) speaks plain OAuth 2, not
//! OpenID Connect. There is no ID token, so who came back is whatever GitHub's REST API says
//! about the access token: `/user` for the stable numeric id and name, `/user/emails` for the
//! addresses GitHub has verified (the public profile email may be unverified, or absent).

use super::oidc::{ExternalIdentity, ProviderConfig};
use crate::error::Result;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

pub type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// `read:user` for the profile, `user:email` for the verified addresses.
const SCOPES: [&str; 2] = ["read:user", "user:email"];
/// GitHub asks API clients to name the API version they were written against.
const API_VERSION: &str = "2022-11-28";

/// Where the provider's pages and API live: github.com, or an Enterprise Server at
/// `server_url` (pages under it, the API under `/api/v3`).
struct Endpoints {
    authorize: String,
    token: String,
    api: String,
}

fn endpoints(provider: &ProviderConfig) -> Endpoints {
    match provider.server_url.as_deref().map(|u| u.trim_end_matches('/')) {
        Some(server) => Endpoints {
            authorize: format!("{server}/login/oauth/authorize"),
            token: format!("{server}/login/oauth/access_token"),
            api: format!("{server}/api/v3"),
        },
        None => Endpoints {
            authorize: "https://github.com/login/oauth/authorize".into(),
            token: "https://github.com/login/oauth/access_token".into(),
            api: "https://api.github.com".into(),
        },
    }
}

pub fn client(provider: &ProviderConfig, redirect: RedirectUrl) -> Result<Client> {
    let urls = endpoints(provider);
    let bad_url = |e: oauth2::url::ParseError| crate::Error::Internal(format!("GitHub provider {}: {e}", provider.id));
    Ok(BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(provider.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(urls.authorize).map_err(bad_url)?)
        .set_token_uri(TokenUrl::new(urls.token).map_err(bad_url)?)
        // GitHub documents the client credentials as form fields, not HTTP Basic.
        .set_auth_type(AuthType::RequestBody)
        .set_redirect_uri(redirect))
}

/// The authorization URL, its `state`, and the PKCE verifier to keep for the callback.
pub fn authorize_url(client: &Client) -> (String, CsrfToken, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) =
        client.authorize_url(CsrfToken::new_random).add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string()))).set_pkce_challenge(challenge).url();
    (url.to_string(), state, verifier)
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    verified: bool,
    primary: bool,
}

/// Exchanges the code (with the PKCE verifier) and asks the API who it belongs to.
pub async fn finish(http: &reqwest::Client, provider: &ProviderConfig, client: &Client, code: &str, verifier: &str) -> Result<ExternalIdentity> {
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(http)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, "GitHub code exchange failed");
            match e {
                // GitHub answers a bad or spent code with 200 and an `error` field, which lands
                // here as a response that isn't a token.
                oauth2::RequestTokenError::ServerResponse(_) | oauth2::RequestTokenError::Parse(..) => tessera_domain::AppError::BadRequest(format!(
                    "{} didn't accept this sign-in (the link may have been used already). Please start again.",
                    provider.name
                ))
                .into(),
                _ => super::oidc::unavailable(&provider.name),
            }
        })?;
    let access = token.access_token().secret();
    let api = endpoints(provider).api;
    let user: User = get(http, provider, &format!("{api}/user"), access).await?;
    let emails: Vec<Email> = get(http, provider, &format!("{api}/user/emails"), access).await?;
    Ok(identity_from(provider, user, &emails))
}

/// Only the primary address vouches for the person, and only once GitHub has verified it.
/// GitHub never un-verifies an address: a secondary one confirmed years ago may since have
/// changed hands (a reassigned work address, a lapsed domain), while the primary is the one
/// GitHub actually mails. Someone whose Tessera address is a secondary one signs in with their
/// email and connects GitHub from their security page.
fn identity_from(provider: &ProviderConfig, user: User, emails: &[Email]) -> ExternalIdentity {
    // GitHub's no-reply addresses can't receive mail, so they can't be an account's address.
    let chosen = emails.iter().find(|e| e.primary && !e.email.ends_with("@users.noreply.github.com"));
    ExternalIdentity {
        provider: provider.id.clone(),
        // The numeric id, because a login can be renamed (and then claimed by someone else).
        subject: user.id.to_string(),
        email: chosen.map(|e| e.email.clone()),
        email_verified: chosen.is_some_and(|e| e.verified),
        name: user.name.filter(|n| !n.trim().is_empty()).or(Some(user.login)),
    }
}

async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, provider: &ProviderConfig, url: &str, access: &str) -> Result<T> {
    let unavailable = || super::oidc::unavailable(&provider.name);
    let response = http
        .get(url)
        .bearer_auth(access)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("X-GitHub-Api-Version", API_VERSION)
        // GitHub refuses API calls without a User-Agent.
        .header(reqwest::header::USER_AGENT, "Tessera")
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, url, "GitHub API request failed");
            unavailable()
        })?;
    let status = response.status();
    if matches!(status.as_u16(), 401 | 403 | 404) {
        // Not an outage: the app lacks the email permission (a GitHub App, or a changed scope).
        tracing::error!(provider = %provider.id, %status, url, "GitHub refused the API call: check the app's permissions (it needs the user's email addresses)");
        return Err(tessera_domain::AppError::Forbidden(format!(
            "{} didn't share your email addresses with Tessera, so we can't sign you in with it. Sign in with your email instead.",
            provider.name
        ))
        .into());
    }
    if !status.is_success() {
        tracing::warn!(provider = %provider.id, %status, url, "GitHub API request failed");
        return Err(unavailable());
    }
    response.json().await.map_err(|e| {
        tracing::warn!(provider = %provider.id, error = %e, url, "GitHub API answered something unexpected");
        unavailable()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderConfig {
        ProviderConfig { id: "github".into(), name: "GitHub".into(), ..Default::default() }
    }

    fn email(email: &str, verified: bool, primary: bool) -> Email {
        Email { email: email.into(), verified, primary }
    }

    fn user() -> User {
        User { id: 42, login: "octo".into(), name: None }
    }

    #[test]
    fn the_verified_primary_address_wins() {
        let ext = identity_from(&provider(), user(), &[email("old@example.test", true, false), email("main@example.test", true, true)]);
        assert_eq!((ext.email.as_deref(), ext.email_verified, ext.subject.as_str()), (Some("main@example.test"), true, "42"));
        assert_eq!(ext.name.as_deref(), Some("octo"), "the login stands in for a missing name");
    }

    #[test]
    fn a_verified_secondary_address_does_not_vouch_for_the_person() {
        let ext = identity_from(&provider(), user(), &[email("new@example.test", false, true), email("old-job@example.test", true, false)]);
        assert_eq!((ext.email.as_deref(), ext.email_verified), (Some("new@example.test"), false));
        let ext = identity_from(&provider(), user(), &[email("42+octo@users.noreply.github.com", true, true)]);
        assert_eq!((ext.email, ext.email_verified), (None, false), "a no-reply address is no address");
    }

    #[test]
    fn no_verified_address_means_nothing_to_link_by() {
        let ext = identity_from(&provider(), user(), &[email("new@example.test", false, true)]);
        assert_eq!((ext.email.as_deref(), ext.email_verified), (Some("new@example.test"), false));
        let ext = identity_from(&provider(), user(), &[]);
        assert_eq!((ext.email, ext.email_verified), (None, false));
    }
}
