//! Billing: Stripe subscriptions that keep an organization's access in step with its payments.
//!
//! - The pure rules (plans, states, which changes are allowed) are `tessera_domain::billing`;
//!   the plans themselves are `billing/plans.toml` ([`catalogue`]), made real in Stripe by
//!   `tessera-server billing sync` ([`sync`]).
//! - Each organization has a Stripe customer and, from its creation, a trial subscription
//!   ([`account`], through the job queue, so sign-up never waits for Stripe).
//! - Stripe's events arrive signed at one endpoint ([`inbox`]), are stored once by id and
//!   processed by a job that fetches the customer's current state from Stripe (so late,
//!   repeated or reordered events all end in the newest state) and stores it on the
//!   organization's row, where the door reads it with every request ([`Record`], [`View`]).

pub mod account;
pub mod catalogue;
pub mod inbox;
pub mod manage;
pub mod notices;
pub mod pdf;
pub mod reconcile;
pub mod signature;
pub mod stripe;
pub mod sync;
pub mod usage;

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tessera_domain::billing::{Access, BillingState, Catalogue, Entitlements, Policy, Snapshot, Timestamp};
use tessera_domain::AppError;

pub use self::stripe::StripeApi;

/// What an organization's row keeps of its billing (`tenants.billing`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The newest subscription state seen; `None`: none (the free tier).
    pub snapshot: Option<Snapshot>,
    /// Seconds the customer's Stripe clock is ahead of ours: a test clock's, so that grace
    /// periods run on the same time as Stripe's retries. Zero for real customers.
    #[serde(default)]
    pub clock_skew: i64,
    /// The card on file, as shown: "Visa •••• 4242 (expires 12/34)".
    #[serde(default)]
    pub payment_method: Option<String>,
}

/// An organization's billing as the door sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub state: BillingState,
    pub entitlements: Entitlements,
    /// Billing is configured (a Stripe key); without it everyone is on the free tier.
    pub enabled: bool,
}

impl View {
    /// Refuses a change when the organization is read-only for an unpaid subscription, saying
    /// how to fix it.
    pub fn require_writable(&self) -> std::result::Result<(), AppError> {
        if self.state.access() == Access::Full {
            return Ok(());
        }
        Err(AppError::PaymentRequired(
            "This organization is read-only because its subscription is unpaid. An owner or admin can update the payment method under Settings → Billing; access comes back as soon as the payment goes through.".into(),
        ))
    }
}

/// Billing's configuration: the catalogue, the policy, and Stripe (if configured).
#[derive(Clone)]
pub struct Billing {
    inner: Arc<Inner>,
}

struct Inner {
    catalogue: Catalogue,
    policy: Policy,
    stripe: Option<StripeApi>,
    /// The endpoint secret (`whsec_…`) Stripe signs events with; more than one during a rotation.
    webhook_secrets: Vec<String>,
    /// Each new customer gets a Stripe test clock of its own (test mode only), so tests can
    /// move its time.
    test_clocks: bool,
    usage: usage::Usage,
}

/// How billing is set up (`TESSERA_STRIPE_*`, see the README). Its `Debug` leaves the secrets out.
#[derive(Clone, Default)]
pub struct BillingConfig {
    pub secret_key: Option<String>,
    pub api_base: Option<String>,
    pub webhook_secrets: Vec<String>,
    pub plans_file: Option<std::path::PathBuf>,
    pub policy: Policy,
    pub test_clocks: bool,
}

impl std::fmt::Debug for BillingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingConfig")
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("api_base", &self.api_base)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("plans_file", &self.plans_file)
            .field("policy", &self.policy)
            .field("test_clocks", &self.test_clocks)
            .finish()
    }
}

impl Billing {
    pub fn new(config: &BillingConfig) -> Result<Self> {
        let catalogue = catalogue::load(config.plans_file.as_deref())?;
        let stripe = config.secret_key.as_deref().map(|key| StripeApi::new(key, config.api_base.as_deref())).transpose()?;
        if config.test_clocks && !stripe.as_ref().is_some_and(StripeApi::test_mode) {
            return Err(crate::Error::Internal("Stripe test clocks need a test-mode key (sk_test_…)".into()));
        }
        if stripe.is_some() && config.webhook_secrets.is_empty() {
            return Err(crate::Error::Internal(
                "with a Stripe key, TESSERA_STRIPE_WEBHOOK_SECRET must name the webhook endpoint's signing secret (whsec_…)".into(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                catalogue,
                policy: config.policy,
                stripe,
                webhook_secrets: config.webhook_secrets.clone(),
                test_clocks: config.test_clocks,
                usage: usage::Usage::default(),
            }),
        })
    }

    /// Billing switched off: the shipped catalogue, everyone on its free tier.
    pub fn off() -> Self {
        Self::new(&BillingConfig::default()).expect("the shipped catalogue is valid")
    }

    pub fn enabled(&self) -> bool {
        self.inner.stripe.is_some()
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.inner.catalogue
    }

    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    /// The Stripe client; a person asking for billing when it is off is told so.
    pub fn stripe(&self) -> std::result::Result<&StripeApi, AppError> {
        self.inner
            .stripe
            .as_ref()
            .ok_or_else(|| AppError::NotFound("Billing is off in this deployment: every organization is on the free plan.".into()))
    }

    pub(crate) fn webhook_secrets(&self) -> &[String] {
        &self.inner.webhook_secrets
    }

    pub(crate) fn test_clocks(&self) -> bool {
        self.inner.test_clocks
    }

    /// This server's API call counts.
    pub fn usage(&self) -> &usage::Usage {
        &self.inner.usage
    }

    /// A new organization's record: a trial of the trial plan from `now` (none when billing is
    /// off). Stripe's subscription, once made, replaces it (a later snapshot).
    pub fn trial_record(&self, now: Timestamp) -> Option<Record> {
        if !self.enabled() {
            return None;
        }
        let catalogue = &self.inner.catalogue;
        let plan = catalogue.plan(&catalogue.trial_plan)?;
        let snapshot = Snapshot {
            subscription_id: String::new(),
            status: tessera_domain::billing::StripeStatus::Trialing,
            plan: plan.key.clone(),
            interval: tessera_domain::billing::Interval::Month,
            seats: 1,
            trial_end: Some(now + i64::from(plan.trial_days) * 86_400),
            period_end: None,
            cancel_at_period_end: false,
            ended_at: None,
            scheduled: None,
            unpaid_since: None,
            has_payment_method: false,
            as_of: now,
            // Loses a tie with anything Stripe says (sources compare as strings).
            source: String::new(),
        };
        Some(Record { snapshot: Some(snapshot), clock_skew: 0, payment_method: None })
    }

    /// What `record` means now.
    pub fn view(&self, record: Option<&Record>) -> View {
        self.view_at(record, now())
    }

    pub fn view_at(&self, record: Option<&Record>, now: Timestamp) -> View {
        let state = match record {
            Some(record) if self.enabled() => BillingState::derive(record.snapshot.as_ref(), self.inner.policy, now + record.clock_skew),
            _ => BillingState::Free,
        };
        // Without billing there is nothing to upgrade to, so no plan limit applies (the page says
        // billing is off); the free plan's limits are for deployments that sell plans.
        let entitlements = if self.enabled() { self.inner.catalogue.entitlements(&state).clone() } else { Entitlements::unlimited() };
        View { state, entitlements, enabled: self.enabled() }
    }
}

pub(crate) fn now() -> Timestamp {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
