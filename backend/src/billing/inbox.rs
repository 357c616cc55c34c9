//! Stripe's events in: checked, stored once, processed by a job.
//!
//! [`receive`] answers Stripe at once: a bad or stale signature is refused (400) and stores
//! nothing; a good one is stored by event id (a repeat is a no-op) with a job to process it.
//! [`ProcessEvent`] finds the organization the event is about and fetches its state from Stripe
//! again ([`super::account::refresh`]): whatever order events arrive in, and however often, the
//! organization ends in Stripe's newest state.

use super::signature;
use crate::error::{Error, Result};
use crate::jobs::{self, Job, Lane, RunningJob};
use crate::Backend;
use serde::{Deserialize, Serialize};
use tessera_domain::AppError;
use uuid::Uuid;

/// The event types Tessera acts on; others are stored and ignored.
pub const HANDLED: &[&str] = &[
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.upcoming",
    "invoice.voided",
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "setup_intent.succeeded",
    "test_helpers.test_clock.ready",
];

/// What an event must have for Tessera to keep it.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Takes an event Stripe posted: `body` exactly as received, `signature` the `Stripe-Signature`
/// header. Returns whether it was new.
pub async fn receive(backend: &Backend, body: &[u8], signature: Option<&str>) -> Result<bool> {
    let billing = backend.tenancy.billing();
    if !billing.enabled() {
        return Err(AppError::NotFound("Billing is off in this deployment.".into()).into());
    }
    let header = signature.ok_or_else(|| refused(signature::Refused::Malformed))?;
    let now = super::now();
    // Any of the configured secrets (two while the endpoint's secret is being rolled).
    let mut outcome = Err(signature::Refused::Mismatch);
    for secret in billing.webhook_secrets() {
        outcome = signature::verify(header, body, secret, now);
        if !matches!(outcome, Err(signature::Refused::Mismatch)) {
            break;
        }
    }
    outcome.map_err(refused)?;
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("The event isn't a Stripe event object ({e}); nothing was stored.")))?;
    let payload: serde_json::Value = serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("The event isn't JSON: {e}")))?;
    let valid_id = envelope.id.len() > 4
        && envelope.id.len() <= 254
        && envelope.id.starts_with("evt_")
        && envelope.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_id || envelope.kind.is_empty() || envelope.kind.len() > 100 {
        return Err(AppError::BadRequest("The event's id or type isn't one Stripe would send; nothing was stored.".into()).into());
    }
    let mut tx = backend.tenancy.maintenance("billing").await?;
    let inserted = sqlx::query("INSERT INTO stripe_events (id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(&envelope.id)
        .bind(&envelope.kind)
        .bind(&payload)
        .execute(tx.conn())
        .await?
        .rows_affected()
        == 1;
    if inserted {
        jobs::enqueue(tx.conn(), Lane::Deployment, &ProcessEvent { event_id: envelope.id }).await?;
    }
    tx.commit(u64::from(inserted)).await?;
    if inserted {
        jobs::wake();
    }
    Ok(inserted)
}

fn refused(why: signature::Refused) -> Error {
    AppError::BadRequest(format!("Refused: {why}. Nothing was stored.")).into()
}

/// Processes one stored event.
#[derive(Serialize, Deserialize)]
pub struct ProcessEvent {
    pub event_id: String,
}

impl Job for ProcessEvent {
    const KIND: &'static str = "billing.process_event";
    const MAX_ATTEMPTS: i32 = super::account::BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        process(&job.backend, &self.event_id).await
    }
}
crate::register_job!(ProcessEvent);

async fn process(backend: &Backend, event_id: &str) -> Result<()> {
    let mut tx = backend.tenancy.maintenance("billing").await?;
    let event: Option<(String, serde_json::Value)> =
        sqlx::query_as("SELECT type, payload FROM stripe_events WHERE id = $1").bind(event_id).fetch_optional(tx.conn()).await?;
    let Some((kind, payload)) = event else { return Err(Error::Internal(format!("event {event_id} is not in the inbox"))) };
    let object = &payload["data"]["object"];
    let outcome = if !HANDLED.contains(&kind.as_str()) {
        Ok("ignored: a type Tessera doesn't act on".to_string())
    } else {
        let tenants: Vec<Uuid> = match about(&kind, object) {
            About::Customer(customer) => {
                sqlx::query_scalar("SELECT tenant_id FROM billing_accounts WHERE customer_id = $1").bind(customer).fetch_all(tx.conn()).await?
            }
            About::Clock(clock) => {
                sqlx::query_scalar("SELECT tenant_id FROM billing_accounts WHERE test_clock = $1").bind(clock).fetch_all(tx.conn()).await?
            }
            About::Nothing => Vec::new(),
        };
        if tenants.is_empty() {
            Ok("ignored: not about one of this deployment's customers".to_string())
        } else {
            Err(tenants)
        }
    };
    tx.commit(0).await?;
    let outcome = match outcome {
        Ok(ignored) => ignored,
        Err(tenants) => {
            for tenant_id in &tenants {
                if kind == "checkout.session.completed" {
                    super::account::checkout_completed(backend, *tenant_id, object).await?;
                }
                super::account::refresh(backend, *tenant_id).await?;
                tell(backend, *tenant_id, &kind, object).await?;
            }
            format!("applied to {} organization(s)", tenants.len())
        }
    };
    let mut tx = backend.tenancy.maintenance("billing").await?;
    sqlx::query("UPDATE stripe_events SET processed_at = now(), outcome = $2 WHERE id = $1").bind(event_id).bind(&outcome).execute(tx.conn()).await?;
    tx.commit(1).await
}

/// The notice an event warrants (a failed payment, the trial ending, a receipt), once.
async fn tell(backend: &Backend, tenant_id: Uuid, kind: &str, object: &serde_json::Value) -> Result<()> {
    let billing = backend.tenancy.billing();
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let (organization, record): (String, Option<sqlx::types::Json<super::Record>>) =
        sqlx::query_as("SELECT name, billing FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(tx.conn()).await?;
    let state = billing.view(record.as_ref().map(|r| &r.0)).state;
    // Events come out of order: a failure heard after the invoice was paid is news to nobody.
    if kind == "invoice.payment_failed" {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM billing_invoices WHERE id = $1")
            .bind(object["id"].as_str().unwrap_or_default())
            .fetch_optional(tx.conn())
            .await?;
        if status.as_deref() == Some("paid") {
            tx.commit(0).await?;
            return Ok(());
        }
    }
    if let Some((key, title, body)) = super::notices::for_event(billing, &organization, kind, object, &state) {
        // A receipt carries the invoice's PDF.
        let invoice = (kind == "invoice.paid").then(|| object["id"].as_str().map(String::from)).flatten();
        super::notices::once(tx.conn(), tenant_id, &key, title, body, invoice).await?;
    }
    tx.commit(0).await?;
    jobs::wake();
    Ok(())
}

enum About<'a> {
    Customer(&'a str),
    Clock(&'a str),
    Nothing,
}

/// Whose event it is: the customer its object belongs to (or is), or a test clock's customers.
fn about<'a>(kind: &str, object: &'a serde_json::Value) -> About<'a> {
    if kind.starts_with("test_helpers.test_clock.") {
        return object["id"].as_str().map_or(About::Nothing, About::Clock);
    }
    if kind.starts_with("customer.") && !kind.starts_with("customer.subscription.") {
        return object["id"].as_str().map_or(About::Nothing, About::Customer);
    }
    // `customer` is an id, or an object when expanded.
    let customer = object["customer"].as_str().or_else(|| object["customer"]["id"].as_str());
    customer.map_or(About::Nothing, About::Customer)
}
