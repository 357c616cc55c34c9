//! Billing's pure core, shared by the server and the browser: the plans and what they grant, what
//! an organization's subscription state means for its access, and which changes a person may ask
//! for in each state.
//!
//! Stripe is the source of truth for money. Tessera keeps the newest state of an organization's
//! subscription it has seen ([`Snapshot`]) and derives everything else from it and the clock
//! ([`BillingState::derive`]). Webhook events arrive late, twice, or out of order; merging keeps
//! the newest snapshot by Stripe's own time ([`Snapshot::newer`]), which is commutative,
//! associative and idempotent, so any order of any repetition of the same events ends in the same
//! state (the property test below checks it).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Seconds since the Unix epoch, as Stripe counts time.
pub type Timestamp = i64;

const DAY: Timestamp = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    pub fn parse(raw: &str) -> Option<Interval> {
        match raw {
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }
}

/// A feature a plan switches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    ApiAccess,
    Webhooks,
    SingleSignOn,
    AuditExport,
    CustomRoles,
}

impl Feature {
    /// The feature as a sentence names it.
    pub fn label(self) -> &'static str {
        match self {
            Feature::ApiAccess => "the API",
            Feature::Webhooks => "webhooks",
            Feature::SingleSignOn => "single sign-on",
            Feature::AuditExport => "audit log export",
            Feature::CustomRoles => "custom roles",
        }
    }
}

/// What a plan grants: features, and limits (`None`: unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    #[serde(default)]
    pub features: BTreeSet<Feature>,
    pub seats: Option<u32>,
    pub projects: Option<u32>,
    pub api_calls_per_month: Option<u64>,
    pub storage_mb: Option<u64>,
}

impl Entitlements {
    /// Every feature, no limits.
    pub fn unlimited() -> Entitlements {
        Entitlements {
            features: [Feature::ApiAccess, Feature::Webhooks, Feature::SingleSignOn, Feature::AuditExport, Feature::CustomRoles]
                .into_iter()
                .collect(),
            seats: None,
            projects: None,
            api_calls_per_month: None,
            storage_mb: None,
        }
    }

    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    /// Refuses what needs `feature` when the plan doesn't include it, saying how to get it.
    pub fn require(&self, feature: Feature) -> Result<(), Refusal> {
        if self.has(feature) {
            return Ok(());
        }
        Err(Refusal(format!("This organization's plan doesn't include {}. An owner or admin can upgrade under Settings → Billing.", feature.label())))
    }

    /// After a subscription or trial ended: whether the organization, with `seats` members and
    /// `projects` projects, fits within these (the free plan's) limits. What doesn't fit is kept
    /// but read-only, and the refusal says how to get out of it.
    pub fn fits(&self, seats: u32, projects: u32) -> Result<(), Refusal> {
        let mut over = Vec::new();
        if let Some(limit) = self.seats.filter(|limit| seats > *limit) {
            over.push(format!("{seats} members ({limit} {} included)", plural(limit, "is", "are")));
        }
        if let Some(limit) = self.projects.filter(|limit| projects > *limit) {
            over.push(format!("{projects} projects ({limit} {} included)", plural(limit, "is", "are")));
        }
        if over.is_empty() {
            return Ok(());
        }
        Err(Refusal(format!(
            "This organization's subscription or trial has ended and it has more than the Free plan includes: {}. Everything is kept and can still be read, but nothing can be changed until an owner or admin subscribes again under Settings → Billing, or removes members or projects down to the Free plan's limits.",
            over.join(" and ")
        )))
    }

    /// Whether one more member fits, `used` seats being taken (members and open invitations).
    pub fn room_for_seat(&self, used: u32) -> Result<(), Refusal> {
        match self.seats {
            Some(seats) if used >= seats => Err(Refusal(format!(
                "Your plan includes {seats} {}; {used} {} used. Upgrade or remove a member.",
                plural(seats, "seat", "seats"),
                plural(used, "is", "are")
            ))),
            _ => Ok(()),
        }
    }

    /// Whether one more project fits, `used` being there.
    pub fn room_for_project(&self, used: u32) -> Result<(), Refusal> {
        match self.projects {
            Some(projects) if used >= projects => Err(Refusal(format!(
                "Your plan includes {projects} {}; {used} {} in use. Upgrade, or delete a project you no longer need.",
                plural(projects, "project", "projects"),
                plural(used, "is", "are")
            ))),
            _ => Ok(()),
        }
    }
}

fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// One plan of the catalogue (`billing/plans.toml`). Prices are in the smallest unit of the
/// catalogue's currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Stable key: `free`, `team`, `business` (Stripe lookup keys derive from it).
    pub key: String,
    pub name: String,
    /// Order among plans: a move to a higher rank is an upgrade (now, prorated), to a lower one a
    /// downgrade (at the period's end).
    pub rank: u32,
    /// No prices and no card: the tier every organization without a subscription is on.
    #[serde(default)]
    pub free: bool,
    #[serde(default)]
    pub monthly_flat: u64,
    #[serde(default)]
    pub monthly_per_seat: u64,
    #[serde(default)]
    pub annual_flat: u64,
    #[serde(default)]
    pub annual_per_seat: u64,
    /// Price per 1,000 API calls beyond none (metered monthly).
    #[serde(default)]
    pub per_thousand_api_calls: u64,
    #[serde(default)]
    pub trial_days: u32,
    pub entitlements: Entitlements,
}

/// The plans (`billing/plans.toml`): what each costs and grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    /// ISO 4217, lowercase, as Stripe writes it.
    pub currency: String,
    /// The plan a new organization's trial is of.
    pub trial_plan: String,
    pub plans: Vec<Plan>,
}

impl Catalogue {
    /// Checks the catalogue makes sense, saying what is wrong where: one free plan, unique
    /// lowercase keys and ranks, paid plans with a price, an annual price below twelve months,
    /// a paid trial plan with trial days.
    pub fn validate(&self) -> Result<(), String> {
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(format!("currency \"{}\" must be a lowercase ISO 4217 code, e.g. \"usd\"", self.currency));
        }
        let free: Vec<&Plan> = self.plans.iter().filter(|p| p.free).collect();
        if free.len() != 1 {
            return Err(format!("exactly one plan must be `free = true` (found {})", free.len()));
        }
        let mut keys = BTreeSet::new();
        let mut ranks = BTreeSet::new();
        for plan in &self.plans {
            let at = format!("plan \"{}\"", plan.key);
            let key_ok = !plan.key.is_empty()
                && plan.key.len() <= 32
                && plan.key.starts_with(|c: char| c.is_ascii_lowercase())
                && plan.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                return Err(format!("{at}: a key is 1 to 32 lowercase letters, digits or underscores, starting with a letter"));
            }
            if !keys.insert(plan.key.as_str()) {
                return Err(format!("{at} appears twice"));
            }
            if !ranks.insert(plan.rank) {
                return Err(format!("{at}: another plan has rank {}; ranks order plans and must differ", plan.rank));
            }
            let priced = [plan.monthly_flat, plan.monthly_per_seat, plan.annual_flat, plan.annual_per_seat, plan.per_thousand_api_calls];
            if plan.free {
                if priced.iter().any(|p| *p > 0) || plan.trial_days > 0 {
                    return Err(format!("{at} is free: it has no prices and no trial"));
                }
                continue;
            }
            if plan.monthly_flat + plan.monthly_per_seat == 0 || plan.annual_flat + plan.annual_per_seat == 0 {
                return Err(format!("{at}: a paid plan needs a monthly and an annual price (flat, per seat, or both)"));
            }
            if plan.annual_flat > 12 * plan.monthly_flat || plan.annual_per_seat > 12 * plan.monthly_per_seat {
                return Err(format!("{at}: the annual price is more than twelve monthly ones"));
            }
            if plan.trial_days > 730 {
                return Err(format!("{at}: a trial lasts 730 days at most (Stripe's limit)"));
            }
        }
        match self.plans.iter().find(|p| p.key == self.trial_plan) {
            Some(plan) if !plan.free && plan.trial_days > 0 => Ok(()),
            Some(_) => Err(format!("trial_plan \"{}\" must be a paid plan with trial_days", self.trial_plan)),
            None => Err(format!("trial_plan \"{}\" isn't one of the plans", self.trial_plan)),
        }
    }

    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }

    pub fn free_plan(&self) -> &Plan {
        self.plans.iter().find(|p| p.free).expect("a validated catalogue has a free plan")
    }

    /// What `state` grants: its plan's entitlements (the free plan's when it has none).
    pub fn entitlements(&self, state: &BillingState) -> &Entitlements {
        let free = self.free_plan();
        self.plan(state.plan_key(&free.key)).map_or(&free.entitlements, |p| &p.entitlements)
    }
}

/// What a Stripe price of a plan charges for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The plan's flat price per period.
    Flat,
    /// Per member, per period (the subscription item's quantity is the seat count).
    Seat,
    /// Per API call, billed in arrears from the meter.
    ApiCalls,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Flat, Component::Seat, Component::ApiCalls];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Flat => "flat",
            Component::Seat => "seat",
            Component::ApiCalls => "api_calls",
        }
    }

    pub fn parse(raw: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// A subscription item's quantity for it: one flat price, a seat per member, and none for
    /// the metered calls (Stripe counts those).
    pub fn quantity(self, seats: u32) -> Option<u64> {
        match self {
            Component::Flat => Some(1),
            Component::Seat => Some(u64::from(seats)),
            Component::ApiCalls => None,
        }
    }
}

/// One Stripe price a paid plan needs, as `billing sync` makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceSpec {
    /// `team_month_flat`: what Tessera finds the price by (Stripe's lookup key).
    pub lookup_key: String,
    pub plan: String,
    pub interval: Interval,
    pub component: Component,
    /// In the smallest currency unit, as a decimal (an API call costs a fraction of a cent).
    pub unit_amount_decimal: String,
}

impl Plan {
    /// The Stripe prices this plan is sold at in `interval` (none for the free plan; a component
    /// priced at zero has none either).
    pub fn prices(&self, interval: Interval) -> Vec<PriceSpec> {
        let (flat, seat) = match interval {
            Interval::Month => (self.monthly_flat, self.monthly_per_seat),
            Interval::Year => (self.annual_flat, self.annual_per_seat),
        };
        let per_call = {
            let thousandths = self.per_thousand_api_calls;
            let fraction = format!("{:03}", thousandths % 1000);
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                (thousandths / 1000).to_string()
            } else {
                format!("{}.{fraction}", thousandths / 1000)
            }
        };
        [
            (Component::Flat, flat, flat.to_string()),
            (Component::Seat, seat, seat.to_string()),
            (Component::ApiCalls, self.per_thousand_api_calls, per_call),
        ]
        .into_iter()
        .filter(|(_, amount, _)| !self.free && *amount > 0)
        .map(|(component, _, unit_amount_decimal)| PriceSpec {
            lookup_key: format!("{}_{}_{}", self.key, interval.as_str(), component.as_str()),
            plan: self.key.clone(),
            interval,
            component,
            unit_amount_decimal,
        })
        .collect()
    }
}

/// An invoice as Tessera keeps and shows it (from Stripe's invoice object).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    /// Set when the invoice is finalized (a draft has none).
    pub number: Option<String>,
    /// draft, open, paid, uncollectible or void.
    pub status: String,
    pub currency: String,
    pub created: Timestamp,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// Who issued it (the deployment's Stripe account name).
    pub issuer: Option<String>,
    pub billing_reason: Option<String>,
    pub attempt_count: u64,
    pub next_payment_attempt: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub lines: Vec<InvoiceLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: Option<u64>,
    pub amount: i64,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// A credit or charge for part of a period (a plan or seat change).
    pub proration: bool,
}

/// What the billing page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Billing is configured; when off, every organization is on the free plan.
    pub enabled: bool,
    pub state: BillingState,
    /// The plan whose limits apply now.
    pub plan: Plan,
    pub seats_used: u32,
    pub projects_used: u32,
    /// API calls this calendar month (UTC) so far.
    pub api_calls_this_month: u64,
    /// "Visa •••• 4242 (expires 12/34)".
    pub payment_method: Option<String>,
    pub currency: String,
    /// Every plan, to compare and choose from.
    pub plans: Vec<Plan>,
    pub invoices: Vec<InvoiceSummary>,
    /// The organization's now, on Stripe's clock (a test clock runs ahead).
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSummary {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub created: Timestamp,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub total: i64,
    pub amount_due: i64,
}

/// What a plan change would cost, shown before it is confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePreview {
    pub plan: String,
    pub interval: Interval,
    pub timing: ChangeTiming,
    /// When it takes effect: now, or the period's end.
    pub effective_at: Timestamp,
    /// Charged now (a prorated upgrade), in the smallest currency unit.
    pub due_now: i64,
    /// The lines of that charge (credits for unused time, charges for the rest of the period).
    pub lines: Vec<InvoiceLine>,
    /// What each period costs after the change, before usage.
    pub per_period: i64,
    pub currency: String,
    /// The moment the proration was computed for: confirming with it charges exactly this.
    pub proration_date: Timestamp,
}

impl Plan {
    /// The plan's price per `interval` for `seats` members, before metered usage.
    pub fn price_for(&self, interval: Interval, seats: u32) -> i64 {
        let (flat, seat) = match interval {
            Interval::Month => (self.monthly_flat, self.monthly_per_seat),
            Interval::Year => (self.annual_flat, self.annual_per_seat),
        };
        (flat + seat * u64::from(seats)) as i64
    }
}

/// An amount in the smallest unit of `currency`, as people read it: "$29.00", "−$3.21",
/// "€8.00", "12.50 CHF".
pub fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "−" } else { "" };
    let (whole, cents) = (amount.unsigned_abs() / 100, amount.unsigned_abs() % 100);
    let mut grouped = String::new();
    for (i, digit) in whole.to_string().chars().enumerate() {
        let left = whole.to_string().len() - i;
        if i > 0 && left % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match currency.to_ascii_lowercase().as_str() {
        "usd" => format!("{sign}${grouped}.{cents:02}"),
        "eur" => format!("{sign}€{grouped}.{cents:02}"),
        "gbp" => format!("{sign}£{grouped}.{cents:02}"),
        other => format!("{sign}{grouped}.{cents:02} {}", other.to_ascii_uppercase()),
    }
}

/// A day as people read it, in UTC: "Dec 20, 2026".
pub fn date(at: Timestamp) -> String {
    // Days to civil date (Howard Hinnant's algorithm), so the browser needs no time crate.
    let z = at.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {day}, {year}", MONTHS[(month - 1) as usize])
}

/// Stripe's subscription statuses (all of them, so a new one can't be mistaken for another).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl StripeStatus {
    pub const ALL: [StripeStatus; 8] = [
        StripeStatus::Incomplete,
        StripeStatus::IncompleteExpired,
        StripeStatus::Trialing,
        StripeStatus::Active,
        StripeStatus::PastDue,
        StripeStatus::Canceled,
        StripeStatus::Unpaid,
        StripeStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StripeStatus::Incomplete => "incomplete",
            StripeStatus::IncompleteExpired => "incomplete_expired",
            StripeStatus::Trialing => "trialing",
            StripeStatus::Active => "active",
            StripeStatus::PastDue => "past_due",
            StripeStatus::Canceled => "canceled",
            StripeStatus::Unpaid => "unpaid",
            StripeStatus::Paused => "paused",
        }
    }

    pub fn parse(raw: &str) -> Option<StripeStatus> {
        StripeStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// What Tessera last learned of an organization's subscription, from a Stripe object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub subscription_id: String,
    pub status: StripeStatus,
    pub plan: String,
    pub interval: Interval,
    pub seats: u32,
    pub trial_end: Option<Timestamp>,
    /// The end of the current period (Stripe keeps it on the subscription's items).
    pub period_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub ended_at: Option<Timestamp>,
    /// A change that takes effect at the period's end (a downgrade): plan and interval.
    pub scheduled: Option<(String, Interval)>,
    /// When the latest invoice's payment started failing (its finalization), if it is unpaid:
    /// the grace period counts from here, a property of the invoice, not of when we heard.
    pub unpaid_since: Option<Timestamp>,
    /// Whether the customer has a payment method on file.
    pub has_payment_method: bool,
    /// Stripe's time for this state: the event's `created`, or when the object was fetched.
    pub as_of: Timestamp,
    /// Breaks ties between snapshots of the same second (the event id): merging picks the same
    /// one whatever the order.
    pub source: String,
}

impl Snapshot {
    /// Whether `self` supersedes `other`: later in Stripe's time, ties broken by source.
    pub fn newer(&self, other: &Snapshot) -> bool {
        (self.as_of, &self.source) > (other.as_of, &other.source)
    }

    /// The newer of the two (merging is a join: any order of any repeats ends the same).
    pub fn merge(current: Option<Snapshot>, seen: Snapshot) -> Snapshot {
        match current {
            Some(current) if !seen.newer(&current) => current,
            _ => seen,
        }
    }
}

/// How long things last: the deployment's billing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// After a payment fails, how long the organization keeps full access (the dunning period).
    pub grace_days: i64,
    /// After a subscription or trial ends, how long everything is promised to be kept (what is
    /// beyond the free plan's limits read-only). Shown to the customer; nothing is removed
    /// automatically after it.
    pub retention_days: i64,
}

impl Default for Policy {
    fn default() -> Self {
        // Stripe retries a failed payment for about two weeks (Smart Retries' default); a week of
        // full access leaves another week of read-only before it gives up and cancels.
        Policy { grace_days: 7, retention_days: 90 }
    }
}

/// An organization's billing state, derived from its newest snapshot and the clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BillingState {
    /// No subscription: the free tier.
    Free,
    /// In a trial of `plan`, which ends at `ends_at` (without a card, back to the free tier).
    Trialing { plan: String, ends_at: Option<Timestamp>, has_payment_method: bool },
    /// Paid and current. `cancels_at`: it ends then (cancelled, can be resumed until then);
    /// `scheduled`: a downgrade that takes effect then.
    Active { plan: String, interval: Interval, renews_at: Option<Timestamp>, cancels_at: Option<Timestamp>, scheduled: Option<(String, Interval)> },
    /// A payment failed; full access until `restricts_at` while Stripe retries (dunning).
    PastDue { plan: String, unpaid_since: Timestamp, restricts_at: Timestamp },
    /// Unpaid past the grace period: read-only until paid.
    Restricted { plan: String, unpaid_since: Timestamp },
    /// The subscription (or a trial without a card) ended at `ended_at`: the free tier; while
    /// the organization has more than it includes, it is read-only. Kept at least until
    /// `retained_until`.
    Ended { plan: String, ended_at: Timestamp, retained_until: Timestamp },
}

/// Whether an organization may change its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Full,
    /// Reads only, until a payment goes through.
    ReadOnly,
}

impl BillingState {
    /// The state `snapshot` (if any) means at `now` under `policy`.
    pub fn derive(snapshot: Option<&Snapshot>, policy: Policy, now: Timestamp) -> BillingState {
        let Some(s) = snapshot else { return BillingState::Free };
        let ended = |at: Timestamp| BillingState::Ended { plan: s.plan.clone(), ended_at: at, retained_until: at + policy.retention_days * DAY };
        match s.status {
            // The trial promised at sign-up, before Stripe made one (its job may have failed):
            // it ends when promised all the same.
            StripeStatus::Trialing if s.subscription_id.is_empty() && s.trial_end.is_some_and(|end| now >= end) => BillingState::Free,
            StripeStatus::Trialing => BillingState::Trialing { plan: s.plan.clone(), ends_at: s.trial_end, has_payment_method: s.has_payment_method },
            StripeStatus::Active => BillingState::Active {
                plan: s.plan.clone(),
                interval: s.interval,
                renews_at: s.period_end.filter(|_| !s.cancel_at_period_end),
                cancels_at: s.period_end.filter(|_| s.cancel_at_period_end),
                scheduled: s.scheduled.clone(),
            },
            StripeStatus::PastDue => {
                let since = s.unpaid_since.unwrap_or(s.as_of);
                let restricts_at = since + policy.grace_days * DAY;
                if now >= restricts_at {
                    BillingState::Restricted { plan: s.plan.clone(), unpaid_since: since }
                } else {
                    BillingState::PastDue { plan: s.plan.clone(), unpaid_since: since, restricts_at }
                }
            }
            // Stripe gave up retrying but keeps the subscription: read-only until paid.
            StripeStatus::Unpaid => BillingState::Restricted { plan: s.plan.clone(), unpaid_since: s.unpaid_since.unwrap_or(s.as_of) },
            // Ended with a payment still outstanding (cancelled while unpaid, or after Stripe's
            // last retry): read-only until it is paid, so cancelling is no way around paying.
            StripeStatus::Canceled if s.unpaid_since.is_some() => {
                BillingState::Restricted { plan: s.plan.clone(), unpaid_since: s.unpaid_since.unwrap_or(s.as_of) }
            }
            StripeStatus::Canceled | StripeStatus::IncompleteExpired | StripeStatus::Paused => ended(s.ended_at.unwrap_or(s.as_of)),
            // A first payment that hasn't gone through yet grants nothing paid.
            StripeStatus::Incomplete => BillingState::Free,
        }
    }

    /// The plan whose entitlements apply: the subscription's while it lasts, else the free tier.
    pub fn plan_key<'a>(&'a self, free: &'a str) -> &'a str {
        match self {
            BillingState::Trialing { plan, .. }
            | BillingState::Active { plan, .. }
            | BillingState::PastDue { plan, .. }
            | BillingState::Restricted { plan, .. } => plan,
            BillingState::Free | BillingState::Ended { .. } => free,
        }
    }

    pub fn access(&self) -> Access {
        match self {
            BillingState::Restricted { .. } => Access::ReadOnly,
            _ => Access::Full,
        }
    }

    /// A short stable name of the state (what the audit log records a change between):
    /// `trialing:team`, `active:business:year`, `active:team:month:canceling`, `past_due:team`.
    pub fn label(&self) -> String {
        match self {
            BillingState::Free => "free".into(),
            BillingState::Trialing { plan, .. } => format!("trialing:{plan}"),
            BillingState::Active { plan, interval, cancels_at, .. } => {
                format!("active:{plan}:{}{}", interval.as_str(), if cancels_at.is_some() { ":canceling" } else { "" })
            }
            BillingState::PastDue { plan, .. } => format!("past_due:{plan}"),
            BillingState::Restricted { plan, .. } => format!("restricted:{plan}"),
            BillingState::Ended { plan, .. } => format!("ended:{plan}"),
        }
    }

    /// Whether Owners and Admins should see "Fix payment".
    pub fn needs_payment(&self) -> bool {
        matches!(self, BillingState::PastDue { .. } | BillingState::Restricted { .. })
    }
}

/// What a person may ask billing for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Subscribe { plan: String, interval: Interval },
    ChangePlan { plan: String, interval: Interval },
    Cancel,
    Resume,
    UpdatePaymentMethod,
}

/// How a plan change takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeTiming {
    /// An upgrade, or monthly to annual: now, with proration.
    Now,
    /// A downgrade, or annual to monthly: at the period's end.
    AtPeriodEnd,
}

/// Why a command is refused, in words for the person who asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(message: &str) -> Result<T, Refusal> {
    Err(Refusal(message.to_string()))
}

/// Whether `command` may be carried out in `state`, and for a plan change when it takes effect.
/// `plans` is the catalogue; an unknown or free plan can't be subscribed to.
pub fn check(state: &BillingState, command: &Command, plans: &[Plan]) -> Result<Option<ChangeTiming>, Refusal> {
    let paid_plan = |key: &str| -> Result<&Plan, Refusal> {
        match plans.iter().find(|p| p.key == key) {
            Some(plan) if !plan.free => Ok(plan),
            Some(_) => refuse("The free plan needs no subscription: cancel the current one to return to it at the end of its period."),
            None => refuse("There is no such plan. Choose one of the plans shown."),
        }
    };
    match (state, command) {
        (BillingState::Free | BillingState::Ended { .. } | BillingState::Trialing { .. }, Command::Subscribe { plan, .. }) => {
            paid_plan(plan)?;
            Ok(None)
        }
        (BillingState::Active { .. } | BillingState::PastDue { .. } | BillingState::Restricted { .. }, Command::Subscribe { .. }) => {
            refuse("This organization already has a subscription. Change its plan instead.")
        }
        (BillingState::Active { plan: current, interval: current_interval, cancels_at, .. }, Command::ChangePlan { plan, interval }) => {
            if cancels_at.is_some() {
                return refuse("The subscription is set to end. Resume it first, then change the plan.");
            }
            if plan == current && interval == current_interval {
                return refuse("That is already this organization's plan.");
            }
            let to = paid_plan(plan)?;
            let from_rank = plans.iter().find(|p| &p.key == current).map_or(0, |p| p.rank);
            let timing = if to.rank > from_rank || (to.rank == from_rank && *interval == Interval::Year) {
                ChangeTiming::Now
            } else {
                ChangeTiming::AtPeriodEnd
            };
            Ok(Some(timing))
        }
        (BillingState::Trialing { .. }, Command::ChangePlan { .. }) => {
            refuse("During the trial, subscribe to the plan you want; the trial's remaining days carry over.")
        }
        (BillingState::PastDue { .. } | BillingState::Restricted { .. }, Command::ChangePlan { .. }) => {
            refuse("A payment is outstanding. Update the payment method first; then the plan can change.")
        }
        (BillingState::Free | BillingState::Ended { .. }, Command::ChangePlan { .. }) => {
            refuse("There is no subscription to change. Subscribe to a plan.")
        }
        (BillingState::Active { cancels_at: Some(_), .. }, Command::Cancel) => {
            refuse("The subscription is already set to end at the end of its period.")
        }
        (
            BillingState::Active { .. } | BillingState::Trialing { .. } | BillingState::PastDue { .. } | BillingState::Restricted { .. },
            Command::Cancel,
        ) => Ok(None),
        (BillingState::Free | BillingState::Ended { .. }, Command::Cancel) => refuse("There is no subscription to cancel."),
        (BillingState::Active { cancels_at: Some(_), .. }, Command::Resume) => Ok(None),
        (_, Command::Resume) => refuse("Only a subscription set to end can be resumed."),
        (BillingState::Free | BillingState::Ended { .. }, Command::UpdatePaymentMethod) => {
            refuse("There is no subscription to pay for. Subscribe to a plan; you'll add a card then.")
        }
        (_, Command::UpdatePaymentMethod) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_800_000_000;

    fn plans() -> Vec<Plan> {
        let plan = |key: &str, rank: u32, free: bool| Plan {
            key: key.into(),
            name: key.into(),
            rank,
            free,
            monthly_flat: if free { 0 } else { 1000 * u64::from(rank) },
            monthly_per_seat: 0,
            annual_flat: 0,
            annual_per_seat: 0,
            per_thousand_api_calls: 0,
            trial_days: if free { 0 } else { 14 },
            entitlements: Entitlements::default(),
        };
        vec![plan("free", 0, true), plan("team", 1, false), plan("business", 2, false)]
    }

    fn snapshot(status: StripeStatus, as_of: Timestamp) -> Snapshot {
        Snapshot {
            subscription_id: "sub_1".into(),
            status,
            plan: "team".into(),
            interval: Interval::Month,
            seats: 3,
            trial_end: Some(NOW + 5 * DAY),
            period_end: Some(NOW + 20 * DAY),
            cancel_at_period_end: false,
            ended_at: None,
            scheduled: None,
            unpaid_since: None,
            has_payment_method: true,
            as_of,
            source: format!("evt_{as_of}"),
        }
    }

    fn derive(s: &Snapshot, now: Timestamp) -> BillingState {
        BillingState::derive(Some(s), Policy::default(), now)
    }

    #[test]
    fn every_stripe_status_means_one_state() {
        let policy = Policy::default();
        for status in StripeStatus::ALL {
            let s = snapshot(status, NOW);
            let state = derive(&s, NOW);
            let expected = match status {
                StripeStatus::Trialing => matches!(state, BillingState::Trialing { .. }),
                StripeStatus::Active => matches!(state, BillingState::Active { cancels_at: None, .. }),
                StripeStatus::PastDue => matches!(state, BillingState::PastDue { .. }),
                StripeStatus::Unpaid => matches!(state, BillingState::Restricted { .. }),
                StripeStatus::Canceled | StripeStatus::IncompleteExpired | StripeStatus::Paused => {
                    matches!(&state, BillingState::Ended { retained_until, .. } if *retained_until == NOW + policy.retention_days * DAY)
                }
                StripeStatus::Incomplete => state == BillingState::Free,
            };
            assert!(expected, "{status:?} → {state:?}");
            assert_eq!(StripeStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(BillingState::derive(None, policy, NOW), BillingState::Free);
    }

    #[test]
    fn cancelling_with_a_payment_outstanding_keeps_the_organization_read_only_until_paid() {
        let unpaid = Snapshot { unpaid_since: Some(NOW - DAY), ended_at: Some(NOW), ..snapshot(StripeStatus::Canceled, NOW) };
        assert!(matches!(derive(&unpaid, NOW), BillingState::Restricted { .. }));
        let paid = Snapshot { unpaid_since: None, ..unpaid };
        assert!(matches!(derive(&paid, NOW), BillingState::Ended { .. }));
    }

    #[test]
    fn the_trial_promised_at_sign_up_ends_when_promised_even_if_stripe_never_made_one() {
        let promised = Snapshot { subscription_id: String::new(), trial_end: Some(NOW + DAY), ..snapshot(StripeStatus::Trialing, NOW) };
        assert!(matches!(derive(&promised, NOW), BillingState::Trialing { .. }));
        assert_eq!(derive(&promised, NOW + DAY), BillingState::Free);
        let real = Snapshot { subscription_id: "sub_1".into(), ..promised };
        assert!(matches!(derive(&real, NOW + DAY), BillingState::Trialing { .. }), "Stripe's own trial ends when Stripe says");
    }

    #[test]
    fn a_failed_payment_keeps_full_access_through_the_grace_period_then_reads_only() {
        let s = Snapshot { unpaid_since: Some(NOW), ..snapshot(StripeStatus::PastDue, NOW + 3600) };
        let grace = Policy::default().grace_days * DAY;
        let during = derive(&s, NOW + grace - 1);
        assert!(matches!(during, BillingState::PastDue { restricts_at, .. } if restricts_at == NOW + grace));
        assert_eq!(during.access(), Access::Full);
        assert!(during.needs_payment());
        let after = derive(&s, NOW + grace);
        assert_eq!(after, BillingState::Restricted { plan: "team".into(), unpaid_since: NOW });
        assert_eq!(after.access(), Access::ReadOnly);
        // Paid: full access again at once.
        let paid = snapshot(StripeStatus::Active, NOW + grace + 10);
        let merged = Snapshot::merge(Some(s), paid);
        assert_eq!(derive(&merged, NOW + grace + 11).access(), Access::Full);
    }

    #[test]
    fn a_cancelled_subscription_runs_to_its_period_end_and_can_be_resumed_until_then() {
        let s = Snapshot { cancel_at_period_end: true, ..snapshot(StripeStatus::Active, NOW) };
        let state = derive(&s, NOW);
        assert!(matches!(state, BillingState::Active { cancels_at: Some(at), renews_at: None, .. } if at == NOW + 20 * DAY));
        assert_eq!(check(&state, &Command::Resume, &plans()), Ok(None));
        assert!(check(&state, &Command::Cancel, &plans()).is_err());
        assert!(check(&state, &Command::ChangePlan { plan: "business".into(), interval: Interval::Month }, &plans()).is_err());
        let ended = derive(&Snapshot { status: StripeStatus::Canceled, ended_at: Some(NOW + 20 * DAY), ..s }, NOW + 21 * DAY);
        assert_eq!(ended.plan_key("free"), "free", "back on the free tier");
        assert_eq!(ended.access(), Access::Full);
    }

    #[test]
    fn upgrades_take_effect_now_and_downgrades_at_the_period_end() {
        let plans = plans();
        let active = derive(&snapshot(StripeStatus::Active, NOW), NOW);
        let change = |plan: &str, interval| check(&active, &Command::ChangePlan { plan: plan.into(), interval }, &plans);
        assert_eq!(change("business", Interval::Month), Ok(Some(ChangeTiming::Now)));
        assert_eq!(change("team", Interval::Year), Ok(Some(ChangeTiming::Now)), "monthly to annual: now");
        let business = derive(&Snapshot { plan: "business".into(), interval: Interval::Year, ..snapshot(StripeStatus::Active, NOW) }, NOW);
        let change_from_business = |plan: &str, interval| check(&business, &Command::ChangePlan { plan: plan.into(), interval }, &plans);
        assert_eq!(change_from_business("team", Interval::Year), Ok(Some(ChangeTiming::AtPeriodEnd)));
        assert_eq!(change_from_business("business", Interval::Month), Ok(Some(ChangeTiming::AtPeriodEnd)), "annual to monthly: at the end");
        assert!(change("team", Interval::Month).is_err(), "the same plan");
        assert!(change("free", Interval::Month).is_err(), "the free plan is not subscribed to");
        assert!(change("platinum", Interval::Month).is_err(), "unknown");
    }

    /// Every (state, command) pair has an answer; the refused ones are exactly these.
    #[test]
    fn each_command_is_allowed_or_refused_with_a_reason_in_each_state() {
        let plans = plans();
        let states = [
            BillingState::Free,
            derive(&snapshot(StripeStatus::Trialing, NOW), NOW),
            derive(&snapshot(StripeStatus::Active, NOW), NOW),
            derive(&Snapshot { cancel_at_period_end: true, ..snapshot(StripeStatus::Active, NOW) }, NOW),
            derive(&Snapshot { unpaid_since: Some(NOW), ..snapshot(StripeStatus::PastDue, NOW) }, NOW),
            derive(&snapshot(StripeStatus::Unpaid, NOW), NOW),
            derive(&snapshot(StripeStatus::Canceled, NOW), NOW),
        ];
        let commands = [
            Command::Subscribe { plan: "team".into(), interval: Interval::Month },
            Command::ChangePlan { plan: "business".into(), interval: Interval::Month },
            Command::Cancel,
            Command::Resume,
            Command::UpdatePaymentMethod,
        ];
        // Rows: states in the order above; columns: commands; true = allowed.
        let allowed = [
            [true, false, false, false, false], // free
            [true, false, true, false, true],   // trialing
            [false, true, true, false, true],   // active
            [false, false, false, true, true],  // active, set to end
            [false, false, true, false, true],  // past due
            [false, false, true, false, true],  // restricted
            [true, false, false, false, false], // ended
        ];
        for (state, row) in states.iter().zip(allowed) {
            for (command, expected) in commands.iter().zip(row) {
                let answer = check(state, command, &plans);
                assert_eq!(answer.is_ok(), expected, "{state:?} / {command:?}: {answer:?}");
                if let Err(Refusal(message)) = answer {
                    assert!(message.ends_with('.') && message.len() > 20, "{message}");
                }
            }
        }
    }

    /// Any order of any repeats of the same snapshots merges to the same one: the newest.
    #[test]
    fn merging_ignores_order_and_duplicates() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let statuses = [StripeStatus::Trialing, StripeStatus::Active, StripeStatus::PastDue, StripeStatus::Active, StripeStatus::Canceled];
        let events: Vec<Snapshot> = statuses.iter().enumerate().map(|(i, s)| snapshot(*s, NOW + i as i64 * 100)).collect();
        // Two snapshots of the same second: the tie is broken by source, whatever the order.
        let tie = Snapshot { source: "evt_a".into(), status: StripeStatus::PastDue, ..snapshot(StripeStatus::PastDue, NOW + 400) };
        let in_order = events.iter().chain([&tie]).cloned().fold(None, |acc, s| Some(Snapshot::merge(acc, s))).unwrap();
        for seed in 0u64..500 {
            // A deterministic shuffle with repeats, different for each seed.
            let mut sequence: Vec<(u64, Snapshot)> = events
                .iter()
                .chain([&tie])
                .flat_map(|s| std::iter::repeat_n(s.clone(), 1 + (seed as usize + s.as_of as usize) % 3))
                .enumerate()
                .map(|(i, s)| {
                    let mut h = DefaultHasher::new();
                    (seed, i).hash(&mut h);
                    (h.finish(), s)
                })
                .collect();
            sequence.sort_by_key(|(key, _)| *key);
            let merged = sequence.into_iter().map(|(_, s)| s).fold(None, |acc, s| Some(Snapshot::merge(acc, s))).unwrap();
            assert_eq!(merged, in_order, "seed {seed}");
            assert_eq!(derive(&merged, NOW + 1000), derive(&in_order, NOW + 1000));
        }
        // The latest second had two: the larger source ("evt_a" > "evt_1…") wins, in any order.
        assert_eq!((in_order.as_of, in_order.source.as_str()), (NOW + 400, "evt_a"));
    }

    fn catalogue() -> Catalogue {
        let mut plans = plans();
        for plan in plans.iter_mut().filter(|p| !p.free) {
            plan.annual_flat = plan.monthly_flat * 10;
        }
        Catalogue { currency: "usd".into(), trial_plan: "team".into(), plans }
    }

    #[test]
    fn each_paid_plan_has_a_price_per_component_and_interval_found_by_lookup_key() {
        let catalogue = catalogue();
        assert!(catalogue.free_plan().prices(Interval::Month).is_empty());
        let team = Plan { monthly_per_seat: 800, annual_per_seat: 8000, per_thousand_api_calls: 50, ..catalogue.plan("team").unwrap().clone() };
        let keys: Vec<String> = team.prices(Interval::Year).into_iter().map(|p| p.lookup_key).collect();
        assert_eq!(keys, ["team_year_flat", "team_year_seat", "team_year_api_calls"]);
        let per_call =
            |per_thousand: u64| Plan { per_thousand_api_calls: per_thousand, ..team.clone() }.prices(Interval::Month)[2].unit_amount_decimal.clone();
        assert_eq!((per_call(50).as_str(), per_call(1500).as_str(), per_call(2000).as_str(), per_call(7).as_str()), ("0.05", "1.5", "2", "0.007"));
    }

    #[test]
    fn money_and_dates_read_as_people_write_them() {
        assert_eq!(money(290_000, "usd"), "$2,900.00");
        assert_eq!(money(-321, "usd"), "−$3.21");
        assert_eq!(money(800, "eur"), "€8.00");
        assert_eq!(money(1250, "chf"), "12.50 CHF");
        assert_eq!(money(0, "usd"), "$0.00");
        assert_eq!(date(0), "Jan 1, 1970");
        assert_eq!(date(1_800_000_000), "Jan 15, 2027");
        assert_eq!(date(951_782_400), "Feb 29, 2000");
    }

    #[test]
    fn a_catalogue_is_checked_and_says_what_is_wrong_where() {
        assert_eq!(catalogue().validate(), Ok(()));
        type Break = fn(&mut Catalogue);
        let broken: [(&str, Break); 9] = [
            ("exactly one plan", |c| c.plans[1].free = true),
            ("appears twice", |c| c.plans[2].key = "team".into()),
            ("ranks order plans", |c| c.plans[2].rank = 1),
            ("is free", |c| c.plans[0].monthly_flat = 100),
            ("needs a monthly and an annual price", |c| c.plans[1].annual_flat = 0),
            ("more than twelve monthly", |c| c.plans[1].annual_flat = 13 * c.plans[1].monthly_flat),
            ("isn't one of the plans", |c| c.trial_plan = "gold".into()),
            ("lowercase ISO 4217", |c| c.currency = "USD".into()),
            ("lowercase letters", |c| c.plans[1].key = "Team Plan".into()),
        ];
        for (message, breaks) in broken {
            let mut c = catalogue();
            breaks(&mut c);
            let error = c.validate().unwrap_err();
            assert!(error.contains(message), "{message}: {error}");
        }
    }

    #[test]
    fn limits_say_what_the_plan_includes_and_how_to_get_more() {
        let five = Entitlements { seats: Some(5), projects: Some(1), ..Entitlements::default() };
        assert_eq!(five.room_for_seat(4), Ok(()));
        assert_eq!(five.room_for_seat(5).unwrap_err().0, "Your plan includes 5 seats; 5 are used. Upgrade or remove a member.");
        assert!(five.room_for_project(1).unwrap_err().0.starts_with("Your plan includes 1 project; 1 is in use."));
        let unlimited = Entitlements::default();
        assert_eq!(unlimited.room_for_seat(10_000), Ok(()));
        assert_eq!(unlimited.room_for_project(10_000), Ok(()));
    }

    #[test]
    fn after_a_subscription_ends_what_exceeds_the_free_plan_makes_the_organization_read_only() {
        let free = Entitlements { seats: Some(3), projects: Some(3), ..Entitlements::default() };
        assert_eq!(free.fits(3, 3), Ok(()), "at the limits is within them");
        let over = free.fits(5, 3).unwrap_err().0;
        assert!(over.contains(": 5 members (3 are included)."), "{over}");
        assert!(over.contains("subscribes again under Settings → Billing"), "{over}");
        let both = free.fits(4, 7).unwrap_err().0;
        assert!(both.contains("4 members (3 are included) and 7 projects (3 are included)"), "{both}");
        assert_eq!(Entitlements::default().fits(1_000, 1_000), Ok(()), "no limits, nothing over them");
    }

    #[test]
    fn a_feature_the_plan_lacks_is_refused_with_how_to_get_it() {
        let team = Entitlements { features: [Feature::ApiAccess].into_iter().collect(), ..Entitlements::default() };
        assert_eq!(team.require(Feature::ApiAccess), Ok(()));
        assert_eq!(
            team.require(Feature::SingleSignOn).unwrap_err().0,
            "This organization's plan doesn't include single sign-on. An owner or admin can upgrade under Settings → Billing."
        );
        assert!(Entitlements::unlimited().require(Feature::CustomRoles).is_ok());
    }

    #[test]
    fn entitlements_follow_the_state() {
        let mut c = catalogue();
        c.plans[1].entitlements.features.insert(Feature::Webhooks);
        c.plans[0].entitlements.seats = Some(3);
        let active = derive(&snapshot(StripeStatus::Active, NOW), NOW);
        assert!(c.entitlements(&active).has(Feature::Webhooks));
        let ended = derive(&snapshot(StripeStatus::Canceled, NOW), NOW);
        assert!(!c.entitlements(&ended).has(Feature::Webhooks));
        assert_eq!(c.entitlements(&ended).seats, Some(3));
        assert_eq!(c.entitlements(&BillingState::Free).seats, Some(3));
    }

    #[test]
    fn restricted_organizations_read_and_everyone_else_writes() {
        for status in StripeStatus::ALL {
            let s = Snapshot { unpaid_since: Some(NOW - 100 * DAY), ..snapshot(status, NOW) };
            let state = derive(&s, NOW);
            // Cancelled with the payment still outstanding stays read-only too.
            let read_only = matches!(status, StripeStatus::PastDue | StripeStatus::Unpaid | StripeStatus::Canceled);
            assert_eq!(state.access() == Access::ReadOnly, read_only, "{status:?}");
        }
    }
}
