//! The maintenance job forgets sign-in state that can no longer be used, in every
//! organization at once, and nothing that still can.

mod common;
use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_job_forgets_spent_sign_in_state_and_keeps_what_is_still_live() {
    let app = TestApp::spawn().await;
    app.owner_of("acme").await;
    app.owner_of("globex").await;
    let (acme, globex) = (app.tenant_id("acme").await, app.tenant_id("globex").await);
    for (tenant, id, age) in [(acme, "old-acme", "2 days"), (globex, "old-globex", "2 days"), (acme, "live-acme", "5 minutes")] {
        sqlx::query(&format!("INSERT INTO saml_requests (id, tenant_id, next_path, created_at) VALUES ($1, $2, '/', now() - interval '{age}')"))
            .bind(id)
            .bind(tenant)
            .execute(&app.inspect)
            .await
            .unwrap();
    }
    for (tenant, id, expires) in [(globex, "seen-long-ago", "- interval '1 day'"), (acme, "seen-recently", "+ interval '30 minutes'")] {
        sqlx::query(&format!("INSERT INTO saml_assertions_seen (tenant_id, assertion_id, expires_at) VALUES ($1, $2, now() {expires})"))
            .bind(tenant)
            .bind(id)
            .execute(&app.inspect)
            .await
            .unwrap();
    }
    // Two API sign-ins; one of them long expired.
    for _ in 0..2 {
        app.api_access_token("owner@acme.test", "correct horse battery", None).await;
    }
    sqlx::query(
        "UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE family_id = (SELECT id FROM token_families ORDER BY created_at LIMIT 1)",
    )
    .execute(&app.inspect)
    .await
    .unwrap();
    sqlx::query("UPDATE token_families SET created_at = now() - interval '40 days'").execute(&app.inspect).await.unwrap();
    sqlx::query("UPDATE auth_tokens SET expires_at = now() - interval '2 days'").execute(&app.inspect).await.unwrap();
    let links = app.count("SELECT count(*) FROM auth_tokens").await;
    assert!(links > 0, "sign-up sent confirmation links");

    let forgotten = app.backend.identity.prune_expired().await.unwrap() + tessera_backend::sso::prune_expired(&app.backend.tenancy).await.unwrap();
    assert!(forgotten >= 3 + links as u64, "{forgotten}");

    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM saml_requests ORDER BY id").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(left, ["live-acme"], "old requests of every organization went, the live one stayed");
    let seen: Vec<String> = sqlx::query_scalar("SELECT assertion_id FROM saml_assertions_seen").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(seen, ["seen-recently"], "a replay must still be caught until the assertion expires");
    assert_eq!(app.count("SELECT count(*) FROM token_families").await, 1, "the expired sign-in went, the live one stayed");
    assert_eq!(app.count("SELECT count(*) FROM refresh_tokens").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM auth_tokens").await, 0);
}
