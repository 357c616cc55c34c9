//! The organization handle: what the door gives a request that got into an organization, and
//! all a resource's services need. It pairs who is acting there (the [`Ctx`], whose fields it
//! derefs to) with the transactions the door opens for them, so a service takes `(&org, input)`
//! and has no way to reach tenant data but through `read` and `write`.

use super::{Change, ReadTx, Tenancy, WriteTx};
use crate::access::Lock;
use crate::ctx::Ctx;
use crate::error::Result;
use std::collections::HashMap;
use std::ops::Deref;
use tessera_domain::access::{ProjectStanding, Target};
use tessera_domain::Permission;
use uuid::Uuid;

#[derive(Clone)]
pub struct Org {
    tenancy: Tenancy,
    ctx: Ctx,
}

impl Org {
    pub(crate) fn new(tenancy: Tenancy, ctx: Ctx) -> Self {
        Self { tenancy, ctx }
    }

    /// A read-only transaction on the organization's data, if the actor has `permission`.
    pub async fn read(&self, permission: Permission) -> Result<ReadTx> {
        self.tenancy.read(&self.ctx, permission).await
    }

    /// A write on the organization's data, if the actor has `permission` and the organization
    /// is writable; it commits only with its audit record.
    pub async fn write(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.write(&self.ctx, permission, Change::Any).await
    }

    /// A write that only removes from the organization's data (a project, a document, an
    /// endpoint): allowed even while billing makes the organization read-only.
    pub(crate) async fn write_removal(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.write(&self.ctx, permission, Change::Removal).await
    }

    /// A read-only transaction on the organization's data about one project, if the actor may
    /// do `permission` there: the project as they stand towards it is read in the transaction
    /// (row-level security hides it when they can't see it: then not found) and judged by
    /// [`tessera_domain::access::can`]. Their role alone doesn't decide: a grant can give an
    /// organization Viewer more on one project.
    pub async fn project_read(&self, project: Uuid, permission: Permission) -> Result<(ReadTx, ProjectStanding)> {
        let mut tx = self.tenancy.open_read(&self.ctx).await?;
        let standing = crate::access::standing(tx.conn(), project, Lock::None).await?;
        self.ctx.require_on(permission, Target::Project(&standing), crate::projects::no_such_project)?;
        Ok((tx, standing))
    }

    /// A write on the organization's data about one project, judged as [`Org::project_read`]
    /// judges a read, holding `lock` on the project until it commits (with its audit record).
    pub(crate) async fn project_write(
        &self,
        project: Uuid,
        permission: Permission,
        lock: Lock,
        change: Change,
    ) -> Result<(WriteTx, ProjectStanding)> {
        let mut tx = self.tenancy.open_write(&self.ctx, change).await?;
        let standing = crate::access::standing(tx.conn(), project, lock).await?;
        self.ctx.require_on(permission, Target::Project(&standing), crate::projects::no_such_project)?;
        Ok((tx, standing))
    }

    /// A read-only control-plane transaction in the organization (its team, its lifecycle).
    pub async fn control_read(&self, permission: Permission) -> Result<ReadTx> {
        self.tenancy.control_read(&self.ctx, permission).await
    }

    /// Read-only transactions on the organization's data and on its control-plane rows, each
    /// seeing one moment throughout: for a check that reads in several statements.
    pub(crate) async fn read_snapshots(&self, permission: Permission) -> Result<(ReadTx, ReadTx)> {
        self.tenancy.read_snapshots(&self.ctx, permission).await
    }

    /// A control-plane write in the organization, committed with its audit record.
    pub async fn control_write(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.control_write(&self.ctx, permission, Change::Any).await
    }

    /// A control-plane write that only removes (a member, an invitation, a key, a session):
    /// allowed even while billing makes the organization read-only.
    pub(crate) async fn control_write_removal(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.control_write(&self.ctx, permission, Change::Removal).await
    }

    /// Records in the organization's log that something sensitive was read (an audit export),
    /// changing nothing else: allowed in every billing state, as reading is.
    pub(crate) async fn record_read(&self, permission: Permission, entry: crate::audit::AuditEntry) -> Result<()> {
        self.tenancy.control_write(&self.ctx, permission, Change::Record).await?.commit(entry).await
    }

    /// A control-plane write about billing, allowed while unpaid (paying is how that ends).
    pub(crate) async fn billing_write(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.billing_write(&self.ctx, permission).await
    }

    /// A control-plane write while the organization is scheduled for deletion: only for taking
    /// that back (`lifecycle::cancel_deletion`).
    pub(super) async fn control_write_while_deleting(&self, permission: Permission) -> Result<WriteTx> {
        self.tenancy.control_write_while_deleting(&self.ctx, permission).await
    }

    /// The door itself (billing's configuration, for services that need it).
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The organization's billing now: its state and what its plan allows.
    pub fn billing(&self) -> crate::billing::View {
        self.tenancy.billing().view(self.ctx.tenant.billing.as_ref())
    }

    /// Refuses (402, saying how to get it) what needs a feature the organization's plan lacks.
    pub fn require_feature(&self, feature: tessera_domain::billing::Feature) -> Result<(), tessera_domain::AppError> {
        self.billing().entitlements.require(feature).map_err(|refusal| tessera_domain::AppError::PaymentRequired(refusal.0))
    }

    /// People's display names by id, for "created by" columns (tenant data keeps only ids;
    /// people live in the control plane, maybe on another cluster).
    pub async fn display_names(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, String>> {
        self.tenancy.display_names(ids).await
    }
}

impl Deref for Org {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}
