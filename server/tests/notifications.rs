//! Notifications: people hear about what concerns them (an invitation, a role change, a new
//! member, a new API key) once each, only their own, with the unread count on every page and
//! on a live stream; they mark them read; they choose which kinds also email them.

mod common;
use common::{Browser, Inbox, TestApp};
use serde_json::Value;
use std::time::{Duration, Instant};

async fn inbox(browser: &Browser) -> Value {
    let r = browser.call("my_notifications", &[]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.json()
}

/// Waits up to ten seconds for `browser` to have `count` notifications.
async fn notifications(app: &TestApp, browser: &Browser, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let list = inbox(browser).await["notifications"].as_array().unwrap().clone();
        if list.len() >= count {
            return list;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let jobs: Vec<(String, String, i32, Option<String>)> =
                sqlx::query_as("SELECT kind, status, attempts, last_error FROM jobs ORDER BY created_at").fetch_all(&app.inspect).await.unwrap();
            panic!("expected {count} notifications, have {list:?}; the jobs: {jobs:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_member_hears_of_their_invitation_their_new_role_and_admins_of_newcomers_and_new_keys() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea-is-told@example.test").await;
    owner.invite_and_accept("acme", "bea-is-told@example.test", "member", &bea).await;

    let told = notifications(&app, &bea, 1).await;
    assert!(told[0]["title"].as_str().unwrap().contains("invited you to"), "{told:?}");
    assert_eq!(told[0]["read"], false);
    let owners = notifications(&app, &owner, 1).await;
    assert!(owners[0]["title"].as_str().unwrap().contains("joined"), "{owners:?}");
    assert_eq!(owners[0]["link"], "/t/acme/members");

    let bea_id = app.user_id("bea-is-told@example.test").await;
    let r = owner.call("change_role", &[("slug", "acme"), ("user_id", &bea_id), ("role", "admin")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let told = notifications(&app, &bea, 2).await;
    assert!(told[0]["title"].as_str().unwrap().starts_with("You are now an Admin in "), "{told:?}");
    // Role changes email by default: a security-relevant change shouldn't go unseen.
    assert!(Inbox::latest("bea-is-told@example.test", "You are now an Admin").await["text"].as_str().unwrap().contains("/t/acme"));

    // A key's name goes into notifications and mails: no line breaks to fake a paragraph with.
    let r = owner
        .call(
            "create_api_key",
            &[("slug", "acme"), ("name", "Deploys\n\nClick http://evil.test"), ("scopes[]", "projects:read"), ("expires_in_days", "1")],
        )
        .await;
    assert_eq!(r.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // Bea (now an Admin) hears of the owner's new API key; the owner, who made it, doesn't.
    let r = owner.call("create_api_key", &[("slug", "acme"), ("name", "Deploys"), ("scopes[]", "projects:read"), ("expires_in_days", "1")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let told = notifications(&app, &bea, 3).await;
    assert!(told[0]["title"].as_str().unwrap().contains("\"Deploys\""), "{told:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(inbox(&owner).await["notifications"].as_array().unwrap().len(), 1, "only the join; not their own key");

    // Each event told each person once, however the jobs ran.
    let per_person: i64 =
        app.count("SELECT count(*) FROM (SELECT user_id, kind, title FROM notifications GROUP BY 1, 2, 3 HAVING count(*) > 1) twice").await;
    assert_eq!(per_person, 0);
}

#[tokio::test]
async fn the_unread_count_is_on_every_page_and_people_mark_only_their_own_read() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "viewer", &bea).await;
    notifications(&app, &owner, 1).await;
    let bea_told = notifications(&app, &bea, 1).await;

    let page = owner.get("/t/acme/projects").await;
    assert!(page.body.contains("Notifications, 1 unread"), "the bell's count comes with the page");
    assert_eq!(owner.call("my_session", &[]).await.json()["unread_notifications"], 1);

    // Bea can't mark the owner's as read: to her it doesn't exist.
    let owners = inbox(&owner).await["notifications"][0]["id"].as_str().unwrap().to_string();
    let r = bea.call("mark_notifications_read", &[("id", &owners)]).await;
    assert_eq!(r.status, reqwest::StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(inbox(&owner).await["unread"], 1);
    assert_eq!(bea.call("mark_notifications_read", &[("id", "not-an-id")]).await.status, reqwest::StatusCode::NOT_FOUND);

    let r = owner.call("mark_notifications_read", &[("id", &owners)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(r.json(), 0);
    assert!(owner.get("/t/acme/projects").await.body.contains("aria-label=\"Notifications\""));
    assert_eq!(inbox(&bea).await["unread"], 1, "hers are untouched");
    assert_eq!(bea.call("mark_notifications_read", &[]).await.json(), 0, "all of hers at once");
    assert_eq!(bea_told.len(), 1);
    // Signed out, nobody's notifications.
    assert_eq!(app.browser().call("my_notifications", &[]).await.status, reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn people_choose_which_kinds_also_email_them() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    // An address of its own: the mail catcher is shared by every test.
    let bea = app.signed_up("bea-prefers-quiet@example.test").await;
    owner.invite_and_accept("acme", "bea-prefers-quiet@example.test", "member", &bea).await;
    notifications(&app, &bea, 1).await;
    let prefs = inbox(&bea).await["preferences"].clone();
    let role_changes = prefs.as_array().unwrap().iter().find(|p| p["kind"] == "role_changed").unwrap();
    assert_eq!(role_changes["email"], true, "on by default");

    let r = bea.call("set_notification_email", &[("kind", "role_changed")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let bea_id = app.user_id("bea-prefers-quiet@example.test").await;
    owner.call("change_role", &[("slug", "acme"), ("user_id", &bea_id), ("role", "viewer")]).await;
    notifications(&app, &bea, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(Inbox::count_about("bea-prefers-quiet@example.test", "You are now a Viewer").await, 0, "switched off: no email");
    assert!(
        !inbox(&bea).await["preferences"].as_array().unwrap().iter().any(|p| p["kind"] == "invited"),
        "invitations are emailed anyway: no second mail to choose"
    );

    let r = bea.call("set_notification_email", &[("kind", "no_such_kind"), ("email", "on")]).await;
    assert_eq!(r.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
}

/// The live stream: the signed-in person's unread count at once, then each change; nothing
/// for anyone else, and a signed-out browser is told to stop (204).
#[tokio::test]
async fn the_live_stream_carries_only_the_signed_in_persons_count_as_it_changes() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;

    let signed_out = app.browser().get("/api/notifications/stream").await;
    assert_eq!(signed_out.status, reqwest::StatusCode::NO_CONTENT);

    let mut stream = bea.stream("/api/notifications/stream").await;
    assert_eq!(stream.next_event().await, ("unread".to_string(), "0".to_string()));
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    assert_eq!(stream.next_event().await, ("unread".to_string(), "1".to_string()), "her invitation, live");
    notifications(&app, &owner, 1).await;
    let mut owners = owner.stream("/api/notifications/stream").await;
    assert_eq!(owners.next_event().await.1, "1", "the owner's own count: Bea joined");
    bea.call("mark_notifications_read", &[]).await;
    // Marking read happens in the browser that shows it; the stream catches up at its next check.
    assert_eq!(stream.next_event().await, ("unread".to_string(), "0".to_string()));
}

#[tokio::test]
async fn a_sign_in_from_a_browser_new_to_the_account_is_reported_once_in_words_not_its_user_agent() {
    let app = TestApp::spawn().await;
    let email = "dana-signs-in@example.test";
    let dana = app.signed_up(email).await;
    // A browser that hasn't signed in to this account before, with a user agent written to mislead.
    let laptop = app.browser_with_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 Click http://evil.test now");
    for _ in 0..2 {
        let r = laptop.call("log_in", &[("email", email), ("password", common::PASSWORD)]).await;
        assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    }
    let told = notifications(&app, &dana, 1).await;
    assert_eq!(told[0]["title"], "New sign-in to your account");
    let body = told[0]["body"].as_str().unwrap();
    assert!(body.starts_with("From Firefox on Linux at 127.0.0.1."), "{body}");
    assert!(!body.contains("evil"), "the user agent's own words stay out: {body}");
    assert_eq!(told[0]["link"], "/account/sessions");
    assert!(Inbox::latest(email, "New sign-in to your account").await["text"].as_str().unwrap().contains("Firefox on Linux"));

    // The same browser again, and the first one again: nothing new.
    let r = dana.call("log_in", &[("email", email), ("password", common::PASSWORD)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(inbox(&dana).await["notifications"].as_array().unwrap().len(), 1, "reported once");
}
