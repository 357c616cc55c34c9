//! The one door to tenant data.
//!
//! Tenant rows are reachable only through [`ReadTx`] and [`WriteTx`], which this module opens
//! after a permission check, with `app.tenant_id` set *for this transaction only*
//! (`set_config(.., true)`): row-level security then filters every statement, and nothing
//! survives on a pooled connection. A [`WriteTx`] commits only together with the audit record
//! that describes it, so a mutation without an audit entry cannot be written.

use crate::audit::{self, AuditEntry};
use crate::ctx::{Ctx, RequestMeta, TenantRef};
use crate::error::{unique_violation, Result};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tessera_domain::dto::OrgSummary;
use tessera_domain::input::{FieldError, OrgName, OrgSlug};
use tessera_domain::{AppError, Permission, Role};
use uuid::Uuid;

#[derive(Clone)]
pub struct Tenancy {
    pool: PgPool,
}

/// A read-only transaction inside one tenant.
pub struct ReadTx {
    tx: Transaction<'static, Postgres>,
}

/// A read-write transaction inside one tenant, committed with its audit record.
pub struct WriteTx {
    tx: Transaction<'static, Postgres>,
    ctx: Ctx,
}

impl Tenancy {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn begin_in(&self, tenant_id: Uuid, read_only: bool) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        if read_only {
            sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
        }
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant_id.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Opens a read-only transaction in the context's tenant, if its role has `permission`.
    pub async fn read(&self, ctx: &Ctx, permission: Permission) -> Result<ReadTx> {
        ctx.require(permission)?;
        Ok(ReadTx { tx: self.begin_in(ctx.tenant.id, true).await? })
    }

    /// Opens a write transaction in the context's tenant, if its role has `permission`.
    pub async fn write(&self, ctx: &Ctx, permission: Permission) -> Result<WriteTx> {
        ctx.require(permission)?;
        Ok(WriteTx { tx: self.begin_in(ctx.tenant.id, false).await?, ctx: ctx.clone() })
    }

    /// Resolves `/t/{slug}` for a user. A tenant that does not exist and one the user does not
    /// belong to look the same (404), so slugs of other organizations cannot be probed.
    pub async fn enter(&self, user_id: Uuid, slug: &str, meta: RequestMeta) -> Result<Ctx> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
        let tenant: Option<(Uuid, String, String)> =
            sqlx::query_as("SELECT id, slug, name FROM tenants WHERE slug = $1 AND status = 'active'")
                .bind(slug.trim().to_lowercase())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, slug, name)) = tenant else {
            return Err(AppError::not_found().into());
        };
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        let role = role.ok_or_else(AppError::not_found)?;
        let role = role.parse::<Role>().map_err(|e| crate::Error::Internal(e.to_string()))?;
        Ok(Ctx::new(TenantRef { id, slug, name }, user_id, role, meta))
    }

    /// The organizations a user belongs to (the tenant switcher). Runs with only `app.user_id`
    /// set, which the memberships policy allows to see that user's own rows and nothing else.
    pub async fn organizations_of(&self, user_id: Uuid) -> Result<Vec<OrgSummary>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY").execute(&mut *tx).await?;
        sqlx::query("SELECT set_config('app.user_id', $1, true)")
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT t.slug, t.name, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 AND t.status = 'active' ORDER BY lower(t.name), t.slug",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|(slug, name, role)| {
                let role = role.parse().map_err(|e: tessera_domain::role::UnknownRole| crate::Error::Internal(e.to_string()))?;
                Ok(OrgSummary { slug, name, role })
            })
            .collect()
    }

    /// Creates an organization with `user_id` as its first Owner, audited in the same transaction.
    pub async fn create_tenant(&self, user_id: Uuid, name: &str, slug: &str, meta: RequestMeta) -> Result<Ctx> {
        let name = OrgName::parse(name)?;
        let slug = OrgSlug::parse(slug)?;
        let id = Uuid::new_v4();
        let mut tx = self.begin_in(id, false).await?;
        let inserted = sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(slug.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await;
        if let Err(err) = inserted {
            return Err(match unique_violation(&err) {
                Some(_) => AppError::Conflict(FieldError::new(
                    "slug",
                    format!("The URL name \"{}\" is taken. Try another.", slug.as_str()),
                ))
                .into(),
                None => err.into(),
            });
        }
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let ctx = Ctx::new(
            TenantRef { id, slug: slug.as_str().to_string(), name: name.as_str().to_string() },
            user_id,
            Role::Owner,
            meta,
        );
        let mut write = WriteTx { tx, ctx: ctx.clone() };
        write
            .record(AuditEntry::new(
                "membership.added",
                "user",
                user_id,
                serde_json::json!({ "role": { "new": "owner" } }),
            ))
            .await?;
        write
            .commit(AuditEntry::new(
                "tenant.created",
                "tenant",
                id,
                serde_json::json!({ "name": { "new": name.as_str() }, "slug": { "new": slug.as_str() } }),
            ))
            .await?;
        Ok(ctx)
    }
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

    /// Writes the audit record for this change and commits both together.
    pub async fn commit(mut self, entry: AuditEntry) -> Result<()> {
        audit::insert(&mut self.tx, &self.ctx, &entry).await?;
        self.tx.commit().await?;
        Ok(())
    }
}
