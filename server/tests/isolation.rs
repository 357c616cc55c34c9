//! Two organizations side by side: nothing of one is ever reachable from the other, through
//! any server function or page, and the database itself enforces it. Every scenario runs for
//! pairs of placements that cover the three tenancy models and both regions, including two
//! pooled tenants sharing tables and tenants on different clusters.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use sqlx::{Connection, Executor, PgConnection};

struct TwoTenants {
    app: TestApp,
    alice: common::Browser,
    bob_project: String,
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
    let bob_user = app.user_id("owner@bravo.test").await;
    let label = format!("alpha {} in {}, bravo {} in {}", alpha.0, alpha.1, bravo.0, bravo.1);
    TwoTenants { app, alice, bob_project, bob_user, label }
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
    let u = t.bob_user.as_str();
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // Bob's organization by name.
        ("load_org", vec![("slug", "bravo")]),
        ("org_overview", vec![("slug", "bravo")]),
        ("list_projects", vec![("slug", "bravo")]),
        ("get_project", vec![("slug", "bravo"), ("id", p)]),
        ("create_project", vec![("slug", "bravo"), ("name", "Planted"), ("description", "")]),
        ("list_members", vec![("slug", "bravo")]),
        ("invite_member", vec![("slug", "bravo"), ("email", "owner@alpha.test"), ("role", "owner")]),
        ("org_invitations", vec![("slug", "bravo")]),
        ("change_role", vec![("slug", "bravo"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "bravo"), ("user_id", u)]),
        // Bob's ids smuggled into Alice's own organization.
        ("get_project", vec![("slug", "alpha"), ("id", p)]),
        ("change_role", vec![("slug", "alpha"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "alpha"), ("user_id", u)]),
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
    }
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
        "/t/bravo/members".to_string(),
        format!("/t/alpha/projects/{p}"),
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

/// Every field any server function takes, filled with Bob's ids and names (`slug` set per
/// probe). A function ignores the fields it doesn't take, so one form reaches them all.
fn everything_bob_has<'a>(t: &'a TwoTenants, slug: &'a str) -> Vec<(&'a str, &'a str)> {
    let (p, u) = (t.bob_project.as_str(), t.bob_user.as_str());
    vec![
        ("slug", slug),
        ("id", p),
        ("user_id", u),
        ("handle", p),
        ("token", p),
        ("role", "owner"),
        ("name", "Planted"),
        ("description", "Planted"),
        ("email", "owner@bravo.test"),
        ("password", "not-bobs-password"),
        ("code", "000000"),
        ("confirm", "bravo"),
        ("model", "pooled"),
        ("region", "eu"),
        ("domain", "bravo.test"),
        ("provider", "github"),
        ("purpose", "magic_link"),
        ("metadata_xml", "<x/>"),
        ("metadata_url", "http://127.0.0.1:9/metadata"),
        ("group_attribute", "groups"),
        ("default_role", "owner"),
        ("projects_read", "on"),
        ("projects_write", "on"),
        ("members_read", "on"),
        ("expires_in_days", "never"),
        ("require_mfa", "on"),
        ("sso_satisfies_mfa", "on"),
        ("require_sso", "on"),
    ]
}

/// A digest of everything Bravo has: every control-plane row that names its tenant id, its
/// tenant row, and its own tables wherever they live.
async fn bravo_fingerprint(t: &TwoTenants) -> String {
    let bravo = t.app.tenant_id("bravo").await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY table_name",
    )
    .fetch_all(&t.app.inspect)
    .await
    .unwrap();
    let mut parts = Vec::new();
    for table in tables.iter().map(String::as_str).chain(["tenants"]) {
        let key = if table == "tenants" { "id" } else { "tenant_id" };
        let rows: Option<String> =
            sqlx::query_scalar(&format!("SELECT string_agg(r::text, '|' ORDER BY r::text) FROM public.{table} r WHERE {key} = $1"))
                .bind(bravo)
                .fetch_one(&t.app.inspect)
                .await
                .unwrap();
        parts.push(format!("{table}: {}", rows.unwrap_or_default()));
    }
    let mut own = t.app.inspect_tenant("bravo").await;
    for table in ["projects", "audit_log"] {
        let rows: Option<String> =
            sqlx::query_scalar(&format!("SELECT string_agg(r::text, '|' ORDER BY r::text) FROM {table} r WHERE tenant_id = $1"))
                .bind(bravo)
                .fetch_one(&mut own)
                .await
                .unwrap();
        parts.push(format!("own {table}: {}", rows.unwrap_or_default()));
    }
    parts.join("\n")
}

/// Not a hand list: every server function the app registers and every operation in the REST
/// API's OpenAPI document is called by Alice (Alpha's owner, with an API key of Alpha's for the
/// REST API) with Bravo's name and Bob's ids, and with Bob's ids inside Alpha. Nothing of
/// Bravo's may come back, nothing of Bravo's may change, and no probe may fail with a 500. A
/// new endpoint is covered the day it is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_endpoint_refuses_the_other_tenant() {
    for (alpha, bravo) in [PLACEMENTS[0], PLACEMENTS[4]] {
        every_registered_endpoint_refuses_the_other_tenant_in(two_tenants(alpha, bravo).await).await;
    }
}

async fn every_registered_endpoint_refuses_the_other_tenant_in(t: TwoTenants) {
    let before = bravo_fingerprint(&t).await;
    let leaked = |body: &str| body.contains("Bravo secret") || body.contains("Org bravo") || body.contains(t.bob_project.as_str());
    let mut alice = t.alice.clone();
    let mut probes = 0;

    let mut functions: Vec<(&str, http::Method)> = leptos::server_fn::axum::server_fn_paths().collect();
    functions.sort_by_key(|(path, _)| *path);
    assert!(functions.len() > 50, "the registry lists the app's server functions: {}", functions.len());
    for (path, _) in &functions {
        let function = path.trim_start_matches("/api/");
        for slug in ["bravo", "alpha"] {
            let r = alice.call(function, &everything_bob_has(&t, slug)).await;
            probes += 1;
            assert!(r.status.as_u16() < 500, "{}: {function} (slug {slug}) failed: {} {}", t.label, r.status, r.body);
            assert!(!leaked(&r.body), "{}: {function} (slug {slug}) leaked: {}", t.label, r.body);
            if slug == "bravo" && r.status.is_success() {
                // Only what isn't about an organization may succeed with Bravo's name.
                assert!(!r.body.contains("bravo"), "{}: {function} answered for Bravo: {}", t.label, r.body);
            }
            // Some probes sign Alice out (that's their job); she signs in again.
            if alice.call("my_session", &[]).await.json().is_null() {
                alice = t.app.browser();
                let r = alice.call("log_in", &[("email", "owner@alpha.test"), ("password", common::PASSWORD)]).await;
                assert!(r.status.is_success() || r.status.is_redirection(), "{}: Alice signs in again: {} {}", t.label, r.status, r.body);
            }
        }
    }

    let r = alice
        .call(
            "create_api_key",
            &[
                ("slug", "alpha"),
                ("name", "Probe"),
                ("projects_read", "on"),
                ("projects_write", "on"),
                ("members_read", "on"),
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
            for slug in ["bravo", "alpha"] {
                let mut path = template.replace("{slug}", slug);
                while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
                    path.replace_range(start..=end, &t.bob_project);
                }
                let r = client
                    .request(method.to_uppercase().parse().unwrap(), format!("{}{path}", t.app.base))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({ "name": "Planted", "description": "Planted", "role": "owner", "email": "owner@bravo.test" }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let body = r.text().await.unwrap();
                probes += 1;
                assert!(status.as_u16() < 500, "{}: {method} {path} failed: {status} {body}", t.label);
                assert!(!leaked(&body), "{}: {method} {path} leaked: {body}", t.label);
                if template.contains("{slug}") && slug == "bravo" {
                    assert!(status.is_client_error(), "{}: {method} {path} with Alpha's key: {status} {body}", t.label);
                }
            }
        }
    }
    assert!(operations >= 3, "the OpenAPI document lists the REST operations: {operations}");

    assert_eq!(bravo_fingerprint(&t).await, before, "{}: nothing of Bravo's changed", t.label);
    println!("{}: {probes} probes ({} server functions, {operations} REST operations), nothing leaked or changed", t.label, functions.len());
}
