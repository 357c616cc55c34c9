//! The control-plane connection and the start-up guard on the application role.
//! (Migrations live in `tenancy::migrate`: the control plane and tenant data are separate sets.)

use crate::error::{Error, Result};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// The control-plane pool. Behind PgBouncer (`pgbouncer`), the server-side statement cache is
/// off and every prepared statement runs in an explicit transaction (see `sessions`).
pub async fn connect(url: &str, max_connections: u32, pgbouncer: bool) -> Result<PgPool> {
    Ok(pool_options()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(crate::tenancy::topology::connect_options(url, pgbouncer)?)
        .await?)
}

/// How the app's pools lend connections. sqlx already pings a connection when it comes back
/// to the pool (and drops it if that fails), so the second ping it would send by default
/// before lending it again is a round trip on every request that only catches a connection
/// broken while it sat idle; that one fails its statement instead.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().test_before_acquire(false)
}

/// Refuses to serve when the application role could see past row-level security: a superuser,
/// a BYPASSRLS role, or the owner of a table (owners can switch RLS off) would turn every
/// tenant policy into a suggestion.
pub async fn check_app_role(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    let (user, superuser, bypass): (String, bool, bool) =
        sqlx::query_as("SELECT rolname::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetch_one(&mut *tx).await?;
    if superuser || bypass {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" is a superuser or has BYPASSRLS; connect as the confined role (tessera_app)"
        )));
    }
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut *tx)
    .await?;
    // Rights the migrations take away (least_privilege); a database owned by someone else keeps
    // them until its owner revokes them, which start-up only warns about.
    let (temporary, create, set_config): (bool, bool, bool) = sqlx::query_as(
        "SELECT has_database_privilege(current_database(), 'TEMPORARY'), has_schema_privilege('public', 'CREATE'),
                has_function_privilege('pg_catalog.set_config(text, text, boolean)', 'EXECUTE')",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    if set_config {
        tracing::warn!(
            role = %user,
            "the application role may call set_config(), so SQL slipped into a query could change the tenant row-level security filters by; as a superuser, in this database and in template1: REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC; GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO <schema owner role>"
        );
    }
    if temporary || create {
        tracing::warn!(
            role = %user,
            temporary,
            create_in_public = create,
            "the application role may create temporary tables or objects in schema public; revoke TEMPORARY on the database and CREATE on public from PUBLIC (and grant TEMPORARY to the schema owner role: moves stage rows in temporary tables)"
        );
    }
    if owned > 0 {
        return Err(Error::Internal(format!(
            "refusing to start: database role \"{user}\" owns {owned} table(s) and could disable row-level security; run migrations as a separate owner role"
        )));
    }
    Ok(())
}

/// A setting a transaction declares before its queries run: what row-level security reads
/// (`app.*`), and where and how long its statements may run. One list, so a policy's setting
/// and the code that sets it can't drift apart by a typo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// The organization acted in; tenant policies show only its rows. Only the door can make
    /// this setting: its [`DoorSeal`](crate::tenancy::DoorSeal) can't be built anywhere else.
    TenantId(crate::tenancy::DoorSeal),
    /// The signed-in user; the memberships policy shows their own rows, and in tenant data the
    /// projects policy shows the restricted projects granted to them (or their groups).
    UserId,
    /// `on`: this transaction sees every project, restricted ones too (an Owner or Admin,
    /// system work). Only the door decides it, as it does `TenantId`.
    SeesAll(crate::tenancy::DoorSeal),
    /// The account whose credentials (sessions, tokens, second factors, password) this
    /// transaction handles: one the request proved (its session, link or token), or the one
    /// whose password it is checking. Chosen by the code; SQL can't choose it.
    AccountId,
    /// The digest of the session cookie the request presented.
    SessionId,
    /// The digest of the refresh token the request presented.
    RefreshTokenHash,
    /// The digest of the emailed link the request presented.
    LinkHash,
    /// The digest of the API key the request presented.
    ApiKeyHash,
    /// The digest of the invitation link the request presented.
    InvitationHash,
    /// The digest of the SSO handoff token the request presented.
    SsoHandoff,
    /// An address the request proved it owns (invitations addressed to it are visible).
    ConfirmedEmail,
    /// An email domain whose organization the login page looks up.
    EmailDomain,
    /// A maintenance job's name; each job's policy lets it see only what it cleans up.
    Maintenance,
    /// The schema a tenant's data lives in (the door's, as `TenantId`).
    SearchPath(crate::tenancy::DoorSeal),
    /// How long each statement may run (`5000ms`).
    StatementTimeout,
}

impl Setting {
    fn name(self) -> &'static str {
        match self {
            Setting::TenantId(_) => "app.tenant_id",
            Setting::UserId => "app.user_id",
            Setting::SeesAll(_) => "app.sees_all",
            Setting::AccountId => "app.account_id",
            Setting::SessionId => "app.session_id",
            Setting::RefreshTokenHash => "app.refresh_token_hash",
            Setting::LinkHash => "app.link_hash",
            Setting::ApiKeyHash => "app.api_key_hash",
            Setting::InvitationHash => "app.invitation_hash",
            Setting::SsoHandoff => "app.sso_handoff",
            Setting::ConfirmedEmail => "app.confirmed_email",
            Setting::EmailDomain => "app.email_domain",
            Setting::Maintenance => "app.maintenance",
            Setting::SearchPath(_) => "search_path",
            Setting::StatementTimeout => "statement_timeout",
        }
    }
}

/// The `SET LOCAL` statements for `settings`. Settings are made with `SET LOCAL`, never with
/// `set_config()`: the application role may not call `set_config` (revoked at set-up, and
/// start-up warns when it still can), and a `SET` can't hide inside another statement, so SQL
/// slipped into one query can't change which tenant's or account's rows it sees.
///
/// Values are written as escape-string literals (`E'…'`, quotes and backslashes doubled), which
/// read the same whatever `standard_conforming_strings` says; the schema name is a quoted
/// identifier. A NUL can't be in a setting at all and is refused.
pub fn set_local_sql(settings: &[(Setting, &str)]) -> Result<String> {
    let mut sql = String::new();
    for (setting, value) in settings {
        if value.contains('\0') {
            return Err(Error::Internal(format!("refusing to set {} to a value with a NUL", setting.name())));
        }
        let value = match setting {
            Setting::SearchPath(_) => format!("\"{}\"", value.replace('"', "\"\"")),
            _ => literal(value),
        };
        sql.push_str(&format!("SET LOCAL {} = {value}; ", setting.name()));
    }
    Ok(sql)
}

/// `value` as an escape-string literal (`E'…'`, quotes and backslashes doubled), which reads
/// the same whatever `standard_conforming_strings` says. Only for values that can't hold a NUL
/// (hex we computed, parsed slugs; `set_local_sql` refuses one first): PostgreSQL would.
pub(crate) fn literal(value: &str) -> String {
    debug_assert!(!value.contains('\0'), "a NUL can't be in a literal");
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Opens a transaction (`READ ONLY` if asked) and makes `settings` in it.
///
/// Two round trips, on purpose: the settings go only once sqlx holds the transaction, so a
/// request dropped half-way rolls them back with it. (Sent together with `BEGIN`, a drop
/// between the two would return the connection to the pool still inside a transaction that
/// carries another request's tenant.) The `BEGIN` itself can't be cut short ([`open`]).
pub fn begin(
    pool: &PgPool,
    mode: impl Into<TxMode>,
    settings: &[(Setting, &str)],
) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>>> + Send + 'static {
    // (A plain function returning an owned future, not an `async fn`: a future that borrows
    // the settings trips the compiler's `Send` check inside server functions.)
    let pool = pool.clone();
    let sql = set_local_sql(settings);
    let mode = mode.into();
    async move {
        let sql = sql?;
        let mut tx = open(&pool, mode).await?;
        if !sql.is_empty() {
            sqlx::Executor::execute(&mut *tx, sql.as_str()).await?;
        }
        Ok(tx)
    }
}

/// How a transaction reads: `true`/`false` (read-only or not) convert, as most callers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxMode {
    ReadWrite,
    ReadOnly,
    /// Read-only, every statement seeing the same moment (`REPEATABLE READ`): for a check that
    /// reads in several statements and must not see a commit land between them.
    Snapshot,
}

impl From<bool> for TxMode {
    fn from(read_only: bool) -> Self {
        if read_only {
            TxMode::ReadOnly
        } else {
            TxMode::ReadWrite
        }
    }
}

/// Opens a transaction, `READ ONLY` if asked, without settings (see [`begin`]).
///
/// The connection is borrowed here, where waiting can be cancelled (a request dropped, the
/// door's time limit); the `BEGIN` then runs in a task of its own, so nothing can cancel it
/// half-way. sqlx 0.8 can't undo a `BEGIN` dropped while in flight (its guard only rolls back
/// once the transaction is counted), so a client that disconnected at that moment used to leave
/// the server in a transaction on a pooled connection: the next borrower's `BEGIN` then only
/// warned and its work ran inside that one, refused as read-only or not read-only when it
/// asked to be. Finished in its task, the transaction is either handed over or, if nobody
/// waits for it any more, dropped, which makes sqlx roll it back before the connection is
/// lent again.
pub async fn open(pool: &PgPool, mode: impl Into<TxMode>) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    use tracing::Instrument;
    let mode = mode.into();
    let connection = pool.acquire().await?;
    let statement = match mode {
        TxMode::ReadWrite => "BEGIN",
        TxMode::ReadOnly => "BEGIN READ ONLY",
        TxMode::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    let read_only = mode != TxMode::ReadWrite;
    // `Pool::begin_with` is this same call after its own `acquire`.
    let begin = tokio::spawn(sqlx::Transaction::begin(connection, Some(statement.into())).instrument(tracing::Span::current()));
    tracing::debug!(target: "tessera::db", read_only, "transaction");
    begin.await.map_err(|e| sqlx::Error::Protocol(format!("starting a transaction failed: {e}")))?
}

/// A transaction that may handle `user_id`'s credentials (the account policies), and no one
/// else's.
pub fn account_tx(
    pool: &PgPool,
    read_only: bool,
    user_id: uuid::Uuid,
) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>>> + Send + 'static {
    begin(pool, read_only, &[(Setting::AccountId, &user_id.to_string())])
}

/// Makes `settings` in the transaction `conn` is in (they end with it).
pub fn set_local<'c>(
    conn: &'c mut sqlx::PgConnection,
    settings: &[(Setting, &str)],
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'c>> {
    let sql = set_local_sql(settings);
    Box::pin(async move {
        // A query without parameters goes as a simple query, so several SETs make one trip.
        sqlx::Executor::execute(conn, sql?.as_str()).await?;
        Ok(())
    })
}

/// Lowercase hex, as digests are passed in settings (`decode(…, 'hex')` in the policies).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
