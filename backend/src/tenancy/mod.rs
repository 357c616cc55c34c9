//! The one door to tenant data.
//!
//! Tenant rows are reachable only through [`ReadTx`] and [`WriteTx`], which this module opens
//! after a permission check. Two kinds exist:
//!
//! - **data** transactions ([`Tenancy::read`], [`Tenancy::write`]) run wherever the tenant's data
//!   lives: its region's shared schema (pooled), its own schema, or its own database. The door
//!   picks the pool and sets `search_path` and `app.tenant_id` *for this transaction only*
//!   (`SET LOCAL`, see [`crate::db::set_local`]), so the same SQL works in all three models, row-level security
//!   filters every statement, and nothing survives on a pooled (or PgBouncer) connection.
//! - **control** transactions ([`Tenancy::control_read`], [`Tenancy::control_write`]) run on the
//!   control plane for what must be global: memberships and the tenant's lifecycle.
//!
//! A [`WriteTx`] commits only together with the audit record that describes it, written in the
//! same transaction (so in the same database as the change).

pub mod lifecycle;
pub mod migrate;
mod org;
pub mod outbox;
pub mod placement;
pub mod provision;
pub mod relocate;
pub mod security;
mod system;
pub mod topology;

pub use org::Org;

/// What a write does, for billing's say on it ([`Tenancy::billing_allows`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Adds or changes something.
    Any,
    /// Only takes something away (a project, a member, a key, a session).
    Removal,
    /// Changes nothing: only records that something sensitive was read (an audit export).
    Record,
}

/// Proof that a setting naming an organization or its schema comes from the door: its only
/// field is private to this module, so no other module (identity code holding a control-plane
/// pool, say) can build `Setting::TenantId` or `SearchPath`. Raw SQL that names them outside
/// the door is caught by a source scan (`only_the_door_sets_which_organization_a_transaction_sees`).
///
/// ```compile_fail
/// let _ = tessera_backend::db::Setting::TenantId(tessera_backend::tenancy::DoorSeal(()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorSeal(());

const SEAL: DoorSeal = DoorSeal(());
pub use system::{Bookkeeping, DataJob, Maintenance, SystemActor, SystemRead, SystemWrite};

use crate::audit::{self, AuditEntry};
use crate::ctx::{Authn, Ctx, RequestMeta, TenantRef, TenantStatus};
use crate::db::Setting;
use crate::error::{unique_violation, Error, Result};
use crate::rate_limit::{Budgets, RateLimiter, Scope};
use placement::Placement;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use tessera_domain::dto::OrgSummary;
use tessera_domain::input::{FieldError, OrgName, OrgSlug};
use tessera_domain::placement::{PlacementOptions, RegionName, TenancyModel};
use tessera_domain::{AppError, Permission, Role};
use topology::Topology;
use uuid::Uuid;

#[derive(Clone)]
pub struct Tenancy {
    control: PgPool,
    topology: Arc<Topology>,
    /// Budgets spent on the way in: the organization's, and an API key's own.
    limiter: RateLimiter,
    /// Plans and payment state: restricted organizations are read-only at the door.
    billing: crate::billing::Billing,
}

/// Whose eyes a transaction on tenant data has: which restricted projects row-level security
/// shows it (see migration `project_access`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sight {
    /// A member (or their API key): restricted projects granted to them, or all of them when
    /// their role sees every project.
    Member { user_id: Uuid, sees_all: bool },
    /// Work nobody does as a member (jobs, billing's counts, moves): everything in the
    /// organization.
    Everything,
}

impl Sight {
    fn of(ctx: &Ctx) -> Self {
        Sight::Member { user_id: ctx.user_id, sees_all: ctx.sees_every_project() }
    }
}

/// A read-only transaction inside one tenant.
pub struct ReadTx {
    tx: Transaction<'static, Postgres>,
}

/// A read-write transaction inside one tenant, committed with its audit record.
pub struct WriteTx {
    tx: Transaction<'static, Postgres>,
    ctx: Ctx,
    /// Where the jobs it enqueues go: into the queue directly (control plane), or via the
    /// tenant's outbox (data; moved to the queue after the commit).
    outbox: Option<(Tenancy, Vec<outbox::OutboxJob>)>,
}

/// The tenant columns the door reads (`t` = tenants, `p` = its region's pooled_schemas row).
/// The owner's-rights lookups read the same columns as JSON (migrations `session_context` and
/// `api_key_entrance`): a column added here needs a migration there, or `TenantRow` won't parse.
const TENANT_COLUMNS: &str = "t.id, t.slug, t.name, t.status, t.model, t.region, t.database, t.schema_name,
    CASE WHEN t.model = 'pooled' THEN COALESCE(p.version, 0) ELSE t.schema_version END AS version,
    t.require_mfa, t.sso_satisfies_mfa, t.require_sso, t.billing";

#[derive(sqlx::FromRow, serde::Deserialize, Clone, Debug)]
struct TenantRow {
    id: Uuid,
    slug: String,
    name: String,
    status: String,
    model: String,
    region: String,
    database: Option<String>,
    schema_name: String,
    version: i64,
    require_mfa: bool,
    sso_satisfies_mfa: bool,
    require_sso: bool,
    /// `billing::Record`; NULL for an organization never billed.
    #[serde(default)]
    billing: Option<sqlx::types::Json<crate::billing::Record>>,
}

/// What `enter` reads: the organization and the caller's role in it (`None`: not a member).
/// Also read ahead with a page's session (`sessions::PageContext`, which only this crate builds).
#[derive(sqlx::FromRow, serde::Deserialize, Clone, Debug)]
pub(crate) struct Entrance {
    #[sqlx(flatten)]
    #[serde(flatten)]
    tenant: TenantRow,
    role: Option<String>,
    /// The organization's own role the member holds, if any (then `role` is `viewer`).
    #[serde(default)]
    custom_role: Option<sqlx::types::Json<StoredRole>>,
}

/// A custom role as stored: permissions by name (one a newer build dropped is ignored).
#[derive(serde::Deserialize, Clone, Debug)]
pub(crate) struct StoredRole {
    id: Uuid,
    name: String,
    permissions: Vec<String>,
}

/// What a member may do, from their membership's role and the custom role they hold.
fn rights(role: &str, custom: Option<StoredRole>) -> Result<tessera_domain::Rights> {
    use tessera_domain::{CustomRole, Permission, Rights};
    Ok(match custom {
        Some(StoredRole { id, name, permissions }) => {
            Rights::Custom(CustomRole { id, name, permissions: permissions.iter().filter_map(|p| Permission::parse(p)).collect() })
        }
        None => Rights::BuiltIn(role.parse::<Role>().map_err(|e| Error::Internal(e.to_string()))?),
    })
}

/// What `api_key_entrance` answers: the key, its organization, and its creator's role there.
#[derive(serde::Deserialize)]
struct ApiKeyRow {
    #[serde(flatten)]
    tenant: TenantRow,
    key_id: Uuid,
    scopes: Vec<String>,
    created_by: Uuid,
    revoked: bool,
    /// `None` for a key that never expires.
    expired: Option<bool>,
    expired_on: Option<String>,
    creator_role: Option<String>,
    #[serde(default)]
    creator_custom_role: Option<StoredRole>,
}

/// A tenant as the door found it, if it can be served now: suspended organizations are
/// refused, and one whose data is behind this build's migrations waits for them.
fn servable(row: TenantRow) -> Result<TenantRef> {
    let TenantRow { id, slug, name, status, model, region, database, schema_name, version, require_mfa, sso_satisfies_mfa, require_sso, billing } =
        row;
    let status = match status.as_str() {
        "active" => TenantStatus::Active,
        "moving" => TenantStatus::Moving,
        "deleting" => TenantStatus::Deleting,
        "suspended" => return Err(AppError::Forbidden("This organization is suspended. Its owners can contact support to restore it.".into()).into()),
        _ => return Err(AppError::not_found().into()),
    };
    if version < provision::latest_tenant_version() {
        return Err(AppError::Unavailable(format!(
            "{name} is being upgraded to the latest version. This takes a minute or two; please try again shortly."
        ))
        .into());
    }
    let placement = Placement::from_row(&model, region, database, schema_name)?;
    let billing = billing.map(|json| json.0);
    Ok(TenantRef { id, slug, name, placement, status, require_mfa, sso_satisfies_mfa, require_sso, billing })
}

impl Tenancy {
    pub fn new(control: PgPool, topology: Arc<Topology>) -> Self {
        Self { control, topology, limiter: RateLimiter::local(Budgets::UNLIMITED), billing: crate::billing::Billing::off() }
    }

    /// Sets billing up (the server's configuration; off until then).
    pub fn set_billing(&mut self, billing: crate::billing::Billing) {
        self.billing = billing;
    }

    pub fn billing(&self) -> &crate::billing::Billing {
        &self.billing
    }

    /// Replaces the request budgets (the server's configuration; Redis to share them).
    pub fn set_rate_limiter(&mut self, limiter: RateLimiter) {
        self.limiter = limiter;
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The regions and models onboarding may offer: a dedicated database only while the
    /// deployment has room for one.
    pub async fn placement_options(&self) -> Result<PlacementOptions> {
        let mut options = self.topology.options();
        if options.models.contains(&TenancyModel::Dedicated) {
            let mut tx = crate::db::begin(&self.control, true, &[]).await?;
            if !self.room_for_dedicated(&mut tx).await? {
                options.models.retain(|m| *m != TenancyModel::Dedicated);
            }
            tx.commit().await?;
        }
        Ok(options)
    }

    async fn begin_data(&self, tenant: &TenantRef, sight: Sight, mode: impl Into<crate::db::TxMode>) -> Result<Transaction<'static, Postgres>> {
        let pool = self.topology.pool_for(&tenant.placement)?;
        let mode = mode.into();
        let open = async {
            // Any failure to open is about reaching that database, not about the request.
            let mut tx = crate::db::open(&pool, mode).await.map_err(|e| unreachable(tenant, e, true))?;
            let (id, timeout) = (tenant.id.to_string(), format!("{}ms", self.topology.statement_timeout().as_millis()));
            let (user, sees_all) = match sight {
                Sight::Member { user_id, sees_all } => (user_id.to_string(), if sees_all { "on" } else { "off" }),
                Sight::Everything => (String::new(), "on"),
            };
            let settings = [
                (Setting::SearchPath(SEAL), tenant.placement.schema.as_str()),
                (Setting::TenantId(SEAL), &id),
                (Setting::UserId, &user),
                (Setting::SeesAll(SEAL), sees_all),
                (Setting::StatementTimeout, &timeout),
            ];
            crate::db::set_local(&mut tx, &settings).await.map_err(|e| match e {
                Error::Db(e) => unreachable(tenant, e, false),
                other => other,
            })?;
            Ok::<_, Error>(tx)
        };
        // A slow tenant database (or a PgBouncer queue in front of a dead one) must not hold a
        // request forever: past the acquire timeout and a grace second it is that tenant's 503.
        let limit = self.topology.acquire_timeout() + std::time::Duration::from_secs(1);
        match tokio::time::timeout(limit, open).await {
            Ok(result) => result,
            Err(_) => Err(unreachable(tenant, sqlx::Error::PoolTimedOut, true)),
        }
    }

    async fn begin_control(&self, tenant_id: Uuid, mode: impl Into<crate::db::TxMode>) -> Result<Transaction<'static, Postgres>> {
        crate::db::begin(&self.control, mode, &[(Setting::TenantId(SEAL), &tenant_id.to_string())]).await
    }

    /// Read-only transactions on the organization's data and its control-plane rows that each
    /// see one moment throughout (see `db::TxMode::Snapshot`), if its role has `permission`.
    pub(crate) async fn read_snapshots(&self, ctx: &Ctx, permission: Permission) -> Result<(ReadTx, ReadTx)> {
        ctx.require(permission)?;
        self.snapshots(&ctx.tenant, Sight::of(ctx)).await
    }

    async fn snapshots(&self, tenant: &TenantRef, sight: Sight) -> Result<(ReadTx, ReadTx)> {
        let (control, data) = tokio::try_join!(
            self.begin_control(tenant.id, crate::db::TxMode::Snapshot),
            self.begin_data(tenant, sight, crate::db::TxMode::Snapshot)
        )?;
        Ok((ReadTx { tx: control }, ReadTx { tx: data }))
    }

    /// Opens a read-only transaction on the tenant's data, if its role has `permission`.
    async fn read(&self, ctx: &Ctx, permission: Permission) -> Result<ReadTx> {
        ctx.require(permission)?;
        self.open_read(ctx).await
    }

    /// A read-only transaction on the tenant's data with the actor's sight, checked by the
    /// caller (`Org::project_read` asks about one project in it).
    async fn open_read(&self, ctx: &Ctx) -> Result<ReadTx> {
        Ok(ReadTx { tx: self.begin_data(&ctx.tenant, Sight::of(ctx), true).await? })
    }

    /// Opens a write transaction on the tenant's data, if its role has `permission` and the
    /// tenant is writable.
    async fn write(&self, ctx: &Ctx, permission: Permission, change: Change) -> Result<WriteTx> {
        ctx.require(permission)?;
        self.open_write(ctx, change).await
    }

    /// A write transaction on the tenant's data with the actor's sight, if the tenant is
    /// writable; the permission is checked by the caller (`Org::project_write`).
    async fn open_write(&self, ctx: &Ctx, change: Change) -> Result<WriteTx> {
        writable(&ctx.tenant)?;
        self.billing_allows(ctx, change).await?;
        let tx = self.begin_data_write(&ctx.tenant, Sight::of(ctx)).await?;
        Ok(WriteTx { tx, ctx: ctx.clone(), outbox: Some((self.clone(), Vec::new())) })
    }

    /// A write transaction on the tenant's data that a move can't overtake.
    async fn begin_data_write(&self, tenant: &TenantRef, sight: Sight) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.begin_data(tenant, sight, false).await?;
        // A move seals the old place (under the exclusive form of this lock) before copying;
        // taking the shared lock first means this write either finishes before the seal or
        // sees it, so no write can land in a place that has already been copied.
        sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))").bind(relocate::fence_key(tenant.id)).execute(&mut *tx).await?;
        let sealed: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenant_fence)").fetch_one(&mut *tx).await?;
        if sealed {
            return Err(moving_error().into());
        }
        Ok(tx)
    }

    /// A read-only control-plane transaction in the tenant (its team, its lifecycle).
    async fn control_read(&self, ctx: &Ctx, permission: Permission) -> Result<ReadTx> {
        ctx.require(permission)?;
        Ok(ReadTx { tx: self.begin_control(ctx.tenant.id, true).await? })
    }

    /// A control-plane write in the tenant, committed with its audit record.
    async fn control_write(&self, ctx: &Ctx, permission: Permission, change: Change) -> Result<WriteTx> {
        ctx.require(permission)?;
        // Recording a read changes nothing, so it is allowed while moving or being deleted
        // (when an Owner most wants the export).
        if change != Change::Record {
            writable(&ctx.tenant)?;
        }
        self.billing_allows(ctx, change).await?;
        Ok(WriteTx { tx: self.begin_control(ctx.tenant.id, false).await?, ctx: ctx.clone(), outbox: None })
    }

    /// Billing's say on a change: none while the subscription is unpaid past its grace period,
    /// and none after a subscription or trial ended while the organization has more than the
    /// free plan includes (see [`Tenancy::require_within_free_plan`]).
    /// Removals always pass: they gain nothing unpaid, reduce what is over the limits, and
    /// refusing them would keep a leaked key or a departed member in.
    async fn billing_allows(&self, ctx: &Ctx, change: Change) -> Result<()> {
        if matches!(change, Change::Removal | Change::Record) {
            return Ok(());
        }
        let view = self.billing.view(ctx.tenant.billing.as_ref());
        view.require_writable()?;
        self.require_within_free_plan(&ctx.tenant, &view).await
    }

    /// After a subscription or trial ended (the free plan applies), refuses a change while the
    /// organization has more members or projects than the free plan includes: what it has is
    /// kept and readable, and the refusal says how to get out. Counted on each change, only in
    /// that state (two small counts; every other state costs nothing).
    pub(crate) async fn require_within_free_plan(&self, tenant: &TenantRef, view: &crate::billing::View) -> Result<()> {
        if !matches!(view.state, tessera_domain::billing::BillingState::Ended { .. }) {
            return Ok(());
        }
        let seats = {
            let mut tx = self.begin_control(tenant.id, true).await?;
            crate::billing::account::seats_used(&mut tx, tenant.id).await?
        };
        let projects = self.project_count(tenant).await?;
        view.entitlements.fits(seats, u32::try_from(projects).unwrap_or(u32::MAX)).map_err(|refusal| AppError::PaymentRequired(refusal.0))?;
        Ok(())
    }

    /// How many projects the organization has, restricted ones too, whoever asks (a plan's
    /// limit counts them all).
    pub(crate) async fn project_count(&self, tenant: &TenantRef) -> Result<i64> {
        let mut tx = self.begin_data(tenant, Sight::Everything, true).await?;
        Ok(sqlx::query_scalar("SELECT count(*) FROM projects").fetch_one(&mut *tx).await?)
    }

    /// A control-plane write about billing (its audit records): allowed while the organization
    /// is read-only for an unpaid subscription, since paying is how that ends.
    async fn billing_write(&self, ctx: &Ctx, permission: Permission) -> Result<WriteTx> {
        ctx.require(permission)?;
        writable(&ctx.tenant)?;
        Ok(WriteTx { tx: self.begin_control(ctx.tenant.id, false).await?, ctx: ctx.clone(), outbox: None })
    }

    /// A control-plane write in a tenant scheduled for deletion: the one write allowed then
    /// (taking the deletion back), so it skips `control_write`'s writability guard.
    async fn control_write_while_deleting(&self, ctx: &Ctx, permission: Permission) -> Result<WriteTx> {
        ctx.require(permission)?;
        Ok(WriteTx { tx: self.begin_control(ctx.tenant.id, false).await?, ctx: ctx.clone(), outbox: None })
    }

    /// Resolves `/t/{slug}` for a user. A tenant that does not exist and one the user does not
    /// belong to look the same (404), so slugs of other organizations cannot be probed.
    ///
    /// An organization that requires two-factor authentication refuses (403, `MfaRequired`)
    /// a member whose sign-in had none, unless it came through the organization's own IdP and
    /// the organization trusts its IdP's MFA.
    pub async fn enter(&self, authn: Authn, slug: &str, meta: RequestMeta) -> Result<Org> {
        self.enter_with(authn, slug, None, meta).await
    }

    /// As [`Tenancy::enter`], taking the organization and role from `page` (read with the
    /// request's session) when it was read for this user and slug, instead of asking again.
    pub async fn enter_with(&self, authn: Authn, slug: &str, page: Option<&crate::sessions::PageContext>, meta: RequestMeta) -> Result<Org> {
        let user_id = authn.user_id;
        let slug = known_slug(slug)?;
        let read_ahead = page
            .filter(|page| page.user_id == Some(user_id))
            .and_then(|page| page.entrance.as_ref())
            .filter(|entrance| entrance.tenant.slug == slug.as_str());
        let row = match read_ahead {
            Some(entrance) => Some(entrance.clone()),
            None => self.entrance(user_id, &slug).await?,
        };
        let Some(Entrance { tenant, role: Some(role), custom_role }) = row else {
            return Err(AppError::not_found().into());
        };
        let tenant = servable(tenant)?;
        let through_own_idp = authn.sso_tenant == Some(tenant.id) && tenant.sso_satisfies_mfa;
        if tenant.require_mfa && !authn.mfa && !through_own_idp {
            return Err(AppError::MfaRequired(format!(
                "{} requires two-factor authentication. Set up an authenticator app to continue; it takes a minute.",
                tenant.name
            ))
            .into());
        }
        let rights = rights(&role, custom_role.map(|json| json.0))?;
        if tenant.require_sso && authn.sso_tenant != Some(tenant.id) && !rights.is_owner() {
            return Err(AppError::SsoRequired(format!(
                "{} requires signing in through its single sign-on provider. Continue with SSO to get in.",
                tenant.name
            ))
            .into());
        }
        // Spent once the caller is known to be a member, so nobody else can spend it.
        self.limiter.admit(Scope::Organization(tenant.id), meta.spent.as_ref()).await?;
        Ok(Org::new(self.clone(), Ctx::new(tenant, user_id, rights, meta)))
    }

    /// The organization `slug` and `user_id`'s role in it.
    async fn entrance(&self, user_id: Uuid, slug: &tessera_domain::input::OrgSlug) -> Result<Option<Entrance>> {
        // With app.user_id set, the memberships policy shows only this user's own rows: one
        // query finds the tenant, where it lives, and the caller's role in it.
        let mut tx = crate::db::begin(&self.control, true, &[(Setting::UserId, &user_id.to_string())]).await?;
        let row: Option<Entrance> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS}, m.role,
                    (SELECT json_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                       FROM roles r WHERE r.id = m.custom_role_id AND r.tenant_id = t.id) AS custom_role
               FROM tenants t
               LEFT JOIN pooled_schemas p ON p.region = t.region
               LEFT JOIN memberships m ON m.tenant_id = t.id AND m.user_id = $2
              WHERE t.slug = $1 AND t.status <> 'deleted'"
        ))
        .bind(slug.as_str())
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Resolves `/t/{slug}` for an organization API key (`tsk_…`). A key that is unknown,
    /// revoked or expired is refused (401, saying which); a key of another organization finds
    /// nothing (404), as a non-member would. Marks the key as used (at most once a minute).
    pub async fn enter_with_api_key(&self, key: &str, slug: &str, meta: RequestMeta) -> Result<Org> {
        let hash = crate::db::hex(&crate::api_keys::digest(key));
        // One statement (migration `api_key_entrance`): the key's row is visible only to whoever
        // presents the key, as the api_keys policies say. Values inlined: hex we made, and a
        // slug only if it parses as one.
        let wanted = tessera_domain::input::OrgSlug::parse(slug).ok().map(|s| crate::db::literal(s.as_str()));
        let sql = format!("SELECT api_key_entrance({}, {})::text", crate::db::literal(&hash), wanted.as_deref().unwrap_or("NULL"));
        let json: Option<String> = sqlx::Row::try_get(&sqlx::raw_sql(&sql).fetch_one(&self.control).await?, 0)?;
        let row: Option<ApiKeyRow> =
            json.map(|json| serde_json::from_str(&json)).transpose().map_err(|e| Error::Internal(format!("API key entrance: {e}")))?;
        let Some(ApiKeyRow { tenant, key_id, scopes, created_by, revoked, expired, expired_on, creator_role, creator_custom_role }) = row else {
            return Err(AppError::BadCredentials("This API key isn't valid. Check it was copied whole, or ask an admin for a new one.".into()).into());
        };
        if revoked {
            return Err(AppError::BadCredentials("This API key was revoked. Ask an admin of the organization for a new one.".into()).into());
        }
        if expired == Some(true) {
            return Err(AppError::BadCredentials(format!(
                "This API key expired on {}. Ask an admin of the organization for a new one.",
                expired_on.unwrap_or_default()
            ))
            .into());
        }
        if known_slug(slug)?.as_str() != tenant.slug {
            return Err(AppError::not_found().into());
        }
        // The creator's role now: a key never does more than its creator still may.
        let Some(creator_rights) = creator_role.and_then(|role| rights(&role, creator_custom_role).ok()) else {
            return Err(AppError::BadCredentials(
                "The person who made this API key is no longer in the organization, so the key no longer works. Ask an admin for a new one.".into(),
            )
            .into());
        };
        let tenant = servable(tenant)?;
        // The key's own budget first: one busy integration runs out before it starves the
        // organization's people.
        self.limiter.admit(Scope::ApiKey(key_id), meta.spent.as_ref()).await?;
        self.limiter.admit(Scope::Organization(tenant.id), meta.spent.as_ref()).await?;
        let scopes = scopes.iter().filter_map(|s| tessera_domain::Scope::parse(s)).collect();
        Ok(Org::new(self.clone(), Ctx::for_api_key(tenant, created_by, creator_rights, crate::ctx::ApiKeyActor { id: key_id, scopes }, meta)))
    }

    /// The organizations a user belongs to (the tenant switcher). Runs with only `app.user_id`
    /// set, which the memberships policy allows to see that user's own rows and nothing else.
    /// A page request reads the same list with its session (`session_context`, keep in step).
    pub async fn organizations_of(&self, user_id: Uuid) -> Result<Vec<OrgSummary>> {
        let mut tx = crate::db::begin(&self.control, true, &[(Setting::UserId, &user_id.to_string())]).await?;
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT t.slug, t.name, m.role, (SELECT r.name FROM roles r WHERE r.id = m.custom_role_id)
               FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 AND t.status IN ('active', 'moving', 'deleting') ORDER BY lower(t.name), t.slug",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(slug, name, role, custom_role)| {
                let role = role.parse().map_err(|e: tessera_domain::role::UnknownRole| Error::Internal(e.to_string()))?;
                Ok(OrgSummary { slug, name, role, custom_role })
            })
            .collect()
    }

    /// Display names of users (for "created by" columns). Users are global, so this asks the
    /// control plane; tenant data stores only ids.
    pub async fn display_names(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = crate::db::open(&self.control, false).await?;
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, COALESCE(display_name, email) FROM users WHERE id = ANY($1)").bind(ids).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows.into_iter().collect())
    }

    /// People's names (their display name, else their address) and addresses by id.
    pub async fn people(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, (String, String)>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut tx = crate::db::open(&self.control, true).await?;
        let rows: Vec<(Uuid, String, String)> =
            sqlx::query_as("SELECT id, COALESCE(display_name, email), email FROM users WHERE id = ANY($1)").bind(ids).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|(id, name, email)| (id, (name, email))).collect())
    }

    /// Creates an organization with `user_id` as its first Owner, its data placed in `region`
    /// under `model`. The schema or database is made (and migrated) first; if the control-plane
    /// insert then fails (a slug taken meanwhile), it is removed again.
    pub async fn create_tenant(&self, user_id: Uuid, name: &str, slug: &str, region: &str, model: &str, meta: RequestMeta) -> Result<Org> {
        let name = OrgName::parse(name)?;
        let slug = OrgSlug::parse(slug)?;
        let model = TenancyModel::parse(model)?;
        let region = if region.trim().is_empty() { self.topology.default_region().clone() } else { RegionName::parse(region)? };
        self.topology.check_offer(model, region.as_str())?;
        let taken: bool = {
            let mut tx = crate::db::open(&self.control, false).await?;
            let taken = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1)").bind(slug.as_str()).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            taken
        };
        if taken {
            return Err(slug_taken(&slug).into());
        }
        // After the cheap checks, so a taken name or a typo doesn't use up the day's allowance.
        self.admit_new_organization(user_id, model, &meta).await?;
        let id = Uuid::new_v4();
        let placement = Placement::new(id, model, region.as_str());
        let version = provision::create_storage(&self.topology, &placement).await.map_err(|e| {
            tracing::error!(error = %e, placement = %placement.describe(), "provisioning a new tenant failed");
            AppError::Unavailable(format!(
                "We couldn't set up storage for your organization in {region} just now. Nothing was created; please try again in a minute."
            ))
        })?;
        match self.insert_tenant(user_id, id, &name, &slug, &placement, version, meta).await {
            Ok(ctx) => Ok(Org::new(self.clone(), ctx)),
            Err(e) => {
                // A lost connection can hide a commit that happened: only remove the storage
                // when the tenant row really isn't there.
                if self.tenant_exists(id).await.unwrap_or(true) {
                    tracing::error!(error = %e, tenant = %id, "creating a tenant reported an error, but its row may exist; storage kept");
                } else if let Err(undo) = provision::drop_storage(&self.topology, id, &placement, provision::Fence::Remove).await {
                    tracing::error!(error = %undo, placement = %placement.describe(), "could not remove storage of a tenant that was not created");
                }
                Err(e)
            }
        }
    }

    /// Creating an organization costs the operator real resources (a schema, or a whole
    /// database), so only people who proved their address may, at most so many a day per
    /// person and per network, and dedicated databases are capped for the deployment.
    async fn admit_new_organization(&self, user_id: Uuid, model: TenancyModel, meta: &RequestMeta) -> Result<()> {
        use crate::identity::throttle;
        let mut tx = crate::db::open(&self.control, false).await?;
        let confirmed: Option<bool> =
            sqlx::query_scalar("SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1").bind(user_id).fetch_optional(&mut *tx).await?;
        if confirmed != Some(true) {
            return Err(AppError::Forbidden(
                "Confirm your email address first (follow the link in the welcome mail), then create your organization.".into(),
            )
            .into());
        }
        throttle::hit(&mut tx, &format!("org:create:user:{user_id}"), throttle::ORGS_PER_USER).await?;
        if let Some(ip) = meta.ip {
            throttle::hit(&mut tx, &format!("org:create:ip:{ip}"), throttle::ORGS_PER_IP).await?;
        }
        // A quick answer before the database is made; `insert_tenant` decides for certain.
        if model == TenancyModel::Dedicated && !self.room_for_dedicated(&mut tx).await? {
            return Err(no_room_for_dedicated().into());
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the deployment's cap on dedicated databases leaves room for one more (a tenant
    /// moving into one holds its place).
    async fn room_for_dedicated(&self, conn: &mut PgConnection) -> Result<bool> {
        let dedicated: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tenants WHERE (model = 'dedicated' OR moving_to_model = 'dedicated') AND status <> 'deleted'")
                .fetch_one(&mut *conn)
                .await?;
        Ok((dedicated as u64) < self.topology.dedicated_tenants_max())
    }

    /// Takes one of the deployment's places for a dedicated database, for certain: whatever
    /// takes one (a creation, a move) counts under the same lock until its transaction ends,
    /// so two at once can't both take the last place. Refused (422) when there is none.
    pub(crate) async fn take_dedicated_place(&self, conn: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(DEDICATED_CAP_LOCK).execute(&mut *conn).await?;
        if !self.room_for_dedicated(conn).await? {
            return Err(no_room_for_dedicated().into());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_tenant(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &OrgName,
        slug: &OrgSlug,
        placement: &Placement,
        version: i64,
        meta: RequestMeta,
    ) -> Result<Ctx> {
        // A new organization's trial starts now, before Stripe hears of it (the job below tells
        // Stripe; an outage there doesn't hold up sign-up).
        let billing = self.billing.trial_record(crate::billing::now());
        let mut tx = self.begin_control(id, false).await?;
        if placement.model == TenancyModel::Dedicated {
            self.take_dedicated_place(&mut tx).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, slug, name, model, region, database, schema_name, schema_version, billing)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(slug.as_str())
        .bind(name.as_str())
        .bind(placement.model.as_str())
        .bind(&placement.region)
        .bind(placement.database.as_deref())
        .bind(&placement.schema)
        .bind(version)
        .bind(billing.clone().map(sqlx::types::Json))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            return Err(match unique_violation(&err) {
                Some(_) => slug_taken(slug).into(),
                None => err.into(),
            });
        }
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')").bind(id).bind(user_id).execute(&mut *tx).await?;
        let tenant = TenantRef {
            id,
            slug: slug.as_str().to_string(),
            name: name.as_str().to_string(),
            placement: placement.clone(),
            status: TenantStatus::Active,
            require_mfa: false,
            sso_satisfies_mfa: true,
            require_sso: false,
            billing: billing.clone(),
        };
        let ctx = Ctx::new(tenant, user_id, tessera_domain::Rights::BuiltIn(Role::Owner), meta);
        let mut write = WriteTx { tx, ctx: ctx.clone(), outbox: None };
        write.record(AuditEntry::new("membership.added", "user", user_id, serde_json::json!({ "role": { "new": "owner" } }))).await?;
        if self.billing.enabled() {
            write.enqueue(&crate::billing::account::OpenAccount { tenant_id: id }).await?;
        }
        write
            .commit(AuditEntry::new(
                "tenant.created",
                "tenant",
                id,
                serde_json::json!({
                    "name": { "new": name.as_str() },
                    "slug": { "new": slug.as_str() },
                    "region": { "new": placement.region },
                    "model": { "new": placement.model.as_str() },
                }),
            ))
            .await?;
        Ok(ctx)
    }

    /// The organization `id` as the door serves it, unless it is gone; a suspended one (or one
    /// waiting for migrations) is an error, so work for it waits and is retried.
    pub(crate) async fn tenant_by_id(&self, id: Uuid) -> Result<Option<TenantRef>> {
        let mut tx = self.begin_control(id, true).await?;
        let row: Option<TenantRow> = sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t LEFT JOIN pooled_schemas p ON p.region = t.region
              WHERE t.id = $1 AND t.status IN ('active', 'moving', 'deleting', 'suspended')"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(servable).transpose()
    }

    async fn tenant_exists(&self, id: Uuid) -> Result<bool> {
        let mut tx = crate::db::open(&self.control, false).await?;
        let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)").bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(exists)
    }

    fn control_pool(&self) -> &PgPool {
        &self.control
    }
}

fn slug_taken(slug: &OrgSlug) -> AppError {
    AppError::Conflict(FieldError::new("slug", format!("The URL name \"{}\" is taken. Try another.", slug.as_str())))
}

fn moving_error() -> AppError {
    AppError::Unavailable(
        "This organization's data is being moved to its new home. Changes are paused for a moment; please try again shortly.".into(),
    )
}

fn writable(tenant: &TenantRef) -> Result<()> {
    match tenant.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Moving => Err(moving_error().into()),
        TenantStatus::Deleting => Err(AppError::Conflict(FieldError::new(
            "organization",
            "This organization is scheduled for deletion, so it can't be changed. An Owner can cancel the deletion in Settings.",
        ))
        .into()),
    }
}

/// A tenant database that can't be reached is that tenant's outage, not a server fault.
/// `opening`: the error came from getting a connection, so whatever it is, it is about reaching
/// the database.
fn unreachable(tenant: &TenantRef, err: sqlx::Error, opening: bool) -> Error {
    let outage = opening
        || match &err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("57") || c.starts_with("08") || c == "3D000"),
            _ => false,
        };
    if !outage {
        return err.into();
    }
    tracing::warn!(tenant = %tenant.slug, placement = %tenant.placement.describe(), error = %err, "tenant database unreachable");
    AppError::Unavailable(format!(
        "We can't reach {}'s data right now. Other organizations are not affected; please try again in a minute.",
        tenant.name
    ))
    .into()
}

impl ReadTx {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl WriteTx {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Writes an extra audit record (a change with several effects) in this transaction.
    pub async fn record(&mut self, entry: AuditEntry) -> Result<()> {
        audit::insert(&mut self.tx, &self.ctx, &entry).await
    }

    /// Enqueues `job` to run once this change commits (never if it doesn't), in the
    /// organization's lane. Returns the job's id.
    pub async fn enqueue<J: crate::jobs::Job>(&mut self, job: &J) -> Result<Uuid> {
        match &mut self.outbox {
            None => crate::jobs::enqueue(&mut self.tx, crate::jobs::Lane::Organization(self.ctx.tenant.id), job).await,
            Some((_, queued)) => {
                let job = outbox::OutboxJob::of(job, None)?;
                job.insert(&mut self.tx).await?;
                queued.push(job.clone());
                Ok(job.id())
            }
        }
    }

    /// Writes the audit record for this change and commits both together.
    pub async fn commit(mut self, entry: AuditEntry) -> Result<()> {
        audit::insert(&mut self.tx, &self.ctx, &entry).await?;
        self.tx.commit().await?;
        if let Some((tenancy, queued)) = self.outbox {
            tenancy.relay(self.ctx.tenant, queued);
        } else {
            crate::jobs::wake();
        }
        Ok(())
    }

    /// The organization this transaction is in (for code that records events about it).
    pub fn tenant_id(&self) -> Uuid {
        self.ctx.tenant.id
    }
}

/// An organization's URL name as a request gave it. Anything that can't be one (control
/// characters, spaces, a reserved word) names no organization: not found, like a slug nobody
/// took, and it never reaches a query.
pub(crate) fn known_slug(raw: &str) -> Result<tessera_domain::input::OrgSlug> {
    tessera_domain::input::OrgSlug::parse(raw).map_err(|_| AppError::not_found().into())
}

/// The advisory lock under which places for dedicated databases are taken.
const DEDICATED_CAP_LOCK: &str = "tessera-dedicated-cap";

fn no_room_for_dedicated() -> AppError {
    AppError::Invalid(FieldError::new(
        "model",
        "This deployment has no room for another organization with its own database right now. Choose shared tables or an own schema (you can move later).",
    ))
}

#[cfg(test)]
mod tests {
    /// The seal covers the typed settings; this covers SQL text. Only the door (and `db`, which
    /// applies what the door sets) may name the settings that choose an organization's rows or
    /// the role a statement runs as: anywhere else, a raw `SET LOCAL app.tenant_id` would be a
    /// side door no type stops.
    #[test]
    fn only_the_door_sets_which_organization_a_transaction_sees() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        let mut stack: Vec<_> = ["backend/src", "server/src", "app/src"].iter().map(|dir| root.join(dir)).collect();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let door = path.ends_with("backend/src/tenancy") || path.ends_with("backend/src/db.rs");
                if path.is_dir() && !door {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !door {
                    let code = std::fs::read_to_string(&path).unwrap().to_ascii_lowercase();
                    for needle in ["app.tenant_id", "app.sees_all", "search_path", "set_config", "local role", "reset role", "session authorization"]
                    {
                        if code.contains(needle) {
                            offenders.push(format!("{} names {needle}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "only backend/src/tenancy and db.rs may:\n{}", offenders.join("\n"));
    }
}
