//! Deleting an organization: only an Owner, only after typing its name, with a grace period in
//! which it is read-only and can be restored; then the scheduled purge removes its data in
//! whichever model and region it lives, and leaves an audited record behind.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use tessera_backend::tenancy::lifecycle::purge_due;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_owner_who_types_the_name_can_schedule_deletion_and_it_can_be_cancelled() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "Roadmap").await;
    let admin = app.signed_up("admin@acme.test").await;
    owner.invite_and_accept("acme", "admin@acme.test", "admin", &admin).await;

    let r = admin.call("delete_org", &[("slug", "acme"), ("confirm", "acme")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = owner.call("delete_org", &[("slug", "acme"), ("confirm", "acme-corp")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_field().as_deref(), Some("confirm"));
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE status = 'active'").await, 1);

    let r = owner.call("delete_org", &[("slug", "acme"), ("confirm", "acme")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let settings = owner.call("org_settings", &[("slug", "acme")]).await.json();
    assert_eq!(settings["status"], "deleting");
    assert!(settings["delete_after"].as_str().is_some_and(|d| d.starts_with('2')), "{settings}");
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE delete_after > now() + interval '29 days'").await, 1, "30 days of grace");

    // Read-only meanwhile, with a message that says what to do.
    assert_eq!(owner.call("list_projects", &[("slug", "acme")]).await.status, StatusCode::OK);
    let r = owner.call("create_project", &[("slug", "acme"), ("name", "More"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.error_message().contains("cancel the deletion"), "{}", r.error_message());
    let page = owner.get("/t/acme/settings").await;
    assert!(page.body.contains("Cancel deletion"), "the settings page offers the way back");

    assert_eq!(admin.call("cancel_org_deletion", &[("slug", "acme")]).await.status, StatusCode::FORBIDDEN);
    let r = owner.call("cancel_org_deletion", &[("slug", "acme")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    owner.add_project("acme", "Back in business").await;
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'tenant.deletion%' ORDER BY occurred_at")
        .fetch_all(&app.inspect)
        .await
        .unwrap();
    assert_eq!(actions, ["tenant.deletion_scheduled", "tenant.deletion_cancelled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_removes_a_deleted_organizations_data_in_every_model_and_region() {
    let app = TestApp::spawn().await;
    let keep = app.owner_of("keeper").await;
    keep.add_project("keeper", "Still here").await;
    let mut doomed = Vec::new();
    for (slug, region, model) in [("gone-pooled", "eu", "pooled"), ("gone-schema", "us", "schema"), ("gone-dedicated", "eu", "dedicated")] {
        let owner = app.owner_of_in(slug, region, model).await;
        owner.add_project(slug, "Doomed").await;
        let r = owner.call("delete_org", &[("slug", slug), ("confirm", slug)]).await;
        assert!(r.status.is_success(), "{}", r.body);
        doomed.push((slug, app.tenant_id(slug).await, owner));
    }
    assert!(purge_due(&app.backend.tenancy).await.unwrap().is_empty(), "nothing is due during the grace period");

    sqlx::query("UPDATE tenants SET delete_after = now() - interval '1 second' WHERE status = 'deleting'").execute(&app.inspect).await.unwrap();
    let mut purged = purge_due(&app.backend.tenancy).await.unwrap();
    purged.sort();
    assert_eq!(purged, ["gone-dedicated", "gone-pooled", "gone-schema"]);

    let (_, pooled_id, _) = &doomed[0];
    assert_eq!(app.count(&format!("SELECT count(*) FROM shared.projects WHERE tenant_id = '{pooled_id}'")).await, 0);
    assert_eq!(app.count(&format!("SELECT count(*) FROM shared.audit_log WHERE tenant_id = '{pooled_id}'")).await, 0);
    let (_, schema_id, _) = &doomed[1];
    let schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(format!("t_{}", schema_id.simple()))
        .fetch_one(&app.inspect_b)
        .await
        .unwrap();
    assert_eq!(schemas, 0);
    let (_, dedicated_id, _) = &doomed[2];
    assert_eq!(app.count(&format!("SELECT count(*) FROM pg_database WHERE datname = 'tessera_t_{}'", dedicated_id.simple())).await, 0);

    for (slug, id, owner) in &doomed {
        assert_eq!(owner.get(&format!("/t/{slug}")).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.count(&format!("SELECT count(*) FROM memberships WHERE tenant_id = '{id}'")).await, 0);
        assert_eq!(app.count(&format!("SELECT count(*) FROM audit_log WHERE tenant_id = '{id}' AND action = 'tenant.purged'")).await, 1);
        assert_eq!(app.count(&format!("SELECT count(*) FROM tenants WHERE id = '{id}' AND status = 'deleted'")).await, 1);
    }
    assert_eq!(keep.call("list_projects", &[("slug", "keeper")]).await.json().as_array().unwrap().len(), 1);
    assert!(purge_due(&app.backend.tenancy).await.unwrap().is_empty(), "running again finds nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_died_half_way_is_finished_by_the_next_run_and_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of_in("half-done", "us", "dedicated").await;
    owner.call("delete_org", &[("slug", "half-done"), ("confirm", "half-done")]).await;
    // Claimed by a purge that then died (its claim is stale).
    sqlx::query("UPDATE tenants SET status = 'purging', purge_claimed_at = now() - interval '1 hour' WHERE slug = 'half-done'")
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!(owner.call("cancel_org_deletion", &[("slug", "half-done")]).await.status, StatusCode::NOT_FOUND, "too late to cancel");
    assert_eq!(purge_due(&app.backend.tenancy).await.unwrap(), ["half-done"]);
    let id = app.tenant_id("half-done").await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(format!("tessera_t_{}", id.simple()))
        .fetch_one(&app.inspect_b)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(app.count("SELECT count(*) FROM tenants WHERE status = 'deleted'").await, 1);
}
