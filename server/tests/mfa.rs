//! Two-factor authentication: people add an authenticator app, then need its code (or a
//! recovery code) to sign in; sensitive changes ask them to confirm it's them; an organization
//! can require two-factor of every member.

mod common;
use common::{Browser, Response, TestApp};
use reqwest::StatusCode;
use std::time::Duration;
use totp_rs::Secret;

const PASSWORD: &str = "correct horse battery";

fn code(secret: &str, offset_steps: i64) -> String {
    common::totp_code(secret, offset_steps)
}

async fn enrol(browser: &Browser) -> (String, Vec<String>) {
    browser.enrol_in_mfa().await
}

async fn log_in(app: &TestApp, email: &str) -> (Browser, Response) {
    let browser = app.browser();
    let r = browser.call("log_in", &[("email", email), ("password", PASSWORD)]).await;
    (browser, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_turning_on_two_factor_signing_in_needs_a_fresh_code_or_a_recovery_code() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_up("ana@example.test").await;
    assert_eq!(laptop.call("my_mfa_status", &[]).await.json()["enabled_since"], serde_json::Value::Null);

    let r = laptop.call("begin_mfa_enrolment", &[]).await;
    let enrolment = r.json();
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    assert!(enrolment["qr_svg"].as_str().unwrap().starts_with("<?xml") || enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let url = enrolment["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Tessera:ana%40example.test") && url.contains(&format!("secret={secret}")), "{url}");

    // A wrong first code doesn't turn anything on.
    let r = laptop.call("confirm_mfa_enrolment", &[("code", "000000")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")));
    assert_eq!(laptop.call("my_mfa_status", &[]).await.json()["enabled_since"], serde_json::Value::Null);

    // Kept as typed: recomputing it later could land in the next 30-second step.
    let enrolment_code = code(&secret, 0);
    let r = laptop.call("confirm_mfa_enrolment", &[("code", &enrolment_code)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let recovery: Vec<String> = r.json().as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(recovery.len(), 10);
    let status = laptop.call("my_mfa_status", &[]).await.json();
    assert!(status["enabled_since"].is_string() && status["recovery_codes_left"] == 10);

    // At rest: the secret is sealed, the recovery codes only hashed.
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM user_totp").fetch_one(&app.inspect).await.unwrap();
    let raw = Secret::Encoded(secret.clone()).to_bytes().unwrap();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()) && !String::from_utf8_lossy(&sealed).contains(&secret));
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(encode(code_hash, 'escape'), '') FROM recovery_codes").fetch_one(&app.inspect).await.unwrap();
    assert!(recovery.iter().all(|c| !dump.contains(c.as_str())));

    // The password alone now only gets as far as the code step.
    let (phone, r) = log_in(&app, "ana@example.test").await;
    assert!(r.location().starts_with("/login/mfa"), "{:?}", r.headers);
    assert_eq!(phone.call("my_session", &[]).await.json(), serde_json::Value::Null, "not signed in before the code");
    let r = phone.call("verify_sign_in_code", &[("code", "123456")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")));
    // The code from enrolment was seen already: it doesn't work twice.
    let r = phone.call("verify_sign_in_code", &[("code", &enrolment_code)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a used code is refused");
    let next = code(&secret, 1);
    let r = phone.call("verify_sign_in_code", &[("code", &next)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert!(phone.call("my_session", &[]).await.json().is_object(), "signed in with the code");

    // The same code on another device, a moment later: refused (a phished code is spent).
    let (tablet, _) = log_in(&app, "ana@example.test").await;
    assert_eq!(tablet.call("verify_sign_in_code", &[("code", &next)]).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A recovery code works once, typed any which way.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    let r = tablet.call("verify_sign_in_code", &[("code", &typed)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(tablet.call("my_mfa_status", &[]).await.json()["recovery_codes_left"], 9);
    let (desktop, _) = log_in(&app, "ana@example.test").await;
    assert_eq!(desktop.call("verify_sign_in_code", &[("code", &recovery[0])]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(desktop.call("my_session", &[]).await.json(), serde_json::Value::Null);

    // Without a password step first, there is nothing to complete.
    let r = app.browser().call("verify_sign_in_code", &[("code", &code(&secret, 1))]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let trail = app.security_events("ana@example.test").await;
    for expected in ["mfa.enabled", "mfa.failed", "mfa.succeeded", "mfa.recovery_code_used"] {
        assert!(trail.iter().any(|e| e == expected), "{expected} in {trail:?}");
    }
    // The person sees the same trail, newest first, with where it came from.
    let activity = laptop.call("my_account_activity", &[]).await.json();
    let shown: Vec<&str> = activity.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(shown.first(), Some(&"mfa.failed"), "the reused recovery code, last: {shown:?}");
    assert!(shown.contains(&"mfa.enabled") && activity[0]["ip"] == "127.0.0.1");
    assert_eq!(app.browser().call("my_account_activity", &[]).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_codes_locks_the_second_step() {
    let app = TestApp::spawn().await;
    // The failures are counted in 15-minute windows; all of them must land in one.
    common::within_one_window(15, 90).await;
    let laptop = app.signed_up("bo@example.test").await;
    let (secret, _) = enrol(&laptop).await;
    let (phone, _) = log_in(&app, "bo@example.test").await;
    for guess in ["111111", "222222", "333333", "444444", "555555"] {
        assert_eq!(phone.call("verify_sign_in_code", &[("code", guess)]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = phone.call("verify_sign_in_code", &[("code", &code(&secret, 1))]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "locked even for the right code: {}", r.body);
    assert_eq!(phone.call("my_session", &[]).await.json(), serde_json::Value::Null);
    assert!(app.security_events("bo@example.test").await.iter().any(|e| e == "mfa.locked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_changes_ask_to_confirm_its_you_after_a_while() {
    let app = TestApp::spawn_with(|c| c.reauth_window = Duration::from_secs(1)).await;
    let browser = app.owner_of("cairo").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let r = browser.call("begin_mfa_enrolment", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("ReauthRequired"), "{}", r.body);
    let r = browser.call("delete_org", &[("slug", "cairo"), ("confirm", "cairo")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "deleting an organization needs it too");

    let r = browser.call("reauthenticate", &[("password", "not my password")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")));
    assert_eq!(browser.call("begin_mfa_enrolment", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.call("reauthenticate", &[]).await.status, StatusCode::UNPROCESSABLE_ENTITY, "nothing given");

    assert_eq!(browser.call("reauthenticate", &[("password", PASSWORD)]).await.status, StatusCode::OK);
    let (secret, _) = enrol(&browser).await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(browser.call("disable_mfa", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.call("regenerate_recovery_codes", &[]).await.status, StatusCode::FORBIDDEN);
    // With two-factor on, the password alone no longer confirms it's you; a code does.
    let r = browser.call("reauthenticate", &[("password", PASSWORD)]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code")));
    assert_eq!(browser.call("reauthenticate", &[("code", &code(&secret, 1))]).await.status, StatusCode::OK);
    let r = browser.call("regenerate_recovery_codes", &[]).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(10), "{}", r.body);
    assert_eq!(browser.call("disable_mfa", &[]).await.status, StatusCode::OK);
    assert_eq!(browser.call("my_mfa_status", &[]).await.json()["enabled_since"], serde_json::Value::Null);
    assert_eq!(app.count("SELECT count(*) FROM recovery_codes").await, 0);

    let trail = app.security_events("owner@cairo.test").await;
    for expected in ["reauth.failed", "reauth.succeeded", "mfa.recovery_codes_regenerated", "mfa.disabled"] {
        assert!(trail.iter().any(|e| e == expected), "{expected} in {trail:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_can_require_two_factor_of_every_member() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("vault").await;
    owner.add_project("vault", "Ledger").await;
    let member = app.signed_up("mo@example.test").await;
    owner.invite_and_accept("vault", "mo@example.test", "member", &member).await;

    // The owner can't require what they don't use themselves (they'd lock themselves out).
    let r = owner.call("set_org_sign_in_policy", &[("slug", "vault"), ("require_mfa", "on"), ("sso_satisfies_mfa", "on")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("require_mfa")));
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE require_mfa").await, 0);

    enrol(&owner).await;
    // A member may not change the rules.
    let r = member.call("set_org_sign_in_policy", &[("slug", "vault"), ("require_mfa", "on")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = owner.call("set_org_sign_in_policy", &[("slug", "vault"), ("require_mfa", "on"), ("sso_satisfies_mfa", "on")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let policy = owner.call("org_sign_in_policy", &[("slug", "vault")]).await.json();
    assert_eq!((policy["require_mfa"].as_bool(), policy["members_without_mfa"].as_i64()), (Some(true), Some(1)));
    let changed: serde_json::Value =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'tenant.sign_in_policy_changed'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(changed["require_mfa"], serde_json::json!({ "old": false, "new": true }));

    // The member is stopped at the door, by API and by page, and told what to do.
    let r = member.call("list_projects", &[("slug", "vault")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error_message().contains("Org vault requires two-factor authentication"), "{}", r.body);
    let page = member.get("/t/vault/projects").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("Two-factor authentication required") && page.body.contains("/account/security?next=/t/vault/projects"));
    // Their own account pages still work, so they can set it up.
    let (secret, recovery) = enrol(&member).await;
    assert_eq!(member.call("list_projects", &[("slug", "vault")]).await.status, StatusCode::OK, "in, right after setting it up");

    // Next time they sign in with password and code.
    let (phone, _) = log_in(&app, "mo@example.test").await;
    assert_eq!(phone.call("list_projects", &[("slug", "vault")]).await.status, StatusCode::UNAUTHORIZED, "half signed in");
    phone.call("verify_sign_in_code", &[("code", &code(&secret, 1))]).await;
    assert_eq!(phone.call("list_projects", &[("slug", "vault")]).await.status, StatusCode::OK);

    // An API sign-in with the code counts as two-factor too.
    let api = reqwest::Client::new();
    let access = app.api_access_token("mo@example.test", PASSWORD, Some(&recovery[0])).await;
    let api_projects = || api.get(format!("{}/api/v1/orgs/vault/projects", app.base)).bearer_auth(&access).send();
    assert_eq!(api_projects().await.unwrap().status(), StatusCode::OK);

    // Turning two-factor off shuts them out again, everywhere they had signed in with it;
    // other organizations don't care.
    let elsewhere = "mo-own";
    let r = member.call("create_org", &[("name", "Mo's own"), ("slug", elsewhere), ("region", ""), ("model", "")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(member.call("disable_mfa", &[]).await.status, StatusCode::OK);
    assert_eq!(member.call("list_projects", &[("slug", "vault")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(member.call("list_projects", &[("slug", elsewhere)]).await.status, StatusCode::OK);
    assert_eq!(phone.call("my_session", &[]).await.json(), serde_json::Value::Null, "the phone's two-factor sign-in ended");
    assert_eq!(api_projects().await.unwrap().status(), StatusCode::FORBIDDEN, "the API token no longer counts as two-factor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_two_factor_on_signs_out_every_other_browser_and_api_sign_in() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_up("ana@example.test").await;
    let (phone, r) = log_in(&app, "ana@example.test").await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", app.base))
        .json(&serde_json::json!({ "email": "ana@example.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: serde_json::Value = r.json().await.unwrap();

    enrol(&laptop).await;
    assert!(laptop.call("my_session", &[]).await.json().is_object(), "the browser that turned it on stays");
    assert_eq!(phone.call("my_session", &[]).await.json(), serde_json::Value::Null, "the other browser was let in on the password alone");
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/refresh", app.base))
        .json(&serde_json::json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "and so was the API sign-in");
}
