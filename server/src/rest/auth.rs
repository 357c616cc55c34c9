//! API sign-in: email + password (+ a second-factor code when the account has one) for a
//! token pair; refresh; sign out.

use super::{ApiResult, Body, Credential, ErrorBody, Meta};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tessera_backend::identity::mfa::CodePurpose;
use tessera_backend::Backend;
use tessera_domain::dto::{CurrentUser, TokenPair};
use tessera_domain::input::FieldError;
use tessera_domain::AppError;

/// Fields take no control characters (a NUL is refused with a 422 naming the field).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$", max_length = 254)]
    email: String,
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    password: String,
    /// Required for accounts with two-factor authentication.
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    code: Option<String>,
}

/// Signs in with an email and password (and a second-factor code where the account has one)
/// for a 15-minute access token and a refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    tag = "auth",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 403, description = "The address's organization requires its single sign-on", body = ErrorBody),
        (status = 422, description = "Wrong email or password, or a second-factor code is needed or wrong", body = ErrorBody),
        (status = 429, description = "Too many attempts; try again later", body = ErrorBody),
    )
)]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshToken {
    #[schema(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    refresh_token: String,
}

/// Exchanges a refresh token for a new pair (the old refresh token stops working).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshToken,
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 401, description = "The refresh token is unknown, expired, revoked or already used", body = ErrorBody),
        (status = 422, description = "A field holds a NUL character; `field` names it", body = ErrorBody),
        (status = 429, description = "Too many requests; try again later", body = ErrorBody),
    )
)]
pub async fn refresh(State(backend): State<Backend>, Meta(meta): Meta, Body(body): Body<RefreshToken>) -> ApiResult<Json<TokenPair>> {
    Ok(Json(backend.tokens.refresh(&body.refresh_token, &meta).await?))
}

/// Ends the API sign-in the refresh token belongs to; its access tokens stop working too.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body = RefreshToken,
    responses(
        (status = 204, description = "Signed out"),
        (status = 400, description = "The body isn't the documented JSON", body = ErrorBody),
        (status = 401, description = "The refresh token is unknown", body = ErrorBody),
        (status = 422, description = "A field holds a NUL character; `field` names it", body = ErrorBody),
        (status = 429, description = "Too many requests; try again later", body = ErrorBody),
    )
)]
pub async fn logout(State(backend): State<Backend>, Meta(meta): Meta, Body(body): Body<RefreshToken>) -> ApiResult<StatusCode> {
    backend.tokens.revoke(&body.refresh_token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the access token speaks for (API keys belong to organizations, not people).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in person", body = CurrentUser),
        (status = 400, description = "An API key was sent: it acts for an organization, not a person", body = ErrorBody),
        (status = 401, description = "No credential, or one that is unknown, expired or revoked", body = ErrorBody),
        (status = 429, description = "Too many requests; try again later", body = ErrorBody),
    )
)]
pub async fn me(State(backend): State<Backend>, credential: Credential) -> ApiResult<Json<CurrentUser>> {
    let Credential::AccessToken(token) = credential else {
        return Err(AppError::BadRequest("An API key acts for an organization, not a person; use it with /api/v1/orgs/<name>/….".into()).into());
    };
    let authn = backend.tokens.authenticate(&token).await?;
    Ok(Json(backend.identity.user(authn.user_id).await?.ok_or(AppError::BadCredentials("This account no longer exists.".into()))?))
}
