//! The Tessera HTTP server: one axum router serving pages, server functions and assets,
//! behind request ids, security headers, CSRF checks and browser sessions.

pub mod config;
mod middleware;

use axum::Router;
use config::Config;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use tessera_app::{shell, App};
use tessera_backend::{db, seed, Backend};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

pub fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let json = std::env::var("TESSERA_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = fmt().with_env_filter(filter);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Backend(#[from] tessera_backend::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
}

/// Connects, checks the database role, migrates and seeds as configured, and builds the router.
pub async fn build(config: &Config) -> Result<Router, StartError> {
    if let Some(owner_url) = &config.owner_database_url {
        db::migrate(owner_url).await?;
    }
    let pool = db::connect(&config.database_url, config.db_max_connections).await?;
    db::check_app_role(&pool).await?;
    let backend = Backend::new(pool.clone());
    if config.seed_demo {
        seed::demo(&backend).await?;
    }

    let options = LeptosOptions::builder()
        .output_name("tessera")
        .site_root(config.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .build();
    let routes = generate_route_list(App);
    let provide_backend = move || provide_context(backend.clone());

    let sessions = SessionManagerLayer::new(PostgresStore::new(pool))
        .with_name("tessera_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(14)));

    let router = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .leptos_routes_with_context(&options, routes, provide_backend.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(provide_backend, shell))
        .with_state(options);
    Ok(middleware::wrap(router, sessions))
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    let router = build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.addr).await.map_err(|e| StartError::Bind(config.addr, e))?;
    tracing::info!("Tessera is listening on http://{}", config.addr);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(StartError::Serve)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
