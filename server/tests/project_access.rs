//! Restricted projects: only the people and groups given access see them (and Owners and
//! Admins), in the pages, the server functions, the REST API and a raw query under row-level
//! security alike; access given is audited; it goes with the group, with the member, and with a
//! key's creator's rights.

mod common;
use common::{Browser, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

/// Acme's owner, and two Members: Bea and Cal.
async fn acme(app: &TestApp) -> (Browser, Browser, Browser) {
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    let cal = app.signed_up("cal@example.test").await;
    owner.invite_and_accept("acme", "cal@example.test", "member", &cal).await;
    (owner, bea, cal)
}

/// Creates a project with `visibility` as `browser`; answers its id.
async fn project(app: &TestApp, browser: &Browser, name: &str, visibility: &str) -> String {
    let r = browser.call("create_project", &[("slug", "acme"), ("name", name), ("description", ""), ("visibility", visibility)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "create {name}: {} {}", r.status, r.body);
    app.project_id(name).await
}

async fn names(browser: &Browser) -> Vec<String> {
    let list = browser.call("list_projects", &[("slug", "acme")]).await.json();
    let mut names: Vec<String> =
        list.as_array().unwrap_or_else(|| panic!("{list}")).iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn share(browser: &Browser, project: &str, grantee: &str, role: &str) -> common::Response {
    browser.call("share_project", &[("slug", "acme"), ("id", project), ("grantee", grantee), ("project_role", role)]).await
}

/// What a raw query as the app role sees of `project` and its documents, for `user` in Acme
/// (`sees_all`: as the door says for Owners and Admins). Row-level security alone decides.
async fn raw_counts(app: &TestApp, user: &str, sees_all: bool, project: &str) -> (i64, i64) {
    let tenant = app.tenant_id("acme").await;
    let mut conn = app.app_conn_for("acme").await;
    let mut tx = conn.begin().await.unwrap();
    let settings = format!(
        "SET LOCAL app.tenant_id = '{tenant}'; SET LOCAL app.user_id = '{user}'; SET LOCAL app.sees_all = '{}'",
        if sees_all { "on" } else { "off" }
    );
    sqlx::raw_sql(&settings).execute(&mut *tx).await.unwrap();
    let id: uuid::Uuid = project.parse().unwrap();
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE id = $1").bind(id).fetch_one(&mut *tx).await.unwrap();
    let documents: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE project_id = $1").bind(id).fetch_one(&mut *tx).await.unwrap();
    // Nor can a raw change reach what it can't see.
    let changed = sqlx::query("UPDATE projects SET name = 'Taken' WHERE id = $1").bind(id).execute(&mut *tx).await.unwrap().rows_affected();
    assert_eq!(changed as i64, projects, "a raw UPDATE reaches exactly what a SELECT sees");
    tx.rollback().await.unwrap();
    (projects, documents)
}

/// A call that went through (a form's redirect, or an answer).
fn done(r: &common::Response) -> bool {
    r.status.is_success() || r.status.is_redirection()
}

async fn write_document(browser: &Browser, project: &str, title: &str) -> common::Response {
    browser.call("create_document", &[("slug", "acme"), ("project", project), ("title", title), ("body", "")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_project_is_invisible_to_a_member_without_a_grant_until_shared() {
    let app = TestApp::spawn().await;
    let (owner, bea, cal) = acme(&app).await;
    let secret = project(&app, &owner, "Secret", "restricted").await;
    project(&app, &owner, "Open", "").await;
    assert!(done(&write_document(&owner, &secret, "Plans").await));
    let (bea_id, cal_id) = (app.user_id("bea@example.test").await, app.user_id("cal@example.test").await);

    // Not a grant, not there: the list, the page, every call, the API and a raw query.
    assert_eq!(names(&bea).await, ["Open"]);
    assert_eq!(names(&owner).await, ["Open", "Secret"], "Owners see every project");
    assert_eq!(bea.call("get_project", &[("slug", "acme"), ("id", &secret)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bea.call("list_documents", &[("slug", "acme"), ("project", &secret)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(write_document(&bea, &secret, "Mine").await.status, StatusCode::NOT_FOUND);
    assert_eq!(bea.call("get_project_access", &[("slug", "acme"), ("id", &secret)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bea.get(&format!("/t/acme/projects/{secret}")).await.status, StatusCode::NOT_FOUND);
    let token = app.api_access_token("bea@example.test", PASSWORD, None).await;
    let api = reqwest::Client::new();
    let r = api.get(format!("{}/api/v1/orgs/acme/projects/{secret}", app.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let listed: Value = api.get(format!("{}/api/v1/orgs/acme/projects", app.base)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(raw_counts(&app, &bea_id, false, &secret).await, (0, 0), "row-level security hides it, not only the code");
    assert_eq!(raw_counts(&app, "", false, &secret).await, (0, 0), "nobody named: nothing restricted");
    assert_eq!(raw_counts(&app, &bea_id, true, &secret).await, (1, 1));

    // Shared with Bea to read: she sees it and its documents, and can't write there.
    let r = share(&owner, &secret, &format!("user:{bea_id}"), "viewer").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let access = r.json();
    assert_eq!(access["visibility"], "restricted");
    assert_eq!(access["grants"][0]["grantee"]["email"], "bea@example.test");
    assert_eq!(access["grants"][0]["role"], "viewer");
    assert_eq!(names(&bea).await, ["Open", "Secret"]);
    let seen = bea.call("get_project", &[("slug", "acme"), ("id", &secret)]).await.json();
    assert_eq!(
        (seen["your_grant"].as_str(), seen["can_change"].as_bool(), seen["can_write_documents"].as_bool()),
        (Some("viewer"), Some(false), Some(false))
    );
    assert_eq!(bea.call("list_documents", &[("slug", "acme"), ("project", &secret)]).await.json()["documents"].as_array().map(Vec::len), Some(1));
    let r = write_document(&bea, &secret, "Mine").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("A project admin can make you an editor"), "{}", r.body);
    assert_eq!(raw_counts(&app, &bea_id, false, &secret).await, (1, 1));
    assert_eq!(raw_counts(&app, &cal_id, false, &secret).await, (0, 0), "only Bea was given access");
    assert_eq!(names(&cal).await, ["Open"]);
    // She may look at who has access, not change it.
    assert_eq!(bea.call("get_project_access", &[("slug", "acme"), ("id", &secret)]).await.json()["can_share"], false);
    assert_eq!(share(&bea, &secret, &format!("user:{cal_id}"), "viewer").await.status, StatusCode::FORBIDDEN);

    // Made an editor: she writes there, and changes what others wrote.
    assert_eq!(share(&owner, &secret, &format!("user:{bea_id}"), "editor").await.status, StatusCode::OK);
    assert!(done(&write_document(&bea, &secret, "Mine").await));
    let plans = bea.call("list_documents", &[("slug", "acme"), ("project", &secret)]).await.json();
    assert_eq!(plans["can_write"], true);
    let plans = plans["documents"].as_array().unwrap().iter().find(|d| d["title"] == "Plans").unwrap()["id"].as_str().unwrap().to_string();
    let r = bea.call("update_document", &[("slug", "acme"), ("project", &secret), ("id", &plans), ("title", "Plans, edited"), ("body", "")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(bea.call("delete_project", &[("slug", "acme"), ("id", &secret)]).await.status, StatusCode::FORBIDDEN, "an editor isn't its admin");

    // Taken away: gone again at once.
    let grant = share(&owner, &secret, &format!("user:{bea_id}"), "editor").await.json()["grants"][0]["id"].as_str().unwrap().to_string();
    let r = owner.call("unshare_project", &[("slug", "acme"), ("id", &secret), ("grant", &grant)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(owner.call("get_project_access", &[("slug", "acme"), ("id", &secret)]).await.json()["grants"], json!([]));
    assert_eq!(names(&bea).await, ["Open"]);
    assert_eq!(raw_counts(&app, &bea_id, false, &secret).await, (0, 0));
    let r = owner.call("unshare_project", &[("slug", "acme"), ("id", &secret), ("grant", &grant)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "twice: already removed");

    let trail: Vec<String> = app.trail(&secret).await.into_iter().map(|(action, _)| action).collect();
    assert_eq!(trail, ["project.created", "project.access_granted", "project.access_changed", "project.access_revoked"]);
    let granted = &app.trail(&secret).await[1].1;
    assert_eq!(granted["grantee"]["new"], format!("user:{bea_id}"));
    assert_eq!(granted["role"]["new"], "viewer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_grant_gives_its_members_access_and_goes_with_the_group() {
    let app = TestApp::spawn().await;
    let (owner, bea, cal) = acme(&app).await;
    let secret = project(&app, &owner, "Secret", "restricted").await;
    let (bea_id, cal_id) = (app.user_id("bea@example.test").await, app.user_id("cal@example.test").await);

    let r = owner.call("create_group", &[("slug", "acme"), ("name", "Design"), ("description", "The design team"), ("idp_group", "")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let group = r.json()["id"].as_str().unwrap().to_string();
    let r = owner.call("create_group", &[("slug", "acme"), ("name", "design"), ("description", ""), ("idp_group", "")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::CONFLICT, Some("name")), "names are unique whatever their case");
    let r = owner.call("add_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &bea_id)]).await;
    assert_eq!(r.json()["members"][0]["email"], "bea@example.test", "{}", r.body);
    let stranger = app.signed_up("stranger@example.test").await;
    drop(stranger);
    let r = owner.call("add_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &app.user_id("stranger@example.test").await)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "only members join groups: {}", r.body);
    // Members may see the groups, not change them.
    assert_eq!(cal.call("list_groups", &[("slug", "acme")]).await.json()[0]["name"], "Design");
    assert_eq!(cal.call("add_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &cal_id)]).await.status, StatusCode::FORBIDDEN);

    let r = share(&owner, &secret, &format!("group:{group}"), "editor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["grants"][0]["grantee"]["members"], 1);
    // The group's project count is of the projects the asker sees: Cal, outside it, sees none.
    assert_eq!(owner.call("list_groups", &[("slug", "acme")]).await.json()[0]["projects"], 1);
    assert_eq!(cal.call("list_groups", &[("slug", "acme")]).await.json()[0]["projects"], 0);
    assert_eq!(names(&bea).await, ["Secret"]);
    assert!(done(&write_document(&bea, &secret, "From Design").await), "the group's role is hers");
    assert_eq!(names(&cal).await, Vec::<String>::new());
    assert_eq!(raw_counts(&app, &bea_id, false, &secret).await, (1, 1));
    assert_eq!(raw_counts(&app, &cal_id, false, &secret).await, (0, 0));

    // Her own grant and the group's: the stronger wins; out of the group, her own is left.
    share(&owner, &secret, &format!("user:{bea_id}"), "viewer").await;
    assert_eq!(bea.call("get_project", &[("slug", "acme"), ("id", &secret)]).await.json()["your_grant"], "editor");
    let r = owner.call("remove_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &bea_id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(bea.call("get_project", &[("slug", "acme"), ("id", &secret)]).await.json()["your_grant"], "viewer");
    owner.call("add_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &cal_id)]).await;
    assert_eq!(names(&cal).await, ["Secret"]);

    // The group deleted: its grant goes with it, and Cal's access.
    let r = owner.call("delete_group", &[("slug", "acme"), ("group", &group)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&cal).await, Vec::<String>::new());
    assert_eq!(app.count("SELECT count(*) FROM shared.project_grants WHERE group_id IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM shared.group_members").await, 0);
    let deleted: Vec<(String, Value)> = app.trail(&group).await;
    assert_eq!(deleted.last().unwrap().0, "group.deleted");
    assert_eq!(deleted.last().unwrap().1["project_grants"]["old"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_creates_a_restricted_project_is_its_admin_but_cannot_restrict_an_open_one() {
    let app = TestApp::spawn().await;
    let (owner, bea, cal) = acme(&app).await;
    let (bea_id, cal_id) = (app.user_id("bea@example.test").await, app.user_id("cal@example.test").await);

    // Her open project holds Cal's work: restricting it (or making herself its admin) would give
    // her rights over what he wrote, so only an admin may.
    let open = project(&app, &bea, "Bea's plan", "").await;
    assert!(done(&write_document(&cal, &open, "Cal's notes").await));
    let r = bea.call("set_project_visibility", &[("slug", "acme"), ("id", &open), ("visibility", "restricted")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("project's admins"), "{}", r.body);
    assert_eq!(
        share(&bea, &open, &format!("user:{bea_id}"), "admin").await.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nobody changes their own access"
    );
    assert_eq!(share(&bea, &open, &format!("user:{cal_id}"), "viewer").await.status, StatusCode::FORBIDDEN);
    assert_eq!(names(&cal).await, ["Bea's plan"]);

    // A project she creates restricted is hers to open up: she is its admin from the start.
    let private = project(&app, &bea, "Bea's draft", "restricted").await;
    let access = bea.call("get_project_access", &[("slug", "acme"), ("id", &private)]).await.json();
    assert_eq!((access["grants"][0]["grantee"]["email"].as_str(), access["grants"][0]["role"].as_str()), (Some("bea@example.test"), Some("admin")));
    assert_eq!(access["can_share"], true);
    assert_eq!(names(&cal).await, ["Bea's plan"], "not Cal's to see");
    assert_eq!(names(&owner).await, ["Bea's draft", "Bea's plan"], "Owners see every project");
    let r = cal.call("set_project_visibility", &[("slug", "acme"), ("id", &private), ("visibility", "organization")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "what Cal can't see, he can't open either");

    assert_eq!(share(&bea, &private, &format!("user:{cal_id}"), "viewer").await.status, StatusCode::OK);
    assert_eq!(names(&cal).await, ["Bea's draft", "Bea's plan"]);
    let r = share(&bea, &private, "user:00000000-0000-0000-0000-000000000001", "viewer").await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("grantee")), "{}", r.body);
    let r = share(&bea, &private, &format!("user:{cal_id}"), "owner").await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("role")), "{}", r.body);
    let r = share(&bea, &private, "everyone", "viewer").await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("grantee")), "{}", r.body);
    let r = bea.call("set_project_visibility", &[("slug", "acme"), ("id", &private), ("visibility", "secret")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("visibility")));

    // Opened, everyone sees it; the grants stay for when it is restricted again.
    let r = bea.call("set_project_visibility", &[("slug", "acme"), ("id", &private), ("visibility", "organization")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["grants"].as_array().map(Vec::len), Some(2));
    let r = bea.call("set_project_visibility", &[("slug", "acme"), ("id", &private), ("visibility", "restricted")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let changes: Vec<Value> = app.trail(&private).await.into_iter().filter(|(a, _)| a == "project.visibility_changed").map(|(_, c)| c).collect();
    assert_eq!(changes[0]["visibility"], json!({ "old": "restricted", "new": "organization" }));
    assert_eq!(changes[1]["visibility"], json!({ "old": "organization", "new": "restricted" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_sees_no_more_than_its_creator_does_now() {
    let app = TestApp::spawn().await;
    let (owner, _bea, _cal) = acme(&app).await;
    let ada = app.signed_up("ada@example.test").await;
    owner.invite_and_accept("acme", "ada@example.test", "admin", &ada).await;
    let secret = project(&app, &owner, "Secret", "restricted").await;
    project(&app, &owner, "Open", "").await;
    let r = ada
        .call(
            "create_api_key",
            &[("slug", "acme"), ("name", "Sync"), ("expires_in_days", "1"), ("scopes[]", "projects:read"), ("scopes[]", "projects:write")],
        )
        .await;
    let key = r.json()["key"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_string();
    let api = reqwest::Client::new();
    let get = |id: String| api.get(format!("{}/api/v1/orgs/acme/projects/{id}", app.base)).bearer_auth(&key).send();
    assert_eq!(get(secret.clone()).await.unwrap().status(), StatusCode::OK, "Ada is an Admin: she sees every project");

    // Ada demoted to Member: her key loses the restricted project at once.
    let ada_id = app.user_id("ada@example.test").await;
    assert!(owner.call("change_role", &[("slug", "acme"), ("user_id", &ada_id), ("role", "member")]).await.status.is_success());
    assert_eq!(get(secret.clone()).await.unwrap().status(), StatusCode::NOT_FOUND);
    let listed: Value = api.get(format!("{}/api/v1/orgs/acme/projects", app.base)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect::<Vec<_>>(), ["Open"]);
    let r = api
        .put(format!("{}/api/v1/orgs/acme/projects/{secret}/visibility", app.base))
        .bearer_auth(&key)
        .json(&json!({ "visibility": "organization" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "nor can it open what it can't see");

    // Given access as a viewer, the key reads it again and still can't change it.
    share(&owner, &secret, &format!("user:{ada_id}"), "viewer").await;
    assert_eq!(get(secret.clone()).await.unwrap().status(), StatusCode::OK);
    let r = api
        .patch(format!("{}/api/v1/orgs/acme/projects/{secret}", app.base))
        .bearer_auth(&key)
        .json(&json!({ "name": "Renamed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("rights of the person who made it"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_over_rest_lists_grants_restricts_and_takes_access_away() {
    let app = TestApp::spawn().await;
    let (owner, bea, _cal) = acme(&app).await;
    let plan = project(&app, &owner, "Plan", "").await;
    let bea_id = app.user_id("bea@example.test").await;
    let token = app.api_access_token("owner@acme.test", PASSWORD, None).await;
    let api = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1/orgs/acme/projects/{plan}{path}", app.base);

    let r = api.put(url("/visibility")).bearer_auth(&token).json(&json!({ "visibility": "restricted" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(names(&bea).await, Vec::<String>::new());
    let r =
        api.post(url("/access")).bearer_auth(&token).json(&json!({ "grantee": format!("user:{bea_id}"), "role": "editor" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let access: Value = r.json().await.unwrap();
    assert_eq!((access["grants"][0]["grantee"]["type"].as_str(), access["grants"][0]["role"].as_str()), (Some("member"), Some("editor")));
    assert_eq!(names(&bea).await, ["Plan"]);
    let listed: Value = api.get(url("/access")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, access);

    // Wrong bodies are refused with what to fix, and change nothing.
    let r = api.post(url("/access")).bearer_auth(&token).json(&json!({ "grantee": format!("user:{bea_id}"), "role": "owner" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = api.post(url("/access")).bearer_auth(&token).json(&json!({ "grantee": "bea", "role": "viewer" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r =
        api.post(url("/access")).bearer_auth(&token).json(&json!({ "grantee": format!("group:{bea_id}"), "role": "viewer" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "no such group");
    assert_eq!(bea.call("get_project", &[("slug", "acme"), ("id", &plan)]).await.json()["your_grant"], "editor");

    let grant = access["grants"][0]["id"].as_str().unwrap();
    let r = api.delete(url(&format!("/access/{grant}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(names(&bea).await, Vec::<String>::new());
    let r = api.delete(url(&format!("/access/{grant}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_organization_takes_a_members_grants_and_groups_with_them() {
    let app = TestApp::spawn().await;
    let (owner, bea, _cal) = acme(&app).await;
    let secret = project(&app, &owner, "Secret", "restricted").await;
    let bea_id = app.user_id("bea@example.test").await;
    share(&owner, &secret, &format!("user:{bea_id}"), "admin").await;
    let group = owner.call("create_group", &[("slug", "acme"), ("name", "Ops"), ("description", ""), ("idp_group", "")]).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner.call("add_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &bea_id)]).await;
    assert_eq!(names(&bea).await, ["Secret"]);

    assert!(owner.call("remove_member", &[("slug", "acme"), ("user_id", &bea_id)]).await.status.is_success());
    let gone = format!("SELECT count(*) FROM shared.project_grants WHERE user_id = '{bea_id}'");
    let left = format!("SELECT count(*) FROM shared.group_members WHERE user_id = '{bea_id}'");
    for _ in 0..100 {
        if app.count(&gone).await + app.count(&left).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!((app.count(&gone).await, app.count(&left).await), (0, 0), "her grants and groups went with her");

    // Invited back, she starts with what the organization gives everyone, not her old access.
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    assert_eq!(names(&bea).await, Vec::<String>::new());
    let trail = app.trail(&bea_id).await;
    assert!(trail.iter().any(|(action, changes)| action == "member.access_removed" && changes["project_grants"]["old"] == 1), "{trail:?}");
}
