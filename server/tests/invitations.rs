//! Joining an organization takes the person's consent: admins invite an address, the person
//! accepts from the emailed link (or their home page), and only then are they a member.

mod common;
use common::{token_of, Browser, Inbox, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

fn unique(name: &str) -> String {
    format!("{name}-{}@example.test", uuid::Uuid::new_v4().simple())
}

async fn invite(owner: &Browser, email: &str, role: &str) -> common::Response {
    owner.call("invite_member", &[("slug", "acme"), ("email", email), ("role", role)]).await
}

/// The token in the newest invitation mail to `email`.
async fn emailed_token(email: &str) -> String {
    token_of(&Inbox::link(&Inbox::latest(email, "invited you to join").await, "/invite?token="))
}

fn joined(r: &common::Response) -> bool {
    r.status.is_success() || r.status.is_redirection()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_signs_up_from_the_invitation_email_and_lands_in_the_organization() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "Roadmap").await;
    let nia = unique("nia");
    let r = invite(&owner, &nia, "admin").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["invited_by"], "owner@acme.test");

    let mail = Inbox::latest(&nia, "invited you to join").await;
    assert_eq!(mail["subject"], "owner@acme.test invited you to join Org acme on Tessera");
    assert!(mail["text"].as_str().unwrap().contains("as an Admin"), "{}", mail["text"]);
    let token = emailed_token(&nia).await;

    // The link shows what it is before anyone signs in.
    let visitor = app.browser();
    let preview = visitor.call("open_invitation", &[("token", &token)]).await.json();
    assert_eq!(
        (preview["organization"].as_str(), preview["role"].as_str(), preview["state"].as_str()),
        (Some("Org acme"), Some("admin"), Some("Pending"))
    );
    let page = visitor.get(&format!("/invite?token={token}")).await;
    assert!(page.body.contains("Join Org acme") && page.body.contains("Sign in to accept"), "{}", page.body);

    // No account yet: they sign up on the way, and come back to the invitation, signed in at once
    // (the invitation proves the address: no confirmation mail).
    let back = format!("/invite?token={token}");
    let form = [("email", nia.as_str()), ("password", "correct horse battery"), ("name", "Nia"), ("next", &back), ("invitation", &token)];
    let r = visitor.call("sign_up", &form).await;
    assert_eq!(r.headers.get("location").and_then(|l| l.to_str().ok()), Some(back.as_str()), "{} {}", r.status, r.body);
    assert_eq!(visitor.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::NOT_FOUND, "not a member yet");

    let r = visitor.call("accept_invitation", &[("token", &token)]).await;
    assert!(joined(&r), "{} {}", r.status, r.body);
    assert_eq!(r.headers.get("location").and_then(|l| l.to_str().ok()), Some("/t/acme"));
    let me = visitor.call("my_session", &[]).await.json();
    assert_eq!(me["orgs"][0]["slug"], "acme");
    assert_eq!(me["orgs"][0]["role"], "admin");
    assert_eq!(me["user"]["email_verified"], true, "the link reached their inbox, so the address is confirmed");
    assert_eq!(visitor.call("list_projects", &[("slug", "acme")]).await.json()[0]["name"], "Roadmap");

    // The link again: already done, nothing new.
    assert!(joined(&visitor.call("accept_invitation", &[("token", &token)]).await));
    assert_eq!(visitor.call("open_invitation", &[("token", &token)]).await.json()["state"], "Accepted");
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 2);

    let trail: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT a.action, u.email FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
          WHERE a.action LIKE 'invitation.%' OR (a.action = 'membership.added' AND a.changes ? 'via') ORDER BY a.occurred_at, a.action",
    )
    .fetch_all(&app.inspect)
    .await
    .unwrap();
    assert_eq!(
        trail,
        [
            ("invitation.sent".to_string(), Some("owner@acme.test".to_string())),
            ("invitation.accepted".to_string(), Some(nia.clone())),
            ("membership.added".to_string(), Some(nia.clone())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_only_for_the_person_it_was_sent_to() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let kim_email = unique("kim");
    let kim = app.signed_up(&kim_email).await;
    let r = invite(&owner, &kim_email, "member").await;
    let id = r.json()["id"].as_str().unwrap().to_string();

    // Invited is not a member: nothing can be done to Kim in the organization's name.
    let kim_id = app.user_id(&kim_email).await;
    let r = owner.call("sign_out_member", &[("slug", "acme"), ("user_id", &kim_id)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(kim.call("my_session", &[]).await.json().is_object(), "Kim is still signed in");

    // Someone else with the forwarded link, or guessing the id, gets nowhere.
    let eve = app.signed_up("eve@example.test").await;
    let token = emailed_token(&kim_email).await;
    let r = eve.call("accept_invitation", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let expected = format!("This invitation is for {kim_email}, but you're signed in as eve@example.test");
    assert!(r.error_message().contains(&expected), "{}", r.error_message());
    assert!(eve.get(&format!("/invite?token={token}")).await.body.contains("wrong-account"), "the page says so too");
    assert_eq!(eve.call("accept_invitation", &[("id", &id)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(eve.call("decline_invitation", &[("id", &id)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(eve.call("my_invitations", &[]).await.json(), serde_json::json!([]));
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 1);
    let r = eve.call("accept_invitation", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "which invitation?");

    // Kim sees it on the home page and accepts there.
    let mine = kim.call("my_invitations", &[]).await.json();
    assert_eq!((mine[0]["organization"].as_str(), mine[0]["inviter"].as_str()), (Some("Org acme"), Some("owner@acme.test")));
    assert!(kim.get("/").await.body.contains("my-invitations"), "shown on the home page");
    assert!(joined(&kim.call("accept_invitation", &[("id", &id)]).await));
    assert_eq!(kim.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::OK);
    assert_eq!(kim.call("my_invitations", &[]).await.json(), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_resend_and_withdraw_invitations_and_people_decline_or_find_them_expired() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let lee = unique("lee");
    let id = invite(&owner, &lee, "member").await.json()["id"].as_str().unwrap().to_string();
    let first = emailed_token(&lee).await;
    let listed = owner.call("org_invitations", &[("slug", "acme")]).await.json();
    assert_eq!((listed[0]["email"].as_str(), listed[0]["expired"].as_bool()), (Some(lee.as_str()), Some(false)));

    // Resending: a new link, and the old one stops working.
    assert_eq!(owner.call("resend_invitation", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::OK);
    let second = loop {
        let token = emailed_token(&lee).await;
        if token != first {
            break token;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(app.browser().call("open_invitation", &[("token", &first)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.browser().call("open_invitation", &[("token", &second)]).await.json()["state"], "Pending");
    // Inviting the same address again updates the open invitation rather than adding one.
    assert_eq!(invite(&owner, &lee, "viewer").await.json()["id"].as_str(), Some(id.as_str()));
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 1);
    let third = loop {
        let token = emailed_token(&lee).await;
        if token != second {
            break token;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(app.browser().call("open_invitation", &[("token", &third)]).await.json()["role"], "viewer");

    // Withdrawn: the link says so, and can't be used.
    assert_eq!(owner.call("withdraw_invitation", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::OK);
    let lee_browser = app.signed_up(&lee).await;
    assert_eq!(lee_browser.call("open_invitation", &[("token", &third)]).await.json()["state"], "Withdrawn");
    let r = lee_browser.call("accept_invitation", &[("token", &third)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("withdrawn"), "{}", r.error_message());
    assert_eq!(owner.call("org_invitations", &[("slug", "acme")]).await.json(), serde_json::json!([]));
    assert_eq!(owner.call("withdraw_invitation", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::NOT_FOUND);

    // Declined, with the link and no account needed.
    let dee_email = unique("dee");
    invite(&owner, &dee_email, "member").await;
    let dee = emailed_token(&dee_email).await;
    assert_eq!(app.browser().call("decline_invitation", &[("token", &dee)]).await.status, StatusCode::OK);
    assert_eq!(app.browser().call("open_invitation", &[("token", &dee)]).await.json()["state"], "Declined");
    let dee_browser = app.signed_up(&dee_email).await;
    assert_eq!(dee_browser.call("accept_invitation", &[("token", &dee)]).await.status, StatusCode::CONFLICT);

    // Expired: refused with the date, shown as expired to the admins, and revived by resending.
    let old_email = unique("old");
    let r = invite(&owner, &old_email, "member").await;
    let old_id = r.json()["id"].as_str().unwrap().to_string();
    let old_token = emailed_token(&old_email).await;
    sqlx::query("UPDATE invitations SET expires_at = now() - interval '1 day' WHERE email = $1")
        .bind(&old_email)
        .execute(&app.inspect)
        .await
        .unwrap();
    let old = app.signed_up(&old_email).await;
    let r = old.call("accept_invitation", &[("token", &old_token)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("expired on"), "{}", r.error_message());
    assert_eq!(old.call("my_invitations", &[]).await.json(), serde_json::json!([]), "expired ones aren't offered");
    assert_eq!(owner.call("org_invitations", &[("slug", "acme")]).await.json()[0]["expired"], true);
    owner.call("resend_invitation", &[("slug", "acme"), ("id", &old_id)]).await;
    assert!(joined(&old.call("accept_invitation", &[("id", &old_id)]).await));

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'invitation.%' ORDER BY occurred_at")
        .fetch_all(&app.inspect)
        .await
        .unwrap();
    for expected in ["invitation.sent", "invitation.resent", "invitation.revoked", "invitation.declined", "invitation.accepted"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_handle_invitations_and_only_owners_invite_owners() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let admin = app.signed_up("admin@acme.test").await;
    owner.invite_and_accept("acme", "admin@acme.test", "admin", &admin).await;
    let member = app.signed_up("member@acme.test").await;
    owner.invite_and_accept("acme", "member@acme.test", "member", &member).await;
    let to_owner = invite(&owner, "co-owner@example.test", "owner").await.json()["id"].as_str().unwrap().to_string();

    assert_eq!(member.call("org_invitations", &[("slug", "acme")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(member.call("withdraw_invitation", &[("slug", "acme"), ("id", &to_owner)]).await.status, StatusCode::FORBIDDEN);
    assert!(!member.get("/t/acme/members").await.body.contains("Invite someone"), "members get no invite form");
    let r = admin.call("withdraw_invitation", &[("slug", "acme"), ("id", &to_owner)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an Owner's invitation to ownership is theirs to withdraw");
    assert_eq!(admin.call("resend_invitation", &[("slug", "acme"), ("id", &to_owner)]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.call("resend_invitation", &[("slug", "acme"), ("id", "not-an-id")]).await.status, StatusCode::NOT_FOUND);
    assert!(admin.get("/t/acme/members").await.body.contains("Invite someone"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_can_send_only_so_many_invitations_an_hour() {
    let app = TestApp::spawn().await;
    // The budget filled below is the current hour's; the refusal must come in the same hour.
    common::within_one_window(60, 60).await;
    let owner = app.owner_of("acme").await;
    let tenant = app.tenant_id("acme").await;
    sqlx::query("INSERT INTO auth_throttle (bucket, window_start, hits) VALUES ($1, date_bin(interval '60 minutes', now(), 'epoch'), 100)")
        .bind(format!("invite:tenant:{tenant}"))
        .execute(&app.inspect)
        .await
        .unwrap();
    let r = invite(&owner, "one-too-many@example.test", "member").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error_message().contains("Try again in"), "{}", r.error_message());
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 0, "nothing half-done");
    let other: Value =
        app.owner_of("other").await.call("invite_member", &[("slug", "other"), ("email", "x@example.test"), ("role", "member")]).await.json();
    assert!(other["id"].is_string(), "other organizations are unaffected: {other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_speaks_for_its_sender_and_lapses_with_their_rights() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let admin = app.signed_up("admin@acme.test").await;
    owner.invite_and_accept("acme", "admin@acme.test", "admin", &admin).await;

    // An Admin can't rewrite an Owner's invitation to ownership by inviting the address again.
    let heir = unique("heir");
    invite(&owner, &heir, "owner").await;
    let r = invite(&admin, &heir, "admin").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM invitations WHERE role = 'owner' AND revoked_at IS NULL").await, 1);

    // The admin invites an accomplice, and is removed before it is accepted: the invitation
    // goes with them.
    let accomplice = unique("accomplice");
    invite(&admin, &accomplice, "admin").await;
    let token = emailed_token(&accomplice).await;
    let admin_id = app.user_id("admin@acme.test").await;
    assert_eq!(owner.call("remove_member", &[("slug", "acme"), ("user_id", &admin_id)]).await.status, StatusCode::OK);
    let accomplice_browser = app.signed_up(&accomplice).await;
    assert_eq!(accomplice_browser.call("open_invitation", &[("token", &token)]).await.json()["state"], "Withdrawn");
    let changes: Value =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'membership.removed'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(changes["open_invitations"], serde_json::json!({ "old": 1, "new": 0 }));

    // And should the withdrawal be missed, accepting checks the sender's rights again.
    sqlx::query("UPDATE invitations SET revoked_at = NULL WHERE email = $1").bind(&accomplice).execute(&app.inspect).await.unwrap();
    let r = accomplice_browser.call("accept_invitation", &[("token", &token)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("no longer valid"), "{}", r.error_message());
    assert_eq!(accomplice_browser.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_confirmed_people_invite_and_nobody_is_flooded_with_invitations() {
    let app = TestApp::spawn().await;
    // Someone who never confirmed their address can't make an organization...
    let stranger_email = unique("stranger");
    let stranger = app.signed_in_unconfirmed(&stranger_email).await;
    let org = [("name", "Totally Legit Bank"), ("slug", "legit"), ("region", ""), ("model", "")];
    let r = stranger.call("create_org", &org).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // ...and should they hold one while unconfirmed (made before, say), they can't send mail in
    // its name.
    sqlx::query("UPDATE users SET email_verified_at = now() WHERE email = $1").bind(&stranger_email).execute(&app.inspect).await.unwrap();
    assert!(stranger.call("create_org", &org).await.status.is_success());
    sqlx::query("UPDATE users SET email_verified_at = NULL WHERE email = $1").bind(&stranger_email).execute(&app.inspect).await.unwrap();
    let r = stranger.call("invite_member", &[("slug", "legit"), ("email", "victim@example.test"), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error_message().contains("Confirm your own email address first"), "{}", r.error_message());

    // One address gets at most five invitation mails a day from one organization (a day
    // counted from midnight UTC, so all six must fall in the same one).
    common::within_one_window(24 * 60, 120).await;
    let owner = app.owner_of("acme").await;
    let pat = unique("pat");
    let id = invite(&owner, &pat, "member").await.json()["id"].as_str().unwrap().to_string();
    for _ in 0..4 {
        assert_eq!(owner.call("resend_invitation", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::OK);
    }
    let r = owner.call("resend_invitation", &[("slug", "acme"), ("id", &id)]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error_message().contains("Try again tomorrow"), "{}", r.error_message());
    assert_eq!(invite(&owner, &unique("someone-else"), "member").await.status, StatusCode::OK, "others can still be invited");
}
