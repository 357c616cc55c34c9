//! An organization's Stripe customer and subscription, and keeping Tessera's copy of them
//! current.
//!
//! - [`OpenAccount`] (queued when an organization is created): the customer (on a test clock of
//!   its own when configured), then the trial subscription of the trial plan, without a card.
//! - [`refresh`]: fetches the customer's subscriptions, payment method and invoices from Stripe
//!   and stores the newest state (under the account's row lock, so two refreshes can't
//!   interleave), announcing a change of state (audit record).

use super::stripe::StripeApi;
use super::{Billing, Record};
use crate::audit::{self, AuditEntry};
use crate::error::{Error, Result};
use crate::jobs::{Job, RunningJob};
use crate::Backend;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgConnection;
use std::collections::HashMap;
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, CreateSubscriptionTrialEnd, CreateSubscriptionTrialSettings,
    CreateSubscriptionTrialSettingsEndBehavior, CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, ListSubscription,
    ListSubscriptionStatus,
};
use stripe_billing::subscription_schedule::RetrieveSubscriptionSchedule;
use stripe_billing::test_helpers_test_clock::{CreateTestHelpersTestClock, RetrieveTestHelpersTestClock};
use stripe_core::customer::{CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned};
use stripe_product::price::ListPrice;
use stripe_shared::{Subscription, SubscriptionStatus};
use tessera_domain::billing::{Component, Interval, Invoice, InvoiceLine, Snapshot, StripeStatus};
use uuid::Uuid;

/// Metadata keys Tessera puts on Stripe objects.
pub const ORGANIZATION_KEY: &str = "tessera_organization_id";
const PLAN_KEY: &str = "tessera_plan";
const INTERVAL_KEY: &str = "tessera_interval";
const COMPONENT_KEY: &str = "tessera_component";

/// Opens a new organization's Stripe account: customer, then trial subscription.
#[derive(Serialize, Deserialize)]
pub struct OpenAccount {
    pub tenant_id: Uuid,
}

/// Billing's jobs outlast a Stripe outage: backoff grows to an hour, so 30 attempts are about a day.
pub(crate) const BILLING_ATTEMPTS: i32 = 30;

impl Job for OpenAccount {
    const KIND: &'static str = "billing.open_account";
    const MAX_ATTEMPTS: i32 = BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        open_account(&job.backend, self.tenant_id).await
    }
}
crate::register_job!(OpenAccount);

/// Fetches an organization's billing from Stripe again (after a change Tessera asked for).
#[derive(Serialize, Deserialize)]
pub struct Refresh {
    pub tenant_id: Uuid,
}

impl Job for Refresh {
    const KIND: &'static str = "billing.refresh";
    const MAX_ATTEMPTS: i32 = BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        refresh(&job.backend, self.tenant_id).await.map(|_| ())
    }
}
crate::register_job!(Refresh);

/// Brings the subscription's seat count to the number of members (after someone joined or
/// left), with prorations on the next invoice; none during a trial.
#[derive(Serialize, Deserialize)]
pub struct SyncSeats {
    pub tenant_id: Uuid,
}

impl Job for SyncSeats {
    const KIND: &'static str = "billing.sync_seats";
    const MAX_ATTEMPTS: i32 = BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        sync_seats(&job.backend, self.tenant_id, job.id).await
    }
}
crate::register_job!(SyncSeats);

/// Ends the organization's subscription at once, without prorated credit (it is being
/// deleted). Taking the deletion back leaves it ended: the Owner subscribes again.
#[derive(Serialize, Deserialize)]
pub struct EndSubscription {
    pub tenant_id: Uuid,
}

impl Job for EndSubscription {
    const KIND: &'static str = "billing.end_subscription";
    const MAX_ATTEMPTS: i32 = BILLING_ATTEMPTS;

    async fn run(self, job: &RunningJob) -> Result<()> {
        let backend = &job.backend;
        let Ok(stripe) = backend.tenancy.billing().stripe().cloned() else { return Ok(()) };
        let mut tx = backend.tenancy.maintenance_in("billing", self.tenant_id).await?;
        let customer = account_row(tx.conn(), self.tenant_id, false).await?.and_then(|a| a.customer_id);
        tx.commit(0).await?;
        let Some(customer) = customer else { return Ok(()) };
        let going = stripe.send(ListSubscription::new().customer(customer.as_str()).status(ListSubscriptionStatus::All).limit(20)).await?.data;
        for subscription in going.iter().filter(|s| !matches!(s.status, SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired)) {
            stripe.send(stripe_billing::subscription::CancelSubscription::new(subscription.id.as_str())).await?;
        }
        refresh(backend, self.tenant_id).await.map(|_| ())
    }
}
crate::register_job!(EndSubscription);

/// Queues a seat count update in the transaction that adds or removes a member.
pub(crate) async fn seats_changed(conn: &mut PgConnection, tenant_id: Uuid) -> Result<()> {
    crate::jobs::enqueue(conn, crate::jobs::Lane::Organization(tenant_id), &SyncSeats { tenant_id }).await?;
    Ok(())
}

async fn sync_seats(backend: &Backend, tenant_id: Uuid, job_id: Uuid) -> Result<()> {
    let billing = backend.tenancy.billing().clone();
    let Ok(stripe) = billing.stripe().cloned() else { return Ok(()) };
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let seats = seats_used(tx.conn(), tenant_id).await?;
    let record: Option<Json<Record>> =
        sqlx::query_scalar("SELECT billing FROM tenants WHERE id = $1").bind(tenant_id).fetch_optional(tx.conn()).await?.flatten();
    tx.commit(0).await?;
    let Some(snapshot) = record.and_then(|r| r.0.snapshot).filter(|s| !s.subscription_id.is_empty()) else { return Ok(()) };
    if matches!(snapshot.status, StripeStatus::Canceled | StripeStatus::IncompleteExpired) {
        return Ok(());
    }
    let subscription = stripe.send(stripe_billing::subscription::RetrieveSubscription::new(snapshot.subscription_id.as_str())).await?;
    let Some(item) =
        subscription.items.data.iter().find(|i| i.price.metadata.get(COMPONENT_KEY).map(String::as_str) == Some(Component::Seat.as_str()))
    else {
        return Ok(());
    };
    if item.quantity == Some(u64::from(seats)) {
        return Ok(());
    }
    let proration = if subscription.status == SubscriptionStatus::Trialing {
        stripe_billing::subscription::UpdateSubscriptionProrationBehavior::None
    } else {
        stripe_billing::subscription::UpdateSubscriptionProrationBehavior::CreateProrations
    };
    let items = vec![stripe_billing::subscription::UpdateSubscriptionItems {
        id: Some(item.id.to_string()),
        quantity: Some(u64::from(seats)),
        ..stripe_billing::subscription::UpdateSubscriptionItems::new()
    }];
    let request = stripe_billing::subscription::UpdateSubscription::new(subscription.id.as_str()).items(items).proration_behavior(proration);
    stripe.send_once(&format!("tessera-seats-{job_id}-{seats}"), request).await?;
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let entry = AuditEntry::new(
        "billing.seats_changed",
        "tenant",
        tenant_id,
        audit::changed(&[("seats", &item.quantity.unwrap_or_default().to_string(), &seats.to_string())]),
    );
    audit::insert_system(tx.conn(), tenant_id, &entry, "billing").await?;
    tx.commit(1).await?;
    refresh(backend, tenant_id).await.map(|_| ())
}

/// Refuses a new member (an invitation, an addition) when the plan's seats are all taken by
/// members and open invitations, saying so.
/// `invitations`: whether open invitations hold seats (they do when inviting; when one is
/// accepted, it turns into the member it held a seat for).
pub(crate) async fn require_seat(
    conn: &mut PgConnection,
    billing: &Billing,
    tenant_id: Uuid,
    record: Option<&Record>,
    invitations: bool,
) -> Result<()> {
    let view = billing.view(record);
    if view.entitlements.seats.is_none() {
        return Ok(());
    }
    // Held to the end of the joining transaction: two people joining at once take turns, so
    // both can't take the last seat.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('billing.seats:' || $1::text, 0))").bind(tenant_id).execute(&mut *conn).await?;
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1)
              + CASE WHEN $2 THEN (SELECT count(*) FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL
                   AND declined_at IS NULL AND revoked_at IS NULL AND expires_at > now()) ELSE 0 END",
    )
    .bind(tenant_id)
    .bind(invitations)
    .fetch_one(conn)
    .await?;
    view.entitlements
        .room_for_seat(u32::try_from(used).unwrap_or(u32::MAX))
        .map_err(|refusal| tessera_domain::AppError::PaymentRequired(refusal.0).into())
}

/// Whether one more person can join the organization now (accepting an invitation, arriving
/// through single sign-on): it is writable as far as billing goes (not unpaid, not over the
/// free plan after its subscription ended) and a seat is free. Open invitations aren't
/// counted: the one joining may hold one.
pub(crate) async fn require_room_for_member(conn: &mut PgConnection, tenancy: &crate::tenancy::Tenancy, tenant_id: Uuid) -> Result<()> {
    // The plan may have shrunk since the invitation was sent or the IdP was connected.
    let record: Option<Json<Record>> = sqlx::query_scalar("SELECT billing FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(&mut *conn).await?;
    let record = record.as_ref().map(|r| &r.0);
    let billing = tenancy.billing();
    let view = billing.view(record);
    view.require_writable()?;
    if let Some(tenant) = tenancy.tenant_by_id(tenant_id).await? {
        tenancy.require_within_free_plan(&tenant, &view).await?;
    }
    require_seat(conn, billing, tenant_id, record, false).await
}

/// What Tessera knows of an organization's Stripe customer.
#[derive(sqlx::FromRow)]
struct AccountRow {
    customer_id: Option<String>,
    test_clock: Option<String>,
    announced: String,
}

async fn account_row(conn: &mut PgConnection, tenant_id: Uuid, lock: bool) -> Result<Option<AccountRow>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    Ok(sqlx::query_as(&format!("SELECT customer_id, test_clock, announced FROM billing_accounts WHERE tenant_id = $1{lock}"))
        .bind(tenant_id)
        .fetch_optional(conn)
        .await?)
}

async fn open_account(backend: &Backend, tenant_id: Uuid) -> Result<()> {
    let billing = backend.tenancy.billing().clone();
    let stripe = billing.stripe()?.clone();
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let org: Option<(String, String, Option<Json<Record>>, time::OffsetDateTime)> =
        sqlx::query_as("SELECT name, slug, billing, created_at FROM tenants WHERE id = $1 AND status NOT IN ('deleted', 'deleting')")
            .bind(tenant_id)
            .fetch_optional(tx.conn())
            .await?;
    // Gone or going: nothing to bill.
    let Some((name, slug, record, created_at)) = org else { return Ok(()) };
    let account = account_row(tx.conn(), tenant_id, false).await?;
    let owner_email: Option<String> = sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY m.created_at LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(tx.conn())
    .await?;
    let seats = seats_used(tx.conn(), tenant_id).await?;
    tx.commit(0).await?;

    let customer_id = match account.and_then(|a| a.customer_id) {
        Some(id) => id,
        None => {
            // Idempotency keys named after the organization, and parameters that are the same
            // on every attempt: a retried job finds what the first attempt made instead of
            // making a second customer. (The clock starts at the organization's creation.)
            let clock = if billing.test_clocks() {
                let request = CreateTestHelpersTestClock::new(created_at.unix_timestamp()).name(slug.as_str());
                let clock = stripe.send_once(&format!("tessera-clock-{tenant_id}-{}", created_at.unix_timestamp()), request).await?;
                Some(clock.id.to_string())
            } else {
                None
            };
            let metadata = HashMap::from([(ORGANIZATION_KEY.to_string(), tenant_id.to_string()), ("tessera_slug".to_string(), slug.clone())]);
            let mut request = CreateCustomer::new().name(name.as_str()).metadata(metadata);
            if let Some(email) = &owner_email {
                request = request.email(email.as_str());
            }
            if let Some(clock) = &clock {
                request = request.test_clock(clock.as_str());
            }
            // A customer on a test clock is the clock's: another clock, another customer.
            let key = match &clock {
                Some(clock) => format!("tessera-customer-{tenant_id}-{clock}"),
                None => format!("tessera-customer-{tenant_id}"),
            };
            let customer = stripe.send_once(&key, request).await?;
            let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
            // What the organization was told at creation (its trial) is what has been announced.
            let announced = billing.view(record.as_ref().map(|r| &r.0)).state.label();
            sqlx::query(
                "INSERT INTO billing_accounts (tenant_id, customer_id, test_clock, announced) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, test_clock = EXCLUDED.test_clock, updated_at = now()
                  WHERE billing_accounts.customer_id IS NULL",
            )
            .bind(tenant_id)
            .bind(customer.id.as_str())
            .bind(clock.as_deref())
            .bind(announced)
            .execute(tx.conn())
            .await?;
            tx.commit(1).await?;
            customer.id.to_string()
        }
    };

    // Only an organization promised a trial at its creation gets one, and only while an hour of
    // it is left; one that existed before billing was switched on (opened by the reconciler),
    // or whose promised trial is over, stays on the free plan.
    let promised_trial = record
        .as_ref()
        .and_then(|r| r.0.snapshot.as_ref())
        .is_some_and(|s| s.subscription_id.is_empty() && s.trial_end.is_some_and(|end| end > super::now() + 3600));
    let existing = stripe.send(ListSubscription::new().customer(customer_id.as_str()).status(ListSubscriptionStatus::All).limit(1)).await?;
    if existing.data.is_empty() && promised_trial {
        let catalogue = billing.catalogue();
        let plan = catalogue.plan(&catalogue.trial_plan).ok_or_else(|| Error::Internal("the trial plan is not in the catalogue".into()))?;
        let items = subscription_items(&stripe, &billing, &plan.key, Interval::Month, seats).await?;
        // The trial promised when the organization was made (its record), not a new one.
        let promised = record.and_then(|r| r.0.snapshot).and_then(|s| s.trial_end).filter(|end| *end > super::now() + 3600);
        let trial_end = promised.unwrap_or(super::now() + i64::from(plan.trial_days) * 86_400);
        let metadata = HashMap::from([(ORGANIZATION_KEY.to_string(), tenant_id.to_string())]);
        let end_behavior = CreateSubscriptionTrialSettingsEndBehavior {
            // No card by the trial's end: the subscription ends and the organization falls back
            // to the free plan.
            missing_payment_method: Some(CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::Cancel),
            ..CreateSubscriptionTrialSettingsEndBehavior::new()
        };
        let request = CreateSubscription::new()
            .customer(customer_id.as_str())
            .items(items)
            .trial_end(CreateSubscriptionTrialEnd::Timestamp(trial_end))
            .trial_settings(CreateSubscriptionTrialSettings::new(end_behavior))
            .metadata(metadata);
        stripe.send_once(&format!("tessera-trial-{tenant_id}"), request).await?;
    }
    refresh(backend, tenant_id).await.map(|_| ())
}

/// Members count as seats.
pub(crate) async fn seats_used(conn: &mut PgConnection, tenant_id: Uuid) -> Result<u32> {
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM memberships WHERE tenant_id = $1").bind(tenant_id).fetch_one(conn).await?;
    Ok(u32::try_from(members.max(1)).unwrap_or(u32::MAX))
}

/// The Stripe prices of `plan` in `interval`, by component.
pub(crate) async fn prices(stripe: &StripeApi, plan: &str, interval: Interval, billing: &Billing) -> Result<Vec<(Component, String)>> {
    let plan = billing.catalogue().plan(plan).ok_or_else(|| Error::Internal(format!("plan {plan} is not in the catalogue")))?;
    let specs = plan.prices(interval);
    let keys: Vec<String> = specs.iter().map(|s| s.lookup_key.clone()).collect();
    let found = stripe.send(ListPrice::new().lookup_keys(keys).active(true).limit(10)).await?.data;
    specs
        .iter()
        .map(|spec| {
            let price = found
                .iter()
                .find(|p| p.lookup_key.as_deref() == Some(spec.lookup_key.as_str()))
                .ok_or_else(|| Error::Internal(format!("Stripe has no price {}: run `tessera-server billing sync`", spec.lookup_key)))?;
            Ok((spec.component, price.id.to_string()))
        })
        .collect()
}

/// A subscription's items for `plan` in `interval`: the flat price once, the seat price per
/// member, the API-call price metered (no quantity).
async fn subscription_items(
    stripe: &StripeApi,
    billing: &Billing,
    plan: &str,
    interval: Interval,
    seats: u32,
) -> Result<Vec<CreateSubscriptionItems>> {
    Ok(prices(stripe, plan, interval, billing)
        .await?
        .into_iter()
        .map(|(component, price)| CreateSubscriptionItems {
            price: Some(price),
            quantity: component.quantity(seats),
            ..CreateSubscriptionItems::new()
        })
        .collect())
}

/// Fetches the organization's billing from Stripe and stores it. Returns the stored record
/// (`None`: no Stripe customer yet).
pub async fn refresh(backend: &Backend, tenant_id: Uuid) -> Result<Option<Record>> {
    let billing = backend.tenancy.billing().clone();
    let stripe = billing.stripe()?.clone();
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let Some(AccountRow { customer_id: Some(customer_id), test_clock, announced }) = account_row(tx.conn(), tenant_id, true).await? else {
        tx.commit(0).await?;
        return Ok(None);
    };
    let (organization, stored): (String, Option<Json<Record>>) =
        sqlx::query_as("SELECT name, billing FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(tx.conn()).await?;
    let stored = stored.map(|json| json.0).unwrap_or_default();

    let customer =
        match stripe.send(RetrieveCustomer::new(customer_id.as_str()).expand(vec!["invoice_settings.default_payment_method".to_string()])).await? {
            RetrieveCustomerReturned::Customer(customer) => customer,
            RetrieveCustomerReturned::DeletedCustomer(_) => return Err(Error::Internal(format!("Stripe customer {customer_id} was deleted"))),
        };
    let subscriptions = stripe
        .send(
            ListSubscription::new()
                .customer(customer_id.as_str())
                .status(ListSubscriptionStatus::All)
                .limit(20)
                .expand(vec!["data.latest_invoice".to_string(), "data.default_payment_method".to_string()]),
        )
        .await?
        .data;
    let clock_skew = match &test_clock {
        Some(clock) => stripe.send(RetrieveTestHelpersTestClock::new(clock.as_str())).await?.frozen_time - super::now(),
        None => 0,
    };
    let current = current_subscription(subscriptions);
    let scheduled = match current.as_ref().and_then(|s| s.schedule.as_ref()) {
        Some(schedule) => {
            let schedule = stripe.send(RetrieveSubscriptionSchedule::new(schedule.id().as_str())).await?;
            let metadata = schedule.metadata.unwrap_or_default();
            let plan = metadata.get(PLAN_KEY).cloned();
            let interval = metadata.get(INTERVAL_KEY).and_then(|i| Interval::parse(i));
            plan.zip(interval)
        }
        None => None,
    };
    let customer_card = customer.invoice_settings.as_ref().and_then(|s| s.default_payment_method.as_ref()).and_then(|pm| pm.as_object()).cloned();
    let subscription_card = current.as_ref().and_then(|s| s.default_payment_method.as_ref()).and_then(|pm| pm.as_object()).cloned();
    let card = subscription_card.or(customer_card);
    let mut seen = current.as_ref().map(|s| snapshot_of(s, scheduled, card.is_some()));
    // Still unpaid: the grace period counts from when it started, not from this fetch.
    if let (Some(seen), Some(before)) = (seen.as_mut(), stored.snapshot.as_ref()) {
        if seen.unpaid_since.is_none() && seen.status == StripeStatus::PastDue && before.subscription_id == seen.subscription_id {
            seen.unpaid_since = before.unpaid_since;
        }
    }
    let record = Record {
        // What Stripe says now replaces what was stored (this holds the account's lock, so no
        // older fetch can land after it); with no subscription yet, the promised trial stays.
        snapshot: seen.or_else(|| stored.snapshot.clone()),
        clock_skew,
        payment_method: card
            .and_then(|pm| pm.card)
            .map(|c| format!("{} •••• {} (expires {:02}/{})", brand(&c.brand), c.last4, c.exp_month, c.exp_year)),
    };
    if record != stored {
        sqlx::query("SELECT tenant_set_billing($1, $2)").bind(tenant_id).bind(Json(&record)).execute(tx.conn()).await?;
    }
    store_invoices(&stripe, tx.conn(), tenant_id, &customer_id).await?;
    let state = billing.view(Some(&record)).state;
    let now_state = state.label();
    if now_state != announced {
        sqlx::query("UPDATE billing_accounts SET announced = $2, updated_at = now() WHERE tenant_id = $1")
            .bind(tenant_id)
            .bind(&now_state)
            .execute(tx.conn())
            .await?;
        let entry = AuditEntry::new("billing.state_changed", "tenant", tenant_id, audit::changed(&[("state", &announced, &now_state)]));
        audit::insert_system(tx.conn(), tenant_id, &entry, "billing").await?;
        if let Some((key, title, body)) = super::notices::for_change(&billing, &organization, &announced, &state) {
            super::notices::once(tx.conn(), tenant_id, &key, title, body, None).await?;
        }
        let change = crate::webhooks::events::BillingChange::now(&announced, &state, &billing.catalogue().free_plan().key);
        crate::webhooks::events::billing_changed(tx.conn(), tenant_id, change).await?;
    }
    tx.commit(1).await?;
    Ok(Some(record))
}

/// The subscription that decides: the newest one still going, else the newest one.
fn current_subscription(mut subscriptions: Vec<Subscription>) -> Option<Subscription> {
    subscriptions.sort_by_key(|s| std::cmp::Reverse(s.created));
    let going = subscriptions.iter().position(|s| !matches!(s.status, SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired));
    match going {
        Some(i) => Some(subscriptions.swap_remove(i)),
        None => subscriptions.into_iter().next(),
    }
}

fn snapshot_of(subscription: &Subscription, scheduled: Option<(String, Interval)>, has_payment_method: bool) -> Snapshot {
    let items = &subscription.items.data;
    let tagged = |component: Component| items.iter().find(|i| i.price.metadata.get(COMPONENT_KEY).map(String::as_str) == Some(component.as_str()));
    let any = items.iter().find(|i| i.price.metadata.contains_key(PLAN_KEY));
    let plan = any.and_then(|i| i.price.metadata.get(PLAN_KEY)).cloned().unwrap_or_default();
    let interval = any.and_then(|i| i.price.metadata.get(INTERVAL_KEY)).and_then(|i| Interval::parse(i)).unwrap_or(Interval::Month);
    let seats = tagged(Component::Seat).and_then(|i| i.quantity).unwrap_or(1);
    let latest = subscription.latest_invoice.as_ref().and_then(|i| i.as_object());
    let unpaid_since = latest
        .filter(|invoice| invoice.status.as_ref().map(|s| s.as_str()) == Some("open") && invoice.attempt_count > 0)
        .map(|invoice| invoice.status_transitions.finalized_at.unwrap_or(invoice.created));
    let now = time::OffsetDateTime::now_utc();
    Snapshot {
        subscription_id: subscription.id.to_string(),
        status: StripeStatus::parse(subscription.status.as_str()).unwrap_or(StripeStatus::Incomplete),
        plan,
        interval,
        seats: u32::try_from(seats).unwrap_or(u32::MAX),
        trial_end: subscription.trial_end,
        period_end: items.iter().map(|i| i.current_period_end).max(),
        cancel_at_period_end: subscription.cancel_at_period_end || subscription.cancel_at.is_some(),
        ended_at: subscription.ended_at,
        scheduled,
        unpaid_since,
        has_payment_method,
        // Fetched now, so newer than anything fetched or heard before (under the row lock).
        as_of: now.unix_timestamp(),
        source: format!("fetch:{:020}", now.unix_timestamp_nanos()),
    }
}

fn brand(raw: &str) -> String {
    match raw {
        "visa" => "Visa".into(),
        "mastercard" => "Mastercard".into(),
        "amex" => "American Express".into(),
        other => other.to_string(),
    }
}

/// Mirrors the customer's most recent invoices (the billing page lists them; PDFs are made
/// from them).
async fn store_invoices(stripe: &StripeApi, conn: &mut PgConnection, tenant_id: Uuid, customer_id: &str) -> Result<()> {
    let invoices = stripe.send(stripe_billing::invoice::ListInvoice::new().customer(customer_id).limit(24)).await?.data;
    for invoice in invoices {
        let Some(id) = invoice.id.as_ref().map(|id| id.to_string()) else { continue };
        let kept = Invoice {
            id: id.clone(),
            number: invoice.number.clone(),
            status: invoice.status.as_ref().map_or("draft", |s| s.as_str()).to_string(),
            currency: invoice.currency.to_string(),
            created: invoice.created,
            period_start: invoice.period_start,
            period_end: invoice.period_end,
            subtotal: invoice.subtotal,
            tax: invoice.total_taxes.iter().flatten().map(|t| t.amount).sum(),
            total: invoice.total,
            amount_due: invoice.amount_due,
            amount_paid: invoice.amount_paid,
            amount_remaining: invoice.amount_remaining,
            customer_name: invoice.customer_name.clone(),
            customer_email: invoice.customer_email.clone(),
            issuer: invoice.account_name.clone(),
            billing_reason: invoice.billing_reason.as_ref().map(|r| r.as_str().to_string()),
            attempt_count: invoice.attempt_count,
            next_payment_attempt: invoice.next_payment_attempt,
            paid_at: invoice.status_transitions.paid_at,
            lines: invoice.lines.data.iter().map(line_of).collect(),
        };
        let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok();
        sqlx::query(
            "INSERT INTO billing_invoices (id, tenant_id, number, status, currency, total, amount_due, amount_paid, period_start, period_end, created, object)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO UPDATE SET number = EXCLUDED.number, status = EXCLUDED.status, total = EXCLUDED.total,
                 amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid, object = EXCLUDED.object, updated_at = now()
              WHERE billing_invoices.tenant_id = EXCLUDED.tenant_id AND billing_invoices.object IS DISTINCT FROM EXCLUDED.object",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(&kept.number)
        .bind(&kept.status)
        .bind(&kept.currency)
        .bind(kept.total)
        .bind(kept.amount_due)
        .bind(kept.amount_paid)
        .bind(at(kept.period_start))
        .bind(at(kept.period_end))
        .bind(at(kept.created))
        .bind(Json(&kept))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A Stripe Checkout finished. A saved card (setup mode) becomes the customer's and the
/// subscription's default, and pays what is open (a restricted organization is restored as
/// soon as that goes through); chosen during the trial, the plan is switched to (no charge until
/// the trial ends). A new subscription (subscription mode) needs nothing: `refresh` finds it.
pub(crate) async fn checkout_completed(backend: &Backend, tenant_id: Uuid, session: &serde_json::Value) -> Result<()> {
    if session["mode"].as_str() != Some("setup") || session["status"].as_str() != Some("complete") {
        return Ok(());
    }
    let billing = backend.tenancy.billing().clone();
    let stripe = billing.stripe()?.clone();
    let Some(setup_intent) = session["setup_intent"].as_str().or_else(|| session["setup_intent"]["id"].as_str()) else { return Ok(()) };
    let intent = stripe.send(stripe_core::setup_intent::RetrieveSetupIntent::new(setup_intent)).await?;
    let Some(payment_method) = intent.payment_method.map(|pm| pm.id().to_string()) else { return Ok(()) };
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let Some(AccountRow { customer_id: Some(customer_id), .. }) = account_row(tx.conn(), tenant_id, false).await? else { return Ok(()) };
    let record: Option<Json<Record>> = sqlx::query_scalar("SELECT billing FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(tx.conn()).await?;
    let seats = seats_used(tx.conn(), tenant_id).await?;
    tx.commit(0).await?;
    let settings = stripe_core::customer::UpdateCustomerInvoiceSettings {
        default_payment_method: Some(payment_method.clone()),
        ..stripe_core::customer::UpdateCustomerInvoiceSettings::new()
    };
    stripe.send(stripe_core::customer::UpdateCustomer::new(customer_id.as_str()).invoice_settings(settings)).await?;
    // An ended subscription takes no changes (its open invoices are still paid below).
    let snapshot = record
        .and_then(|r| r.0.snapshot)
        .filter(|s| !s.subscription_id.is_empty() && !matches!(s.status, StripeStatus::Canceled | StripeStatus::IncompleteExpired));
    if let Some(snapshot) = &snapshot {
        let mut update =
            stripe_billing::subscription::UpdateSubscription::new(snapshot.subscription_id.as_str()).default_payment_method(payment_method.as_str());
        let metadata = &session["metadata"];
        let chosen = metadata["tessera_plan"].as_str().zip(metadata["tessera_interval"].as_str().and_then(Interval::parse));
        if let Some((plan, interval)) =
            chosen.filter(|(plan, interval)| snapshot.status == StripeStatus::Trialing && (*plan != snapshot.plan || *interval != snapshot.interval))
        {
            let subscription = stripe.send(stripe_billing::subscription::RetrieveSubscription::new(snapshot.subscription_id.as_str())).await?;
            let wanted = prices(&stripe, plan, interval, &billing).await?;
            let items = Component::ALL
                .into_iter()
                .filter_map(|component| {
                    let existing = subscription
                        .items
                        .data
                        .iter()
                        .find(|i| i.price.metadata.get(COMPONENT_KEY).map(String::as_str) == Some(component.as_str()))
                        .map(|i| i.id.to_string());
                    let price = wanted.iter().find(|(c, _)| *c == component).map(|(_, p)| p.clone());
                    let quantity = component.quantity(seats);
                    match (existing, price) {
                        (None, None) => None,
                        (id, Some(price)) => Some(stripe_billing::subscription::UpdateSubscriptionItems {
                            id,
                            price: Some(price),
                            quantity,
                            ..stripe_billing::subscription::UpdateSubscriptionItems::new()
                        }),
                        (id, None) => Some(stripe_billing::subscription::UpdateSubscriptionItems {
                            id,
                            deleted: Some(true),
                            ..stripe_billing::subscription::UpdateSubscriptionItems::new()
                        }),
                    }
                })
                .collect::<Vec<_>>();
            // Nothing is owed during a trial: no prorations.
            update = update.items(items).proration_behavior(stripe_billing::subscription::UpdateSubscriptionProrationBehavior::None);
        }
        stripe.send(update).await?;
    }
    // Whatever is open is paid with the new card now, not at Stripe's next retry.
    let open = stripe
        .send(stripe_billing::invoice::ListInvoice::new().customer(customer_id.as_str()).status(stripe_shared::InvoiceStatus::Open).limit(10))
        .await?
        .data;
    for invoice in open {
        let Some(id) = invoice.id else { continue };
        match stripe.send(stripe_billing::invoice::PayInvoice::new(id.as_str())).await {
            // A declined card is Stripe's event to tell (invoice.payment_failed), not a failure of this job.
            Ok(_) | Err(Error::Stripe { status: 402, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut tx = backend.tenancy.maintenance_in("billing", tenant_id).await?;
    let entry =
        AuditEntry::new("billing.payment_method_updated", "tenant", tenant_id, serde_json::json!({ "payment_method": { "new": payment_method } }));
    audit::insert_system(tx.conn(), tenant_id, &entry, "billing").await?;
    tx.commit(1).await
}

/// An invoice line as Tessera keeps and shows it.
pub(crate) fn line_of(line: &stripe_shared::InvoiceLineItem) -> InvoiceLine {
    InvoiceLine {
        description: line.description.clone().unwrap_or_default(),
        quantity: line.quantity,
        amount: line.amount,
        period_start: line.period.start,
        period_end: line.period.end,
        proration: line.parent.as_ref().and_then(|p| p.subscription_item_details.as_ref()).is_some_and(|d| d.proration),
    }
}
