//! The Tessera HTTP server: one axum router serving pages, server functions and assets,
//! behind request ids, security headers, CSRF checks and browser sessions.

mod assets;
mod audit;
mod billing;
pub mod config;
mod input_guard;
mod middleware;
mod notifications;
mod oidc;
mod rate_limits;
mod rest;
mod sso;

use axum::Router;
use config::Config;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use tessera_app::{shell, App};
use tessera_backend::jobs::Workers;
use tessera_backend::tenancy::{migrate, topology::Topology};
use tessera_backend::{db, seed, Backend};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

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
    Ok(build_app(config).await?.0)
}

/// The services a server or a worker process runs on: the control-plane pool (checked to be
/// the confined role), the topology, mail, and the request budgets.
pub async fn services(config: &Config) -> Result<(Backend, tessera_backend::rate_limit::RateLimiter), StartError> {
    let pool = db::connect(&config.database_url, config.db_max_connections, config.topology.pgbouncer).await?;
    db::check_app_role(&pool).await?;
    let mailer = tessera_backend::email::mailer(&config.email)?;
    let secret =
        tessera_backend::secrets::SecretKey::new(config.secret_key.as_bytes()).map_err(|e| tessera_backend::Error::Internal(e.to_string()))?;
    let mut backend =
        Backend::new(pool.clone(), &config.topology, secret, mailer, &config.public_url, config.oidc_providers.clone(), config.dns_server)?;
    backend.tenancy.topology().check_app_roles().await?;
    backend.deletion_retention = time::Duration::try_from(config.deletion_retention).unwrap_or(time::Duration::days(30));
    backend.reauth_window = config.reauth_window;
    if config.sso_private_metadata_hosts {
        backend.sso.allow_private_metadata_hosts()?;
    }
    if config.webhook_private_hosts {
        backend.webhooks.allow_private_hosts()?;
    }
    backend.webhooks.disable_after = config.webhook_disable_after;
    backend.tokens.access_lifetime = config.access_token_lifetime;
    backend.tokens.refresh_lifetime = config.refresh_token_lifetime;
    backend.tokens.reuse_overlap = config.refresh_reuse_overlap;
    let limiter = match &config.redis_url {
        Some(url) => tessera_backend::rate_limit::RateLimiter::redis(config.rate_limits, url)?,
        None => tessera_backend::rate_limit::RateLimiter::local(config.rate_limits),
    };
    backend.tenancy.set_rate_limiter(limiter.clone());
    backend.tenancy.set_billing(tessera_backend::billing::Billing::new(&config.billing)?);
    Ok((backend, limiter))
}

/// Like [`build`], also handing back the services (tests drive moves and purges through them).
pub async fn build_app(config: &Config) -> Result<(Router, Backend), StartError> {
    if let Some(owner_url) = &config.owner_database_url {
        let topology = Topology::new(&config.topology)?;
        let report = migrate::migrate_all(owner_url, &topology, 4, &|_, _, _| {}).await?;
        for (region, result) in &report.regions {
            if let Err(e) = result {
                tracing::warn!(region, error = %e, "region's shared schema was not migrated");
            }
        }
        for t in report.tenants.iter().filter(|t| matches!(t.outcome, migrate::Outcome::Failed(_))) {
            tracing::warn!(tenant = %t.slug, outcome = ?t.outcome, "tenant was not migrated; it is not served until `tessera-server migrate` succeeds");
        }
    }
    let (backend, limiter) = services(config).await?;
    if config.seed_demo {
        seed::demo(&backend).await?;
    }

    let assets = assets::Assets::of_site(&config.site_root);
    let options = LeptosOptions::builder()
        .output_name("tessera")
        .site_root(config.site_root.as_str())
        .site_pkg_dir(assets.pkg_dir())
        .site_addr(config.addr)
        .build();
    let routes = route_list();
    let services = backend.clone();
    let session_store = backend.sessions.clone();
    let provide_backend = move || {
        provide_context(backend.clone());
        tessera_app::api::ssr::EnteredOrganizations::provide();
        tessera_app::api::ssr::RenderLoads::provide();
    };

    // Served over https (production), the cookie is `Secure` and `__Host-` prefixed: browsers
    // then refuse it over http and refuse any subdomain's attempt to set or scope it.
    let https = middleware::is_https(&config.public_url);
    let sessions = SessionManagerLayer::new(session_store)
        .with_name(if https { "__Host-tessera_session" } else { "tessera_session" })
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(https || config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(tessera_backend::sessions::IDLE_LIFETIME))
        // Every request moves the expiry on, so "14 days of inactivity" means what it says (and
        // "last active" in the sessions list is true, to the minute: the store writes an
        // unchanged session at most once per `ACTIVITY_RESOLUTION`).
        .with_always_save(true);

    let rest = rest::router(services.clone());
    let router = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .leptos_routes_with_context(&options, routes, provide_backend.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(provide_backend, shell))
        .with_state(options)
        .merge(oidc::router(services.clone()))
        .merge(notifications::router(services.clone()))
        .merge(billing::pages(services.clone()))
        .merge(audit::pages(services.clone()));
    let proxies = middleware::TrustedProxies(std::sync::Arc::new(config.trusted_proxies.clone()));
    let sso = middleware::wrap_sso(sso::router(services.clone(), https), sessions.clone(), &proxies);
    let app = middleware::wrap(router, sessions, &proxies, middleware::PublicScheme::of(&config.public_url, config.secure_cookies), &limiter)
        .merge(middleware::wrap_api(rest.merge(billing::router(services.clone())), &proxies, &limiter))
        .merge(sso)
        // Outside the session layer: a response a shared cache may keep for a year must never
        // carry anyone's cookie (nor cost a session read).
        .nest_service("/pkg", assets.service());
    Ok((middleware::harden(app, https), services))
}

/// Serves, with the job queue's workers beside it (unless `TESSERA_JOB_WORKERS=0`), until
/// Ctrl-C or SIGTERM; then stops taking requests and jobs, and lets running ones finish.
pub async fn run(config: Config) -> Result<(), StartError> {
    let (router, backend) = build_app(&config).await?;
    let workers = Workers::start(backend, config.jobs.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.addr).await.map_err(|e| StartError::Bind(config.addr, e))?;
    tracing::info!("Tessera is listening on http://{}", config.addr);
    // On the signal, the workers stop claiming at once, while requests drain, so both fit in
    // the time an orchestrator gives before it kills the process.
    let stopping = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
    tokio::spawn({
        let stopping = stopping.clone();
        async move {
            shutdown_signal().await;
            let _ = stopping.send(true);
            notifications::end_streams();
        }
    });
    let workers = tokio::spawn({
        let mut stop = stopping.subscribe();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
            workers.shutdown().await;
        }
    });
    let mut stop = stopping.subscribe();
    let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await
        .map_err(StartError::Serve);
    let _ = stopping.send(true);
    let _ = workers.await;
    served
}

/// Runs only the job queue's workers (`tessera-server worker`), for deployments that keep
/// them apart from the web servers, until Ctrl-C or SIGTERM.
pub async fn run_workers(config: Config) -> Result<(), StartError> {
    let (backend, _) = services(&config).await?;
    // TESSERA_JOB_WORKERS=0 switches the web servers' workers off; a worker process shared
    // that setting runs the default number instead.
    let workers = if config.jobs.workers == 0 { tessera_backend::jobs::WorkerConfig::default().workers } else { config.jobs.workers };
    let jobs = tessera_backend::jobs::WorkerConfig { workers, ..config.jobs.clone() };
    tracing::info!(workers = jobs.workers, "Tessera's job workers are running");
    let workers = Workers::start(backend, jobs).await?;
    shutdown_signal().await;
    tracing::info!("stopping: no new jobs; running ones get the grace period to finish");
    workers.shutdown().await;
    Ok(())
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

/// The app's routes, listed once per process. Listing them renders the app with resource loads
/// suppressed by a process-wide flag (leptos_server 0.8, upstream issue leptos-rs/leptos#4773):
/// a page whose resource first polled while another server in the same process was listing
/// would wait forever. Several servers in one process is what the tests do (and what an
/// embedding may do); listing once makes the window close before anything serves.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}
