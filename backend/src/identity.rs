//! Global user identity (control plane): sign-up and password login.
//! Users are not tenant data; a user reaches a tenant only through a membership.
//! Every statement runs in an explicit transaction (see `sessions` for why: PgBouncer).

use crate::error::{unique_violation, Result};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::PgPool;
use std::sync::OnceLock;
use tessera_domain::dto::CurrentUser;
use tessera_domain::input::{parse_display_name, Email, FieldError, Password};
use tessera_domain::AppError;
use uuid::Uuid;

#[derive(Clone)]
pub struct Identity {
    pool: PgPool,
}

/// The single message for every failed login, so responses never tell whether an email exists.
pub const LOGIN_FAILED: &str = "That email and password don't match an account. Check both and try again.";

type UserRow = (Uuid, String, Option<String>, String);

impl Identity {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn sign_up(&self, email: &str, password: &str, display_name: &str) -> Result<CurrentUser> {
        let email = Email::parse(email)?;
        let password = Password::parse_new(password)?;
        let display_name = parse_display_name(display_name)?;
        let hash = hash_password(password).await?;
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query("INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(email.as_str())
            .bind(display_name.as_deref())
            .bind(hash)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok(CurrentUser { id, email: email.as_str().to_string(), display_name })
            }
            Err(e) if unique_violation(&e).is_some() => Err(AppError::Conflict(FieldError::new(
                "email",
                "An account with this email already exists. Log in instead, or use another email.",
            ))
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a password. Unknown emails cost the same hashing work as wrong passwords.
    pub async fn log_in(&self, email: &str, password: &str) -> Result<CurrentUser> {
        let email = Email::parse(email).ok();
        let row: Option<UserRow> = match &email {
            Some(email) => {
                let mut tx = self.pool.begin().await?;
                let row = sqlx::query_as("SELECT id, email, display_name, password_hash FROM users WHERE lower(email) = $1")
                    .bind(email.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row
            }
            None => None,
        };
        let stored_hash = row.as_ref().map(|r| r.3.clone());
        let password = password.to_string();
        // Hashing (including the one-off dummy hash) stays off the async executor.
        let matches = tokio::task::spawn_blocking(move || match &stored_hash {
            Some(hash) => verify_password(&password, hash),
            None => verify_password(&password, dummy_hash()),
        })
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        match row {
            Some((id, email, display_name, _)) if matches => Ok(CurrentUser { id, email, display_name }),
            _ => Err(AppError::Invalid(FieldError::new("password", LOGIN_FAILED)).into()),
        }
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<CurrentUser>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(Uuid, String, Option<String>)> =
            sqlx::query_as("SELECT id, email, display_name FROM users WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.map(|(id, email, display_name)| CurrentUser { id, email, display_name }))
    }

    /// Looks a user up by email to add them to a team. Returns only the id.
    pub(crate) async fn find_id_by_email(&self, email: &Email) -> Result<Option<Uuid>> {
        let mut tx = self.pool.begin().await?;
        let id = sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = $1").bind(email.as_str()).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }
}

pub(crate) async fn hash_password(password: Password) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| crate::Error::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| crate::Error::Internal(e.to_string()))?
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false)
}

/// A real hash of a random secret, verified against when the email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = Uuid::new_v4().to_string();
        Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}
