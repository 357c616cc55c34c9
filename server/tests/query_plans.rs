//! Tenant queries stay on indexes when a table holds many organizations' rows: the planner,
//! given realistic statistics, must never read a tenant table from start to end to find one
//! organization's rows (it would get slower with every customer).

mod common;

use common::TestApp;
use sqlx::{Connection, Executor};

/// The plan of `query`, run as the app role inside `slug`'s tenant context.
async fn plan(app: &TestApp, slug: &str, query: &str) -> String {
    let tenant = app.tenant_id(slug).await;
    let mut conn = app.app_conn_for(slug).await;
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{tenant}'").as_str()).await.unwrap();
    let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {query}")).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_organizations_projects_are_found_by_index_among_many() {
    let app = TestApp::spawn().await;
    for (slug, model) in [("acme", "pooled"), ("globex", "schema")] {
        app.owner_of_in(slug, "eu", model).await;
        let tenant = app.tenant_id(slug).await;
        // 20,000 projects of 1,000 other organizations, and 100 of this one.
        let mut data = app.inspect_tenant(slug).await;
        sqlx::query(
            "INSERT INTO projects (id, tenant_id, name, created_by)
             SELECT gen_random_uuid(), CASE WHEN n % 201 = 0 THEN $1 ELSE ('00000000-0000-0000-0000-' || lpad((n % 1000)::text, 12, '0'))::uuid END,
                    'Project ' || n, gen_random_uuid()
               FROM generate_series(1, 20100) n",
        )
        .bind(tenant)
        .execute(&mut data)
        .await
        .unwrap();
        data.execute("ANALYZE projects").await.unwrap();
        for query in [
            // The list (backend::projects::list) and one project (backend::projects::get).
            "SELECT id, name, description, created_by, created_at FROM projects ORDER BY created_at DESC, id LIMIT 500".to_string(),
            "SELECT id, name, description, created_by, created_at FROM projects WHERE id = '00000000-0000-0000-0000-00000000abcd'".to_string(),
            "SELECT count(*) FROM projects".to_string(),
        ] {
            let plan = plan(&app, slug, &query).await;
            assert!(!plan.contains("Seq Scan"), "{model}: {query}\n{plan}");
        }
    }
}
