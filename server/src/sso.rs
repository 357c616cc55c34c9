//! An organization's SAML endpoints: its service provider metadata, the start of an
//! SP-initiated sign-in, and the assertion consumer service (ACS) its IdP posts back to.
//!
//! The ACS receives a cross-site POST from the IdP, so these routes sit outside the CSRF
//! guard: the signed, single-use SAML response is what authenticates the request.

use crate::rest::Meta;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{header, StatusCode};
use serde::Deserialize;
use tessera_app::api::ssr::{self, SIGN_IN_PROBLEM_KEY};
use tessera_backend::sso::saml;
use tessera_backend::Backend;
use tower_sessions::Session;

pub fn router(backend: Backend) -> axum::Router {
    axum::Router::new()
        .route("/sso/{slug}/metadata", axum::routing::get(metadata))
        .route("/sso/{slug}/login", axum::routing::get(login))
        .route("/sso/{slug}/acs", axum::routing::post(acs))
        .with_state(backend)
}

async fn problem(session: &Session, error: tessera_domain::AppError) -> Response {
    let _ = session.insert(SIGN_IN_PROBLEM_KEY, error.to_string()).await;
    Redirect::to("/login?problem=1").into_response()
}

async fn metadata(State(backend): State<Backend>, Path(slug): Path<String>) -> Response {
    match saml::sp_metadata(&backend.tenancy, &backend.sso, &slug).await {
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
    session: Session,
    Meta(meta): Meta,
    Path(slug): Path<String>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = ssr::safe_next(query.next.as_deref());
    let next = if next == "/" { format!("/t/{}", slug.trim().to_lowercase()) } else { next };
    match saml::start_login(&backend.tenancy, &backend.sso, &slug, &next, &meta).await {
        Ok(url) => Redirect::to(&url).into_response(),
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

async fn acs(State(backend): State<Backend>, session: Session, Meta(meta): Meta, Path(slug): Path<String>, form: Result<Form<AcsForm>, axum::extract::rejection::FormRejection>) -> Response {
    let Ok(Form(AcsForm { saml_response: Some(response), relay_state })) = form else {
        let e = tessera_domain::AppError::BadRequest("This address receives sign-ins from your identity provider; there was no SAML response in the request.".into());
        return problem(&session, e).await;
    };
    let sign_in = match saml::consume(&backend.tenancy, &backend.sso, &slug, &response, relay_state.as_deref(), &meta).await {
        Ok(sign_in) => sign_in,
        Err(e) => return problem(&session, e.into_app_error()).await,
    };
    match ssr::sign_in_on(&session, &backend, &meta, sign_in.user_id, Some(&sign_in.next), Some(sign_in.tenant_id)).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(e) => problem(&session, e).await,
    }
}
