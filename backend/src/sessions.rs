//! Browser sessions in PostgreSQL (the control plane's `sessions` table).
//!
//! Written here rather than taken from tower-sessions-sqlx-store because every statement must
//! work through PgBouncer in transaction mode, where a prepared statement's prepare and execute
//! may land on different server connections outside a transaction: writes run inside explicit
//! transactions, and the read every request makes is one simple-protocol statement that also
//! brings what the page needs next ([`PageContext`]).

use crate::db::Setting;
use async_trait::async_trait;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

#[derive(Clone, Debug)]
pub struct PgSessionStore {
    pool: PgPool,
    known: Known,
}

/// Sessions as this server last read or wrote them (their data and expiry), so a request that
/// changed nothing doesn't write its row again: a session's expiry, and so "last active", moves
/// in the database at most once per [`ACTIVITY_RESOLUTION`] instead of on every request. Only a
/// shortcut: a miss (another server, a restart, a full map) just means one more write.
#[derive(Clone, Debug, Default)]
struct Known(Arc<Mutex<KnownSessions>>);

#[derive(Debug, Default)]
struct KnownSessions {
    entries: HashMap<String, KnownSession>,
    /// Counts this server's writes and deletions (and clearings of the map).
    clock: u64,
    cleared_at: u64,
}

#[derive(Debug)]
struct KnownSession {
    seen: Option<(SessionData, OffsetDateTime)>,
    /// The clock at this server's last write or deletion of the session.
    changed_at: u64,
}

type SessionData = HashMap<String, serde_json::Value>;

/// How stale a session's stored expiry may be before a request writes it again.
pub const ACTIVITY_RESOLUTION: time::Duration = time::Duration::minutes(1);

/// Past this many sessions the map starts again (a bound, not a cache policy).
const KNOWN_MAX: usize = 50_000;

impl Known {
    fn lock(&self) -> std::sync::MutexGuard<'_, KnownSessions> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the session stands before a read starts (see [`Known::loaded`]).
    fn stamp(&self, stored_id: &str) -> u64 {
        let known = self.lock();
        known.entries.get(stored_id).map_or(known.cleared_at, |e| e.changed_at)
    }

    /// Records what a read found, unless this server wrote or deleted the session (or cleared
    /// the map) while the read was under way: then the read may be older than what was written.
    fn loaded(&self, stored_id: String, record: Option<&Record>, stamp: u64) {
        let mut known = self.lock();
        let now = known.entries.get(&stored_id).map_or(known.cleared_at, |e| e.changed_at);
        if now == stamp {
            let seen = record.map(|r| (r.data.clone(), r.expiry_date));
            Self::put(&mut known, stored_id, seen, now);
        }
    }

    /// Records this server's write (`Some`) or deletion (`None`) of the session.
    fn changed(&self, stored_id: String, record: Option<&Record>) {
        let mut known = self.lock();
        known.clock += 1;
        let at = known.clock;
        Self::put(&mut known, stored_id, record.map(|r| (r.data.clone(), r.expiry_date)), at);
    }

    fn put(known: &mut KnownSessions, stored_id: String, seen: Option<(SessionData, OffsetDateTime)>, changed_at: u64) {
        if known.entries.len() >= KNOWN_MAX && !known.entries.contains_key(&stored_id) {
            known.entries.clear();
            known.clock += 1;
            known.cleared_at = known.clock;
            return;
        }
        known.entries.insert(stored_id, KnownSession { seen, changed_at });
    }

    /// Whether writing `record` would change only its expiry, and by less than the resolution.
    fn unchanged(&self, stored_id: &str, record: &Record) -> bool {
        self.lock()
            .entries
            .get(stored_id)
            .and_then(|e| e.seen.as_ref())
            .is_some_and(|(data, expiry)| *data == record.data && record.expiry_date - *expiry < ACTIVITY_RESOLUTION)
    }
}

impl PgSessionStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, known: Known::default() }
    }

    /// Removes expired sessions (idle too long, or past their absolute lifetime); run periodically.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let mut tx = crate::db::begin(&self.pool, false, &[(Setting::Maintenance, "prune")]).await.map_err(into_sqlx)?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < now() OR created_at < $1")
            .bind(OffsetDateTime::now_utc() - ABSOLUTE_LIFETIME)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// MessagePack, as tower-sessions' own stores use. The record's id (the cookie itself) is
/// blanked first: the row keeps only its digest (`stored_id`), and [`decode`] puts back the id
/// the request presented.
fn encode(record: &Record) -> session_store::Result<Vec<u8>> {
    let without_id = Record { id: Id(0), data: record.data.clone(), expiry_date: record.expiry_date };
    rmp_serde::to_vec(&without_id).map_err(|e| session_store::Error::Encode(e.to_string()))
}

fn decode(data: &[u8], id: Id) -> session_store::Result<Record> {
    let mut record: Record = rmp_serde::from_slice(data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
    record.id = id;
    Ok(record)
}

/// The signed-in user, copied into its own column so all of a user's sessions can be found
/// (and ended, after a password reset) without decoding every record.
fn user_of(record: &Record) -> Option<uuid::Uuid> {
    record.data.get("user_id").and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn into_sqlx(e: crate::Error) -> sqlx::Error {
    match e {
        crate::Error::Db(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// A transaction in which only the session with this cookie is visible (the sessions policies).
async fn presenting_cookie(pool: &PgPool, id: &Id) -> session_store::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    crate::db::begin(pool, false, &[(Setting::SessionId, &stored_id(&id.to_string()))]).await.map_err(backend)
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Nothing in it (a cookie this server doesn't know, say): nothing worth a row. Anyone
        // can send such cookies, as many as they like.
        if record.data.is_empty() {
            return Ok(());
        }
        let data = encode(record)?;
        let mut tx = crate::db::open(&self.pool, false).await.map_err(backend)?;
        // Ids are random 128-bit values; a collision gets a fresh id rather than someone else's session.
        loop {
            crate::db::set_local(&mut tx, &[(Setting::SessionId, &stored_id(&record.id.to_string()))]).await.map_err(backend)?;
            let inserted = sqlx::query("INSERT INTO sessions (id, data, expires_at, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING")
                .bind(stored_id(&record.id.to_string()))
                .bind(&data)
                .bind(record.expiry_date)
                .bind(user_of(record))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                self.known.changed(stored_id(&record.id.to_string()), Some(record));
                break;
            }
            record.id = Id::default();
        }
        tx.commit().await.map_err(backend)
    }

    /// Updates only: a session that was signed out (its row deleted) while a request was still
    /// running must not be written back by that request. New sessions go through `create`.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let id = stored_id(&record.id.to_string());
        if self.known.unchanged(&id, record) {
            return Ok(());
        }
        let data = encode(record)?;
        let mut tx = presenting_cookie(&self.pool, &record.id).await?;
        sqlx::query("UPDATE sessions SET data = $2, expires_at = $3, user_id = $4 WHERE id = $1")
            .bind(stored_id(&record.id.to_string()))
            .bind(&data)
            .bind(record.expiry_date)
            .bind(user_of(record))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        self.known.changed(id, Some(record));
        Ok(())
    }

    /// One statement, no transaction (so one round trip, through PgBouncer too): the
    /// `session_context` function reads the session with what the page will ask next (see
    /// [`with_page_context`]).
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let digest = stored_id(&id.to_string());
        let stamp = self.known.stamp(&digest);
        let slug = PAGE.try_with(|page| page.slug.clone()).ok().flatten();
        let found = read_session_context(&self.pool, &digest, slug.as_deref()).await.map_err(backend)?;
        let record = found.as_ref().map(|found| decode(&found.data, *id)).transpose()?;
        self.known.loaded(digest, record.as_ref(), stamp);
        if let (Some(found), Some(record)) = (found, record.as_ref()) {
            // Only for the user the record itself names: the column is a copy of it.
            if found.context.user_id == user_of(record) {
                let _ = PAGE.try_with(|page| *page.found.lock().unwrap_or_else(|e| e.into_inner()) = Some(found.context));
            }
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.known.changed(stored_id(&id.to_string()), None);
        let mut tx = presenting_cookie(&self.pool, id).await?;
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(stored_id(&id.to_string())).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}

/// What a signed-in page needs besides its session, read in the same round trip (migration
/// `session_context`): who the user is, their organizations, and for a page inside an
/// organization, the door's view of it. Read at the start of the request, so a removed member,
/// a changed role, a suspended organization or an ended session counts from the next request on.
#[derive(Clone, Debug)]
pub struct PageContext {
    pub user_id: Option<uuid::Uuid>,
    /// `None` when the session names a user who no longer exists.
    pub user: Option<tessera_domain::dto::CurrentUser>,
    pub orgs: Vec<tessera_domain::dto::OrgSummary>,
    /// Unread notifications, up to 100.
    pub unread_notifications: i64,
    /// The organization named in the page's address, as `Tenancy::enter` reads it.
    pub(crate) entrance: Option<crate::tenancy::Entrance>,
}

struct PageRequest {
    slug: Option<String>,
    found: Mutex<Option<PageContext>>,
}

tokio::task_local! {
    static PAGE: PageRequest;
}

/// Runs `load_session` (which must load the request's session, if it has one) so that the
/// session is read together with its [`PageContext`], for the organization `slug` if given.
/// Returns the context when a session was found (`user_id` is `None` if nobody is signed in).
pub async fn with_page_context<F: std::future::Future>(slug: Option<String>, load_session: F) -> (F::Output, Option<PageContext>) {
    let request = PageRequest { slug, found: Mutex::new(None) };
    PAGE.scope(request, async {
        let output = load_session.await;
        let found = PAGE.with(|page| page.found.lock().unwrap_or_else(|e| e.into_inner()).take());
        (output, found)
    })
    .await
}

struct FoundSession {
    data: Vec<u8>,
    context: PageContext,
}

#[derive(serde::Deserialize)]
struct ContextJson {
    data: String,
    user_id: Option<uuid::Uuid>,
    user: Option<tessera_domain::dto::CurrentUser>,
    orgs: Vec<OrgJson>,
    #[serde(default)]
    unread_notifications: i64,
    entrance: Option<crate::tenancy::Entrance>,
}

#[derive(serde::Deserialize)]
struct OrgJson {
    slug: String,
    name: String,
    role: String,
    #[serde(default)]
    custom_role: Option<String>,
}

/// The session with digest `digest` and its context, in one simple-protocol statement: no
/// prepared statement (which PgBouncer in transaction mode can't keep between two trips) and
/// no transaction to open and close. Both values are inlined as literals: the digest is hex we
/// computed, the slug was parsed as one (anything else is simply not looked up).
async fn read_session_context(pool: &PgPool, digest: &str, slug: Option<&str>) -> crate::Result<Option<FoundSession>> {
    use base64::Engine;
    use sqlx::Row;
    let slug = slug.and_then(|s| tessera_domain::input::OrgSlug::parse(s).ok()).map(|s| crate::db::literal(s.as_str()));
    let sql = format!(
        "SELECT session_context({}, {}, now() - interval '{} seconds')::text",
        crate::db::literal(digest),
        slug.as_deref().unwrap_or("NULL"),
        ABSOLUTE_LIFETIME.whole_seconds()
    );
    let row = sqlx::raw_sql(&sql).fetch_one(pool).await?;
    let Some(json) = row.try_get::<Option<String>, _>(0)? else { return Ok(None) };
    let found: ContextJson = serde_json::from_str(&json).map_err(|e| crate::Error::Internal(format!("session context: {e}")))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(found.data.split_whitespace().collect::<String>())
        .map_err(|e| crate::Error::Internal(format!("session context: {e}")))?;
    let orgs = found
        .orgs
        .into_iter()
        .map(|o| {
            let role = o.role.parse().map_err(|e: tessera_domain::role::UnknownRole| crate::Error::Internal(e.to_string()))?;
            Ok(tessera_domain::dto::OrgSummary { slug: o.slug, name: o.name, role, custom_role: o.custom_role })
        })
        .collect::<crate::Result<Vec<_>>>()?;
    Ok(Some(FoundSession {
        data,
        context: PageContext {
            user_id: found.user_id,
            user: found.user,
            orgs,
            unread_notifications: found.unread_notifications,
            entrance: found.entrance,
        },
    }))
}

/// How long an idle session lives; also how "last active" is derived from its expiry.
pub const IDLE_LIFETIME: time::Duration = time::Duration::days(14);

/// How long any session lives, however active: a stolen cookie stops working after this, and
/// everyone proves who they are again at least this often. (The sessions' pruning policy in
/// migration `account_secrets_behind_policies` says 30 days too.)
pub const ABSOLUTE_LIFETIME: time::Duration = time::Duration::days(30);

/// What the `sessions` table keeps for a session id: its SHA-256, so a copy of the table (a
/// backup, a read replica, an injection) holds no cookie that signs anyone in.
pub fn stored_id(session_id: &str) -> String {
    use sha2::Digest;
    crate::db::hex(&sha2::Sha256::digest(session_id.as_bytes()))
}

/// The keys under which a session records how it was started (see `app::api::ssr`).
pub const SIGNED_IN_AT_KEY: &str = "signed_in_at";
pub const USER_AGENT_KEY: &str = "user_agent";
pub const IP_KEY: &str = "ip";

pub fn now_rfc3339() -> String {
    crate::members::rfc3339(OffsetDateTime::now_utc())
}

/// The handle shown for a session: the start of its stored digest, so the list never exposes
/// the cookie.
fn handle_of(stored: &str) -> &str {
    stored.get(..24).unwrap_or(stored)
}

impl PgSessionStore {
    /// The [`PageContext`] of the session with id `session_id` for the organization `slug`, in
    /// one round trip: how a server function that wasn't called from a page render (so has no
    /// context of its own) enters an organization.
    pub async fn context(&self, session_id: &str, slug: &str) -> crate::Result<Option<PageContext>> {
        Ok(read_session_context(&self.pool, &stored_id(session_id), Some(slug)).await?.map(|found| found.context))
    }

    /// The user's live sessions, most recently active first. `current` is the asking session's id.
    pub async fn list_for_user(&self, user_id: uuid::Uuid, current: Option<&str>) -> crate::Result<Vec<tessera_domain::dto::DeviceSession>> {
        let mut tx = crate::db::account_tx(&self.pool, true, user_id).await?;
        let rows: Vec<(String, Vec<u8>, OffsetDateTime)> = sqlx::query_as(
            "SELECT id, data, expires_at FROM sessions WHERE user_id = $1 AND expires_at > now() AND created_at > $2 ORDER BY expires_at DESC",
        )
        .bind(user_id)
        .bind(OffsetDateTime::now_utc() - ABSOLUTE_LIFETIME)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let text = |record: &Record, key: &str| record.data.get(key).and_then(|v| v.as_str()).map(str::to_string);
        Ok(rows
            .into_iter()
            .filter_map(|(id, data, expires_at)| {
                let record: Record = rmp_serde::from_slice(&data).ok()?;
                Some(tessera_domain::dto::DeviceSession {
                    handle: handle_of(&id).to_string(),
                    user_agent: text(&record, USER_AGENT_KEY),
                    ip: text(&record, IP_KEY),
                    signed_in_at: text(&record, SIGNED_IN_AT_KEY),
                    last_active_at: crate::members::rfc3339(expires_at - IDLE_LIFETIME),
                    current: current.map(stored_id).as_deref() == Some(id.as_str()),
                })
            })
            .collect())
    }

    /// Ends one of the user's sessions by its handle; false if there is no such session.
    pub async fn revoke(&self, user_id: uuid::Uuid, handle: &str) -> crate::Result<bool> {
        let mut tx = crate::db::account_tx(&self.pool, false, user_id).await?;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions WHERE user_id = $1").bind(user_id).fetch_all(&mut *tx).await?;
        let Some(id) = ids.into_iter().find(|id| handle_of(id) == handle) else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2").bind(&id).bind(user_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends all of the user's sessions except `keep`; returns how many ended.
    pub async fn revoke_others(&self, user_id: uuid::Uuid, keep: Option<&str>) -> crate::Result<u64> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let ended = sign_out_elsewhere(&mut tx, user_id, keep, "user").await?;
        tx.commit().await?;
        Ok(ended)
    }
}

/// Ends every browser session of the user except `keep` (a session id, as the cookie has it),
/// and every API sign-in: "everywhere else" includes programs signed in with API tokens.
/// `reason` is recorded on the API sign-ins (`user`, `password_reset`). Returns how many browser
/// sessions ended.
pub(crate) async fn sign_out_elsewhere(conn: &mut sqlx::PgConnection, user_id: uuid::Uuid, keep: Option<&str>, reason: &str) -> crate::Result<u64> {
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, &user_id.to_string())]).await?;
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2")
        .bind(user_id)
        .bind(keep.map(stored_id))
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE token_families SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
