//! Outgoing webhooks, from an integrator's side: a receiver on loopback gets the events its
//! endpoint subscribes to, signed so that Standard Webhooks' own library (Python, from PyPI)
//! verifies them, in order per resource, retried and logged attempt by attempt; the secret
//! rotates without a gap; private addresses are refused; an endpoint that keeps failing is
//! switched off and its Owners told; failed deliveries are resent and replayed.

mod common;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{Browser, Inbox, TestApp};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a receiver got: each request's headers and body, in arrival order.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A customer's endpoint on loopback: answers 500 (with a long body) to the first
/// `fail_next` requests, 200 after, each after `delay` (counting how many it held at once).
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::answering_after(Duration::ZERO).await
    }

    async fn answering_after(delay: Duration) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail_next = Arc::new(AtomicUsize::new(0));
        let (in_flight, most_at_once) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (log, failing, most) = (got.clone(), fail_next.clone(), most_at_once.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (log, failing, in_flight, most) = (log.clone(), failing.clone(), in_flight.clone(), most.clone());
                async move {
                    let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
                    log.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned() });
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                        (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(10_000))
                    } else {
                        (StatusCode::OK, "thanks".to_string())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, got, fail_next, most_at_once }
    }

    fn fail(&self, times: usize) {
        self.fail_next.store(times, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits up to ten seconds for `count` requests.
    async fn wait_for(&self, app: &TestApp, count: usize) -> Vec<Received> {
        self.wait_up_to(app, count, Duration::from_secs(10)).await
    }

    async fn wait_up_to(&self, app: &TestApp, count: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            if started.elapsed() > limit {
                let jobs: Vec<(String, String, i32, Option<String>)> =
                    sqlx::query_as("SELECT kind, status, attempts, last_error FROM jobs ORDER BY created_at").fetch_all(&app.inspect).await.unwrap();
                panic!("expected {count} requests, got {}: {got:?}\njobs: {jobs:?}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Time passes for retries: every queued delivery job is due now.
async fn retries_are_due(app: &TestApp) {
    sqlx::query("UPDATE jobs SET run_at = now() WHERE kind = 'webhooks.deliver' AND status = 'queued'").execute(&app.inspect).await.unwrap();
    tessera_backend::jobs::wake();
}

/// Registers an endpoint at `url` for `types`; returns its id and signing secret.
async fn add_endpoint(owner: &Browser, slug: &str, url: &str, types: &[&str]) -> (String, String) {
    let mut form = vec![("slug", slug), ("url", url), ("description", "Receiver under test"), ("enabled", "on")];
    form.extend(types.iter().map(|t| ("event_types[]", *t)));
    let r = owner.call("create_webhook", &form).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    let created = r.json();
    (created["endpoint_id"].as_str().unwrap().to_string(), created["secret"].as_str().unwrap().to_string())
}

/// Checks each request's signature with the Standard Webhooks reference library, as a
/// customer would; returns, per request, whether it verified with `secret`.
fn verified_by_the_reference_library(secret: &str, requests: &[Received]) -> Vec<bool> {
    let python = std::env::var("TESSERA_TEST_WEBHOOK_VERIFIER").expect("TESSERA_TEST_WEBHOOK_VERIFIER (set by cargo xtask test)");
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
for line in sys.stdin:
    case = json.loads(line)
    try:
        Webhook(case["secret"]).verify(case["body"], case["headers"])
        print("ok")
    except Exception as e:
        print("refused: %s" % e)
"#;
    let input: String = requests
        .iter()
        .map(|r| {
            json!({ "secret": secret, "body": r.body, "headers": r.headers.iter().cloned().collect::<std::collections::HashMap<_, _>>() }).to_string()
                + "\n"
        })
        .collect();
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the webhook verifier runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    assert_eq!(lines.len(), requests.len(), "{lines:?}");
    lines.iter().map(|l| l == "ok").collect()
}

async fn delivery_log(owner: &Browser, slug: &str, endpoint: &str) -> Vec<Value> {
    let r = owner.call("list_webhook_deliveries", &[("slug", slug), ("id", endpoint), ("status", ""), ("before", "")]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.json().as_array().unwrap().clone()
}

async fn delivery_detail(owner: &Browser, slug: &str, endpoint: &str, delivery: &str) -> Value {
    let r = owner.call("get_webhook_delivery", &[("slug", slug), ("id", endpoint), ("delivery", delivery)]).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    r.json()
}

/// Waits up to ten seconds for the endpoint's delivery log to satisfy `done`.
async fn log_until(owner: &Browser, slug: &str, endpoint: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let log = delivery_log(owner, slug, endpoint).await;
        if done(&log) {
            return log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not within 10 s: {what}; the log: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_endpoint_gets_the_events_it_subscribes_to_signed_so_the_reference_library_verifies_them() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("hooked").await;
    let receiver = Receiver::start().await;
    let (endpoint, secret) = add_endpoint(&owner, "hooked", &receiver.url, &["project.created", "project.updated", "member.added"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    owner.add_project("hooked", "Launch").await;
    let project = app.project_id("Launch").await;
    let r = owner.call("update_project", &[("slug", "hooked"), ("id", &project), ("name", "Launch 2027"), ("description", "")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let ada = app.signed_up("ada-joins-hooked@example.test").await;
    owner.invite_and_accept("hooked", "ada-joins-hooked@example.test", "member", &ada).await;
    // Not subscribed: never sent.
    let r = owner.call("delete_project", &[("slug", "hooked"), ("id", &project)]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);

    let got = receiver.wait_for(&app, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = receiver.received();
    assert_eq!(got_all.len(), 3, "project.deleted isn't subscribed to: {got_all:?}");
    let types: Vec<String> = got.iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types[..2], ["project.created", "project.updated"]);
    assert!(types.contains(&"member.added".to_string()));

    assert_eq!(verified_by_the_reference_library(&secret, &got), [true, true, true]);
    // A forged body, or another secret, doesn't verify.
    let mut forged = got[0].clone();
    forged.body = forged.body.replace("Launch", "Lunch");
    assert_eq!(verified_by_the_reference_library(&secret, &[forged]), [false]);
    let (_, other_secret) = add_endpoint(&owner, "hooked", &format!("{}?other", receiver.url), &["project.created"]).await;
    assert_eq!(verified_by_the_reference_library(&other_secret, &got[..1]), [false]);

    for request in &got {
        let envelope = request.json();
        assert_eq!(request.header("webhook-id"), envelope["id"].as_str().unwrap(), "the id receivers deduplicate by");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(envelope["api_version"], tessera_domain::webhooks::API_VERSION);
        assert_eq!(envelope["organization_id"], app.tenant_id("hooked").await.to_string());
        // The payload has exactly the fields the event catalogue shows.
        let kind = tessera_domain::webhooks::EventType::parse(envelope["type"].as_str().unwrap()).unwrap();
        let example: Value = serde_json::from_str(kind.example_data()).unwrap();
        assert_eq!(keys(&envelope["data"]), keys(&example), "{kind:?}");
    }
    let updated = got[1].json();
    assert_eq!(updated["data"]["project"]["name"], "Launch 2027");
    assert_eq!(updated["data"]["previous"], json!({ "name": "Launch" }));
    let joined = got.iter().map(Received::json).find(|e| e["type"] == "member.added").unwrap();
    assert_eq!(joined["data"]["member"]["email"], "ada-joins-hooked@example.test");
    assert_eq!(joined["data"]["member"]["role"], "member");

    // The secret is stored sealed, and the audit trail never has it.
    let mut tenant = app.inspect_tenant("hooked").await;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = $1::uuid").bind(&endpoint).fetch_one(&mut tenant).await.unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret[6..]));
    let trail = app.trail(&endpoint).await;
    assert_eq!(trail[0].0, "webhook_endpoint.created");
    assert!(!trail[0].1.to_string().contains(&secret[6..]));

    // Delivered, once each, and the log says so.
    let log = log_until(&owner, "hooked", &endpoint, "three delivered", |log| log.len() == 3 && log.iter().all(|d| d["status"] == "delivered")).await;
    let detail = delivery_detail(&owner, "hooked", &endpoint, log[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attempts"][0]["response_status"], 200);
    assert_eq!(detail["attempts"][0]["response_body"], "thanks");

    // The pages show it all, rendered on the server.
    let page = owner.get("/t/hooked/settings/webhooks").await;
    assert!(page.body.contains(&receiver.url) && page.body.contains("3 delivered, 0 failed"), "{}", page.body);
    let page = owner.get(&format!("/t/hooked/settings/webhooks/{endpoint}")).await;
    assert!(page.body.contains("member.added") && page.body.contains("Rotate secret"), "{}", page.body);
    let page = owner.get(&format!("/t/hooked/settings/webhooks/{endpoint}/deliveries/{}", log[0]["id"].as_str().unwrap())).await;
    assert!(page.body.contains("HTTP 200") && page.body.contains("webhook-signature"), "{}", page.body);
    let page = owner.get("/t/hooked/settings/webhooks/events").await;
    assert!(tessera_domain::webhooks::EventType::ALL.iter().all(|t| page.body.contains(t.as_str())), "{}", page.body);
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    for (k, v) in value.as_object().into_iter().flatten() {
        if v.is_object() {
            keys.extend(self::keys(v).into_iter().map(|inner| format!("{k}.{inner}")));
        }
    }
    keys
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_on_schedule_and_every_attempt_is_logged() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("retried").await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = add_endpoint(&owner, "retried", &receiver.url, &["project.created"]).await;
    receiver.fail(2);
    owner.add_project("retried", "Flaky").await;

    receiver.wait_for(&app, 1).await;
    let log = log_until(&owner, "retried", &endpoint, "one failed attempt", |log| log.len() == 1 && log[0]["attempts"] == 1).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["last_response_status"], 500);
    // The next attempt is about 5 s later (the schedule's second step), not at once.
    let next = log[0]["next_attempt_at"].as_str().unwrap().to_string();
    assert!(!next.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "retried too soon");

    retries_are_due(&app).await;
    receiver.wait_for(&app, 2).await;
    log_until(&owner, "retried", &endpoint, "two failed attempts", |log| log[0]["attempts"] == 2).await;
    retries_are_due(&app).await;
    let got = receiver.wait_for(&app, 3).await;
    let log = log_until(&owner, "retried", &endpoint, "delivered", |log| log[0]["status"] == "delivered").await;
    assert_eq!(log[0]["attempts"], 3);
    // The same event each time: receivers see one id.
    assert!(got.iter().all(|r| r.header("webhook-id") == got[0].header("webhook-id")));

    let detail = delivery_detail(&owner, "retried", &endpoint, log[0]["id"].as_str().unwrap()).await;
    let attempts = detail["attempts"].as_array().unwrap();
    let statuses: Vec<i64> = attempts.iter().map(|a| a["response_status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 200]);
    // Kept: 4 KiB of a 10,000-byte answer, marked as cut.
    assert_eq!(attempts[0]["response_body"].as_str().unwrap().len(), 4096);
    assert_eq!(attempts[0]["response_truncated"], true);
    assert!(attempts[0]["request_headers"].to_string().contains("webhook-signature"));
    assert_eq!(detail["payload"].as_str().unwrap(), got[0].body);

    // An endpoint that never answers well: eight attempts, then failed for good.
    receiver.fail(100);
    owner.add_project("retried", "Doomed").await;
    for attempt in 1..=8 {
        receiver.wait_for(&app, 3 + attempt).await;
        log_until(&owner, "retried", &endpoint, "the attempt is recorded", |log| log[0]["attempts"] == attempt as i64).await;
        retries_are_due(&app).await;
    }
    let log = log_until(&owner, "retried", &endpoint, "failed", |log| log[0]["status"] == "failed").await;
    assert_eq!(log[0]["attempts"], 8);
    assert!(log[0]["last_error"].as_str().unwrap().contains("500"), "{}", log[0]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 11, "nothing after the eighth attempt");
}

#[tokio::test]
async fn deliveries_about_one_project_arrive_in_the_order_it_changed() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("ordered").await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = add_endpoint(&owner, "ordered", &receiver.url, &["project.created", "project.updated"]).await;
    receiver.fail(1);
    owner.add_project("ordered", "v1").await;
    receiver.wait_for(&app, 1).await;
    let project = app.project_id("v1").await;
    for name in ["v2", "v3"] {
        let r = owner.call("update_project", &[("slug", "ordered"), ("id", &project), ("name", name), ("description", "")]).await;
        assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    }
    // The later changes wait behind the first, which is waiting for its retry.
    let log = log_until(&owner, "ordered", &endpoint, "two held", |log| log.iter().filter(|d| d["status"] == "held").count() == 2).await;
    assert_eq!(log.len(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);

    retries_are_due(&app).await;
    let got = receiver.wait_for(&app, 4).await;
    let names: Vec<String> = got[1..].iter().map(|r| r.json()["data"]["project"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["v1", "v2", "v3"]);
    log_until(&owner, "ordered", &endpoint, "all delivered", |log| log.iter().all(|d| d["status"] == "delivered")).await;
}

#[tokio::test]
async fn a_rotated_secret_overlaps_with_the_old_one_and_then_replaces_it() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("rotating").await;
    let receiver = Receiver::start().await;
    let (endpoint, old) = add_endpoint(&owner, "rotating", &receiver.url, &["project.created"]).await;

    let r = owner.call("rotate_webhook_secret", &[("slug", "rotating"), ("id", &endpoint)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let new = r.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    assert!(r.json()["previous_secret_until"].is_string());
    owner.add_project("rotating", "During the overlap").await;
    let got = receiver.wait_for(&app, 1).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2, "both secrets sign");
    assert_eq!(verified_by_the_reference_library(&old, &got), [true]);
    assert_eq!(verified_by_the_reference_library(&new, &got), [true]);

    // After the overlap only the new secret signs.
    let mut tenant = app.inspect_tenant("rotating").await;
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = now() - interval '1 second'").execute(&mut tenant).await.unwrap();
    owner.add_project("rotating", "After the overlap").await;
    let got = receiver.wait_for(&app, 2).await;
    assert_eq!(verified_by_the_reference_library(&new, &got[1..]), [true]);
    assert_eq!(verified_by_the_reference_library(&old, &got[1..]), [false]);
    let trail: Vec<String> = app.trail(&endpoint).await.into_iter().map(|(action, _)| action).collect();
    assert!(trail.contains(&"webhook_endpoint.secret_rotated".to_string()), "{trail:?}");
}

#[tokio::test]
async fn endpoints_on_private_addresses_are_refused_when_saved_and_when_delivered() {
    let app = TestApp::spawn_with(|c| c.webhook_private_hosts = false).await;
    let owner = app.owner_of("guarded").await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
        "https://10.1.2.3/",
    ] {
        let r = owner.call("create_webhook", &[("slug", "guarded"), ("url", url), ("description", ""), ("event_types[]", "project.created")]).await;
        assert_eq!(r.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.body);
        assert_eq!(r.error_field().as_deref(), Some("url"), "{url}");
    }
    // A name that resolved publicly when saved and points at loopback now (DNS rebinding) is
    // refused at delivery, on the address it resolves to.
    let receiver = Receiver::start().await;
    let (endpoint, _) = add_endpoint(&owner, "guarded", "https://example.com/hook", &["project.created"]).await;
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_string();
    let mut tenant = app.inspect_tenant("guarded").await;
    sqlx::query("UPDATE webhook_endpoints SET url = $1").bind(format!("https://localhost:{port}/hook")).execute(&mut tenant).await.unwrap();
    owner.add_project("guarded", "Secret plans").await;
    let log = log_until(&owner, "guarded", &endpoint, "a refused attempt", |log| log.len() == 1 && log[0]["attempts"] == 1).await;
    assert!(log[0]["last_error"].as_str().unwrap().contains("not on the public internet"), "{}", log[0]);
    assert!(receiver.received().is_empty());
    assert_eq!(app.count("SELECT count(*) FROM jobs WHERE kind = 'webhooks.deliver' AND status = 'dead'").await, 0);
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_switched_off_its_owners_told_and_failures_replayed_once_fixed() {
    let app = TestApp::spawn_with(|c| c.webhook_disable_after = Duration::from_secs(1)).await;
    let owner = app.owner_of("switched").await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = add_endpoint(&owner, "switched", &receiver.url, &["project.created"]).await;
    let mails_before = Inbox::count_about("owner@switched.test", "was switched off").await;
    let before_failures = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    receiver.fail(100);
    owner.add_project("switched", "First").await;
    receiver.wait_for(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    retries_are_due(&app).await;
    receiver.wait_for(&app, 2).await;

    let started = Instant::now();
    let status = loop {
        let r = owner.call("get_webhook", &[("slug", "switched"), ("id", &endpoint)]).await;
        let e = r.json();
        if e["enabled"] == false {
            break e;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not switched off: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status["disabled_reason"].as_str().unwrap().contains("Switched off automatically"), "{status}");
    let mail = Inbox::after(mails_before, "owner@switched.test", "was switched off").await;
    assert!(mail["text"].as_str().unwrap().contains(&format!("/t/switched/settings/webhooks/{endpoint}")));
    let trail: Vec<String> = app.trail(&endpoint).await.into_iter().map(|(action, _)| action).collect();
    assert!(trail.contains(&"webhook_endpoint.disabled".to_string()), "{trail:?}");

    // Switched off: the pending retry isn't sent; it fails at once, saying why.
    retries_are_due(&app).await;
    log_until(&owner, "switched", &endpoint, "failed as switched off", |log| log[0]["status"] == "failed").await;
    assert_eq!(receiver.received().len(), 2);
    // New events aren't even queued for it.
    owner.add_project("switched", "While off").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(delivery_log(&owner, "switched", &endpoint).await.len(), 1);

    // A test event still goes to a switched-off endpoint, to check it.
    receiver.fail(0);
    let r = owner.call("send_webhook_test", &[("slug", "switched"), ("id", &endpoint)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let got = receiver.wait_for(&app, 3).await;
    assert_eq!(got[2].json()["type"], "webhook.test");

    // Fixed and switched on: the failed delivery is replayed and arrives.
    let r = owner
        .call(
            "update_webhook",
            &[
                ("slug", "switched"),
                ("id", &endpoint),
                ("url", &receiver.url),
                ("description", ""),
                ("event_types[]", "project.created"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert!(r.json()["disabled_reason"].is_null());
    let since = before_failures.format(&time::format_description::well_known::Rfc3339).unwrap();
    let r = owner.call("replay_webhook_failures", &[("slug", "switched"), ("id", &endpoint), ("since", &since)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(r.json(), 1);
    let got = receiver.wait_for(&app, 4).await;
    assert_eq!(got[3].json()["data"]["project"]["name"], "First");
    log_until(&owner, "switched", &endpoint, "replayed and delivered", |log| log.iter().filter(|d| d["status"] == "delivered").count() == 2).await;

    // Resending a delivered event sends the same event (same id) again.
    let log = delivery_log(&owner, "switched", &endpoint).await;
    let delivered = log.iter().find(|d| d["event_type"] == "project.created").unwrap();
    let r = owner.call("resend_webhook_delivery", &[("slug", "switched"), ("id", &endpoint), ("delivery", delivered["id"].as_str().unwrap())]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let got = receiver.wait_for(&app, 5).await;
    assert_eq!(got[4].header("webhook-id"), got[3].header("webhook-id"));
}

#[tokio::test]
async fn bad_endpoint_settings_are_refused_on_their_field_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("strict").await;
    let long = "d".repeat(501);
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("url", "not a url"), ("event_types[]", "project.created")], "url"),
        (&[("url", "ftp://example.com/"), ("event_types[]", "project.created")], "url"),
        (&[("url", "https://example.com/"), ("event_types[]", "project.exploded")], "event_types"),
        (&[("url", "https://example.com/")], "event_types"),
        (&[("url", "https://example.com/"), ("event_types[]", "project.created"), ("description", &long)], "description"),
    ];
    for (fields, field) in cases {
        let mut form = vec![("slug", "strict"), ("description", "")];
        form.retain(|(k, _)| !fields.iter().any(|(f, _)| f == k));
        form.extend_from_slice(fields);
        let r = owner.call("create_webhook", &form).await;
        assert_eq!(r.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {}", r.body);
        assert_eq!(r.error_field().as_deref(), Some(field), "{fields:?}: {}", r.body);
    }
    let mut tenant = app.inspect_tenant("strict").await;
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(&mut tenant).await.unwrap();
    assert_eq!(saved, 0);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'webhook%'").fetch_one(&mut tenant).await.unwrap();
    assert_eq!(recorded, 0);

    // Members can't see or add endpoints; another organization's endpoint isn't there.
    let bo = app.signed_up("bo-member-of-strict@example.test").await;
    owner.invite_and_accept("strict", "bo-member-of-strict@example.test", "member", &bo).await;
    let r = bo.call("list_webhooks", &[("slug", "strict")]).await;
    assert_eq!(r.status, reqwest::StatusCode::FORBIDDEN, "{}", r.body);
    let receiver = Receiver::start().await;
    let (theirs, _) = add_endpoint(&app.owner_of("other-org").await, "other-org", &receiver.url, &["project.created"]).await;
    let r = owner.call("get_webhook", &[("slug", "strict"), ("id", &theirs)]).await;
    assert_eq!(r.status, reqwest::StatusCode::NOT_FOUND, "{}", r.body);
    let r = owner.call("send_webhook_test", &[("slug", "strict"), ("id", &theirs)]).await;
    assert_eq!(r.status, reqwest::StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn jobs_from_tenant_data_reach_the_queue_only_if_their_change_commits_and_only_once() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 0).await;
    let owner = app.owner_of("outboxed").await;
    let tenant = app.tenant_id("outboxed").await;
    let mut conn = app.app_conn_for("outboxed").await;
    use sqlx::Connection;
    let outbox = |id: uuid::Uuid| {
        format!(
            "SET LOCAL app.tenant_id = '{tenant}'; INSERT INTO outbox (id, kind, version, payload, max_attempts, created_at)
             VALUES ('{id}', 'jobs.probe', 1, '{{\"hold_ms\": 0, \"fail_attempts\": 0}}', 3, now() - interval '5 minutes')"
        )
    };
    let (gone, kept) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut rolled_back = conn.begin().await.unwrap();
    sqlx::raw_sql(&outbox(gone)).execute(&mut *rolled_back).await.unwrap();
    rolled_back.rollback().await.unwrap();
    let mut committed = conn.begin().await.unwrap();
    sqlx::raw_sql(&outbox(kept)).execute(&mut *committed).await.unwrap();
    committed.commit().await.unwrap();

    // The sweeper moves what a relay left behind, keeping its id; a second sweep moves nothing.
    assert_eq!(app.backend.tenancy.sweep_outbox().await.unwrap(), 1);
    assert_eq!(app.backend.tenancy.sweep_outbox().await.unwrap(), 0);
    let jobs: Vec<(uuid::Uuid, uuid::Uuid)> =
        sqlx::query_as("SELECT id, lane FROM jobs WHERE kind = 'jobs.probe'").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(jobs, [(kept, tenant)]);
    let mut inspect = app.inspect_tenant("outboxed").await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&mut inspect).await.unwrap();
    assert_eq!(left, 0);

    // A change that records an event moves its delivery job at once, after its commit.
    add_endpoint(&owner, "outboxed", "http://127.0.0.1:9/hook", &["project.created"]).await;
    owner.add_project("outboxed", "Relayed").await;
    let started = Instant::now();
    while app.count("SELECT count(*) FROM jobs WHERE kind = 'webhooks.deliver'").await != 1 {
        assert!(started.elapsed() < Duration::from_secs(10), "the delivery job wasn't relayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&mut inspect).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the relay left its outbox row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_endpoint_holds_two_workers_at_most_so_other_organizations_deliveries_go_on() {
    let app = TestApp::spawn_with(|c| c.jobs.workers = 4).await;
    let slow_owner = app.owner_of("slowpoke").await;
    // Each request takes 6 s: without the limit, four would hold all four workers that long.
    let slow = Receiver::answering_after(Duration::from_secs(6)).await;
    add_endpoint(&slow_owner, "slowpoke", &slow.url, &["project.created"]).await;
    let quick_owner = app.owner_of("quick").await;
    let quick = Receiver::start().await;
    add_endpoint(&quick_owner, "quick", &quick.url, &["project.created"]).await;

    for n in 1..=5 {
        slow_owner.add_project("slowpoke", &format!("Slow {n}")).await;
    }
    slow.wait_for(&app, 2).await;
    let started = Instant::now();
    quick_owner.add_project("quick", "Quick").await;
    quick.wait_for(&app, 1).await;
    assert!(started.elapsed() < Duration::from_secs(2), "another organization's delivery waited {:?}", started.elapsed());
    slow.wait_up_to(&app, 5, Duration::from_secs(30)).await;
    assert_eq!(slow.most_at_once.load(Ordering::SeqCst), 2, "one organization's deliveries hold two workers at most");
}

#[tokio::test]
async fn a_delivery_whose_job_was_lost_can_be_resent_and_the_line_behind_it_moves_on() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("stuck").await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = add_endpoint(&owner, "stuck", &receiver.url, &["project.created", "project.updated"]).await;
    receiver.fail(1);
    owner.add_project("stuck", "Lost").await;
    receiver.wait_for(&app, 1).await;
    log_until(&owner, "stuck", &endpoint, "the failed first attempt", |log| log.len() == 1 && log[0]["attempts"] == 1).await;
    // Its retry's job is lost (its worker died on its last attempt, say).
    sqlx::query("DELETE FROM jobs WHERE kind = 'webhooks.deliver'").execute(&app.inspect).await.unwrap();
    let project = app.project_id("Lost").await;
    let r = owner.call("update_project", &[("slug", "stuck"), ("id", &project), ("name", "Found"), ("description", "")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let log = log_until(&owner, "stuck", &endpoint, "the change held behind it", |log| log.iter().any(|d| d["status"] == "held")).await;
    let stuck = log.iter().find(|d| d["status"] == "pending").unwrap()["id"].as_str().unwrap().to_string();

    // While its retry is merely due, it is still being sent.
    let r = owner.call("resend_webhook_delivery", &[("slug", "stuck"), ("id", &endpoint), ("delivery", &stuck)]).await;
    assert_eq!(r.status, reqwest::StatusCode::CONFLICT, "{}", r.body);
    // Over an hour late, it may be resent; then the held change follows it.
    let mut tenant = app.inspect_tenant("stuck").await;
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '2 hours' WHERE status = 'pending'")
        .execute(&mut tenant)
        .await
        .unwrap();
    let r = owner.call("resend_webhook_delivery", &[("slug", "stuck"), ("id", &endpoint), ("delivery", &stuck)]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let got = receiver.wait_for(&app, 3).await;
    let names: Vec<String> = got.iter().map(|r| r.json()["data"]["project"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["Lost", "Lost", "Found"]);
    log_until(&owner, "stuck", &endpoint, "both delivered", |log| log.iter().all(|d| d["status"] == "delivered")).await;
}
