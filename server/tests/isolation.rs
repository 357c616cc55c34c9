//! Two organizations side by side: nothing of one is ever reachable from the other, through
//! any server function or page, and the database itself enforces it. Every scenario runs for
//! pairs of placements that cover the three tenancy models and both regions, including two
//! pooled tenants sharing tables and tenants on different clusters.

mod common;
use common::{every_field, TestApp};
use reqwest::StatusCode;
use sqlx::{Connection, Executor, PgConnection};

struct TwoTenants {
    app: TestApp,
    alice: common::Browser,
    bob_project: String,
    /// A document in Bob's project.
    bob_document: String,
    bob_user: String,
    label: String,
}

/// (model, region)
type Placement = (&'static str, &'static str);

/// (model, region) of Alice's "alpha" and Bob's "bravo".
const PLACEMENTS: [(Placement, Placement); 5] = [
    (("pooled", "eu"), ("pooled", "eu")),
    (("schema", "eu"), ("schema", "eu")),
    (("dedicated", "eu"), ("dedicated", "us")),
    (("pooled", "us"), ("schema", "us")),
    (("dedicated", "us"), ("pooled", "eu")),
];

/// Alice owns "alpha" with project "Alpha secret"; Bob owns "bravo" with "Bravo secret".
async fn two_tenants(alpha: (&str, &str), bravo: (&str, &str)) -> TwoTenants {
    let app = TestApp::spawn().await;
    let alice = app.owner_of_in("alpha", alpha.1, alpha.0).await;
    alice.add_project("alpha", "Alpha secret").await;
    let bob = app.owner_of_in("bravo", bravo.1, bravo.0).await;
    bob.add_project("bravo", "Bravo secret").await;
    let bob_project = bob.call("list_projects", &[("slug", "bravo")]).await.json()[0]["id"].as_str().unwrap().to_string();
    let r =
        bob.call("create_document", &[("slug", "bravo"), ("project", &bob_project), ("title", "Bravo secret plan"), ("body", "Bravo secret")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let listed = bob.call("list_documents", &[("slug", "bravo"), ("project", &bob_project)]).await.json();
    let bob_document = listed["documents"][0]["id"].as_str().unwrap().to_string();
    let bob_user = app.user_id("owner@bravo.test").await;
    let label = format!("alpha {} in {}, bravo {} in {}", alpha.0, alpha.1, bravo.0, bravo.1);
    TwoTenants { app, alice, bob_project, bob_document, bob_user, label }
}

async fn each_placement<F, Fut>(scenario: F)
where
    F: Fn(TwoTenants) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (alpha, bravo) in PLACEMENTS {
        scenario(two_tenants(alpha, bravo).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_refuses_the_other_tenants_data() {
    each_placement(every_server_function_refuses_the_other_tenants_data_in).await;
}

async fn every_server_function_refuses_the_other_tenants_data_in(t: TwoTenants) {
    let p = t.bob_project.as_str();
    let d = t.bob_document.as_str();
    let u = t.bob_user.as_str();
    // Alice's own project, to smuggle Bob's document ids into.
    let own = t.alice.call("list_projects", &[("slug", "alpha")]).await.json()[0]["id"].as_str().unwrap().to_string();
    let own = own.as_str();
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // Bob's organization by name.
        ("load_org", vec![("slug", "bravo")]),
        ("org_overview", vec![("slug", "bravo")]),
        ("list_projects", vec![("slug", "bravo")]),
        ("get_project", vec![("slug", "bravo"), ("id", p)]),
        ("create_project", vec![("slug", "bravo"), ("name", "Planted"), ("description", "")]),
        ("update_project", vec![("slug", "bravo"), ("id", p), ("name", "Planted"), ("description", "")]),
        ("delete_project", vec![("slug", "bravo"), ("id", p)]),
        ("list_members", vec![("slug", "bravo")]),
        ("invite_member", vec![("slug", "bravo"), ("email", "owner@alpha.test"), ("role", "owner")]),
        ("org_invitations", vec![("slug", "bravo")]),
        ("change_role", vec![("slug", "bravo"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "bravo"), ("user_id", u)]),
        ("list_documents", vec![("slug", "bravo"), ("project", p)]),
        ("get_document", vec![("slug", "bravo"), ("project", p), ("id", d)]),
        ("create_document", vec![("slug", "bravo"), ("project", p), ("title", "Planted"), ("body", "")]),
        ("update_document", vec![("slug", "bravo"), ("project", p), ("id", d), ("title", "Planted"), ("body", "")]),
        ("delete_document", vec![("slug", "bravo"), ("project", p), ("id", d)]),
        // Bob's ids smuggled into Alice's own organization.
        ("get_project", vec![("slug", "alpha"), ("id", p)]),
        ("update_project", vec![("slug", "alpha"), ("id", p), ("name", "Planted"), ("description", "")]),
        ("delete_project", vec![("slug", "alpha"), ("id", p)]),
        ("change_role", vec![("slug", "alpha"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "alpha"), ("user_id", u)]),
        ("list_documents", vec![("slug", "alpha"), ("project", p)]),
        ("create_document", vec![("slug", "alpha"), ("project", p), ("title", "Planted"), ("body", "")]),
        ("get_document", vec![("slug", "alpha"), ("project", p), ("id", d)]),
        ("get_document", vec![("slug", "alpha"), ("project", own), ("id", d)]),
        ("update_document", vec![("slug", "alpha"), ("project", own), ("id", d), ("title", "Planted"), ("body", "")]),
        ("delete_document", vec![("slug", "alpha"), ("project", own), ("id", d)]),
    ];
    for (function, form) in attempts {
        let r = t.alice.call(function, &form).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {function} {form:?}: {}", t.label, r.body);
        assert!(!r.body.contains("Bravo"), "{}: {function} leaked: {}", t.label, r.body);
        assert!(!r.body.contains("bravo.test"), "{}: {function} leaked: {}", t.label, r.body);
    }
    for slug in ["alpha", "bravo"] {
        let mut conn = t.app.inspect_tenant(slug).await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE name = 'Planted'").fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{}: nothing planted in {slug}", t.label);
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE title = 'Planted'").fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{}: no document planted in {slug}", t.label);
    }
    let mut bravo = t.app.inspect_tenant("bravo").await;
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE id = $1::uuid AND title = 'Bravo secret plan' AND body = 'Bravo secret'")
            .bind(d)
            .fetch_one(&mut bravo)
            .await
            .unwrap();
    assert_eq!(kept, 1, "{}: Bob's document is where it was, unchanged", t.label);
    assert_eq!(t.app.count("SELECT count(*) FROM memberships").await, 2, "no membership changed");
    assert_eq!(t.app.count("SELECT count(*) FROM memberships WHERE role = 'owner'").await, 2);

    // Alice's own list shows only her project.
    let mine = t.alice.call("list_projects", &[("slug", "alpha")]).await.json();
    let names: Vec<&str> = mine.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alpha secret"]);
    let members = t.alice.call("list_members", &[("slug", "alpha")]).await.body;
    assert!(!members.contains("bravo"), "{members}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_page_of_the_other_tenant_is_a_404() {
    each_placement(every_tenant_page_of_the_other_tenant_is_a_404_in).await;
}

async fn every_tenant_page_of_the_other_tenant_is_a_404_in(t: TwoTenants) {
    let p = &t.bob_project;
    for path in [
        "/t/bravo".to_string(),
        "/t/bravo/projects".to_string(),
        "/t/bravo/projects/new".to_string(),
        format!("/t/bravo/projects/{p}"),
        format!("/t/bravo/projects/{p}/edit"),
        format!("/t/alpha/projects/{p}/edit"),
        "/t/bravo/members".to_string(),
        format!("/t/alpha/projects/{p}"),
        format!("/t/bravo/projects/{p}/documents/{}", t.bob_document),
        format!("/t/alpha/projects/{p}/documents/{}", t.bob_document),
        format!("/t/bravo/projects/{p}/documents/new"),
        "/t/no-such-org".to_string(),
    ] {
        let r = t.alice.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {path}", t.label);
        assert!(r.body.contains("Page not found"), "{}: {path}", t.label);
        assert!(!r.body.contains("Bravo secret") && !r.body.contains("Org bravo"), "{path} leaked");
    }
    let own = t.alice.get("/t/alpha/projects").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Alpha secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tenant_context_the_app_role_sees_no_tenant_rows() {
    each_placement(without_tenant_context_the_app_role_sees_no_tenant_rows_in).await;
}

async fn without_tenant_context_the_app_role_sees_no_tenant_rows_in(t: TwoTenants) {
    let alpha = t.app.tenant_id("alpha").await;
    let bravo = t.app.tenant_id("bravo").await;
    // Wherever alpha's data lives, as the app role, with search_path at its schema.
    let mut conn = t.app.app_conn_for("alpha").await;
    for table in ["projects", "audit_log", "tenant_fence"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{}: {table} is visible without a tenant", t.label);
    }
    // With one tenant's context, only that tenant's rows, and no writing into another.
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{alpha}'").as_str()).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects").fetch_all(&mut *tx).await.unwrap();
    assert_eq!(names, ["Alpha secret"], "{}", t.label);
    let planted = sqlx::query("INSERT INTO projects (id, tenant_id, name, created_by) VALUES (gen_random_uuid(), $1, 'Planted', gen_random_uuid())")
        .bind(bravo)
        .execute(&mut *tx)
        .await;
    assert!(planted.is_err(), "{}: row-level security refuses rows for another tenant", t.label);
    tx.rollback().await.unwrap();
    // A document of Alice's can't name Bob's project: the foreign key includes the tenant (a
    // key check doesn't see row-level security, so a plain project_id would find Bob's). The
    // documents policy refuses it first (its project isn't visible); seeing every project, the
    // key still does.
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{alpha}'").as_str()).await.unwrap();
    let planted = sqlx::query(
        "INSERT INTO documents (id, project_id, title, created_by, updated_by) VALUES (gen_random_uuid(), $1, 'Planted', gen_random_uuid(), gen_random_uuid())",
    )
    .bind(uuid::Uuid::parse_str(&t.bob_project).unwrap())
    .execute(&mut *tx)
    .await;
    let code = planted.as_ref().err().and_then(|e| e.as_database_error()).and_then(|e| e.code()).map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("42501"), "{}: row-level security refuses a document in a project it can't see: {planted:?}", t.label);
    tx.rollback().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{alpha}'; SET LOCAL app.sees_all = 'on'").as_str()).await.unwrap();
    let planted = sqlx::query(
        "INSERT INTO documents (id, project_id, title, created_by, updated_by) VALUES (gen_random_uuid(), $1, 'Planted', gen_random_uuid(), gen_random_uuid())",
    )
    .bind(uuid::Uuid::parse_str(&t.bob_project).unwrap())
    .execute(&mut *tx)
    .await;
    let code = planted.as_ref().err().and_then(|e| e.as_database_error()).and_then(|e| e.code()).map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("23503"), "{}: a foreign-key violation, not a document in Bob's project: {planted:?}", t.label);
    tx.rollback().await.unwrap();

    // The tenant setting is transaction-local: nothing lingers on the connection.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 0, "{}", t.label);

    // The control plane's memberships and audit are filtered the same way.
    let mut control = PgConnection::connect(&t.app.app_db_url).await.unwrap();
    for table in ["memberships", "audit_log"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut control).await.unwrap();
        assert_eq!(n, 0, "{}: control-plane {table} is visible without a tenant", t.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_cannot_switch_security_off_or_rewrite_history() {
    each_placement(the_app_role_cannot_switch_security_off_or_rewrite_history_in).await;
}

async fn the_app_role_cannot_switch_security_off_or_rewrite_history_in(t: TwoTenants) {
    let mut conn = t.app.app_conn_for("alpha").await;
    for statement in [
        "ALTER TABLE projects DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY projects_in_tenant ON projects",
        "SET ROLE tessera_owner",
    ] {
        assert!(conn.execute(statement).await.is_err(), "{}: {statement} must fail for the app role", t.label);
    }
    // row_security = off makes a filtered query fail instead of silently bypassing the policy.
    conn.execute("SET row_security = off").await.unwrap();
    assert!(sqlx::query("SELECT count(*) FROM projects").fetch_one(&mut conn).await.is_err());
    conn.execute("RESET row_security").await.unwrap();

    // The audit trail is append-only for the app.
    let alpha = t.app.tenant_id("alpha").await;
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{alpha}'").as_str()).await.unwrap();
    assert!(tx.execute("DELETE FROM audit_log").await.is_err(), "{}", t.label);
    assert!(tx.execute("INSERT INTO tenant_fence (reason) VALUES ('forged')").await.is_err(), "{}: only a move may seal", t.label);
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_on_a_role_that_could_bypass_security() {
    let (alpha, bravo) = PLACEMENTS[0];
    let t = two_tenants(alpha, bravo).await;
    // The owner role owns the tables, so it could switch row-level security off.
    let owner = sqlx::PgPool::connect(&t.app.owner_db_url).await.unwrap();
    let err = tessera_backend::db::check_app_role(&owner).await.unwrap_err();
    assert!(err.to_string().contains("owns"), "{err}");
    let err = tessera_backend::db::check_app_role(&t.app.inspect).await.unwrap_err();
    assert!(err.to_string().contains("superuser"), "{err}");
    tessera_backend::db::check_app_role(&sqlx::PgPool::connect(&t.app.app_db_url).await.unwrap()).await.expect("the app role is confined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_when_a_regions_role_could_bypass_security() {
    let t = TestApp::spawn().await;
    // Region us configured with the superuser: its tenants' data would not be filtered.
    let mut config = t.config.clone();
    let us = &mut config.topology.regions[1];
    us.app_url = us.owner_url.clone().unwrap().replacen("tessera_owner@", "postgres@", 1);
    let Err(err) = tessera_server::build(&config).await else { panic!("it must refuse to start") };
    let err = err.to_string();
    assert!(err.contains("region us") && err.contains("superuser"), "{err}");
}

/// A digest of everything Bravo has: every control-plane row that names its tenant id, its
/// tenant row, and every table of its own wherever it lives.
async fn bravo_fingerprint(t: &TwoTenants) -> String {
    let bravo = t.app.tenant_id("bravo").await;
    let of_tenant = "SELECT table_name::text FROM information_schema.columns
                      WHERE table_schema = current_schema() AND column_name = 'tenant_id' ORDER BY table_name";
    let digest = |table: &str, key: &str| format!("SELECT string_agg(r::text, '|' ORDER BY r::text) FROM {table} r WHERE {key} = $1");
    let mut parts = Vec::new();
    let tables: Vec<String> = sqlx::query_scalar(of_tenant).fetch_all(&t.app.inspect).await.unwrap();
    for table in &tables {
        let rows: Option<String> =
            sqlx::query_scalar(&digest(&format!("public.{table}"), "tenant_id")).bind(bravo).fetch_one(&t.app.inspect).await.unwrap();
        parts.push(format!("{table}: {}", rows.unwrap_or_default()));
    }
    let rows: Option<String> = sqlx::query_scalar(&digest("public.tenants", "id")).bind(bravo).fetch_one(&t.app.inspect).await.unwrap();
    parts.push(format!("tenants: {}", rows.unwrap_or_default()));
    let mut own = t.app.inspect_tenant("bravo").await;
    let tables: Vec<String> = sqlx::query_scalar(of_tenant).fetch_all(&mut own).await.unwrap();
    assert!(tables.iter().any(|t| t == "projects"), "Bravo's own tables are found: {tables:?}");
    for table in &tables {
        let rows: Option<String> = sqlx::query_scalar(&digest(table, "tenant_id")).bind(bravo).fetch_one(&mut own).await.unwrap();
        parts.push(format!("own {table}: {}", rows.unwrap_or_default()));
    }
    parts.join("\n")
}

/// Not a hand list: every server function the app registers and every operation in the REST
/// API's OpenAPI document is called by Alice (Alpha's owner, with an API key of Alpha's for the
/// REST API) with Bravo's name, and with Bob's ids inside Alpha. Each answer must be the one a
/// made-up name or made-up ids get (Bravo's existence and Bob's ids make no difference),
/// nothing of Bravo's may come back, nothing of Bravo's may change, and no probe may fail with
/// a 500 or miss a field. A new endpoint is covered the day it is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_endpoint_refuses_the_other_tenant() {
    // Bravo in each model: a dedicated database, its own schema, the shared tables.
    for (alpha, bravo) in [PLACEMENTS[2], PLACEMENTS[3], PLACEMENTS[4]] {
        every_registered_endpoint_refuses_the_other_tenant_in(two_tenants(alpha, bravo).await).await;
    }
}

async fn every_registered_endpoint_refuses_the_other_tenant_in(t: TwoTenants) {
    let before = bravo_fingerprint(&t).await;
    let bravo_id = t.app.tenant_id("bravo").await.to_string();
    let secrets =
        ["Bravo secret", "Org bravo", "owner@bravo.test", t.bob_project.as_str(), t.bob_document.as_str(), t.bob_user.as_str(), bravo_id.as_str()];
    let leaked = |body: &str| secrets.iter().find(|s| body.contains(**s)).map(|s| s.to_string());
    let (made_up_id, made_up_user, made_up_document) =
        (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let mut alice = t.alice.clone();
    let mut probes = 0;

    let mut functions: Vec<(&str, http::Method)> = leptos::server_fn::axum::server_fn_paths().collect();
    functions.sort_by_key(|(path, _)| *path);
    assert!(functions.len() > 50, "the registry lists the app's server functions: {}", functions.len());
    for (path, _) in &functions {
        let function = path.trim_start_matches("/api/");
        // (what is probed, the control it must look like)
        let pairs = [
            (("bravo", t.bob_project.as_str(), t.bob_user.as_str()), ("no-such-org", made_up_id.as_str(), made_up_user.as_str())),
            (("alpha", t.bob_project.as_str(), t.bob_user.as_str()), ("alpha", made_up_id.as_str(), made_up_user.as_str())),
        ];
        for (probe, control) in pairs {
            let mut answers = Vec::new();
            // Creating an organization says whether a URL name is taken, by design; its
            // control would create the made-up one. It is probed, not compared.
            let calls = if function == "create_org" { vec![probe] } else { vec![control, probe] };
            for (slug, id, user) in calls {
                probes += 1;
                let tag = probes.to_string();
                let mut form = every_field(slug, id, user, &tag);
                if function.contains("document") {
                    // A document's own id (Bob's, or a made-up one) beside its project's.
                    let document = if id == made_up_id { made_up_document.as_str() } else { t.bob_document.as_str() };
                    form.iter_mut().filter(|(k, _)| *k == "id").for_each(|(_, v)| *v = document.to_string());
                }
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = alice.call(function, &form).await;
                let what = format!("{}: {function} (slug {slug})", t.label);
                assert!(r.status.as_u16() < 500, "{what} failed: {} {}", r.status, r.body);
                assert!(!r.body.contains("form was incomplete or malformed"), "{what}: add its field to `every_field`: {}", r.body);
                let location = r.headers.get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_string();
                if let Some(secret) = leaked(&r.body).or_else(|| leaked(&location)) {
                    panic!("{what} leaked {secret}: {} {location}", r.body);
                }
                answers.push(r.status);
                // Some probes sign Alice out (that's their job); she signs in again.
                if alice.call("my_session", &[]).await.json().is_null() {
                    alice = t.app.browser();
                    let r = alice.call("log_in", &[("email", "owner@alpha.test"), ("password", common::PASSWORD)]).await;
                    assert!(r.status.is_success() || r.status.is_redirection(), "{}: Alice signs in again: {} {}", t.label, r.status, r.body);
                }
            }
            assert_eq!(
                answers.first(),
                answers.last(),
                "{}: {function}: Bravo's name or Bob's ids ({probe:?}) answer differently from made-up ones",
                t.label
            );
        }
    }

    let r = alice
        .call(
            "create_api_key",
            &[
                ("slug", "alpha"),
                ("name", "Probe"),
                ("scopes[]", "projects:read"),
                ("scopes[]", "projects:write"),
                ("scopes[]", "members:read"),
                ("scopes[]", "documents:read"),
                ("scopes[]", "documents:write"),
                ("expires_in_days", "1"),
            ],
        )
        .await;
    let key = r.json()["key"].as_str().unwrap_or_else(|| panic!("{}: an API key for Alpha: {}", t.label, r.body)).to_string();
    let api: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", t.app.base)).await.unwrap().json().await.unwrap();
    let client = reqwest::Client::new();
    let mut operations = 0;
    for (template, item) in api["paths"].as_object().expect("the document lists paths") {
        for (method, _) in item.as_object().unwrap().iter().filter(|(m, _)| ["get", "post", "put", "patch", "delete"].contains(&m.as_str())) {
            operations += 1;
            let pairs = [
                (("bravo", t.bob_project.as_str()), ("no-such-org", made_up_id.as_str())),
                (("alpha", t.bob_project.as_str()), ("alpha", made_up_id.as_str())),
            ];
            for (probe, control) in pairs {
                let mut answers = Vec::new();
                for (slug, id) in [control, probe] {
                    probes += 1;
                    let mut path = template.replace("{slug}", slug).replace("{project}", id);
                    // A document's own id, the one the project's id would be in other paths.
                    let document = if id == made_up_id { made_up_document.as_str() } else { t.bob_document.as_str() };
                    let last = if template.contains("/documents/") { document } else { id };
                    while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
                        path.replace_range(start..=end, last);
                    }
                    // Only documented fields: a body with others is refused before the door.
                    let r = client
                        .request(method.to_uppercase().parse().unwrap(), format!("{}{path}", t.app.base))
                        .bearer_auth(&key)
                        .json(&if template.contains("/documents") {
                            serde_json::json!({ "title": format!("Planted {probes}"), "body": "Planted" })
                        } else {
                            serde_json::json!({ "name": format!("Planted {probes}"), "description": "Planted" })
                        })
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let body = r.text().await.unwrap();
                    assert!(status.as_u16() < 500, "{}: {method} {path} failed: {status} {body}", t.label);
                    if let Some(secret) = leaked(&body) {
                        panic!("{}: {method} {path} leaked {secret}: {body}", t.label);
                    }
                    if template.contains("{slug}") && slug == "bravo" {
                        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{}: {method} {path} with Alpha's key: {body}", t.label);
                    }
                    answers.push(status);
                }
                assert_eq!(
                    answers[0], answers[1],
                    "{}: {method} {template}: Bravo's name or Bob's ids answer differently from made-up ones",
                    t.label
                );
            }
        }
    }
    assert!(operations >= 3, "the OpenAPI document lists the REST operations: {operations}");

    assert_eq!(bravo_fingerprint(&t).await, before, "{}: nothing of Bravo's changed", t.label);
    println!("{}: {probes} probes ({} server functions, {operations} REST operations), nothing leaked or changed", t.label, functions.len());
}
