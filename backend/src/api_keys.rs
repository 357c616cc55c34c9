//! Organization API keys: made by an Owner or Admin, shown once, stored as a hash, limited to
//! scopes, optionally expiring, revocable, with "last used" kept. A request made with a key
//! enters the organization through [`crate::tenancy::Tenancy::enter_with_api_key`].

use crate::audit::AuditEntry;
use crate::error::Result;
use crate::members::rfc3339;
use crate::Org;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tessera_domain::dto::{ApiKeySummary, NewApiKey};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission, Scope};
use time::OffsetDateTime;
use uuid::Uuid;

/// Every key starts with this, so secret scanners (and people) recognise a leaked one.
pub const KEY_PREFIX: &str = "tsk_";

pub(crate) fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.trim().as_bytes()).to_vec()
}

fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    // 256 is not a multiple of 62; the slight bias leaves each character ~5.95 bits.
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

type KeyRow = (Uuid, String, String, Vec<String>, String, OffsetDateTime, Option<OffsetDateTime>, Option<OffsetDateTime>, Option<OffsetDateTime>);

fn summary(row: KeyRow) -> ApiKeySummary {
    let (id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at) = row;
    ApiKeySummary {
        id,
        name,
        prefix: format!("{KEY_PREFIX}{prefix}"),
        scopes: scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        created_by,
        created_at: rfc3339(created_at),
        expires_at: expires_at.map(rfc3339),
        last_used_at: last_used_at.map(rfc3339),
        revoked_at: revoked_at.map(rfc3339),
    }
}

const SELECT_KEYS: &str = "SELECT k.id, k.name, k.prefix, k.scopes, COALESCE(u.display_name, u.email), k.created_at, k.expires_at,
        k.last_used_at, k.revoked_at
   FROM api_keys k JOIN users u ON u.id = k.created_by";

pub async fn list(org: &Org) -> Result<Vec<ApiKeySummary>> {
    let mut tx = org.control_read(Permission::ManageApiKeys).await?;
    let rows: Vec<KeyRow> =
        sqlx::query_as(&format!("{SELECT_KEYS} ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC")).fetch_all(tx.conn()).await?;
    Ok(rows.into_iter().map(summary).collect())
}

/// Makes a key. `expires_in_days` of `None` means it never expires (the admin chose that).
pub async fn create(org: &Org, name: &str, scopes: &[Scope], expires_in_days: Option<u32>) -> Result<NewApiKey> {
    org.require(Permission::ManageApiKeys)?;
    let name = name.trim();
    // No line breaks or other control characters: the name appears in notifications and mails.
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid(FieldError::new("name", "Give the key a name of up to 100 characters, such as where it's used.")).into());
    }
    if scopes.is_empty() {
        return Err(AppError::Invalid(FieldError::new("scopes", "Choose at least one thing this key may do.")).into());
    }
    if expires_in_days.is_some_and(|d| d == 0 || d > 730) {
        return Err(AppError::Invalid(FieldError::new("expires_in_days", "Choose an expiry between 1 day and 2 years, or none.")).into());
    }
    let prefix = random_chars(8);
    let key = format!("{KEY_PREFIX}{prefix}_{}", random_chars(32));
    let expires_at = expires_in_days.map(|d| OffsetDateTime::now_utc() + time::Duration::days(d.into()));
    // Each once, in the catalogue's order, whatever order or repeats the form sent.
    let scope_names: Vec<String> = tessera_domain::Scope::all().into_iter().filter(|s| scopes.contains(s)).map(|s| s.as_str()).collect();
    let mut tx = org.control_write(Permission::ManageApiKeys).await?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(name)
    .bind(&prefix)
    .bind(digest(&key))
    .bind(&scope_names)
    .bind(org.user_id)
    .bind(expires_at)
    .fetch_one(tx.conn())
    .await?;
    let row: KeyRow = sqlx::query_as(&format!("{SELECT_KEYS} WHERE k.id = $1")).bind(id).fetch_one(tx.conn()).await?;
    let event = crate::notifications::Event::ApiKeyCreated { tenant_id: org.tenant.id, name: name.to_string(), by: org.user_id };
    crate::notifications::notify(tx.conn(), event).await?;
    tx.commit(AuditEntry::new(
        "api_key.created",
        "api_key",
        id,
        serde_json::json!({
            "name": { "new": name },
            "prefix": { "new": format!("{KEY_PREFIX}{prefix}") },
            "scopes": { "new": scope_names },
            "expires_at": { "new": expires_at.map(rfc3339) },
        }),
    ))
    .await?;
    crate::jobs::wake();
    Ok(NewApiKey { key, summary: summary(row) })
}

pub async fn revoke(org: &Org, id: Uuid) -> Result<()> {
    let mut tx = org.control_write_removal(Permission::ManageApiKeys).await?;
    let prefix: Option<String> = sqlx::query_scalar("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING prefix")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    let Some(prefix) = prefix else {
        return Err(AppError::NotFound("That API key doesn't exist or was already revoked.".into()).into());
    };
    tx.commit(AuditEntry::new(
        "api_key.revoked",
        "api_key",
        id,
        serde_json::json!({ "prefix": { "old": format!("{KEY_PREFIX}{prefix}") }, "revoked": { "old": false, "new": true } }),
    ))
    .await
}
