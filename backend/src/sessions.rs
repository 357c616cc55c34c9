//! Browser sessions in PostgreSQL (the control plane's `sessions` table).
//!
//! Written here rather than taken from tower-sessions-sqlx-store because every statement must
//! run inside an explicit transaction to work through PgBouncer in transaction mode: outside
//! one, a statement's prepare and execute may land on different server connections.

use async_trait::async_trait;
use sqlx::PgPool;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

#[derive(Clone, Debug)]
pub struct PgSessionStore {
    pool: PgPool,
}

impl PgSessionStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Removes expired sessions; run periodically.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < now()").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// MessagePack, as tower-sessions' own stores use: session ids are 128-bit integers, which JSON
/// can't carry.
fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

/// The signed-in user, copied into its own column so all of a user's sessions can be found
/// (and ended, after a password reset) without decoding every record.
fn user_of(record: &Record) -> Option<uuid::Uuid> {
    record.data.get("user_id").and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Ids are random 128-bit values; a collision gets a fresh id rather than someone else's session.
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
                .bind(record.id.to_string())
                .bind(&data)
                .bind(record.expiry_date)
                .bind(user_of(record))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                break;
            }
            record.id = Id::default();
        }
        tx.commit().await.map_err(backend)
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, user_id = excluded.user_id",
        )
        .bind(record.id.to_string())
        .bind(&data)
        .bind(record.expiry_date)
        .bind(user_of(record))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let data: Option<Vec<u8>> = sqlx::query_scalar("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id.to_string())
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        data.map(|d| rmp_serde::from_slice(&d).map_err(|e| session_store::Error::Decode(e.to_string()))).transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}
