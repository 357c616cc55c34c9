//! The REST API describes itself: an OpenAPI 3.1 document generated from the handlers, and a
//! page that reads it for people.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_publishes_an_openapi_document_of_every_route_it_serves() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/api/v1/openapi.json", app.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let document: Value = r.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // Every documented operation is served (a request without a credential reaches it: an
    // unknown path would be the catch-all's 404 "no such API endpoint").
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else { continue };
            operations += 1;
            let url = format!("{}{}", app.base, path.replace("{slug}", "acme").replace("{id}", &uuid::Uuid::new_v4().to_string()));
            let r = reqwest::Client::new().request(method.to_uppercase().parse().unwrap(), &url).json(&serde_json::json!({})).send().await.unwrap();
            let status = r.status().as_u16().to_string();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(!body["error"]["message"].as_str().unwrap_or_default().contains("no such API endpoint"), "{method} {path} isn't served");
            assert!(operation["responses"].get(&status).is_some(), "{method} {path} answered {status}, which it doesn't document");
            assert!(operation["description"].is_string() || operation["summary"].is_string(), "{method} {path} says what it does");
            // Errors have the documented shape.
            if status.starts_with('4') {
                assert_eq!(body["error"]["status"].as_u64().map(|s| s.to_string()), Some(status.clone()), "{method} {path}: {body}");
            }
        }
    }
    assert_eq!(
        operations, 22,
        "sign in, refresh, sign out, me; list, get, create, change and delete projects and documents; members; audit events; a project's access (read, grant, revoke, visibility); groups (list, get)"
    );
    // The types a program reads are described field by field.
    let schemas = &document["components"]["schemas"];
    for name in [
        "ProjectSummary",
        "Member",
        "Role",
        "TokenPair",
        "CurrentUser",
        "ErrorBody",
        "SignIn",
        "NewProject",
        "ProjectChange",
        "AuditPage",
        "AuditEvent",
        "ProjectAccess",
        "ProjectGrant",
        "Grantee",
        "NewGrant",
        "Group",
        "ProjectRole",
        "Visibility",
    ] {
        assert!(schemas[name].is_object(), "{name} is described");
    }
    assert_eq!(schemas["Role"]["enum"], serde_json::json!(["owner", "admin", "member", "viewer"]));
    assert_eq!(schemas["ProjectRole"]["enum"], serde_json::json!(["admin", "editor", "viewer"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_lists_each_operation_and_schema_without_running_script() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/api/v1/docs", app.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    for text in [
        "POST /api/v1/auth/token",
        "GET /api/v1/orgs/{slug}/projects",
        "POST /api/v1/orgs/{slug}/projects",
        "GET /api/v1/orgs/{slug}/projects/{id}",
        "PATCH /api/v1/orgs/{slug}/projects/{id}",
        "DELETE /api/v1/orgs/{slug}/projects/{id}",
        "GET /api/v1/orgs/{slug}/members",
        "Needs <code>Authorization: Bearer …</code>",
        "ProjectSummary",
        "/api/v1/openapi.json",
    ] {
        assert!(page.contains(text), "the page mentions {text}");
    }
    assert!(!page.contains("<script"), "a reference page needs no script");
}
