//! Stripe's webhook endpoint, `POST /webhooks/stripe`: the raw body and its `Stripe-Signature`
//! go to `billing::inbox`, which answers at once (processing is a job). Configure this URL in
//! Stripe's dashboard (or `stripe listen --forward-to`) with the events listed in the README.

use crate::rest::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use tessera_backend::Backend;

pub fn router(backend: Backend) -> Router {
    Router::new().route("/webhooks/stripe", post(receive)).with_state(backend)
}

async fn receive(State(backend): State<Backend>, headers: HeaderMap, body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let new = tessera_backend::billing::inbox::receive(&backend, &body, signature).await?;
    Ok(Json(serde_json::json!({ "received": true, "duplicate": !new })))
}
