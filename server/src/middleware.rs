//! Cross-cutting HTTP layers, outermost first: request id, tracing, security headers, CSRF
//! guard, sessions (read with the page's context), request budgets, and the status mapping
//! for server function errors.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::middleware::{from_fn, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderName, HeaderValue, Method, StatusCode};
use tessera_backend::sessions::PgSessionStore;
use tessera_domain::AppError;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn wrap(
    router: Router,
    sessions: SessionManagerLayer<PgSessionStore>,
    proxies: &TrustedProxies,
    scheme: PublicScheme,
    limiter: &tessera_backend::rate_limit::RateLimiter,
) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
    });
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(axum::middleware::from_fn_with_state(proxies.clone(), client_ip))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(trace)
            .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")))
            .layer(from_fn(crate::input_guard::explain_empty_errors))
            .layer(axum::middleware::from_fn_with_state(scheme, csrf_guard))
            .layer(from_fn(crate::input_guard::refuse_unstorable_text))
            .layer(sessions)
            .layer(from_fn(read_page_context))
            .layer(axum::middleware::from_fn_with_state(limiter.clone(), crate::rate_limits::budgets))
            .layer(map_response(server_fn_error_status)),
    )
}

/// The REST API's layers: request id, tracing, security headers; no sessions (it takes only
/// bearer credentials) and so no CSRF guard.
pub fn wrap_api(router: Router, proxies: &TrustedProxies, limiter: &tessera_backend::rate_limit::RateLimiter) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(axum::middleware::from_fn_with_state(proxies.clone(), client_ip))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("api", method = %req.method(), path = %req.uri().path(), request_id)
            }))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(from_fn(crate::input_guard::explain_empty_errors))
            .layer(from_fn(crate::input_guard::refuse_unstorable_text))
            .layer(axum::middleware::from_fn_with_state(limiter.clone(), crate::rate_limits::budgets)),
    )
}

/// The SAML endpoints' layers: like the pages' (sessions included, to sign the browser in),
/// but without the CSRF guard, because an IdP posts to the ACS from its own site.
pub fn wrap_sso(router: Router, sessions: SessionManagerLayer<PgSessionStore>, proxies: &TrustedProxies) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(axum::middleware::from_fn_with_state(proxies.clone(), client_ip))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("sso", method = %req.method(), path = %req.uri().path(), request_id)
            }))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(from_fn(crate::input_guard::explain_empty_errors))
            .layer(from_fn(crate::input_guard::refuse_unstorable_text))
            .layer(sessions),
    )
}

/// Whether people reach the site over https (`TESSERA_PUBLIC_URL`): production.
pub fn is_https(public_url: &str) -> bool {
    public_url.trim_start().to_ascii_lowercase().starts_with("https://")
}

/// Headers every response carries, whichever router answered: HSTS when served over https, a
/// Permissions-Policy that turns off powerful features nothing here uses, framing refused
/// (`frame-ancestors`, with X-Frame-Options for old browsers), and `no-store` on everything but
/// the static assets, since pages and server function answers carry personal data and, at
/// times, secrets shown once (new API keys, recovery codes, authenticator secrets).
pub fn harden(router: Router, https: bool) -> Router {
    router.layer(axum::middleware::from_fn_with_state(https, hardening_headers))
}

async fn hardening_headers(axum::extract::State(https): axum::extract::State<bool>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let asset = path.starts_with("/pkg/") || path == "/favicon.svg" || path == "/favicon.ico";
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    if https {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains"));
    }
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), browsing-topics=()"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'; base-uri 'self'; object-src 'none'"));
    }
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    if !asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Reverse proxies whose `X-Forwarded-For` is believed (`TESSERA_TRUSTED_PROXIES`).
#[derive(Clone, Default, Debug)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<ipnet::IpNet>>);

impl TrustedProxies {
    fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the socket peer, unless that is a trusted proxy; then the
    /// right-most `X-Forwarded-For` entry that isn't one (entries further left were written
    /// by the client itself and prove nothing).
    pub fn client_ip(&self, peer: std::net::IpAddr, forwarded_for: Option<&str>) -> std::net::IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else { return peer };
        let mut client = peer;
        for hop in chain.rsplit(',').map(str::trim) {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) if self.trusts(ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
        client
    }
}

/// Works out the client address once per request (see [`TrustedProxies::client_ip`]) for
/// rate limits, audit records and "your sessions".
pub async fn client_ip(axum::extract::State(proxies): axum::extract::State<TrustedProxies>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_string);
        let ip = proxies.client_ip(peer, forwarded.as_deref());
        req.extensions_mut().insert(tessera_backend::ClientIp(ip));
    }
    next.run(req).await
}

/// The scheme people reach the site by: an `Origin` must carry it, so a page on `http://` can't
/// post to the `https://` site of the same host and port. https when `TESSERA_PUBLIC_URL` is,
/// or when `TESSERA_SECURE_COOKIES` says a TLS-terminating proxy serves it over https.
#[derive(Clone, Copy)]
pub struct PublicScheme(&'static str);

impl PublicScheme {
    pub fn of(public_url: &str, secure_cookies: bool) -> Self {
        PublicScheme(if is_https(public_url) || secure_cookies { "https" } else { "http" })
    }
}

/// Reads a page request's session together with what the page will need next (its user, their
/// organizations, and the organization in a `/t/{slug}` address): one round trip where each
/// would otherwise open its own transaction. Server functions find it in the request's
/// extensions (`sessions::PageContext`). Only for page loads (GET): a server-function call
/// reads its session when it first needs it, in the same single round trip, without the extras.
async fn read_page_context(mut req: Request, next: Next) -> Response {
    if req.method() == Method::GET {
        if let Some(session) = req.extensions().get::<tower_sessions::Session>().cloned() {
            let slug = organization_in(req.uri().path()).map(str::to_string);
            // Reading anything loads the record; a failure shows again, reported, where the
            // session is next used.
            let (_, context) = tessera_backend::sessions::with_page_context(slug, session.get_value("user_id")).await;
            if let Some(context) = context {
                req.extensions_mut().insert(context);
            }
        }
    }
    next.run(req).await
}

/// The organization an address is in: `/t/{slug}/…`.
fn organization_in(path: &str) -> Option<&str> {
    path.strip_prefix("/t/")?.split('/').next().filter(|slug| !slug.is_empty())
}

/// Refuses state-changing requests that a browser sent on behalf of another site.
///
/// Browsers label every request with `Sec-Fetch-Site` and, for POSTs, `Origin`; a forged
/// cross-site form post or fetch carries a foreign value in one of them. Requests with
/// neither come from non-browser clients, which cannot be tricked into sending a victim's
/// cookies, so they pass. Together with `SameSite=Lax` cookies this closes CSRF without
/// threading a token through every form.
async fn csrf_guard(axum::extract::State(scheme): axum::extract::State<PublicScheme>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site_ok = text("sec-fetch-site").is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_ok = match (text("origin"), text("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(origin_scheme, authority)| origin_scheme.eq_ignore_ascii_case(scheme.0) && authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    };
    if fetch_site_ok && origin_ok {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site state-changing request");
        (StatusCode::FORBIDDEN, "This request came from another site and was refused. Reload the page and try again.").into_response()
    }
}

/// Server functions answer every error with 500; this gives each one its real status
/// (422 for a field to fix, 404, 403…) from the `AppError` in the body, so that a person's
/// mistake is never reported as a server failure. Also covers arguments that failed to parse
/// before our code ran.
async fn server_fn_error_status(response: Response) -> Response {
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR || !response.headers().contains_key("serverfnerror") {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match to_bytes(body, 1 << 20).await {
        Ok(bytes) => bytes,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::TrustedProxies;
    use std::sync::Arc;

    #[test]
    fn only_a_trusted_proxys_forwarded_for_is_believed_and_only_its_last_untrusted_hop() {
        let proxies = TrustedProxies(Arc::new(vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()]));
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(proxies.client_ip(ip("203.0.113.7"), Some("1.2.3.4")), ip("203.0.113.7"), "an untrusted peer can't claim an address");
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), Some("198.51.100.9")), ip("198.51.100.9"));
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), Some("6.6.6.6, 198.51.100.9, 10.1.2.3")),
            ip("198.51.100.9"),
            "a client-written entry is ignored"
        );
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), Some("garbage, 10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), None), ip("127.0.0.1"));
        assert_eq!(TrustedProxies::default().client_ip(ip("127.0.0.1"), Some("198.51.100.9")), ip("127.0.0.1"), "no proxies trusted by default");
    }
}
