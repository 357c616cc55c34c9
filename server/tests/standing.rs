//! What changes someone's standing counts from their very next request, on every server of a
//! deployment: a page reads the session, the user and the organization together at its start
//! (`sessions::PageContext`), and nothing of it outlives the request.

mod common;
use common::{Browser, TestApp};
use reqwest::StatusCode;

/// An owner of Acme and a Member, Bea, who browses through a second server.
async fn acme_with_bea(app: &TestApp) -> (Browser, Browser) {
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    let elsewhere = app.another_server().await;
    let bea = bea.on(&elsewhere);
    let page = bea.get("/t/acme").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(role_shown(&page.body), "Member");
    (owner, bea)
}

/// The role the organization's overview says you have.
fn role_shown(page: &str) -> &str {
    let badge = page.split(r#"data-testid="my-role""#).nth(1).expect("the overview shows your role");
    let text = &badge[badge.find('>').unwrap() + 1..];
    &text[..text.find('<').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_shows_on_the_members_next_page_on_another_server() {
    let app = TestApp::spawn().await;
    let (owner, bea) = acme_with_bea(&app).await;
    let bea_id = app.user_id("bea@example.test").await;

    let r = owner.call("change_role", &[("slug", "acme"), ("user_id", &bea_id), ("role", "viewer")]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);

    let page = bea.get("/t/acme").await;
    assert_eq!(role_shown(&page.body), "Viewer");
    assert!(!page.body.contains("New project"), "a Viewer is offered no project to create");
    let r = bea.call("create_project", &[("slug", "acme"), ("name", "Sneaky"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_finds_nothing_on_their_next_page() {
    let app = TestApp::spawn().await;
    let (owner, bea) = acme_with_bea(&app).await;
    let bea_id = app.user_id("bea@example.test").await;

    let r = owner.call("remove_member", &[("slug", "acme"), ("user_id", &bea_id)]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);

    let page = bea.get("/t/acme/projects").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Org acme"), "not even the name in the organization switcher");
    assert_eq!(bea.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_organization_closes_on_the_next_page() {
    let app = TestApp::spawn().await;
    let (_owner, bea) = acme_with_bea(&app).await;

    sqlx::query("UPDATE tenants SET status = 'suspended' WHERE slug = 'acme'").execute(&app.inspect).await.unwrap();

    let page = bea.get("/t/acme/projects").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("suspended"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_from_another_browser_is_signed_out_at_once() {
    let app = TestApp::spawn().await;
    let (_owner, bea) = acme_with_bea(&app).await;
    // Bea, on her phone (the first server), signs out every other browser.
    let phone = app.browser();
    let r = phone.call("log_in", &[("email", "bea@example.test"), ("password", common::PASSWORD)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let r = phone.call("sign_out_other_sessions", &[]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);

    let page = bea.get("/t/acme/projects").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(bea.call("my_session", &[]).await.json().is_null(), "signed out");
    assert_eq!(phone.get("/t/acme/projects").await.status, StatusCode::OK, "the phone itself stays in");
}
