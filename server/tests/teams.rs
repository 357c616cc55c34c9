//! Organizations, roles and the audit trail every change leaves.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_organization_makes_you_its_owner() {
    let app = TestApp::spawn().await;
    let ada = app.signed_up("ada@example.com").await;
    let r = ada.call("create_org", &[("name", "Acme Inc."), ("slug", "Acme")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers.get("location").unwrap(), "/t/acme");

    let orgs = ada.call("my_session", &[]).await.json()["orgs"].clone();
    assert_eq!(orgs[0]["slug"], "acme");
    assert_eq!(orgs[0]["role"], "owner");
    let org = ada.call("load_org", &[("slug", "acme")]).await.json();
    assert_eq!(org["name"], "Acme Inc.");
    assert_eq!(ada.call("org_overview", &[("slug", "acme")]).await.json()["member_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_slugs_are_validated_and_unique() {
    let app = TestApp::spawn().await;
    let ada = app.owner_of("acme").await;
    let r = ada.call("create_org", &[("name", "Other"), ("slug", "ACME")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_field().as_deref(), Some("slug"));
    assert!(r.error_message().contains("taken"));
    for (name, slug, field) in [("Other", "a b", "slug"), ("Other", "api", "slug"), ("   ", "fine-slug", "name")] {
        let r = ada.call("create_org", &[("name", name), ("slug", slug)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{slug}");
        assert_eq!(r.error_field().as_deref(), Some(field));
    }
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 2, "only the first organization's records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_must_log_in() {
    let app = TestApp::spawn().await;
    app.owner_of("acme").await;
    let r = app.browser().call("list_projects", &[("slug", "acme")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.browser().call("create_org", &[("name", "X"), ("slug", "xyz")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.browser().get("/t/acme/projects").await.status, StatusCode::UNAUTHORIZED);
}

/// An organization with one member per role; returns the browsers in Owner, Admin, Member, Viewer order.
async fn team(app: &TestApp) -> [common::Browser; 4] {
    let owner = app.owner_of("acme").await;
    let mut browsers = Vec::new();
    for role in ["admin", "member", "viewer"] {
        let email = format!("{role}@acme.test");
        let browser = app.signed_up(&email).await;
        owner.invite_and_accept("acme", &email, role, &browser).await;
        browsers.push(browser);
    }
    let [admin, member, viewer]: [common::Browser; 3] = browsers.try_into().ok().unwrap();
    [owner, admin, member, viewer]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_can_look_but_not_create() {
    let app = TestApp::spawn().await;
    let [owner, _, member, viewer] = team(&app).await;
    owner.add_project("acme", "Apollo").await;

    let r = viewer.call("list_projects", &[("slug", "acme")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json().as_array().unwrap().len(), 1);

    let r = viewer.call("create_project", &[("slug", "acme"), ("name", "Sneaky"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.error_message().contains("role"));
    assert_eq!(app.count("SELECT count(*) FROM projects").await, 1);

    // The UI agrees: no "New project" for a viewer, one for a member.
    let page = viewer.get("/t/acme/projects").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Apollo"), "server-rendered list");
    assert!(!page.body.contains("New project"));
    assert!(member.get("/t/acme/projects").await.body.contains("New project"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_input_is_validated_and_names_are_unique_per_organization() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "Apollo").await;
    let r = owner.call("create_project", &[("slug", "acme"), ("name", "apollo"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_field().as_deref(), Some("name"));
    let long = "x".repeat(2001);
    for (name, description, field) in [("", "", "name"), ("Fine", long.as_str(), "description")] {
        let r = owner.call("create_project", &[("slug", "acme"), ("name", name), ("description", description)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.error_field().as_deref(), Some(field));
    }
    let r = owner.call("get_project", &[("slug", "acme"), ("id", "not-a-uuid")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM projects").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_and_admins_manage_the_team_and_only_owners_hand_out_ownership() {
    let app = TestApp::spawn().await;
    let [_, admin, member, _] = team(&app).await;
    app.signed_up("newbie@acme.test").await;
    let viewer_id = app.user_id("viewer@acme.test").await;

    let r = member.call("invite_member", &[("slug", "acme"), ("email", "newbie@acme.test"), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = member.call("change_role", &[("slug", "acme"), ("user_id", &viewer_id), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = admin.call("invite_member", &[("slug", "acme"), ("email", "newbie@acme.test"), ("role", "owner")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins can't create owners");
    let r = admin.call("invite_member", &[("slug", "acme"), ("email", "newbie@acme.test"), ("role", "superuser")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field().as_deref(), Some("role"));
    let r = admin.call("invite_member", &[("slug", "acme"), ("email", "not an address"), ("role", "viewer")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
    let r = admin.call("invite_member", &[("slug", "acme"), ("email", "viewer@acme.test"), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("already a member"), "{}", r.error_message());
    assert_eq!(app.count("SELECT count(*) FROM invitations WHERE accepted_at IS NULL").await, 0, "nothing was sent");

    let owner_id = app.user_id("owner@acme.test").await;
    let r = admin.call("change_role", &[("slug", "acme"), ("user_id", &owner_id), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins can't demote owners");
    let r = admin.call("remove_member", &[("slug", "acme"), ("user_id", &owner_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = admin.call("change_role", &[("slug", "acme"), ("user_id", &viewer_id), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM memberships WHERE role = 'owner'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let app = TestApp::spawn().await;
    let [owner, ..] = team(&app).await;
    let owner_id = app.user_id("owner@acme.test").await;
    let r = owner.call("change_role", &[("slug", "acme"), ("user_id", &owner_id), ("role", "admin")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("at least one Owner"));
    let r = owner.call("remove_member", &[("slug", "acme"), ("user_id", &owner_id)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // With a second owner, the first may step down.
    let admin_id = app.user_id("admin@acme.test").await;
    assert_eq!(owner.call("change_role", &[("slug", "acme"), ("user_id", &admin_id), ("role", "owner")]).await.status, StatusCode::OK);
    let r = owner.call("change_role", &[("slug", "acme"), ("user_id", &owner_id), ("role", "admin")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM memberships WHERE role = 'owner'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_leaves_an_audit_record_with_who_what_and_where() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let bea_browser = app.signed_up("bea@acme.test").await;
    owner.add_project("acme", "Apollo").await;
    owner.invite_and_accept("acme", "bea@acme.test", "member", &bea_browser).await;
    let bea = app.user_id("bea@acme.test").await;
    owner.call("change_role", &[("slug", "acme"), ("user_id", &bea), ("role", "viewer")]).await;
    owner.call("remove_member", &[("slug", "acme"), ("user_id", &bea)]).await;

    // Team and lifecycle changes are recorded in the control plane, changes to the tenant's
    // data beside that data (here the pooled `shared` schema); together they are the history.
    // action, target, changes, ip, user agent, request id, actor's email, recorded for acme
    type AuditRow = (String, String, Value, Option<String>, Option<String>, Option<String>, Option<String>, bool);
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT a.action, a.target_id, a.changes, host(a.ip), a.user_agent, a.request_id,
                (SELECT email FROM users WHERE id = a.actor_id), a.tenant_id = t.id
           FROM (SELECT * FROM public.audit_log UNION ALL SELECT * FROM shared.audit_log) a
           JOIN tenants t ON t.slug = 'acme' ORDER BY a.occurred_at, a.action",
    )
    .fetch_all(&app.inspect)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "membership.added",
            "tenant.created",
            "project.created",
            "invitation.sent",
            // Bea's own acts: she accepted, and so joined.
            "invitation.accepted",
            "membership.added",
            "membership.role_changed",
            "membership.removed"
        ]
    );
    for (i, (action, _, _, ip, agent, request_id, actor, right_tenant)) in rows.iter().enumerate() {
        assert_eq!(ip.as_deref(), Some("127.0.0.1"), "{action}");
        assert_eq!(agent.as_deref(), Some("tessera-tests/1.0"), "{action}");
        assert!(request_id.as_ref().is_some_and(|id| id.len() >= 32), "{action} has the request id");
        let expected_actor = if i == 4 || i == 5 { "bea@acme.test" } else { "owner@acme.test" };
        assert_eq!(actor.as_deref(), Some(expected_actor), "{action} names its actor");
        assert!(right_tenant, "{action} is in the organization's trail");
    }
    assert_eq!(rows[2].2["name"]["new"], "Apollo");
    assert_eq!(rows[3].2["role"]["new"], "member");
    assert_eq!(rows[5].2["via"]["new"], "invitation");
    assert_eq!(rows[6].1, bea);
    assert_eq!(rows[6].2["role"], serde_json::json!({ "old": "member", "new": "viewer" }));

    // Refused attempts change nothing, so they write no record.
    let total = "SELECT (SELECT count(*) FROM public.audit_log) + (SELECT count(*) FROM shared.audit_log)";
    let before = app.count(total).await;
    owner.call("create_project", &[("slug", "acme"), ("name", ""), ("description", "")]).await;
    assert_eq!(app.count(total).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_organizations_takes_a_confirmed_address_and_is_limited() {
    let app = TestApp::spawn_with(|c| c.topology.dedicated_tenants_max = 1).await;
    common::within_one_window(24 * 60, 120).await;
    let fresh = app.signed_in_unconfirmed("new@example.com").await;
    let r = fresh.call("create_org", &[("name", "Spam"), ("slug", "spam")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("Confirm your email"), "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 0);

    // Databases of their own are capped for the deployment; the refusal points at the others.
    let ada = app.signed_up("ada@example.com").await;
    let r = ada.call("create_org", &[("name", "Own DB"), ("slug", "own-db"), ("model", "dedicated")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = ada.call("create_org", &[("name", "Second DB"), ("slug", "second-db"), ("model", "dedicated")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("model")), "{}", r.body);
    assert!(r.error_message().contains("own schema"), "{}", r.body);
    let offered = ada.call("org_placement_options", &[]).await.json();
    assert_eq!(offered["models"], serde_json::json!(["Pooled", "Schema"]), "a full deployment doesn't offer its own database");

    // Ten a day per person.
    for i in 2..=10 {
        let r = ada.call("create_org", &[("name", &format!("Org {i}")), ("slug", &format!("org-{i}"))]).await;
        assert_eq!(r.status, StatusCode::OK, "org {i}: {}", r.body);
    }
    let r = ada.call("create_org", &[("name", "One more"), ("slug", "one-more")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_organizations_asking_for_the_last_dedicated_database_at_once_get_one() {
    let app = TestApp::spawn_with(|c| c.topology.dedicated_tenants_max = 1).await;
    let (ada, bob) = (app.signed_up("ada@example.com").await, app.signed_up("bob@example.com").await);
    let (a, b) = tokio::join!(
        ada.call("create_org", &[("name", "Ada DB"), ("slug", "ada-db"), ("model", "dedicated")]),
        bob.call("create_org", &[("name", "Bob DB"), ("slug", "bob-db"), ("model", "dedicated")]),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY], "{} / {}", a.body, b.body);
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert!(loser.error_message().contains("no room"), "{}", loser.body);
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE model = 'dedicated'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_leave_on_their_own_and_an_owner_hands_ownership_over_after_confirming_its_them() {
    let app = TestApp::spawn_with(|c| c.reauth_window = Duration::from_secs(1)).await;
    let [owner, admin, member, _viewer] = team(&app).await;

    // A member leaves: off the team, the organization no longer opens for them, and the API
    // key they made goes with them. (Owners make keys; here the member had one from before.)
    let member_id = app.user_id("member@acme.test").await;
    assert_eq!(owner.call("reauthenticate", &[("password", common::PASSWORD)]).await.status, StatusCode::OK, "keys are made after confirming");
    let r = owner.call("create_api_key", &[("slug", "acme"), ("name", "Member's"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    sqlx::query("UPDATE api_keys SET created_by = $1::uuid").bind(&member_id).execute(&app.inspect).await.unwrap();
    let r = member.call("leave_organization", &[("slug", "acme")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 3);
    assert_eq!(member.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'membership.left'").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").await, 0, "their key was revoked");

    // The only Owner can't: someone must stay in charge.
    let r = owner.call("leave_organization", &[("slug", "acme")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("You're the only Owner"), "{}", r.body);

    // Handing ownership over: only an Owner may, and only after confirming it's them.
    let admin_id = app.user_id("admin@acme.test").await;
    let owner_id = app.user_id("owner@acme.test").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = admin.call("transfer_ownership", &[("slug", "acme"), ("user_id", &owner_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(!r.body.contains("ReauthRequired"), "an Admin is told no, not asked to confirm: {}", r.body);
    // An Owner invitation the Owner sent: after handing over, it no longer speaks for anyone.
    let r = owner.call("invite_member", &[("slug", "acme"), ("email", "next-owner@acme.test"), ("role", "owner")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = owner.call("transfer_ownership", &[("slug", "acme"), ("user_id", &admin_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("ReauthRequired"), "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM memberships WHERE role = 'owner'").await, 1, "nothing changed yet");
    assert_eq!(owner.call("reauthenticate", &[("password", common::PASSWORD)]).await.status, StatusCode::OK);
    let r = owner.call("transfer_ownership", &[("slug", "acme"), ("user_id", &admin_id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(admin.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "owner");
    assert_eq!(owner.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "admin", "the one who handed over stays as an Admin");
    let trail: Vec<Value> =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'membership.ownership_transferred'").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["new_owner"]["old"], "admin");
    assert_eq!(trail[0]["previous_owner"]["new"], "admin");
    assert_eq!(trail[0]["open_invitations"]["old"], 1, "the Owner invitation was withdrawn");
    assert_eq!(app.count("SELECT count(*) FROM invitations WHERE revoked_at IS NULL AND accepted_at IS NULL").await, 0);

    // Now the former Owner may leave.
    let r = owner.call("leave_organization", &[("slug", "acme")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(app.count("SELECT count(*) FROM memberships WHERE role = 'owner'").await, 1);
}
