//! Moving an organization between tenancy models and regions: its data arrives intact
//! (row counts and checksums), it is read-only only while moving, the move is audited, and
//! the way back is just another move.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use tessera_backend::tenancy::relocate::{abort_move, move_tenant};
use tessera_backend::tenancy::topology::RegionConfig;
use tessera_backend::Error;
use tessera_domain::placement::RegionName;
use tessera_domain::AppError;

/// Per tenant table: row count and a digest of the rows, read wherever the tenant lives now.
async fn snapshot(app: &TestApp, slug: &str) -> Vec<(String, i64, String)> {
    let id = app.tenant_id(slug).await;
    let mut conn = app.inspect_tenant(slug).await;
    let mut out = Vec::new();
    for table in ["audit_log", "projects"] {
        let (n, digest): (i64, Option<String>) =
            sqlx::query_as(&format!("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {table} t WHERE tenant_id = $1"))
                .bind(id)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        out.push((table.to_string(), n, digest.unwrap_or_default()));
    }
    out
}

async fn placement(app: &TestApp, slug: &str) -> (String, String, String) {
    sqlx::query_as("SELECT model, region, status FROM tenants WHERE slug = $1").bind(slug).fetch_one(&app.inspect).await.unwrap()
}

fn app_error(result: Result<impl std::fmt::Debug, Error>) -> AppError {
    match result {
        Err(Error::App(e)) => e,
        other => panic!("expected a user-facing error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_moves_pooled_to_dedicated_to_another_region_and_back_with_identical_data() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    for name in ["Website relaunch", "Customer portal", "Data warehouse"] {
        owner.add_project("acme", name).await;
    }
    let neighbour = app.owner_of("neighbour").await;
    neighbour.add_project("neighbour", "Not moving").await;
    let id = app.tenant_id("acme").await;
    let original = snapshot(&app, "acme").await;
    assert_eq!(original[1].1, 3);

    let tenancy = &app.backend.tenancy;
    for (model, region) in [("dedicated", "eu"), ("schema", "us"), ("pooled", "eu")] {
        let before = placement(&app, "acme").await;
        let report = move_tenant(tenancy, "acme", model, region, "test-move").await.expect("move succeeds");
        assert_eq!(report.leftover, None);
        assert_eq!(report.tables.iter().find(|t| t.table == "projects").unwrap().rows, 3);
        assert_eq!(placement(&app, "acme").await, (model.into(), region.into(), "active".into()));
        assert_eq!(snapshot(&app, "acme").await, original, "data identical after moving to {model} in {region}");

        // The old place no longer holds it.
        match before.0.as_str() {
            "pooled" => assert_eq!(app.count(&format!("SELECT count(*) FROM shared.projects WHERE tenant_id = '{id}'")).await, 0),
            "dedicated" => {
                let db = format!("tessera_t_{}", id.simple());
                assert_eq!(app.count(&format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")).await, 0);
            }
            "schema" => {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                    .bind(format!("t_{}", id.simple()))
                    .fetch_one(&app.inspect_b)
                    .await
                    .unwrap();
                assert_eq!(n, 0);
            }
            _ => unreachable!(),
        }
        // The audit chains came verbatim: they still verify, and new records extend them.
        let checked = tessera_backend::audit::verify(tenancy, Some("acme")).await.unwrap();
        let checked = checked[0].1.as_ref().unwrap();
        assert!(checked.verified(), "after moving to {model} in {region}: {:?}", checked.breaks);
        // And the app follows it at once.
        let listed = owner.call("list_projects", &[("slug", "acme")]).await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_eq!(listed.json().as_array().unwrap().len(), 3);
    }
    let moves: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE tenant_id = $1 AND action = 'tenant.moved' ORDER BY occurred_at")
            .bind(id)
            .fetch_all(&app.inspect)
            .await
            .unwrap();
    assert_eq!(moves.len(), 3, "every move is audited in the control plane");
    assert_eq!(moves[1]["region"], serde_json::json!({ "old": "eu", "new": "us" }));
    assert_eq!(moves[2]["verified"]["projects"]["rows"], 3);

    // Writable again, and the neighbour in the shared tables never noticed.
    owner.add_project("acme", "After the moves").await;
    assert_eq!(snapshot(&app, "neighbour").await[1].1, 1);
    for slug in ["acme", "neighbour"] {
        let checked = tessera_backend::audit::verify(tenancy, Some(slug)).await.unwrap();
        let checked = checked[0].1.as_ref().unwrap();
        assert!(checked.verified(), "{slug}: {:?}", checked.breaks);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_with_bad_input_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of_in("acme", "eu", "schema").await;
    owner.add_project("acme", "Keep me").await;
    let tenancy = &app.backend.tenancy;
    let original = (placement(&app, "acme").await, snapshot(&app, "acme").await);

    let e = app_error(move_tenant(tenancy, "no-such-org", "pooled", "eu", "t").await);
    assert!(matches!(e, AppError::NotFound(_)), "{e:?}");
    let e = app_error(move_tenant(tenancy, "acme", "pooled", "mars", "t").await);
    assert_eq!(e.field(), Some("region"), "{e:?}");
    let e = app_error(move_tenant(tenancy, "acme", "sharded", "eu", "t").await);
    assert_eq!(e.field(), Some("model"), "{e:?}");
    let e = app_error(move_tenant(tenancy, "acme", "schema", "eu", "t").await);
    assert!(e.to_string().contains("already lives"), "{e}");
    assert_eq!((placement(&app, "acme").await, snapshot(&app, "acme").await), original);

    for (status, says) in [("suspended", "suspended"), ("moving", "already being moved")] {
        sqlx::query(
            "UPDATE tenants SET status = $1, moving_to_model = CASE WHEN $1 = 'moving' THEN 'pooled' END,
                    moving_to_region = CASE WHEN $1 = 'moving' THEN 'eu' END WHERE slug = 'acme'",
        )
        .bind(status)
        .execute(&app.inspect)
        .await
        .unwrap();
        let e = app_error(move_tenant(tenancy, "acme", "dedicated", "us", "t").await);
        assert!(matches!(e, AppError::Conflict(_)) && e.to_string().contains(says), "{status}: {e}");
        assert_eq!(placement(&app, "acme").await.2, status, "left as it was");
    }
    sqlx::query("UPDATE tenants SET status = 'active', moving_to_model = NULL, moving_to_region = NULL WHERE slug = 'acme'")
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!((placement(&app, "acme").await, snapshot(&app, "acme").await), original);

    // Two moves at once: one wins, the other is refused; the data is intact.
    let (first, second) = tokio::join!(move_tenant(tenancy, "acme", "dedicated", "us", "t1"), move_tenant(tenancy, "acme", "dedicated", "us", "t2"));
    assert_eq!(first.is_ok() as u8 + second.is_ok() as u8, 1, "{first:?} / {second:?}");
    assert_eq!(placement(&app, "acme").await, ("dedicated".into(), "us".into(), "active".into()));
    assert_eq!(snapshot(&app, "acme").await, original.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_into_a_database_of_its_own_needs_a_free_place() {
    let app = TestApp::spawn_with(|c| c.topology.dedicated_tenants_max = 1).await;
    app.owner_of_in("big", "eu", "dedicated").await;
    app.owner_of_in("acme", "eu", "schema").await;
    let tenancy = &app.backend.tenancy;
    let e = app_error(move_tenant(tenancy, "acme", "dedicated", "us", "t").await);
    assert_eq!(e.field(), Some("model"), "{e:?}");
    assert!(e.to_string().contains("no room"), "{e}");
    assert_eq!(placement(&app, "acme").await, ("schema".into(), "eu".into(), "active".into()));
    // One that has its own database already may take it to another region.
    move_tenant(tenancy, "big", "dedicated", "us", "t").await.expect("a dedicated tenant changes region at the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_moving_an_organization_is_read_only() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of_in("acme", "us", "dedicated").await;
    owner.add_project("acme", "Existing").await;

    sqlx::query("UPDATE tenants SET status = 'moving', moving_to_model = 'pooled', moving_to_region = 'eu' WHERE slug = 'acme'")
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!(owner.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::OK, "reads go on");
    let r = owner.call("create_project", &[("slug", "acme"), ("name", "During"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.error_message().contains("being moved"), "{}", r.error_message());
    let r = owner.call("invite_member", &[("slug", "acme"), ("email", "new@acme.test"), ("role", "viewer")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "team changes wait too: {}", r.body);

    // A request that entered before the move started still can't write into sealed data.
    sqlx::query("UPDATE tenants SET status = 'active', moving_to_model = NULL, moving_to_region = NULL WHERE slug = 'acme'")
        .execute(&app.inspect)
        .await
        .unwrap();
    let mut there = app.inspect_tenant("acme").await;
    let id = app.tenant_id("acme").await;
    sqlx::query("INSERT INTO tenant_fence (tenant_id, reason) VALUES ($1, 'moving')").bind(id).execute(&mut there).await.unwrap();
    let r = owner.call("create_project", &[("slug", "acme"), ("name", "During"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    sqlx::query("DELETE FROM tenant_fence").execute(&mut there).await.unwrap();
    owner.add_project("acme", "After").await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM projects ORDER BY name").fetch_all(&mut there).await.unwrap();
    assert_eq!(names, ["After", "Existing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacated_shared_schema_stays_sealed_and_a_move_back_reopens_it() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "First").await;
    let id = app.tenant_id("acme").await;
    move_tenant(&app.backend.tenancy, "acme", "schema", "eu", "t").await.unwrap();
    // A request that read the old placement just before the switch can't write into the
    // shared tables nobody reads any more.
    let fence: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM shared.tenant_fence WHERE tenant_id = $1").bind(id).fetch_all(&app.inspect).await.unwrap();
    assert_eq!(fence, ["vacated"]);
    owner.add_project("acme", "Second").await;
    move_tenant(&app.backend.tenancy, "acme", "pooled", "eu", "t").await.unwrap();
    assert_eq!(app.count(&format!("SELECT count(*) FROM shared.tenant_fence WHERE tenant_id = '{id}'")).await, 0);
    owner.add_project("acme", "Third").await;
    assert_eq!(owner.call("list_projects", &[("slug", "acme")]).await.json().as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_move_can_be_aborted() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of_in("acme", "eu", "schema").await;
    owner.add_project("acme", "Precious").await;
    let id = app.tenant_id("acme").await;
    // What a move that died after sealing leaves behind: the tenant `moving`, the source
    // sealed, a half-made destination database.
    sqlx::query("UPDATE tenants SET status = 'moving', moving_to_model = 'dedicated', moving_to_region = 'us' WHERE slug = 'acme'")
        .execute(&app.inspect)
        .await
        .unwrap();
    let mut source = app.inspect_tenant("acme").await;
    sqlx::query("INSERT INTO tenant_fence (tenant_id, reason) VALUES ($1, 'moving')").bind(id).execute(&mut source).await.unwrap();
    let db = format!("tessera_t_{}", id.simple());
    sqlx::Executor::execute(&app.inspect_b, format!("CREATE DATABASE {db} OWNER tessera_owner").as_str()).await.unwrap();

    let back = abort_move(&app.backend.tenancy, "acme").await.unwrap();
    assert_eq!(back.schema, format!("t_{}", id.simple()));
    assert_eq!(placement(&app, "acme").await, ("schema".into(), "eu".into(), "active".into()));
    let leftover: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1").bind(&db).fetch_one(&app.inspect_b).await.unwrap();
    assert_eq!(leftover, 0, "the half-made destination is gone");
    owner.add_project("acme", "Writable again").await;
    let e = app_error(abort_move(&app.backend.tenancy, "acme").await);
    assert!(e.to_string().contains("not being moved"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_onto_its_own_tables_or_onto_old_shared_tables_is_refused() {
    // "eu-mirror" is another name for the very same cluster and database as "eu".
    let app = TestApp::spawn_with(|c| {
        let eu = c.topology.regions[0].clone();
        c.topology.regions.push(RegionConfig { name: RegionName::parse("eu-mirror").unwrap(), ..eu });
    })
    .await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "Only copy").await;
    let e = app_error(move_tenant(&app.backend.tenancy, "acme", "pooled", "eu-mirror", "t").await);
    assert!(e.to_string().contains("already lives"), "{e}");

    // A region whose shared tables are behind can't take pooled tenants until migrated.
    sqlx::query("DELETE FROM pooled_schemas WHERE region = 'us'").execute(&app.inspect).await.unwrap();
    let e = app_error(move_tenant(&app.backend.tenancy, "acme", "pooled", "us", "t").await);
    assert!(e.to_string().contains("tessera-server migrate"), "{e}");
    assert_eq!(placement(&app, "acme").await, ("pooled".into(), "eu".into(), "active".into()));
    assert_eq!(owner.call("list_projects", &[("slug", "acme")]).await.json()[0]["name"], "Only copy");
}
