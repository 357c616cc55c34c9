//! API tokens for people: a short-lived JWT access token plus a refresh token that rotates on
//! every use. Each API sign-in starts a family; a refresh token presented after it was
//! exchanged means a copy exists, so the whole family is revoked (and recorded). Two refreshes
//! racing each other within a few seconds are not theft, so that overlap is allowed.
//! Access tokens name their family, and a revoked family stops them at once.

use crate::ctx::{Authn, RequestMeta};
use crate::db::Setting;
use crate::error::Result;
use crate::identity::events::{self, Event};
use crate::secrets::{KeyPurpose, SecretKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;
use tessera_domain::dto::TokenPair;
use tessera_domain::AppError;
use time::OffsetDateTime;
use uuid::Uuid;

const ISSUER: &str = "tessera";
const AUDIENCE: &str = "tessera-api";

#[derive(Clone)]
pub struct Tokens {
    pool: PgPool,
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
    /// How long after a rotation the old refresh token still counts as a concurrent refresh.
    pub reuse_overlap: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    /// The token family (API sign-in) this access token belongs to.
    sid: Uuid,
    /// The sign-in included a second factor.
    mfa: bool,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// A transaction in which the presented refresh token, and its family, are visible.
fn presenting_refresh_token(
    pool: &PgPool,
    refresh_token: &str,
) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>>> + Send + 'static {
    crate::db::begin(pool, false, &[(Setting::RefreshTokenHash, &crate::db::hex(&digest(refresh_token)))])
}

fn new_refresh_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("tsr_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn bad(message: &str) -> crate::Error {
    AppError::BadCredentials(message.into()).into()
}

impl Tokens {
    pub fn new(pool: PgPool, secret: &SecretKey) -> Self {
        let key = secret.derive(KeyPurpose::AccessTokens);
        Self {
            pool,
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            access_lifetime: Duration::from_secs(15 * 60),
            refresh_lifetime: Duration::from_secs(30 * 86_400),
            reuse_overlap: Duration::from_secs(10),
        }
    }

    fn access_token(&self, user_id: Uuid, family: Uuid, mfa: bool) -> Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user_id,
            sid: family,
            mfa,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + self.access_lifetime.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| crate::Error::Internal(e.to_string()))
    }

    async fn new_refresh(&self, conn: &mut sqlx::PgConnection, family: Uuid) -> Result<String> {
        let token = new_refresh_token();
        sqlx::query("INSERT INTO refresh_tokens (family_id, token_hash, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))")
            .bind(family)
            .bind(digest(&token))
            .bind(self.refresh_lifetime.as_secs_f64())
            .execute(conn)
            .await?;
        Ok(token)
    }

    fn pair(&self, access_token: String, refresh_token: String) -> TokenPair {
        TokenPair { access_token, token_type: "Bearer".into(), expires_in: self.access_lifetime.as_secs(), refresh_token }
    }

    /// Starts a token family for a person who has just proved who they are.
    pub async fn issue(&self, user_id: Uuid, mfa: bool, meta: &RequestMeta) -> Result<TokenPair> {
        let family = Uuid::new_v4();
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        sqlx::query("INSERT INTO token_families (id, user_id, mfa, user_agent, ip) VALUES ($1, $2, $3, $4, $5::inet)")
            .bind(family)
            .bind(user_id)
            .bind(mfa)
            .bind(meta.user_agent.as_deref())
            .bind(meta.ip.map(|ip| ip.to_string()))
            .execute(&mut *tx)
            .await?;
        let refresh = self.new_refresh(&mut tx, family).await?;
        events::record(&mut tx, Event::TokenIssued, Some(user_id), None, meta).await?;
        tx.commit().await?;
        Ok(self.pair(self.access_token(user_id, family, mfa)?, refresh))
    }

    /// Exchanges a refresh token for a new pair. A token already exchanged (outside the
    /// overlap) revokes its whole family: whoever holds a copy, thief or owner, must sign in.
    pub async fn refresh(&self, refresh_token: &str, meta: &RequestMeta) -> Result<TokenPair> {
        let mut tx = presenting_refresh_token(&self.pool, refresh_token).await?;
        type Row = (Uuid, Uuid, Uuid, bool, bool, Option<OffsetDateTime>, bool);
        let row: Option<Row> = sqlx::query_as(
            "SELECT r.id, f.id, f.user_id, f.mfa, r.expires_at <= now(), r.rotated_at, f.revoked_at IS NOT NULL
               FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id
              WHERE r.token_hash = $1
              FOR UPDATE OF f, r",
        )
        .bind(digest(refresh_token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((token_id, family, user_id, mfa, expired, rotated_at, revoked)) = row else {
            return Err(bad("This refresh token isn't valid. Sign in again."));
        };
        // The family's other tokens are the account's to see from here on.
        crate::db::set_local(&mut tx, &[(Setting::AccountId, &user_id.to_string())]).await?;
        if revoked {
            return Err(bad("This sign-in has ended (signed out, or revoked for safety). Sign in again."));
        }
        if expired {
            return Err(bad("This refresh token has expired. Sign in again."));
        }
        if let Some(rotated_at) = rotated_at {
            let since = OffsetDateTime::now_utc() - rotated_at;
            // One racing refresh is a client retrying; more is someone else using a copy.
            let successors: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND created_at >= $2")
                .bind(family)
                .bind(rotated_at)
                .fetch_one(&mut *tx)
                .await?;
            if since > self.reuse_overlap || successors >= 2 {
                sqlx::query("UPDATE token_families SET revoked_at = now(), revoked_reason = 'reuse' WHERE id = $1")
                    .bind(family)
                    .execute(&mut *tx)
                    .await?;
                events::record(&mut tx, Event::TokenRefreshReused, Some(user_id), None, meta).await?;
                tx.commit().await?;
                tracing::warn!(%user_id, %family, "a rotated refresh token was presented again; the token family is revoked");
                return Err(bad(
                    "This refresh token was already used, so it may have been copied. For safety this sign-in has ended everywhere; sign in again.",
                ));
            }
            // A concurrent refresh from the same client: it gets its own successor.
        } else {
            sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1").bind(token_id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE token_families SET last_used_at = now() WHERE id = $1").bind(family).execute(&mut *tx).await?;
        let refresh = self.new_refresh(&mut tx, family).await?;
        tx.commit().await?;
        Ok(self.pair(self.access_token(user_id, family, mfa)?, refresh))
    }

    /// Signs out an API client: the family of this refresh token is revoked.
    pub async fn revoke(&self, refresh_token: &str, meta: &RequestMeta) -> Result<()> {
        let mut tx = presenting_refresh_token(&self.pool, refresh_token).await?;
        let revoked: Option<Uuid> = sqlx::query_scalar(
            "UPDATE token_families f SET revoked_at = now(), revoked_reason = 'logout'
               FROM refresh_tokens r
              WHERE r.family_id = f.id AND r.token_hash = $1 AND f.revoked_at IS NULL
             RETURNING f.user_id",
        )
        .bind(digest(refresh_token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = revoked else {
            return Err(bad("This refresh token isn't valid or was already signed out."));
        };
        events::record(&mut tx, Event::TokenRevoked, Some(user_id), None, meta).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks an access token: signature, issuer, audience, expiry, and that its family is
    /// still live. No clock leeway: servers share a clock source and tokens are short anyway.
    pub async fn authenticate(&self, access_token: &str) -> Result<Authn> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        let claims = match jsonwebtoken::decode::<Claims>(access_token, &self.decoding, &validation) {
            Ok(data) => data.claims,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                return Err(bad("This access token has expired. Use your refresh token to get a new one."))
            }
            Err(_) => return Err(bad("This access token isn't valid. Sign in again to get a new one.")),
        };
        let mut tx = crate::db::account_tx(&self.pool, true, claims.sub).await?;
        // The family decides, not the token alone: it may have been revoked, or lost its
        // two-factor standing (two-factor turned off) since this token was issued.
        let family: Option<(bool, bool)> = sqlx::query_as("SELECT revoked_at IS NULL, mfa FROM token_families WHERE id = $1 AND user_id = $2")
            .bind(claims.sid)
            .bind(claims.sub)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some((true, family_mfa)) = family else {
            return Err(bad("This sign-in has ended (signed out, or revoked for safety). Sign in again."));
        };
        Ok(Authn { user_id: claims.sub, mfa: claims.mfa && family_mfa, sso_tenant: None })
    }
}
