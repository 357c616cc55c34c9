//! One-time links sent by email (sign-in, email verification, password reset). The token is
//! 32 random bytes; only its SHA-256 is stored. Redeeming marks it used in the same statement
//! that checks it, so a link works exactly once even when clicked twice at the same moment.

use crate::db::Setting;
use crate::error::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use tessera_domain::input::FieldError;
use tessera_domain::AppError;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    MagicLink,
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::MagicLink => "magic_link",
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    pub fn lifetime(self) -> time::Duration {
        match self {
            Purpose::MagicLink => time::Duration::minutes(15),
            Purpose::VerifyEmail => time::Duration::hours(24),
            Purpose::ResetPassword => time::Duration::minutes(30),
        }
    }
}

/// A fresh random secret, URL-safe.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Stores a new link for `user_id` and returns its token. Earlier unused links of the same
/// purpose stop working: only the newest one in the inbox counts.
pub(crate) async fn issue(conn: &mut PgConnection, purpose: Purpose, user_id: Uuid, email: &str, browser: Option<&str>) -> Result<String> {
    issue_carrying(conn, purpose, user_id, email, browser, None).await
}

/// [`issue`] for a confirmation link that carries the password chosen at a repeated sign-up
/// (an Argon2 hash), which the account takes when the link confirms it. Such a link doesn't
/// replace the earlier ones.
pub(crate) async fn issue_carrying(
    conn: &mut PgConnection,
    purpose: Purpose,
    user_id: Uuid,
    email: &str,
    browser: Option<&str>,
    password_hash: Option<&str>,
) -> Result<String> {
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, &user_id.to_string())]).await?;
    // A repeated sign-up's link goes alongside: whoever signed up again (possibly someone else)
    // mustn't cancel the link the first registration is waiting on.
    if password_hash.is_none() {
        sqlx::query("UPDATE auth_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(purpose.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let token = new_secret();
    sqlx::query(
        "INSERT INTO auth_tokens (token_hash, purpose, user_id, email, browser_hash, expires_at, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(digest(&token))
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(email)
    .bind(browser.map(digest))
    .bind(OffsetDateTime::now_utc() + purpose.lifetime())
    .bind(password_hash)
    .execute(&mut *conn)
    .await?;
    // Issuing proves nothing about who asked (anyone may type an address): the account's
    // credentials go out of sight again for the rest of the transaction.
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, "")]).await?;
    Ok(token)
}

fn unusable() -> AppError {
    AppError::Invalid(FieldError::new("token", "This link has expired or has already been used. Request a new one and use the newest email."))
}

/// A usable link: whom it is for, and whether it is being followed in the browser that asked
/// for it (`false` for links not bound to a browser).
pub(crate) struct Link {
    pub user_id: Uuid,
    pub email: String,
    pub from_requesting_browser: bool,
    bound_to_a_browser: bool,
    /// The password chosen at a repeated sign-up (a hash), for the account to take.
    pub password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    user_id: Uuid,
    email: String,
    browser_hash: Option<Vec<u8>>,
    password_hash: Option<String>,
}

impl Link {
    /// Whether whoever follows this confirmation link is the one who registered what it
    /// confirms: the browser that signed up, or, for a first sign-up's link, a browser signed
    /// in to the account. Not the latter for a repeated sign-up's link: that link carries a
    /// password the signed-in registrant may never have chosen (someone else signed up again
    /// with their address), so only its own browser or that password proves it.
    pub fn followed_by_its_registrant(&self, signed_in_as: Option<Uuid>) -> bool {
        self.from_requesting_browser || (self.password_hash.is_none() && signed_in_as == Some(self.user_id))
    }
}

/// Finds a usable link (locking it when `lock`, to use it up in the same transaction).
///
/// Only the presented link's row is visible; once found, the rest of the transaction may
/// handle the credentials of the account it is for (the link proves that much).
async fn find(conn: &mut PgConnection, purpose: Purpose, token: &str, browser: Option<&str>, lock: bool) -> Result<Link> {
    crate::db::set_local(&mut *conn, &[(Setting::LinkHash, &crate::db::hex(&digest(token.trim())))]).await?;
    let sql = format!(
        "SELECT user_id, email, browser_hash, password_hash FROM auth_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now(){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<LinkRow> = sqlx::query_as(&sql).bind(digest(token.trim())).bind(purpose.as_str()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(unusable)?;
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, &row.user_id.to_string())]).await?;
    let from_requesting_browser = row.browser_hash.as_ref().is_some_and(|bound| browser.map(digest).as_deref() == Some(bound.as_slice()));
    Ok(Link {
        user_id: row.user_id,
        email: row.email,
        from_requesting_browser,
        bound_to_a_browser: row.browser_hash.is_some(),
        password_hash: row.password_hash,
    })
}

/// Checks a link without using it up (for the page a link opens: mail scanners fetch links,
/// so only the person's explicit click may redeem it).
pub(crate) async fn peek(conn: &mut PgConnection, purpose: Purpose, token: &str, browser: Option<&str>) -> Result<Link> {
    find(conn, purpose, token, browser, false).await
}

/// Uses a link up, wherever it is followed; the caller decides what the browser may do with it.
pub(crate) async fn take(conn: &mut PgConnection, purpose: Purpose, token: &str, browser: Option<&str>) -> Result<Link> {
    let link = find(conn, purpose, token, browser, true).await?;
    sqlx::query("UPDATE auth_tokens SET used_at = now() WHERE token_hash = $1").bind(digest(token.trim())).execute(&mut *conn).await?;
    Ok(link)
}

/// Uses a link up and returns whom it was for. A link made in one browser session only works
/// in that session (`browser` is the requester's session secret).
pub(crate) async fn redeem(conn: &mut PgConnection, purpose: Purpose, token: &str, browser: Option<&str>) -> Result<(Uuid, String)> {
    let link = find(conn, purpose, token, browser, true).await?;
    if link.bound_to_a_browser && !link.from_requesting_browser {
        return Err(AppError::Invalid(FieldError::new(
            "token",
            "For your safety this sign-in link only works in the browser where you asked for it. Open it there, or ask for a new link here.",
        ))
        .into());
    }
    sqlx::query("UPDATE auth_tokens SET used_at = now() WHERE token_hash = $1").bind(digest(token.trim())).execute(&mut *conn).await?;
    Ok((link.user_id, link.email))
}
