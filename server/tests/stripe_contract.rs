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
