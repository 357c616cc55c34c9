//! Custom roles: an Owner defines a role from the permission catalogue and gives it like a
//! built-in one; its holder may do exactly that, in the pages, the server functions, the REST
//! API and with their API keys; nobody defines or hands out a role with rights they don't have;
//! a role in use can't be deleted.

mod common;
use common::{Browser, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Acme's owner, and two Members: Bea and Cal.
async fn acme(app: &TestApp) -> (Browser, Browser, Browser) {
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    let cal = app.signed_up("cal@example.test").await;
    owner.invite_and_accept("acme", "cal@example.test", "member", &cal).await;
    (owner, bea, cal)
}

/// Creates a role as `browser`; answers the call.
async fn define(browser: &Browser, name: &str, permissions: &[&str]) -> common::Response {
    let mut form = vec![("slug", "acme"), ("name", name), ("description", "")];
    form.extend(permissions.iter().map(|p| ("permissions[]", *p)));
    browser.call("create_role", &form).await
}

/// The id of the role called `name`, as the role picker names it (`custom:<id>`).
async fn role_key(browser: &Browser, name: &str) -> String {
    let overview = browser.call("list_roles", &[("slug", "acme")]).await.json();
    let role = overview["custom"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} in {overview}"));
    format!("custom:{}", role["id"].as_str().unwrap())
}

async fn give(browser: &Browser, app: &TestApp, email: &str, role: &str) -> common::Response {
    browser.call("change_role", &[("slug", "acme"), ("user_id", &app.user_id(email).await), ("role", role)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_defines_a_role_and_its_holder_may_do_exactly_that_everywhere() {
    let app = TestApp::spawn().await;
    let (owner, bea, _cal) = acme(&app).await;
    let r = define(&owner, "Auditor", &["ViewAudit"]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let overview = owner.call("list_roles", &[("slug", "acme")]).await.json();
    let catalogue: Vec<&str> = overview["catalogue"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(catalogue.contains(&"ViewAudit") && catalogue.contains(&"ManageRoles"));
    assert!(!catalogue.contains(&"ViewProjects"), "what everyone may do isn't a choice");
    assert!(!catalogue.contains(&"ManageSecurity") && !catalogue.contains(&"ManageOwners"), "nor what only Owners may");
    assert_eq!(overview["built_in"].as_array().map(Vec::len), Some(4));

    let auditor = role_key(&owner, "Auditor").await;
    let r = give(&owner, &app, "bea@example.test", &auditor).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let team = owner.call("list_members", &[("slug", "acme")]).await.json();
    let row = team.as_array().unwrap().iter().find(|m| m["email"] == "bea@example.test").unwrap().clone();
    assert_eq!(row["custom_role"]["name"], "Auditor", "{row}");
    let me = bea.call("my_session", &[]).await.json();
    assert_eq!(me["orgs"][0]["custom_role"], "Auditor");
    assert_eq!(bea.call("load_org", &[("slug", "acme")]).await.json()["rights"]["Custom"]["name"], "Auditor");

    // She reads the audit log, sees what everyone sees, and writes nothing.
    assert_eq!(bea.call("audit_log", &[("slug", "acme")]).await.status, StatusCode::OK);
    assert_eq!(bea.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::OK);
    let r = bea.call("create_project", &[("slug", "acme"), ("name", "Hers"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(bea.get("/t/acme/settings/audit").await.status, StatusCode::OK);
    assert_eq!(bea.call("list_webhooks", &[("slug", "acme")]).await.status, StatusCode::FORBIDDEN);
    let token = app.api_access_token("bea@example.test", PASSWORD, None).await;
    let api = reqwest::Client::new();
    let r = api.get(format!("{}/api/v1/orgs/acme/audit-events", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api.post(format!("{}/api/v1/orgs/acme/projects", app.base)).bearer_auth(&token).json(&json!({ "name": "Hers" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let trail: Vec<(String, Value)> =
        sqlx::query_as("SELECT action, changes FROM audit_log WHERE action LIKE 'role.%' OR action = 'membership.role_changed' ORDER BY seq")
            .fetch_all(&app.inspect)
            .await
            .unwrap();
    assert_eq!(trail[0].0, "role.created");
    assert_eq!(trail[0].1["permissions"]["new"], json!(["ViewAudit"]));
    assert_eq!(trail[1].0, "membership.role_changed");
    assert!(trail[1].1["role"]["new"].as_str().unwrap().ends_with("(Auditor)"), "{:?}", trail[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_defines_or_hands_out_a_role_with_rights_they_do_not_have() {
    let app = TestApp::spawn().await;
    let (owner, bea, cal) = acme(&app).await;
    assert_eq!(define(&owner, "Role keeper", &["ManageRoles", "ManageMembers", "ViewAudit"]).await.status, StatusCode::OK);
    assert_eq!(define(&owner, "Key master", &["ManageApiKeys"]).await.status, StatusCode::OK);
    let keeper = role_key(&owner, "Role keeper").await;
    assert_eq!(give(&owner, &app, "cal@example.test", &keeper).await.status, StatusCode::OK);

    // Cal may define roles, within his own rights only.
    let r = define(&cal, "Integrator", &["ManageApiKeys"]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("rights you don't have yourself"), "{}", r.body);
    assert_eq!(define(&cal, "Reader", &["ViewAudit"]).await.status, StatusCode::OK);
    let key_master = role_key(&owner, "Key master").await;
    let id = key_master.trim_start_matches("custom:");
    let r =
        cal.call("update_role", &[("slug", "acme"), ("role", id), ("name", "Key master"), ("description", ""), ("permissions[]", "ViewAudit")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "nor change one stronger than himself: {}", r.body);
    assert_eq!(cal.call("delete_role", &[("slug", "acme"), ("role", id)]).await.status, StatusCode::FORBIDDEN);
    let listed = cal.call("list_roles", &[("slug", "acme")]).await.json();
    let editable = |name: &str| listed["custom"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["can_edit"].as_bool();
    assert_eq!((editable("Key master"), editable("Reader")), (Some(false), Some(true)));

    // Nor hand one out: not a stronger custom role, not a built-in one with more.
    assert_eq!(give(&cal, &app, "bea@example.test", &key_master).await.status, StatusCode::FORBIDDEN);
    assert_eq!(give(&cal, &app, "bea@example.test", "admin").await.status, StatusCode::FORBIDDEN);
    let reader = role_key(&owner, "Reader").await;
    let r = give(&cal, &app, "bea@example.test", &reader).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "nor take one away: Bea's Member role can write, Cal can't: {}", r.body);
    assert_eq!(give(&owner, &app, "bea@example.test", "viewer").await.status, StatusCode::OK);
    assert_eq!(give(&cal, &app, "bea@example.test", &reader).await.status, StatusCode::OK, "a Viewer's rights are everyone's");
    assert_eq!(bea.call("audit_log", &[("slug", "acme")]).await.status, StatusCode::OK);

    // The built-in roles are fixed: their names are taken, and Owners' rights are no choice.
    let r = define(&owner, "admin", &["ViewAudit"]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")), "{}", r.body);
    let r = define(&owner, "Security", &["ManageSecurity"]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("permissions")), "{}", r.body);
    let r = define(&owner, "Root", &["Everything"]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("permissions")), "{}", r.body);
    let r = define(&owner, "reader", &[]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::CONFLICT, Some("name")), "names are unique whatever their case");
    // Bea (holding Reader, without the right to define roles) may define nothing.
    assert_eq!(define(&bea, "Mine", &[]).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_in_use_cannot_be_deleted_and_the_refusal_says_by_how_many() {
    let app = TestApp::spawn().await;
    let (owner, _bea, _cal) = acme(&app).await;
    assert_eq!(define(&owner, "Support", &["ViewAudit", "ManageMembers"]).await.status, StatusCode::OK);
    let support = role_key(&owner, "Support").await;
    give(&owner, &app, "bea@example.test", &support).await;
    give(&owner, &app, "cal@example.test", &support).await;
    let id = support.trim_start_matches("custom:").to_string();
    let r = owner.call("delete_role", &[("slug", "acme"), ("role", &id)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("2 members hold the Support role"), "{}", r.body);

    give(&owner, &app, "bea@example.test", "member").await;
    let r = owner.call("delete_role", &[("slug", "acme"), ("role", &id)]).await;
    assert!(r.error_message().contains("1 member holds"), "{}", r.body);
    give(&owner, &app, "cal@example.test", "viewer").await;
    assert_eq!(owner.call("delete_role", &[("slug", "acme"), ("role", &id)]).await.status, StatusCode::OK);
    assert_eq!(owner.call("list_roles", &[("slug", "acme")]).await.json()["custom"], json!([]));
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'role.deleted'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_role_changes_what_its_holders_and_their_keys_may_do_at_once() {
    let app = TestApp::spawn().await;
    let (owner, bea, _cal) = acme(&app).await;
    assert_eq!(define(&owner, "Integrator", &["ManageApiKeys", "WriteProjects"]).await.status, StatusCode::OK);
    let integrator = role_key(&owner, "Integrator").await;
    give(&owner, &app, "bea@example.test", &integrator).await;
    let r = bea.call("create_api_key", &[("slug", "acme"), ("name", "Sync"), ("expires_in_days", "1"), ("scopes[]", "projects:write")]).await;
    let key = r.json()["key"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_string();
    let api = reqwest::Client::new();
    let create =
        |name: &'static str| api.post(format!("{}/api/v1/orgs/acme/projects", app.base)).bearer_auth(&key).json(&json!({ "name": name })).send();
    assert_eq!(create("From the key").await.unwrap().status(), StatusCode::CREATED);

    let id = integrator.trim_start_matches("custom:").to_string();
    let r = owner
        .call("update_role", &[("slug", "acme"), ("role", &id), ("name", "Integrator"), ("description", ""), ("permissions[]", "ManageApiKeys")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = create("Not any more").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("who is an Integrator"), "{body}");
    let r = bea.call("create_project", &[("slug", "acme"), ("name", "By hand"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "nor in the app: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_role_holders_invite_are_protected_and_can_be_handed_ownership() {
    let app = TestApp::spawn().await;
    let (owner, bea, cal) = acme(&app).await;
    let ada = app.signed_up("ada@example.test").await;
    owner.invite_and_accept("acme", "ada@example.test", "admin", &ada).await;

    // A team lead (a custom role that manages members) invites someone, who gets in.
    assert_eq!(define(&owner, "Team lead", &["ManageMembers"]).await.status, StatusCode::OK);
    give(&owner, &app, "bea@example.test", &role_key(&owner, "Team lead").await).await;
    let dan = app.signed_up("dan@example.test").await;
    let r = bea.call("invite_member", &[("slug", "acme"), ("email", "dan@example.test"), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a Member can write; the team lead can't: {}", r.body);
    assert!(r.error_message().contains("rights you don't have yourself"), "{}", r.body);
    bea.invite_and_accept("acme", "dan@example.test", "viewer", &dan).await;
    assert_eq!(dan.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "viewer");

    // A role with a right Admins don't have (the audit log's retention is an Owner's): an Admin
    // can neither sign its holder out everywhere nor remove them.
    assert_eq!(define(&owner, "Records keeper", &["ViewAudit", "ConfigureAuditLog"]).await.status, StatusCode::OK);
    give(&owner, &app, "cal@example.test", &role_key(&owner, "Records keeper").await).await;
    let cal_id = app.user_id("cal@example.test").await;
    let r = ada.call("sign_out_member", &[("slug", "acme"), ("user_id", &cal_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(ada.call("remove_member", &[("slug", "acme"), ("user_id", &cal_id)]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(cal.call("audit_log", &[("slug", "acme")]).await.status, StatusCode::OK, "still in");

    // Handed ownership, Cal is an Owner and holds no custom role any more.
    assert_eq!(owner.call("reauthenticate", &[("password", PASSWORD)]).await.status, StatusCode::OK);
    let r = owner.call("transfer_ownership", &[("slug", "acme"), ("user_id", &cal_id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(cal.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "owner");
    assert_eq!(app.count("SELECT count(*) FROM memberships WHERE custom_role_id IS NOT NULL").await, 1, "only Bea's is left");
}
