//! Request budgets: per API key, per organization, per address before sign-in; shared by
//! several servers through Redis; and a limiter outage that lets requests through.

mod common;

use common::TestApp;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tessera_backend::rate_limit::Budgets;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    fn message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

async fn api_get(base: &str, path: &str, bearer: &str) -> Reply {
    let r = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(bearer).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    Reply { status, headers, body: r.json().await.unwrap_or(Value::Null) }
}

async fn bad_sign_in(base: &str) -> Reply {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/token"))
        .json(&serde_json::json!({ "email": "nobody@example.test", "password": "a wrong password" }))
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    Reply { status, headers, body: r.json().await.unwrap_or(Value::Null) }
}

/// An owner of `slug` and a read-only API key of it.
async fn org_with_key(app: &TestApp, slug: &str) -> (common::Browser, String) {
    let owner = app.owner_of(slug).await;
    let r = owner.call("create_api_key", &[("slug", slug), ("name", "CI"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (owner, r.json()["key"].as_str().unwrap().to_string())
}

async fn new_key(owner: &common::Browser, slug: &str) -> String {
    let r = owner.call("create_api_key", &[("slug", slug), ("name", "Another"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    r.json()["key"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_that_spends_its_budget_gets_429_with_when_to_come_back_and_other_keys_carry_on() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_address: 0, per_user: 0, per_organization: 0, per_api_key: 3 }).await;
    let (owner, key) = org_with_key(&app, "acme").await;
    let other = new_key(&owner, "acme").await;
    for left in [2, 1, 0] {
        let r = api_get(&app.base, "/api/v1/orgs/acme/projects", &key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.header("ratelimit-policy"), "\"api-key\";q=3;w=60");
        assert!(r.header("ratelimit").starts_with(&format!("\"api-key\";r={left};t=")), "{}", r.header("ratelimit"));
    }
    let r = api_get(&app.base, "/api/v1/orgs/acme/projects", &key).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.header("retry-after").parse().expect("a Retry-After in seconds");
    assert!((1..=20).contains(&wait), "one request comes back every 20 s: {wait}");
    assert!(r.header("ratelimit").starts_with("\"api-key\";r=0;"));
    assert!(
        r.message().contains("with this API key just now (the limit is 3 a minute)") && r.message().contains(&format!("Try again in {wait} second")),
        "{}",
        r.message()
    );
    assert_eq!(api_get(&app.base, "/api/v1/orgs/acme/projects", &other).await.status, StatusCode::OK, "another key has its own budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_that_spends_its_budget_is_slowed_down_whatever_the_door_and_others_are_not() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_address: 0, per_user: 0, per_organization: 12, per_api_key: 0 }).await;
    let (owner, key) = org_with_key(&app, "busy").await;
    let quiet = app.owner_of("quiet").await;
    // The key runs the organization's budget down (what setting up spent counts too)...
    let mut served = 0;
    let refused = loop {
        let r = api_get(&app.base, "/api/v1/orgs/busy/projects", &key).await;
        if r.status != StatusCode::OK {
            break r;
        }
        served += 1;
        assert!(served <= 12, "the budget is 12 a minute");
    };
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.message().contains("for this organization just now (the limit is 12 a minute)"), "{}", refused.message());
    // ...and its people's pages and server functions wait too, told why and for how long.
    let r = owner.call("list_projects", &[("slug", "busy")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.error_message().contains("for this organization"), "{}", r.body);
    assert!(r.headers.get("retry-after").is_some() && r.headers.get("ratelimit").is_some(), "{:?}", r.headers);
    // Another organization is untouched.
    assert_eq!(quiet.call("list_projects", &[("slug", "quiet")]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_who_are_not_signed_in_share_a_budget_per_address_and_refused_credentials_spend_it() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_address: 5, ..Budgets::UNLIMITED }).await;
    // Signing up and in spends two of the address's five, two wrong passwords two more.
    let signed_in = app.signed_up("ada@example.test").await;
    for _ in 0..2 {
        let r = bad_sign_in(&app.base).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.header("ratelimit-policy"), "\"ip\";q=5;w=60");
    }
    // A made-up API key is checked (401) and spends the last one; after that, made-up keys
    // aren't even checked.
    assert_eq!(api_get(&app.base, "/api/v1/orgs/acme/projects", "tsk_made_up").await.status, StatusCode::UNAUTHORIZED);
    let r = api_get(&app.base, "/api/v1/orgs/acme/projects", "tsk_made_up_too").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").parse::<u64>().is_ok() && r.header("ratelimit").starts_with("\"ip\";r=0;"), "{:?}", r.headers);
    assert!(r.message().contains("from your network"), "{}", r.message());
    // Sending any Authorization header to the sign-in endpoint doesn't make it free.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", app.base))
        .bearer_auth("anything")
        .json(&serde_json::json!({ "email": "nobody@example.test", "password": "a wrong password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same address's anonymous server-function calls wait too; a signed-in person doesn't.
    let r = app.browser().call("request_sign_in_link", &[("email", "ada@example.test")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.error_message().contains("from your network"), "{}", r.body);
    assert_eq!(signed_in.call("my_session", &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_person_has_a_budget_of_their_own() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_user: 3, ..Budgets::UNLIMITED }).await;
    let ada = app.signed_up("ada@example.test").await;
    let bo = app.signed_up("bo@example.test").await;
    for _ in 0..3 {
        assert_eq!(ada.call("my_session", &[]).await.status, StatusCode::OK);
    }
    let r = ada.call("my_session", &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.error_message().contains("from your account"), "{}", r.body);
    assert_eq!(r.headers.get("ratelimit-policy").and_then(|v| v.to_str().ok()), Some("\"user\";q=3;w=60"));
    assert_eq!(bo.call("my_session", &[]).await.status, StatusCode::OK, "someone else carries on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_redis_share_each_budget() {
    let redis = std::env::var("TESSERA_TEST_REDIS_URL").expect("the test command starts Redis (TESSERA_TEST_REDIS_URL)");
    let app = TestApp::spawn_with(|c| {
        c.rate_limits = Budgets { per_address: 0, per_user: 0, per_organization: 0, per_api_key: 4 };
        c.redis_url = Some(redis);
    })
    .await;
    let (_, key) = org_with_key(&app, "shared").await;
    let second = app.another_server().await;
    for base in [&app.base, &second, &app.base, &second] {
        assert_eq!(api_get(base, "/api/v1/orgs/shared/projects", &key).await.status, StatusCode::OK);
    }
    for base in [&app.base, &second] {
        let r = api_get(base, "/api/v1/orgs/shared/projects", &key).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "four in all, wherever they were served: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_server_keeps_its_own_budgets() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_address: 0, per_user: 0, per_organization: 0, per_api_key: 2 }).await;
    let (_, key) = org_with_key(&app, "solo").await;
    let second = app.another_server().await;
    for base in [&app.base, &app.base, &second, &second] {
        assert_eq!(api_get(base, "/api/v1/orgs/solo/projects", &key).await.status, StatusCode::OK);
    }
    assert_eq!(api_get(&app.base, "/api/v1/orgs/solo/projects", &key).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limiter_that_is_down_or_hangs_lets_requests_through() {
    // Nothing listens on one port (every check fails at once); the other accepts connections
    // and never answers (every check would wait its timeout).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    for port in [closed, hanging] {
        let app = TestApp::spawn_with(|c| {
            c.rate_limits = Budgets { per_address: 1, per_user: 1, per_organization: 1, per_api_key: 1 };
            c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
        })
        .await;
        let (_, key) = org_with_key(&app, &format!("open{port}")).await;
        let started = std::time::Instant::now();
        for _ in 0..5 {
            let r = api_get(&app.base, &format!("/api/v1/orgs/open{port}/projects"), &key).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.headers.get("ratelimit").is_none(), "no budget is claimed when none was checked");
        }
        // After one failure the limiter is left alone for a while: no request waits it out.
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_view_costs_its_organization_one_request() {
    let app = TestApp::spawn_with(|c| c.rate_limits = Budgets { per_organization: 1, ..Budgets::UNLIMITED }).await;
    let owner = app.owner_of("acme").await;
    // The layout and the list each ask for the organization; one page view is still one request.
    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::TOO_MANY_REQUESTS, "the second is over a budget of one a minute");
}
