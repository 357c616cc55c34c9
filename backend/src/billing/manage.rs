//! What an organization's Owners and Admins do on the billing page: see the plan, usage and
//! invoices; subscribe (Stripe Checkout); change plan, with the proration shown first; switch
//! between monthly and annual; replace the card; cancel and resume.
//!
//! Each change is checked against the state machine (`tessera_domain::billing::check`), made
//! in Stripe, recorded in the audit log, and the organization's record fetched again at once,
//! so the page shows the result without waiting for Stripe's webhook.

use super::account::{self, prices, ORGANIZATION_KEY};
use super::stripe::StripeApi;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::tenancy::Org;
use crate::Backend;
use std::collections::HashMap;
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails, CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior,
};
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::subscription_schedule::{
    CreateSubscriptionSchedule, ReleaseSubscriptionSchedule, UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
    UpdateSubscriptionSchedulePhasesEndDate, UpdateSubscriptionSchedulePhasesItems, UpdateSubscriptionSchedulePhasesProrationBehavior,
    UpdateSubscriptionSchedulePhasesStartDate,
};
use stripe_billing::test_helpers_test_clock::RetrieveTestHelpersTestClock;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData, ExpireCheckoutSession, ListCheckoutSession,
};
use stripe_shared::{CheckoutSessionMode, CheckoutSessionStatus, Subscription, SubscriptionStatus};
use tessera_domain::billing::{check, BillingState, ChangePreview, ChangeTiming, Command, Component, Interval, InvoiceSummary, Overview};
use tessera_domain::{AppError, Permission};

/// What a checkout is for, in its metadata (the completed session's event says).
pub const PURPOSE_KEY: &str = "tessera_purpose";
const PLAN_KEY: &str = "tessera_plan";
const INTERVAL_KEY: &str = "tessera_interval";

pub async fn overview(org: &Org) -> Result<Overview> {
    let view = org.billing();
    let catalogue = org.tenancy().billing().catalogue();
    let mut tx = org.control_read(Permission::ManageBilling).await?;
    let seats_used = account::seats_used(tx.conn(), org.tenant.id).await?;
    let invoices: Vec<InvoiceRow> = sqlx::query_as(
        "SELECT id, number, status, currency, created, period_start, period_end, total, amount_due
           FROM billing_invoices WHERE tenant_id = $1 ORDER BY created DESC, id LIMIT 24",
    )
    .bind(org.tenant.id)
    .fetch_all(tx.conn())
    .await?;
    let api_calls: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(calls), 0)::bigint FROM api_usage WHERE tenant_id = $1 AND minute >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    )
    .bind(org.tenant.id)
    .fetch_one(tx.conn())
    .await?;
    drop(tx);
    // Restricted projects count against the plan too, seen or not.
    let projects_used = u32::try_from(org.tenancy().project_count(&org.tenant).await?).unwrap_or(u32::MAX);
    let record = org.tenant.billing.clone().unwrap_or_default();
    Ok(Overview {
        enabled: view.enabled,
        plan: catalogue.plan(view.state.plan_key(&catalogue.free_plan().key)).unwrap_or(catalogue.free_plan()).clone(),
        state: view.state,
        seats_used,
        projects_used,
        api_calls_this_month: u64::try_from(api_calls).unwrap_or_default(),
        payment_method: record.payment_method,
        currency: catalogue.currency.clone(),
        plans: catalogue.plans.clone(),
        invoices: invoices.into_iter().map(InvoiceRow::summary).collect(),
        now: super::now() + record.clock_skew,
    })
}

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    id: String,
    number: Option<String>,
    status: String,
    currency: String,
    created: time::OffsetDateTime,
    period_start: Option<time::OffsetDateTime>,
    period_end: Option<time::OffsetDateTime>,
    total: i64,
    amount_due: i64,
}

impl InvoiceRow {
    fn summary(self) -> InvoiceSummary {
        InvoiceSummary {
            id: self.id,
            number: self.number,
            status: self.status,
            currency: self.currency,
            created: self.created.unix_timestamp(),
            period_start: self.period_start.map_or(0, |t| t.unix_timestamp()),
            period_end: self.period_end.map_or(0, |t| t.unix_timestamp()),
            total: self.total,
            amount_due: self.amount_due,
        }
    }
}

/// One of the organization's invoices, whole (for its PDF).
pub async fn invoice(org: &Org, id: &str) -> Result<tessera_domain::billing::Invoice> {
    let mut tx = org.control_read(Permission::ManageBilling).await?;
    let found: Option<sqlx::types::Json<tessera_domain::billing::Invoice>> =
        sqlx::query_scalar("SELECT object FROM billing_invoices WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(org.tenant.id)
            .fetch_optional(tx.conn())
            .await?;
    found.map(|json| json.0).ok_or_else(|| AppError::NotFound("There is no such invoice in this organization.".into()).into())
}

/// Now in the customer's time: its test clock's (which tests move, and the stored skew may not
/// have caught up with yet), else ours. Prorations are computed for this moment.
async fn customer_now(stripe: &StripeApi, org: &Org) -> Result<tessera_domain::billing::Timestamp> {
    let mut tx = org.control_read(Permission::ManageBilling).await?;
    let clock: Option<String> = sqlx::query_scalar("SELECT test_clock FROM billing_accounts WHERE tenant_id = $1")
        .bind(org.tenant.id)
        .fetch_optional(tx.conn())
        .await?
        .flatten();
    drop(tx);
    match clock {
        Some(clock) => Ok(stripe.send(RetrieveTestHelpersTestClock::new(clock.as_str())).await?.frozen_time),
        None => Ok(super::now()),
    }
}

/// The organization's Stripe customer; a person is told to wait if it isn't made yet.
async fn customer(org: &Org) -> Result<String> {
    let mut tx = org.control_read(Permission::ManageBilling).await?;
    let id: Option<String> = sqlx::query_scalar("SELECT customer_id FROM billing_accounts WHERE tenant_id = $1")
        .bind(org.tenant.id)
        .fetch_optional(tx.conn())
        .await?
        .flatten();
    id.ok_or_else(|| {
        AppError::Unavailable("Billing for this organization is still being set up with our payment provider. Please try again in a minute.".into())
            .into()
    })
}

fn stripe(org: &Org) -> Result<StripeApi> {
    Ok(org.tenancy().billing().stripe()?.clone())
}

fn refuse(refusal: tessera_domain::billing::Refusal) -> Error {
    AppError::Conflict(tessera_domain::input::FieldError::new("plan", refusal.0)).into()
}

/// Fetches the organization's state from Stripe again so the page shows the change at once.
/// Best effort: the change is made (and recorded); Stripe's webhook brings it if this fails.
async fn refresh_now(backend: &Backend, org: &Org) {
    if let Err(e) = account::refresh(backend, org.tenant.id).await {
        tracing::warn!(error = %e, tenant = %org.tenant.id, "refreshing billing after a change failed; the webhook will bring it");
    }
}

/// The plan named, refused (422) when the catalogue has no such paid plan.
fn known_plan<'a>(org: &'a Org, plan: &str) -> Result<&'a tessera_domain::billing::Plan> {
    match org.tenancy().billing().catalogue().plan(plan) {
        Some(found) if !found.free => Ok(found),
        _ => Err(AppError::Invalid(tessera_domain::input::FieldError::new("plan", "There is no such plan. Choose one of the plans shown.")).into()),
    }
}

fn billing_page(backend: &Backend, org: &Org) -> String {
    format!("{}/t/{}/settings/billing", backend.identity.public_url(), org.tenant.slug)
}

/// Starts a Stripe Checkout: subscribing from the free plan (a subscription), or choosing a
/// plan during the trial and adding the card for it, or replacing the card (both a card saved
/// for later: setup mode). Returns the URL to send the person to.
pub async fn checkout(backend: &Backend, org: &Org, command: Command) -> Result<String> {
    org.require(Permission::ManageBilling)?;
    let view = org.billing();
    let (plan, interval) = match &command {
        Command::Subscribe { plan, interval } => (Some(known_plan(org, plan)?.key.clone()), Some(*interval)),
        Command::UpdatePaymentMethod => (None, None),
        _ => return Err(Error::Internal("checkout is for subscribing and cards".into())),
    };
    check(&view.state, &command, &org.tenancy().billing().catalogue().plans).map_err(refuse)?;
    let stripe = stripe(org)?;
    let customer = customer(org).await?;
    let page = billing_page(backend, org);
    let mut metadata = HashMap::from([(ORGANIZATION_KEY.to_string(), org.tenant.id.to_string())]);
    let subscription_mode = matches!(view.state, BillingState::Free | BillingState::Ended { .. }) && plan.is_some();
    let mut request = CreateCheckoutSession::new()
        .customer(customer.as_str())
        .success_url(format!("{page}?checkout={{CHECKOUT_SESSION_ID}}"))
        .cancel_url(page.clone())
        .client_reference_id(org.tenant.id.to_string());
    let purpose = if subscription_mode {
        let (plan, interval) = (plan.clone().unwrap_or_default(), interval.unwrap_or(Interval::Month));
        let seats = {
            let mut tx = org.control_read(Permission::ManageBilling).await?;
            account::seats_used(tx.conn(), org.tenant.id).await?
        };
        let items = prices(&stripe, &plan, interval, org.tenancy().billing())
            .await?
            .into_iter()
            .map(|(component, price)| CreateCheckoutSessionLineItems {
                price: Some(price),
                quantity: component.quantity(seats),
                ..CreateCheckoutSessionLineItems::new()
            })
            .collect::<Vec<_>>();
        let subscription_data =
            CreateCheckoutSessionSubscriptionData { metadata: Some(metadata.clone()), ..CreateCheckoutSessionSubscriptionData::new() };
        request = request.mode(CheckoutSessionMode::Subscription).line_items(items).subscription_data(subscription_data);
        "subscribe"
    } else {
        let currency: stripe_types::Currency = org
            .tenancy()
            .billing()
            .catalogue()
            .currency
            .parse()
            .map_err(|_| Error::Internal("the catalogue's currency is unknown to Stripe".into()))?;
        request = request.mode(CheckoutSessionMode::Setup).currency(currency);
        if plan.is_some() {
            "choose_plan"
        } else {
            "payment_method"
        }
    };
    metadata.insert(PURPOSE_KEY.to_string(), purpose.to_string());
    if let (Some(plan), Some(interval)) = (&plan, interval) {
        metadata.insert(PLAN_KEY.to_string(), plan.clone());
        metadata.insert(INTERVAL_KEY.to_string(), interval.as_str().to_string());
    }
    // Opened first: the permission and the organization's state are checked before Stripe is.
    let mut tx = org.billing_write(Permission::ManageBilling).await?;
    // One checkout at a time: one still open (another tab, another admin) is expired first, so
    // two can't both be paid into two subscriptions. The lock makes two starting at once take
    // turns.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('billing.checkout:' || $1::text, 0))").bind(org.tenant.id).execute(tx.conn()).await?;
    if subscription_mode {
        // Stripe may already have one that this organization's state doesn't show yet (a
        // checkout paid in another tab whose event hasn't been processed).
        let going = stripe.send(ListSubscription::new().customer(customer.as_str()).status(ListSubscriptionStatus::All).limit(20)).await?.data;
        if going.iter().any(|s| !matches!(s.status, SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired)) {
            drop(tx);
            refresh_now(backend, org).await;
            return Err(AppError::Conflict(tessera_domain::input::FieldError::new(
                "plan",
                "This organization already has a subscription (it may have just started). Reload the page to see it.",
            ))
            .into());
        }
    }
    let open = stripe.send(ListCheckoutSession::new().customer(customer.as_str()).status(CheckoutSessionStatus::Open).limit(20)).await?.data;
    for earlier in open {
        match stripe.send(ExpireCheckoutSession::new(earlier.id.clone())).await {
            // Completed or expired meanwhile: nothing left to close.
            Ok(_) | Err(Error::Stripe { status: 400, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let session = stripe.send(request.metadata(metadata)).await?;
    let url = session.url.ok_or_else(|| Error::Internal("Stripe returned a checkout session without a URL".into()))?;
    let changes =
        serde_json::json!({ "purpose": { "new": purpose }, "plan": { "new": plan }, "interval": { "new": interval.map(Interval::as_str) } });
    tx.commit(AuditEntry::new("billing.checkout_started", "tenant", org.tenant.id, changes)).await?;
    Ok(url)
}

/// The subscription's items by component, as Stripe has them now.
async fn current(stripe: &StripeApi, org: &Org) -> Result<Subscription> {
    let id =
        org.tenant.billing.as_ref().and_then(|r| r.snapshot.as_ref()).map(|s| s.subscription_id.clone()).filter(|id| !id.is_empty()).ok_or_else(
            || AppError::Conflict(tessera_domain::input::FieldError::new("plan", "There is no subscription to change. Subscribe to a plan.")),
        )?;
    stripe.send(RetrieveSubscription::new(id.as_str())).await
}

fn item_of(subscription: &Subscription, component: Component) -> Option<String> {
    subscription
        .items
        .data
        .iter()
        .find(|i| i.price.metadata.get("tessera_component").map(String::as_str) == Some(component.as_str()))
        .map(|i| i.id.to_string())
}

/// The changes of items moving `subscription` to `plan` in `interval`: each component's item
/// gets the new price (added if the new plan has a component the old one lacked, deleted if
/// it doesn't); seats keep their count.
async fn new_items(
    stripe: &StripeApi,
    org: &Org,
    subscription: &Subscription,
    plan: &str,
    interval: Interval,
    seats: u32,
) -> Result<Vec<(Component, Option<String>, Option<String>, Option<u64>)>> {
    let wanted = prices(stripe, plan, interval, org.tenancy().billing()).await?;
    let mut changes = Vec::new();
    for component in Component::ALL {
        let existing = item_of(subscription, component);
        let price = wanted.iter().find(|(c, _)| *c == component).map(|(_, p)| p.clone());
        let quantity = component.quantity(seats);
        if existing.is_some() || price.is_some() {
            changes.push((component, existing, price, quantity));
        }
    }
    Ok(changes)
}

/// What changing to `plan`/`interval` would do: when, what is charged now, each period after.
pub async fn preview(org: &Org, plan: &str, interval: Interval) -> Result<ChangePreview> {
    org.require(Permission::ManageBilling)?;
    known_plan(org, plan)?;
    let view = org.billing();
    let catalogue = org.tenancy().billing().catalogue();
    let command = Command::ChangePlan { plan: plan.to_string(), interval };
    let timing = check(&view.state, &command, &catalogue.plans).map_err(refuse)?.unwrap_or(ChangeTiming::Now);
    let stripe = stripe(org)?;
    let subscription = current(&stripe, org).await?;
    let seats = seats_of(org).await?;
    let now = customer_now(&stripe, org).await?;
    let target = catalogue.plan(plan).ok_or_else(|| AppError::NotFound("There is no such plan.".into()))?;
    let per_period = target.price_for(interval, seats);
    let period_end = subscription.items.data.iter().map(|i| i.current_period_end).max().unwrap_or(now);
    if timing == ChangeTiming::AtPeriodEnd {
        return Ok(ChangePreview {
            plan: plan.to_string(),
            interval,
            timing,
            effective_at: period_end,
            due_now: 0,
            lines: Vec::new(),
            per_period,
            currency: catalogue.currency.clone(),
            proration_date: now,
        });
    }
    let items = new_items(&stripe, org, &subscription, plan, interval, seats)
        .await?
        .into_iter()
        .map(|(_, id, price, quantity)| match price {
            Some(price) => CreatePreviewInvoiceSubscriptionDetailsItems {
                id,
                price: Some(price),
                quantity,
                ..CreatePreviewInvoiceSubscriptionDetailsItems::new()
            },
            None => CreatePreviewInvoiceSubscriptionDetailsItems { id, deleted: Some(true), ..CreatePreviewInvoiceSubscriptionDetailsItems::new() },
        })
        .collect::<Vec<_>>();
    let details = CreatePreviewInvoiceSubscriptionDetails {
        items: Some(items),
        proration_behavior: Some(CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::AlwaysInvoice),
        proration_date: Some(now),
        ..CreatePreviewInvoiceSubscriptionDetails::new()
    };
    let customer = customer(org).await?;
    let invoice = stripe
        .send(CreatePreviewInvoice::new().customer(customer.as_str()).subscription(subscription.id.as_str()).subscription_details(details))
        .await?;
    Ok(ChangePreview {
        plan: plan.to_string(),
        interval,
        timing,
        effective_at: now,
        due_now: invoice.amount_due,
        lines: invoice.lines.data.iter().map(account::line_of).collect(),
        per_period,
        currency: catalogue.currency.clone(),
        proration_date: now,
    })
}

async fn seats_of(org: &Org) -> Result<u32> {
    let mut tx = org.control_read(Permission::ManageBilling).await?;
    account::seats_used(tx.conn(), org.tenant.id).await
}

/// Changes the plan: an upgrade (or monthly to annual) now, charged with proration computed at
/// `proration_date` (the preview's, if recent); a downgrade at the period's end, through a
/// subscription schedule that can be taken back until then.
pub async fn change_plan(backend: &Backend, org: &Org, plan: &str, interval: Interval, proration_date: Option<i64>) -> Result<ChangeTiming> {
    org.require(Permission::ManageBilling)?;
    known_plan(org, plan)?;
    let view = org.billing();
    let catalogue = org.tenancy().billing().catalogue();
    let command = Command::ChangePlan { plan: plan.to_string(), interval };
    let timing = check(&view.state, &command, &catalogue.plans).map_err(refuse)?.unwrap_or(ChangeTiming::Now);
    let stripe = stripe(org)?;
    let subscription = current(&stripe, org).await?;
    let seats = seats_of(org).await?;
    let now = customer_now(&stripe, org).await?;
    let tx = org.billing_write(Permission::ManageBilling).await?;
    let items = new_items(&stripe, org, &subscription, plan, interval, seats).await?;
    // A change replaces one scheduled before.
    if let Some(schedule) = &subscription.schedule {
        stripe.send(ReleaseSubscriptionSchedule::new(schedule.id().as_str())).await?;
    }
    match timing {
        ChangeTiming::Now => {
            let items = items
                .into_iter()
                .map(|(_, id, price, quantity)| match price {
                    Some(price) => UpdateSubscriptionItems { id, price: Some(price), quantity, ..UpdateSubscriptionItems::new() },
                    None => UpdateSubscriptionItems { id, deleted: Some(true), ..UpdateSubscriptionItems::new() },
                })
                .collect::<Vec<_>>();
            // The preview's moment, so the charge is what was shown; a preview over an hour old
            // (or from the future) is refused rather than charged differently.
            let at = match proration_date {
                Some(at) if (now - 3600..=now).contains(&at) => at,
                Some(_) => {
                    return Err(AppError::Conflict(tessera_domain::input::FieldError::new(
                        "plan",
                        "This preview is out of date. Preview the change again, then confirm.",
                    ))
                    .into())
                }
                None => now,
            };
            let request = UpdateSubscription::new(subscription.id.as_str())
                .items(items)
                .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
                .proration_date(at);
            stripe.send(request).await?;
        }
        ChangeTiming::AtPeriodEnd => {
            let schedule = stripe.send(CreateSubscriptionSchedule::new().from_subscription(subscription.id.as_str())).await?;
            let period_start = subscription.items.data.iter().map(|i| i.current_period_start).min().unwrap_or(now);
            let period_end = subscription.items.data.iter().map(|i| i.current_period_end).max().unwrap_or(now);
            let phase_items = |items: Vec<(Option<String>, Option<u64>)>| {
                items
                    .into_iter()
                    .map(|(price, quantity)| UpdateSubscriptionSchedulePhasesItems {
                        price,
                        quantity,
                        ..UpdateSubscriptionSchedulePhasesItems::new()
                    })
                    .collect::<Vec<_>>()
            };
            let now_items = subscription
                .items
                .data
                .iter()
                .map(|i| {
                    (
                        Some(i.price.id.to_string()),
                        i.quantity.filter(|_| i.price.recurring.as_ref().is_some_and(|r| r.usage_type.as_str() != "metered")),
                    )
                })
                .collect();
            let later_items = items.into_iter().filter_map(|(_, _, price, quantity)| price.map(|p| (Some(p), quantity))).collect();
            let current_phase = UpdateSubscriptionSchedulePhases {
                start_date: Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(period_start)),
                end_date: Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(period_end)),
                ..UpdateSubscriptionSchedulePhases::new(phase_items(now_items))
            };
            let next_phase = UpdateSubscriptionSchedulePhases {
                proration_behavior: Some(UpdateSubscriptionSchedulePhasesProrationBehavior::None),
                ..UpdateSubscriptionSchedulePhases::new(phase_items(later_items))
            };
            let metadata = HashMap::from([(PLAN_KEY.to_string(), plan.to_string()), (INTERVAL_KEY.to_string(), interval.as_str().to_string())]);
            let request = UpdateSubscriptionSchedule::new(schedule.id.as_str())
                .phases(vec![current_phase, next_phase])
                .end_behavior(stripe_shared::SubscriptionScheduleEndBehavior::Release)
                .metadata(metadata);
            stripe.send(request).await?;
        }
    }
    let from = view.state.label();
    let changes = serde_json::json!({
        "plan": { "old": from, "new": format!("{plan}:{}", interval.as_str()) },
        "takes_effect": { "new": match timing { ChangeTiming::Now => "now", ChangeTiming::AtPeriodEnd => "at the period's end" } },
    });
    tx.commit(AuditEntry::new("billing.plan_changed", "tenant", org.tenant.id, changes)).await?;
    refresh_now(backend, org).await;
    Ok(timing)
}

/// Takes back a downgrade scheduled for the period's end.
pub async fn keep_plan(backend: &Backend, org: &Org) -> Result<()> {
    let tx = org.billing_write(Permission::ManageBilling).await?;
    let stripe = stripe(org)?;
    let subscription = current(&stripe, org).await?;
    let Some(schedule) = &subscription.schedule else {
        return Err(AppError::Conflict(tessera_domain::input::FieldError::new("plan", "No plan change is scheduled.")).into());
    };
    stripe.send(ReleaseSubscriptionSchedule::new(schedule.id().as_str())).await?;
    tx.commit(AuditEntry::new("billing.scheduled_change_dropped", "tenant", org.tenant.id, serde_json::json!({}))).await?;
    refresh_now(backend, org).await;
    Ok(())
}

/// Cancels: at the period's end when paid up (it can be resumed until then); at once when a
/// payment is outstanding (nothing more will be charged).
pub async fn cancel(backend: &Backend, org: &Org) -> Result<()> {
    let tx = org.billing_write(Permission::ManageBilling).await?;
    let view = org.billing();
    check(&view.state, &Command::Cancel, &org.tenancy().billing().catalogue().plans).map_err(refuse)?;
    let stripe = stripe(org)?;
    let subscription = current(&stripe, org).await?;
    let now = matches!(view.state, BillingState::PastDue { .. } | BillingState::Restricted { .. });
    if now {
        stripe.send(CancelSubscription::new(subscription.id.as_str())).await?;
    } else {
        stripe.send(UpdateSubscription::new(subscription.id.as_str()).cancel_at_period_end(true)).await?;
    }
    let when = if now { "now" } else { "at the period's end" };
    tx.commit(AuditEntry::new("billing.canceled", "tenant", org.tenant.id, serde_json::json!({ "ends": { "new": when } }))).await?;
    refresh_now(backend, org).await;
    Ok(())
}

/// Takes a cancellation back before the period ends.
pub async fn resume(backend: &Backend, org: &Org) -> Result<()> {
    let tx = org.billing_write(Permission::ManageBilling).await?;
    let view = org.billing();
    check(&view.state, &Command::Resume, &org.tenancy().billing().catalogue().plans).map_err(refuse)?;
    let stripe = stripe(org)?;
    let subscription = current(&stripe, org).await?;
    stripe.send(UpdateSubscription::new(subscription.id.as_str()).cancel_at_period_end(false)).await?;
    tx.commit(AuditEntry::new("billing.resumed", "tenant", org.tenant.id, serde_json::json!({}))).await?;
    refresh_now(backend, org).await;
    Ok(())
}
