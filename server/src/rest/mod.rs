//! The REST API under `/api/v1`, for programs rather than browsers. It authenticates with a
//! bearer credential only: a person's access token (`POST /api/v1/auth/token`) or an
//! organization's API key (`tsk_…`). Browser cookies are ignored here, so no other site can
//! make a visitor's browser call it (no CSRF surface). Errors are JSON:
//! `{"error": {"status": 422, "message": "…", "field": "name"}}`.
//!
//! Each route is registered together with its documentation (`#[utoipa::path]` on the
//! handler, `routes!` here), so the OpenAPI document at `/api/v1/openapi.json` (read at
//! `/api/v1/docs`) lists exactly what the router serves.

mod access;
mod audit;
mod auth;
mod docs;
mod documents;
mod members;
mod projects;

use crate::input_guard::TextPath;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http::{header, StatusCode};
use std::net::SocketAddr;
use tessera_backend::{Backend, Org, RequestMeta};
use tessera_domain::AppError;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router(backend: Backend) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(auth::token))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        // One router per resource slice.
        .merge(projects::router())
        .merge(access::router())
        .merge(documents::router())
        .merge(members::router())
        .merge(audit::router())
        .split_for_parts();
    router
        .merge(docs::router(api))
        // The pages' router has the app-wide fallback; unknown API paths get a JSON 404 here.
        .route("/api/v1/{*rest}", axum::routing::any(|| async { ApiError(AppError::NotFound("There is no such API endpoint.".into())) }))
        .with_state(backend)
}

/// The body of every error the API answers with.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(status: StatusCode, message: String, field: Option<String>) -> Self {
        ErrorBody { error: ErrorDetail { status: status.as_u16(), message, field } }
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    status: u16,
    /// What went wrong and what to do about it, in words for a person.
    message: String,
    /// The request field at fault, when one is.
    field: Option<String>,
}

/// An `AppError` as the API's JSON error body, with its status.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<tessera_backend::Error> for ApiError {
    fn from(e: tessera_backend::Error) -> Self {
        ApiError(e.into_app_error())
    }
}

impl From<tessera_domain::input::FieldError> for ApiError {
    fn from(e: tessera_domain::input::FieldError) -> Self {
        ApiError(AppError::Invalid(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &self.0 {
            AppError::Unauthenticated => {
                "Send a credential: `Authorization: Bearer <access token or API key>`. Get an access token from POST /api/v1/auth/token.".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody::new(status, message, self.0.field().map(str::to_string));
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer realm=\"tessera\""));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Where the request came from, for audit records.
pub(crate) struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
        Ok(Meta(RequestMeta {
            ip: parts
                .extensions
                .get::<tessera_backend::ClientIp>()
                .map(|c| c.0)
                .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
            spent: parts.extensions.get::<tessera_backend::rate_limit::SpentBudgets>().cloned(),
        }))
    }
}

/// The bearer credential of the request.
pub enum Credential {
    ApiKey(String),
    AccessToken(String),
}

impl<S: Send + Sync> FromRequestParts<S> for Credential {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError(AppError::Unauthenticated))?;
        let (scheme, credential) = value.trim().split_once(' ').ok_or(ApiError(AppError::Unauthenticated))?;
        if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
            return Err(ApiError(AppError::Unauthenticated));
        }
        let credential = credential.trim().to_string();
        Ok(if credential.starts_with(tessera_backend::api_keys::KEY_PREFIX) {
            Credential::ApiKey(credential)
        } else {
            Credential::AccessToken(credential)
        })
    }
}

/// An id from the path. A malformed one names nothing: the same answer as an id nobody has.
pub(crate) fn path_id(raw: &str, not_found: fn() -> AppError) -> ApiResult<uuid::Uuid> {
    Ok(tessera_domain::input::parse_id(raw, not_found)?)
}

/// The organization named by the route's `{slug}`, entered through the door with whichever
/// bearer credential was sent: what every route inside an organization starts from.
pub struct InOrg(pub Org);

impl FromRequestParts<Backend> for InOrg {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, backend: &Backend) -> Result<Self, Self::Rejection> {
        let credential = Credential::from_request_parts(parts, backend).await?;
        let Ok(Meta(meta)) = Meta::from_request_parts(parts, backend).await;
        // Path text that doesn't decode names no organization: the door's not found.
        let TextPath(params) = TextPath::<std::collections::HashMap<String, String>>::from_request_parts(parts, backend)
            .await
            .map_err(|_| ApiError(AppError::not_found()))?;
        let slug = params.get("slug").map(String::as_str).unwrap_or_default();
        let org = match credential {
            Credential::ApiKey(key) => backend.tenancy.enter_with_api_key(&key, slug, meta).await?,
            Credential::AccessToken(token) => {
                let authn = backend.tokens.authenticate(&token).await?;
                backend.tenancy.enter(authn, slug, meta).await?
            }
        };
        // Each call counts against the plan's monthly allowance and is billed as usage.
        let view = org.billing();
        org.require_feature(tessera_domain::billing::Feature::ApiAccess).map_err(ApiError)?;
        let billing = backend.tenancy.billing();
        billing.usage().call(&backend.tenancy, org.tenant.id, &view).await?;
        Ok(InOrg(org))
    }
}

/// What every route inside an organization may answer besides its own results (one list, so
/// the routes' documentation can't disagree).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: the answers themselves are `ApiError`s
pub enum OrgRouteErrors {
    /// No credential, or one that is unknown, expired or revoked
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The credential may not do this (role, API key scope, or the organization's sign-in rules)
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such organization for this credential
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The organization's plan doesn't include the API, or billing has made it read-only (the
    /// message says how to fix it)
    #[response(status = 402)]
    PaymentRequired(ErrorBody),
    /// A request budget is spent; see Retry-After
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The organization's data can't be reached right now; try again shortly
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A query string, refused with a readable 400 (not axum's plain-text rejection) when it has
/// a parameter the endpoint doesn't (a misspelt filter must not silently match everything).
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(query) => Ok(ApiQuery(query.0)),
            Err(rejection) => Err(ApiError(AppError::BadRequest(format!(
                "The query string isn't one this endpoint takes ({}). See /api/v1/docs for its parameters.",
                rejection.body_text()
            )))),
        }
    }
}

/// A JSON body, refused with a readable 400 (not axum's plain-text rejection) when malformed.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError(AppError::BadRequest("The request body could not be read.".into())))?;
        let malformed =
            |e: serde_json::Error| ApiError(AppError::BadRequest(format!("The body must be a JSON object with the documented fields ({e}).")));
        // Parsed to a value first (serde_json refuses invalid UTF-8 and nesting deeper than 128
        // levels), so a NUL anywhere in it is refused with its field before any handler runs.
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(malformed)?;
        if let Some(field) = field_with_nul(&value, "") {
            let field = if field.is_empty() { "body".to_string() } else { field };
            return Err(ApiError(AppError::Invalid(tessera_domain::input::FieldError::new(
                &field,
                format!("`{field}` contains a NUL character (\\u0000), which no field accepts."),
            ))));
        }
        serde_json::from_value(value).map(Body).map_err(malformed)
    }
}

/// The path (`name`, `items.2.name`) of the first string in `value` holding a NUL character.
fn field_with_nul(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        serde_json::Value::String(s) => s.contains('\0').then(|| path.to_string()),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| field_with_nul(v, &join(&i.to_string()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| if k.contains('\0') { Some(join(k)) } else { field_with_nul(v, &join(k)) }),
        _ => None,
    }
}
