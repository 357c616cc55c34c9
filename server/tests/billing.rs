//! Billing, as an organization's owner and as Stripe see it: the catalogue is made real in Stripe
//! once, a new organization starts a card-free trial there, and Stripe's events come in signed,
//! once each, and bring the organization to Stripe's newest state whatever their order.
//!
//! Each test server has a Stripe account of its own on the stand-in (see `spawn_billed`).

mod common;
use common::{Inbox, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tessera_backend::billing::sync::{self, Outcome};
use tessera_backend::billing::Record;

/// Stripe, as the test server's account on the stand-in.
struct Stripe {
    base: String,
    key: String,
}

impl Stripe {
    fn of(app: &TestApp) -> Stripe {
        // Stripe itself when the tests run against it (STRIPE_SECRET_KEY), else the stand-in.
        let base = app.config.billing.api_base.clone().unwrap_or_else(|| "https://api.stripe.com".into());
        Stripe { base: base.trim_end_matches('/').to_string(), key: app.config.billing.secret_key.clone().unwrap() }
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::Client::new().get(format!("{}{path}", self.base)).bearer_auth(&self.key).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = reqwest::Client::new().post(format!("{}{path}", self.base)).bearer_auth(&self.key).form(form).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }
}

/// The organization's billing record as stored on its row.
async fn record(app: &TestApp, slug: &str) -> Option<Record> {
    let json: Option<Value> = sqlx::query_scalar("SELECT billing FROM tenants WHERE slug = $1").bind(slug).fetch_one(&app.inspect).await.unwrap();
    json.map(|j| serde_json::from_value(j).unwrap())
}

/// Waits until `check` holds for the organization's record (jobs and webhooks run meanwhile).
async fn until(app: &TestApp, slug: &str, what: &str, check: impl Fn(&Record) -> bool) -> Record {
    let started = Instant::now();
    loop {
        if let Some(record) = record(app, slug).await.filter(|r| check(r)) {
            return record;
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!("{what}: the record is {:?}\njobs: {:#?}", record(app, slug).await, jobs(app).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's jobs, with how each last failed (for a test's failure message).
async fn jobs(app: &TestApp) -> Vec<(String, String, i32, Option<String>)> {
    sqlx::query_as("SELECT kind, status, attempts, last_error FROM jobs ORDER BY created_at").fetch_all(&app.inspect).await.unwrap()
}

async fn customer_of(app: &TestApp, slug: &str) -> String {
    let started = Instant::now();
    loop {
        let id: Option<String> =
            sqlx::query_scalar("SELECT a.customer_id FROM billing_accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = $1")
                .bind(slug)
                .fetch_optional(&app.inspect)
                .await
                .unwrap()
                .flatten();
        if let Some(id) = id {
            return id;
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!("{slug} got no Stripe customer\njobs: {:#?}", jobs(app).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts `event` to the server's Stripe endpoint, signed with `secret` at `timestamp`.
async fn deliver(app: &TestApp, event: &Value, secret: &str, timestamp: i64) -> (StatusCode, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let signature = tessera_backend::billing::signature::sign(&body, secret, timestamp);
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({ "id": id, "object": "event", "api_version": "2026-09-30.endive", "created": now(), "livemode": false,
            "pending_webhooks": 1, "request": { "id": null, "idempotency_key": null }, "type": kind, "data": { "object": object } })
}

#[tokio::test]
async fn the_catalogue_syncs_once_and_a_new_price_takes_the_lookup_key_over() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let billing = app.backend.tenancy.billing();
    let stripe = billing.stripe().unwrap();
    // spawn_billed synced already: a second run changes nothing.
    let again = sync::sync(stripe, billing.catalogue()).await.unwrap();
    assert!(again.iter().all(|c| c.outcome == Outcome::Unchanged), "{again:?}");
    assert_eq!(again.iter().filter(|c| c.what.starts_with("price ")).count(), 12, "2 paid plans × 2 intervals × 3 components");

    let mut dearer = billing.catalogue().clone();
    dearer.plans.iter_mut().find(|p| p.key == "team").unwrap().monthly_per_seat = 900;
    let changes = sync::sync(stripe, &dearer).await.unwrap();
    let changed: Vec<String> = changes.iter().filter(|c| c.outcome != Outcome::Unchanged).map(|c| c.to_string()).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        changed[0].starts_with("price team_month_seat: replaced") && changed[0].contains("(800 usd)") && changed[0].contains("(900 usd)"),
        "{changed:?}"
    );
    let prices = Stripe::of(&app).get("/v1/prices?lookup_keys[]=team_month_seat").await;
    assert_eq!(prices["data"][0]["unit_amount"], 900);
    assert!(sync::sync(stripe, &dearer).await.unwrap().iter().all(|c| c.outcome == Outcome::Unchanged));

    // Metered API calls bill per call, a fraction of a cent, through the meter.
    let metered = Stripe::of(&app).get("/v1/prices?lookup_keys[]=business_year_api_calls").await;
    assert_eq!(metered["data"][0]["unit_amount_decimal"], "0.03");
    assert_eq!(metered["data"][0]["recurring"]["usage_type"], "metered");
    assert!(metered["data"][0]["recurring"]["meter"].as_str().unwrap().starts_with("mtr_"));
}

#[tokio::test]
async fn a_new_organization_starts_a_card_free_trial_of_the_team_plan_in_stripe() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let owner = app.owner_of("trialco").await;
    // At once, before Stripe has heard of it: the promised trial.
    let promised = record(&app, "trialco").await.unwrap().snapshot.unwrap();
    assert_eq!((promised.plan.as_str(), promised.subscription_id.as_str()), ("team", ""));
    let days = (promised.trial_end.unwrap() - now()) as f64 / 86_400.0;
    assert!((13.9..=14.0).contains(&days), "{days} days");

    let customer = customer_of(&app, "trialco").await;
    let record = until(&app, "trialco", "Stripe's trial subscription", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let snapshot = record.snapshot.unwrap();
    assert_eq!(snapshot.trial_end, promised.trial_end, "the trial Stripe runs ends when the one promised does");
    assert!(!snapshot.has_payment_method);
    let stripe = Stripe::of(&app);
    let customer = stripe.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(customer["name"], "Org trialco");
    assert_eq!(customer["email"], "owner@trialco.test");
    assert!(customer["test_clock"].as_str().unwrap().starts_with("clock_"), "tests run each customer on its own clock");
    let subscription = stripe.get(&format!("/v1/subscriptions/{}", snapshot.subscription_id)).await;
    assert_eq!(subscription["status"], "trialing");
    assert_eq!(subscription["trial_settings"]["end_behavior"]["missing_payment_method"], "cancel");
    let mut items: Vec<(String, Value)> = subscription["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["price"]["lookup_key"].as_str().unwrap().to_string(), i["quantity"].clone()))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(items, [("team_month_api_calls".into(), Value::Null), ("team_month_flat".into(), json!(1)), ("team_month_seat".into(), json!(1))]);

    // The door carries it: a trial of Team has Team's features.
    let view = app.backend.tenancy.billing().view(Some(&record_of(&app, "trialco").await));
    assert!(matches!(view.state, tessera_domain::billing::BillingState::Trialing { ref plan, .. } if plan == "team"));
    assert_eq!(view.entitlements.seats, Some(25));
    // Nothing to announce: the trial was the organization's state from its first moment.
    let announced: String = sqlx::query_scalar("SELECT announced FROM billing_accounts").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(announced, "trialing:team");
    drop(owner);
}

async fn record_of(app: &TestApp, slug: &str) -> Record {
    record(app, slug).await.unwrap()
}

#[tokio::test]
async fn stripe_events_are_refused_unsigned_or_stale_and_stored_once_however_often_they_come() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let secret = app.config.billing.webhook_secrets[0].clone();
    let stored = |id: &'static str| {
        let pool = app.inspect.clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT count(*) FROM stripe_events WHERE id = $1").bind(id).fetch_one(&pool).await.unwrap() }
    };
    let unknown = event("evt_unknown_kind_1", "radar.early_fraud_warning.created", json!({ "id": "issfr_1", "object": "radar.early_fraud_warning" }));

    let (status, body) = deliver(&app, &unknown, "whsec_not_the_endpoints", now()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no v1 signature matches"), "{body}");
    let (status, body) = deliver(&app, &unknown, &secret, now() - 301).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("301 s away"), "{body}");
    let unsigned = reqwest::Client::new().post(format!("{}/webhooks/stripe", app.base)).body(unknown.to_string()).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
    assert_eq!(stored("evt_unknown_kind_1").await, 0, "a refused event leaves nothing");

    for attempt in 0..3 {
        let (status, body) = deliver(&app, &unknown, &secret, now()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["duplicate"], attempt > 0);
    }
    assert_eq!(stored("evt_unknown_kind_1").await, 1);
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'billing.process_event' AND payload->>'event_id' = 'evt_unknown_kind_1'")
            .fetch_one(&app.inspect)
            .await
            .unwrap();
    assert_eq!(jobs, 1, "one job, however many deliveries");
    let outcome = processed(&app, "evt_unknown_kind_1").await;
    assert!(outcome.starts_with("ignored: a type"), "{outcome}");

    // A known type about a customer that isn't this deployment's: stored, ignored.
    let foreign =
        event("evt_foreign_1", "customer.subscription.updated", json!({ "id": "sub_x", "object": "subscription", "customer": "cus_elsewhere" }));
    assert_eq!(deliver(&app, &foreign, &secret, now()).await.0, StatusCode::OK);
    assert!(processed(&app, "evt_foreign_1").await.contains("not about one of this deployment's customers"));
}

/// The outcome of an event once processed.
async fn processed(app: &TestApp, id: &str) -> String {
    let started = Instant::now();
    loop {
        let outcome: Option<String> = sqlx::query_scalar("SELECT outcome FROM stripe_events WHERE id = $1 AND processed_at IS NOT NULL")
            .bind(id)
            .fetch_optional(&app.inspect)
            .await
            .unwrap()
            .flatten();
        if let Some(outcome) = outcome {
            return outcome;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{id} was not processed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_change_in_stripe_shows_in_the_app_within_a_second_of_its_event_being_accepted() {
    let app = TestApp::spawn_billed(|_| {}).await;
    app.owner_of("quickco").await;
    let record = until(&app, "quickco", "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let subscription = record.snapshot.unwrap().subscription_id;
    // Changed in Stripe (as the Stripe dashboard would): the stand-in posts the event here.
    Stripe::of(&app).post(&format!("/v1/subscriptions/{subscription}"), &[("cancel_at_period_end", "true")]).await;
    let seen = until(&app, "quickco", "the cancellation", |r| r.snapshot.as_ref().is_some_and(|s| s.cancel_at_period_end)).await;
    let received: time::OffsetDateTime = sqlx::query_scalar(
        "SELECT min(received_at) FROM stripe_events WHERE type = 'customer.subscription.updated' AND payload->'data'->'object'->>'id' = $1",
    )
    .bind(&subscription)
    .fetch_one(&app.inspect)
    .await
    .unwrap();
    let applied = time::OffsetDateTime::now_utc();
    let lag = applied - received;
    assert!(lag < time::Duration::seconds(1), "applied {lag} after the event was accepted");
    assert!(seen.snapshot.unwrap().cancel_at_period_end);
}

/// A slug of this run's own (maildev is shared by both passes).
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The organization's Stripe test clock.
async fn clock_of(app: &TestApp, slug: &str) -> String {
    customer_of(app, slug).await;
    sqlx::query_scalar("SELECT a.test_clock FROM billing_accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = $1")
        .bind(slug)
        .fetch_one(&app.inspect)
        .await
        .unwrap()
}

impl Stripe {
    /// Moves the clock to `to` and waits until Stripe has done everything due by then.
    async fn advance(&self, clock: &str, to: i64) {
        self.post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), &[("frozen_time", &to.to_string())]).await;
        let started = Instant::now();
        while self.get(&format!("/v1/test_helpers/test_clocks/{clock}")).await["status"] != "ready" {
            assert!(started.elapsed() < Duration::from_secs(30), "the clock didn't finish advancing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn frozen_time(&self, clock: &str) -> i64 {
        self.get(&format!("/v1/test_helpers/test_clocks/{clock}")).await["frozen_time"].as_i64().unwrap()
    }
}

/// Fills Stripe's hosted checkout page at `url` with `card`, as a person would.
async fn pay_on_checkout(url: &str, card: &str) -> StatusCode {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client.get(url).send().await.unwrap();
    assert!(page.status().is_success(), "the checkout page: {}", page.status());
    let response =
        client.post(url).form(&[("card_number", card), ("expiry", "12 / 34"), ("cvc", "123"), ("name", "Ada Lovelace")]).send().await.unwrap();
    response.status()
}

/// The organization's state, as the door derives it now.
async fn state(app: &TestApp, slug: &str) -> String {
    app.backend.tenancy.billing().view(record(app, slug).await.as_ref()).state.label()
}

async fn until_state(app: &TestApp, slug: &str, wanted: &str) {
    let started = Instant::now();
    loop {
        let now = state(app, slug).await;
        if now == wanted {
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("{slug} stayed {now}, not {wanted}\nrecord: {:?}\njobs: {:#?}", record(app, slug).await, jobs(app).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The organization's invoices as Tessera keeps them, newest first.
async fn invoices(app: &TestApp, slug: &str) -> Vec<tessera_domain::billing::Invoice> {
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT i.object FROM billing_invoices i JOIN tenants t ON t.id = i.tenant_id WHERE t.slug = $1 ORDER BY i.created DESC, i.id",
    )
    .bind(slug)
    .fetch_all(&app.inspect)
    .await
    .unwrap();
    rows.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect()
}

const DAY: i64 = 86_400;

#[tokio::test]
async fn a_customer_lives_through_trial_payment_seats_upgrade_downgrade_dunning_restriction_and_recovery() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let slug = unique("life");
    let owner_email = format!("owner@{slug}.test");
    let owner = app.owner_of(&slug).await;
    let stripe = Stripe::of(&app);
    let clock = clock_of(&app, &slug).await;
    until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let billing = |name: &'static str, form: Vec<(&'static str, String)>| {
        let (owner, slug) = (&owner, slug.clone());
        async move {
            let mut fields: Vec<(&str, String)> = vec![("slug", slug)];
            fields.extend(form);
            let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            owner.call(name, &borrowed).await
        }
    };

    // An endpoint hears of every billing change (deliveries to it fail; what matters here is
    // what is recorded for it).
    let r = owner
        .call(
            "create_webhook",
            &[("slug", &slug), ("url", "http://127.0.0.1:9/billing"), ("description", ""), ("event_types[]", "billing.changed"), ("enabled", "on")],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);

    // Trial → paid: during the trial the Owner chooses Team and adds a card on Stripe's page.
    let r = billing("start_checkout", vec![("plan", "team".into()), ("interval", "month".into())]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let url: String = serde_json::from_str(&r.body).unwrap();
    assert_eq!(pay_on_checkout(&url, "4242 4242 4242 4242").await, StatusCode::SEE_OTHER);
    let with_card = until(&app, &slug, "the card on file", |r| r.payment_method.is_some()).await;
    assert!(with_card.payment_method.unwrap().starts_with("Visa •••• 4242"));
    assert_eq!(state(&app, &slug).await, "trialing:team", "still the trial: nothing is charged before it ends");

    let trial_end = with_card.snapshot.unwrap().trial_end.unwrap();
    stripe.advance(&clock, trial_end + 2 * 3600).await;
    until_state(&app, &slug, "active:team:month").await;
    let first = until_invoice(&app, &slug, |i| i.billing_reason.as_deref() == Some("subscription_cycle") && i.status == "paid").await;
    assert_eq!(first.amount_paid, 2900 + 800, "Team: $29 flat and $8 for the one seat");
    Inbox::latest(&owner_email, &format!("Receipt: $37.00 paid for Org {slug}")).await;

    // A second member: the seat is added to the subscription, prorated on the next invoice.
    let member = app.signed_up(&format!("member@{slug}.test")).await;
    owner.invite_and_accept(&slug, &format!("member@{slug}.test"), "member", &member).await;
    let subscription = record(&app, &slug).await.unwrap().snapshot.unwrap().subscription_id;
    let started = Instant::now();
    loop {
        let sub = stripe.get(&format!("/v1/subscriptions/{subscription}")).await;
        let seats =
            sub["items"]["data"].as_array().unwrap().iter().find(|i| i["price"]["lookup_key"] == "team_month_seat").unwrap()["quantity"].clone();
        if seats == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the seat count stayed {seats}\njobs: {:#?}", jobs(&app).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Upgrade: shown first, then charged now with proration.
    stripe.advance(&clock, stripe.frozen_time(&clock).await + 10 * DAY).await;
    let r = billing("preview_plan_change", vec![("plan", "business".into()), ("interval", "month".into())]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let preview: tessera_domain::billing::ChangePreview = serde_json::from_str(&r.body).unwrap();
    assert_eq!(preview.timing, tessera_domain::billing::ChangeTiming::Now);
    assert!(preview.due_now > 0 && preview.lines.iter().any(|l| l.proration && l.amount < 0), "{preview:?}");
    let r = billing(
        "change_plan",
        vec![("plan", "business".into()), ("interval", "month".into()), ("proration_date", preview.proration_date.to_string())],
    )
    .await;
    assert!(r.status.is_success(), "{}", r.body);
    until_state(&app, &slug, "active:business:month").await;
    let upgrade = until_invoice(&app, &slug, |i| i.billing_reason.as_deref() == Some("subscription_update") && i.status == "paid").await;
    assert_eq!(upgrade.amount_paid, preview.due_now, "charged what the preview showed");
    assert!(upgrade.lines.iter().any(|l| l.proration && l.description.contains("Unused time")), "{:?}", upgrade.lines);
    assert!(upgrade.lines.iter().filter(|l| l.proration).count() >= 3, "the seat's proration came with it: {:?}", upgrade.lines);
    assert!(view(&app, &slug).await.entitlements.has(tessera_domain::billing::Feature::SingleSignOn), "Business has single sign-on");

    // Downgrade: at the period's end, shown as scheduled until then.
    let r = billing("change_plan", vec![("plan", "team".into()), ("interval", "month".into())]).await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(serde_json::from_str::<String>(&r.body).unwrap(), "at_period_end");
    let scheduled = until(&app, &slug, "the scheduled downgrade", |r| r.snapshot.as_ref().is_some_and(|s| s.scheduled.is_some())).await;
    assert_eq!(scheduled.snapshot.unwrap().scheduled, Some(("team".to_string(), tessera_domain::billing::Interval::Month)));
    assert_eq!(state(&app, &slug).await, "active:business:month", "Business until the period ends");

    // The card starts failing: the renewal fails, Stripe retries, the Owner is told each time.
    let r = billing("start_checkout", vec![]).await;
    let url: String = serde_json::from_str(&r.body).unwrap();
    assert_eq!(pay_on_checkout(&url, "4000 0000 0000 0341").await, StatusCode::SEE_OTHER);
    until(&app, &slug, "the failing card on file", |r| r.payment_method.as_deref().is_some_and(|p| p.contains("0341"))).await;
    let period_end = record(&app, &slug).await.unwrap().snapshot.unwrap().period_end.unwrap();
    stripe.advance(&clock, period_end + 2 * 3600).await;
    until_state(&app, &slug, "past_due:team").await;
    let failed = Inbox::latest(&owner_email, &format!("for Org {slug} failed")).await;
    let text = failed["text"].as_str().unwrap_or_default();
    assert!(text.contains("We'll try again on") && text.contains("becomes read-only on"), "{text}");
    // Within the grace period everything still works.
    owner.add_project(&slug, "During grace").await;

    // Past the grace period: read-only, with a message that says how to fix it.
    stripe.advance(&clock, period_end + 8 * DAY).await;
    until_state(&app, &slug, "restricted:team").await;
    Inbox::latest(&owner_email, &format!("Org {slug} is read-only")).await;
    // The first failure and Stripe's retries on days 1, 3, 5 and 7: a mail each.
    let started = Instant::now();
    while Inbox::count_about(&owner_email, &format!("for Org {slug} failed")).await < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a dunning mail per failed attempt: {}",
            Inbox::count_about(&owner_email, &format!("for Org {slug} failed")).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = owner.call("create_project", &[("slug", &slug), ("name", "While unpaid"), ("description", "")]).await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED, "{}", refused.body);
    assert!(refused.error_message().contains("update the payment method under Settings → Billing"), "{}", refused.body);
    let read = owner.call("list_projects", &[("slug", &slug)]).await;
    assert!(read.status.is_success(), "reads still work: {}", read.body);

    // A working card pays what is open, and full access is back at once.
    let r = billing("start_checkout", vec![]).await;
    let url: String = serde_json::from_str(&r.body).unwrap();
    assert_eq!(pay_on_checkout(&url, "4242424242424242").await, StatusCode::SEE_OTHER);
    until_state(&app, &slug, "active:team:month").await;
    Inbox::latest(&owner_email, &format!("Payment received: Org {slug} has full access again")).await;
    owner.add_project(&slug, "After paying").await;
    owner.add_project(&slug, "Third").await;
    owner.add_project(&slug, "Fourth").await;

    // Cancel at the period's end, change of mind, cancel again, and the period ends.
    assert!(billing("cancel_subscription", vec![]).await.status.is_success());
    until_state(&app, &slug, "active:team:month:canceling").await;
    assert!(billing("resume_subscription", vec![]).await.status.is_success());
    until_state(&app, &slug, "active:team:month").await;
    assert!(billing("cancel_subscription", vec![]).await.status.is_success());
    let period_end = record(&app, &slug).await.unwrap().snapshot.unwrap().period_end.unwrap();
    stripe.advance(&clock, period_end + 3600).await;
    until_state(&app, &slug, "ended:team").await;
    Inbox::latest(&owner_email, &format!("Org {slug}'s subscription has ended")).await;
    let ended = view(&app, &slug).await;
    assert_eq!(ended.entitlements.seats, Some(3), "the Free plan's limits apply");

    // Four projects where the Free plan includes three: everything is kept and readable, but
    // nothing can change until the Owner subscribes again or removes what is over.
    let projects = owner.call("list_projects", &[("slug", &slug)]).await;
    assert!(projects.status.is_success(), "reads still work: {}", projects.body);
    let projects = projects.json();
    assert_eq!(projects.as_array().unwrap().len(), 4, "nothing was deleted");
    let id_of = |name: &str| projects.as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["id"].as_str().unwrap().to_string();
    let rename = |id: String| {
        let (owner, slug) = (&owner, slug.clone());
        async move { owner.call("update_project", &[("slug", &slug), ("id", &id), ("name", "Renamed"), ("description", "")]).await }
    };
    let refused = rename(id_of("Third")).await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED, "{}", refused.body);
    assert_eq!(
        refused.error_message(),
        "This organization's subscription or trial has ended and it has more than the Free plan includes: 4 projects (3 are included). Everything is kept and can still be read, but nothing can be changed until an owner or admin subscribes again under Settings → Billing, or removes members or projects down to the Free plan's limits."
    );
    let mut tenant = app.inspect_tenant(&slug).await;
    let renamed: i64 = sqlx::query_scalar("SELECT count(*) FROM projects WHERE name = 'Renamed'").fetch_one(&mut tenant).await.unwrap();
    assert_eq!(renamed, 0, "nothing was written");
    // Removing is how to get under the limits, so it is allowed.
    let r = owner.call("delete_project", &[("slug", &slug), ("id", &id_of("Fourth"))]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = rename(id_of("Third")).await;
    assert!(r.status.is_success(), "within the Free plan, writable again: {}", r.body);

    // Every change of state went out as a `billing.changed` event, shaped as the catalogue shows.
    let mut tenant = app.inspect_tenant(&slug).await;
    let started = Instant::now();
    let events: Vec<Value> = loop {
        let events: Vec<Value> =
            sqlx::query_scalar("SELECT payload::jsonb FROM webhook_events WHERE type = 'billing.changed' ORDER BY occurred_at, id")
                .fetch_all(&mut tenant)
                .await
                .unwrap();
        if events.iter().any(|e| e["data"]["billing"]["state"] == "ended") || started.elapsed() > Duration::from_secs(20) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let example: Value = serde_json::from_str(tessera_domain::webhooks::EventType::BillingChanged.example_data()).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let changes: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(keys(&e["data"]["billing"]), keys(&example["billing"]), "{e}");
            (e["data"]["previous"]["state"].as_str().unwrap().to_string(), e["data"]["billing"]["state"].as_str().unwrap().to_string())
        })
        .collect();
    for wanted in [("trialing", "active"), ("active", "past_due"), ("past_due", "restricted"), ("restricted", "active"), ("active", "ended")] {
        assert!(changes.contains(&(wanted.0.to_string(), wanted.1.to_string())), "{wanted:?} missing from {changes:?}");
    }
    let restricted = events.iter().find(|e| e["data"]["billing"]["state"] == "restricted").unwrap();
    assert_eq!(restricted["data"]["billing"]["read_only"], true);
    assert_eq!(restricted["data"]["billing"]["plan"], "team");

    // Every change is in the audit log.
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'billing.%' ORDER BY occurred_at").fetch_all(&app.inspect).await.unwrap();
    for wanted in [
        "billing.checkout_started",
        "billing.payment_method_updated",
        "billing.seats_changed",
        "billing.plan_changed",
        "billing.canceled",
        "billing.resumed",
        "billing.state_changed",
    ] {
        assert!(actions.iter().any(|a| a == wanted), "{wanted} missing from {actions:?}");
    }
}

async fn view(app: &TestApp, slug: &str) -> tessera_backend::billing::View {
    app.backend.tenancy.billing().view(record(app, slug).await.as_ref())
}

/// Waits for an invoice matching `check`.
async fn until_invoice(app: &TestApp, slug: &str, check: impl Fn(&tessera_domain::billing::Invoice) -> bool) -> tessera_domain::billing::Invoice {
    let started = Instant::now();
    loop {
        if let Some(found) = invoices(app, slug).await.into_iter().find(|i| check(i)) {
            return found;
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("no such invoice: {:#?}\njobs: {:#?}", invoices(app, slug).await, jobs(app).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn events_sent_three_times_and_in_reverse_order_end_in_stripes_newest_state() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let stripe = Stripe::of(&app);
    // Every event delivered three times, each batch in reverse (an update before its create).
    stripe.post("/_standin/chaos", &[("duplicate", "2"), ("reorder", "true")]).await;
    let slug = unique("chaos");
    app.owner_of(&slug).await;
    let record = until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let subscription = record.snapshot.unwrap().subscription_id;
    // Two changes in a row in Stripe: cancelled, then resumed. Their events arrive reversed.
    stripe.post(&format!("/v1/subscriptions/{subscription}"), &[("cancel_at_period_end", "true")]).await;
    stripe.post(&format!("/v1/subscriptions/{subscription}"), &[("cancel_at_period_end", "false")]).await;
    let deliveries = stripe.get("/_standin/deliveries").await;
    let updates = |events: &Value| events.as_array().map_or(0, |d| d.iter().filter(|d| d["type"] == "customer.subscription.updated").count());
    let started = Instant::now();
    loop {
        let processed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE type = 'customer.subscription.updated' AND processed_at IS NOT NULL")
                .fetch_one(&app.inspect)
                .await
                .unwrap();
        if processed >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the two updates weren't processed\njobs: {:#?}", jobs(&app).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE type = 'customer.subscription.updated'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(stored, 2, "each event is stored once, however often it came (deliveries so far: {})", updates(&deliveries["data"]));
    let record = record_of(&app, &slug).await;
    assert!(!record.snapshot.unwrap().cancel_at_period_end, "the newest state wins: resumed");
    assert_eq!(state(&app, &slug).await, "trialing:team");
}

#[tokio::test]
async fn an_event_whose_worker_died_after_processing_it_is_processed_again_with_one_effect() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let slug = unique("lost");
    let owner_email = format!("owner@{slug}.test");
    app.owner_of(&slug).await;
    let customer = customer_of(&app, &slug).await;
    until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let secret = app.config.billing.webhook_secrets[0].clone();
    let failed = json!({ "id": "in_lost_1", "object": "invoice", "customer": customer, "currency": "usd", "amount_due": 3700,
                         "attempt_count": 1, "next_payment_attempt": now() + 3 * DAY, "number": "LOST-0001" });
    let id = format!("evt_lost_{}", uuid::Uuid::new_v4().simple());
    assert_eq!(deliver(&app, &event(&id, "invoice.payment_failed", failed.clone()), &secret, now()).await.0, StatusCode::OK);
    processed(&app, &id).await;
    let subject = format!("Payment of $37.00 for Org {slug} failed");
    Inbox::latest(&owner_email, &subject).await;
    // The worker dies after the work, before the queue heard: its lease runs out and another
    // worker takes the job again.
    sqlx::query(
        "UPDATE jobs SET status = 'running', lease_token = gen_random_uuid(), lease_until = now() - interval '1 second', finished_at = NULL
          WHERE kind = 'billing.process_event' AND payload->>'event_id' = $1",
    )
    .bind(&id)
    .execute(&app.inspect)
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        let (status, attempts): (String, i32) =
            sqlx::query_as("SELECT status, attempts FROM jobs WHERE kind = 'billing.process_event' AND payload->>'event_id' = $1")
                .bind(&id)
                .fetch_one(&app.inspect)
                .await
                .unwrap();
        if status == "done" && attempts == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the job wasn't taken again: {status}, {attempts} attempts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And Stripe sending the event again (as it does when unsure) changes nothing either.
    assert_eq!(deliver(&app, &event(&id, "invoice.payment_failed", failed), &secret, now()).await.1["duplicate"], true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(Inbox::count_about(&owner_email, &subject).await, 1, "one dunning mail for one failed attempt");
    let notices: i64 =
        sqlx::query_scalar("SELECT count(*) FROM billing_notices WHERE key LIKE 'payment_failed:in_lost_1:%'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn the_plans_seat_project_and_feature_limits_stop_what_exceeds_them_with_what_to_do_and_billing_is_for_owners_and_admins() {
    let plans = std::env::temp_dir().join(format!("plans-{}.toml", uuid::Uuid::new_v4().simple()));
    let shipped = tessera_backend::billing::catalogue::SHIPPED;
    let team_at = shipped.find("key = \"team\"").unwrap();
    let seats_at = team_at + shipped[team_at..].find("seats = 25").unwrap();
    let limited = format!("{}seats = 2{}", &shipped[..seats_at], &shipped[seats_at + "seats = 25".len()..]);
    let projects_at = team_at + limited[team_at..].find("projects = 100").unwrap();
    let limited = format!("{}projects = 1{}", &limited[..projects_at], &limited[projects_at + "projects = 100".len()..]);
    // And a Team without webhooks or single sign-on.
    let team_features = "features = [\"api_access\", \"webhooks\", \"single_sign_on\"]";
    let features_at = team_at + limited[team_at..].find(team_features).unwrap();
    let limited = format!("{}features = [\"api_access\"]{}", &limited[..features_at], &limited[features_at + team_features.len()..]);
    std::fs::write(&plans, limited).unwrap();
    let app = TestApp::spawn_billed(|c| c.billing.plans_file = Some(plans.clone())).await;
    let slug = unique("seats");
    let owner = app.owner_of(&slug).await;
    let viewer = app.signed_up(&format!("viewer@{slug}.test")).await;
    owner.invite_and_accept(&slug, &format!("viewer@{slug}.test"), "viewer", &viewer).await;
    let r = owner.call("invite_member", &[("slug", &slug), ("email", "third@example.test"), ("role", "member")]).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.error_message(), "Your plan includes 2 seats; 2 are used. Upgrade or remove a member.");
    assert_eq!(app.count("SELECT count(*) FROM invitations WHERE email = 'third@example.test'").await, 0, "nothing was written");
    // And its project limit.
    owner.add_project(&slug, "The one").await;
    let r = owner.call("create_project", &[("slug", &slug), ("name", "One too many"), ("description", "")]).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.error_message(), "Your plan includes 1 project; 1 is in use. Upgrade, or delete a project you no longer need.");
    // And its features: no webhooks on this plan.
    let r = owner
        .call(
            "create_webhook",
            &[("slug", &slug), ("url", "http://127.0.0.1:9/hook"), ("description", ""), ("event_types[]", "project.created"), ("enabled", "on")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert!(r.error_message().contains("plan doesn't include webhooks"), "{}", r.body);
    let mut tenant = app.inspect_tenant(&slug).await;
    let endpoints: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(&mut tenant).await.unwrap();
    assert_eq!(endpoints, 0, "nothing was written");
    let r = owner.call("save_sso_idp", &[("slug", &slug), ("metadata_xml", "<EntityDescriptor/>"), ("metadata_url", "")]).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.error_message(), "This organization's plan doesn't include single sign-on. An owner or admin can upgrade under Settings → Billing.");

    // Members and Viewers have no billing: its functions refuse them, the page shows nothing.
    let r = viewer.call("billing_overview", &[("slug", &slug)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = viewer.call("start_checkout", &[("slug", &slug), ("plan", "business"), ("interval", "month")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let page = viewer.get(&format!("/t/{slug}/settings/billing")).await;
    assert!(matches!(page.status.as_u16(), 403 | 404), "{}", page.status);
    assert!(!viewer.get(&format!("/t/{slug}")).await.body.contains("/settings/billing"), "no billing link for a Viewer");
    assert!(owner.get(&format!("/t/{slug}")).await.body.contains("/settings/billing"), "the Owner has one");
    let _ = std::fs::remove_file(plans);
}

#[tokio::test]
async fn annual_billing_costs_less_and_metered_api_calls_are_billed_on_the_invoice() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let stripe = Stripe::of(&app);
    let slug = unique("annual");
    let owner = app.owner_of(&slug).await;
    let clock = clock_of(&app, &slug).await;
    until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    // During the trial the Owner starts choosing Team monthly, then thinks again: yearly. Only
    // the last checkout stays open, so two tabs can't both be paid.
    let r = owner.call("start_checkout", &[("slug", &slug), ("plan", "team"), ("interval", "month")]).await;
    let abandoned: String = serde_json::from_str(&r.body).unwrap();
    let r = owner.call("start_checkout", &[("slug", &slug), ("plan", "team"), ("interval", "year")]).await;
    let url: String = serde_json::from_str(&r.body).unwrap();
    assert_eq!(reqwest::get(&abandoned).await.unwrap().status(), StatusCode::GONE, "the first checkout was expired");
    assert_eq!(pay_on_checkout(&url, "4242 4242 4242 4242").await, StatusCode::SEE_OTHER);
    let chosen =
        until(&app, &slug, "Team, yearly", |r| r.snapshot.as_ref().is_some_and(|s| s.interval == tessera_domain::billing::Interval::Year)).await;
    stripe.advance(&clock, chosen.snapshot.unwrap().trial_end.unwrap() + 2 * 3600).await;
    until_state(&app, &slug, "active:team:year").await;
    let first = until_invoice(&app, &slug, |i| i.status == "paid" && i.amount_paid > 0).await;
    assert_eq!(first.amount_paid, 29_000 + 8_000, "a year of Team for one member");
    assert!(first.amount_paid < 12 * (2_900 + 800), "less than twelve months");

    // API calls through the REST API count, and are reported to Stripe's meter.
    let r = owner.call("create_api_key", &[("slug", &slug), ("name", "Importer"), ("scopes[]", "projects:read"), ("expires_in_days", "30")]).await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    for _ in 0..40 {
        let r = reqwest::Client::new().get(format!("{}/api/v1/orgs/{slug}/projects", app.base)).bearer_auth(&key).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let reported = tessera_backend::billing::usage::report(&app.backend).await.unwrap();
    assert!(reported >= 1, "the calls' minute(s) reported");
    assert_eq!(tessera_backend::billing::usage::report(&app.backend).await.unwrap(), 0, "and not again");
    let overview = owner.call("billing_overview", &[("slug", &slug)]).await;
    assert_eq!(overview.json()["api_calls_this_month"], 40);
    // At the year's end the calls are on the renewal invoice.
    let period_end = record_of(&app, &slug).await.snapshot.unwrap().period_end.unwrap();
    stripe.advance(&clock, period_end + 2 * 3600).await;
    let renewal = until_invoice(&app, &slug, |i| i.lines.iter().any(|l| l.quantity == Some(40))).await;
    assert_eq!(renewal.billing_reason.as_deref(), Some("subscription_cycle"));
    let usage = renewal.lines.iter().find(|l| l.quantity == Some(40)).unwrap();
    assert_eq!(usage.amount, 2, "40 calls at $0.0005");
}

/// Waits until Stripe's events have stopped coming for a second and every one is processed.
async fn quiet(app: &TestApp) {
    let started = Instant::now();
    let (mut seen, mut since) = (-1, Instant::now());
    loop {
        let (stored, open): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM stripe_events").fetch_one(&app.inspect).await.unwrap();
        if stored != seen || open > 0 {
            (seen, since) = (stored, Instant::now());
        } else if since.elapsed() > Duration::from_secs(1) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "Stripe's events kept coming\njobs: {:#?}", jobs(app).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn what_stripe_never_announced_is_caught_up_by_the_hourly_reconciler() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let stripe = Stripe::of(&app);
    let slug = unique("recon");
    let owner = app.owner_of(&slug).await;
    let customer = customer_of(&app, &slug).await;
    until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let tenant = app.tenant_id(&slug).await;

    // The organization looks free here while Stripe already has its subscription (an event not
    // processed yet): subscribing again is refused, not a second subscription. (Once the trial's
    // own events are in, so none of them brings the record back first.)
    quiet(&app).await;
    sqlx::query("UPDATE tenants SET billing = NULL WHERE id = $1").bind(tenant).execute(&app.inspect).await.unwrap();
    let r = owner.call("start_checkout", &[("slug", &slug), ("plan", "team"), ("interval", "month")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("already has a subscription"), "{}", r.body);
    until_state(&app, &slug, "trialing:team").await;
    let reconcile = || tessera_backend::billing::reconcile::reconcile(&app.backend);
    assert_eq!(reconcile().await.unwrap(), Default::default(), "nothing to catch up");

    // A grace period that ran out with no word from Stripe: the state moved on with the clock,
    // so Stripe is asked again, and what it says is stored and announced.
    let stale = json!({ "status": "past_due", "unpaid_since": now() - 8 * DAY, "as_of": now() - 8 * DAY, "source": "0" });
    sqlx::query("UPDATE tenants SET billing = jsonb_set(billing, '{snapshot}', billing->'snapshot' || $2) WHERE id = $1")
        .bind(tenant)
        .bind(&stale)
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!(state(&app, &slug).await, "restricted:team", "the door follows the clock at once");
    assert_eq!(reconcile().await.unwrap().refreshed, vec![tenant]);
    until_state(&app, &slug, "trialing:team").await;
    assert_eq!(reconcile().await.unwrap(), Default::default(), "caught up");

    // An organization from before billing was switched on: no account, no record, made hours
    // ago. It gets a Stripe customer, and stays on the free plan without a trial.
    sqlx::query("DELETE FROM billing_accounts WHERE tenant_id = $1").bind(tenant).execute(&app.inspect).await.unwrap();
    sqlx::query("UPDATE tenants SET billing = NULL, created_at = now() - interval '2 hours' WHERE id = $1")
        .bind(tenant)
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!(reconcile().await.unwrap().opened, vec![tenant]);
    let opened = customer_of(&app, &slug).await;
    assert_ne!(opened, customer, "(this one's test clock starts at its creation: another customer in the stand-in)");
    let subscriptions = stripe.get(&format!("/v1/subscriptions?customer={opened}&status=all")).await;
    assert_eq!(subscriptions["data"].as_array().unwrap().len(), 0, "no trial for it");
    assert_eq!(state(&app, &slug).await, "free");
    assert_eq!(reconcile().await.unwrap(), Default::default(), "caught up");
}

#[tokio::test]
async fn switching_an_active_monthly_plan_to_annual_bills_the_year_now_less_the_unused_month() {
    let app = TestApp::spawn_billed(|_| {}).await;
    let stripe = Stripe::of(&app);
    let slug = unique("yearly");
    let owner = app.owner_of(&slug).await;
    let clock = clock_of(&app, &slug).await;
    until(&app, &slug, "the trial", |r| r.snapshot.as_ref().is_some_and(|s| !s.subscription_id.is_empty())).await;
    let r = owner.call("start_checkout", &[("slug", &slug), ("plan", "team"), ("interval", "month")]).await;
    let url: String = serde_json::from_str(&r.body).unwrap();
    assert_eq!(pay_on_checkout(&url, "4242 4242 4242 4242").await, StatusCode::SEE_OTHER);
    let with_card = until(&app, &slug, "the card on file", |r| r.payment_method.is_some()).await;
    stripe.advance(&clock, with_card.snapshot.unwrap().trial_end.unwrap() + 2 * 3600).await;
    until_state(&app, &slug, "active:team:month").await;
    until_invoice(&app, &slug, |i| i.billing_reason.as_deref() == Some("subscription_cycle") && i.amount_paid == 3_700).await;

    // A third of the way into the month, the Owner moves to yearly billing: it starts now.
    stripe.advance(&clock, stripe.frozen_time(&clock).await + 10 * DAY).await;
    let r = owner.call("preview_plan_change", &[("slug", &slug), ("plan", "team"), ("interval", "year")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let preview: tessera_domain::billing::ChangePreview = serde_json::from_str(&r.body).unwrap();
    assert_eq!(preview.timing, tessera_domain::billing::ChangeTiming::Now);
    assert!(preview.lines.iter().any(|l| !l.proration && l.amount == 29_000), "the year's flat price: {:?}", preview.lines);
    assert!(preview.lines.iter().any(|l| !l.proration && l.amount == 8_000), "the year's seat: {:?}", preview.lines);
    let credit: i64 = preview.lines.iter().filter(|l| l.proration).map(|l| l.amount).sum();
    assert!(credit < 0 && -credit < 3_700, "the unused part of the month is credited: {:?}", preview.lines);
    assert_eq!(preview.due_now, 37_000 + credit, "{preview:?}");
    let stale = (preview.proration_date - 7_200).to_string();
    let r = owner.call("change_plan", &[("slug", &slug), ("plan", "team"), ("interval", "year"), ("proration_date", &stale)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a preview two hours old isn't charged: {}", r.body);
    assert!(r.error_message().contains("Preview the change again"), "{}", r.body);
    let r = owner
        .call("change_plan", &[("slug", &slug), ("plan", "team"), ("interval", "year"), ("proration_date", &preview.proration_date.to_string())])
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(serde_json::from_str::<String>(&r.body).unwrap(), "now");
    until_state(&app, &slug, "active:team:year").await;
    let switch = until_invoice(&app, &slug, |i| i.billing_reason.as_deref() == Some("subscription_update") && i.status == "paid").await;
    assert_eq!(switch.amount_paid, preview.due_now, "charged what the preview showed");
    let renews = record_of(&app, &slug).await.snapshot.unwrap().period_end.unwrap();
    assert!(renews - stripe.frozen_time(&clock).await > 364 * DAY, "the new period is a year from the switch");
}
