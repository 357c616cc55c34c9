//! Request budgets at the HTTP edge. The organization and API-key budgets are spent by the
//! door when a request enters an organization, after its credential is checked (so no
//! outsider can spend them); this layer spends the per-person and per-address budgets (see
//! [`budgets`]) and writes the `RateLimit` headers of whatever the request spent (noted in a
//! [`SpentBudgets`] the request carries; `RequestMeta` takes it to the door).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderName, HeaderValue, StatusCode};
use tessera_backend::rate_limit::{self, RateLimiter, Scope, SpentBudgets};
use tessera_backend::ClientIp;

/// For `/api/…` (server functions and the REST API); other paths pass untouched.
///
/// Who pays: a signed-in person's server-function calls spend their own budget; anyone else's
/// calls, and every call to the REST API's sign-in endpoints, spend the address's. Other REST
/// calls carry a credential the door checks (and spends the key's and organization's budgets
/// for); one it refuses spends the address's, and once that is gone such calls are turned away
/// before they are checked.
pub async fn budgets(State(limiter): State<RateLimiter>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let rest = path.starts_with("/api/v1/");
    let ip = req.extensions().get::<ClientIp>().map(|c| c.0);
    let user = match req.extensions().get::<tower_sessions::Session>() {
        Some(session) if !rest => tessera_backend::sign_in::BrowserSignIn::new(session).user_id().await.ok().flatten(),
        _ => None,
    };
    let signing_in = path.starts_with("/api/v1/auth/");
    let credential = rest && !signing_in && req.headers().contains_key(header::AUTHORIZATION);
    let spent = SpentBudgets::default();
    req.extensions_mut().insert(spent.clone());
    let payer = match (user, ip) {
        (Some(user), _) => Some(Scope::User(user)),
        (None, Some(ip)) if !credential => Some(Scope::Address(ip)),
        _ => None,
    };
    if let Some(payer) = payer {
        if let Err(e) = limiter.admit(payer, Some(&spent)).await {
            return with_headers(refused(rest, e.into_app_error()), &spent);
        }
    }
    if let (true, Some(ip)) = (credential, ip) {
        if limiter.exhausted(Scope::Address(ip)).await {
            // Spend the (already empty) budget once more for its numbers and the refusal.
            if let Err(e) = limiter.admit(Scope::Address(ip), Some(&spent)).await {
                return with_headers(refused(rest, e.into_app_error()), &spent);
            }
        }
    }
    let response = next.run(req).await;
    if let (true, Some(ip), StatusCode::UNAUTHORIZED) = (credential, ip, response.status()) {
        let _ = limiter.admit(Scope::Address(ip), Some(&spent)).await;
    }
    with_headers(response, &spent)
}

/// A 429 in the shape the caller reads errors in: the REST API's JSON error body, or the
/// serialized `AppError` server functions decode (as the input guard answers).
fn refused(rest: bool, error: tessera_domain::AppError) -> Response {
    if rest {
        return crate::rest::ApiError(error).into_response();
    }
    let body = serde_json::to_string(&error).unwrap_or_default();
    (StatusCode::TOO_MANY_REQUESTS, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Adds `RateLimit-Policy`, `RateLimit` and (on a refusal) `Retry-After` for the budget this
/// request came closest to exhausting.
fn with_headers(mut response: Response, spent: &SpentBudgets) -> Response {
    if let Some((policy, current, retry_after)) = rate_limit::headers(&spent.all()) {
        let headers = response.headers_mut();
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", current)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
    }
    response
}
