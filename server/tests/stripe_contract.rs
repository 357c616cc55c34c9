//! The Stripe stand-in keeps Stripe's shapes and rules: each object it returns has exactly the
//! top-level fields of Stripe's own example object of that type (the official fixtures), and it
//! is as strict as Stripe where Tessera relies on it (idempotency keys, lookup keys).

use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;

fn base() -> String {
    std::env::var("TESSERA_TEST_STRIPE_URL").expect("TESSERA_TEST_STRIPE_URL (set by cargo xtask test)")
}

fn fixtures() -> Value {
    let path = std::env::var("TESSERA_TEST_STRIPE_FIXTURES").expect("TESSERA_TEST_STRIPE_FIXTURES (set by cargo xtask test)");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Stripe's fixtures at {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

async fn post(path: &str, form: &[(&str, &str)], idempotency_key: Option<&str>) -> (StatusCode, Value, bool) {
    let mut request = reqwest::Client::new().post(format!("{}{path}", base())).bearer_auth("sk_test_contract").form(form);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().contains_key("idempotent-replayed");
    (response.status(), response.json().await.unwrap(), replayed)
}

async fn get(path: &str) -> Value {
    let response = reqwest::Client::new().get(format!("{}{path}", base())).bearer_auth("sk_test_contract").send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_object_the_stand_in_returns_has_exactly_the_fields_of_stripes_own_example() {
    let fixtures = fixtures();
    let example = |kind: &str| fixtures["resources"][kind].clone();

    let (_, clock, _) = post("/v1/test_helpers/test_clocks", &[("frozen_time", "1800000000"), ("name", "contract")], None).await;
    let (status, customer, _) = post("/v1/customers", &[("email", "ada@example.test"), ("test_clock", clock["id"].as_str().unwrap())], None).await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    let (_, product, _) = post("/v1/products", &[("name", "Team"), ("metadata[plan]", "team")], None).await;
    let product_id = product["id"].as_str().unwrap();
    // The stand-in lives for the whole test run (both passes): a key of this test's own.
    let lookup = format!("contract_team_month_{}", uuid::Uuid::new_v4().simple());
    let (status, price, _) = post(
        "/v1/prices",
        &[("currency", "usd"), ("product", product_id), ("unit_amount", "2900"), ("recurring[interval]", "month"), ("lookup_key", lookup.as_str())],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{price}");

    let checks = [
        ("test_helpers.test_clock", get(&format!("/v1/test_helpers/test_clocks/{}", clock["id"].as_str().unwrap())).await),
        ("customer", get(&format!("/v1/customers/{}", customer["id"].as_str().unwrap())).await),
        ("product", get(&format!("/v1/products/{product_id}")).await),
        ("price", get(&format!("/v1/prices/{}", price["id"].as_str().unwrap())).await),
    ];
    for (kind, object) in &checks {
        let expected = keys(&example(kind));
        assert_eq!(keys(object), expected, "{kind}: the stand-in's fields differ from Stripe's example");
        assert_eq!(object["object"], *kind);
    }
    assert_eq!(keys(&checks[3].1["recurring"]), keys(&example("price")["recurring"]), "price.recurring");
    assert_eq!(checks[1].1["test_clock"], clock["id"], "the customer runs on the clock");
}

#[tokio::test]
async fn an_idempotency_key_replays_its_first_answer_and_refuses_other_parameters() {
    let key = format!("contract-{}", uuid::Uuid::new_v4());
    let (first_status, first, replayed) = post("/v1/customers", &[("email", "once@example.test")], Some(&key)).await;
    assert_eq!((first_status, replayed), (StatusCode::OK, false));
    let (_, again, replayed) = post("/v1/customers", &[("email", "once@example.test")], Some(&key)).await;
    assert!(replayed);
    assert_eq!(again["id"], first["id"], "one customer, however often the request is retried");
    let (status, refused, _) = post("/v1/customers", &[("email", "other@example.test")], Some(&key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["type"], "idempotency_error");
}

#[tokio::test]
async fn a_lookup_key_names_one_price_and_moves_only_when_asked() {
    let lookup = format!("contract_{}", uuid::Uuid::new_v4().simple());
    let (_, product, _) = post("/v1/products", &[("name", "Lookup")], None).await;
    let product = product["id"].as_str().unwrap();
    let price = |amount: &'static str, transfer: bool| {
        let lookup = lookup.clone();
        async move {
            let mut form = vec![("currency", "usd"), ("product", product), ("unit_amount", amount), ("lookup_key", lookup.as_str())];
            if transfer {
                form.push(("transfer_lookup_key", "true"));
            }
            post("/v1/prices", &form, None).await
        }
    };
    let (status, _, _) = price("100", false).await;
    assert_eq!(status, StatusCode::OK);
    let (status, taken, _) = price("200", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{taken}");
    assert_eq!(taken["error"]["param"], "lookup_key");
    let (status, moved, _) = price("200", true).await;
    assert_eq!(status, StatusCode::OK);
    let found = get(&format!("/v1/prices?lookup_keys[]={lookup}")).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], moved["id"]);

    // Without a test secret key, nothing.
    let response = reqwest::Client::new().get(format!("{}/v1/prices", base())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// `GET`/`POST` in an account of the test's own.
struct Account(String);

impl Account {
    fn new() -> Account {
        Account(format!("sk_test_contract_{}", uuid::Uuid::new_v4().simple()))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = reqwest::Client::new().post(format!("{}{path}", base())).bearer_auth(&self.0).form(form).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::Client::new().get(format!("{}{path}", base())).bearer_auth(&self.0).send().await.unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }
}

/// Parses `object` as async-stripe's type for it, as Tessera's client does.
fn parses_as<T: miniserde::Deserialize>(kind: &str, object: &Value) {
    if let Err(e) = miniserde::json::from_str::<T>(&object.to_string()) {
        panic!("{kind} doesn't parse as async-stripe's type ({e}): {object}");
    }
}

#[tokio::test]
async fn every_billing_object_has_stripes_fields_and_parses_as_async_stripes_type() {
    let fixtures = fixtures();
    let example = |kind: &str| fixtures["resources"][kind].clone();
    let stripe = Account::new();
    let meter = stripe
        .post(
            "/v1/billing/meters",
            &[
                ("display_name", "API calls"),
                ("event_name", "contract_calls"),
                ("default_aggregation[formula]", "sum"),
                ("customer_mapping[event_payload_key]", "stripe_customer_id"),
                ("customer_mapping[type]", "by_id"),
                ("value_settings[event_payload_key]", "value"),
            ],
        )
        .await;
    let product = stripe.post("/v1/products", &[("name", "Team")]).await;
    let product = product["id"].as_str().unwrap();
    let seat =
        stripe.post("/v1/prices", &[("currency", "usd"), ("product", product), ("unit_amount", "800"), ("recurring[interval]", "month")]).await;
    let calls = stripe
        .post(
            "/v1/prices",
            &[
                ("currency", "usd"),
                ("product", product),
                ("unit_amount_decimal", "0.05"),
                ("recurring[interval]", "month"),
                ("recurring[usage_type]", "metered"),
                ("recurring[meter]", meter["id"].as_str().unwrap()),
            ],
        )
        .await;
    let customer = stripe.post("/v1/customers", &[("email", "contract@example.test"), ("name", "Contract")]).await;
    let customer = customer["id"].as_str().unwrap();
    let card = stripe.post("/v1/payment_methods/pm_card_visa/attach", &[("customer", customer)]).await;
    let card = card["id"].as_str().unwrap();
    stripe.post(&format!("/v1/customers/{customer}"), &[("invoice_settings[default_payment_method]", card)]).await;
    let subscription = stripe
        .post(
            "/v1/subscriptions",
            &[
                ("customer", customer),
                ("items[0][price]", seat["id"].as_str().unwrap()),
                ("items[0][quantity]", "2"),
                ("items[1][price]", calls["id"].as_str().unwrap()),
            ],
        )
        .await;
    let subscription_id = subscription["id"].as_str().unwrap();
    let seat_item = subscription["items"]["data"].as_array().unwrap().iter().find(|i| i["price"]["id"] == seat["id"]).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A seat added: a pending proration (an invoice item).
    stripe.post(&format!("/v1/subscriptions/{subscription_id}"), &[("items[0][id]", &seat_item), ("items[0][quantity]", "3")]).await;
    let invoice = stripe.get(&format!("/v1/invoices/{}", subscription["latest_invoice"].as_str().unwrap())).await;
    let meter_event = stripe
        .post(
            "/v1/billing/meter_events",
            &[("event_name", "contract_calls"), ("payload[stripe_customer_id]", customer), ("payload[value]", "3"), ("identifier", "contract-1")],
        )
        .await;
    let session = stripe
        .post("/v1/checkout/sessions", &[("mode", "setup"), ("customer", customer), ("currency", "usd"), ("success_url", "http://127.0.0.1/done")])
        .await;
    let schedule = stripe.post("/v1/subscription_schedules", &[("from_subscription", subscription_id)]).await;
    let preview = stripe.post("/v1/invoices/create_preview", &[("customer", customer), ("subscription", subscription_id)]).await;
    let item = stripe.get(&format!("/v1/invoiceitems?customer={customer}")).await["data"][0].clone();
    let event = stripe.get("/v1/events?limit=1").await["data"][0].clone();

    let checks = [
        ("subscription", stripe.get(&format!("/v1/subscriptions/{subscription_id}")).await),
        ("subscription_item", subscription["items"]["data"][0].clone()),
        ("invoice", invoice.clone()),
        ("invoice", preview.clone()),
        ("line_item", invoice["lines"]["data"][0].clone()),
        ("invoiceitem", item.clone()),
        ("payment_method", stripe.get(&format!("/v1/payment_methods/{card}")).await),
        ("checkout.session", session.clone()),
        ("subscription_schedule", schedule.clone()),
        ("billing.meter", meter.clone()),
        ("billing.meter_event", meter_event.clone()),
        ("plan", subscription["items"]["data"][0]["plan"].clone()),
        ("event", event.clone()),
    ];
    for (kind, object) in &checks {
        assert_eq!(keys(object), keys(&example(kind)), "{kind}: the stand-in's fields differ from Stripe's example");
    }
    parses_as::<stripe_shared::Subscription>("subscription", &checks[0].1);
    parses_as::<stripe_shared::SubscriptionItem>("subscription_item", &checks[1].1);
    parses_as::<stripe_shared::Invoice>("invoice", &invoice);
    parses_as::<stripe_shared::Invoice>("a preview invoice", &preview);
    parses_as::<stripe_shared::InvoiceLineItem>("line_item", &checks[4].1);
    parses_as::<stripe_billing::InvoiceItem>("invoiceitem", &item);
    parses_as::<stripe_shared::PaymentMethod>("payment_method", &checks[6].1);
    parses_as::<stripe_shared::CheckoutSession>("checkout.session", &session);
    parses_as::<stripe_shared::SubscriptionSchedule>("subscription_schedule", &schedule);
    parses_as::<stripe_billing::BillingMeter>("billing.meter", &meter);
    parses_as::<stripe_billing::BillingMeterEvent>("billing.meter_event", &meter_event);
    parses_as::<stripe_shared::Event>("event", &event);
    assert!(preview["id"].as_str().unwrap().starts_with("upcoming_in_"), "a preview is not an invoice of its own");
}
