//! Connections to PostgreSQL over TLS: a region or a dedicated database may live on another
//! host, so the URLs' `sslmode` (and `sslrootcert`) are honoured, certificate checks included.

mod common;

use common::TestApp;

/// `url` pointed straight at the cluster behind `admin` (not through PgBouncer), asking for
/// TLS with the server's certificate checked against `ca`.
fn verified(url: &str, admin: &str, ca: &str) -> String {
    let port = admin.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next()).unwrap();
    let (head, database) = url.rsplit_once('/').unwrap();
    let host = head.rsplit_once(':').unwrap().0;
    format!("{host}:{port}/{database}?sslmode=verify-full&sslrootcert={ca}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_reaches_postgres_over_verified_tls_when_its_urls_ask_for_it() {
    let (admin_a, admin_b) = (std::env::var("TESSERA_TEST_ADMIN_URL").unwrap(), std::env::var("TESSERA_TEST_REGION_B_ADMIN_URL").unwrap());
    let (ca_a, ca_b) = (std::env::var("TESSERA_TEST_PG_CA").unwrap(), std::env::var("TESSERA_TEST_REGION_B_PG_CA").unwrap());
    let app = TestApp::spawn_with(|c| {
        c.database_url = verified(&c.database_url, &admin_a, &ca_a);
        c.topology.regions[0].app_url = verified(&c.topology.regions[0].app_url, &admin_a, &ca_a);
        c.topology.regions[1].app_url = verified(&c.topology.regions[1].app_url, &admin_b, &ca_b);
        c.topology.pgbouncer = false;
    })
    .await;
    let owner = app.owner_of("acme").await;
    owner.add_project("acme", "Over TLS").await;
    assert!(owner.get("/t/acme/projects").await.body.contains("Over TLS"));

    // Every connection the app holds to this test's database is encrypted.
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
           FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.usename = 'tessera_app' AND a.datname = current_database()",
    )
    .fetch_one(&app.inspect)
    .await
    .unwrap();
    assert!(encrypted > 0 && plain == 0, "{encrypted} encrypted, {plain} plain");

    // A server whose certificate the configured CA didn't sign is refused: the app doesn't
    // start rather than talk to it.
    let mut impostor = app.config.clone();
    impostor.database_url = verified(&app.config.database_url, &admin_a, &ca_b);
    assert!(tessera_server::build_app(&impostor).await.is_err(), "a certificate from another CA must not be trusted");
}
