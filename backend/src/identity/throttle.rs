//! Fixed-window rate limits on sign-in attempts and emailed links, kept in PostgreSQL so they
//! hold across every server instance.

use crate::error::Result;
use sqlx::PgConnection;
use tessera_domain::AppError;

/// A limit: at most `max` hits per `window_minutes`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: i32,
    pub window_minutes: i32,
}

/// Failed password logins per account before it is locked for the rest of the window.
pub const LOGIN_FAILURES_PER_EMAIL: Limit = Limit { max: 5, window_minutes: 15 };
/// Password login attempts from one address (many accounts, credential stuffing).
pub const LOGINS_PER_IP: Limit = Limit { max: 50, window_minutes: 15 };
/// Emailed links (sign-in, reset) per address, and per requesting IP.
pub const LINKS_PER_EMAIL: Limit = Limit { max: 5, window_minutes: 15 };
pub const LINKS_PER_IP: Limit = Limit { max: 20, window_minutes: 15 };
/// Accounts created from one address (each sends a mail): enough for an office signing up
/// together, not for a script filling the table or someone's inbox.
pub const SIGN_UPS_PER_IP: Limit = Limit { max: 20, window_minutes: 15 };
/// Organizations one person, or one network, may create in a day: each is a schema or a whole
/// database, so creating them is not free for the operator.
pub const ORGS_PER_USER: Limit = Limit { max: 10, window_minutes: 24 * 60 };
pub const ORGS_PER_IP: Limit = Limit { max: 20, window_minutes: 24 * 60 };
/// SSO sign-ins started from one address: generous, since a whole office may sit behind one.
pub const SSO_STARTS_PER_IP: Limit = Limit { max: 300, window_minutes: 15 };
/// Refused SAML responses from one address before its ACS posts are turned away unread
/// (checking a response is costly XML and RSA work).
pub const SSO_REFUSALS_PER_IP: Limit = Limit { max: 30, window_minutes: 15 };

/// Counts one hit on `bucket`; refuses (429) once the limit is passed in this window.
pub(crate) async fn hit(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<()> {
    let count = record(conn, bucket, limit).await?;
    if count.hits > limit.max {
        return Err(too_many(count.seconds_left).into());
    }
    Ok(())
}

/// A bucket's count in the current window, and how long until the window ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Count {
    pub hits: i32,
    pub seconds_left: i32,
}

impl Count {
    pub fn over(self, limit: Limit) -> bool {
        self.hits > limit.max
    }
}

/// Counts one hit and returns the count in this window.
pub(crate) async fn record(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<Count> {
    let (hits, seconds_left): (i32, i32) = sqlx::query_as(
        "INSERT INTO auth_throttle (bucket, window_start, hits)
         VALUES ($1, date_bin(make_interval(mins => $2), now(), 'epoch'), 1)
         ON CONFLICT (bucket, window_start) DO UPDATE SET hits = auth_throttle.hits + 1
         RETURNING hits, ceil(extract(epoch FROM window_start + make_interval(mins => $2) - now()))::int",
    )
    .bind(bucket)
    .bind(limit.window_minutes)
    .fetch_one(conn)
    .await?;
    Ok(Count { hits, seconds_left })
}

/// Takes back one hit (an attempt that turned out fine).
pub(crate) async fn give_back(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<()> {
    sqlx::query(
        "UPDATE auth_throttle SET hits = greatest(hits - 1, 0)
          WHERE bucket = $1 AND window_start = date_bin(make_interval(mins => $2), now(), 'epoch')",
    )
    .bind(bucket)
    .bind(limit.window_minutes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The 429 for a window that ends in `seconds_left`: says when to try again, to the minute.
pub(crate) fn too_many(seconds_left: i32) -> AppError {
    let minutes = (seconds_left.max(1) + 59) / 60;
    AppError::RateLimited(format!(
        "Too many attempts. For your account's safety, please try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    ))
}

/// A bucket's hits in the current window, without counting one.
pub(crate) async fn current(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<i32> {
    let hits: Option<i32> =
        sqlx::query_scalar("SELECT hits FROM auth_throttle WHERE bucket = $1 AND window_start = date_bin(make_interval(mins => $2), now(), 'epoch')")
            .bind(bucket)
            .bind(limit.window_minutes)
            .fetch_optional(conn)
            .await?;
    Ok(hits.unwrap_or(0))
}

/// Forgets windows that are over (run by the maintenance job).
pub async fn prune(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM auth_throttle WHERE window_start < now() - interval '1 day'").execute(conn).await?.rows_affected())
}
