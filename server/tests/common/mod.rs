//! A whole Tessera server per test, on its own database cloned from the migrated template
//! that `cargo xtask test` prepares, driven over HTTP like a browser or API client would.
#![allow(dead_code)]

pub mod saml_idp;

use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::net::SocketAddr;
use std::time::Duration;

/// The password [`TestApp::signed_up`] gives everyone.
pub const PASSWORD: &str = "correct horse battery";
use tessera_backend::email::EmailConfig;
use tessera_backend::tenancy::topology::{RegionConfig, TopologyConfig};
use tessera_domain::placement::{RegionName, TenancyModel};
use tessera_server::config::Config;

pub struct TestApp {
    pub base: String,
    /// Region "eu" (cluster A, which also holds the control plane) as the superuser, which
    /// row-level security doesn't filter, for looking behind the app's back. Its search_path
    /// is `public, shared`: control-plane tables first, then pooled tenant tables.
    pub inspect: PgPool,
    /// The same for region "us" (cluster B): only tenant data lives there.
    pub inspect_b: PgPool,
    /// The schema owner's connection string (migrations run as this role).
    pub owner_db_url: String,
    /// The confined role's connection string, as the server uses it (direct, not via PgBouncer).
    pub app_db_url: String,
    /// The services behind the server, for operator actions (moves, purges) in tests.
    pub backend: tessera_backend::Backend,
    pub config: Config,
    /// The name of this test's database, the same on both clusters.
    database: String,
    /// This server's job workers.
    workers: Option<tessera_backend::jobs::Workers>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Response {
    /// The `Location` header (a redirect's target, or a server function's), or "".
    pub fn location(&self) -> String {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// The message of an `AppError` body, whatever its variant.
    pub fn error_message(&self) -> String {
        let json = self.json();
        let inner = json.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
        match inner {
            Value::String(s) => s,
            Value::Object(o) => o.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
            _ => self.body.clone(),
        }
    }
    pub fn error_field(&self) -> Option<String> {
        let json = self.json();
        json.as_object()?.values().next()?.get("field")?.as_str().map(str::to_string)
    }
}

/// One browser: its own cookie jar.
#[derive(Clone)]
pub struct Browser {
    base: String,
    client: Client,
}

/// An open Server-Sent Events response.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event's name and data (keep-alive comments skipped), waiting up to 20 seconds.
    pub async fn next_event(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = ("message".to_string(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                if block.lines().any(|line| !line.is_empty() && !line.starts_with(':')) {
                    return (event, data);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk()).await.expect("an event within 20 s");
            let chunk = chunk.expect("the stream reads").expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with `cargo xtask test`, which starts PostgreSQL"))
}

fn with_database(url: &str, user: &str, database: &str) -> String {
    let rest = url.split_once('@').map(|(_, r)| r).expect("url has user@host");
    let host = rest.split('/').next().unwrap();
    format!("postgres://{user}@{host}/{database}")
}

fn port_of(url: &str) -> u16 {
    let rest = url.split_once('@').map(|(_, r)| r).expect("url has user@host");
    let host = rest.split('/').next().unwrap();
    host.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("url has a port")
}

/// Registers this test server as a client of the stand-in OpenID provider (open dynamic
/// registration), as provider "test".
async fn register_oidc_client(issuer: &str, base: &str) -> tessera_backend::identity::oidc::ProviderConfig {
    let r: Value = Client::new()
        .post(format!("{issuer}/reg"))
        .json(&serde_json::json!({ "redirect_uris": [format!("{base}/auth/oidc/test/callback")] }))
        .send()
        .await
        .expect("the OpenID provider stand-in is running")
        .json()
        .await
        .unwrap();
    tessera_backend::identity::oidc::ProviderConfig {
        id: "test".into(),
        name: "Test IdP".into(),
        issuer: Some(issuer.to_string()),
        client_id: r["client_id"].as_str().unwrap().to_string(),
        client_secret: r["client_secret"].as_str().unwrap().to_string(),
        ..Default::default()
    }
}

/// An OAuth app on the GitHub stand-in, as provider "github".
async fn register_github_app(server_url: &str, base: &str) -> tessera_backend::identity::oidc::ProviderConfig {
    let r: Value = Client::new()
        .post(format!("{server_url}/_stand-in/clients"))
        .json(&serde_json::json!({ "redirect_uris": [format!("{base}/auth/oidc/github/callback")] }))
        .send()
        .await
        .expect("the GitHub stand-in is running")
        .json()
        .await
        .unwrap();
    tessera_backend::identity::oidc::ProviderConfig {
        id: "github".into(),
        name: "GitHub".into(),
        kind: tessera_backend::identity::oidc::ProviderKind::Github,
        server_url: Some(server_url.to_string()),
        client_id: r["client_id"].as_str().unwrap().to_string(),
        client_secret: r["client_secret"].as_str().unwrap().to_string(),
        ..Default::default()
    }
}

async fn create_database(admin_url: &str, database: &str, template: &str) {
    let mut admin = PgConnection::connect(admin_url).await.expect("connect as owner");
    admin.execute(format!("CREATE DATABASE {database} TEMPLATE {template} OWNER tessera_owner").as_str()).await.expect("clone the template database");
    // A clone gets the default database rights back; the app role has no temporary tables
    // in production (see the least_privilege migration).
    admin.execute(format!("REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC").as_str()).await.expect("revoke TEMPORARY");
    admin.close().await.ok();
}

/// A passing test's databases go when it ends: some 200 tests, each cloning a database on two
/// clusters, in two passes, once filled a CI machine's disk. A failing test keeps its own for
/// a look behind the app's back (the cluster itself goes when the test command ends).
impl Drop for TestApp {
    fn drop(&mut self) {
        // Stopped first, so none is mid-statement when the database goes.
        drop(self.workers.take());
        if std::thread::panicking() {
            return;
        }
        let database = self.database.clone();
        // Its own thread and runtime: the test's runtime may be single-threaded and busy here.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the clean-up");
            runtime.block_on(drop_databases(&database))
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop the test database {}: {e}", self.database);
        }
    }
}

/// Drops a test's database on both clusters, and the dedicated databases its organizations got.
async fn drop_databases(database: &str) -> Result<(), sqlx::Error> {
    let admins = [env("TESSERA_TEST_ADMIN_URL"), env("TESSERA_TEST_REGION_B_ADMIN_URL")];
    let mut control = PgConnection::connect(&with_database(&admins[0], "postgres", database)).await?;
    let mut doomed: Vec<String> = sqlx::query_scalar("SELECT database FROM tenants WHERE database IS NOT NULL").fetch_all(&mut control).await?;
    control.close().await.ok();
    doomed.push(database.to_string());
    for admin in &admins {
        // As the superuser: FORCE ends every connection to it, the superuser's `inspect` pools
        // included, besides the server's and PgBouncer's.
        let mut conn = PgConnection::connect(&with_database(admin, "postgres", "postgres")).await?;
        for name in &doomed {
            conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
        }
        conn.close().await.ok();
    }
    Ok(())
}

async fn superuser_pool(admin_url: &str, database: &str) -> PgPool {
    let options: PgConnectOptions = with_database(admin_url, "postgres", database).parse().unwrap();
    PgPoolOptions::new().max_connections(3).connect_with(options.options([("search_path", "public,shared")])).await.expect("superuser pool")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server on fresh databases in both regions (cluster A: control plane + region "eu";
    /// cluster B: region "us"), with `adjust` applied to its configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(None, adjust).await
    }

    async fn spawn_on(port: Option<u16>, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let admin_url = env("TESSERA_TEST_ADMIN_URL");
        let admin_b = env("TESSERA_TEST_REGION_B_ADMIN_URL");
        let database = format!("test_{}", uuid::Uuid::new_v4().simple());
        create_database(&admin_url, &database, &env("TESSERA_TEST_TEMPLATE")).await;
        create_database(&admin_b, &database, &env("TESSERA_TEST_REGION_TEMPLATE")).await;
        // The app connects where the test command says: straight to PostgreSQL, or via PgBouncer.
        let app_port_a = std::env::var("TESSERA_TEST_APP_PORT_A").ok().and_then(|p| p.parse().ok()).unwrap_or(port_of(&admin_url));
        let app_port_b = std::env::var("TESSERA_TEST_APP_PORT_B").ok().and_then(|p| p.parse().ok()).unwrap_or(port_of(&admin_b));
        let pgbouncer = std::env::var("TESSERA_PGBOUNCER").is_ok_and(|v| v == "1");
        let app_url = |port: u16| format!("postgres://tessera_app@127.0.0.1:{port}/{database}");
        let owner_url = with_database(&admin_url, "tessera_owner", &database);
        // Bound first: links in emails must carry the server's real address.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut oidc_providers = Vec::new();
        if let Ok(issuer) = std::env::var("TESSERA_TEST_OIDC_ISSUER") {
            oidc_providers.push(register_oidc_client(&issuer, &base).await);
        }
        if let Ok(server_url) = std::env::var("TESSERA_TEST_GITHUB_URL") {
            oidc_providers.push(register_github_app(&server_url, &base).await);
        }
        let addr = listener.local_addr().unwrap();
        let from = "Tessera <no-reply@tessera.test>".to_string();
        let email = match std::env::var("TESSERA_TEST_SMTP_URL") {
            Ok(url) => EmailConfig::Smtp { url, from },
            Err(_) => EmailConfig::Files { dir: std::env::temp_dir().join(format!("tessera-mail-{database}")), from },
        };
        let mut config = Config {
            database_url: app_url(app_port_a),
            owner_database_url: None,
            topology: TopologyConfig {
                regions: vec![
                    RegionConfig {
                        name: RegionName::parse("eu").unwrap(),
                        app_url: app_url(app_port_a),
                        owner_url: Some(owner_url.clone()),
                        dedicated_app_url: None,
                        dedicated_owner_url: None,
                    },
                    RegionConfig {
                        name: RegionName::parse("us").unwrap(),
                        app_url: app_url(app_port_b),
                        owner_url: Some(with_database(&admin_b, "tessera_owner", &database)),
                        dedicated_app_url: None,
                        dedicated_owner_url: None,
                    },
                ],
                models: TenancyModel::ALL.to_vec(),
                region_pool_size: 5,
                dedicated_pool_size: 2,
                dedicated_pools_max: 20,
                acquire_timeout: Duration::from_secs(3),
                statement_timeout: Duration::from_secs(10),
                pgbouncer,
                dedicated_tenants_max: 100,
            },
            addr: "127.0.0.1:0".parse().unwrap(),
            site_root: "../target/site".into(),
            secure_cookies: false,
            seed_demo: false,
            db_max_connections: 5,
            deletion_retention: Duration::from_secs(30 * 86_400),
            // Quick to notice work (mail goes through the queue); no recurring work, so no tick
            // lands in the middle of a test.
            jobs: tessera_backend::jobs::WorkerConfig {
                workers: 2,
                poll_interval: Duration::from_millis(50),
                lease: Duration::from_secs(30),
                shutdown_grace: Duration::from_secs(1),
                schedules: false,
            },
            email,
            public_url: format!("http://{addr}"),
            secret_key: tessera_backend::secrets::SecretKey::generate(),
            reauth_window: Duration::from_secs(600),
            access_token_lifetime: Duration::from_secs(900),
            refresh_token_lifetime: Duration::from_secs(30 * 86_400),
            refresh_reuse_overlap: Duration::from_secs(10),
            oidc_providers,
            trusted_proxies: Vec::new(),
            // The SAML IdP stand-in serves its metadata on loopback.
            sso_private_metadata_hosts: true,
            webhook_private_hosts: true,
            webhook_disable_after: std::time::Duration::from_secs(5 * 86_400),
            dns_server: std::env::var("TESSERA_TEST_DNS_SERVER").ok().map(|v| v.parse().expect("TESSERA_TEST_DNS_SERVER is ip:port")),
            // Unlimited: tests send bursts from one address; `rate_limits.rs` sets its own.
            rate_limits: tessera_backend::rate_limit::Budgets::UNLIMITED,
            redis_url: None,
            // Off unless a test asks for it (`spawn_billed`): everyone on the free plan.
            billing: tessera_backend::billing::BillingConfig::default(),
        };
        adjust(&mut config);
        let (router, backend) = tessera_server::build_app(&config).await.expect("server builds");
        let workers = tessera_backend::jobs::Workers::start(backend.clone(), config.jobs.clone()).await.expect("workers start");
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let inspect = superuser_pool(&admin_url, &database).await;
        let inspect_b = superuser_pool(&admin_b, &database).await;
        let app_db_url = with_database(&admin_url, "tessera_app", &database);
        TestApp {
            base: format!("http://{addr}"),
            inspect,
            inspect_b,
            owner_db_url: owner_url,
            app_db_url,
            backend,
            config,
            database,
            workers: Some(workers),
        }
    }

    /// A server with billing on: a Stripe account of its own on the stand-in (its own test key,
    /// so tests running at once don't see each other's objects), whose webhook endpoint is this
    /// server, the catalogue synced, and a test clock per customer. With `STRIPE_SECRET_KEY`
    /// (and `STRIPE_WEBHOOK_SECRET` from `stripe listen --forward-to <server>/webhooks/stripe`)
    /// it is real Stripe's test mode instead.
    pub async fn spawn_billed(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let listener_port = {
            // The server's address must be known before it starts, for the endpoint's URL.
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let (secret_key, api_base, webhook_secret) = stripe_account(listener_port).await;
        let app = Self::spawn_on(Some(listener_port), |config| {
            config.billing = tessera_backend::billing::BillingConfig {
                secret_key: Some(secret_key),
                api_base,
                webhook_secrets: vec![webhook_secret],
                plans_file: None,
                policy: tessera_domain::billing::Policy::default(),
                test_clocks: true,
            };
            adjust(config);
        })
        .await;
        let billing = app.backend.tenancy.billing();
        tessera_backend::billing::sync::sync(billing.stripe().unwrap(), billing.catalogue()).await.expect("the catalogue syncs to Stripe");
        app
    }

    /// Another server on the same databases and configuration, as in a deployment that runs
    /// several; returns its base URL.
    pub async fn another_server(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (router, _) = tessera_server::build_app(&self.config).await.expect("server builds");
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        format!("http://{addr}")
    }

    pub fn browser(&self) -> Browser {
        self.browser_with_agent("tessera-tests/1.0")
    }

    /// A browser that sends `user_agent` (shown to people on their sessions page).
    pub fn browser_with_agent(&self, user_agent: &str) -> Browser {
        // A request that hangs fails its test with its path after a minute, rather than
        // holding the whole run until CI's limit (an intermittent hang of a 404 page render
        // has been seen; see the issue notes).
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Browser { base: self.base.clone(), client }
    }

    /// A browser with a fresh account, logged in, whose address is confirmed (as if they had
    /// followed the welcome mail; `email_links.rs` tests that flow itself).
    pub async fn signed_up(&self, email: &str) -> Browser {
        let browser = self.registered(email, PASSWORD).await;
        sqlx::query("UPDATE users SET email_verified_at = now() WHERE email = $1").bind(email).execute(&self.inspect).await.unwrap();
        let r = browser.call("log_in", &[("email", email), ("password", PASSWORD)]).await;
        assert!(r.status.is_success() || r.status.is_redirection(), "log in {email}: {} {}", r.status, r.body);
        browser
    }

    /// The browser that signed up as `email` with `password`, before the address is
    /// confirmed: nobody is signed in (an unconfirmed account can't sign in).
    pub async fn registered(&self, email: &str, password: &str) -> Browser {
        let browser = self.browser();
        let r = browser.call("sign_up", &[("email", email), ("password", password), ("name", "")]).await;
        assert!(r.status.is_success(), "sign up {email}: {} {}", r.status, r.body);
        browser
    }

    /// A signed-in browser whose account's address is not confirmed. No sign-in creates this
    /// state any more, but sessions from before the rule may hold it, so the app still guards
    /// it; tests of those guards start here.
    pub async fn signed_in_unconfirmed(&self, email: &str) -> Browser {
        let browser = self.signed_up(email).await;
        sqlx::query("UPDATE users SET email_verified_at = NULL WHERE email = $1").bind(email).execute(&self.inspect).await.unwrap();
        browser
    }

    /// Signs `browser` up the way a person does: the form, then the link in the welcome mail,
    /// followed in the same browser. Returns the answer to following it (a redirect to `next`).
    pub async fn sign_up_by_mail(&self, browser: &Browser, form: &[(&str, &str)]) -> Response {
        let email = form.iter().find(|(k, _)| *k == "email").map(|(_, v)| v.to_lowercase()).expect("an email in the form");
        let r = browser.call("sign_up", form).await;
        assert!(r.status.is_success(), "sign up {email}: {} {}", r.status, r.body);
        let link = Inbox::link(&Inbox::latest(&email, "Confirm your email").await, "/auth/verify?token=");
        let r = browser.call("verify_email", &[("token", &token_of(&link))]).await;
        assert!(r.status.is_redirection() || r.status.is_success(), "confirm {email}: {} {}", r.status, r.body);
        r
    }

    /// A logged-in owner of a new organization (pooled, in the default region).
    pub async fn owner_of(&self, slug: &str) -> Browser {
        self.owner_of_in(slug, "eu", "pooled").await
    }

    /// A logged-in owner of a new organization placed in `region` under `model`.
    pub async fn owner_of_in(&self, slug: &str, region: &str, model: &str) -> Browser {
        let browser = self.signed_up(&format!("owner@{slug}.test")).await;
        let r = browser.call("create_org", &[("name", &format!("Org {slug}")), ("slug", slug), ("region", region), ("model", model)]).await;
        assert!(r.status.is_success(), "create org {slug} ({model} in {region}): {} {}", r.status, r.body);
        browser
    }

    /// A superuser connection to wherever `slug`'s data lives, with search_path at its schema.
    pub async fn inspect_tenant(&self, slug: &str) -> PgConnection {
        let (region, database, schema): (String, Option<String>, String) =
            sqlx::query_as("SELECT region, database, schema_name FROM tenants WHERE slug = $1").bind(slug).fetch_one(&self.inspect).await.unwrap();
        let admin = if region == "eu" { env("TESSERA_TEST_ADMIN_URL") } else { env("TESSERA_TEST_REGION_B_ADMIN_URL") };
        let db = match database {
            Some(db) => db,
            None => self.config.database_url.rsplit('/').next().unwrap().to_string(),
        };
        let options: PgConnectOptions = with_database(&admin, "postgres", &db).parse().unwrap();
        PgConnection::connect_with(&options.options([("search_path", schema.as_str())])).await.unwrap()
    }

    /// A connection as the confined app role (direct, not via PgBouncer) to wherever `slug`'s
    /// data lives, search_path at its schema, and no tenant set.
    pub async fn app_conn_for(&self, slug: &str) -> PgConnection {
        let (region, database, schema): (String, Option<String>, String) =
            sqlx::query_as("SELECT region, database, schema_name FROM tenants WHERE slug = $1").bind(slug).fetch_one(&self.inspect).await.unwrap();
        let admin = if region == "eu" { env("TESSERA_TEST_ADMIN_URL") } else { env("TESSERA_TEST_REGION_B_ADMIN_URL") };
        let db = database.unwrap_or_else(|| self.config.database_url.rsplit('/').next().unwrap().to_string());
        let options: PgConnectOptions = with_database(&admin, "tessera_app", &db).parse().unwrap();
        PgConnection::connect_with(&options.options([("search_path", schema.as_str())])).await.unwrap()
    }

    pub async fn tenant_id(&self, slug: &str) -> uuid::Uuid {
        sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1").bind(slug).fetch_one(&self.inspect).await.unwrap()
    }

    /// The account audit trail of `email`, oldest first (event names).
    pub async fn security_events(&self, email: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT e.event FROM security_events e JOIN users u ON u.id = e.user_id WHERE u.email = $1 ORDER BY e.occurred_at")
            .bind(email)
            .fetch_all(&self.inspect)
            .await
            .unwrap()
    }

    /// An API sign-in (`POST /api/v1/auth/token`); returns its access token.
    pub async fn api_access_token(&self, email: &str, password: &str, code: Option<&str>) -> String {
        let mut body = serde_json::json!({ "email": email, "password": password });
        if let Some(code) = code {
            body["code"] = code.into();
        }
        let r = Client::new().post(format!("{}/api/v1/auth/token", self.base)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "API sign-in as {email}: {}", r.status());
        let tokens: Value = r.json().await.unwrap();
        tokens["access_token"].as_str().unwrap().to_string()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.inspect).await.unwrap()
    }

    pub async fn user_id(&self, email: &str) -> String {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&self.inspect).await.unwrap();
        id.to_string()
    }

    /// The audit records about `target_id` in the shared tenant tables, oldest first:
    /// (action, changes).
    pub async fn trail(&self, target_id: &str) -> Vec<(String, Value)> {
        sqlx::query_as("SELECT action, changes FROM shared.audit_log WHERE target_id = $1 ORDER BY occurred_at")
            .bind(target_id)
            .fetch_all(&self.inspect)
            .await
            .unwrap()
    }

    pub async fn project_id(&self, name: &str) -> String {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM shared.projects WHERE name = $1").bind(name).fetch_one(&self.inspect).await.unwrap();
        id.to_string()
    }
}

/// The SMTP catcher (maildev) the test command runs: every mail the servers send lands there.
pub struct Inbox;

impl Inbox {
    /// The newest mail to `to` whose subject contains `subject`, waiting up to ten seconds for
    /// it (mail is sent in the background).
    pub async fn latest(to: &str, subject: &str) -> Value {
        let url = format!("{}/api/email", env("TESSERA_TEST_MAILDEV_URL"));
        for _ in 0..100 {
            let all: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            let found = all.as_array().unwrap().iter().rev().find(|m| {
                let to_matches = m["envelope"]["to"].as_array().is_some_and(|t| t.iter().any(|a| a["address"] == to));
                to_matches && m["subject"].as_str().is_some_and(|s| s.contains(subject))
            });
            if let Some(mail) = found {
                return mail.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail to {to} about {subject:?} arrived");
    }

    /// The newest mail to `to` about `subject` once there are more than `seen` of them (see
    /// [`Inbox::count_about`]): for a second mail of the same kind, where [`Inbox::latest`]
    /// could return the first.
    pub async fn after(seen: usize, to: &str, subject: &str) -> Value {
        for _ in 0..100 {
            if Inbox::count_about(to, subject).await > seen {
                return Inbox::latest(to, subject).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no new mail to {to} about {subject:?} arrived");
    }

    /// How many mails to `to` whose subject contains `subject` have arrived.
    pub async fn count_about(to: &str, subject: &str) -> usize {
        let url = format!("{}/api/email", env("TESSERA_TEST_MAILDEV_URL"));
        let all: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let to_matches = |m: &Value| m["envelope"]["to"].as_array().is_some_and(|t| t.iter().any(|a| a["address"] == to));
        all.as_array().unwrap().iter().filter(|m| to_matches(m) && m["subject"].as_str().is_some_and(|s| s.contains(subject))).count()
    }

    /// How many mails `to` has received.
    pub async fn count(to: &str) -> usize {
        let url = format!("{}/api/email", env("TESSERA_TEST_MAILDEV_URL"));
        let all: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        all.as_array().unwrap().iter().filter(|m| m["envelope"]["to"].as_array().is_some_and(|t| t.iter().any(|a| a["address"] == to))).count()
    }

    /// The first link in the mail's text body that contains `path`, as a path with query.
    pub fn link(mail: &Value, path: &str) -> String {
        let text = mail["text"].as_str().unwrap();
        let url = text.split_whitespace().find(|w| w.contains(path)).unwrap_or_else(|| panic!("no {path} link in {text}"));
        let start = url.find(path).unwrap();
        url[start..].to_string()
    }
}

/// The `token` query parameter of a link path.
pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().split('&').next().unwrap().to_string()
}

impl Browser {
    /// The same browser (its cookies) talking to the server at `base`: a deployment's other
    /// server behind the same address.
    pub fn on(&self, base: &str) -> Browser {
        Browser { base: base.to_string(), client: self.client.clone() }
    }

    /// Calls a server function the way the hydrated app does.
    pub async fn call(&self, function: &str, form: &[(&str, &str)]) -> Response {
        let r = self.client.post(format!("{}/api/{function}", self.base)).header(header::ACCEPT, "application/json").form(form).send().await.unwrap();
        read(r).await
    }

    pub async fn call_with_headers(&self, function: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Response {
        let mut req = self.client.post(format!("{}/api/{function}", self.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.unwrap()).await
    }

    /// Posts a form to a plain route (not a server function), from another site, as an IdP's
    /// auto-submitting page does.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        let r = self.client.post(format!("{}{path}", self.base)).header("origin", "https://idp.example").form(form).send().await.unwrap();
        read(r).await
    }

    /// Sends a raw body, as a confused or hostile client might.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Response {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn get(&self, path: &str) -> Response {
        read(self.client.get(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    /// A GET whose body the test reads itself (a download, streamed).
    pub async fn raw_get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// A Server-Sent Events stream this browser opens, read event by event.
    pub async fn stream(&self, path: &str) -> EventStream {
        let response = self.client.get(format!("{}{path}", self.base)).header("accept", "text/event-stream").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        EventStream { response, buffer: String::new() }
    }

    /// Brings `email` into `slug` as `role` the way people join: this browser (an Owner or
    /// Admin) invites them, and `invitee` (signed in, address confirmed) accepts from their
    /// home page. `invitations.rs` tests the emailed link itself.
    pub async fn invite_and_accept(&self, slug: &str, email: &str, role: &str, invitee: &Browser) {
        let r = self.call("invite_member", &[("slug", slug), ("email", email), ("role", role)]).await;
        assert!(r.status.is_success(), "invite {email}: {} {}", r.status, r.body);
        let id = r.json()["id"].as_str().unwrap().to_string();
        let r = invitee.call("accept_invitation", &[("id", &id)]).await;
        assert!(r.status.is_success() || r.status.is_redirection(), "accept as {email}: {} {}", r.status, r.body);
    }

    /// The project, in a tenant, the way members reach it.
    pub async fn add_project(&self, slug: &str, name: &str) {
        let r = self.call("create_project", &[("slug", slug), ("name", name), ("description", "")]).await;
        assert!(r.status.is_success(), "create project {name}: {} {}", r.status, r.body);
    }
}

async fn read(r: reqwest::Response) -> Response {
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Response { status, headers, body }
}

/// What an authenticator app shows for the base32 `secret`, `offset_steps` 30-second steps
/// from now.
pub fn totp_code(secret: &str, offset_steps: i64) -> String {
    use totp_rs::{Algorithm, Secret, TOTP};
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, Secret::Encoded(secret.into()).to_bytes().unwrap(), None, "test".into()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    totp.generate((now + offset_steps * 30) as u64)
}

impl Browser {
    /// Turns two-factor on for this signed-in browser; returns the secret and recovery codes.
    pub async fn enrol_in_mfa(&self) -> (String, Vec<String>) {
        let r = self.call("begin_mfa_enrolment", &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let secret = r.json()["secret"].as_str().unwrap().to_string();
        let r = self.call("confirm_mfa_enrolment", &[("code", &totp_code(&secret, 0))]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let codes = r.json().as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        (secret, codes)
    }
}

/// Who signs in at the stand-in OpenID provider's login form.
pub struct IdpLogin<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub email_verified: bool,
    /// The provider's stable id for the person; derived from the email when `None`.
    pub sub: Option<&'a str>,
    /// Another address the provider has verified (the GitHub stand-in's form has one).
    pub secondary_email: Option<&'a str>,
}

impl Browser {
    /// Follows one redirect chain from `path` the way a browser would, posting `login` to the
    /// provider's form when it shows up; returns the first response that isn't a redirect to
    /// the provider, i.e. where Tessera finally sends the browser.
    pub async fn through_idp(&self, path: &str, login: &IdpLogin<'_>) -> Response {
        match self.walk_idp(path, login, false).await {
            Ok(response) => response,
            Err(callback) => panic!("stopped at {callback}"),
        }
    }

    /// Like [`Browser::through_idp`], but stops before Tessera's callback and returns its URL.
    pub async fn idp_callback_url(&self, path: &str, login: &IdpLogin<'_>) -> String {
        match self.walk_idp(path, login, true).await {
            Err(callback) => callback,
            Ok(r) => panic!("never reached the callback: {} {}", r.status, r.body),
        }
    }

    async fn walk_idp(&self, path: &str, login: &IdpLogin<'_>, stop_at_callback: bool) -> Result<Response, String> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).unwrap();
        let mut posted = false;
        for _ in 0..20 {
            let r = self.client.get(url.clone()).send().await.unwrap();
            let at_login_form = url.path().starts_with("/interaction/") || url.path() == "/login/oauth/authorize";
            let r = if r.status() == StatusCode::OK && at_login_form && !posted {
                posted = true;
                let mut form = vec![("email", login.email), ("name", login.name)];
                if login.email_verified {
                    form.push(("email_verified", "true"));
                }
                if let Some(sub) = login.sub {
                    form.push(("sub", sub));
                }
                if let Some(secondary) = login.secondary_email {
                    form.push(("secondary_email", secondary));
                }
                self.client.post(url.clone()).form(&form).send().await.unwrap()
            } else {
                r
            };
            let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
            match location {
                Some(next) if r.status().is_redirection() => {
                    let next = url.join(&next).unwrap();
                    // Back at Tessera after the callback: stop, so the test sees where it lands.
                    if next.as_str().starts_with(&self.base) && !next.path().starts_with("/auth/oidc/") {
                        return Ok(read(r).await);
                    }
                    if stop_at_callback && next.as_str().starts_with(&self.base) && next.path().ends_with("/callback") {
                        return Err(next.as_str()[self.base.len()..].to_string());
                    }
                    url = next;
                }
                _ => return Ok(read(r).await),
            }
        }
        panic!("too many redirects from {path}");
    }
}

/// Waits, if need be, until the current fixed rate-limit window (`minutes` long, aligned to the
/// epoch as the limiter aligns them) has at least `margin_secs` left, so a test that fills a
/// window isn't split across two of them.
pub async fn within_one_window(minutes: u64, margin_secs: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let left = minutes * 60 - now % (minutes * 60);
    if left < margin_secs {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

/// A Stripe account for one test server: (secret key, API base, webhook signing secret).
async fn stripe_account(port: u16) -> (String, Option<String>, String) {
    if let Ok(key) = std::env::var("STRIPE_SECRET_KEY") {
        let secret = std::env::var("STRIPE_WEBHOOK_SECRET").expect("with STRIPE_SECRET_KEY, set STRIPE_WEBHOOK_SECRET (from `stripe listen`)");
        eprintln!("billing test: against Stripe's test mode (STRIPE_SECRET_KEY)");
        return (key, None, secret);
    }
    // Said, not silent: these aren't Stripe's own answers.
    eprintln!("billing test: against the Stripe stand-in (no network here; set STRIPE_SECRET_KEY to use Stripe's test mode)");
    let base = std::env::var("TESSERA_TEST_STRIPE_URL").expect("TESSERA_TEST_STRIPE_URL (set by cargo xtask test)");
    let key = format!("sk_test_{}", uuid::Uuid::new_v4().simple());
    let endpoint: Value = Client::new()
        .post(format!("{base}/v1/webhook_endpoints"))
        .bearer_auth(&key)
        .form(&[("url", format!("http://127.0.0.1:{port}/webhooks/stripe").as_str()), ("enabled_events[]", "*")])
        .send()
        .await
        .expect("the Stripe stand-in is running")
        .json()
        .await
        .unwrap();
    let secret = endpoint["secret"].as_str().unwrap_or_else(|| panic!("a webhook endpoint: {endpoint}")).to_string();
    (key, Some(base), secret)
}

/// Every field any server function takes: `slug`, the ids, and a `tag` that keeps names and
/// addresses apart between calls. A function ignores the fields it doesn't take, so one form
/// reaches them all; one missing here shows as a malformed form, which the test refuses.
pub fn every_field<'a>(slug: &'a str, id: &'a str, user_id: &'a str, tag: &'a str) -> Vec<(&'a str, String)> {
    vec![
        ("slug", slug.into()),
        ("id", id.into()),
        ("user_id", user_id.into()),
        ("handle", id.into()),
        ("token", id.into()),
        ("role", "owner".into()),
        ("name", format!("Planted {tag}")),
        ("description", "Planted".into()),
        ("project", id.into()),
        ("title", format!("Planted {tag}")),
        ("body", "Planted".into()),
        ("email", format!("probe-{tag}@example.test")),
        ("password", "not-anyones-password".into()),
        ("code", "000000".into()),
        ("confirm", "bravo".into()),
        ("model", "pooled".into()),
        ("plan", "business".into()),
        ("interval", "month".into()),
        ("region", "eu".into()),
        ("domain", format!("probe-{tag}.example.test")),
        ("provider", "github".into()),
        ("purpose", "magic_link".into()),
        ("metadata_xml", "<x/>".into()),
        ("metadata_url", "http://127.0.0.1:9/metadata".into()),
        ("email_attribute", "email".into()),
        ("name_attribute", "name".into()),
        ("groups_attribute", "groups".into()),
        ("group_roles", "".into()),
        ("default_role", "owner".into()),
        ("scopes[]", "projects:read".into()),
        ("scopes[]", "projects:write".into()),
        ("scopes[]", "members:read".into()),
        ("expires_in_days", "never".into()),
        ("days", "400".into()),
        ("require_mfa", "on".into()),
        ("sso_satisfies_mfa", "on".into()),
        ("require_sso", "on".into()),
        ("kind", "role_changed".into()),
        ("url", "http://127.0.0.1:9/planted".into()),
        ("event_types[]", "project.created".into()),
        ("enabled", "on".into()),
        ("delivery", id.into()),
        ("since", "2026-01-01T00:00:00Z".into()),
        ("status", "".into()),
        ("before", "".into()),
        ("grantee", format!("user:{user_id}")),
        ("project_role", "editor".into()),
        ("visibility", "restricted".into()),
        ("group", id.into()),
        ("grant", id.into()),
        ("idp_group", "".into()),
        ("permissions[]", "ViewAudit".into()),
    ]
}
