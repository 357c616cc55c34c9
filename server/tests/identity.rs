//! Signing up, logging in and out, and the protections around sessions.

mod common;
use common::{Inbox, TestApp};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_confirms_from_the_mail_and_is_logged_in() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let email = format!("Ada-{}@Example.com", uuid::Uuid::new_v4().simple());
    let r = browser.call("sign_up", &[("email", &format!(" {email} ")), ("password", "correct horse battery"), ("name", "Ada")]).await;
    assert_eq!(r.headers.get("location").unwrap(), "/signup/sent", "{} {}", r.status, r.body);
    assert!(browser.get("/signup/sent").await.body.contains(&email.to_lowercase()), "the page says where the mail went");
    let cookie = r.headers.get("set-cookie").expect("a session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("tessera_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(browser.call("my_session", &[]).await.json().is_null(), "nobody is signed in before the address is confirmed");

    let r = app.sign_up_by_mail(&browser, &[("email", &email), ("password", "correct horse battery"), ("name", "Ada")]).await;
    assert_eq!(r.headers.get("location").unwrap(), "/");
    let me = browser.call("my_session", &[]).await.json()["user"].clone();
    assert_eq!(me["email"], email.to_lowercase(), "emails are stored normalised");
    assert_eq!(me["display_name"], "Ada");
    assert_eq!(me["email_verified"], true);
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(&app.inspect).await.unwrap();
    assert!(hash.starts_with("$argon2id$"), "passwords are stored as argon2id hashes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_mistakes_get_actionable_messages_and_write_nothing() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let cases = [
        (("not-an-email", "correct horse battery"), "email", "name@example.com"),
        (("ada@example.com", "short"), "password", "at least 10"),
        (("", "correct horse battery"), "email", "Enter your email"),
    ];
    for ((email, password), field, hint) in cases {
        let r = browser.call("sign_up", &[("email", email), ("password", password), ("name", "")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}/{password}: {}", r.body);
        assert_eq!(r.error_field().as_deref(), Some(field));
        assert!(r.error_message().contains(hint), "{:?} should mention {hint:?}", r.error_message());
    }
    // A form missing a field entirely is a 400, not a server error.
    let r = browser.call("sign_up", &[("email", "ada@example.com")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // So is a body in the wrong format.
    for (content_type, body) in [("application/json", r#"{"email":"ada@example.com"}"#), ("application/x-www-form-urlencoded", "%%%&&=")] {
        let r = browser.post_raw("/api/sign_up", content_type, body).await;
        assert!(r.status.is_client_error(), "{content_type}: {} {}", r.status, r.body);
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_with_a_taken_address_reveals_nothing_and_tells_its_owner() {
    let app = TestApp::spawn().await;
    let (taken, free) = (format!("ada-{}@example.com", uuid::Uuid::new_v4().simple()), format!("bea-{}@example.com", uuid::Uuid::new_v4().simple()));
    app.signed_up(&taken).await;
    let again = app.browser().call("sign_up", &[("email", &taken.to_uppercase()), ("password", "another good password"), ("name", "")]).await;
    let new = app.browser().call("sign_up", &[("email", &free.to_uppercase()), ("password", "another good password"), ("name", "")]).await;
    assert_eq!((again.status, new.status), (StatusCode::OK, StatusCode::OK), "{} / {}", again.body, new.body);
    assert_eq!((again.body, again.headers.get("location")), (new.body, new.headers.get("location")), "the same answer, taken or not");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2, "no second account for the taken address");
    let mail = Inbox::latest(&taken, "You already have a Tessera account").await;
    assert!(mail["text"].as_str().unwrap().contains("/forgot"), "the owner is told how to get in");
    assert_eq!(app.security_events(&taken).await.last().map(String::as_str), Some("signup.existing_account"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_loses_a_race_is_a_conflict_to_retry_never_a_server_error() {
    let app = TestApp::spawn().await;
    // What two first sign-ins of the same new person at the same moment would hit: the
    // unique address. (Known constraints have their own messages; this is the fallback.)
    let insert = "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), 'twin@example.test', '!unusable')";
    sqlx::query(insert).execute(&app.inspect).await.unwrap();
    let lost = sqlx::query(insert).execute(&app.inspect).await.unwrap_err();
    let error = tessera_backend::Error::from(lost).into_app_error();
    assert_eq!(error.status(), 409, "{error}");
    assert!(error.to_string().contains("please try again"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_and_log_out() {
    let app = TestApp::spawn().await;
    app.signed_up("ada@example.com").await;
    let browser = app.browser();
    assert!(browser.call("my_session", &[]).await.json().is_null(), "a new browser is anonymous");

    let r = browser.call("log_in", &[("email", "ada@example.com"), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(browser.call("my_session", &[]).await.json()["user"]["email"], "ada@example.com");

    let r = browser.call("log_out", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(browser.call("my_session", &[]).await.json().is_null(), "logged out");
    assert_eq!(app.count("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL").await, 1, "only the signup browser's session remains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_do_not_reveal_whether_an_account_exists() {
    let app = TestApp::spawn().await;
    app.signed_up("ada@example.com").await;
    let browser = app.browser();
    let wrong_password = browser.call("log_in", &[("email", "ada@example.com"), ("password", "wrong password!")]).await;
    let unknown_email = browser.call("log_in", &[("email", "nobody@example.com"), ("password", "wrong password!")]).await;
    assert_eq!(wrong_password.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_password.status, unknown_email.status);
    assert_eq!(wrong_password.body, unknown_email.body);
    assert!(browser.call("my_session", &[]).await.json().is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_login_only_local_next_paths_are_followed() {
    let app = TestApp::spawn().await;
    app.signed_up("ada@example.com").await;
    let browser = app.browser();
    // Tabs and newlines are dropped by browsers ("/\t/evil" becomes "//evil"); control
    // characters can't go in a header at all: all of them land on the home page, never a 500.
    for next in ["//evil.example/x", "/\t/evil.example", "/\n/evil.example", "/\u{1}x", "https://evil.example", "/\\evil.example"] {
        let r = browser.call("log_in", &[("email", "ada@example.com"), ("password", "correct horse battery"), ("next", next)]).await;
        assert_eq!(r.headers.get("location").map(|l| l.to_str().unwrap()), Some("/"), "{next:?}: {} {}", r.status, r.body);
    }
    let r = browser.call("log_in", &[("email", "ada@example.com"), ("password", "correct horse battery"), ("next", "/t/acme/projects")]).await;
    assert_eq!(r.headers.get("location").unwrap(), "/t/acme/projects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let browser = app.signed_up("ada@example.com").await;
    let form = [("name", "Evil Corp"), ("slug", "evil-corp")];
    let r = browser.call_with_headers("create_org", &form, &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = browser.call_with_headers("create_org", &form, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("another site"));
    // Same host and port, another scheme: a page served over https can't post to the http site
    // (nor, in production, an http page to the https site).
    let other_scheme = app.base.replacen("http://", "https://", 1);
    let r = browser.call_with_headers("create_org", &form, &[("origin", &other_scheme)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an Origin of another scheme is another site");
    assert_eq!(app.count("SELECT count(*) FROM tenants").await, 0);

    // The same request from the app's own pages goes through.
    let own_origin = app.base.clone();
    let r = browser
        .call_with_headers("create_org", &form, &[("origin", &own_origin), ("sec-fetch-site", "same-origin"), ("accept", "application/json")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_on_the_server_with_security_headers() {
    let app = TestApp::spawn().await;
    let r = app.browser().get("/signup").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Create your account"));
    assert!(r.body.contains("<label for=\"field-email\""), "inputs are labelled");
    assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
    assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert!(r.headers.get("x-request-id").is_some());
    // Scripts run only with this response's nonce, and every script of the page carries it.
    let csp = r.headers.get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce").to_string();
    let scripts = r.body.matches("<script").count();
    assert!(scripts > 0 && r.body.matches(&format!("nonce=\"{nonce}\"")).count() >= scripts, "{scripts} scripts, not all with the nonce");
    let again = app.browser().get("/signup").await;
    assert!(!again.headers.get("content-security-policy").unwrap().to_str().unwrap().contains(&nonce), "a new nonce per response");
    assert!(r.headers.get("permissions-policy").unwrap().to_str().unwrap().contains("camera=()"));
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store", "pages carry personal data");
    assert!(r.headers.get("strict-transport-security").is_none(), "no HSTS on plain http (development)");
    let r = app.browser().call("begin_mfa_enrolment", &[]).await;
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store", "server function answers too");
    let r = app.browser().get("/pkg/tessera.css").await;
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-cache", "an unversioned asset is revalidated");
    let r = app.browser().get("/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_https_the_session_cookie_is_secure_and_host_only_and_hsts_is_on() {
    let app = TestApp::spawn_with(|c| c.public_url = "https://app.tessera.test".into()).await;
    let r = app.browser().call("sign_up", &[("email", "ada@example.com"), ("password", "correct horse battery"), ("name", "")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    let cookie = r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find(|c| c.contains("tessera_session")).unwrap().to_string();
    assert!(cookie.starts_with("__Host-tessera_session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    assert!(r.headers.get("strict-transport-security").unwrap().to_str().unwrap().contains("max-age="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_network_can_create_only_so_many_accounts_in_a_quarter_hour() {
    let app = TestApp::spawn().await;
    common::within_one_window(15, 120).await;
    for i in 0..20 {
        let r =
            app.browser().call("sign_up", &[("email", &format!("person{i}@example.com")), ("password", "correct horse battery"), ("name", "")]).await;
        assert!(r.status.is_success() || r.status.is_redirection(), "sign-up {i}: {} {}", r.status, r.body);
    }
    let r = app.browser().call("sign_up", &[("email", "one-more@example.com"), ("password", "correct horse battery"), ("name", "")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.error_message().contains("try again in"), "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 20, "the 21st account wasn't made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_and_stylesheet_have_content_addresses_are_cached_for_good_and_go_out_compressed() {
    let app = TestApp::spawn().await;
    let page = app.browser().get("/signup").await.body;
    let linked = |suffix: &str| -> String {
        page.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).find(|href| href.ends_with(suffix)).unwrap_or_default().to_string()
    };
    let (css, js, wasm) = (linked("/tessera.css"), linked("/tessera.js"), linked("/tessera.wasm"));
    for href in [&css, &js, &wasm] {
        let version = href.strip_prefix("/pkg/").and_then(|rest| rest.split('/').next()).unwrap_or_default();
        assert!(version.len() == 16 && version.chars().all(|c| c.is_ascii_hexdigit()), "{href:?} is under its build's hash");
    }
    let client = reqwest::Client::new();
    for (href, accepts, sent_as) in [(&wasm, "gzip, deflate, br", Some("br")), (&js, "gzip", Some("gzip")), (&css, "identity", None)] {
        let r = client.get(format!("{}{href}", app.base)).header("accept-encoding", accepts).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{href}");
        assert_eq!(r.headers().get("cache-control").unwrap(), "public, max-age=31536000, immutable", "{href}");
        assert_eq!(r.headers().get("content-encoding").map(|v| v.to_str().unwrap()), sent_as, "{href} for {accepts}");
        assert_eq!(r.headers().get("vary").unwrap(), "accept-encoding", "{href}: caches keep one form per encoding");
    }
    // The page's own code is a chunk apart (app/src/routes.rs), named in the head so the
    // browser fetches it beside the main module; served the same way.
    let chunk =
        page.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).find(|h| h.contains("/split___sign_up_view_")).unwrap_or_default();
    assert!(chunk.starts_with(&format!("/pkg/{}/", wasm.split('/').nth(2).unwrap_or_default())) && chunk.ends_with(".wasm"), "{chunk:?} in\n{page}");
    let r = client.get(format!("{}{chunk}", app.base)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{chunk}");
    assert_eq!(r.headers().get("content-encoding").unwrap(), "gzip", "{chunk}");
    assert!(!page.contains("split___log_in_view_"), "only the page's own chunks are named");
    // Fetched by someone signed in, a cached asset carries no cookie for a shared cache to keep.
    let signed_in = app.signed_up("ada@example.test").await;
    let r = signed_in.get(&css).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
    // A build that isn't there (yet) isn't remembered as missing.
    let r = client.get(format!("{}/pkg/0123456789abcdef/tessera.js", app.base)).send().await.unwrap();
    assert_eq!((r.status(), r.headers().get("cache-control").unwrap().to_str().unwrap()), (StatusCode::NOT_FOUND, "no-store"));
}
