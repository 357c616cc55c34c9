//! The Stripe client: async-stripe's generated requests, pointed at Stripe or, in tests and
//! development, at the project's stand-in (the same code path, another base URL).

use crate::error::{Error, Result};
use stripe_client_core::{IdempotencyKey, RequestStrategy, StripeRequest};
use tessera_domain::AppError;

pub use stripe::StripeError;

/// A configured Stripe client.
#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
    test_mode: bool,
}

impl StripeApi {
    /// `secret_key`: `sk_test_…` or `sk_live_…`; `api_base`: another server than Stripe's (the
    /// stand-in), e.g. `http://127.0.0.1:12111/`.
    pub fn new(secret_key: &str, api_base: Option<&str>) -> Result<Self> {
        let test_mode = secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_");
        if !test_mode && !secret_key.starts_with("sk_live_") && !secret_key.starts_with("rk_live_") {
            return Err(Error::Internal("the Stripe secret key must start with sk_test_, sk_live_, rk_test_ or rk_live_".into()));
        }
        let mut builder = stripe::ClientBuilder::new(secret_key)
            .app_info("Tessera", Some(env!("CARGO_PKG_VERSION").to_string()), None)
            .timeout(std::time::Duration::from_secs(20));
        if let Some(base) = api_base {
            // async-stripe appends `v1/…` to the base, which must end in a slash.
            let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
            builder = builder.url(base);
        }
        let client = builder.build().map_err(|e| Error::Internal(format!("Stripe client: {e}")))?;
        Ok(Self { client, test_mode })
    }

    /// Whether the key is a test-mode key (test clocks and test cards work only then).
    pub fn test_mode(&self) -> bool {
        self.test_mode
    }

    /// Sends `request` once.
    pub async fn send<R: StripeRequest>(&self, request: R) -> Result<R::Output>
    where
        R::Output: miniserde::Deserialize,
    {
        request.customize().send(&self.client).await.map_err(stripe_error)
    }

    /// Sends `request` with an idempotency key: a retry after a lost answer (a job attempt that
    /// died) gets the first answer back instead of doing it twice.
    pub async fn send_once<R: StripeRequest>(&self, key: &str, request: R) -> Result<R::Output>
    where
        R::Output: miniserde::Deserialize,
    {
        let key = IdempotencyKey::new(key).map_err(|e| Error::Internal(format!("idempotency key {key:?}: {e}")))?;
        request.customize().request_strategy(RequestStrategy::Idempotent(key)).send(&self.client).await.map_err(stripe_error)
    }
}

/// Whether Stripe answered that the object doesn't exist.
pub fn is_missing(error: &Error) -> bool {
    matches!(error, Error::Stripe { status: 404, .. })
}

fn stripe_error(error: StripeError) -> Error {
    match error {
        StripeError::Stripe(api, status) => Error::Stripe {
            status,
            code: api.code.map(|c| c.as_str().to_string()),
            param: api.param,
            message: api.message.unwrap_or_else(|| "Stripe refused the request".into()),
        },
        other => Error::Unavailable(format!("Stripe: {other}")),
    }
}

/// What a person sees when Stripe can't be reached: nothing changed, try again.
pub fn unreachable() -> AppError {
    AppError::Unavailable("Payments can't be reached just now. Nothing was changed; please try again in a minute.".into())
}
