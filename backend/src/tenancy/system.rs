//! The system entrance: the door for work done in an organization by nobody acting as its
//! member: answering an invitation, a sign-in through the organization's IdP, scheduled
//! maintenance, jobs. Members go through [`super::Org`]; everything else that touches an
//! organization's control-plane rows comes through here, so the pool and the tenant setting
//! stay inside `tenancy`.
//!
//! Four kinds of transaction, each named for what it may do:
//! - [`SystemRead`]: read-only; sees what a presented secret (an invitation token, a handoff,
//!   an email domain) unlocks in the row policies, and one organization's rows once `within`.
//! - [`SystemWrite`]: a change in one organization, committed only with its audit record.
//! - [`Bookkeeping`]: state that is no organization's data: the one-time secrets and counters
//!   of a sign-in in progress (SAML request ids, handoffs, refusal tallies), when a job last
//!   looked at something. Not audited itself (the sign-in it leads to is), though it can write
//!   an audit record for what it noticed (`record`); nothing else may use it.
//! - [`Maintenance`]: housekeeping across organizations under the `app.maintenance` policies,
//!   which show each job only the rows past use it removes.

use super::Tenancy;
use crate::audit::{self, AuditEntry};
use crate::ctx::RequestMeta;
use crate::db::Setting;
use crate::error::Result;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

/// Who acts when no member does, as the audit record names them.
pub enum SystemActor {
    /// A person not acting as a member (yet): accepting an invitation, signing in through the
    /// organization's IdP. `None` when not known, e.g. an emailed link declined.
    Person(Option<Uuid>, RequestMeta),
    /// Scheduled work or an operator's command (a move names itself with its request id); its
    /// name becomes the record's request id.
    Job(String),
}

pub struct SystemRead {
    tx: Transaction<'static, Postgres>,
}

impl SystemRead {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// From here on, the row policies show one organization's rows.
    pub async fn within(&mut self, tenant_id: Uuid) -> Result<()> {
        crate::db::set_local(&mut self.tx, &[(Setting::TenantId(super::SEAL), &tenant_id.to_string())]).await
    }
}

pub struct SystemWrite {
    tx: Transaction<'static, Postgres>,
    tenant_id: Uuid,
    actor: SystemActor,
}

impl SystemWrite {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Names the person acting once the transaction has found out who it is (a SAML sign-in
    /// learns it from the assertion).
    pub fn acting_as(&mut self, user_id: Uuid) {
        if let SystemActor::Person(user, _) = &mut self.actor {
            *user = Some(user_id);
        }
    }

    /// An extra audit record (a change with several effects) in this transaction.
    pub async fn record(&mut self, entry: AuditEntry) -> Result<()> {
        insert(&mut self.tx, self.tenant_id, &self.actor, &entry).await
    }

    /// Writes the audit record for this change and commits both together.
    pub async fn commit(mut self, entry: AuditEntry) -> Result<()> {
        self.record(entry).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

pub struct Bookkeeping {
    tx: Transaction<'static, Postgres>,
    tenant_id: Option<Uuid>,
}

impl Bookkeeping {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// An audit record for something the bookkeeping noticed (the first refused sign-in of its
    /// kind in a while), committed with it.
    pub async fn record(&mut self, actor: &SystemActor, entry: AuditEntry) -> Result<()> {
        let tenant_id = self.tenant_id.ok_or_else(|| crate::Error::Internal("bookkeeping without an organization can't record".into()))?;
        insert(&mut self.tx, tenant_id, actor, &entry).await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

pub struct Maintenance {
    tx: Transaction<'static, Postgres>,
    job: &'static str,
}

impl Maintenance {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits, and logs what the job did (`rows` removed or changed): no single organization's
    /// data changed, so the log is its record.
    pub async fn commit(self, rows: u64) -> Result<()> {
        self.tx.commit().await?;
        if rows > 0 {
            tracing::info!(job = self.job, rows, "maintenance");
        }
        Ok(())
    }
}

/// A job's write on one organization's *data* (its webhook deliveries, say): fenced against a
/// move like a member's write, the jobs it enqueues go through the outbox, and the audit
/// records it writes (for changes an admin would want to know of) name the job.
pub struct DataJob {
    tx: Transaction<'static, Postgres>,
    tenancy: Tenancy,
    tenant: crate::ctx::TenantRef,
    job: &'static str,
    queued: Vec<super::outbox::OutboxJob>,
}

impl DataJob {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub fn tenant(&self) -> &crate::ctx::TenantRef {
        &self.tenant
    }

    /// Enqueues `job` (in the organization's lane) to run once this commits.
    pub async fn enqueue<J: crate::jobs::Job>(&mut self, job: &J) -> Result<Uuid> {
        let job = super::outbox::OutboxJob::of(job, None)?;
        job.insert(&mut self.tx).await?;
        self.queued.push(job.clone());
        Ok(job.id())
    }

    /// An audit record, naming the job, committed with the change.
    pub async fn record(&mut self, entry: AuditEntry) -> Result<()> {
        audit::insert_system(&mut self.tx, self.tenant.id, &entry, self.job).await
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.tenancy.relay(self.tenant, self.queued);
        Ok(())
    }
}

/// The audit record of `entry`, naming `actor`.
async fn insert(conn: &mut PgConnection, tenant_id: Uuid, actor: &SystemActor, entry: &AuditEntry) -> Result<()> {
    match actor {
        SystemActor::Person(user, meta) => audit::insert_as(conn, tenant_id, *user, None, meta, entry).await,
        SystemActor::Job(name) => audit::insert_system(conn, tenant_id, entry, name).await,
    }
}

impl Tenancy {
    /// A read-only control-plane transaction for someone not acting as a member, seeing what
    /// `presented` (the digests and addresses a request proved) unlocks in the row policies.
    pub(crate) async fn system_read(&self, presented: &[(Setting, &str)]) -> Result<SystemRead> {
        if presented.iter().any(|(setting, _)| matches!(setting, Setting::TenantId(_) | Setting::SearchPath(_) | Setting::Maintenance)) {
            return Err(crate::Error::Internal("system_read: name the organization with `within`, maintenance with `maintenance`".into()));
        }
        Ok(SystemRead { tx: crate::db::begin(&self.control, true, presented).await? })
    }

    /// A read-only transaction in one organization's control-plane rows.
    pub(crate) async fn system_read_in(&self, tenant_id: Uuid) -> Result<SystemRead> {
        let mut read = self.system_read(&[]).await?;
        read.within(tenant_id).await?;
        Ok(read)
    }

    /// A change in one organization's control-plane rows by nobody acting as its member; it
    /// commits only with its audit record, which names `actor`.
    pub(crate) async fn system_write(&self, tenant_id: Uuid, actor: SystemActor) -> Result<SystemWrite> {
        Ok(SystemWrite { tx: self.begin_control(tenant_id, false).await?, tenant_id, actor })
    }

    /// Bookkeeping in one organization's control-plane rows (see [`Bookkeeping`]).
    pub(crate) async fn bookkeeping(&self, tenant_id: Uuid) -> Result<Bookkeeping> {
        Ok(Bookkeeping { tx: self.begin_control(tenant_id, false).await?, tenant_id: Some(tenant_id) })
    }

    /// Bookkeeping found by what the request presented (a handoff's digest), or none of any
    /// organization (a throttle bucket).
    pub(crate) async fn bookkeeping_presented(&self, presented: &[(Setting, &str)]) -> Result<Bookkeeping> {
        if presented.iter().any(|(setting, _)| matches!(setting, Setting::TenantId(_) | Setting::SearchPath(_) | Setting::Maintenance)) {
            return Err(crate::Error::Internal("bookkeeping_presented: no organization or maintenance settings".into()));
        }
        Ok(Bookkeeping { tx: crate::db::begin(&self.control, false, presented).await?, tenant_id: None })
    }

    /// Work a job does for one organization (`tenant_id`): its policies as `job` (the job
    /// queue's tables, notifications), and the organization's own control-plane rows (its
    /// members, to tell them).
    pub(crate) async fn maintenance_in(&self, job: &'static str, tenant_id: Uuid) -> Result<Maintenance> {
        let tenant = tenant_id.to_string();
        let settings = [(Setting::Maintenance, job), (Setting::TenantId(super::SEAL), tenant.as_str())];
        Ok(Maintenance { tx: crate::db::begin(&self.control, false, &settings).await?, job })
    }

    /// A job's write on `tenant_id`'s data (see [`DataJob`]); `None` when the organization is
    /// gone or scheduled for deletion (nothing is done for it any more). A move in progress, a
    /// suspension or pending migrations are errors, so the job is retried later.
    pub(crate) async fn data_job(&self, job: &'static str, tenant_id: Uuid) -> Result<Option<DataJob>> {
        let Some(tenant) = self.tenant_by_id(tenant_id).await? else { return Ok(None) };
        match tenant.status {
            crate::ctx::TenantStatus::Deleting => return Ok(None),
            crate::ctx::TenantStatus::Moving => return Err(super::moving_error().into()),
            crate::ctx::TenantStatus::Active => {}
        }
        let tx = self.begin_data_write(&tenant, super::Sight::Everything).await?;
        Ok(Some(DataJob { tx, tenancy: self.clone(), tenant, job, queued: Vec::new() }))
    }

    /// Checks one organization's two audit hash chains as an operator (`tessera-server audit
    /// verify`): read-only, and the checks answer with places and counts, not records. `None`
    /// when the organization is gone.
    pub async fn audit_chains(&self, tenant_id: Uuid) -> Result<Option<tessera_domain::audit::AuditIntegrity>> {
        use tessera_domain::audit::AuditLogName;
        let Some(tenant) = self.tenant_by_id(tenant_id).await? else { return Ok(None) };
        let (mut control, mut data) = self.snapshots(&tenant, super::Sight::Everything).await?;
        let (control, data) = tokio::try_join!(
            crate::audit::chain::check(control.conn(), tenant_id, AuditLogName::Organization),
            crate::audit::chain::check(data.conn(), tenant_id, AuditLogName::Data)
        )?;
        Ok(Some(crate::audit::combine(control, data)))
    }

    /// Housekeeping across organizations as `job` (the `app.maintenance` policies decide what
    /// it sees).
    pub(crate) async fn maintenance(&self, job: &'static str) -> Result<Maintenance> {
        Ok(Maintenance { tx: crate::db::begin(&self.control, false, &[(Setting::Maintenance, job)]).await?, job })
    }
}
