//! A whole Tessera server per test, on its own database cloned from the migrated template
//! that `cargo xtask test` prepares, driven over HTTP like a browser or API client would.
#![allow(dead_code)]

use reqwest::{header, Client, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::net::SocketAddr;
use tessera_server::config::Config;

pub struct TestApp {
    pub base: String,
    /// Connected as the superuser, which row-level security doesn't filter (even the table
    /// owner is bound by FORCE), for looking behind the app's back.
    pub inspect: PgPool,
    /// The schema owner's connection string (migrations run as this role).
    pub owner_db_url: String,
    /// The confined role's connection string, as the server uses it.
    pub app_db_url: String,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Response {
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

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with `cargo xtask test`, which starts PostgreSQL"))
}

fn with_database(url: &str, user: &str, database: &str) -> String {
    let rest = url.split_once('@').map(|(_, r)| r).expect("url has user@host");
    let host = rest.split('/').next().unwrap();
    format!("postgres://{user}@{host}/{database}")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let admin_url = env("TESSERA_TEST_ADMIN_URL");
        let template = env("TESSERA_TEST_TEMPLATE");
        let database = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url).await.expect("connect as owner");
        admin
            .execute(format!("CREATE DATABASE {database} TEMPLATE {template} OWNER tessera_owner").as_str())
            .await
            .expect("clone the template database");
        admin.close().await.ok();
        let owner_url = with_database(&admin_url, "tessera_owner", &database);
        let app_db_url = with_database(&admin_url, "tessera_app", &database);
        let config = Config {
            database_url: app_db_url.clone(),
            owner_database_url: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            site_root: "../target/site".into(),
            secure_cookies: false,
            seed_demo: false,
            db_max_connections: 5,
        };
        let router = tessera_server::build(&config).await.expect("server builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let inspect = PgPool::connect(&with_database(&admin_url, "postgres", &database)).await.expect("superuser pool");
        TestApp { base: format!("http://{addr}"), inspect, owner_db_url: owner_url, app_db_url }
    }

    pub fn browser(&self) -> Browser {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("tessera-tests/1.0")
            .build()
            .unwrap();
        Browser { base: self.base.clone(), client }
    }

    /// A browser with a fresh account, logged in.
    pub async fn signed_up(&self, email: &str) -> Browser {
        let browser = self.browser();
        let r = browser.call("sign_up", &[("email", email), ("password", "correct horse battery"), ("name", "")]).await;
        assert!(r.status.is_success(), "sign up {email}: {} {}", r.status, r.body);
        browser
    }

    /// A logged-in owner of a new organization.
    pub async fn owner_of(&self, slug: &str) -> Browser {
        let browser = self.signed_up(&format!("owner@{slug}.test")).await;
        let r = browser.call("create_org", &[("name", &format!("Org {slug}")), ("slug", slug)]).await;
        assert!(r.status.is_success(), "create org {slug}: {} {}", r.status, r.body);
        browser
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.inspect).await.unwrap()
    }

    pub async fn user_id(&self, email: &str) -> String {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&self.inspect).await.unwrap();
        id.to_string()
    }

    pub async fn project_id(&self, name: &str) -> String {
        let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1").bind(name).fetch_one(&self.inspect).await.unwrap();
        id.to_string()
    }
}

impl Browser {
    /// Calls a server function the way the hydrated app does.
    pub async fn call(&self, function: &str, form: &[(&str, &str)]) -> Response {
        let r = self
            .client
            .post(format!("{}/api/{function}", self.base))
            .header(header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn call_with_headers(&self, function: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Response {
        let mut req = self.client.post(format!("{}/api/{function}", self.base)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.unwrap()).await
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
