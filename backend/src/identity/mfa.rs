//! Two-factor authentication: an authenticator app (TOTP, RFC 6238) and recovery codes.
//!
//! A code is accepted once only: the step it belongs to is remembered, so a code seen over a
//! shoulder (or replayed by a phishing proxy) is useless a second later. Failures count against
//! the account like password failures, so six digits can't be guessed.

use super::events::{self, Event};
use super::throttle::{self, Limit};
use super::Identity;
use crate::ctx::RequestMeta;
use crate::error::Result;
use crate::secrets::KeyPurpose;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use tessera_domain::dto::{MfaEnrolment, MfaStatus};
use tessera_domain::input::FieldError;
use tessera_domain::AppError;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

/// Wrong codes per account before further codes are refused for the rest of the window.
pub const CODE_FAILURES_PER_USER: Limit = Limit { max: 5, window_minutes: 15 };
pub const RECOVERY_CODE_COUNT: usize = 10;
const STEP_SECONDS: u64 = 30;
const ISSUER: &str = "Tessera";

/// Why a code is being checked (recorded in the account's audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    SignIn,
    Reauthenticate,
}

/// Which second factor was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    Totp,
    RecoveryCode { left: i64 },
}

pub const WRONG_CODE: &str = "That code didn't work. Enter the 6-digit code your authenticator app shows now, or one of your recovery codes.";

fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP> {
    // An account name may not contain ':' in an otpauth URL; emails don't.
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret, Some(ISSUER.into()), account.replace(':', ""))
        .map_err(|e| crate::Error::Internal(format!("TOTP set-up: {e}")))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a person typed, reduced to its letters and digits ("1234 56", "abcd-efgh-ij").
fn normalize(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn digest(code: &str) -> Vec<u8> {
    Sha256::digest(normalize(code).as_bytes()).to_vec()
}

/// Ten characters from an alphabet without look-alikes, shown as `xxxxx-xxxxx` (~50 bits).
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    let chars: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

fn qr_svg(url: &str) -> Result<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| crate::Error::Internal(format!("QR code: {e}")))?;
    Ok(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
}

impl Identity {
    pub async fn mfa_status(&self, user_id: Uuid) -> Result<MfaStatus> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT to_char(confirmed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM user_totp
              WHERE user_id = $1 AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        let has_password: bool = sqlx::query_scalar("SELECT COALESCE(account_password_hash() LIKE '$%', false)").fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(MfaStatus { enabled_since: row.map(|r| r.0), recovery_codes_left: left, has_password })
    }

    pub async fn mfa_enabled(&self, user_id: Uuid) -> Result<bool> {
        Ok(self.mfa_status(user_id).await?.enabled_since.is_some())
    }

    /// Starts enrolment: a new secret, waiting for the first code. Starting again replaces a
    /// secret that was never confirmed (a QR code scanned into the wrong app, say).
    pub async fn begin_mfa_enrolment(&self, user_id: Uuid) -> Result<MfaEnrolment> {
        let user = self.user(user_id).await?.ok_or(AppError::Unauthenticated)?;
        if !user.email_verified {
            return Err(AppError::Forbidden(
                "Confirm your email address first (use the link we sent you), then set up two-factor authentication.".into(),
            )
            .into());
        }
        let mut secret = vec![0u8; 20];
        rand::thread_rng().fill_bytes(&mut secret);
        let sealed = self.secret.seal(KeyPurpose::TotpSeal, &secret);
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let updated = sqlx::query(
            "INSERT INTO user_totp (user_id, secret_sealed) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, created_at = now(), last_step = 0
              WHERE user_totp.confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(&sealed)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(AppError::Conflict(FieldError::new(
                "code",
                "Two-factor authentication is already on. Turn it off first to move it to another app.",
            ))
            .into());
        }
        tx.commit().await?;
        let totp = totp(secret, &user.email)?;
        let url = totp.get_url();
        Ok(MfaEnrolment { secret: totp.get_secret_base32(), qr_svg: qr_svg(&url)?, otpauth_url: url })
    }

    /// Finishes enrolment with a first code from the app; hands back the recovery codes, which
    /// are shown this once and stored only hashed.
    ///
    /// Other browsers and API sign-ins were let in on a password alone, and turning two-factor
    /// on is what someone does who fears that password is known: they are signed out (this
    /// browser, `this_session`, stays).
    pub async fn confirm_mfa_enrolment(&self, user_id: Uuid, code: &str, this_session: Option<&str>, meta: &RequestMeta) -> Result<Vec<String>> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let pending: Option<(Vec<u8>, Option<time::OffsetDateTime>)> =
            sqlx::query_as("SELECT secret_sealed, confirmed_at FROM user_totp WHERE user_id = $1 FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let sealed = match pending {
            Some((sealed, None)) => sealed,
            Some((_, Some(_))) => return Err(AppError::Conflict(FieldError::new("code", "Two-factor authentication is already on.")).into()),
            None => return Err(AppError::BadRequest("Start the set-up again: scan the QR code, then enter the code.".into()).into()),
        };
        let Some(step) = self.matching_step(&sealed, code, 0)? else {
            return Err(AppError::Invalid(FieldError::new(
                "code",
                "That code didn't match. Check the app shows Tessera for this account and enter its current 6-digit code.",
            ))
            .into());
        };
        sqlx::query("UPDATE user_totp SET confirmed_at = now(), last_step = $2 WHERE user_id = $1")
            .bind(user_id)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        let codes = replace_recovery_codes(&mut tx, user_id).await?;
        crate::sessions::sign_out_elsewhere(&mut tx, user_id, this_session, "user").await?;
        events::record(&mut tx, Event::MfaEnabled, Some(user_id), None, meta).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// The step of the 30-second window `code` belongs to, if it is right and newer than
    /// `after` (one step of clock drift either way is allowed).
    fn matching_step(&self, sealed: &[u8], code: &str, after: i64) -> Result<Option<i64>> {
        let code = normalize(code);
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let secret = self.secret.open(KeyPurpose::TotpSeal, sealed).map_err(|e| crate::Error::Internal(e.to_string()))?;
        let totp = totp(secret, "user")?;
        let now_step = (now_secs() / STEP_SECONDS) as i64;
        Ok((now_step - 1..=now_step + 1)
            .filter(|step| *step > after)
            .find(|step| constant_time_eq(totp.generate(*step as u64 * STEP_SECONDS).as_bytes(), code.as_bytes())))
    }

    /// Checks a second factor: an authenticator code, or else a recovery code (used up).
    pub async fn check_second_factor(&self, user_id: Uuid, code: &str, purpose: CodePurpose, meta: &RequestMeta) -> Result<Factor> {
        let bucket = format!("mfa:user:{user_id}");
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let count = throttle::record(&mut tx, &bucket, CODE_FAILURES_PER_USER).await?;
        if count.over(CODE_FAILURES_PER_USER) {
            events::record(&mut tx, Event::MfaLocked, Some(user_id), None, meta).await?;
            tx.commit().await?;
            return Err(throttle::too_many(count.seconds_left).into());
        }
        let totp: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT secret_sealed, last_step FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((sealed, last_step)) = totp else {
            tx.commit().await?;
            return Err(AppError::BadRequest("Two-factor authentication isn't on for this account.".into()).into());
        };
        let factor = if let Some(step) = self.matching_step(&sealed, code, last_step)? {
            sqlx::query("UPDATE user_totp SET last_step = $2 WHERE user_id = $1").bind(user_id).bind(step).execute(&mut *tx).await?;
            Some(Factor::Totp)
        } else {
            let used = sqlx::query("UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
                .bind(user_id)
                .bind(digest(code))
                .execute(&mut *tx)
                .await?;
            if used.rows_affected() == 1 {
                let left: i64 = sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                events::record(&mut tx, Event::MfaRecoveryCodeUsed, Some(user_id), None, meta).await?;
                Some(Factor::RecoveryCode { left })
            } else {
                None
            }
        };
        match factor {
            Some(factor) => {
                throttle::give_back(&mut tx, &bucket, CODE_FAILURES_PER_USER).await?;
                let event = match purpose {
                    CodePurpose::SignIn => Event::MfaSucceeded,
                    CodePurpose::Reauthenticate => Event::ReauthSucceeded,
                };
                events::record(&mut tx, event, Some(user_id), None, meta).await?;
                tx.commit().await?;
                Ok(factor)
            }
            None => {
                events::record(&mut tx, Event::MfaFailed, Some(user_id), None, meta).await?;
                tx.commit().await?;
                Err(AppError::Invalid(FieldError::new("code", WRONG_CODE)).into())
            }
        }
    }

    /// Turns two-factor authentication off (the caller has just re-authenticated).
    /// Turns two-factor off. Other browsers were signed in with it and would keep counting as
    /// "signed in with two factors" (which organizations requiring it accept), so they are
    /// signed out; API tokens keep working, but no longer count as two-factor sign-ins.
    pub async fn disable_mfa(&self, user_id: Uuid, this_session: Option<&str>, meta: &RequestMeta) -> Result<()> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let removed = sqlx::query("DELETE FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL").bind(user_id).execute(&mut *tx).await?;
        if removed.rows_affected() == 0 {
            return Err(AppError::BadRequest("Two-factor authentication is already off.".into()).into());
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2")
            .bind(user_id)
            .bind(this_session.map(crate::sessions::stored_id))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE token_families SET mfa = false WHERE user_id = $1 AND mfa").bind(user_id).execute(&mut *tx).await?;
        events::record(&mut tx, Event::MfaDisabled, Some(user_id), None, meta).await?;
        tx.commit().await?;
        Ok(())
    }

    /// New recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(&self, user_id: Uuid, meta: &RequestMeta) -> Result<Vec<String>> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let on: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        if !on {
            return Err(AppError::BadRequest("Turn on two-factor authentication first; recovery codes come with it.".into()).into());
        }
        let codes = replace_recovery_codes(&mut tx, user_id).await?;
        events::record(&mut tx, Event::MfaRecoveryCodesRegenerated, Some(user_id), None, meta).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// Checks the account password again before a sensitive action. Failures count towards
    /// the same lock as failed logins.
    pub async fn reauthenticate_with_password(&self, user_id: Uuid, password: &str, meta: &RequestMeta) -> Result<()> {
        let user = self.user(user_id).await?.ok_or(AppError::Unauthenticated)?;
        match self.check_password(&user.email, password, super::Confirmation::NotRequired, meta).await {
            Ok(same) if same.id == user_id => {
                let mut tx = crate::db::open(&self.pool, false).await?;
                events::record(&mut tx, Event::ReauthSucceeded, Some(user_id), None, meta).await?;
                tx.commit().await?;
                Ok(())
            }
            Ok(_) => Err(AppError::Unauthenticated.into()),
            Err(crate::Error::App(AppError::Invalid(_))) => {
                let mut tx = crate::db::open(&self.pool, false).await?;
                events::record(&mut tx, Event::ReauthFailed, Some(user_id), None, meta).await?;
                tx.commit().await?;
                Err(AppError::Invalid(FieldError::new("password", "That isn't your current password.")).into())
            }
            Err(e) => Err(e),
        }
    }
}

async fn replace_recovery_codes(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<String>> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT).map(|_| new_recovery_code()).collect();
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)").bind(user_id).bind(digest(code)).execute(&mut *conn).await?;
    }
    Ok(codes)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_typed_forgivingly_and_look_alike_free() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert!(!code.contains(['0', 'o', '1', 'l', 'i']));
        assert_eq!(digest(&code), digest(&code.to_uppercase().replace('-', " ")));
    }
}
