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

/// Counts one hit on `bucket`; refuses (429) once the limit is passed in this window.
pub(crate) async fn hit(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<()> {
    let hits = record(conn, bucket, limit).await?;
    if hits > limit.max {
        return Err(too_many(limit).into());
    }
    Ok(())
}

/// Counts one hit and returns the count in this window.
pub(crate) async fn record(conn: &mut PgConnection, bucket: &str, limit: Limit) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "INSERT INTO auth_throttle (bucket, window_start, hits)
         VALUES ($1, date_bin(make_interval(mins => $2), now(), 'epoch'), 1)
         ON CONFLICT (bucket, window_start) DO UPDATE SET hits = auth_throttle.hits + 1
         RETURNING hits",
    )
    .bind(bucket)
    .bind(limit.window_minutes)
    .fetch_one(conn)
    .await?)
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

pub(crate) fn too_many(limit: Limit) -> AppError {
    AppError::RateLimited(format!(
        "Too many attempts. For your account's safety, please wait up to {} minutes and try again.",
        limit.window_minutes
    ))
}

/// Forgets windows that are over (run by the maintenance job).
pub async fn prune(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM auth_throttle WHERE window_start < now() - interval '1 day'").execute(conn).await?.rows_affected())
}
