//! The application role's narrowed rights (migration `least_privilege`): the columns that carry
//! security decisions are out of its reach, and the functions that write them keep their rules.

mod common;

use common::TestApp;
use sqlx::{Connection, Executor, PgConnection};

/// The SQLSTATE a statement failed with.
async fn refusal(conn: &mut PgConnection, sql: &str) -> String {
    match sqlx::query(sql).execute(&mut *conn).await {
        Ok(_) => format!("{sql} was allowed"),
        Err(e) => e.as_database_error().and_then(|d| d.code()).map(|c| c.to_string()).unwrap_or_else(|| e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_cannot_rewrite_placement_status_sign_in_rules_passwords_or_links() {
    let app = TestApp::spawn().await;
    app.owner_of("acme").await;
    let mut conn = PgConnection::connect(&app.app_db_url).await.unwrap();
    for sql in [
        "UPDATE tenants SET status = 'active'",
        "UPDATE tenants SET model = 'schema'",
        "UPDATE tenants SET region = 'us'",
        "UPDATE tenants SET database = 'elsewhere'",
        "UPDATE tenants SET schema_name = 'shared'",
        "UPDATE tenants SET require_mfa = false",
        "UPDATE tenants SET require_sso = false",
        "UPDATE tenants SET sso_satisfies_mfa = true",
        "UPDATE tenants SET delete_after = now()",
        "UPDATE users SET password_hash = '!unusable'",
        "UPDATE users SET email_verified_at = now()",
        "UPDATE users SET email = 'someone@else.test'",
        "UPDATE auth_tokens SET password_hash = NULL",
        "UPDATE auth_tokens SET user_id = user_id",
        "CREATE TEMP TABLE scratch (x int)",
        "CREATE TABLE public.scratch (x int)",
        "CREATE FUNCTION public.app_tenant_id_of_my_choosing() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ] {
        assert_eq!(refusal(&mut conn, sql).await, "42501", "{sql}");
    }
    // What it keeps: renaming, display names, spending a link (and the row locks they allow).
    for sql in ["UPDATE tenants SET name = name", "UPDATE users SET display_name = display_name", "UPDATE auth_tokens SET used_at = used_at"] {
        sqlx::query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_slipped_into_a_query_cannot_switch_the_tenant_it_sees() {
    let app = TestApp::spawn().await;
    app.owner_of("acme").await;
    app.owner_of("other").await;
    let (acme, other) = (app.tenant_id("acme").await, app.tenant_id("other").await);
    // Both where tenant data lives and on the control plane: inside acme's transaction, the
    // only ways to change the setting policies read are out of an injection's reach.
    for mut conn in [app.app_conn_for("acme").await, PgConnection::connect(&app.app_db_url).await.unwrap()] {
        let mut tx = conn.begin().await.unwrap();
        tx.execute(format!("SET LOCAL app.tenant_id = '{acme}'").as_str()).await.unwrap();
        let mut savepoint = tx.begin().await.unwrap();
        for injected in [
            format!("SELECT set_config('app.tenant_id', '{other}', true)"),
            format!("SELECT count(*) FROM pg_class WHERE pg_catalog.set_config('app.tenant_id', '{other}', true) IS NOT NULL"),
            format!("UPDATE pg_settings SET setting = '{other}' WHERE name = 'app.tenant_id'"),
        ] {
            assert_eq!(refusal(&mut savepoint, &injected).await, "42501", "{injected}");
            savepoint.rollback().await.unwrap();
            savepoint = tx.begin().await.unwrap();
        }
        // A SET can't ride along in a statement prepared with parameters.
        let stacked = sqlx::query("SELECT $1::int; SET LOCAL app.tenant_id = 'x'").bind(1).execute(&mut *savepoint).await;
        assert!(stacked.is_err(), "two commands in one prepared statement");
        savepoint.rollback().await.unwrap();
        let seen: String = sqlx::query_scalar("SELECT current_setting('app.tenant_id')").fetch_one(&mut *tx).await.unwrap();
        assert_eq!(seen, acme.to_string());
        // The server's own values arrive as they are, quotes, backslashes, line breaks and
        // accents included, however the connection reads string literals.
        let awkward = "o'br\u{e9}en\\'; SET LOCAL app.tenant_id = 'x\n@example.test";
        for conforming in ["on", "off"] {
            tx.execute(format!("SET LOCAL standard_conforming_strings = {conforming}").as_str()).await.unwrap();
            tessera_backend::db::set_local(&mut tx, &[(tessera_backend::db::Setting::ConfirmedEmail, awkward)]).await.unwrap();
            let (email, tenant): (String, String) =
                sqlx::query_as("SELECT current_setting('app.confirmed_email'), current_setting('app.tenant_id')").fetch_one(&mut *tx).await.unwrap();
            assert_eq!((email.as_str(), tenant), (awkward, acme.to_string()), "standard_conforming_strings {conforming}");
        }
        tx.rollback().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_visible_only_for_the_account_a_transaction_handles() {
    let app = TestApp::spawn().await;
    app.signed_up("ada@example.test").await;
    app.signed_up("bob@example.test").await;
    let (ada, bob) = (app.user_id("ada@example.test").await, app.user_id("bob@example.test").await);
    let secret_tables = ["sessions", "auth_tokens", "token_families", "refresh_tokens", "user_totp", "recovery_codes"];
    let count = |table: &str, user: &str| format!("SELECT count(*) FROM {table} WHERE {} = '{user}'", owner_column(table));
    let sessions_of_ada: i64 = sqlx::query_scalar(&count("sessions", &ada)).fetch_one(&app.inspect).await.unwrap();
    assert!(sessions_of_ada > 0, "ada is signed in");

    let mut conn = PgConnection::connect(&app.app_db_url).await.unwrap();
    // No account, no presented secret: nothing, not even a count.
    for table in secret_tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0, "{table} without an account");
    }
    assert_eq!(refusal(&mut conn, "SELECT password_hash FROM users").await, "42501", "password hashes aren't selectable");
    let hash: Option<String> = sqlx::query_scalar("SELECT account_password_hash()").fetch_one(&mut conn).await.unwrap();
    assert_eq!(hash, None);
    // Handling ada's account: ada's rows and hash, none of bob's.
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.account_id = '{ada}'").as_str()).await.unwrap();
    let seen: i64 = sqlx::query_scalar(&count("sessions", &ada)).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(seen, sessions_of_ada);
    for table in secret_tables {
        let n: i64 = sqlx::query_scalar(&count(table, &bob)).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(n, 0, "bob's {table} while handling ada");
    }
    let hash: Option<String> = sqlx::query_scalar("SELECT account_password_hash()").fetch_one(&mut *tx).await.unwrap();
    assert!(hash.is_some_and(|h| h.starts_with("$argon2id$")), "ada's own hash");
    // ... and nothing can be written in bob's name.
    let planted = format!("INSERT INTO sessions (id, data, expires_at, user_id) VALUES ('planted', '', now() + interval '1 day', '{bob}')");
    assert_eq!(refusal(&mut tx, &planted).await, "42501");
    tx.rollback().await.unwrap();
    // The organization's count of members without a second factor is all a tenant context gets.
    let n: i64 = sqlx::query_scalar("SELECT tenant_members_without_second_factor()").fetch_one(&mut conn).await.unwrap();
    assert_eq!(n, 0, "no organization acted in");
}

/// The column that says whose credential a row is.
fn owner_column(table: &str) -> &'static str {
    if table == "refresh_tokens" {
        "(SELECT user_id FROM token_families f WHERE f.id = family_id)"
    } else {
        "user_id"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_that_write_those_columns_keep_their_rules() {
    let app = TestApp::spawn().await;
    app.owner_of("acme").await;
    app.owner_of("other").await;
    let (acme, other) = (app.tenant_id("acme").await, app.tenant_id("other").await);
    let mut conn = PgConnection::connect(&app.app_db_url).await.unwrap();

    // A status moves only along the lifecycle, and only from where it is.
    let status = |from: &str, to: &str| format!("SELECT tenant_set_status('{acme}', '{from}', '{to}', now() + interval '1 day')");
    assert_eq!(refusal(&mut conn, &status("active", "deleted")).await, "23514", "no skipping to deleted");
    assert_eq!(refusal(&mut conn, &status("active", "suspended")).await, "23514");
    assert_eq!(refusal(&mut conn, &status("active", "deleting")).await, "42501", "a deletion is scheduled only inside its organization");
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{acme}'").as_str()).await.unwrap();
    let moved: bool = sqlx::query_scalar(&status("deleting", "active")).fetch_one(&mut *tx).await.unwrap();
    assert!(!moved, "acme isn't deleting: nothing changes");
    // Purging starts on the date, not before (nor is a live purge taken over).
    let scheduled: bool = sqlx::query_scalar(&status("active", "deleting")).fetch_one(&mut *tx).await.unwrap();
    assert!(scheduled);
    let early: bool = sqlx::query_scalar(&status("deleting", "purging")).fetch_one(&mut *tx).await.unwrap();
    assert!(!early, "a deletion due tomorrow doesn't purge today");
    tx.rollback().await.unwrap();
    // However a tenant row is written, its storage is named after it.
    let squatter = uuid::Uuid::new_v4();
    let insert = format!(
        "INSERT INTO tenants (id, slug, name, model, region, schema_name) VALUES ('{squatter}', 'squat', 'Squat', 'schema', 'eu', 't_{}')",
        acme.simple()
    );
    assert_eq!(refusal(&mut conn, &insert).await, "23514", "not into another tenant's schema");

    // A move lands where it was announced, in storage named after the tenant.
    let began: bool = sqlx::query_scalar("SELECT tenant_move_begin($1, 'schema', 'eu')").bind(acme).fetch_one(&mut conn).await.unwrap();
    assert!(began);
    let others_schema = format!("t_{}", other.simple());
    let hijack = format!("SELECT tenant_move_finish('{acme}', NULL, '{others_schema}', 1)");
    assert_eq!(refusal(&mut conn, &hijack).await, "23514", "not into another tenant's schema");
    let into_a_database = format!("SELECT tenant_move_finish('{acme}', 'tessera_t_{}', 't_{}', 1)", acme.simple(), acme.simple());
    assert_eq!(refusal(&mut conn, &into_a_database).await, "23514", "announced as a schema, not a database");
    let aborted: bool = sqlx::query_scalar("SELECT tenant_move_abort($1)").bind(acme).fetch_one(&mut conn).await.unwrap();
    assert!(aborted);
    let row: (String, String) = sqlx::query_as("SELECT status, model FROM tenants WHERE id = $1").bind(acme).fetch_one(&app.inspect).await.unwrap();
    assert_eq!(row, ("active".to_string(), "pooled".to_string()));

    // Sign-in rules change only inside the organization acted for; SSO only with a verified domain.
    assert_eq!(refusal(&mut conn, "SELECT tenant_set_sign_in_rules(true, NULL, NULL)").await, "42501");
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.tenant_id = '{acme}'").as_str()).await.unwrap();
    assert_eq!(refusal(&mut tx, "SELECT tenant_set_sign_in_rules(NULL, NULL, true)").await, "23514");
    tx.rollback().await.unwrap();

    // A password changes only on the strength of a link for the account.
    let user: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@acme.test'").fetch_one(&app.inspect).await.unwrap();
    let forged = format!("SELECT user_set_password('{user}', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', 'a guessed token')");
    assert_eq!(refusal(&mut conn, &forged).await, "42501");
    let not_a_hash = format!("SELECT user_set_password('{user}', 'plain text', 'a guessed token')");
    assert_eq!(refusal(&mut conn, &not_a_hash).await, "23514");
    // Confirming and evicting act only on the account the transaction handles...
    assert_eq!(refusal(&mut conn, &format!("SELECT user_evict_unconfirmed('{user}')")).await, "42501");
    assert_eq!(refusal(&mut conn, &format!("SELECT user_confirm_email('{user}')")).await, "42501");
    // ... and eviction spares a confirmed account.
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL app.account_id = '{user}'").as_str()).await.unwrap();
    let evicted: bool = sqlx::query_scalar("SELECT user_evict_unconfirmed($1)").bind(user).fetch_one(&mut *tx).await.unwrap();
    assert!(!evicted);
    tx.commit().await.unwrap();
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(user).fetch_one(&app.inspect).await.unwrap();
    assert!(hash.starts_with("$argon2id$"), "the owner's password is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_that_runs_with_the_owners_rights_pins_its_search_path() {
    let app = TestApp::spawn().await;
    let unpinned: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'public' AND p.prosecdef
            AND NOT coalesce('search_path=pg_catalog, public, pg_temp' = ANY(p.proconfig), false)",
    )
    .fetch_all(&app.inspect)
    .await
    .unwrap();
    assert_eq!(unpinned, Vec::<String>::new(), "SECURITY DEFINER functions without `SET search_path = pg_catalog, public, pg_temp`");
    let definers: i64 =
        app.count("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prosecdef").await;
    assert!(definers >= 8, "the least_privilege functions are there: {definers}");
}

/// `session_context` and `api_key_entrance` run with the owner's rights and make settings the
/// app role can't (app.user_id, app.api_key_hash) for their own queries; whatever a caller's
/// transaction had set before is there again after, and a wrong secret finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_lookups_put_back_the_settings_they_make_and_need_the_secret() {
    use sha2::Digest;
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let key =
        owner.call("create_api_key", &[("slug", "acme"), ("name", "Lookup"), ("scopes[]", "projects:read"), ("expires_in_days", "1")]).await.json()
            ["key"]
            .as_str()
            .unwrap()
            .to_string();
    let key_hash: String = sha2::Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let session: String = sqlx::query_scalar("SELECT id FROM sessions WHERE user_id IS NOT NULL").fetch_one(&app.inspect).await.unwrap();

    let mut conn = PgConnection::connect(&app.app_db_url).await.unwrap();
    conn.execute("BEGIN; SET LOCAL app.user_id = '00000000-0000-0000-0000-000000000001'; SET LOCAL app.api_key_hash = 'abcd'").await.unwrap();
    let found: bool = sqlx::query_scalar("SELECT session_context($1, 'acme', now() - interval '30 days') IS NOT NULL")
        .bind(&session)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(found, "the presented session is found");
    let found: bool = sqlx::query_scalar("SELECT api_key_entrance($1, 'acme') IS NOT NULL").bind(&key_hash).fetch_one(&mut conn).await.unwrap();
    assert!(found, "the presented key is found");
    let settings: (String, String) =
        sqlx::query_as("SELECT current_setting('app.user_id'), current_setting('app.api_key_hash')").fetch_one(&mut conn).await.unwrap();
    assert_eq!(settings, ("00000000-0000-0000-0000-000000000001".to_string(), "abcd".to_string()));
    conn.execute("ROLLBACK").await.unwrap();

    let wrong = "0".repeat(64);
    let none: (bool, bool) =
        sqlx::query_as("SELECT session_context($1, 'acme', now() - interval '30 days') IS NULL, api_key_entrance($1, 'acme') IS NULL")
            .bind(&wrong)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(none, (true, true), "a secret nobody presented finds nothing");
}
