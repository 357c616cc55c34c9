//! An organization's SAML endpoints: its service provider metadata, the start of an
//! SP-initiated sign-in, and the assertion consumer service (ACS) its IdP posts back to.
//!
//! The ACS receives a cross-site POST from the IdP, so these routes sit outside the CSRF
//! guard: the signed, single-use SAML response is what authenticates the request.

use crate::input_guard::TextPath;
use crate::rest::Meta;
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{header, StatusCode};
use serde::Deserialize;
use tessera_backend::sign_in::{self, BrowserSignIn, SIGN_IN_PROBLEM_KEY};
use tessera_backend::sso::saml;
use tessera_backend::Backend;
use tower_sessions::Session;

/// `https`: the site is served over https, so the nonce cookie is `Secure`.
pub fn router(backend: Backend, https: bool) -> axum::Router {
    axum::Router::new()
        .route("/sso/{slug}/metadata", axum::routing::get(metadata))
        .route("/sso/{slug}/login", axum::routing::get(login))
        .route("/sso/{slug}/acs", axum::routing::post(acs))
        .route("/sso/{slug}/continue", axum::routing::get(finish))
        .layer(axum::Extension(SecureCookie(https)))
        .with_state(backend)
}

#[derive(Clone, Copy)]
struct SecureCookie(bool);

/// The cookie binding an SP-initiated sign-in to the browser that started it. `SameSite=Lax`:
/// it is not sent with the IdP's cross-site POST to the ACS, only with the top-level GET that
/// finishes the sign-in (`finish`), which is where it is checked.
const NONCE_COOKIE: &str = "tessera_sso";

fn nonce_cookie(value: &str, max_age: u32, secure: SecureCookie) -> http::HeaderValue {
    let secure = if secure.0 { "; Secure" } else { "" };
    http::HeaderValue::from_str(&format!("{NONCE_COOKIE}={value}; Path=/sso/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"))
        .expect("a nonce is URL-safe base64")
}

fn nonce_of(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(NONCE_COOKIE).and_then(|rest| rest.strip_prefix('=')))
        .map(str::to_string)
}

async fn problem(session: &Session, error: tessera_domain::AppError) -> Response {
    let _ = session.insert(SIGN_IN_PROBLEM_KEY, error.to_string()).await;
    Redirect::to("/login?problem=1").into_response()
}

async fn metadata(State(backend): State<Backend>, TextPath(slug): TextPath<String>) -> Response {
    match saml::sp_metadata(&backend.sso, &slug).await {
        Ok(xml) => ([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response(),
        Err(e) => {
            let e = e.into_app_error();
            (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::NOT_FOUND), e.to_string()).into_response()
        }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(
    State(backend): State<Backend>,
    axum::Extension(secure): axum::Extension<SecureCookie>,
    session: Session,
    Meta(meta): Meta,
    TextPath(slug): TextPath<String>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = sign_in::safe_next(query.next.as_deref());
    let next = if next == "/" { format!("/t/{}", slug.trim().to_lowercase()) } else { next };
    match saml::start_login(&backend.tenancy, &backend.sso, &slug, &next, &meta).await {
        Ok(started) => {
            let mut response = Redirect::to(&started.idp_url).into_response();
            response.headers_mut().append(header::SET_COOKIE, nonce_cookie(&started.browser_nonce, 600, secure));
            response
        }
        Err(e) => problem(&session, e.into_app_error()).await,
    }
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn acs(
    State(backend): State<Backend>,
    session: Session,
    Meta(meta): Meta,
    TextPath(slug): TextPath<String>,
    form: Result<Form<AcsForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(AcsForm { saml_response: Some(response), relay_state })) = form else {
        let e = tessera_domain::AppError::BadRequest(
            "This address receives sign-ins from your identity provider; there was no SAML response in the request.".into(),
        );
        return problem(&session, e).await;
    };
    // A checked response signs nobody in here: this POST comes from the IdP's page and carries
    // none of this browser's cookies, so the browser finishes the sign-in itself (see the
    // migration `sso_browser_binding`).
    match saml::consume(&backend.tenancy, &backend.sso, &slug, &response, relay_state.as_deref(), &meta).await {
        Ok(handoff) if handoff.started_here => {
            Redirect::to(&format!("/sso/{}/continue?token={}", slug.trim().to_lowercase(), handoff.token)).into_response()
        }
        Ok(handoff) => Redirect::to(&format!("/login/sso/confirm?token={}", handoff.token)).into_response(),
        Err(e) => problem(&session, e.into_app_error()).await,
    }
}

#[derive(Deserialize)]
struct FinishQuery {
    token: Option<String>,
}

/// Finishes an SP-initiated sign-in in the browser that started it: its nonce cookie must match
/// the one its request was bound to.
async fn finish(
    State(backend): State<Backend>,
    axum::Extension(secure): axum::Extension<SecureCookie>,
    session: Session,
    Meta(meta): Meta,
    headers: http::HeaderMap,
    Query(query): Query<FinishQuery>,
) -> Response {
    let nonce = nonce_of(&headers);
    let token = query.token.unwrap_or_default();
    let result = match saml::redeem_handoff(&backend.tenancy, &token, saml::Redeemer::Nonce(nonce.as_deref())).await {
        Ok(handoff) => BrowserSignIn::new(&session)
            .finish_first_factor(&backend, &meta, handoff.user_id, Some(&handoff.next), Some(handoff.tenant_id))
            .await
            .map_err(tessera_backend::Error::into_app_error),
        Err(e) => Err(e.into_app_error()),
    };
    let mut response = match result {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(e) => problem(&session, e).await,
    };
    // Spent either way.
    response.headers_mut().append(header::SET_COOKIE, nonce_cookie("", 0, secure));
    response
}
