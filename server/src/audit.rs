//! The audit log's downloads for the browser: `GET /t/{slug}/settings/audit/export.csv` and
//! `export.jsonl`, with the viewer's filters in the query string, for Owners and Admins signed
//! in (the viewer links to them). The body is streamed as it is read (`audit::export`).

use crate::input_guard::TextPath;
use crate::rest::{ApiError, ApiQuery, Meta};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use tessera_backend::audit::export::{self, ExportFormat};
use tessera_backend::sign_in::BrowserSignIn;
use tessera_backend::Backend;
use tessera_domain::audit::AuditFilterInput;
use tessera_domain::AppError;
use tower_sessions::Session;

/// The routes a signed-in browser uses (inside the session layer).
pub fn pages(backend: Backend) -> Router {
    Router::new().route("/t/{slug}/settings/audit/{file}", get(download)).with_state(backend)
}

async fn download(
    State(backend): State<Backend>,
    session: Session,
    Meta(meta): Meta,
    TextPath((slug, file)): TextPath<(String, String)>,
    ApiQuery(filters): ApiQuery<AuditFilterInput>,
) -> Response {
    let answer = async {
        let format = file.strip_prefix("export.").and_then(ExportFormat::from_extension).ok_or_else(AppError::not_found)?;
        let authn = BrowserSignIn::new(&session).authn().await?.ok_or(AppError::Unauthenticated)?;
        let filter = filters.parse().map_err(AppError::Invalid)?;
        let org = backend.tenancy.enter(authn, &slug, meta).await?;
        let name = format!("audit-log-{}-{}.{}", org.tenant.slug, time::OffsetDateTime::now_utc().date(), format.extension());
        let stream = export::start(org, filter, format).await?;
        Ok::<_, tessera_backend::Error>((format, name, stream))
    };
    match answer.await {
        Ok((format, name, stream)) => {
            // An error after the first byte can only end the download early: the status is sent.
            let body = Body::from_stream(stream.map(|chunk| chunk.map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))));
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(e) => ApiError(e.into_app_error()).into_response(),
    }
}
