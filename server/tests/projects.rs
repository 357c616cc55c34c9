//! People change and delete projects: Members their own, Admins and Owners any, Viewers none;
//! every change is in the audit trail with what it was before; the REST API does the same.

mod common;
use common::{Browser, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Acme's owner, a Member (Bea) and a Viewer (Vic), and a project each of the first two made.
async fn acme_team(app: &TestApp) -> (Browser, Browser, Browser) {
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    let vic = app.signed_up("vic@example.test").await;
    owner.invite_and_accept("acme", "vic@example.test", "viewer", &vic).await;
    owner.add_project("acme", "Owner's plan").await;
    bea.add_project("acme", "Bea's plan").await;
    (owner, bea, vic)
}

async fn id_of(browser: &Browser, name: &str) -> String {
    let list = browser.call("list_projects", &[("slug", "acme")]).await.json();
    list.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} in {list}"))["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_renames_their_project_and_the_trail_shows_before_and_after() {
    let app = TestApp::spawn().await;
    let (_owner, bea, _vic) = acme_team(&app).await;
    let id = id_of(&bea, "Bea's plan").await;

    let r = bea.call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Bea's better plan"), ("description", "Now with goals")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let project = bea.call("get_project", &[("slug", "acme"), ("id", &id)]).await.json();
    assert_eq!(
        (project["name"].as_str(), project["description"].as_str(), project["can_change"].as_bool()),
        (Some("Bea's better plan"), Some("Now with goals"), Some(true))
    );

    // Saving it unchanged records nothing.
    let r = bea.call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Bea's better plan"), ("description", "Now with goals")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let trail = app.trail(&id).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[1].0, "project.updated");
    assert_eq!(
        trail[1].1,
        json!({ "name": { "old": "Bea's plan", "new": "Bea's better plan" }, "description": { "old": "", "new": "Now with goals" } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_change_someone_elses_project_and_a_viewer_none() {
    let app = TestApp::spawn().await;
    let (owner, bea, vic) = acme_team(&app).await;
    let owners = id_of(&owner, "Owner's plan").await;
    let beas = id_of(&owner, "Bea's plan").await;

    let listed = bea.call("list_projects", &[("slug", "acme")]).await.json();
    let can_change = |name: &str| listed.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["can_change"].as_bool();
    assert_eq!((can_change("Owner's plan"), can_change("Bea's plan")), (Some(false), Some(true)));

    let r = bea.call("update_project", &[("slug", "acme"), ("id", &owners), ("name", "Mine now"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("projects you created"), "{}", r.body);
    assert_eq!(bea.call("delete_project", &[("slug", "acme"), ("id", &owners)]).await.status, StatusCode::FORBIDDEN);
    for id in [&owners, &beas] {
        assert_eq!(
            vic.call("update_project", &[("slug", "acme"), ("id", id), ("name", "Viewed"), ("description", "")]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(vic.call("delete_project", &[("slug", "acme"), ("id", id)]).await.status, StatusCode::FORBIDDEN);
    }
    // A Viewer's project page offers neither.
    let page = vic.get(&format!("/t/acme/projects/{beas}")).await;
    assert!(page.body.contains("Bea&#x27;s plan") || page.body.contains("Bea's plan"), "{}", page.body);
    assert!(!page.body.contains("edit-project") && !page.body.contains("Delete project"));
    let edit = vic.get(&format!("/t/acme/projects/{beas}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("You can&#x27;t change this project") || edit.body.contains("You can't change this project"), "{}", edit.body);
    assert!(!edit.body.contains("Save changes"), "nor an edit form");
    // The owner changes anyone's.
    let r = owner.call("update_project", &[("slug", "acme"), ("id", &beas), ("name", "Bea's plan"), ("description", "Reviewed")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert!(owner.get(&format!("/t/acme/projects/{beas}")).await.body.contains("edit-project"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_are_refused_with_the_field_to_fix_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (owner, _bea, _vic) = acme_team(&app).await;
    let id = id_of(&owner, "Bea's plan").await;

    let r = owner.call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Owner's plan"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_field().as_deref(), Some("name"));
    let r = owner.call("update_project", &[("slug", "acme"), ("id", &id), ("name", "   "), ("description", "")]).await;
    assert!(r.status.is_client_error() && r.error_field().as_deref() == Some("name"), "{} {}", r.status, r.body);
    for missing in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        assert_eq!(
            owner.call("update_project", &[("slug", "acme"), ("id", missing), ("name", "X"), ("description", "")]).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(owner.call("delete_project", &[("slug", "acme"), ("id", missing)]).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.trail(&id).await.len(), 1, "only its creation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_project_is_gone_and_the_trail_keeps_what_it_was() {
    let app = TestApp::spawn().await;
    let (_owner, bea, _vic) = acme_team(&app).await;
    let id = id_of(&bea, "Bea's plan").await;

    let r = bea.call("delete_project", &[("slug", "acme"), ("id", &id)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(bea.call("get_project", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(bea.call("delete_project", &[("slug", "acme"), ("id", &id)]).await.status, StatusCode::NOT_FOUND, "deleting twice finds nothing");
    let trail = app.trail(&id).await;
    assert_eq!(trail.last().unwrap(), &("project.deleted".to_string(), json!({ "name": { "old": "Bea's plan" }, "description": { "old": "" } })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_changes_and_deletes_with_the_write_scope_only() {
    let app = TestApp::spawn().await;
    let (owner, _bea, _vic) = acme_team(&app).await;
    let id = id_of(&owner, "Bea's plan").await;
    let key = |scopes: &[(&'static str, &'static str)]| {
        let owner = owner.clone();
        let mut form = vec![("slug", "acme"), ("name", "Key"), ("expires_in_days", "1")];
        form.extend_from_slice(scopes);
        async move { owner.call("create_api_key", &form).await.json()["key"].as_str().unwrap().to_string() }
    };
    let reader = key(&[("scopes[]", "projects:read")]).await;
    let writer = key(&[("scopes[]", "projects:read"), ("scopes[]", "projects:write")]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/orgs/acme/projects/{id}", app.base);

    let r = client.patch(&url).bearer_auth(&reader).json(&json!({ "description": "By key" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "description": "By key" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let project: Value = r.json().await.unwrap();
    assert_eq!((project["name"].as_str(), project["description"].as_str()), (Some("Bea's plan"), Some("By key")), "the name is kept");
    // A key that may write but not read gets what it wrote back, not a refusal after the fact.
    let write_only = key(&[("scopes[]", "projects:write")]).await;
    let r = client.patch(&url).bearer_auth(&write_only).json(&json!({ "description": "Write only" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["description"], "Write only");
    let r = client
        .post(format!("{}/api/v1/orgs/acme/projects", app.base))
        .bearer_auth(&write_only)
        .json(&json!({ "name": "By a writer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "By a writer");
    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "owner": "me" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "unknown fields are refused");

    assert_eq!(client.delete(&url).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(client.delete(&url).bearer_auth(&writer).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(client.get(&url).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edit_form_comes_filled_in_from_the_server_and_a_stale_one_is_refused() {
    let app = TestApp::spawn().await;
    let (owner, bea, _vic) = acme_team(&app).await;
    let id = id_of(&bea, "Bea's plan").await;
    let r = bea.call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Bea's plan"), ("description", "Line one\nLine two")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);

    // Before the app loads (or without it), the form already holds the project as it is, line
    // breaks and all: sending it back unchanged changes nothing.
    let form = bea.get(&format!("/t/acme/projects/{id}/edit")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"name="name""#) && form.body.contains("value=\"Bea"), "{}", form.body);
    assert!(form.body.contains(">Line one\nLine two</textarea>"), "{}", form.body);
    let seen = bea.call("get_project", &[("slug", "acme"), ("id", &id)]).await.json()["updated_at"].as_str().unwrap().to_string();

    // The owner saves a change first; Bea's form, filled before it, would undo it: refused.
    let r = owner
        .call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Bea's plan"), ("description", "Reviewed"), ("updated_at", &seen)])
        .await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let r = bea
        .call("update_project", &[("slug", "acme"), ("id", &id), ("name", "Bea's plan v2"), ("description", "Line one"), ("updated_at", &seen)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("changed this project since you opened it"), "{}", r.body);
    let project = bea.call("get_project", &[("slug", "acme"), ("id", &id)]).await.json();
    assert_eq!((project["name"].as_str(), project["description"].as_str()), (Some("Bea's plan"), Some("Reviewed")));
}
