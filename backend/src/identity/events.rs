//! Writing the account-level audit trail (`security_events`).

use crate::ctx::RequestMeta;
use crate::error::Result;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    LoginSucceeded,
    LoginFailed,
    LoginLocked,
    MagicLinkRequested,
    MagicLinkUsed,
    LinkRefused,
    EmailVerified,
    /// Someone tried to create an account with the address (its owner was emailed).
    SignUpForExistingAccount,
    /// The inbox's owner said they didn't create the account; its registrant was evicted.
    RegistrationDisowned,
    PasswordResetRequested,
    PasswordReset,
    MfaEnabled,
    MfaDisabled,
    MfaSucceeded,
    MfaFailed,
    MfaLocked,
    MfaRecoveryCodeUsed,
    MfaRecoveryCodesRegenerated,
    ReauthSucceeded,
    ReauthFailed,
    TokenIssued,
    TokenRefreshReused,
    TokenRevoked,
    /// Signed in with an outside identity provider (OpenID Connect).
    ExternalSignIn,
    ExternalLinked,
    ExternalUnlinked,
    /// The provider vouched for an address it hasn't verified, or the account is taken.
    ExternalRefused,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::LoginSucceeded => "login.succeeded",
            Event::LoginFailed => "login.failed",
            Event::LoginLocked => "login.locked",
            Event::MagicLinkRequested => "magic_link.requested",
            Event::MagicLinkUsed => "magic_link.used",
            Event::LinkRefused => "link.refused",
            Event::EmailVerified => "email.verified",
            Event::SignUpForExistingAccount => "signup.existing_account",
            Event::RegistrationDisowned => "signup.disowned",
            Event::PasswordResetRequested => "password.reset_requested",
            Event::PasswordReset => "password.reset",
            Event::MfaEnabled => "mfa.enabled",
            Event::MfaDisabled => "mfa.disabled",
            Event::MfaSucceeded => "mfa.succeeded",
            Event::MfaFailed => "mfa.failed",
            Event::MfaLocked => "mfa.locked",
            Event::MfaRecoveryCodeUsed => "mfa.recovery_code_used",
            Event::MfaRecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
            Event::ReauthSucceeded => "reauth.succeeded",
            Event::ReauthFailed => "reauth.failed",
            Event::TokenIssued => "token.issued",
            Event::TokenRefreshReused => "token.refresh_reused",
            Event::TokenRevoked => "token.revoked",
            Event::ExternalSignIn => "oidc.signed_in",
            Event::ExternalLinked => "oidc.linked",
            Event::ExternalUnlinked => "oidc.unlinked",
            Event::ExternalRefused => "oidc.refused",
        }
    }
}

/// Records one event, in the caller's transaction when there is one to share.
pub(crate) async fn record(conn: &mut PgConnection, event: Event, user_id: Option<Uuid>, email: Option<&str>, meta: &RequestMeta) -> Result<()> {
    sqlx::query("INSERT INTO security_events (user_id, email, event, ip, user_agent, request_id) VALUES ($1, $2, $3, $4::inet, $5, $6)")
        .bind(user_id)
        .bind(email)
        .bind(event.as_str())
        .bind(meta.ip.map(|ip| ip.to_string()))
        .bind(meta.user_agent.as_deref())
        .bind(meta.request_id.as_deref())
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest events of one account, newest first ("Recent activity" on the security page).
pub async fn recent(pool: &sqlx::PgPool, user_id: Uuid, limit: i64) -> Result<Vec<tessera_domain::dto::AccountEvent>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
    let rows: Vec<(String, Option<String>, Option<String>, time::OffsetDateTime)> =
        sqlx::query_as("SELECT event, host(ip), user_agent, occurred_at FROM security_events WHERE user_id = $1 ORDER BY occurred_at DESC LIMIT $2")
            .bind(user_id)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(event, ip, user_agent, at)| tessera_domain::dto::AccountEvent { event, ip, user_agent, occurred_at: crate::members::rfc3339(at) })
        .collect())
}
