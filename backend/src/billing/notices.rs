//! What an organization's Owners and Admins are told about billing (a notification and a mail
//! each): the trial ending, each failed payment (the dunning sequence follows Stripe's retry
//! schedule: one notice per failed attempt, saying when the next is and when the organization
//! becomes read-only), a payment needing confirmation, a receipt, and each change of state
//! (restricted, restored, ended). Each is sent once, whatever happens to the event or job that
//! causes it: its key is claimed in `billing_notices` in the same transaction that queues it.

use super::Billing;
use crate::error::Result;
use crate::notifications::{self, Event};
use sqlx::PgConnection;
use tessera_domain::billing::{date, money, BillingState};
use uuid::Uuid;

/// Queues `title`/`body` to the organization's administrators once per `key`.
/// `invoice`: one whose PDF goes with the mail.
pub(crate) async fn once(conn: &mut PgConnection, tenant_id: Uuid, key: &str, title: String, body: String, invoice: Option<String>) -> Result<bool> {
    let claimed = sqlx::query("INSERT INTO billing_notices (tenant_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(tenant_id)
        .bind(key)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1;
    if claimed {
        notifications::notify(conn, Event::Billing { tenant_id, title, body, invoice }).await?;
    }
    Ok(claimed)
}

/// The notice for an event Stripe sent about the organization, if it warrants one.
pub(crate) fn for_event(
    billing: &Billing,
    organization: &str,
    kind: &str,
    object: &serde_json::Value,
    state: &BillingState,
) -> Option<(String, String, String)> {
    let id = object["id"].as_str().unwrap_or_default();
    let currency = object["currency"].as_str().unwrap_or(&billing.catalogue().currency).to_string();
    let amount = |field: &str| money(object[field].as_i64().unwrap_or_default(), &currency);
    let number = object["number"].as_str().map(|n| format!(" {n}")).unwrap_or_default();
    match kind {
        "customer.subscription.trial_will_end" => {
            let ends = object["trial_end"].as_i64()?;
            let plan = state_plan(billing, state);
            Some((
                format!("trial_will_end:{id}:{ends}"),
                format!("The {organization} trial ends on {}", date(ends)),
                format!(
                    "To keep {plan}'s features after {}, add a card on the billing page; it is charged then. Without one, {organization} moves to the Free plan, and what it has beyond the Free plan's limits becomes read-only.",
                    date(ends)
                ),
            ))
        }
        "invoice.payment_failed" => {
            let attempt = object["attempt_count"].as_u64().unwrap_or(1);
            let next = match object["next_payment_attempt"].as_i64() {
                Some(at) => format!(" We'll try again on {}.", date(at)),
                None => " That was the last automatic attempt.".into(),
            };
            let restricts = match state {
                BillingState::PastDue { restricts_at, .. } => {
                    format!(" Unless it is paid, {organization} becomes read-only on {}.", date(*restricts_at))
                }
                BillingState::Restricted { .. } => format!(" {organization} is read-only until it is paid."),
                _ => String::new(),
            };
            Some((
                format!("payment_failed:{id}:{attempt}"),
                format!("Payment of {} for {organization} failed", amount("amount_due")),
                format!("We couldn't charge the card on file for invoice{number} ({} due).{next}{restricts} Fix it by updating the payment method on the billing page.", amount("amount_due")),
            ))
        }
        "invoice.payment_action_required" => Some((
            format!("action_required:{id}"),
            format!("Confirm the payment of {} for {organization}", amount("amount_due")),
            match object["hosted_invoice_url"].as_str() {
                Some(url) => format!("Your bank asks you to confirm this payment. Confirm it here: {url}"),
                None => "Your bank asks you to confirm this payment. Open the billing page to pay the invoice.".into(),
            },
        )),
        "invoice.paid" if object["amount_paid"].as_i64().unwrap_or_default() > 0 => Some((
            format!("paid:{id}"),
            format!("Receipt: {} paid for {organization}", amount("amount_paid")),
            format!("Thank you. Invoice{number} is paid. The invoice and its PDF are on the billing page."),
        )),
        _ => None,
    }
}

fn state_plan(billing: &Billing, state: &BillingState) -> String {
    let catalogue = billing.catalogue();
    let key = state.plan_key(&catalogue.free_plan().key);
    catalogue.plan(key).map_or_else(|| key.to_string(), |p| p.name.clone())
}

/// The notice for a change of state, if people should hear of it.
pub(crate) fn for_change(billing: &Billing, organization: &str, from: &str, to: &BillingState) -> Option<(String, String, String)> {
    let plan = state_plan(billing, to);
    // The moment it happened is in the key: a second restriction (another unpaid invoice) or
    // ending is told again, a repeat of the same one isn't.
    let moment = match to {
        BillingState::PastDue { unpaid_since, .. } | BillingState::Restricted { unpaid_since, .. } => *unpaid_since,
        BillingState::Ended { ended_at, .. } => *ended_at,
        BillingState::Active { renews_at, cancels_at, .. } => renews_at.or(*cancels_at).unwrap_or_default(),
        BillingState::Trialing { ends_at, .. } => ends_at.unwrap_or_default(),
        BillingState::Free => 0,
    };
    let key = format!("state:{from}->{}:{moment}", to.label());
    match to {
        BillingState::Restricted { .. } => Some((
            key,
            format!("{organization} is read-only until its payment goes through"),
            "Everyone can still read everything, but nothing can be changed. Update the payment method on the billing page; full access comes back as soon as the payment succeeds.".into(),
        )),
        BillingState::Active { .. } if from.starts_with("past_due") || from.starts_with("restricted") => Some((
            key,
            format!("Payment received: {organization} has full access again"),
            format!("Thank you. {organization} is on {plan} and fully writable again."),
        )),
        BillingState::Active { .. } if from.starts_with("trialing") || from == "free" || from.starts_with("ended") => Some((
            key,
            format!("{organization} is now on {plan}"),
            format!("The subscription to {plan} is active. Invoices and the payment method are on the billing page."),
        )),
        BillingState::Ended { retained_until, .. } => Some((
            key,
            format!("{organization}'s subscription has ended"),
            format!(
                "{organization} is on the Free plan now, and nothing was deleted. While it has more members or projects than the Free plan includes, everything can be read but nothing changed: subscribe again on the billing page, or remove members or projects down to the Free plan's limits. We keep everything at least until {}.",
                date(*retained_until)
            ),
        )),
        _ => None,
    }
}
