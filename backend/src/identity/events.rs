//! Writing the account-level audit trail (`security_events`).

use crate::ctx::RequestMeta;
use crate::error::Result;
use sqlx::PgConnection;
use uuid::Uuid;

catalogue! {
    /// An account-level event (`security_events`): its stored name and the words the account's
    /// "Recent activity" shows for it.
    pub enum Event {
        LoginSucceeded => "login.succeeded", "Signed in with password";
        LoginFailed => "login.failed", "Wrong password";
        LoginLocked => "login.locked", "Sign-in locked after repeated failures";
        /// The right password for an account whose address isn't confirmed (refused like a wrong
        /// one; a fresh confirmation link went to the address).
        LoginUnconfirmed => "login.unconfirmed", "Sign-in refused until the address is confirmed (a new link was emailed)";
        MagicLinkRequested => "magic_link.requested", "Sign-in link requested";
        MagicLinkUsed => "magic_link.used", "Signed in with an emailed link";
        LinkRefused => "link.refused", "An emailed link was refused (used, expired or opened elsewhere)";
        EmailVerified => "email.verified", "Email address confirmed";
        /// Someone tried to create an account with the address (its owner was emailed).
        SignUpForExistingAccount => "signup.existing_account", "Someone tried to create an account with your address";
        /// The inbox's owner said they didn't create the account; its registrant was evicted.
        RegistrationDisowned => "signup.disowned", "Address confirmed; the account's earlier registration was cancelled";
        PasswordResetRequested => "password.reset_requested", "Password reset requested";
        PasswordReset => "password.reset", "Password changed by reset";
        MfaEnabled => "mfa.enabled", "Two-factor authentication turned on";
        MfaDisabled => "mfa.disabled", "Two-factor authentication turned off";
        MfaSucceeded => "mfa.succeeded", "Two-factor code accepted";
        MfaFailed => "mfa.failed", "Wrong two-factor code";
        MfaLocked => "mfa.locked", "Two-factor step locked after repeated failures";
        MfaRecoveryCodeUsed => "mfa.recovery_code_used", "Recovery code used";
        MfaRecoveryCodesRegenerated => "mfa.recovery_codes_regenerated", "New recovery codes made";
        ReauthSucceeded => "reauth.succeeded", "Confirmed it was you";
        ReauthFailed => "reauth.failed", "Failed to confirm it was you";
        TokenIssued => "token.issued", "API sign-in";
        TokenRefreshReused => "token.refresh_reused", "A reused API token ended an API sign-in";
        TokenRevoked => "token.revoked", "API sign-out";
        /// Signed in with an outside identity provider (OpenID Connect).
        ExternalSignIn => "oidc.signed_in", "Signed in with a connected account";
        ExternalLinked => "oidc.linked", "Account connected";
        ExternalUnlinked => "oidc.unlinked", "Account disconnected";
        /// The provider vouched for an address it hasn't verified, or the account is taken.
        ExternalRefused => "oidc.refused", "Connected-account sign-in refused";
    }
}

/// The words for a stored event name (names of events since retired read as a generic one).
pub fn describe(name: &str) -> &'static str {
    Event::from_name(name).map_or("Other account event", Event::description)
}

/// Records one event, in the caller's transaction when there is one to share.
pub(crate) async fn record(conn: &mut PgConnection, event: Event, user_id: Option<Uuid>, email: Option<&str>, meta: &RequestMeta) -> Result<()> {
    sqlx::query("INSERT INTO security_events (user_id, email, event, ip, user_agent, request_id) VALUES ($1, $2, $3, $4::inet, $5, $6)")
        .bind(user_id)
        .bind(email)
        .bind(event.name())
        .bind(meta.ip.map(|ip| ip.to_string()))
        .bind(meta.user_agent.as_deref())
        .bind(meta.request_id.as_deref())
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest events of one account, newest first ("Recent activity" on the security page).
pub async fn recent(pool: &sqlx::PgPool, user_id: Uuid, limit: i64) -> Result<Vec<tessera_domain::dto::AccountEvent>> {
    let mut tx = crate::db::begin(pool, true, &[]).await?;
    let rows: Vec<(String, Option<String>, Option<String>, time::OffsetDateTime)> =
        sqlx::query_as("SELECT event, host(ip), user_agent, occurred_at FROM security_events WHERE user_id = $1 ORDER BY occurred_at DESC LIMIT $2")
            .bind(user_id)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(event, ip, user_agent, at)| tessera_domain::dto::AccountEvent {
            description: describe(&event).to_string(),
            event,
            ip,
            user_agent,
            occurred_at: crate::members::rfc3339(at),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_name_and_words() {
        let mut names: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Event::ALL.len(), "two events share a stored name");
        assert_eq!(describe("mfa.enabled"), "Two-factor authentication turned on");
        assert_eq!(describe("retired.event"), "Other account event");
    }
}
