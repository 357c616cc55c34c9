//! People see where they are signed in and sign browsers out; admins can sign a member out of
//! every browser. Session ids (the cookie secrets) are never shown, only opaque handles.

mod common;
use common::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

async fn log_in(app: &TestApp, email: &str) -> common::Browser {
    let browser = app.browser();
    let r = browser.call("log_in", &[("email", email), ("password", "correct horse battery")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_their_browsers_and_signs_one_out() {
    let app = TestApp::spawn().await;
    let laptop = app.signed_up("kim@example.test").await;
    let phone = log_in(&app, "kim@example.test").await;
    let tablet = log_in(&app, "kim@example.test").await;
    let stranger = app.signed_up("lee@example.test").await;

    let list = laptop.call("my_sessions", &[]).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1, "this browser is marked");
    assert!(list.iter().all(|s| s["ip"] == "127.0.0.1" && s["user_agent"] == "tessera-tests/1.0" && s["signed_in_at"].is_string()));
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions").fetch_all(&app.inspect).await.unwrap();
    let body = laptop.call("my_sessions", &[]).await.body;
    assert!(ids.iter().all(|id| !body.contains(id.as_str())), "session ids are secrets and never listed");

    // Sign out the phone by its handle, as found from the phone's own list.
    let phone_handle = phone.call("my_sessions", &[]).await.json().as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["handle"]
        .as_str()
        .unwrap()
        .to_string();
    // Someone else can't use the handle.
    assert_eq!(stranger.call("sign_out_session", &[("handle", &phone_handle)]).await.status, StatusCode::NOT_FOUND);
    assert!(phone.call("my_session", &[]).await.json().is_object(), "still signed in");
    let r = laptop.call("sign_out_session", &[("handle", &phone_handle)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(phone.call("my_session", &[]).await.json(), Value::Null, "the phone is signed out");
    assert_eq!(laptop.call("sign_out_session", &[("handle", &phone_handle)]).await.status, StatusCode::NOT_FOUND, "already ended");

    let r = laptop.call("sign_out_other_sessions", &[]).await;
    assert_eq!(r.json(), 1, "the tablet");
    assert_eq!(tablet.call("my_session", &[]).await.json(), Value::Null);
    assert!(laptop.call("my_session", &[]).await.json().is_object(), "this browser stays signed in");
    assert!(laptop.get("/account/sessions").await.body.contains("This browser"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_a_member_out_everywhere_but_not_an_owner() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    let admin = app.signed_up("admin@acme.test").await;
    let member = app.signed_up("member@acme.test").await;
    let member_phone = log_in(&app, "member@acme.test").await;
    owner.invite_and_accept("acme", "admin@acme.test", "admin", &admin).await;
    owner.invite_and_accept("acme", "member@acme.test", "member", &member).await;
    let member_id = app.user_id("member@acme.test").await;
    let owner_id = app.user_id("owner@acme.test").await;

    let r = member.call("sign_out_member", &[("slug", "acme"), ("user_id", &owner_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "members can't");
    let r = admin.call("sign_out_member", &[("slug", "acme"), ("user_id", &owner_id)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an Admin can't sign an Owner out");
    assert!(owner.call("my_session", &[]).await.json().is_object());

    let r = admin.call("sign_out_member", &[("slug", "acme"), ("user_id", &member_id)]).await;
    assert_eq!(r.json(), 2, "both of the member's browsers");
    assert_eq!(member.call("my_session", &[]).await.json(), Value::Null);
    assert_eq!(member_phone.call("my_session", &[]).await.json(), Value::Null);
    let audited = app.count(&format!("SELECT count(*) FROM audit_log WHERE action = 'member.sessions_revoked' AND target_id = '{member_id}'")).await;
    assert_eq!(audited, 1);

    // Someone outside the organization can't be reached through it.
    let outsider = app.signed_up("out@else.test").await;
    let outsider_id = app.user_id("out@else.test").await;
    let r = admin.call("sign_out_member", &[("slug", "acme"), ("user_id", &outsider_id)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(outsider.call("my_session", &[]).await.json().is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_recorded_and_otherwise_ignored() {
    let proxied = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    proxied.signed_up("ivy@example.test").await;
    let browser = proxied.browser();
    let forwarded = [("x-forwarded-for", "6.6.6.6, 198.51.100.23")];
    let r = browser.call_with_headers("log_in", &[("email", "ivy@example.test"), ("password", "correct horse battery")], &forwarded).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let ip: String = sqlx::query_scalar("SELECT host(ip) FROM security_events WHERE event = 'login.succeeded' ORDER BY occurred_at DESC LIMIT 1")
        .fetch_one(&proxied.inspect)
        .await
        .unwrap();
    assert_eq!(ip, "198.51.100.23", "the proxy's view of the client, not what the client wrote");

    // Without a trusted proxy configured, the header is just a claim, and ignored.
    let direct = TestApp::spawn().await;
    direct.signed_up("ivy@example.test").await;
    direct.browser().call_with_headers("log_in", &[("email", "ivy@example.test"), ("password", "correct horse battery")], &forwarded).await;
    let ip: String = sqlx::query_scalar("SELECT host(ip) FROM security_events WHERE event = 'login.succeeded' ORDER BY occurred_at DESC LIMIT 1")
        .fetch_one(&direct.inspect)
        .await
        .unwrap();
    assert_eq!(ip, "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_keeps_only_a_digest_of_each_session_and_no_session_outlives_thirty_days() {
    let app = TestApp::spawn().await;
    app.signed_up("kim@example.test").await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/log_in", app.base))
        .header("accept", "application/json")
        .form(&[("email", "kim@example.test"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("tessera_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE id = $1").bind(&cookie).fetch_one(&app.inspect).await.unwrap();
    assert_eq!(raw, 0, "the cookie itself is nowhere in the table");
    let digest: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE id = encode(sha256(convert_to($1, 'UTF8')), 'hex')")
        .bind(&cookie)
        .fetch_one(&app.inspect)
        .await
        .unwrap();
    assert_eq!(digest, 1, "its SHA-256 is");
    // Nor is the session id inside the stored record, in either byte order.
    let id: [u8; 16] = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &cookie).unwrap().try_into().unwrap();
    let mut big_endian = id;
    big_endian.reverse();
    let inside: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE position($1 in data) > 0 OR position($2 in data) > 0")
        .bind(id.to_vec())
        .bind(big_endian.to_vec())
        .fetch_one(&app.inspect)
        .await
        .unwrap();
    assert_eq!(inside, 0, "the stored record doesn't hold the session id");

    let me = |cookie: String| {
        let base = app.base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/my_session"))
                .header("accept", "application/json")
                .header("cookie", format!("tessera_session={cookie}"))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    assert!(me(cookie.clone()).await.is_object(), "the cookie signs in");
    // Active every day, but signed in 31 days ago: over.
    sqlx::query("UPDATE sessions SET created_at = now() - interval '31 days'").execute(&app.inspect).await.unwrap();
    assert_eq!(me(cookie).await, Value::Null, "a session ends 30 days after sign-in, however active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_writes_the_session_at_most_once_a_minute_and_every_change_at_once() {
    let app = TestApp::spawn().await;
    let browser = app.signed_up("lee@example.test").await;
    let user: uuid::Uuid = app.user_id("lee@example.test").await.parse().unwrap();
    // `xmin` changes with every write of the row.
    let version = || async {
        let v: String = sqlx::query_scalar("SELECT xmin::text FROM sessions WHERE user_id = $1").bind(user).fetch_one(&app.inspect).await.unwrap();
        v
    };
    browser.get("/").await;
    let before = version().await;
    for _ in 0..3 {
        assert_eq!(browser.get("/account/sessions").await.status, StatusCode::OK);
    }
    assert_eq!(version().await, before, "looking around changed nothing worth a write");
    // Confirming it's you changes the session (its time, to the second): written at once, and
    // in force on the next request.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(browser.call("reauthenticate", &[("password", common::PASSWORD)]).await.status, StatusCode::OK);
    assert_ne!(version().await, before);
    assert_ne!(browser.call("begin_mfa_enrolment", &[]).await.status, StatusCode::FORBIDDEN, "the confirmation counts");
}
