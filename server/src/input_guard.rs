//! The first check on every form body and query string, before any handler parses them.
//!
//! Form decoding (serde_urlencoded, used by server functions) silently replaces invalid UTF-8
//! with U+FFFD, and PostgreSQL refuses a NUL character in text. Neither is ever meant by a
//! person, so both are refused here with a message naming the field, and nothing runs. The
//! input types refuse the other control characters field by field.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use percent_encoding::percent_decode;
use tessera_domain::input::FieldError;
use tessera_domain::AppError;

/// The largest form accepted (the biggest legitimate one is a SAML response, capped at 1 MiB).
const MAX_FORM_BYTES: usize = 2 << 20;

/// What is wrong with one `name=value` pair of a form or query, if anything.
fn problem(pair: &[u8]) -> Option<AppError> {
    let (name, value) = match pair.iter().position(|&b| b == b'=') {
        Some(i) => (&pair[..i], &pair[i + 1..]),
        None => (pair, &[][..]),
    };
    let decode = |raw: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_decode(&spaced).collect()
    };
    let name = decode(name);
    let Ok(name) = String::from_utf8(name) else {
        return Some(AppError::BadRequest("A field name in this request isn't valid UTF-8 text, so nothing was done.".into()));
    };
    let field = name.trim_end_matches("[]").to_string();
    if field.contains('\0') {
        return Some(AppError::BadRequest("A field name in this request contains a NUL character, so nothing was done.".into()));
    }
    let value = decode(value);
    match String::from_utf8(value) {
        Err(_) => Some(AppError::Invalid(FieldError::new(
            &field,
            "This text isn't valid UTF-8 (it may have been pasted from a file in another encoding). Retype it and try again.",
        ))),
        Ok(text) if text.contains('\0') => {
            Some(AppError::Invalid(FieldError::new(&field, "This text contains a NUL character, which no field accepts. Remove it and try again.")))
        }
        Ok(_) => None,
    }
}

fn first_problem(encoded: &[u8]) -> Option<AppError> {
    encoded.split(|&b| b == b'&').filter(|p| !p.is_empty()).find_map(problem)
}

/// The refusal, as the caller reads errors: JSON for the API and server functions (their
/// forms show it next to the field), plain text for pages.
fn refusal(path: &str, error: AppError) -> Response {
    if path.starts_with("/api/") {
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::to_string(&error).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        // A page has no form to show a field's message in: the request as a whole is refused.
        (StatusCode::BAD_REQUEST, error.to_string()).into_response()
    }
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

pub async fn refuse_unstorable_text(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some(error) = req.uri().query().and_then(|q| first_problem(q.as_bytes())) {
        return refusal(&path, error);
    }
    // Server functions decode any body as a form, whatever its Content-Type says, so theirs are
    // all checked; elsewhere only bodies labelled as forms are forms.
    let server_function_call = path.starts_with("/api/") && !path.starts_with("/api/v1/") && req.method() == http::Method::POST;
    let checked = is_form(&req) || server_function_call;
    if !checked {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refusal(&path, AppError::BadRequest(format!("This form is larger than {} MiB, so nothing was done.", MAX_FORM_BYTES >> 20)))
        }
    };
    if let Some(error) = first_problem(&bytes) {
        return refusal(&path, error);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Path parameters as text. A segment that isn't UTF-8 names nothing: it reads as an empty
/// name, which no organization or project has, so the answer is the usual JSON "not found"
/// rather than axum's plain-text 400.
pub struct TextPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default + Send> axum::extract::FromRequestParts<S> for TextPath<T> {
    type Rejection = axum::extract::rejection::PathRejection;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(path) => Ok(TextPath(path.0)),
            // Only text that doesn't decode; a route without the parameter is a bug to see.
            Err(PathRejection::FailedToDeserializePathParams(_)) => Ok(TextPath(T::default())),
            Err(other) => Err(other),
        }
    }
}

/// Gives an error response without a body (axum's 405, a body-limit 413, …) a sentence a
/// person can act on, as JSON on the API and plain text elsewhere.
pub async fn explain_empty_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let response = next.run(req).await;
    let status = response.status();
    let empty = axum::body::HttpBody::size_hint(response.body()).exact() == Some(0);
    if !(status.is_client_error() || status.is_server_error()) || !empty {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("{path} doesn't accept {method} requests."),
        StatusCode::PAYLOAD_TOO_LARGE => "This request is too large, so nothing was done.".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "This request's Content-Type isn't one this address accepts.".to_string(),
        StatusCode::NOT_FOUND => "There is nothing at this address.".to_string(),
        other => format!("The request was refused ({other})."),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if path.starts_with("/api/v1/") {
        parts.headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        let body = serde_json::to_string(&crate::rest::ErrorBody::new(status, message, None)).unwrap_or_default();
        Response::from_parts(parts, Body::from(body))
    } else {
        parts.headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
        Response::from_parts(parts, Body::from(message))
    }
}

#[cfg(test)]
mod tests {
    use super::first_problem;
    use tessera_domain::AppError;

    #[test]
    fn nul_and_invalid_utf8_are_found_in_the_field_they_are_in() {
        assert!(first_problem(b"slug=acme&name=Apollo+%C3%A9").is_none());
        let field = |e: Option<AppError>| e.and_then(|e| e.field().map(str::to_string));
        assert_eq!(field(first_problem(b"slug=acme&name=a%00b")), Some("name".into()));
        assert_eq!(field(first_problem(b"slug=acme&email=%FF%FE")), Some("email".into()));
        assert_eq!(field(first_problem(b"tags[]=%C3")), Some("tags".into()));
        assert!(matches!(first_problem(b"na%00me=x"), Some(AppError::BadRequest(_))));
        assert!(matches!(first_problem(b"%FF=x"), Some(AppError::BadRequest(_))));
    }
}
