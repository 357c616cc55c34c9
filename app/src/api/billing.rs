//! Billing: the server functions of the billing page (Owners and Admins; others get 403).

use leptos::prelude::*;
use tessera_domain::billing::{ChangePreview, ChangeTiming, Overview};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};
#[cfg(feature = "ssr")]
use tessera_backend::billing::manage;
#[cfg(feature = "ssr")]
use tessera_domain::billing::{Command, Interval};

#[cfg(feature = "ssr")]
fn interval(raw: &str) -> Result<Interval, AppError> {
    Interval::parse(raw).ok_or_else(|| AppError::Invalid(tessera_domain::input::FieldError::new("interval", "Choose monthly or annual billing.")))
}

#[server(endpoint = "billing_overview")]
pub async fn billing_overview(slug: String) -> Result<Overview, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(manage::overview(&org).await?)
    })
    .await
}

/// Starts a Stripe Checkout and returns its URL: with a plan, to subscribe to it (during the
/// trial: to choose it and add the card it will be charged to); without, to replace the card.
#[server(endpoint = "start_checkout")]
pub async fn start_checkout(slug: String, plan: Option<String>, interval: Option<String>) -> Result<String, AppError> {
    let (backend, org) = enter(&slug).await?;
    let command = match plan.filter(|p| !p.is_empty()) {
        Some(plan) => Command::Subscribe { plan, interval: self::interval(interval.as_deref().unwrap_or("month"))? },
        None => Command::UpdatePaymentMethod,
    };
    Ok(manage::checkout(&backend, &org, command).await?)
}

/// What changing to `plan` billed per `interval` would cost and when it would happen.
#[server(endpoint = "preview_plan_change")]
pub async fn preview_plan_change(slug: String, plan: String, interval: String) -> Result<ChangePreview, AppError> {
    let (_, org) = enter(&slug).await?;
    Ok(manage::preview(&org, &plan, self::interval(&interval)?).await?)
}

/// Changes the plan (an upgrade now, prorated as `proration_date`'s preview showed; a downgrade
/// at the period's end).
#[server(endpoint = "change_plan")]
pub async fn change_plan(slug: String, plan: String, interval: String, proration_date: Option<i64>) -> Result<ChangeTiming, AppError> {
    let (backend, org) = enter(&slug).await?;
    Ok(manage::change_plan(&backend, &org, &plan, self::interval(&interval)?, proration_date).await?)
}

/// Takes back a downgrade scheduled for the period's end.
#[server(endpoint = "keep_current_plan")]
pub async fn keep_current_plan(slug: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    Ok(manage::keep_plan(&backend, &org).await?)
}

#[server(endpoint = "cancel_subscription")]
pub async fn cancel_subscription(slug: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    Ok(manage::cancel(&backend, &org).await?)
}

#[server(endpoint = "resume_subscription")]
pub async fn resume_subscription(slug: String) -> Result<(), AppError> {
    let (backend, org) = enter(&slug).await?;
    Ok(manage::resume(&backend, &org).await?)
}
