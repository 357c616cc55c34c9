//! "Continue with GitHub": plain OAuth 2 (no ID token), with the person's id and verified
//! addresses read from GitHub's REST API. Runs against the GitHub stand-in started by the
//! test command (`end2end/stand-ins/github-oauth.mjs`), configured as an Enterprise Server.

mod common;
use common::{IdpLogin, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

const START: &str = "/auth/oidc/github/start";

fn github<'a>(email: &'a str, id: &'a str) -> IdpLogin<'a> {
    IdpLogin { email, name: "", email_verified: true, sub: Some(id), secondary_email: None }
}

async fn problem(browser: &common::Browser) -> String {
    browser.call("take_sign_in_problem", &[]).await.json().as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_signs_up_with_github_and_stays_the_same_account_after_changing_their_address() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let r = browser.get(&format!("{START}?next=/orgs/new")).await;
    let authorize = r.location();
    assert!(authorize.contains("/login/oauth/authorize?") && authorize.contains("code_challenge_method=S256"), "{authorize}");
    assert!(authorize.contains("scope=read%3Auser+user%3Aemail"), "asks for the verified addresses: {authorize}");

    let dev = IdpLogin { email: "Dev@Example.test", name: "Dev Patel", email_verified: true, sub: Some("583231"), secondary_email: None };
    let r = browser.through_idp(&format!("{START}?next=/orgs/new"), &dev).await;
    assert_eq!(r.location(), "/orgs/new", "{} {}", r.status, r.body);
    let me = browser.call("my_session", &[]).await.json();
    assert_eq!((me["user"]["email"].as_str(), me["user"]["display_name"].as_str()), (Some("dev@example.test"), Some("Dev Patel")));
    assert_eq!(me["user"]["email_verified"], true);
    let linked = browser.call("my_identities", &[]).await.json();
    assert_eq!((linked[0]["provider_name"].as_str(), linked[0]["email"].as_str()), (Some("GitHub"), Some("dev@example.test")));

    // A new primary address on GitHub: still the same person (known by the numeric id).
    let laptop = app.browser();
    laptop.through_idp(START, &github("dev@newjob.test", "583231")).await;
    assert_eq!(laptop.call("my_session", &[]).await.json()["user"]["email"], "dev@example.test");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM security_events WHERE event = 'oidc.signed_in'").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_primary_address_github_has_verified_leads_into_an_existing_account() {
    let app = TestApp::spawn().await;
    app.signed_up("sam@example.test").await;

    // An unverified primary address, and nothing else: refused, nothing made.
    let stranger = app.browser();
    let unverified = IdpLogin { email: "sam@example.test", name: "", email_verified: false, sub: Some("1001"), secondary_email: None };
    let r = stranger.through_idp(START, &unverified).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert!(problem(&stranger).await.contains("GitHub account's email address isn't verified"));
    assert_eq!(stranger.call("my_session", &[]).await.json(), Value::Null);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM user_identities").await, 0);

    // A secondary address GitHub once verified doesn't vouch either: it may have changed
    // hands since. (Sam would sign in with email and connect GitHub on the security page.)
    let old_address = app.browser();
    let login = IdpLogin { email: "sam@new.test", name: "Sam", email_verified: false, sub: Some("2002"), secondary_email: Some("sam@example.test") };
    let r = old_address.through_idp(START, &login).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert_eq!(old_address.call("my_session", &[]).await.json(), Value::Null);

    // Sam's GitHub account with Sam's address as its verified primary: linked, not a new account.
    let sam = app.browser();
    let r = sam.through_idp(START, &github("sam@example.test", "2002")).await;
    assert_eq!(r.location(), "/", "{}", problem(&sam).await);
    assert_eq!(sam.call("my_session", &[]).await.json()["user"]["email"], "sam@example.test");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1, "linked, not a second account");
    assert_eq!(app.count("SELECT count(*) FROM security_events WHERE event = 'oidc.linked'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_callback_refuses_forged_state_spent_codes_and_cancellations() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    browser.get(START).await;
    let r = browser.get("/auth/oidc/github/callback?code=abc&state=forged").await;
    assert_eq!(r.location(), "/login?problem=1");
    assert!(problem(&browser).await.contains("didn't start in this browser"));

    // "Cancel" on GitHub's page.
    let start = browser.get(START).await;
    let authorize = reqwest::Url::parse(&start.location()).unwrap();
    let cancelled = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(authorize.clone())
        .form(&[("decision", "cancel")])
        .send()
        .await
        .unwrap();
    let back = cancelled.headers()["location"].to_str().unwrap().to_string();
    assert!(back.contains("error=access_denied"), "{back}");
    let r = browser.get(&back[back.find("/auth/").unwrap()..]).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert!(problem(&browser).await.contains("Signing in with GitHub was cancelled"));

    // A genuine callback works once; replaying the code (say, from a log) finds it spent at
    // GitHub even when the browser starts a fresh sign-in to carry it.
    let first = app.browser();
    let callback = first.idp_callback_url(START, &github("rae@example.test", "3003")).await;
    assert_eq!(first.get(&callback).await.location(), "/");
    assert_eq!(first.call("my_session", &[]).await.json()["user"]["email"], "rae@example.test");
    let replay = app.browser();
    let fresh = replay.get(START).await.location();
    let state = reqwest::Url::parse(&fresh).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    let code = reqwest::Url::parse(&format!("http://x{callback}")).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let r = replay.get(&format!("/auth/oidc/github/callback?code={code}&state={state}")).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert!(problem(&replay).await.contains("GitHub didn't accept this sign-in"));
    assert_eq!(replay.call("my_session", &[]).await.json(), Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_person_connects_github_to_their_account() {
    let app = TestApp::spawn().await;
    let kai = app.signed_up("kai@example.test").await;
    let start = kai.call("connect_identity", &[("provider", "github")]).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let r = kai.through_idp(start.json().as_str().unwrap(), &github("kai.hacks@example.test", "4004")).await;
    assert_eq!(r.location(), "/account/security?connected=1");
    let linked = kai.call("my_identities", &[]).await.json();
    assert_eq!((linked[0]["provider"].as_str(), linked[0]["email"].as_str()), (Some("github"), Some("kai.hacks@example.test")));

    let phone = app.browser();
    phone.through_idp(START, &github("kai.hacks@example.test", "4004")).await;
    assert_eq!(phone.call("my_session", &[]).await.json()["user"]["email"], "kai@example.test");
}
