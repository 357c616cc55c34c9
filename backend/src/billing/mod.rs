//! Billing: Stripe subscriptions that keep an organization's access in step with its payments.
//! The pure rules (plans, states, which changes are allowed) are in `tessera_domain::billing`;
//! this module reads the plan catalogue and, as it grows, talks to Stripe and applies its events.

pub mod catalogue;
pub mod signature;
