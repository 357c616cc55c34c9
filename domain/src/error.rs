//! The one error type that crosses the wire. Server functions and the REST API return it; its
//! status code is decided here so a user's mistake is never reported as a server failure.

use crate::input::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// A field the person can fix.
    #[error("{0}")]
    Invalid(FieldError),
    /// The request is well-formed but clashes with existing data (a taken slug, say).
    #[error("{0}")]
    Conflict(FieldError),
    #[error("Log in to continue.")]
    Unauthenticated,
    /// An API credential (token or key) that is unknown, expired or revoked; says which.
    #[error("{0}")]
    BadCredentials(String),
    #[error("{0}")]
    Forbidden(String),
    /// A sensitive action needs the person to prove again who they are (password or code).
    #[error("For your security, confirm it's you before doing this.")]
    ReauthRequired,
    /// The organization requires two-factor authentication and this sign-in has none yet.
    #[error("{0}")]
    MfaRequired(String),
    /// The organization requires its single sign-on and this sign-in didn't come through it.
    #[error("{0}")]
    SsoRequired(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The organization's subscription is unpaid past its grace period (or its plan doesn't
    /// include this): the message says how to fix it.
    #[error("{0}")]
    PaymentRequired(String),
    /// Too many attempts in a short time; the message says when to try again.
    #[error("{0}")]
    RateLimited(String),
    /// This organization's data can't be reached right now (its database is down or slow, it is
    /// being moved or upgraded). Other organizations are unaffected; trying again later helps.
    #[error("{0}")]
    Unavailable(String),
    /// Something broke on our side; the message carries a reference, never internals.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid(_) => 422,
            AppError::Conflict(_) => 409,
            AppError::Unauthenticated | AppError::BadCredentials(_) => 401,
            AppError::Forbidden(_) | AppError::ReauthRequired | AppError::MfaRequired(_) | AppError::SsoRequired(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::BadRequest(_) => 400,
            AppError::PaymentRequired(_) => 402,
            AppError::RateLimited(_) => 429,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) => 500,
        }
    }

    /// The form field this error belongs to, if any, so forms can show it in place.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid(e) | AppError::Conflict(e) => Some(&e.field),
            _ => None,
        }
    }

    pub fn not_found() -> Self {
        AppError::NotFound("We couldn't find that page. It may have been removed, or you may not have access.".into())
    }

    pub fn forbidden() -> Self {
        AppError::Forbidden("Your role in this organization doesn't allow that. Ask an admin or owner.".into())
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::Invalid(e)
    }
}

// Lets `AppError` be the error type of server functions: transport and argument failures
// arrive as `ServerFnErrorErr` and are folded into the same enum the UI already renders.
impl server_fn::error::FromServerFnError for AppError {
    type Encoder = server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: server_fn::error::ServerFnErrorErr) -> Self {
        use server_fn::error::ServerFnErrorErr as E;
        match value {
            E::Args(m) | E::MissingArg(m) => {
                AppError::BadRequest(format!("The form was incomplete or malformed ({m}). Reload the page and try again."))
            }
            E::Request(_) | E::Response(_) => AppError::Internal("We couldn't reach the server. Check your connection and try again.".into()),
            other => AppError::Internal(other.to_string()),
        }
    }
}
