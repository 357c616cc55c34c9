//! The browser's files: the hydration bundle, its loader and the stylesheet, built into
//! `pkg/<hash of their contents>/` with gzip and brotli forms beside them (`cargo xtask`), and
//! named by `pkg/current`. A hashed address never changes its content, so those are cached
//! for a year and never revalidated; anything else under `/pkg` is revalidated.
//!
//! Served outside the session layer (see `lib.rs`): no cookie ever rides on a cached asset.

use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::path::Path;
use tower_http::services::ServeDir;

#[derive(Clone, Debug)]
pub struct Assets {
    root: std::path::PathBuf,
    /// The current build's folder under `pkg/`, when the site was built with versioned assets.
    version: Option<String>,
}

impl Assets {
    pub fn of_site(site_root: &str) -> Self {
        let root = Path::new(site_root).join("pkg");
        let version = std::fs::read_to_string(root.join("current"))
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_hexdigit()));
        // A build by other means (cargo-leptos) leaves its files at the top of pkg/ and may
        // leave an older xtask build's `current` behind: the newer files win.
        let version = version.filter(|v| root.join(v).join("tessera.js").is_file() && !root.join("tessera.js").exists());
        if version.is_none() {
            tracing::warn!(site = %site_root, "no current versioned assets (pkg/current) in the site: serving /pkg unversioned and revalidated");
        }
        Self { root, version }
    }

    /// Where pages load the bundle and stylesheet from, relative to the site root.
    pub fn pkg_dir(&self) -> String {
        match &self.version {
            Some(version) => format!("pkg/{version}"),
            None => "pkg".to_string(),
        }
    }

    /// Serves `/pkg/*`: the precompressed form the browser accepts, with the cache rule above.
    pub fn service(&self) -> axum::Router {
        let files = ServeDir::new(&self.root).precompressed_br().precompressed_gzip();
        let prefix = self.version.as_ref().map(|v| format!("/{v}/"));
        axum::Router::new().fallback_service(files).layer(axum::middleware::from_fn(move |req: Request<axum::body::Body>, next: Next| {
            let immutable = prefix.as_ref().is_some_and(|p| req.uri().path().starts_with(p.as_str()));
            async move {
                let mut response: Response = next.run(req).await;
                let status = response.status();
                let headers = response.headers_mut();
                let rule = match () {
                    _ if status.is_success() && immutable => "public, max-age=31536000, immutable",
                    _ if status.is_success() || status == axum::http::StatusCode::NOT_MODIFIED => "no-cache",
                    // A hash that isn't there yet (a deploy rolling out) mustn't be remembered as missing.
                    _ => "no-store",
                };
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(rule));
                // The same address answers gzip, brotli or plain by what the browser accepts.
                headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
                headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                response
            }
        }))
    }
}
