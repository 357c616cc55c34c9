//! "Continue with <provider>": OpenID Connect sign-in against a real provider (the npm
//! `oidc-provider` stand-in started by the test command), with PKCE, state and nonce.

mod common;
use common::{IdpLogin, Response, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

fn location(r: &Response) -> String {
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn verified<'a>(email: &'a str, name: &'a str) -> IdpLogin<'a> {
    IdpLogin { email, name, email_verified: true, sub: None, secondary_email: None }
}

async fn events(app: &TestApp, event: &str) -> i64 {
    app.count(&format!("SELECT count(*) FROM security_events WHERE event = '{event}'")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_person_signs_up_with_their_identity_provider_and_comes_back_as_the_same_account() {
    let app = TestApp::spawn().await;
    let providers = app.browser().call("sign_in_providers", &[]).await.json();
    assert_eq!(providers, serde_json::json!([{ "id": "test", "name": "Test IdP" }, { "id": "github", "name": "GitHub" }]));

    let browser = app.browser();
    let r = browser.through_idp("/auth/oidc/test/start?next=/orgs/new", &verified("Ria@Example.test", "Ria Rao")).await;
    assert_eq!(location(&r), "/orgs/new", "back where they were going: {} {}", r.status, r.body);
    let me = browser.call("my_session", &[]).await.json();
    assert_eq!((me["user"]["email"].as_str(), me["user"]["display_name"].as_str()), (Some("ria@example.test"), Some("Ria Rao")));
    assert_eq!(me["user"]["email_verified"], true, "the provider vouched for the address");
    let password: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(password, "!unusable", "no password was made up for them");

    // Next time: the same account, found by the provider's subject id.
    let again = app.browser();
    again.through_idp("/auth/oidc/test/start", &verified("ria@example.test", "Ria")).await;
    assert_eq!(again.call("my_session", &[]).await.json()["user"]["email"], "ria@example.test");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let linked = again.call("my_identities", &[]).await.json();
    assert_eq!((linked[0]["provider_name"].as_str(), linked[0]["email"].as_str()), (Some("Test IdP"), Some("ria@example.test")));
    assert_eq!(events(&app, "oidc.signed_in").await, 2);

    // Through the provider from a browser the account hasn't used: its owner hears of it (and
    // only then: the sign-up and the sign-in from the same browser told nobody).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    let firefox = app.browser_with_agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
    firefox.through_idp("/auth/oidc/test/start", &verified("ria@example.test", "Ria")).await;
    let started = std::time::Instant::now();
    while app.count("SELECT count(*) FROM notifications WHERE kind = 'new_sign_in'").await != 1 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "no new-sign-in notification");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body: String = sqlx::query_scalar("SELECT body FROM notifications").fetch_one(&app.inspect).await.unwrap();
    assert!(body.contains("Firefox on Linux"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_linked_only_through_an_address_the_provider_has_verified() {
    let app = TestApp::spawn().await;
    app.signed_up("sam@example.test").await;

    // Unverified at the provider: no way into the existing account (nor a new one).
    let stranger = app.browser();
    let r = stranger
        .through_idp(
            "/auth/oidc/test/start",
            &IdpLogin { email: "sam@example.test", name: "Not Sam", email_verified: false, sub: None, secondary_email: None },
        )
        .await;
    assert_eq!(location(&r), "/login?problem=1");
    assert_eq!(stranger.call("my_session", &[]).await.json(), Value::Null);
    let problem = stranger.call("take_sign_in_problem", &[]).await.json();
    assert!(problem.as_str().unwrap().contains("isn't verified"), "{problem}");
    assert_eq!(stranger.call("take_sign_in_problem", &[]).await.json(), Value::Null, "shown once");
    assert_eq!(app.count("SELECT count(*) FROM user_identities").await, 0);
    assert_eq!(events(&app, "oidc.refused").await, 1);

    // Verified: linked to Sam's account, which keeps its password.
    let sam = app.browser();
    sam.through_idp("/auth/oidc/test/start", &verified("sam@example.test", "Sam")).await;
    assert_eq!(sam.call("my_session", &[]).await.json()["user"]["email"], "sam@example.test");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let r = app.browser().call("log_in", &[("email", "sam@example.test"), ("password", "correct horse battery")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "the password still works");
    assert_eq!(events(&app, "oidc.linked").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_registered_your_address_first_is_shut_out_when_you_arrive_verified() {
    let app = TestApp::spawn().await;
    // The squatter registers the address; unconfirmed, it signs in nowhere: not in a browser,
    // not for API tokens (the same answer as a wrong password).
    app.registered("vic@example.test", "squatters password").await;
    let r = app.browser().call("log_in", &[("email", "vic@example.test"), ("password", "squatters password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", app.base))
        .json(&serde_json::json!({ "email": "vic@example.test", "password": "squatters password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "no API tokens before the address is confirmed");
    // A session from before that rule can't plant a second factor or a connected account on
    // an unconfirmed address either.
    let squatter = app.signed_in_unconfirmed("vic-2@example.test").await;
    assert_eq!(squatter.call("begin_mfa_enrolment", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(squatter.call("connect_identity", &[("provider", "test")]).await.status, StatusCode::FORBIDDEN);

    let victim = app.browser();
    victim.through_idp("/auth/oidc/test/start", &verified("vic@example.test", "Vic")).await;
    assert_eq!(victim.call("my_session", &[]).await.json()["user"]["email"], "vic@example.test");
    let r = app.browser().call("log_in", &[("email", "vic@example.test"), ("password", "squatters password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the squatter's password doesn't open the now confirmed account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_refuses_forged_state_replays_and_unknown_providers() {
    let app = TestApp::spawn().await;
    // A callback this browser never started (a login CSRF attempt).
    let browser = app.browser();
    let r = browser.get("/auth/oidc/test/callback?code=abc&state=xyz").await;
    assert_eq!(location(&r), "/login?problem=1");
    assert!(browser.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("didn't start in this browser"));

    // Started here, but the state that comes back is not ours.
    let r = browser.get("/auth/oidc/test/start").await;
    assert!(location(&r).contains("code_challenge_method=S256") && location(&r).contains("nonce="), "PKCE and nonce are sent");
    let r = browser.get("/auth/oidc/test/callback?code=abc&state=forged").await;
    assert_eq!(location(&r), "/login?problem=1");
    assert!(browser.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("Please start again"));
    assert_eq!(browser.call("my_session", &[]).await.json(), Value::Null);

    // The provider reports a cancelled sign-in.
    browser.get("/auth/oidc/test/start").await;
    let r = browser.get("/auth/oidc/test/callback?error=access_denied&state=whatever").await;
    assert_eq!(location(&r), "/login?problem=1");
    assert!(browser.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("cancelled"));

    // A real callback URL works once, in the browser that started it, and never again.
    let first = app.browser();
    let callback = first.idp_callback_url("/auth/oidc/test/start", &verified("rae@example.test", "Rae")).await;
    let elsewhere = app.browser();
    let r = elsewhere.get(&callback).await;
    assert_eq!(location(&r), "/login?problem=1", "a code smuggled into another browser signs nobody in");
    assert_eq!(elsewhere.call("my_session", &[]).await.json(), Value::Null);
    let r = first.get(&callback).await;
    assert_eq!(location(&r), "/");
    assert_eq!(first.call("my_session", &[]).await.json()["user"]["email"], "rae@example.test");
    let r = first.get(&callback).await;
    assert_eq!(location(&r), "/login?problem=1", "the pending sign-in was spent");

    let r = app.browser().get("/auth/oidc/nope/start").await;
    assert_eq!(location(&r), "/login?problem=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_person_connects_and_disconnects_an_outside_account() {
    let app = TestApp::spawn_with(|c| c.reauth_window = std::time::Duration::from_secs(1)).await;
    let kai = app.signed_up("kai@example.test").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(kai.call("connect_identity", &[("provider", "test")]).await.status, StatusCode::FORBIDDEN, "confirm it's you first");
    assert_eq!(kai.call("reauthenticate", &[("password", "correct horse battery")]).await.status, StatusCode::OK);
    let r = kai.call("connect_identity", &[("provider", "test")]).await;
    let start = r.json().as_str().unwrap().to_string();
    // Any address will do here: they are signed in already.
    let r = kai.through_idp(&start, &verified("kai.personal@example.test", "Kai")).await;
    assert_eq!(location(&r), "/account/security?connected=1");
    let linked = kai.call("my_identities", &[]).await.json();
    assert_eq!(linked[0]["email"], "kai.personal@example.test");

    // Now that account signs in as Kai.
    let phone = app.browser();
    phone.through_idp("/auth/oidc/test/start", &verified("kai.personal@example.test", "Kai")).await;
    assert_eq!(phone.call("my_session", &[]).await.json()["user"]["email"], "kai@example.test");

    // Someone else can't connect the same outside account.
    let lee = app.signed_up("lee@example.test").await;
    let start = lee.call("connect_identity", &[("provider", "test")]).await.json().as_str().unwrap().to_string();
    let r = lee.through_idp(&start, &verified("kai.personal@example.test", "Kai")).await;
    assert_eq!(location(&r), "/account/security?problem=1");
    assert!(lee.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("already connected to another"));

    // Without the armed intent, the start is a plain sign-in (no linking by URL alone).
    let r = lee
        .through_idp(
            "/auth/oidc/test/start",
            &IdpLogin { email: "lee.other@example.test", name: "Lee", email_verified: true, sub: Some("lee-other"), secondary_email: None },
        )
        .await;
    assert!(r.status.is_redirection());
    assert_eq!(app.count("SELECT count(*) FROM user_identities ui JOIN users u ON u.id = ui.user_id WHERE u.email = 'lee@example.test'").await, 0);

    // Disconnecting (after confirming again) stops it signing in as Kai.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let id = linked[0]["id"].as_str().unwrap().to_string();
    assert_eq!(kai.call("disconnect_identity", &[("id", &id)]).await.status, StatusCode::FORBIDDEN);
    kai.call("reauthenticate", &[("password", "correct horse battery")]).await;
    assert_eq!(kai.call("disconnect_identity", &[("id", &id)]).await.status, StatusCode::OK);
    assert_eq!(kai.call("my_identities", &[]).await.json(), serde_json::json!([]));
    assert_eq!(events(&app, "oidc.unlinked").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_still_applies_after_signing_in_with_a_provider() {
    let app = TestApp::spawn().await;
    let jo = app.signed_up("jo@example.test").await;
    let (secret, _) = jo.enrol_in_mfa().await;
    let phone = app.browser();
    let r = phone.through_idp("/auth/oidc/test/start?next=/orgs/new", &verified("jo@example.test", "Jo")).await;
    assert!(location(&r).starts_with("/login/mfa"), "{}", location(&r));
    assert_eq!(phone.call("my_session", &[]).await.json(), Value::Null);
    let r = phone.call("verify_sign_in_code", &[("code", &common::totp_code(&secret, 1))]).await;
    assert_eq!(location(&r), "/orgs/new");
    assert_eq!(phone.call("my_session", &[]).await.json()["user"]["email"], "jo@example.test");
}
