//! `tessera-server billing sync`: makes Stripe's products, prices and API-call meter match the
//! catalogue. Idempotent: run it after every change to `billing/plans.toml`.
//!
//! Products have fixed ids (`tessera_team`); prices are found by lookup key (`team_month_seat`).
//! A Stripe price can't change its amount, so a changed price is a new one that takes the lookup
//! key over (`transfer_lookup_key`); subscriptions on the old one keep it until they change plan.

use super::stripe::{is_missing, StripeApi};
use crate::error::Result;
use std::collections::HashMap;
use stripe_billing::billing_meter::{
    CreateBillingMeter, CreateBillingMeterCustomerMapping, CreateBillingMeterCustomerMappingType, CreateBillingMeterDefaultAggregation,
    CreateBillingMeterDefaultAggregationFormula, CreateBillingMeterValueSettings, ListBillingMeter,
};
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, CreatePriceRecurringUsageType, ListPrice};
use stripe_product::product::{CreateProduct, RetrieveProduct, UpdateProduct};
use tessera_domain::billing::{Catalogue, Component, Interval, PriceSpec};

/// The meter API calls are reported to (`billing.meter_event`s with this name).
pub const API_CALLS_EVENT: &str = "tessera_api_calls";
/// The keys of a meter event's payload.
pub const CUSTOMER_KEY: &str = "stripe_customer_id";
pub const VALUE_KEY: &str = "value";

/// One line of the report: what was looked at and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub what: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Created,
    Updated(String),
    /// A new price took the lookup key from the old one (which stays for its subscriptions).
    Replaced {
        old: String,
        new: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Unchanged => write!(f, "{}: unchanged", self.what),
            Outcome::Created => write!(f, "{}: created", self.what),
            Outcome::Updated(how) => write!(f, "{}: updated ({how})", self.what),
            Outcome::Replaced { old, new } => write!(f, "{}: replaced {old} with {new}", self.what),
        }
    }
}

pub fn product_id(plan: &str) -> String {
    format!("tessera_{plan}")
}

/// Brings Stripe in line with `catalogue`, returning what it looked at and did.
pub async fn sync(stripe: &StripeApi, catalogue: &Catalogue) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let meter = ensure_meter(stripe, &mut changes).await?;
    for plan in catalogue.plans.iter().filter(|p| !p.free) {
        let id = product_id(&plan.key);
        let what = format!("product {id}");
        match stripe.send(RetrieveProduct::new(id.as_str())).await {
            Ok(product) if product.name == plan.name && product.active => changes.push(Change { what, outcome: Outcome::Unchanged }),
            Ok(product) => {
                stripe.send(UpdateProduct::new(id.as_str()).name(plan.name.as_str()).active(true)).await?;
                let how = if product.name != plan.name { format!("name {:?} → {:?}", product.name, plan.name) } else { "active again".into() };
                changes.push(Change { what, outcome: Outcome::Updated(how) });
            }
            Err(e) if is_missing(&e) => {
                let metadata = HashMap::from([("tessera_plan".to_string(), plan.key.clone())]);
                stripe.send_once(&format!("tessera-product-{id}"), CreateProduct::new(plan.name.as_str()).id(id.as_str()).metadata(metadata)).await?;
                changes.push(Change { what, outcome: Outcome::Created });
            }
            Err(e) => return Err(e),
        }
        let specs: Vec<PriceSpec> = [Interval::Month, Interval::Year].into_iter().flat_map(|i| plan.prices(i)).collect();
        // Stripe answers at most ten lookup keys per request.
        for chunk in specs.chunks(10) {
            let keys: Vec<String> = chunk.iter().map(|s| s.lookup_key.clone()).collect();
            let found = stripe.send(ListPrice::new().lookup_keys(keys).limit(10)).await?.data;
            for spec in chunk {
                let current = found.iter().find(|p| p.lookup_key.as_deref() == Some(spec.lookup_key.as_str()));
                let what = format!("price {}", spec.lookup_key);
                if current.is_some_and(|p| matches(p, spec, &catalogue.currency, &id, &meter)) {
                    changes.push(Change { what, outcome: Outcome::Unchanged });
                    continue;
                }
                let created = create_price(stripe, spec, &catalogue.currency, &id, &meter, current.map(|p| p.id.as_str())).await?;
                let outcome = match current {
                    Some(old) => Outcome::Replaced { old: describe(old), new: describe(&created) },
                    None => Outcome::Created,
                };
                changes.push(Change { what, outcome });
            }
        }
    }
    Ok(changes)
}

async fn ensure_meter(stripe: &StripeApi, changes: &mut Vec<Change>) -> Result<String> {
    let what = format!("meter {API_CALLS_EVENT}");
    let meters = stripe.send(ListBillingMeter::new().limit(100)).await?.data;
    if let Some(meter) = meters.iter().find(|m| m.event_name == API_CALLS_EVENT) {
        changes.push(Change { what, outcome: Outcome::Unchanged });
        return Ok(meter.id.to_string());
    }
    let request = CreateBillingMeter::new(
        CreateBillingMeterDefaultAggregation::new(CreateBillingMeterDefaultAggregationFormula::Sum),
        "API calls",
        API_CALLS_EVENT,
    )
    .customer_mapping(CreateBillingMeterCustomerMapping::new(CUSTOMER_KEY, CreateBillingMeterCustomerMappingType::ById))
    .value_settings(CreateBillingMeterValueSettings::new(VALUE_KEY));
    let meter = stripe.send_once(&format!("tessera-meter-{API_CALLS_EVENT}"), request).await?;
    changes.push(Change { what, outcome: Outcome::Created });
    Ok(meter.id.to_string())
}

/// Whether Stripe's `price` is what `spec` asks for.
fn matches(price: &stripe_shared::Price, spec: &PriceSpec, currency: &str, product: &str, meter: &str) -> bool {
    let Some(recurring) = &price.recurring else { return false };
    let metered = spec.component == Component::ApiCalls;
    price.active
        && price.currency.to_string() == currency
        && price.product.id().as_str() == product
        && recurring.interval.as_str() == spec.interval.as_str()
        && recurring.interval_count == 1
        && (recurring.usage_type.as_str() == "metered") == metered
        && (!metered || recurring.meter.as_deref() == Some(meter))
        && price.unit_amount_decimal.as_deref().map(normalize) == Some(normalize(&spec.unit_amount_decimal))
}

/// "800.000" and "800" are the same amount.
fn normalize(decimal: &str) -> String {
    match decimal.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => decimal.to_string(),
    }
}

fn describe(price: &stripe_shared::Price) -> String {
    format!("{} ({} {})", price.id, price.unit_amount_decimal.as_deref().unwrap_or("?"), price.currency)
}

async fn create_price(
    stripe: &StripeApi,
    spec: &PriceSpec,
    currency: &str,
    product: &str,
    meter: &str,
    replacing: Option<&str>,
) -> Result<stripe_shared::Price> {
    let interval = match spec.interval {
        Interval::Month => CreatePriceRecurringInterval::Month,
        Interval::Year => CreatePriceRecurringInterval::Year,
    };
    let mut recurring = CreatePriceRecurring::new(interval);
    if spec.component == Component::ApiCalls {
        recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
        recurring.meter = Some(meter.to_string());
    }
    let metadata = HashMap::from([
        ("tessera_plan".to_string(), spec.plan.clone()),
        ("tessera_interval".to_string(), spec.interval.as_str().to_string()),
        ("tessera_component".to_string(), spec.component.as_str().to_string()),
    ]);
    let currency_code: stripe_types::Currency =
        currency.parse().map_err(|_| crate::Error::Internal(format!("Stripe doesn't know the currency {currency:?}")))?;
    let request = CreatePrice::new(currency_code)
        .product(product)
        .recurring(recurring)
        .unit_amount_decimal(spec.unit_amount_decimal.as_str())
        .lookup_key(spec.lookup_key.as_str())
        .transfer_lookup_key(true)
        .nickname(format!("{} {} {}", spec.plan, spec.interval.as_str(), spec.component.as_str()))
        .metadata(metadata);
    // The key names the price's content and the price it replaces: a rerun after a lost answer
    // doesn't make a second one, and changing back to an earlier amount makes a new one.
    let key = format!("tessera-price-{}-{}-{currency}-{meter}-{}", spec.lookup_key, spec.unit_amount_decimal, replacing.unwrap_or("none"));
    stripe.send_once(&key, request).await
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn amounts_compare_as_numbers() {
        assert_eq!(normalize("800.000"), "800");
        assert_eq!(normalize("0.050"), "0.05");
        assert_eq!(normalize("2900"), "2900");
    }
}
