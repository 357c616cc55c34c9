//! The billing page (Owners and Admins): the plan and its state, what is used of it, the card
//! on file, every plan to move to (a change shows its cost before it is confirmed), invoices
//! with their PDFs, and cancelling or resuming.

use crate::api::{billing_overview, CancelSubscription, ChangePlan, KeepCurrentPlan, PreviewPlanChange, ResumeSubscription, StartCheckout};
use crate::components::form::{last_error, ConfirmDelete, FormAlert, Submit};
use crate::components::raw_text::PageTitle;
use crate::pages::not_found::ErrorPage;
use crate::pages::org::use_slug;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use tessera_domain::billing::{date, money, BillingState, ChangePreview, ChangeTiming, Interval, InvoiceSummary, Overview, Plan};

#[component]
pub fn BillingPage() -> impl IntoView {
    let slug = use_slug();
    let checkout = ServerAction::<StartCheckout>::new();
    let change = ServerAction::<ChangePlan>::new();
    let keep = ServerAction::<KeepCurrentPlan>::new();
    let cancel = ServerAction::<CancelSubscription>::new();
    let resume = ServerAction::<ResumeSubscription>::new();
    let versions = move || (change.version().get(), keep.version().get(), cancel.version().get(), resume.version().get());
    let overview = Resource::new(move || (slug.get(), versions()), |(slug, _)| billing_overview(slug));
    // Stripe's checkout page, once the server has made the session.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Some(Ok(url)) = checkout.value().get() {
            let _ = window().location().set_href(&url);
        }
    });
    let query = use_query_map();
    let back_from_checkout = move || query.read().get("checkout").is_some();
    view! {
        <PageTitle text="Billing" />
        <header class="page-header">
            <div>
                <h1>"Billing"</h1>
                <p class="muted">"The organization's plan, what it uses of it, its card and its invoices."</p>
            </div>
        </header>
        <Show when=back_from_checkout>
            <p class="alert alert-info" role="status">"Thanks! Stripe is confirming the details; this page shows them as soon as it has."</p>
        </Show>
        <FormAlert error=last_error(checkout) fields=&[] />
        <FormAlert error=last_error(change) fields=&[] />
        <Suspense fallback=|| view! { <p class="loading">"Loading billing…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Err(error) => view! { <ErrorPage error /> }.into_any(),
                    Ok(overview) if !overview.enabled => view! {
                        <section class="card" data-testid="billing-off">
                            <h2>"Billing is off"</h2>
                            <p>"This deployment doesn't sell plans: every organization is on the Free plan, and no plan limits apply."</p>
                        </section>
                    }
                    .into_any(),
                    Ok(overview) => {
                        let slug = slug.get_untracked();
                        view! {
                            <StatusCard overview=overview.clone() slug=slug.clone() checkout keep resume cancel />
                            <UsageCard overview=overview.clone() />
                            <PlansCard overview=overview.clone() slug=slug.clone() checkout change />
                            <InvoicesCard invoices=overview.invoices.clone() slug />
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn plan_name(overview: &Overview, key: &str) -> String {
    overview.plans.iter().find(|p| p.key == key).map_or_else(|| key.to_string(), |p| p.name.clone())
}

fn per(interval: Interval) -> &'static str {
    match interval {
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

/// The plan, its state in words, and what can be done about it now.
#[component]
fn StatusCard(
    overview: Overview,
    slug: String,
    checkout: ServerAction<StartCheckout>,
    keep: ServerAction<KeepCurrentPlan>,
    resume: ServerAction<ResumeSubscription>,
    cancel: ServerAction<CancelSubscription>,
) -> impl IntoView {
    let (badge, badge_class) = match &overview.state {
        BillingState::Free => ("Free", "badge badge-muted"),
        BillingState::Trialing { .. } => ("Trial", "badge badge-info"),
        BillingState::Active { cancels_at: Some(_), .. } => ("Ending", "badge badge-warning"),
        BillingState::Active { .. } => ("Active", "badge badge-success"),
        BillingState::PastDue { .. } => ("Payment failed", "badge badge-warning"),
        BillingState::Restricted { .. } => ("Read-only", "badge badge-danger"),
        BillingState::Ended { .. } => ("Ended", "badge badge-muted"),
    };
    let card = overview.payment_method.clone();
    let details = match &overview.state {
        BillingState::Free => "No subscription: the Free plan. Choose a plan below to subscribe.".to_string(),
        BillingState::Trialing { ends_at, .. } => match (ends_at, &card) {
            (Some(end), Some(_)) => format!("Trial until {}. The card on file is charged then.", date(*end)),
            (Some(end), None) => {
                format!("Trial until {}. Add a card by then to keep these features; without one the organization moves to the Free plan.", date(*end))
            }
            (None, _) => "In a trial.".into(),
        },
        BillingState::Active { interval, renews_at, cancels_at, scheduled, .. } => {
            let mut text = match (renews_at, cancels_at) {
                (_, Some(end)) => format!("Billed per {}. The subscription ends on {}; resume it to keep it.", per(*interval), date(*end)),
                (Some(renews), None) => format!("Billed per {}. Renews on {}.", per(*interval), date(*renews)),
                (None, None) => format!("Billed per {}.", per(*interval)),
            };
            if let (Some((plan, next)), Some(at)) = (scheduled, renews_at) {
                text.push_str(&format!(" Changes to {} (per {}) on {}.", plan_name(&overview, plan), per(*next), date(*at)));
            }
            text
        }
        BillingState::PastDue { restricts_at, .. } => {
            format!("The last payment failed. Stripe retries it; update the payment method before {} to keep full access.", date(*restricts_at))
        }
        BillingState::Restricted { .. } => {
            "The payment is overdue: the organization is read-only until it is paid. Update the payment method to pay it now.".into()
        }
        BillingState::Ended { ended_at, retained_until, .. } => {
            let free = overview.plans.iter().find(|p| p.free).map(|p| p.entitlements.clone()).unwrap_or_default();
            let over = free.fits(overview.seats_used, overview.projects_used).is_err();
            format!(
                "The subscription ended on {}. The Free plan applies, and nothing was deleted.{} Everything is kept at least until {}.",
                date(*ended_at),
                if over {
                    " The organization has more members or projects than the Free plan includes, so it is read-only: subscribe again, or remove members or projects down to its limits."
                } else {
                    ""
                },
                date(*retained_until)
            )
        }
    };
    let needs_payment = overview.state.needs_payment();
    let cancelable = matches!(
        overview.state,
        BillingState::Trialing { .. }
            | BillingState::Active { cancels_at: None, .. }
            | BillingState::PastDue { .. }
            | BillingState::Restricted { .. }
    );
    let resumable = matches!(overview.state, BillingState::Active { cancels_at: Some(_), .. });
    let scheduled = matches!(overview.state, BillingState::Active { scheduled: Some(_), .. });
    let has_subscription = !matches!(overview.state, BillingState::Free | BillingState::Ended { .. });
    let (s1, s2, s3, s4, s5) = (slug.clone(), slug.clone(), slug.clone(), slug.clone(), slug);
    view! {
        <section class="card" aria-labelledby="billing-plan" data-testid="billing-status">
            <h2 id="billing-plan">
                {overview.plan.name.clone()} " " <span class=badge_class data-testid="billing-badge">{badge}</span>
            </h2>
            <p data-testid="billing-details">{details}</p>
            {needs_payment.then(|| view! {
                <ActionForm action=checkout attr:class="inline-form">
                    <input type="hidden" name="slug" value=s1.clone() />
                    <Submit label="Fix payment" busy_label="Opening Stripe…" pending=checkout.pending() />
                </ActionForm>
            })}
            <p>
                <strong>"Card: "</strong>
                <span data-testid="billing-card">{card.clone().unwrap_or_else(|| "none on file".into())}</span>
            </p>
            {(has_subscription && !needs_payment).then(|| view! {
                <ActionForm action=checkout attr:class="inline-form">
                    <input type="hidden" name="slug" value=s2.clone() />
                    <button type="submit" class="btn" disabled=move || checkout.pending().get()>
                        {if card.is_some() { "Replace card" } else { "Add card" }}
                    </button>
                </ActionForm>
            })}
            {scheduled.then(|| view! {
                <ActionForm action=keep attr:class="inline-form">
                    <input type="hidden" name="slug" value=s3.clone() />
                    <Submit label="Keep the current plan" busy_label="Keeping…" pending=keep.pending() />
                </ActionForm>
            })}
            {resumable.then(|| view! {
                <ActionForm action=resume attr:class="inline-form">
                    <input type="hidden" name="slug" value=s4.clone() />
                    <Submit label="Resume subscription" busy_label="Resuming…" pending=resume.pending() />
                </ActionForm>
            })}
            {cancelable.then(|| {
                let slug = s5.clone();
                view! {
                    <ConfirmDelete summary="Cancel subscription" open=Signal::derive(move || cancel.value().get().is_some_and(|r| r.is_err()))>
                        <ActionForm action=cancel attr:class="form">
                            <p>"The subscription runs to the end of the period already paid for (a failed payment ends it now), then the organization moves to the Free plan. You can resume it until then."</p>
                            <FormAlert error=last_error(cancel) fields=&[] />
                            <input type="hidden" name="slug" value=slug />
                            <Submit label="Yes, cancel" busy_label="Cancelling…" pending=cancel.pending() danger=true />
                        </ActionForm>
                    </ConfirmDelete>
                }
            })}
        </section>
    }
}

fn limit(used: u64, included: Option<u64>, what: &str) -> String {
    match included {
        Some(n) => format!("{used} of {n} {what}"),
        None => format!("{used} {what} (no limit)"),
    }
}

#[component]
fn UsageCard(overview: Overview) -> impl IntoView {
    let e = &overview.plan.entitlements;
    let rows = [
        ("Seats", limit(overview.seats_used.into(), e.seats.map(u64::from), "members")),
        ("Projects", limit(overview.projects_used.into(), e.projects.map(u64::from), "projects")),
        ("API calls this month", limit(overview.api_calls_this_month, e.api_calls_per_month, "calls")),
    ];
    view! {
        <section class="card" aria-labelledby="billing-usage" data-testid="billing-usage">
            <h2 id="billing-usage">"Usage"</h2>
            <dl class="facts">
                {rows.into_iter().map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> }).collect_view()}
            </dl>
        </section>
    }
}

/// Every paid plan with its prices; what choosing one does depends on the state.
#[component]
fn PlansCard(overview: Overview, slug: String, checkout: ServerAction<StartCheckout>, change: ServerAction<ChangePlan>) -> impl IntoView {
    let preview = ServerAction::<PreviewPlanChange>::new();
    let current: Option<(String, Interval)> = match &overview.state {
        BillingState::Active { plan, interval, .. } => Some((plan.clone(), *interval)),
        _ => None,
    };
    let subscribing = matches!(overview.state, BillingState::Free | BillingState::Ended { .. } | BillingState::Trialing { .. });
    let changing = matches!(overview.state, BillingState::Active { cancels_at: None, .. });
    let currency = overview.currency.clone();
    let seats = overview.seats_used;
    let plans: Vec<Plan> = overview.plans.iter().filter(|p| !p.free).cloned().collect();
    let verb = if matches!(overview.state, BillingState::Trialing { .. }) { "Choose" } else { "Subscribe" };
    let slug_for_preview = slug.clone();
    view! {
        <section class="card" aria-labelledby="billing-plans" data-testid="billing-plans">
            <h2 id="billing-plans">"Plans"</h2>
            <div class="plan-grid">
                {plans
                    .into_iter()
                    .map(|plan| {
                        let monthly = plan.price_for(Interval::Month, seats);
                        let yearly = plan.price_for(Interval::Year, seats);
                        let saving = (12 * monthly - yearly).max(0);
                        let options = [Interval::Month, Interval::Year]
                            .into_iter()
                            .filter(|i| current.as_ref() != Some(&(plan.key.clone(), *i)))
                            .map(|interval| {
                                let (slug, key) = (slug.clone(), plan.key.clone());
                                let label = format!("{verb} {} {}", plan.name, if interval == Interval::Month { "monthly" } else { "annually" });
                                if subscribing {
                                    view! {
                                        <ActionForm action=checkout attr:class="inline-form">
                                            <input type="hidden" name="slug" value=slug />
                                            <input type="hidden" name="plan" value=key />
                                            <input type="hidden" name="interval" value=interval.as_str() />
                                            <button type="submit" class="btn btn-primary" disabled=move || checkout.pending().get()>{label}</button>
                                        </ActionForm>
                                    }
                                    .into_any()
                                } else if changing {
                                    let label = format!("Switch to {} {}", plan.name, if interval == Interval::Month { "monthly" } else { "annually" });
                                    view! {
                                        <ActionForm action=preview attr:class="inline-form">
                                            <input type="hidden" name="slug" value=slug />
                                            <input type="hidden" name="plan" value=key />
                                            <input type="hidden" name="interval" value=interval.as_str() />
                                            <button type="submit" class="btn" disabled=move || preview.pending().get()>{label}</button>
                                        </ActionForm>
                                    }
                                    .into_any()
                                } else {
                                    ().into_any()
                                }
                            })
                            .collect_view();
                        let is_current = current.as_ref().is_some_and(|(p, _)| *p == plan.key);
                        view! {
                            <article class="plan" class:plan-current=is_current data-testid="plan">
                                <h3>{plan.name.clone()} {is_current.then(|| view! { " " <span class="badge badge-success">"Current"</span> })}</h3>
                                <p>{format!("{} a month for {seats} {}", money(monthly, &currency), if seats == 1 { "member" } else { "members" })}</p>
                                <p class="muted">{format!("or {} a year (save {})", money(yearly, &currency), money(saving, &currency))}</p>
                                <p class="muted">{format!("API calls: {} per thousand", money(plan.per_thousand_api_calls as i64, &currency))}</p>
                                {options}
                            </article>
                        }
                    })
                    .collect_view()}
            </div>
            <FormAlert error=last_error(preview) fields=&["plan", "interval"] />
            {move || preview.value().get().and_then(Result::ok).map(|p| view! { <PreviewCard preview=p slug=slug_for_preview.clone() change /> })}
        </section>
    }
}

/// What a plan change costs, with the button that makes it.
#[component]
fn PreviewCard(preview: ChangePreview, slug: String, change: ServerAction<ChangePlan>) -> impl IntoView {
    let when = match preview.timing {
        ChangeTiming::Now => format!("Takes effect now. Charged today: {}.", money(preview.due_now, &preview.currency)),
        ChangeTiming::AtPeriodEnd => {
            format!("Takes effect on {}, at the end of the period already paid for. Nothing is charged now.", date(preview.effective_at))
        }
    };
    let after = format!("From then: {} per {} before usage.", money(preview.per_period, &preview.currency), per(preview.interval));
    let currency = preview.currency.clone();
    view! {
        <div class="card preview" role="region" aria-label="Plan change preview" data-testid="plan-preview">
            <p><strong>{when}</strong></p>
            <p>{after}</p>
            {(!preview.lines.is_empty()).then(|| view! {
                <table class="table">
                    <thead><tr><th scope="col">"Line"</th><th scope="col">"Amount"</th></tr></thead>
                    <tbody>
                        {preview.lines.iter().map(|l| view! { <tr><td>{l.description.clone()}</td><td>{money(l.amount, &currency)}</td></tr> }).collect_view()}
                    </tbody>
                </table>
            })}
            <ActionForm action=change attr:class="inline-form">
                <input type="hidden" name="slug" value=slug />
                <input type="hidden" name="plan" value=preview.plan.clone() />
                <input type="hidden" name="interval" value=preview.interval.as_str() />
                <input type="hidden" name="proration_date" value=preview.proration_date.to_string() />
                <Submit label="Confirm the change" busy_label="Changing…" pending=change.pending() />
            </ActionForm>
        </div>
    }
}

#[component]
fn InvoicesCard(invoices: Vec<InvoiceSummary>, slug: String) -> impl IntoView {
    let status = |s: &str| match s {
        "paid" => ("Paid", "badge badge-success"),
        "open" => ("Due", "badge badge-warning"),
        "void" => ("Void", "badge badge-muted"),
        "uncollectible" => ("Uncollectible", "badge badge-danger"),
        _ => ("Draft", "badge badge-muted"),
    };
    view! {
        <section class="card" aria-labelledby="billing-invoices">
            <h2 id="billing-invoices">"Invoices"</h2>
            {if invoices.is_empty() {
                view! { <p class="muted">"No invoices yet."</p> }.into_any()
            } else {
                view! {
                    <table class="table" data-testid="invoices">
                        <thead>
                            <tr>
                                <th scope="col">"Number"</th>
                                <th scope="col">"Date"</th>
                                <th scope="col">"Period"</th>
                                <th scope="col">"Amount"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"PDF"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {invoices
                                .into_iter()
                                .map(|i| {
                                    let (label, class) = status(&i.status);
                                    let number = i.number.clone().unwrap_or_else(|| "(draft)".into());
                                    let href = format!("/t/{slug}/settings/billing/invoices/{}.pdf", i.id);
                                    view! {
                                        <tr data-testid="invoice-row">
                                            <td>{number.clone()}</td>
                                            <td>{date(i.created)}</td>
                                            <td>{format!("{} – {}", date(i.period_start), date(i.period_end))}</td>
                                            <td>{money(i.total, &i.currency)}</td>
                                            <td><span class=class>{label}</span></td>
                                            <td><a href=href download=format!("invoice-{number}.pdf") rel="external">"Download"<span class="visually-hidden">{format!(" invoice {number}")}</span></a></td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                .into_any()
            }}
        </section>
    }
}
