//! Programs use the REST API with a person's tokens (a short-lived access token and a refresh
//! token that rotates on every use) or with an organization's API key.

mod common;
use common::TestApp;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

struct Api {
    base: String,
    client: Client,
}

struct Reply {
    status: StatusCode,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Api {
    fn new(app: &TestApp) -> Api {
        Api { base: app.base.clone(), client: Client::builder().user_agent("api-client/2.0").build().unwrap() }
    }
    async fn send(&self, method: reqwest::Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        let body = r.json().await.unwrap_or(Value::Null);
        Reply { status, body, headers }
    }
    async fn get(&self, path: &str, bearer: &str) -> Reply {
        self.send(reqwest::Method::GET, path, Some(bearer), None).await
    }
    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, bearer, Some(body)).await
    }
    async fn sign_in(&self, email: &str) -> (String, String) {
        let r = self.post("/api/v1/auth/token", None, json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (r.body["access_token"].as_str().unwrap().into(), r.body["refresh_token"].as_str().unwrap().into())
    }
    async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/api/v1/auth/refresh", None, json!({ "refresh_token": refresh_token })).await
    }
}

fn message(r: &Reply) -> String {
    r.body["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_signs_in_works_in_its_organization_refreshes_and_signs_out() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("apiland").await;
    owner.add_project("apiland", "Launchpad").await;
    app.owner_of("elsewhere").await;
    let api = Api::new(&app);

    let r = api.post("/api/v1/auth/token", None, json!({ "email": "owner@apiland.test", "password": "wrong password" })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (access, refresh) = api.sign_in("owner@apiland.test").await;
    let pair = api.post("/api/v1/auth/token", None, json!({ "email": "owner@apiland.test", "password": PASSWORD })).await.body;
    assert_eq!((pair["token_type"].as_str(), pair["expires_in"].as_u64()), (Some("Bearer"), Some(900)));

    assert_eq!(api.get("/api/v1/me", &access).await.body["email"], "owner@apiland.test");
    let projects = api.get("/api/v1/orgs/apiland/projects", &access).await;
    assert_eq!(projects.body.as_array().unwrap()[0]["name"], "Launchpad");
    let created = api.post("/api/v1/orgs/apiland/projects", Some(&access), json!({ "name": "From the API" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/api/v1/orgs/apiland/projects/{id}"), &access).await.body["name"], "From the API");
    let invalid = api.post("/api/v1/orgs/apiland/projects", Some(&access), json!({ "name": "" })).await;
    assert_eq!((invalid.status, invalid.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")));
    // Another organization looks like nothing at all.
    assert_eq!(api.get("/api/v1/orgs/elsewhere/projects", &access).await.status, StatusCode::NOT_FOUND);

    // Refreshing rotates: a new refresh token each time, and the new access token works.
    let r = api.refresh(&refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (access2, refresh2) = (r.body["access_token"].as_str().unwrap().to_string(), r.body["refresh_token"].as_str().unwrap().to_string());
    assert_ne!(refresh2, refresh);
    assert_eq!(api.get("/api/v1/me", &access2).await.status, StatusCode::OK);
    // Stored only as a SHA-256.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))")
        .bind(&refresh2)
        .fetch_one(&app.inspect)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Signing out ends the family: its access tokens and refresh tokens stop working at once.
    let r = api.post("/api/v1/auth/logout", None, json!({ "refresh_token": refresh2 })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for token in [&access, &access2] {
        let r = api.get("/api/v1/orgs/apiland/projects", token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(message(&r).contains("This sign-in has ended"), "{}", r.body);
    }
    assert_eq!(api.refresh(&refresh2).await.status, StatusCode::UNAUTHORIZED);
    // The browser session is a different sign-in and carries on.
    assert_eq!(owner.call("list_projects", &[("slug", "apiland")]).await.status, StatusCode::OK);

    let trail = app.security_events("owner@apiland.test").await;
    assert!(trail.iter().filter(|e| *e == "token.issued").count() == 2 && trail.iter().any(|e| e == "token.revoked"), "{trail:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_used_twice_revokes_its_whole_family_but_racing_refreshes_are_fine() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_overlap = Duration::from_secs(1)).await;
    app.owner_of("rotor").await;
    let api = Api::new(&app);
    let (_, first) = api.sign_in("owner@rotor.test").await;
    let (other_access, _) = api.sign_in("owner@rotor.test").await;

    let second = api.refresh(&first).await.body["refresh_token"].as_str().unwrap().to_string();
    // The same client refreshing twice at once (a retry, two tabs): within the overlap it works.
    let racing = api.refresh(&first).await;
    assert_eq!(racing.status, StatusCode::OK, "{}", racing.body);
    let racing_access = racing.body["access_token"].as_str().unwrap().to_string();

    // Later, the old token shows up again: someone has a copy. Everything in the family ends.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let replay = api.refresh(&first).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(message(&replay).contains("already used"), "{}", replay.body);
    assert_eq!(api.refresh(&second).await.status, StatusCode::UNAUTHORIZED, "the legitimate successor is revoked too");
    assert_eq!(api.get("/api/v1/me", &racing_access).await.status, StatusCode::UNAUTHORIZED);
    let reason: String =
        sqlx::query_scalar("SELECT revoked_reason FROM token_families WHERE revoked_at IS NOT NULL").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(reason, "reuse");
    assert!(app.security_events("owner@rotor.test").await.iter().any(|e| e == "token.refresh_reused"));
    // A separate sign-in (another device) is untouched.
    assert_eq!(api.get("/api/v1/me", &other_access).await.status, StatusCode::OK);

    // The overlap forgives one racing refresh, not a copy used again and again inside it.
    let (_, start) = api.sign_in("owner@rotor.test").await;
    assert_eq!(api.refresh(&start).await.status, StatusCode::OK);
    assert_eq!(api.refresh(&start).await.status, StatusCode::OK, "one retry");
    assert_eq!(api.refresh(&start).await.status, StatusCode::UNAUTHORIZED, "a third use is a copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_missing_tokens_are_refused_with_a_reason() {
    let app = TestApp::spawn_with(|c| c.access_token_lifetime = Duration::from_secs(1)).await;
    let other = TestApp::spawn().await;
    app.owner_of("clock").await;
    other.owner_of("clock").await;
    let api = Api::new(&app);
    let (access, refresh) = api.sign_in("owner@clock.test").await;
    let (foreign, _) = Api::new(&other).sign_in("owner@clock.test").await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = api.get("/api/v1/me", &access).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(message(&r).contains("expired"), "{}", r.body);
    let fresh = api.refresh(&refresh).await.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(api.get("/api/v1/me", &fresh).await.status, StatusCode::OK);

    let mut tampered = fresh.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(api.get("/api/v1/me", &tampered).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/api/v1/me", &foreign).await.status, StatusCode::UNAUTHORIZED, "signed by another deployment's key");
    assert_eq!(api.get("/api/v1/me", "not-a-token").await.status, StatusCode::UNAUTHORIZED);
    let none = api.send(reqwest::Method::GET, "/api/v1/orgs/clock/projects", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.headers.contains_key("www-authenticate") && message(&none).contains("Authorization: Bearer"));
    // Browser cookies don't count here: the API can't be driven from another site.
    let browser = app.owner_of("cookies").await;
    assert_eq!(browser.get("/api/v1/orgs/cookies/projects").await.status, StatusCode::UNAUTHORIZED);

    // Malformed bodies and unknown paths get JSON errors, not a 500.
    let r = app.browser().post_raw("/api/v1/auth/token", "application/json", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("JSON"));
    assert_eq!(api.get("/api/v1/nothing/here", &fresh).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_with_two_factor_need_a_code_for_tokens_and_organizations_rules_apply() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("strict").await;
    let (secret, _) = owner.enrol_in_mfa().await;
    let r = owner.call("set_org_sign_in_policy", &[("slug", "strict"), ("require_mfa", "on")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let plain = app.signed_up("plain@example.test").await;
    owner.invite_and_accept("strict", "plain@example.test", "member", &plain).await;
    let api = Api::new(&app);

    let r = api.post("/api/v1/auth/token", None, json!({ "email": "owner@strict.test", "password": PASSWORD })).await;
    assert_eq!((r.status, r.body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")));
    let r = api
        .post("/api/v1/auth/token", None, json!({ "email": "owner@strict.test", "password": PASSWORD, "code": common::totp_code(&secret, 1) }))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    assert_eq!(api.get("/api/v1/orgs/strict/projects", access).await.status, StatusCode::OK);

    // A member without two-factor gets a token, but the organization turns it away.
    let (plain, _) = api.sign_in("plain@example.test").await;
    let r = api.get("/api/v1/orgs/strict/projects", &plain).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(message(&r).contains("requires two-factor authentication"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_api_keys_are_shown_once_scoped_audited_expire_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("keyed").await;
    owner.add_project("keyed", "Widgets").await;
    app.owner_of("neighbour").await;
    let member = app.signed_up("mem@example.test").await;
    owner.invite_and_accept("keyed", "mem@example.test", "member", &member).await;
    let api = Api::new(&app);

    // Only admins make keys, and a key needs a name and at least one scope.
    let r = member.call("create_api_key", &[("slug", "keyed"), ("name", "x"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = owner.call("create_api_key", &[("slug", "keyed"), ("name", "CI"), ("expires_in_days", "30")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("scopes")));
    let r = owner.call("create_api_key", &[("slug", "keyed"), ("name", " "), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    assert_eq!(r.error_field().as_deref(), Some("name"));
    let r = owner.call("create_api_key", &[("slug", "keyed"), ("name", "CI"), ("scopes[]", "projects:read"), ("expires_in_days", "9999")]).await;
    assert_eq!(r.error_field().as_deref(), Some("expires_in_days"));
    assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 0, "nothing was created by the refused attempts");

    let r = owner.call("create_api_key", &[("slug", "keyed"), ("name", "Dashboard"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let reader = r.json()["key"].as_str().unwrap().to_string();
    let reader_prefix = r.json()["summary"]["prefix"].as_str().unwrap().to_string();
    assert!(reader.starts_with(&format!("{reader_prefix}_")) && reader.len() > 40);
    let listed = owner.call("list_api_keys", &[("slug", "keyed")]).await;
    assert!(listed.body.contains(&reader_prefix) && !listed.body.contains(&reader), "the list never shows the key");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))")
        .bind(&reader)
        .fetch_one(&app.inspect)
        .await
        .unwrap();
    assert_eq!(stored, 1, "stored only as a SHA-256");
    assert_eq!(member.call("list_api_keys", &[("slug", "keyed")]).await.status, StatusCode::FORBIDDEN);

    // The key reads, but its scopes stop it writing or listing members.
    assert_eq!(api.get("/api/v1/orgs/keyed/projects", &reader).await.body[0]["name"], "Widgets");
    let r = api.post("/api/v1/orgs/keyed/projects", Some(&reader), json!({ "name": "Nope" })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(message(&r).contains("projects:write"), "{}", r.body);
    assert_eq!(api.get("/api/v1/orgs/keyed/members", &reader).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api.get("/api/v1/orgs/neighbour/projects", &reader).await.status, StatusCode::NOT_FOUND, "another organization");
    assert_eq!(api.get("/api/v1/me", &reader).await.status, StatusCode::BAD_REQUEST);
    let used: bool = sqlx::query_scalar("SELECT last_used_at IS NOT NULL FROM api_keys").fetch_one(&app.inspect).await.unwrap();
    assert!(used);

    // A writer key creates, and the audit trail names the key.
    let r = owner
        .call(
            "create_api_key",
            &[("slug", "keyed"), ("name", "Importer"), ("scopes[]", "projects:write"), ("scopes[]", "projects:read"), ("expires_in_days", "never")],
        )
        .await;
    let writer = r.json()["key"].as_str().unwrap().to_string();
    let writer_id = r.json()["summary"]["id"].as_str().unwrap().to_string();
    let r = api.post("/api/v1/orgs/keyed/projects", Some(&writer), json!({ "name": "Imported", "description": "by a script" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut tenant = app.inspect_tenant("keyed").await;
    let actor_key: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT actor_api_key_id FROM audit_log WHERE action = 'project.created' ORDER BY occurred_at DESC LIMIT 1")
            .fetch_one(&mut tenant)
            .await
            .unwrap();
    assert_eq!(actor_key.map(|k| k.to_string()), Some(writer_id.clone()));

    // Revoked and expired keys are refused and say why; an unknown key too.
    assert_eq!(owner.call("revoke_api_key", &[("slug", "keyed"), ("id", &writer_id)]).await.status, StatusCode::OK);
    let r = api.get("/api/v1/orgs/keyed/projects", &writer).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(message(&r).contains("revoked"), "{}", r.body);
    assert_eq!(owner.call("revoke_api_key", &[("slug", "keyed"), ("id", &writer_id)]).await.status, StatusCode::NOT_FOUND);
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE prefix = $1")
        .bind(reader_prefix.trim_start_matches("tsk_"))
        .execute(&app.inspect)
        .await
        .unwrap();
    let r = api.get("/api/v1/orgs/keyed/projects", &reader).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(message(&r).contains("expired"), "{}", r.body);
    assert_eq!(api.get("/api/v1/orgs/keyed/projects", "tsk_AAAAAAAA_notarealkeyatall0000000000000").await.status, StatusCode::UNAUTHORIZED);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'api_key.%' ORDER BY occurred_at").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(actions, ["api_key.created", "api_key.created", "api_key.revoked"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_by_someone_who_leaves_the_organization_stop_working() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("keyed").await;
    owner.add_project("keyed", "Widgets").await;
    let admin = app.signed_up("ada@example.test").await;
    owner.invite_and_accept("keyed", "ada@example.test", "admin", &admin).await;
    let r =
        admin.call("create_api_key", &[("slug", "keyed"), ("name", "Ada's script"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    let owners = owner.call("create_api_key", &[("slug", "keyed"), ("name", "CI"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    let owners_key = owners.json()["key"].as_str().unwrap().to_string();
    let api = Api::new(&app);
    assert_eq!(api.get("/api/v1/orgs/keyed/projects", &key).await.status, StatusCode::OK);

    let ada = app.user_id("ada@example.test").await;
    assert_eq!(owner.call("remove_member", &[("slug", "keyed"), ("user_id", &ada)]).await.status, StatusCode::OK);
    let r = api.get("/api/v1/orgs/keyed/projects", &key).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(message(&r).contains("revoked"), "{}", r.body);
    assert_eq!(api.get("/api/v1/orgs/keyed/projects", &owners_key).await.status, StatusCode::OK, "other keys are untouched");
    let changes: Value =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'membership.removed'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(changes["api_keys"], json!({ "old": 1, "new": 0 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_never_does_more_than_its_creator_still_may() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("keyed").await;
    let admin = app.signed_up("adm@example.test").await;
    owner.invite_and_accept("keyed", "adm@example.test", "admin", &admin).await;
    let r = admin
        .call(
            "create_api_key",
            &[("slug", "keyed"), ("name", "Importer"), ("scopes[]", "projects:write"), ("scopes[]", "projects:read"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_string();
    let api = Api::new(&app);
    assert_eq!(api.post("/api/v1/orgs/keyed/projects", Some(&key), json!({ "name": "Before" })).await.status, StatusCode::CREATED);

    // Demoted to Viewer: the key still reads, but no longer writes.
    let admin_id = app.user_id("adm@example.test").await;
    let r = owner.call("change_role", &[("slug", "keyed"), ("user_id", &admin_id), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(api.get("/api/v1/orgs/keyed/projects", &key).await.status, StatusCode::OK);
    let r = api.post("/api/v1/orgs/keyed/projects", Some(&key), json!({ "name": "After" })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(message(&r).contains("who is a Viewer"), "{}", r.body);
    let mut tenant = app.inspect_tenant("keyed").await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE name = 'After'").fetch_one(&mut tenant).await.unwrap();
    assert_eq!(after, 0);
}
