//! Tenant queries stay on indexes when a table holds many organizations' rows: the planner,
//! given realistic statistics, must never read a tenant table from start to end to find one
//! organization's rows (it would get slower with every customer).

mod common;

use common::TestApp;
use sqlx::{Connection, Executor};

/// The plan of `query`, run as the app role inside `slug`'s tenant context, as a member who
/// sees only the restricted projects granted to them (the costlier policy).
async fn plan(app: &TestApp, slug: &str, query: &str) -> String {
    let tenant = app.tenant_id(slug).await;
    let mut conn = app.app_conn_for(slug).await;
    let mut tx = conn.begin().await.unwrap();
    let member = uuid::Uuid::new_v4();
    tx.execute(format!("SET LOCAL app.tenant_id = '{tenant}'; SET LOCAL app.user_id = '{member}'; SET LOCAL app.sees_all = 'off'").as_str())
        .await
        .unwrap();
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
        // Every tenth project restricted, each with a grant; a group per organization with members.
        data.execute(
            "UPDATE projects SET visibility = 'restricted' WHERE ('x' || substr(md5(id::text), 1, 2))::bit(8)::int % 10 = 0;
             INSERT INTO groups (id, tenant_id, name, created_by)
             SELECT gen_random_uuid(), t, 'Group', gen_random_uuid() FROM (SELECT DISTINCT tenant_id AS t FROM projects) ts;
             INSERT INTO group_members (tenant_id, group_id, user_id) SELECT g.tenant_id, g.id, gen_random_uuid() FROM groups g, generate_series(1, 20);
             INSERT INTO project_grants (id, tenant_id, project_id, user_id, role, granted_by)
             SELECT gen_random_uuid(), p.tenant_id, p.id, gen_random_uuid(), 'viewer', gen_random_uuid() FROM projects p WHERE p.visibility = 'restricted';
             INSERT INTO project_grants (id, tenant_id, project_id, group_id, role, granted_by)
             SELECT gen_random_uuid(), p.tenant_id, p.id, g.id, 'editor', gen_random_uuid()
               FROM projects p JOIN groups g ON g.tenant_id = p.tenant_id WHERE p.visibility = 'restricted';
             INSERT INTO documents (id, tenant_id, project_id, title, created_by, updated_by)
             SELECT gen_random_uuid(), p.tenant_id, p.id, 'Document', p.created_by, p.created_by FROM projects p;
             ANALYZE projects; ANALYZE groups; ANALYZE group_members; ANALYZE project_grants; ANALYZE documents;",
        )
        .await
        .unwrap();
        // What the services ask (backend::projects and backend::access), with the strongest
        // grant of the asker on each project.
        let your_grant = "(SELECT g.role FROM project_grants g WHERE g.project_id = p.id
              AND (g.user_id = app_user_id() OR g.group_id IN (SELECT m.group_id FROM group_members m WHERE m.user_id = app_user_id()))
              ORDER BY array_position(ARRAY['admin', 'editor', 'viewer'], g.role) LIMIT 1)";
        for query in [
            format!("SELECT p.id, p.name, p.visibility, {your_grant} FROM projects p ORDER BY p.created_at DESC, p.id LIMIT 500"),
            format!("SELECT p.visibility, p.created_by, {your_grant} FROM projects p WHERE p.id = '00000000-0000-0000-0000-00000000abcd'"),
            "SELECT count(*) FROM projects".to_string(),
            "SELECT id FROM documents WHERE project_id = '00000000-0000-0000-0000-00000000abcd' ORDER BY updated_at DESC LIMIT 500".to_string(),
            "SELECT id, role FROM project_grants WHERE project_id = '00000000-0000-0000-0000-00000000abcd'".to_string(),
        ] {
            let plan = plan(&app, slug, &query).await;
            assert!(!plan.contains("Seq Scan"), "{model}: {query}\n{plan}");
        }
    }
}
