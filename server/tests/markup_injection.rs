//! Stored markup: people type markup into every field they can edit, and every page and mail
//! that shows it must show it as text. Pages are parsed the way a browser parses them (html5ever),
//! so "live" means exactly what Chromium would run.

mod common;
use common::saml_idp::TestIdp;
use common::{token_of, Browser, Inbox, TestApp};
use reqwest::StatusCode;
use scraper::{Html, Node};
use serde_json::json;

/// Markup that escapes a `<title>`, a `<textarea>`, an attribute or a `<script>`, in 78
/// characters (organization names allow 80). `tag` says which field it was stored in.
fn payload(tag: char) -> String {
    format!("</title></textarea></script>\"><img src=x onerror=xss({tag})><script>xss({tag})</script>")
}

/// The payload's markup, written as XML text (for an IdP's metadata).
fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Elements or handlers a payload brought to life in `html`, as a browser would parse it.
fn live_markup(html: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let mut found = Vec::new();
    for node in doc.tree.nodes() {
        let Node::Element(el) = node.value() else { continue };
        if el.name() == "script" {
            let text: String = node.children().filter_map(|c| c.value().as_text().map(|t| t.to_string())).collect();
            if text.trim_start().starts_with("xss(") {
                found.push(format!("<script>{}</script>", text.trim()));
            }
        }
        for (name, value) in el.attrs() {
            if name.starts_with("on") && value.contains("xss(") {
                found.push(format!("<{} {name}={value}>", el.name()));
            }
        }
    }
    found
}

/// Fetches `path` and asserts the page shows stored payloads (`shown`: the tags expected on
/// it) only as text.
async fn assert_inert(browser: &Browser, path: &str, shown: &[char]) {
    let r = browser.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    let live = live_markup(&r.body);
    assert!(live.is_empty(), "{path} runs stored markup: {live:?}");
    for tag in shown {
        assert!(r.body.contains(&format!("xss({tag})")), "{path} should show the field stored with tag {tag} (as text)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_stored_in_any_field_is_shown_as_text_on_every_page_and_mail() {
    let app = TestApp::spawn().await;

    // The owner's display name (n) and user agent (u: pages show only a device name made from
    // it, but it must not break them); the organization's name (o).
    let owner = app.browser_with_agent(&payload('u'));
    let r = owner.call("sign_up", &[("email", "owner@inject.test"), ("password", "correct horse battery"), ("name", &payload('n'))]).await;
    assert!(r.status.is_success(), "{}", r.body);
    sqlx::query("UPDATE users SET email_verified_at = now() WHERE email = 'owner@inject.test'").execute(&app.inspect).await.unwrap();
    owner.call("log_in", &[("email", "owner@inject.test"), ("password", "correct horse battery")]).await;
    let r = owner.call("create_org", &[("name", &payload('o')), ("slug", "inject"), ("region", "eu"), ("model", "pooled")]).await;
    assert!(r.status.is_success(), "{}", r.body);

    // A project through the UI (p, d), and one through the REST API by a key named k (r, s).
    owner.call("create_project", &[("slug", "inject"), ("name", &payload('p')), ("description", &payload('d'))]).await;
    let project = app.project_id(&payload('p')).await;
    let r = owner
        .call(
            "create_api_key",
            &[("slug", "inject"), ("name", &payload('k')), ("scopes[]", "projects:write"), ("scopes[]", "projects:read"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/orgs/inject/projects", app.base))
        .bearer_auth(&key)
        .json(&json!({ "name": payload('r'), "description": payload('s') }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rest_project = app.project_id(&payload('r')).await;

    // A member whose display name is markup (m) joins; an address made of markup may be refused,
    // but if it is taken it must be shown as text.
    let member = app.browser();
    // A fresh address: the mail catcher is shared by every test run, and an older invitation
    // to the same address must not be read instead of this one.
    let member_email = format!("member-{}@inject.test", uuid::Uuid::new_v4().simple());
    let r = member.call("sign_up", &[("email", member_email.as_str()), ("password", "correct horse battery"), ("name", &payload('m'))]).await;
    assert!(r.status.is_success(), "{}", r.body);
    sqlx::query("UPDATE users SET email_verified_at = now() WHERE email = $1").bind(&member_email).execute(&app.inspect).await.unwrap();
    member.call("log_in", &[("email", member_email.as_str()), ("password", "correct horse battery")]).await;
    let r = owner.call("invite_member", &[("slug", "inject"), ("email", member_email.as_str()), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mail = Inbox::latest(&member_email, "invited you to join").await;
    let invite_link = Inbox::link(&mail, "/invite?token=");
    let mail_html = mail["html"].as_str().unwrap();
    assert!(
        live_markup(mail_html).is_empty() && mail_html.contains("xss(o)") && mail_html.contains("xss(n)"),
        "the invitation mail shows names as text"
    );
    assert_eq!(member.get(&invite_link).await.status, StatusCode::OK);
    assert_inert(&member, &invite_link, &['o', 'n']).await;
    assert_inert(&member, "/", &['o']).await;
    let r = member.call("accept_invitation", &[("token", &token_of(&invite_link))]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let r = owner.call("invite_member", &[("slug", "inject"), ("email", "</title><script>xss(i)</script>@inject.test"), ("role", "viewer")]).await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::UNPROCESSABLE_ENTITY, "{} {}", r.status, r.body);

    // Single sign-on: an IdP whose entity id is markup (x), and a mapping of markup (e, a, g).
    let idp = TestIdp::new(&xml_escaped(&payload('x')));
    let r = owner.call("save_sso_idp", &[("slug", "inject"), ("metadata_xml", &idp.metadata("https://idp.example/sso")), ("metadata_url", "")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = owner
        .call(
            "save_sso_mapping",
            &[
                ("slug", "inject"),
                ("email_attribute", &payload('e')),
                ("name_attribute", &payload('a')),
                ("groups_attribute", &payload('a')),
                // A group name can't hold `=` (it separates the role), so no attribute payload.
                ("group_roles", "</title></textarea></script><script>xss(g)</script> = admin"),
                ("default_role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = owner.call("add_sso_domain", &[("slug", "inject"), ("domain", &payload('z'))]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a domain of markup is refused: {}", r.body);

    // Every page that shows any of it.
    assert_inert(&owner, "/", &['o']).await;
    assert_inert(&owner, "/t/inject", &['o']).await;
    // Escaped once, not twice: the tab shows the name exactly as typed.
    let page = Html::parse_document(&owner.get("/t/inject").await.body);
    let title: String = page.select(&scraper::Selector::parse("title").unwrap()).next().unwrap().text().collect();
    assert_eq!(title, format!("{} · Tessera", payload('o')));
    assert_inert(&owner, "/t/inject/projects", &['o', 'p', 'r']).await;
    assert_inert(&owner, &format!("/t/inject/projects/{project}"), &['p', 'd']).await;
    assert_inert(&owner, &format!("/t/inject/projects/{rest_project}"), &['r', 's']).await;
    assert_inert(&owner, "/t/inject/projects/new", &['o']).await;
    assert_inert(&owner, "/t/inject/members", &['n', 'm']).await;
    assert_inert(&owner, "/t/inject/settings", &['o']).await;
    assert_inert(&owner, "/t/inject/api-keys", &['k']).await;
    assert_inert(&owner, "/t/inject/sso", &['x', 'e', 'a', 'g']).await;
    assert_inert(&owner, "/account/sessions", &[]).await;
    assert_inert(&owner, "/account/security", &[]).await;
    assert_inert(&member, "/t/inject", &['o']).await;
    assert_inert(&member, &format!("/t/inject/projects/{project}"), &['p', 'd']).await;
}
