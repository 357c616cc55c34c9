//! Billing's HTTP routes besides the server functions:
//! - Stripe's webhook endpoint, `POST /webhooks/stripe`: the raw body and its `Stripe-Signature`
//!   go to `billing::inbox`, which answers at once (processing is a job). Configure this URL in
//!   Stripe's dashboard (or `stripe listen --forward-to`) with the events listed in the README.
//! - An invoice's PDF, `GET /t/{slug}/settings/billing/invoices/{id}.pdf`, for the Owners and
//!   Admins signed in to the browser (a download link on the billing page).

use crate::rest::{ApiError, Meta};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tessera_backend::sign_in::BrowserSignIn;
use tessera_backend::Backend;
use tessera_domain::AppError;
use tower_sessions::Session;

/// Stripe's endpoint (no session: Stripe signs its requests).
pub fn router(backend: Backend) -> Router {
    Router::new().route("/webhooks/stripe", post(receive)).with_state(backend)
}

/// The routes a signed-in browser uses (inside the session layer).
pub fn pages(backend: Backend) -> Router {
    Router::new().route("/t/{slug}/settings/billing/invoices/{file}", get(invoice_pdf)).with_state(backend)
}

async fn invoice_pdf(State(backend): State<Backend>, session: Session, Meta(meta): Meta, Path((slug, file)): Path<(String, String)>) -> Response {
    let answer = async {
        let authn = BrowserSignIn::new(&session).authn().await?.ok_or(AppError::Unauthenticated)?;
        let id = file.strip_suffix(".pdf").ok_or_else(AppError::not_found)?;
        let org = backend.tenancy.enter(authn, &slug, meta).await?;
        let invoice = tessera_backend::billing::manage::invoice(&org, id).await?;
        let pdf = tessera_backend::billing::pdf::render(&invoice, &org.tenant.name, invoice.issuer.as_deref().unwrap_or("Tessera"));
        Ok::<_, tessera_backend::Error>((invoice.number.unwrap_or_else(|| invoice.id.clone()), pdf))
    };
    match answer.await {
        Ok((number, pdf)) => {
            let disposition =
                format!("attachment; filename=\"invoice-{}.pdf\"", number.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"));
            let mut response = (StatusCode::OK, pdf).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => ApiError(e.into_app_error()).into_response(),
    }
}

async fn receive(State(backend): State<Backend>, headers: HeaderMap, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let new = tessera_backend::billing::inbox::receive(&backend, &body, signature).await?;
    Ok(Json(serde_json::json!({ "received": true, "duplicate": !new })))
}
