//! Choosing where an organization's data lives: a region (its own PostgreSQL cluster) and a
//! tenancy model. The data goes there, and only there; the door keeps routing it there; a
//! database that is down or behind only affects its own organization.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use sqlx::{Executor, Row};
use std::time::Duration;
use tessera_backend::tenancy::migrate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_created_in_region_us_has_no_rows_in_region_eu() {
    let app = TestApp::spawn().await;
    for (slug, model) in [("us-pooled", "pooled"), ("us-schema", "schema"), ("us-dedicated", "dedicated")] {
        let owner = app.owner_of_in(slug, "us", model).await;
        owner.add_project(slug, "Residency check").await;
        let id = app.tenant_id(slug).await;
        let simple = id.simple().to_string();

        // Cluster A (region eu, which also hosts the control plane) holds none of its data.
        let in_eu: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM shared.projects WHERE tenant_id = $1) + (SELECT count(*) FROM shared.audit_log WHERE tenant_id = $1)",
        )
        .bind(id)
        .fetch_one(&app.inspect)
        .await
        .unwrap();
        assert_eq!(in_eu, 0, "{model}: rows of a us tenant in eu's shared schema");
        let schemas: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 't_' || $1").bind(&simple).fetch_one(&app.inspect).await.unwrap();
        assert_eq!(schemas, 0, "{model}: a schema for a us tenant on cluster eu");
        let databases: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = 'tessera_t_' || $1")
            .bind(&simple)
            .fetch_one(&app.inspect)
            .await
            .unwrap();
        assert_eq!(databases, 0, "{model}: a database for a us tenant on cluster eu");

        // Cluster B has all of it: the project and the audit record of its creation.
        let mut there = app.inspect_tenant(slug).await;
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM projects WHERE tenant_id = $1) AS p, (SELECT count(*) FROM audit_log WHERE tenant_id = $1) AS a",
        )
        .bind(id)
        .fetch_one(&mut there)
        .await
        .unwrap();
        assert_eq!((row.get::<i64, _>("p"), row.get::<i64, _>("a")), (1, 1), "{model}: the data lives in us");
        let region_b_schemas: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 't_' || $1").bind(&simple).fetch_one(&app.inspect_b).await.unwrap();
        assert_eq!(region_b_schemas, i64::from(model == "schema"), "{model}: its own schema only in the schema model");

        // The owner sees where the data lives.
        let settings = owner.call("org_settings", &[("slug", slug)]).await.json();
        assert_eq!(settings["region"], "us");
        assert_eq!(settings["model"].as_str().unwrap().to_lowercase(), model);
        let page = owner.get(&format!("/t/{slug}/settings")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(r#"data-testid="data-region">us<"#), "{}", page.body);
    }
    // The control plane records where each lives.
    let placements: Vec<(String, String, String)> =
        sqlx::query_as("SELECT slug, model, region FROM tenants ORDER BY slug").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(
        placements,
        [
            ("us-dedicated".into(), "dedicated".into(), "us".into()),
            ("us-pooled".into(), "pooled".into(), "us".into()),
            ("us-schema".into(), "schema".into(), "us".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_rejects_unknown_regions_and_models_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let browser = app.signed_up("founder@example.test").await;
    let schemas_before = app.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'").await;
    for (region, model, field, says) in [
        ("mars", "pooled", "region", "mars"),
        ("eu;drop", "pooled", "region", "eu;drop"),
        ("eu", "sharded", "model", "sharded"),
        ("us", "DEDICATED-ish", "model", "dedicated-ish"),
    ] {
        let r = browser.call("create_org", &[("name", "Nowhere"), ("slug", "nowhere"), ("region", region), ("model", model)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{region}/{model}: {}", r.body);
        assert_eq!(r.error_field().as_deref(), Some(field), "{region}/{model}: {}", r.body);
        assert!(r.error_message().contains(says), "{region}/{model}: {}", r.error_message());
    }
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'").await, schemas_before);
    // The options offered match what is accepted.
    let options = browser.call("org_placement_options", &[]).await.json();
    assert_eq!(options["regions"], serde_json::json!(["eu", "us"]));
    assert_eq!(options["default_region"], "eu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_can_limit_the_models_it_offers() {
    let app = TestApp::spawn_with(|c| c.topology.models = vec![tessera_domain::placement::TenancyModel::Pooled]).await;
    let browser = app.signed_up("founder@example.test").await;
    let r = browser.call("create_org", &[("name", "Big"), ("slug", "big-co"), ("region", "eu"), ("model", "dedicated")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.error_field().as_deref(), Some("model"));
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_where_the_data_lives() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of_in("acme", "eu", "schema").await;
    let member = app.signed_up("member@acme.test").await;
    owner.invite_and_accept("acme", "member@acme.test", "member", &member).await;
    assert_eq!(member.call("org_settings", &[("slug", "acme")]).await.status, StatusCode::FORBIDDEN);
    let page = member.get("/t/acme").await;
    assert!(!page.body.contains("/t/acme/settings"), "members get no Settings link");
    let settings = owner.call("org_settings", &[("slug", "acme")]).await.json();
    assert_eq!(settings["model"], "Schema");
    assert_eq!(settings["region"], "eu");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_whose_data_is_behind_is_not_served_until_migrated() {
    let app = TestApp::spawn().await;
    let behind = app.owner_of_in("behind", "eu", "schema").await;
    let fine = app.owner_of_in("fine", "us", "dedicated").await;
    sqlx::query("UPDATE tenants SET schema_version = 0 WHERE slug = 'behind'").execute(&app.inspect).await.unwrap();

    let r = behind.call("list_projects", &[("slug", "behind")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.error_message().contains("being upgraded"), "{}", r.error_message());
    let page = behind.get("/t/behind/projects").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("Temporarily unavailable"));
    assert_eq!(fine.call("list_projects", &[("slug", "fine")]).await.status, StatusCode::OK, "others are unaffected");

    let report = migrate::migrate_all(&app.owner_db_url, app.backend.tenancy.topology(), 2, &|_, _, _| {}).await.unwrap();
    assert_eq!(report.failures(), 0, "{report:?}");
    let mine = report.tenants.iter().find(|t| t.slug == "behind").unwrap();
    assert_eq!(mine.outcome, migrate::Outcome::Migrated { from: 0 });
    assert_eq!(behind.call("list_projects", &[("slug", "behind")]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedicated_pools_are_capped_and_a_database_that_is_down_affects_only_its_organization() {
    let app = TestApp::spawn_with(|c| {
        c.topology.dedicated_pools_max = 2;
        c.topology.acquire_timeout = Duration::from_secs(2);
    })
    .await;
    let mut owners = Vec::new();
    for slug in ["ded-one", "ded-two", "ded-three"] {
        let owner = app.owner_of_in(slug, "eu", "dedicated").await;
        owner.add_project(slug, "Roadmap").await;
        owners.push((slug, owner));
    }
    let pooled = app.owner_of("shared-co").await;
    for (slug, owner) in &owners {
        assert_eq!(owner.call("list_projects", &[("slug", slug)]).await.status, StatusCode::OK);
        assert!(app.backend.tenancy.topology().open_dedicated_pools() <= 2, "the least recently used pool was closed");
    }

    // Take ded-one's database away: new connections are refused, existing ones killed.
    let db: String = sqlx::query_scalar("SELECT database FROM tenants WHERE slug = 'ded-one'").fetch_one(&app.inspect).await.unwrap();
    app.inspect.execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false").as_str()).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1").bind(&db).execute(&app.inspect).await.unwrap();

    let (slug, owner) = &owners[0];
    let started = std::time::Instant::now();
    let r = owner.call("list_projects", &[("slug", slug)]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.error_message().contains("Other organizations are not affected"), "{}", r.error_message());
    assert!(started.elapsed() < Duration::from_secs(10), "answered promptly, not after a hang");
    let page = owner.get(&format!("/t/{slug}/projects")).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);

    let (slug2, owner2) = &owners[1];
    assert_eq!(owner2.call("list_projects", &[("slug", slug2)]).await.status, StatusCode::OK);
    assert_eq!(pooled.call("list_projects", &[("slug", "shared-co")]).await.status, StatusCode::OK);

    app.inspect.execute(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true").as_str()).await.unwrap();
    let mut last = None;
    for _ in 0..40 {
        let r = owner.call("list_projects", &[("slug", slug)]).await;
        if r.status == StatusCode::OK {
            last = None;
            break;
        }
        last = Some((r.status, r.body));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(last, None, "the organization is served again once its database is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_organization_gets_a_503_while_others_are_served() {
    let app = TestApp::spawn_with(|c| c.topology.statement_timeout = Duration::from_secs(1)).await;
    let slow = app.owner_of_in("slow-co", "us", "dedicated").await;
    slow.add_project("slow-co", "Stuck").await;
    let quick = app.owner_of_in("quick-co", "us", "schema").await;
    quick.add_project("quick-co", "Flowing").await;

    // Something holds a lock on slow-co's projects table (a long migration, a stuck job...).
    let mut blocker = app.inspect_tenant("slow-co").await;
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE").execute(&mut blocker).await.unwrap();

    let started = std::time::Instant::now();
    let (stuck, flowing) = tokio::join!(slow.call("list_projects", &[("slug", "slow-co")]), quick.call("list_projects", &[("slug", "quick-co")]));
    assert_eq!(stuck.status, StatusCode::SERVICE_UNAVAILABLE, "{}", stuck.body);
    assert!(stuck.error_message().contains("took too long"), "{}", stuck.error_message());
    assert!(started.elapsed() < Duration::from_secs(8), "the slow organization's request was cut off");
    assert_eq!(flowing.status, StatusCode::OK);
    assert_eq!(flowing.json()[0]["name"], "Flowing");

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    assert_eq!(slow.call("list_projects", &[("slug", "slow-co")]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regions_dedicated_databases_can_live_on_another_cluster() {
    // Region eu keeps its shared tables on cluster A but its dedicated databases on cluster B.
    let app = TestApp::spawn_with(|c| {
        let b = c.topology.regions[1].clone();
        c.topology.regions[0].dedicated_app_url = Some(b.app_url);
        c.topology.regions[0].dedicated_owner_url = b.owner_url;
    })
    .await;
    let owner = app.owner_of_in("apart", "eu", "dedicated").await;
    owner.add_project("apart", "On its own cluster").await;
    let id = app.tenant_id("apart").await;
    let db = format!("tessera_t_{}", id.simple());
    let on = |pool: &sqlx::PgPool| {
        let db = db.clone();
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_database WHERE datname = $1").bind(db).fetch_one(&pool).await.unwrap() }
    };
    assert_eq!((on(&app.inspect).await, on(&app.inspect_b).await), (0, 1), "the database is on cluster B");
    let settings = owner.call("org_settings", &[("slug", "apart")]).await.json();
    assert_eq!((settings["region"].as_str(), settings["model"].as_str()), (Some("eu"), Some("Dedicated")));

    // Moving it into the region's own cluster and back keeps its data.
    tessera_backend::tenancy::relocate::move_tenant(&app.backend.tenancy, "apart", "schema", "eu", "t").await.unwrap();
    assert_eq!(on(&app.inspect_b).await, 0, "the dedicated database was removed after the move");
    assert_eq!(owner.call("list_projects", &[("slug", "apart")]).await.json()[0]["name"], "On its own cluster");
    tessera_backend::tenancy::relocate::move_tenant(&app.backend.tenancy, "apart", "dedicated", "eu", "t").await.unwrap();
    assert_eq!((on(&app.inspect).await, on(&app.inspect_b).await), (0, 1));
    owner.add_project("apart", "Still writable").await;
    assert_eq!(owner.call("list_projects", &[("slug", "apart")]).await.json().as_array().unwrap().len(), 2);
}
