//! Documents inside projects: Viewers read them, Members write them and change their own,
//! Admins and Owners any; every change is in the audit trail with what it was before; they stay
//! in their project and go with it; the REST API does the same under the documents scopes.

mod common;
use common::{Browser, Response, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Acme's owner, a Member (Bea) and a Viewer (Vic), and the project "Handbook" with one
/// document by the owner and one by Bea. Returns the project's id too.
async fn acme_team(app: &TestApp) -> (Browser, Browser, Browser, String) {
    let owner = app.owner_of("acme").await;
    let bea = app.signed_up("bea@example.test").await;
    owner.invite_and_accept("acme", "bea@example.test", "member", &bea).await;
    let vic = app.signed_up("vic@example.test").await;
    owner.invite_and_accept("acme", "vic@example.test", "viewer", &vic).await;
    owner.add_project("acme", "Handbook").await;
    let project = app.project_id("Handbook").await;
    ok(owner.call("create_document", &[("slug", "acme"), ("project", &project), ("title", "Holidays"), ("body", "Ask first.")]).await);
    ok(bea.call("create_document", &[("slug", "acme"), ("project", &project), ("title", "On call"), ("body", "Line one\nLine two")]).await);
    (owner, bea, vic, project)
}

fn ok(r: Response) {
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
}

async fn document(browser: &Browser, project: &str, title: &str) -> Value {
    let list = browser.call("list_documents", &[("slug", "acme"), ("project", project)]).await.json()["documents"].clone();
    list.as_array().unwrap_or_else(|| panic!("{list}")).iter().find(|d| d["title"] == title).unwrap_or_else(|| panic!("{title} in {list}")).clone()
}

async fn id_of(browser: &Browser, project: &str, title: &str) -> String {
    document(browser, project, title).await["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_writes_a_document_edits_it_and_the_trail_shows_before_and_after() {
    let app = TestApp::spawn().await;
    let (_owner, bea, _vic, project) = acme_team(&app).await;
    let id = id_of(&bea, &project, "On call").await;
    let written = bea.call("get_document", &[("slug", "acme"), ("project", &project), ("id", &id)]).await.json();
    assert_eq!(
        (written["body"].as_str(), written["created_by"].as_str(), written["can_change"].as_bool()),
        (Some("Line one\nLine two"), Some("bea@example.test"), Some(true))
    );

    let r = bea
        .call("update_document", &[("slug", "acme"), ("project", &project), ("id", &id), ("title", "On-call rota"), ("body", "Line one\nLine two")])
        .await;
    ok(r);
    // Saving it unchanged records nothing.
    ok(bea
        .call("update_document", &[("slug", "acme"), ("project", &project), ("id", &id), ("title", "On-call rota"), ("body", "Line one\nLine two")])
        .await);
    let trail = app.trail(&id).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert_eq!(trail[0].0, "document.created");
    assert_eq!(trail[0].1["title"], json!({ "new": "On call" }));
    assert_eq!(trail[1], ("document.updated".to_string(), json!({ "title": { "old": "On call", "new": "On-call rota" } })), "only what changed");

    // The server renders the page with the text as written, line breaks kept for display.
    let page = bea.get(&format!("/t/acme/projects/{project}/documents/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("On-call rota") && page.body.contains("Line one\nLine two") && page.body.contains("edit-document"), "{}", page.body);
    let form = bea.get(&format!("/t/acme/projects/{project}/documents/{id}/edit")).await;
    assert!(form.body.contains(">Line one\nLine two</textarea>") && form.body.contains("value=\"On-call rota\""), "{}", form.body);
    // The project's page lists it.
    let listing = bea.get(&format!("/t/acme/projects/{project}")).await;
    assert!(listing.body.contains("On-call rota") && listing.body.contains("new-document"), "{}", listing.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_documents_and_members_change_only_their_own() {
    let app = TestApp::spawn().await;
    let (owner, bea, vic, project) = acme_team(&app).await;
    let owners = id_of(&owner, &project, "Holidays").await;
    let beas = id_of(&owner, &project, "On call").await;

    // Vic reads everything and may change nothing; the pages offer nothing to change.
    assert_eq!(document(&vic, &project, "Holidays").await["can_change"], false);
    let may_write = |b: &Browser| {
        let (b, project) = (b.clone(), project.clone());
        async move { b.call("list_documents", &[("slug", "acme"), ("project", &project)]).await.json()["can_write"].as_bool() }
    };
    assert_eq!((may_write(&vic).await, may_write(&bea).await), (Some(false), Some(true)));
    let r = vic.call("create_document", &[("slug", "acme"), ("project", &project), ("title", "Mine"), ("body", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    for id in [&owners, &beas] {
        let r = vic.call("update_document", &[("slug", "acme"), ("project", &project), ("id", id), ("title", "Viewed"), ("body", "")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(vic.call("delete_document", &[("slug", "acme"), ("project", &project), ("id", id)]).await.status, StatusCode::FORBIDDEN);
    }
    let page = vic.get(&format!("/t/acme/projects/{project}/documents/{beas}")).await;
    assert!(page.body.contains("On call") && !page.body.contains("edit-document") && !page.body.contains("Delete document"), "{}", page.body);
    assert!(!vic.get(&format!("/t/acme/projects/{project}")).await.body.contains("new-document"));
    let edit = vic.get(&format!("/t/acme/projects/{project}/documents/{beas}/edit")).await;
    assert!(!edit.body.contains("Save changes") && edit.body.contains("change this document"), "{}", edit.body);

    // Bea changes her own, not the owner's; the owner changes anyone's.
    assert_eq!(document(&bea, &project, "Holidays").await["can_change"], false);
    let r = bea.call("update_document", &[("slug", "acme"), ("project", &project), ("id", &owners), ("title", "Mine now"), ("body", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("documents you created"), "{}", r.body);
    assert_eq!(bea.call("delete_document", &[("slug", "acme"), ("project", &project), ("id", &owners)]).await.status, StatusCode::FORBIDDEN);
    ok(owner.call("update_document", &[("slug", "acme"), ("project", &project), ("id", &beas), ("title", "On call"), ("body", "Reviewed")]).await);
    let reviewed = document(&bea, &project, "On call").await;
    assert_eq!((reviewed["updated_by"].as_str(), reviewed["created_by"].as_str()), (Some("owner@acme.test"), Some("bea@example.test")), "{reviewed}");
    assert_eq!(app.trail(&owners).await.len(), 1, "the refused attempts changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_stay_in_their_project_and_go_with_it() {
    let app = TestApp::spawn().await;
    let (owner, bea, _vic, project) = acme_team(&app).await;
    let id = id_of(&owner, &project, "Holidays").await;
    owner.add_project("acme", "Elsewhere").await;
    let elsewhere = app.project_id("Elsewhere").await;

    // Asked for through another project, it isn't there.
    let r = owner.call("get_document", &[("slug", "acme"), ("project", &elsewhere), ("id", &id)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = owner.call("update_document", &[("slug", "acme"), ("project", &elsewhere), ("id", &id), ("title", "Moved"), ("body", "")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    for missing in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        let r = owner.call("create_document", &[("slug", "acme"), ("project", missing), ("title", "Lost"), ("body", "")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert!(r.error_message().contains("project doesn't exist"), "{}", r.body);
        assert_eq!(owner.call("list_documents", &[("slug", "acme"), ("project", missing)]).await.status, StatusCode::NOT_FOUND);
    }

    // A project's documents go with it, each recorded; a Member can't take other people's
    // documents with her own project.
    bea.add_project("acme", "Bea's notes").await;
    let beas = app.project_id("Bea's notes").await;
    ok(owner.call("create_document", &[("slug", "acme"), ("project", &beas), ("title", "Owner's note"), ("body", "")]).await);
    let r = bea.call("delete_project", &[("slug", "acme"), ("id", &beas)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.error_message().contains("documents other people wrote"), "{}", r.body);
    let on_call = id_of(&owner, &project, "On call").await;
    ok(owner.call("delete_project", &[("slug", "acme"), ("id", &project)]).await);
    assert_eq!(app.count("SELECT count(*) FROM shared.documents").await, 1, "only Bea's project's document is left");
    for (id, title) in [(&id, "Holidays"), (&on_call, "On call")] {
        let (action, changes) = app.trail(id).await.pop().unwrap();
        assert_eq!((action.as_str(), &changes["title"]), ("document.deleted", &json!({ "old": title })));
    }
    // Bea's project holding only her own documents goes, documents and all.
    bea.add_project("acme", "Bea's scratch").await;
    let scratch = app.project_id("Bea's scratch").await;
    ok(bea.call("create_document", &[("slug", "acme"), ("project", &scratch), ("title", "Mine"), ("body", "")]).await);
    ok(bea.call("delete_project", &[("slug", "acme"), ("id", &scratch)]).await);
    let project_trail = app.trail(&project).await;
    assert_eq!(project_trail.last().unwrap().1["documents"], json!({ "old": 2 }));
    assert_eq!(owner.call("list_documents", &[("slug", "acme"), ("project", &project)]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_and_stale_edits_are_refused_with_the_field_to_fix() {
    let app = TestApp::spawn().await;
    let (owner, bea, _vic, project) = acme_team(&app).await;
    let id = id_of(&bea, &project, "On call").await;
    let too_long = "x".repeat(50_001);
    for (title, body, field) in [("  ", "", "title"), ("Two\nlines", "", "title"), ("Fine", too_long.as_str(), "body"), ("Fine", "bell\u{7}", "body")]
    {
        let r = bea.call("create_document", &[("slug", "acme"), ("project", &project), ("title", title), ("body", body)]).await;
        assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{}", r.body);
        let r = bea.call("update_document", &[("slug", "acme"), ("project", &project), ("id", &id), ("title", title), ("body", body)]).await;
        assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{}", r.body);
    }
    assert_eq!(app.count("SELECT count(*) FROM shared.documents").await, 2, "nothing was written");

    // The owner saves first; Bea's form, filled before that, would undo it: refused.
    let seen = document(&bea, &project, "On call").await["updated_at"].as_str().unwrap().to_string();
    let change = |title: &'static str| {
        [("slug", "acme"), ("project", project.as_str()), ("id", id.as_str()), ("title", title), ("body", ""), ("updated_at", seen.as_str())]
    };
    ok(owner.call("update_document", &change("Owner's version")).await);
    let r = bea.call("update_document", &change("Bea's version")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("changed this document since you opened it"), "{}", r.body);
    assert_eq!(document(&bea, &project, "Owner's version").await["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_reads_and_writes_documents_under_the_documents_scopes() {
    let app = TestApp::spawn().await;
    let (owner, _bea, _vic, project) = acme_team(&app).await;
    let key = |scopes: &'static [&'static str]| {
        let owner = owner.clone();
        async move {
            let mut form = vec![("slug", "acme"), ("name", "Key"), ("expires_in_days", "1")];
            form.extend(scopes.iter().map(|s| ("scopes[]", *s)));
            let r = owner.call("create_api_key", &form).await;
            r.json()["key"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_string()
        }
    };
    let projects_only = key(&["projects:read", "projects:write"]).await;
    let reader = key(&["documents:read"]).await;
    let writer = key(&["documents:read", "documents:write"]).await;
    let client = reqwest::Client::new();
    let list = format!("{}/api/v1/orgs/acme/projects/{project}/documents", app.base);

    assert_eq!(client.get(&list).bearer_auth(&projects_only).send().await.unwrap().status(), StatusCode::FORBIDDEN, "documents need their own scope");
    let r = client.get(&list).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap().as_array().map(Vec::len), Some(2));
    let r = client.post(&list).bearer_auth(&reader).json(&json!({ "title": "By a reader" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = client.post(&list).bearer_auth(&writer).json(&json!({ "title": "By key", "body": &"y".repeat(400) })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let url = format!("{list}/{}", created["id"].as_str().unwrap());
    let listed: Value = client.get(&list).bearer_auth(&reader).send().await.unwrap().json().await.unwrap();
    let listed = listed.as_array().unwrap().iter().find(|d| d["title"] == "By key").unwrap().clone();
    assert_eq!(
        (listed["excerpt"].as_str().map(str::len), listed["truncated"].as_bool(), listed.get("body")),
        (Some(280), Some(true), None),
        "lists carry the start of the text, under a name no edit would send back as the whole"
    );
    let full: Value = client.get(&url).bearer_auth(&reader).send().await.unwrap().json().await.unwrap();
    assert_eq!(full["body"].as_str().map(str::len), Some(400));
    let write_only = key(&["documents:write"]).await;
    let r = client.get(&url).bearer_auth(&write_only).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "what a key may change, it may read");

    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "body": "Shorter" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "By key", "the title is kept");
    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "title": "" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "author": "me" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "unknown fields are refused");
    assert_eq!(client.delete(&url).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(client.delete(&url).bearer_auth(&writer).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(client.get(&url).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    // A version that isn't one is the client's mistake to fix, not a conflict.
    let r = client.patch(&url).bearer_auth(&writer).json(&json!({ "body": "x", "updated_at": "yesterday" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A key that may write projects but not documents can't take documents with a project.
    let project_url = format!("{}/api/v1/orgs/acme/projects/{project}", app.base);
    let r = client.delete(&project_url).bearer_auth(&projects_only).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("documents:write"));
    let r = client
        .post(format!("{}/api/v1/orgs/acme/projects", app.base))
        .bearer_auth(&projects_only)
        .json(&json!({ "name": "Empty" }))
        .send()
        .await
        .unwrap();
    let empty: Value = r.json().await.unwrap();
    let r = client
        .delete(format!("{}/api/v1/orgs/acme/projects/{}", app.base, empty["id"].as_str().unwrap()))
        .bearer_auth(&projects_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "an empty project needs no documents scope");
    let malformed = format!("{}/api/v1/orgs/acme/projects/nope/documents/also-nope", app.base);
    assert_eq!(client.get(&malformed).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}
