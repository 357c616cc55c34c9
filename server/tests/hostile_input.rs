//! Hostile input at every door: each server function (found through Leptos's registry, so a new
//! one is covered without editing this file) and each REST route gets NUL characters, invalid
//! UTF-8, 100 KB strings, wrong types and deep nesting in every field. Nothing may answer with a
//! 5xx, and every refusal carries a sentence a person can act on.

mod common;
use common::{Browser, Response, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;

/// Percent-encodes every byte but ASCII letters and digits, so a test controls the exact bytes.
fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn form(pairs: &[(String, Vec<u8>)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(v))).collect::<Vec<_>>().join("&")
}

/// A value that passes a field's own rules, so only the field under test is hostile.
fn plausible(field: &str) -> String {
    match field {
        "slug" => "fuzz".into(),
        "email" => "someone@fuzz.test".into(),
        "password" => "correct horse battery".into(),
        "name" => "Fuzz".into(),
        "id" | "user_id" | "handle" => uuid::Uuid::new_v4().to_string(),
        "token" => "x".repeat(43),
        "code" => "000000".into(),
        "role" | "default_role" => "member".into(),
        "expires_in_days" => "30".into(),
        "region" => "eu".into(),
        "model" => "pooled".into(),
        "purpose" => "magic".into(),
        "provider" => "test".into(),
        "domain" => "fuzz-example.test".into(),
        "next" => "/".into(),
        _ => String::new(),
    }
}

/// Optional arguments (serde can't report them missing): per server function.
fn optional_fields(function: &str) -> &'static [&'static str] {
    match function {
        "sign_up" => &["next", "invitation"],
        "log_in" | "find_sso" => &["next"],
        "verify_email" => &["password"],
        "create_org" => &["region", "model"],
        "reauthenticate" => &["password", "code"],
        "create_api_key" => &["scopes"],
        "set_org_sign_in_policy" => &["require_mfa", "sso_satisfies_mfa"],
        "save_sso_mapping" => &["jit_provisioning", "allow_idp_initiated", "require_sso"],
        "accept_invitation" | "decline_invitation" => &["token", "id"],
        "audit_log" => &["actor", "action", "target_type", "target", "from", "to", "ip", "cursor"],
        _ => &[],
    }
}

/// Server functions that would sign the fuzzing browser in or out as someone else: they get a
/// fresh browser each time.
const ANONYMOUS: &[&str] = &[
    "sign_up",
    "log_in",
    "log_out",
    "request_sign_in_link",
    "request_password_reset",
    "sign_in_with_link",
    "reset_password",
    "verify_email",
    "disown_registration",
];

/// The hostile values every field gets, with whether a refusal (4xx) is required.
fn hostile_values() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        ("a NUL character", b"fuzz\0me".to_vec(), true),
        ("invalid UTF-8", vec![b'f', 0xFF, 0xFE, b'z'], true),
        ("100 KB of text", "x".repeat(100_000).into_bytes(), false),
        ("right-to-left override and emoji", "\u{202E}fuzz\u{1F600}".as_bytes().to_vec(), false),
    ]
}

async fn post_raw(browser: &Browser, path: &str, body: String) -> Response {
    browser.post_raw(path, "application/x-www-form-urlencoded", &body).await
}

/// Never a 5xx; a 4xx says something a person can read.
fn assert_humane(r: &Response, what: &str) {
    assert!(!r.status.is_server_error(), "{what}: {} {}", r.status, r.body);
    if r.status.is_client_error() {
        let message = r.error_message();
        assert!(message.trim().len() >= 10 && !message.trim_start().starts_with('{'), "{what}: {} with no readable message: {:?}", r.status, r.body);
    }
}

/// The required fields of a server function, as serde reports them missing one by one.
async fn required_fields(browser: &Browser, function: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for _ in 0..20 {
        let pairs: Vec<(String, Vec<u8>)> = fields.iter().map(|f| (f.clone(), plausible(f).into_bytes())).collect();
        let r = post_raw(browser, &format!("/api/{function}"), form(&pairs)).await;
        let message = r.error_message();
        let Some(rest) = message.split("missing field `").nth(1) else { break };
        let field = rest.split('`').next().unwrap().to_string();
        assert!(!fields.contains(&field), "{function}: {field} reported missing twice: {message}");
        fields.push(field);
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_answers_hostile_fields_with_a_clear_4xx_and_never_a_5xx() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("fuzz").await;
    let mut functions: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/api/").to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(functions.len() >= 50, "the registry lists the server functions: {functions:?}");
    // Signing out last keeps the owner's session for the rest.
    functions.sort_by_key(|f| f == "log_out" || f == "sign_out_other_sessions");
    let mut requests = 0;
    for function in &functions {
        let fresh = ANONYMOUS.contains(&function.as_str());
        let browser = if fresh { app.browser() } else { owner.clone() };
        let path = format!("/api/{function}");
        let mut fields = required_fields(&browser, function).await;
        fields.extend(optional_fields(function).iter().map(|f| f.to_string()));
        for field in &fields {
            for (what, value, must_refuse) in hostile_values() {
                let browser = if fresh { app.browser() } else { owner.clone() };
                let pairs: Vec<(String, Vec<u8>)> =
                    fields.iter().map(|f| (f.clone(), if f == field { value.clone() } else { plausible(f).into_bytes() })).collect();
                let r = post_raw(&browser, &path, form(&pairs)).await;
                requests += 1;
                let case = format!("{function}({field} = {what})");
                assert_humane(&r, &case);
                if must_refuse {
                    assert!(r.status.is_client_error(), "{case} must be refused: {} {}", r.status, r.body);
                }
            }
            // Wrong shapes: the field twice, as a list, and nested deeper than anything takes.
            let others: Vec<(String, Vec<u8>)> = fields.iter().filter(|f| *f != field).map(|f| (f.clone(), plausible(f).into_bytes())).collect();
            let base = form(&others);
            for (what, extra) in [
                ("given twice", format!("{field}=a&{field}=b")),
                ("a list", format!("{field}%5B%5D=a&{field}%5B%5D=b")),
                ("nested 12 deep", format!("{field}{}=x", "%5Ba%5D".repeat(12))),
            ] {
                let body = if base.is_empty() { extra } else { format!("{base}&{extra}") };
                let r = post_raw(&browser, &path, body).await;
                requests += 1;
                assert_humane(&r, &format!("{function}({field} {what})"));
            }
        }
        // A body that isn't a form at all.
        let r = browser.post_raw(&path, "application/json", "{\"slug\": [[[[[[[[[[1]]]]]]]]]]}").await;
        assert_humane(&r, &format!("{function} with a JSON body"));
        // Server functions read any body as a form, whatever its Content-Type says: a NUL sent
        // as text/plain is refused all the same.
        if let Some(field) = fields.first() {
            let r = browser.post_raw(&path, "text/plain", &format!("{field}=a%00b")).await;
            assert!(r.status.is_client_error(), "{function} with a NUL in a text/plain body: {} {}", r.status, r.body);
            assert_humane(&r, &format!("{function} with a text/plain body"));
        }
    }
    assert!(requests > 500, "{requests} hostile requests");
    // The owner's organization is untouched by all of it.
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE status = 'active'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_sso_routes_treat_an_unreadable_organization_name_as_not_found() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("fuzz").await;
    for path in ["/t/%00/projects", "/t/%00", "/t/fu%00zz/members", "/t/%FF%FE/projects", "/t/a%0Ab/settings"] {
        let r = owner.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    for path in ["/sso/%00/metadata", "/sso/%FF/metadata", "/sso/fu%20zz/metadata"] {
        let r = owner.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert_humane(&r, path);
    }
    // Starting SSO for one sends the browser back to sign in, with the reason kept for the page.
    for path in ["/sso/fu%00zz/login", "/sso/%FF/login"] {
        let r = owner.get(path).await;
        assert_eq!(r.headers.get("location").and_then(|l| l.to_str().ok()), Some("/login?problem=1"), "{path}: {} {}", r.status, r.body);
        let problem = owner.call("take_sign_in_problem", &[]).await.json();
        assert!(problem.as_str().is_some_and(|p| p.contains("single sign-on")), "{path}: {problem}");
    }
    let r = owner.post_form("/sso/%00/acs", &[("SAMLResponse", "x")]).await;
    assert_humane(&r, "ACS of an unreadable organization");
    // A query string with a NUL or invalid UTF-8 is refused as a whole, with a reason.
    for path in ["/login?next=%00", "/invite?token=%FF"] {
        let r = owner.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(r.body.contains("NUL") || r.body.contains("UTF-8"), "{path}: {}", r.body);
    }
}

struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Rest {
    async fn send(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Vec<u8>>) -> Response {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        Response { status, headers, body: r.text().await.unwrap_or_default() }
    }
}

/// A REST error's message (`{"error": {"message": …}}`).
fn rest_message(r: &Response) -> String {
    r.json()["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_answers_hostile_bodies_and_paths_with_a_clear_4xx() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("fuzz").await;
    let r = owner
        .call(
            "create_api_key",
            &[
                ("slug", "fuzz"),
                ("name", "Fuzzer"),
                ("scopes[]", "projects:read"),
                ("scopes[]", "projects:write"),
                ("scopes[]", "members:read"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_string();
    let rest = Rest { base: app.base.clone(), client: reqwest::Client::new() };
    let humane = |r: &Response, what: &str| {
        assert!(!r.status.is_server_error(), "{what}: {} {}", r.status, r.body);
        if r.status.is_client_error() {
            assert!(rest_message(r).len() >= 10, "{what}: {} without a message: {}", r.status, r.body);
        }
    };

    // Each JSON route and its fields.
    let routes: [(&str, &[&str]); 4] = [
        ("/api/v1/auth/token", &["email", "password", "code"]),
        ("/api/v1/auth/refresh", &["refresh_token"]),
        ("/api/v1/auth/logout", &["refresh_token"]),
        ("/api/v1/orgs/fuzz/projects", &["name", "description"]),
    ];
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    for (path, fields) in routes {
        for field in fields {
            let mut hostile: Vec<(&str, Vec<u8>, bool)> = vec![
                ("a NUL character", json!("fuzz\u{0}me").to_string().into_bytes(), true),
                ("100 KB of text", json!("x".repeat(100_000)).to_string().into_bytes(), false),
                ("a number", b"42".to_vec(), true),
                ("an object", b"{\"a\": 1}".to_vec(), true),
                ("a list", b"[\"a\"]".to_vec(), true),
                ("null", b"null".to_vec(), false),
                ("nested 5,000 deep", deep.clone().into_bytes(), true),
            ];
            if *field == "code" {
                // `code` is optional: null is its absence. A wrong type is still refused.
                hostile.retain(|(what, _, _)| *what != "null");
            }
            for (what, value, must_refuse) in hostile {
                let mut body = b"{".to_vec();
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend(format!("\"{f}\":").into_bytes());
                    if f == field {
                        body.extend(&value);
                    } else {
                        body.extend(json!(plausible(f)).to_string().into_bytes());
                    }
                }
                body.push(b'}');
                let r = rest.send(reqwest::Method::POST, path, &key, Some(body)).await;
                let case = format!("POST {path} ({field} = {what})");
                humane(&r, &case);
                if must_refuse {
                    assert!(r.status.is_client_error(), "{case} must be refused: {} {}", r.status, r.body);
                }
            }
        }
        for (what, body) in [
            ("invalid UTF-8", vec![b'{', b'"', b'n', b'a', b'm', b'e', b'"', b':', b'"', 0xFF, b'"', b'}']),
            ("a bare NUL", vec![0]),
            ("not JSON", b"name=x".to_vec()),
            ("a deep body", deep.clone().into_bytes()),
        ] {
            let r = rest.send(reqwest::Method::POST, path, &key, Some(body)).await;
            humane(&r, &format!("POST {path} with {what}"));
            assert!(r.status.is_client_error(), "POST {path} with {what}: {}", r.status);
        }
    }

    // Paths: an organization or id that can't be one is simply not found.
    for path in [
        "/api/v1/orgs/%00/projects",
        "/api/v1/orgs/fu%00zz/members",
        "/api/v1/orgs/%FF/projects",
        "/api/v1/orgs/fuzz/projects/%00",
        "/api/v1/orgs/fuzz/projects/not-an-id",
    ] {
        let r = rest.send(reqwest::Method::GET, path, &key, None).await;
        humane(&r, path);
        assert!(r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST, "{path}: {}", r.status);
    }
    let r = rest.send(reqwest::Method::POST, "/api/v1/orgs/%00/projects", &key, Some(json!({"name": "x"}).to_string().into_bytes())).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // A method a route doesn't take says so.
    let r = rest.send(reqwest::Method::DELETE, "/api/v1/auth/token", &key, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(rest_message(&r).contains("DELETE"), "{}", r.body);
    let r = owner.post_raw("/healthz", "text/plain", "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body.contains("POST"), "{}", r.body);

    // Nothing hostile was stored.
    let mut tenant = app.inspect_tenant("fuzz").await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(&mut tenant).await.unwrap();
    let long: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE length(name) > 100 OR length(description) > 2000")
        .fetch_one(&mut tenant)
        .await
        .unwrap();
    assert_eq!(long, 0, "of {stored} projects, none holds an over-long field");
}
