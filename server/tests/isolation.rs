//! Two organizations side by side: nothing of one is ever reachable from the other, through
//! any server function or page, and the database itself enforces it.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use sqlx::{Connection, Executor, PgConnection};

struct TwoTenants {
    app: TestApp,
    alice: common::Browser,
    bob_project: String,
    bob_user: String,
}

/// Alice owns "alpha" with project "Alpha secret"; Bob owns "bravo" with "Bravo secret".
async fn two_tenants() -> TwoTenants {
    let app = TestApp::spawn().await;
    let alice = app.owner_of("alpha").await;
    alice.add_project("alpha", "Alpha secret").await;
    let bob = app.owner_of("bravo").await;
    bob.add_project("bravo", "Bravo secret").await;
    let bob_project = app.project_id("Bravo secret").await;
    let bob_user = app.user_id("owner@bravo.test").await;
    TwoTenants { app, alice, bob_project, bob_user }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_refuses_the_other_tenants_data() {
    let t = two_tenants().await;
    let p = t.bob_project.as_str();
    let u = t.bob_user.as_str();
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        // Bob's organization by name.
        ("load_org", vec![("slug", "bravo")]),
        ("list_projects", vec![("slug", "bravo")]),
        ("get_project", vec![("slug", "bravo"), ("id", p)]),
        ("create_project", vec![("slug", "bravo"), ("name", "Planted"), ("description", "")]),
        ("list_members", vec![("slug", "bravo")]),
        ("add_member", vec![("slug", "bravo"), ("email", "owner@alpha.test"), ("role", "owner")]),
        ("change_role", vec![("slug", "bravo"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "bravo"), ("user_id", u)]),
        // Bob's ids smuggled into Alice's own organization.
        ("get_project", vec![("slug", "alpha"), ("id", p)]),
        ("change_role", vec![("slug", "alpha"), ("user_id", u), ("role", "viewer")]),
        ("remove_member", vec![("slug", "alpha"), ("user_id", u)]),
    ];
    for (function, form) in attempts {
        let r = t.alice.call(function, &form).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{function} {form:?}: {}", r.body);
        assert!(!r.body.contains("Bravo"), "{function} leaked: {}", r.body);
        assert!(!r.body.contains("bravo.test"), "{function} leaked: {}", r.body);
    }
    assert_eq!(t.app.count("SELECT count(*) FROM projects").await, 2, "nothing planted");
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
    let t = two_tenants().await;
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
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("Page not found"), "{path}");
        assert!(!r.body.contains("Bravo secret") && !r.body.contains("Org bravo"), "{path} leaked");
    }
    let own = t.alice.get("/t/alpha/projects").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Alpha secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tenant_context_the_app_role_sees_no_tenant_rows() {
    let t = two_tenants().await;
    let mut conn = PgConnection::connect(&t.app.app_db_url).await.unwrap();
    for table in ["projects", "memberships", "audit_log"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{table} is visible without a tenant");
    }
    // With one tenant's context, only that tenant's rows, and no writing into another.
    let mut tx = conn.begin().await.unwrap();
    let alpha: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'alpha'").fetch_one(&mut *tx).await.unwrap();
    let bravo: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'bravo'").fetch_one(&mut *tx).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(alpha.to_string()).execute(&mut *tx).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects").fetch_all(&mut *tx).await.unwrap();
    assert_eq!(names, ["Alpha secret"]);
    let planted = sqlx::query("INSERT INTO projects (id, tenant_id, name, created_by) SELECT gen_random_uuid(), $1, 'Planted', id FROM users LIMIT 1")
        .bind(bravo)
        .execute(&mut *tx)
        .await;
    assert!(planted.is_err(), "row-level security refuses rows for another tenant");
    tx.rollback().await.unwrap();

    // The tenant setting is transaction-local: nothing lingers on the connection.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_cannot_switch_security_off_or_rewrite_history() {
    let t = two_tenants().await;
    let mut conn = PgConnection::connect(&t.app.app_db_url).await.unwrap();
    for statement in [
        "ALTER TABLE projects DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY projects_in_tenant ON projects",
        "SET ROLE tessera_owner",
    ] {
        assert!(conn.execute(statement).await.is_err(), "{statement} must fail for the app role");
    }
    // row_security = off makes a filtered query fail instead of silently bypassing the policy.
    conn.execute("SET row_security = off").await.unwrap();
    assert!(sqlx::query("SELECT count(*) FROM projects").fetch_one(&mut conn).await.is_err());
    conn.execute("RESET row_security").await.unwrap();

    // The audit trail is append-only for the app.
    let mut tx = conn.begin().await.unwrap();
    let alpha: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'alpha'").fetch_one(&mut *tx).await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)").bind(alpha.to_string()).execute(&mut *tx).await.unwrap();
    assert!(tx.execute("DELETE FROM audit_log").await.is_err());
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_start_on_a_role_that_could_bypass_security() {
    let t = two_tenants().await;
    // The owner role owns the tables, so it could switch row-level security off.
    let owner = sqlx::PgPool::connect(&t.app.owner_db_url).await.unwrap();
    let err = tessera_backend::db::check_app_role(&owner).await.unwrap_err();
    assert!(err.to_string().contains("owns"), "{err}");
    let err = tessera_backend::db::check_app_role(&t.app.inspect).await.unwrap_err();
    assert!(err.to_string().contains("superuser"), "{err}");
    tessera_backend::db::check_app_role(&sqlx::PgPool::connect(&t.app.app_db_url).await.unwrap()).await.expect("the app role is confined");
}
