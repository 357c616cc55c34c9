//! Signing in and recovering an account through links sent by email, read from the real SMTP
//! catcher the test command runs. Links are single-use, short-lived, stored only as hashes,
//! bound to the browser that asked, rate limited, and never reveal whether an account exists.

mod common;
use common::{token_of, Inbox, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The account-level audit trail of one address: (event, ip, user agent), oldest first.
async fn events(app: &TestApp, email: &str) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT event, host(ip), user_agent FROM security_events WHERE email = $1 ORDER BY occurred_at, event")
        .bind(email)
        .fetch_all(&app.inspect)
        .await
        .unwrap()
}

fn names(events: &[(String, Option<String>, Option<String>)]) -> Vec<&str> {
    events.iter().map(|e| e.0.as_str()).collect()
}

const LINK_SENT: &str = "Check your inbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_an_emailed_link_once_in_the_browser_that_asked() {
    let app = TestApp::spawn().await;
    let email = format!("ada-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&email).await;

    let browser = app.browser();
    let r = browser.call("request_sign_in_link", &[("email", &email)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(LINK_SENT), "{}", r.body);
    let mail = Inbox::latest(&email, "sign-in link").await;
    assert!(mail["html"].as_str().unwrap().contains("Sign in"), "an HTML body too");
    let link = Inbox::link(&mail, "/auth/magic?token=");
    let token = token_of(&link);

    // Only a hash is stored.
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM auth_tokens WHERE purpose = 'magic_link'").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(stored, [Sha256::digest(token.as_bytes()).to_vec()]);

    // Opening the link (as a mail scanner would) uses nothing up; it shows whose link it is.
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&email), "the landing page names the account");
    // Another browser can't use it, and its attempt doesn't burn the link.
    let other = app.browser();
    let r = other.call("sign_in_with_link", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error_message().contains("only works in the browser where you asked"), "{}", r.error_message());

    let r = browser.call("sign_in_with_link", &[("token", &token)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let me = browser.call("my_session", &[]).await.json();
    assert_eq!(me["user"]["email"], email.as_str());
    assert_eq!(me["user"]["email_verified"], true, "following the link proves the address");

    // Single use.
    let r = browser.call("sign_in_with_link", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error_message().contains("expired or has already been used"));
    assert!(browser.get(&link).await.body.contains("expired or has already been used"));

    let trail = events(&app, &email).await;
    assert_eq!(names(&trail), ["login.succeeded", "magic_link.requested", "magic_link.used"], "after the sign-up's own log-in");
    assert!(trail.iter().all(|(_, ip, ua)| ip.as_deref() == Some("127.0.0.1") && ua.as_deref() == Some("tessera-tests/1.0")));
    let refused = app.count("SELECT count(*) FROM security_events WHERE event = 'link.refused'").await;
    assert_eq!(refused, 2, "the other browser's attempt and the reuse are on record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_link_never_reveals_whether_an_account_exists() {
    let app = TestApp::spawn().await;
    let known = format!("known-{}@example.test", uuid::Uuid::new_v4().simple());
    let unknown = format!("unknown-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&known).await;
    let a = app.browser().call("request_sign_in_link", &[("email", &known)]).await;
    let b = app.browser().call("request_sign_in_link", &[("email", &unknown)]).await;
    assert_eq!((a.status, &a.body), (b.status, &b.body), "identical answers");
    // The unknown address is told, in its own inbox, that it has no account.
    let mail = Inbox::latest(&unknown, "Signing in").await;
    assert!(mail["text"].as_str().unwrap().contains("/signup"));
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_tokens WHERE email = $1").bind(&unknown).fetch_one(&app.inspect).await.unwrap();
    assert_eq!(tokens, 0, "no link exists for an address without an account");
    for (function, form) in [("request_sign_in_link", "not-an-email"), ("request_password_reset", "@@")] {
        let r = app.browser().call(function, &[("email", form)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{function}");
        assert_eq!(r.error_field().as_deref(), Some("email"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_expire_and_requests_are_rate_limited() {
    let app = TestApp::spawn().await;
    let email = format!("grace-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&email).await;
    let browser = app.browser();
    browser.call("request_sign_in_link", &[("email", &email)]).await;
    let token = token_of(&Inbox::link(&Inbox::latest(&email, "sign-in link").await, "/auth/magic?token="));
    sqlx::query("UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'magic_link'").execute(&app.inspect).await.unwrap();
    let r = browser.call("sign_in_with_link", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(browser.call("my_session", &[]).await.json(), serde_json::Value::Null, "not signed in");

    // A new link replaces older ones, and five mails per address per window is the limit (the
    // welcome mail was the first).
    for _ in 0..3 {
        assert_eq!(browser.call("request_sign_in_link", &[("email", &email)]).await.status, StatusCode::OK);
    }
    let r = browser.call("request_sign_in_link", &[("email", &email)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_wait_is_exact(&r.error_message());
    assert_eq!(app.count("SELECT count(*) FROM auth_tokens WHERE purpose = 'magic_link' AND used_at IS NULL").await, 1, "only the newest link works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_confirms_its_email_from_the_welcome_mail() {
    let app = TestApp::spawn().await;
    let email = format!("lin-{}@example.test", uuid::Uuid::new_v4().simple());
    let owner = app.owner_of("acme").await;
    let r = owner.call("invite_member", &[("slug", "acme"), ("email", &email), ("role", "member")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    // Signed up, not confirmed: the password doesn't sign in yet, and says no more than a wrong
    // one would (so sign-up plus log-in can't tell who already has an account)...
    let browser = app.registered(&email, "correct horse battery").await;
    Inbox::latest(&email, "Confirm your email").await;
    let seen = Inbox::count_about(&email, "Confirm your email").await;
    let wrong = browser.call("log_in", &[("email", &email), ("password", "not the password")]).await;
    let right = browser.call("log_in", &[("email", &email), ("password", "correct horse battery")]).await;
    assert_eq!((right.status, right.error_message()), (wrong.status, wrong.error_message()));
    assert!(right.error_message().contains("Just signed up? Follow the link in our email first"), "{}", right.body);
    assert_eq!(browser.call("my_session", &[]).await.json(), Value::Null);
    assert_eq!(app.security_events(&email).await.last().map(String::as_str), Some("login.unconfirmed"));
    // ...but the right one sends a fresh link, which opens in this browser.
    let link = Inbox::link(&Inbox::after(seen, &email, "Confirm your email").await, "/auth/verify?token=");
    let unused = format!("SELECT count(*) FROM auth_tokens WHERE purpose = 'verify_email' AND used_at IS NULL AND email = '{email}'");
    assert_eq!(app.count(&unused).await, 1, "only the newest link works");
    assert_eq!(browser.call("confirmation_link", &[("token", &token_of(&link))]).await.json()["needs_password"], false);
    let r = browser.call("verify_email", &[("token", &token_of(&link))]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(browser.call("my_session", &[]).await.json()["user"]["email_verified"], true);
    assert!(!browser.get("/").await.body.contains("Confirm your email"));
    // Confirmed, the invitation to that address shows up and can be accepted.
    let invitation = browser.call("my_invitations", &[]).await.json();
    assert_eq!(invitation[0]["organization"], "Org acme");
    let r = browser.call("accept_invitation", &[("id", invitation[0]["id"].as_str().unwrap())]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "confirmed, they can join: {}", r.body);
    let r = browser.call("verify_email", &[("token", &token_of(&link))]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "used once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_address_is_unconfirmed_sees_no_invitations_and_is_reminded() {
    let app = TestApp::spawn().await;
    let email = format!("old-session-{}@example.test", uuid::Uuid::new_v4().simple());
    let browser = app.signed_in_unconfirmed(&email).await;
    // Anyone can sign up with any address, so until it is confirmed invitations to it neither
    // show up nor can be accepted by id.
    let owner = app.owner_of("acme").await;
    let r = owner.call("invite_member", &[("slug", "acme"), ("email", &email), ("role", "member")]).await;
    let invitation = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(browser.call("my_invitations", &[]).await.json(), serde_json::json!([]));
    assert_eq!(browser.call("accept_invitation", &[("id", &invitation)]).await.status, StatusCode::NOT_FOUND);
    assert!(browser.get("/").await.body.contains("Confirm your email"), "a reminder on the home page");
    Inbox::latest(&email, "Confirm your email").await; // the one from signing up
    let seen = Inbox::count_about(&email, "Confirm your email").await;
    assert!(browser.call("resend_verification", &[]).await.status.is_success());
    let link = Inbox::link(&Inbox::after(seen, &email, "Confirm your email").await, "/auth/verify?token=");
    let r = browser.call("verify_email", &[("token", &token_of(&link))]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(browser.call("my_invitations", &[]).await.json()[0]["organization"], "Org acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_sets_a_new_password_and_signs_out_other_devices() {
    let app = TestApp::spawn().await;
    let email = format!("bo-{}@example.test", uuid::Uuid::new_v4().simple());
    let laptop = app.signed_up(&email).await;
    let phone = app.browser();
    let r = phone.call("request_password_reset", &[("email", &email)]).await;
    assert!(r.body.contains(LINK_SENT));
    let link = Inbox::link(&Inbox::latest(&email, "Reset your Tessera password").await, "/auth/reset?token=");
    let token = token_of(&link);
    assert!(phone.get(&link).await.body.contains(&email));

    let r = phone.call("reset_password", &[("token", &token), ("password", "short")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field().as_deref(), Some("password"));
    let r = phone.call("reset_password", &[("token", &token), ("password", "a brand new passphrase")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(phone.call("my_session", &[]).await.json()["user"]["email"], email.as_str(), "signed in here");
    assert_eq!(laptop.call("my_session", &[]).await.json(), serde_json::Value::Null, "signed out elsewhere");

    let fresh = app.browser();
    let old = fresh.call("log_in", &[("email", &email), ("password", "correct horse battery")]).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY, "the old password is gone");
    let new = fresh.call("log_in", &[("email", &email), ("password", "a brand new passphrase")]).await;
    assert!(new.status.is_success() || new.status.is_redirection());
    let again = app.browser().call("reset_password", &[("token", &token), ("password", "another new passphrase")]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "the link worked once");
    assert_eq!(
        names(&events(&app, &email).await),
        ["login.succeeded", "password.reset_requested", "password.reset", "login.failed", "login.succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_account_for_a_while_whatever_the_address() {
    let app = TestApp::spawn().await;
    // The failures are counted in 15-minute windows; all of them must land in one.
    common::within_one_window(15, 90).await;
    let email = format!("cy-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&email).await;
    let attacker = app.browser();
    for target in [email.as_str(), "nobody-here@example.test"] {
        for _ in 0..5 {
            let r = attacker.call("log_in", &[("email", target), ("password", "wrong password!")]).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let r = attacker.call("log_in", &[("email", target), ("password", "correct horse battery")]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{target}: locked, even with the right password");
        assert_wait_is_exact(&r.error_message());
        let trail = events(&app, target).await;
        assert_eq!(names(&trail).iter().filter(|e| **e == "login.failed").count(), 5, "{target}");
        assert_eq!(names(&trail).last(), Some(&"login.locked"), "{target}");
    }
    let known: i64 = sqlx::query_scalar("SELECT count(*) FROM security_events WHERE email = $1 AND user_id IS NOT NULL AND event = 'login.failed'")
        .bind(&email)
        .fetch_one(&app.inspect)
        .await
        .unwrap();
    assert_eq!(known, 5, "failures against a real account are tied to it");
    // Another account is unaffected, and the owner can get back in by resetting the password.
    let other = format!("dee-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&other).await;
    let r = app.browser().call("log_in", &[("email", &other), ("password", "correct horse battery")]).await;
    assert!(r.status.is_success() || r.status.is_redirection());
    let owner = app.browser();
    owner.call("request_password_reset", &[("email", &email)]).await;
    let token = token_of(&Inbox::link(&Inbox::latest(&email, "Reset your Tessera password").await, "/auth/reset?token="));
    owner.call("reset_password", &[("token", &token), ("password", "back in business now")]).await;
    let r = app.browser().call("log_in", &[("email", &email), ("password", "back in business now")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_can_go_through_an_http_provider_instead_of_smtp() {
    use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
    use std::sync::{Arc, Mutex};
    // A local stand-in for Resend's API: records what it is sent.
    type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;
    let received: Received = Arc::default();
    let api = Router::new()
        .route(
            "/emails",
            post(|State(received): State<Received>, headers: HeaderMap, Json(body): Json<Value>| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                received.lock().unwrap().push((auth, body));
                Json(serde_json::json!({ "id": "stand-in" }))
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/emails", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let app = TestApp::spawn_with(|c| {
        c.email =
            tessera_backend::email::EmailConfig::Resend { api_key: "re_test_key".into(), endpoint, from: "Tessera <no-reply@tessera.test>".into() }
    })
    .await;
    let email = format!("http-{}@example.test", uuid::Uuid::new_v4().simple());
    app.signed_up(&email).await;
    app.browser().call("request_password_reset", &[("email", &email)]).await;
    let mut found = None;
    for _ in 0..100 {
        found = received.lock().unwrap().iter().find(|(_, b)| b["subject"] == "Reset your Tessera password").cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (auth, body) = found.expect("the provider received the reset mail");
    assert_eq!(auth.as_deref(), Some("Bearer re_test_key"));
    assert_eq!(body["to"], serde_json::json!([email]));
    assert!(body["text"].as_str().unwrap().contains("/auth/reset?token="));
    assert!(body["html"].as_str().unwrap().contains("Choose a new password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_signed_up_with_your_address_is_shut_out_when_you_sign_in_by_link() {
    let app = TestApp::spawn().await;
    let email = format!("victim-{}@example.test", uuid::Uuid::new_v4().simple());
    // An attacker registers the address first and never confirms it.
    app.registered(&email, "attacker's password").await;

    let owner = app.browser();
    owner.call("request_sign_in_link", &[("email", &email)]).await;
    let token = token_of(&Inbox::link(&Inbox::latest(&email, "sign-in link").await, "/auth/magic?token="));
    owner.call("sign_in_with_link", &[("token", &token)]).await;
    assert_eq!(owner.call("my_session", &[]).await.json()["user"]["email_verified"], true);

    let r = app.browser().call("log_in", &[("email", &email), ("password", "attacker's password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the attacker's password doesn't open the now confirmed account");
}

/// A 429 says when to try again: the minutes left in the current 15-minute window.
fn assert_wait_is_exact(message: &str) {
    let minutes: i64 = message
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait time in {message:?}"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let left = 15 * 60 - now % (15 * 60);
    assert!((minutes - (left + 59) / 60).abs() <= 1, "{message:?}: {left} s are left in the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_signed_up_with_your_address_cannot_have_you_confirm_it_for_them() {
    let app = TestApp::spawn().await;
    let email = format!("victim-{}@example.test", uuid::Uuid::new_v4().simple());
    // An attacker registers the address first; while it is unconfirmed the account gets no API
    // credentials either.
    app.registered(&email, "attacker's password").await;
    Inbox::latest(&email, "Confirm your email").await;
    let seen = Inbox::count_about(&email, "Confirm your email").await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", app.base))
        .json(&serde_json::json!({ "email": email, "password": "attacker's password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "no API tokens for an unconfirmed account");
    assert!(r.text().await.unwrap().contains("don't match an account"), "the same answer as a wrong password");

    // The address's owner gets the welcome mail in their own browser. One click would confirm
    // the attacker's account, so the link asks for the account's password there.
    // (The attacker's right password on the API mailed a fresh link and retired the first.)
    let owner = app.browser();
    let token = token_of(&Inbox::link(&Inbox::after(seen, &email, "Confirm your email").await, "/auth/verify?token="));
    assert_eq!(owner.call("confirmation_link", &[("token", &token)]).await.json()["needs_password"], true);
    let r = owner.call("verify_email", &[("token", &token)]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")), "{}", r.body);
    let r = owner.call("verify_email", &[("token", &token), ("password", "a guess at it")]).await;
    assert!(r.error_message().contains("I didn't create this account"), "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM users WHERE email_verified_at IS NOT NULL").await, 0, "nothing confirmed");

    // They disown it. That signs nobody in (the link isn't bound to their browser, so it
    // mustn't work as a sign-in link): the login page says what happened, and the owner signs
    // in by a link of their own.
    let r = owner.call("disown_registration", &[("token", &token)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(owner.call("my_session", &[]).await.json(), Value::Null, "not signed in by the confirmation");
    let problem = owner.call("take_sign_in_problem", &[]).await.json();
    assert!(problem.as_str().unwrap().contains("Your address is confirmed"), "{problem}");
    assert_eq!(app.security_events(&email).await.last().map(String::as_str), Some("signup.disowned"));
    owner.call("request_sign_in_link", &[("email", &email)]).await;
    let token = token_of(&Inbox::link(&Inbox::latest(&email, "sign-in link").await, "/auth/magic?token="));
    owner.call("sign_in_with_link", &[("token", &token)]).await;
    let session = owner.call("my_session", &[]).await.json();
    assert_eq!((session["user"]["email"].as_str(), &session["user"]["email_verified"]), (Some(email.as_str()), &Value::Bool(true)));

    let r = app.browser().call("log_in", &[("email", &email), ("password", "attacker's password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the attacker's password doesn't open the now confirmed account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_link_opened_on_another_device_takes_the_password_chosen_at_sign_up() {
    let app = TestApp::spawn().await;
    let email = format!("two-devices-{}@example.test", uuid::Uuid::new_v4().simple());
    let laptop = app.browser();
    let r = laptop.call("sign_up", &[("email", &email), ("password", "correct horse battery"), ("name", ""), ("next", "/settings")]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    let token = token_of(&Inbox::link(&Inbox::latest(&email, "Confirm your email").await, "/auth/verify?token="));
    assert_eq!(laptop.call("confirmation_link", &[("token", &token)]).await.json()["needs_password"], false, "one click where they signed up");

    let phone = app.browser();
    let r = phone.call("verify_email", &[("token", &token), ("password", "correct horse battery")]).await;
    assert_eq!(r.headers.get("location").map(|l| l.to_str().unwrap()), Some("/"), "{} {}", r.status, r.body);
    let session = phone.call("my_session", &[]).await.json();
    assert_eq!((session["user"]["email"].as_str(), &session["user"]["email_verified"]), (Some(email.as_str()), &Value::Bool(true)));
    assert!(laptop.call("my_session", &[]).await.json().is_null(), "the laptop signs in on its own");
    let r = laptop.call("verify_email", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the link works once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_link_in_the_browser_that_signed_up_confirms_and_goes_where_they_were_headed() {
    let app = TestApp::spawn().await;
    let email = format!("headed-{}@example.test", uuid::Uuid::new_v4().simple());
    let browser = app.browser();
    let r = app
        .sign_up_by_mail(&browser, &[("email", &email), ("password", "correct horse battery"), ("name", ""), ("next", "/settings/security")])
        .await;
    assert_eq!(r.headers.get("location").unwrap(), "/settings/security");
    assert_eq!(browser.call("my_session", &[]).await.json()["user"]["email_verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_again_before_confirming_sends_a_link_that_takes_the_new_password() {
    let app = TestApp::spawn().await;
    let email = format!("again-{}@example.test", uuid::Uuid::new_v4().simple());
    // Someone registered the address first and never confirmed it: the owner on an earlier
    // day who lost the mail, or someone else.
    app.registered(&email, "the first password").await;
    let first_link = token_of(&Inbox::link(&Inbox::latest(&email, "Confirm your email").await, "/auth/verify?token="));
    let seen = Inbox::count_about(&email, "Confirm your email").await;
    // Signing up again answers exactly as a first sign-up does...
    let laptop = app.browser();
    let again = laptop.call("sign_up", &[("email", &email), ("password", "the second password"), ("name", "")]).await;
    let fresh = app.browser().call("sign_up", &[("email", &format!("x{email}")), ("password", "the second password"), ("name", "")]).await;
    assert_eq!((again.status, again.location()), (fresh.status, fresh.location()), "{}", again.body);
    // ...and mails a confirmation link, not "you already have an account".
    let token = token_of(&Inbox::link(&Inbox::after(seen, &email, "Confirm your email").await, "/auth/verify?token="));
    // Elsewhere it takes the password chosen this time, not the first one.
    let phone = app.browser();
    let r = phone.call("verify_email", &[("token", &token), ("password", "the first password")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")), "{}", r.body);
    // Where they signed up again, one click confirms and signs in.
    let r = laptop.call("verify_email", &[("token", &token)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(laptop.call("my_session", &[]).await.json()["user"]["email_verified"], true);
    // The account opens with the new password only.
    let r = app.browser().call("log_in", &[("email", &email), ("password", "the first password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.browser().call("log_in", &[("email", &email), ("password", "the second password")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    // The first sign-up's link stayed usable until then (signing up again mustn't cancel
    // someone's pending confirmation); now it confirms nothing and changes no password.
    let elsewhere = app.browser();
    let r = elsewhere.call("confirmation_link", &[("token", &first_link)]).await;
    assert_eq!(r.json()["needs_password"], false, "already confirmed: {}", r.body);
    elsewhere.call("verify_email", &[("token", &first_link)]).await;
    let r = app.browser().call("log_in", &[("email", &email), ("password", "the first password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.browser().call("log_in", &[("email", &email), ("password", "the second password")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_signing_up_again_with_your_address_cannot_have_your_signed_in_browser_confirm_their_password() {
    let app = TestApp::spawn().await;
    let email = format!("held-{}@example.test", uuid::Uuid::new_v4().simple());
    // The owner is signed in to their unconfirmed account (a session from before sign-in
    // required a confirmed address).
    let owner = app.signed_in_unconfirmed(&email).await;
    Inbox::latest(&email, "Confirm your email").await;
    let seen = Inbox::count_about(&email, "Confirm your email").await;
    // Someone else signs up with the address and a password of theirs...
    let stranger = app.browser();
    assert!(stranger.call("sign_up", &[("email", &email), ("password", "the strangers password"), ("name", "")]).await.status.is_success());
    let token = token_of(&Inbox::link(&Inbox::after(seen, &email, "Confirm your email").await, "/auth/verify?token="));
    // ...and the owner, signed in, follows that link: it asks for the password it carries,
    // which they never chose, instead of confirming the stranger's password in one click.
    assert_eq!(owner.call("confirmation_link", &[("token", &token)]).await.json()["needs_password"], true);
    let r = owner.call("verify_email", &[("token", &token)]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("password")), "{}", r.body);
    let r = app.browser().call("log_in", &[("email", &email), ("password", "the strangers password")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "the stranger has no way in");
    assert_eq!(owner.call("my_session", &[]).await.json()["user"]["email"], email.as_str(), "the owner is still signed in");
}
