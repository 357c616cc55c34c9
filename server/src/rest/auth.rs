//! API sign-in: email + password (+ a second-factor code when the account has one) for a
//! token pair; refresh; sign out.

use super::{ApiResult, Body, Credential, Meta};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::identity::mfa::CodePurpose;
use tessera_backend::Backend;
use tessera_domain::dto::{CurrentUser, TokenPair};
use tessera_domain::input::FieldError;
use tessera_domain::AppError;

#[derive(Deserialize)]
pub struct SignIn {
    email: String,
    password: String,
    /// Required for accounts with two-factor authentication.
    code: Option<String>,
}

pub async fn token(State(backend): State<Backend>, Meta(meta): Meta, Body(body): Body<SignIn>) -> ApiResult<Json<TokenPair>> {
    tessera_backend::sso::domains::check_first_factor(&backend.tenancy, &body.email).await?;
    // An account whose address isn't confirmed gets the same answer as a wrong password, so
    // no API credentials either (it may be someone else's placeholder).
    let user = backend.identity.log_in(&body.email, &body.password, None, &meta).await?;
    let mfa = backend.identity.mfa_enabled(user.id).await?;
    if mfa {
        let Some(code) = body.code.filter(|c| !c.trim().is_empty()) else {
            return Err(AppError::Invalid(FieldError::new(
                "code",
                "This account uses two-factor authentication: send `code` with a current authenticator or recovery code.",
            ))
            .into());
        };
        backend.identity.check_second_factor(user.id, &code, CodePurpose::SignIn, &meta).await?;
    }
    Ok(Json(backend.tokens.issue(user.id, mfa, &meta).await?))
}

#[derive(Deserialize)]
pub struct RefreshToken {
    refresh_token: String,
}

pub async fn refresh(State(backend): State<Backend>, Meta(meta): Meta, Body(body): Body<RefreshToken>) -> ApiResult<Json<TokenPair>> {
    Ok(Json(backend.tokens.refresh(&body.refresh_token, &meta).await?))
}

/// Ends the API sign-in the refresh token belongs to; its access tokens stop working too.
pub async fn logout(State(backend): State<Backend>, Meta(meta): Meta, Body(body): Body<RefreshToken>) -> ApiResult<StatusCode> {
    backend.tokens.revoke(&body.refresh_token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the access token speaks for (API keys belong to organizations, not people).
pub async fn me(State(backend): State<Backend>, credential: Credential) -> ApiResult<Json<CurrentUser>> {
    let Credential::AccessToken(token) = credential else {
        return Err(AppError::BadRequest("An API key acts for an organization, not a person; use it with /api/v1/orgs/<name>/….".into()).into());
    };
    let authn = backend.tokens.authenticate(&token).await?;
    Ok(Json(backend.identity.user(authn.user_id).await?.ok_or(AppError::BadCredentials("This account no longer exists.".into()))?))
}
