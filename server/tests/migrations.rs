//! Migrating every place tenant data lives, in parallel: a broken tenant is reported without
//! holding up the rest, and running the command again finishes the job.

mod common;
use common::TestApp;
use sqlx::Executor;
use tessera_backend::tenancy::migrate::{self, Outcome};
use tessera_backend::tenancy::provision::latest_tenant_version;

const SCHEMA_TENANTS: usize = 200;
const DEDICATED_TENANTS: usize = 20;

/// Registers a tenant in the control plane whose own tables don't exist yet (version 0), as
/// after deploying a build with a new tenant migration.
async fn behind(app: &TestApp, slug: &str, model: &str, region: &str) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    let database = (model == "dedicated").then(|| format!("tessera_t_{}", id.simple()));
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, model, region, database, schema_name, schema_version)
         VALUES ($1, $2, $2, $3, $4, $5, 't_' || $6, 0)",
    )
    .bind(id)
    .bind(slug)
    .bind(model)
    .bind(region)
    .bind(&database)
    .bind(id.simple().to_string())
    .execute(&app.inspect)
    .await
    .unwrap();
    if let Some(db) = database {
        let pool = if region == "eu" { &app.inspect } else { &app.inspect_b };
        pool.execute(format!("CREATE DATABASE {db} OWNER tessera_owner").as_str()).await.unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_schemas_and_twenty_databases_migrate_and_a_broken_tenant_finishes_on_rerun() {
    let app = TestApp::spawn().await;
    for i in 0..SCHEMA_TENANTS {
        behind(&app, &format!("schema-{i:03}"), "schema", if i % 2 == 0 { "eu" } else { "us" }).await;
    }
    for i in 0..DEDICATED_TENANTS {
        behind(&app, &format!("dedicated-{i:02}"), "dedicated", if i % 2 == 0 { "eu" } else { "us" }).await;
    }
    // A tenant whose schema has a table in the way: its migration fails.
    let broken = behind(&app, "broken-co", "schema", "eu").await;
    let schema = format!("t_{}", broken.simple());
    sqlx::query(&format!("CREATE SCHEMA {schema} AUTHORIZATION tessera_owner")).execute(&app.inspect).await.unwrap();
    sqlx::query(&format!("CREATE TABLE {schema}.projects (id int)")).execute(&app.inspect).await.unwrap();
    sqlx::query(&format!("ALTER TABLE {schema}.projects OWNER TO tessera_owner")).execute(&app.inspect).await.unwrap();

    let progress = std::sync::Mutex::new(Vec::new());
    let topology = app.backend.tenancy.topology();
    let report = migrate::migrate_all(&app.owner_db_url, topology, 8, &|done, total, _| progress.lock().unwrap().push((done, total))).await.unwrap();
    let total = SCHEMA_TENANTS + DEDICATED_TENANTS + 1;
    assert_eq!(report.tenants.len(), total);
    assert_eq!(progress.lock().unwrap().len(), total, "progress after every tenant");
    assert!(progress.lock().unwrap().iter().any(|&(done, t)| done == total && t == total));
    assert_eq!(report.failures(), 1, "only the broken tenant fails");
    let failed = report.tenants.iter().find(|t| t.slug == "broken-co").unwrap();
    assert!(matches!(&failed.outcome, Outcome::Failed(e) if e.contains("projects")), "{:?}", failed.outcome);
    assert_eq!(failed.version, 0);
    let latest = latest_tenant_version();
    for t in report.tenants.iter().filter(|t| t.slug != "broken-co") {
        assert_eq!((&t.outcome, t.version), (&Outcome::Migrated { from: 0 }, latest), "{}", t.slug);
    }
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE schema_version = 0").await, 1);

    // Really migrated: every tenant's own tables exist where the control plane says they are.
    let eu_schemas = app.count("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 't\\_%' AND tablename = 'projects'").await;
    let us_schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 't\\_%' AND tablename = 'projects'")
        .fetch_one(&app.inspect_b)
        .await
        .unwrap();
    assert_eq!(eu_schemas + us_schemas, SCHEMA_TENANTS as i64 + 1, "200 migrated schemas plus the broken one's stray table");

    // The operator fixes the cause and reruns: only the broken tenant is left to do.
    sqlx::query(&format!("DROP TABLE {schema}.projects")).execute(&app.inspect).await.unwrap();
    let rerun = migrate::migrate_all(&app.owner_db_url, topology, 8, &|_, _, _| {}).await.unwrap();
    assert_eq!(rerun.failures(), 0, "{:?}", rerun.tenants.iter().find(|t| matches!(t.outcome, Outcome::Failed(_))));
    for t in &rerun.tenants {
        let expected = if t.slug == "broken-co" { Outcome::Migrated { from: 0 } } else { Outcome::UpToDate };
        assert_eq!((&t.outcome, t.version), (&expected, latest), "{}", t.slug);
    }
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE schema_version = 0").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_database_is_missing_is_reported_not_fatal() {
    let app = TestApp::spawn().await;
    behind(&app, "fine-co", "schema", "us").await;
    let gone = behind(&app, "gone-co", "dedicated", "eu").await;
    app.inspect.execute(format!("DROP DATABASE tessera_t_{}", gone.simple()).as_str()).await.unwrap();
    let report = migrate::migrate_all(&app.owner_db_url, app.backend.tenancy.topology(), 4, &|_, _, _| {}).await.unwrap();
    assert_eq!(report.failures(), 1);
    assert!(matches!(report.tenants.iter().find(|t| t.slug == "gone-co").unwrap().outcome, Outcome::Failed(_)));
    assert_eq!(report.tenants.iter().find(|t| t.slug == "fine-co").unwrap().outcome, Outcome::Migrated { from: 0 });
}
