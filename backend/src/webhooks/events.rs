//! Recording events. A change to tenant data records its event in its own transaction
//! ([`emit`]); a change in the control plane (memberships) enqueues [`RecordEvent`] in its
//! transaction, which records the event in the organization's data when it runs. Either way an
//! event exists only if its change committed, and only when some endpoint wants it.

use super::delivery::Deliver;
use crate::error::Result;
use crate::jobs::{Job, Lane, RunningJob};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use tessera_domain::webhooks::{EventType, API_VERSION};
use tessera_domain::Role;
use time::OffsetDateTime;
use uuid::Uuid;

/// A transaction on an organization's data that can record events: a member's write
/// ([`crate::tenancy::WriteTx`] on data) or a job's ([`crate::tenancy::DataJob`]).
pub trait EventSink {
    fn conn(&mut self) -> &mut PgConnection;
    fn tenant_id(&self) -> Uuid;
    fn enqueue_delivery(&mut self, job: &Deliver) -> impl std::future::Future<Output = Result<Uuid>> + Send;
}

impl EventSink for crate::tenancy::WriteTx {
    fn conn(&mut self) -> &mut PgConnection {
        crate::tenancy::WriteTx::conn(self)
    }
    fn tenant_id(&self) -> Uuid {
        crate::tenancy::WriteTx::tenant_id(self)
    }
    fn enqueue_delivery(&mut self, job: &Deliver) -> impl std::future::Future<Output = Result<Uuid>> + Send {
        self.enqueue(job)
    }
}

impl EventSink for crate::tenancy::DataJob {
    fn conn(&mut self) -> &mut PgConnection {
        crate::tenancy::DataJob::conn(self)
    }
    fn tenant_id(&self) -> Uuid {
        self.tenant().id
    }
    fn enqueue_delivery(&mut self, job: &Deliver) -> impl std::future::Future<Output = Result<Uuid>> + Send {
        self.enqueue(job)
    }
}

/// An event about to be recorded.
pub struct Event {
    pub kind: EventType,
    /// What it is about, `<kind's resource>:<id>` (`project:…`): deliveries about one resource
    /// go in order.
    pub resource: String,
    /// When the change happened, if not now (a job recording it later).
    pub occurred_at: Option<OffsetDateTime>,
    pub data: serde_json::Value,
    /// Set when the event must have this id (a job recording it again must not make a second).
    pub id: Option<Uuid>,
    /// Only this endpoint, whatever it subscribes to (test events).
    pub only_endpoint: Option<Uuid>,
}

impl Event {
    /// An event about the resource `resource_id` of the kind's resource type.
    pub fn new(kind: EventType, resource_id: impl std::fmt::Display, data: serde_json::Value) -> Self {
        Self { kind, resource: format!("{}:{resource_id}", kind.resource()), occurred_at: None, data, id: None, only_endpoint: None }
    }
}

/// Records `event` in the transaction and queues a delivery to each enabled endpoint that
/// subscribes to it (none: nothing is written). Returns the event's id if it was recorded.
pub async fn emit<T: EventSink>(tx: &mut T, event: Event) -> Result<Option<Uuid>> {
    let endpoints: Vec<Uuid> = match event.only_endpoint {
        Some(id) => sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1").bind(id).fetch_all(tx.conn()).await?,
        None => {
            sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE enabled AND $1 = ANY(event_types) ORDER BY id")
                .bind(event.kind.as_str())
                .fetch_all(tx.conn())
                .await?
        }
    };
    if endpoints.is_empty() {
        return Ok(None);
    }
    let id = event.id.unwrap_or_else(Uuid::new_v4);
    let occurred_at = event.occurred_at.unwrap_or_else(OffsetDateTime::now_utc);
    let payload = envelope(id, event.kind, tx.tenant_id(), occurred_at, event.data);
    let recorded =
        sqlx::query("INSERT INTO webhook_events (id, type, resource, payload, occurred_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(event.kind.as_str())
            .bind(&event.resource)
            .bind(&payload)
            .bind(occurred_at)
            .execute(tx.conn())
            .await?
            .rows_affected();
    if recorded == 0 {
        // Recorded by an earlier run of the same job, deliveries and all.
        return Ok(None);
    }
    for endpoint in endpoints {
        let delivery = Uuid::new_v4();
        // Under the resource's lock (see `delivery::finish`): either the earlier delivery is
        // still unfinished and this one waits for it, or it has finished and this one goes now.
        super::delivery::lock_resource(tx.conn(), endpoint, &event.resource).await?;
        let earlier: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1 AND resource = $2 AND status IN ('held', 'pending'))",
        )
        .bind(endpoint)
        .bind(&event.resource)
        .fetch_one(tx.conn())
        .await?;
        let status = if earlier { "held" } else { "pending" };
        sqlx::query("INSERT INTO webhook_deliveries (id, event_id, endpoint_id, resource, status, next_attempt_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'pending' THEN now() END)")
            .bind(delivery)
            .bind(id)
            .bind(endpoint)
            .bind(&event.resource)
            .bind(status)
            .execute(tx.conn())
            .await?;
        if !earlier {
            tx.enqueue_delivery(&Deliver { delivery_id: delivery }).await?;
        }
    }
    Ok(Some(id))
}

/// The JSON body every delivery of the event sends, fixed when it happens.
fn envelope(id: Uuid, kind: EventType, tenant_id: Uuid, occurred_at: OffsetDateTime, data: serde_json::Value) -> String {
    json!({
        "id": id,
        "type": kind.as_str(),
        "api_version": API_VERSION,
        "timestamp": crate::members::rfc3339(occurred_at),
        "organization_id": tenant_id,
        "data": data,
    })
    .to_string()
}

/// A member as events describe them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberChange {
    pub kind: MemberEventKind,
    pub user_id: Uuid,
    pub role: Role,
    /// The role before a change.
    pub previous_role: Option<Role>,
    /// When it changed (Unix milliseconds): the event's `timestamp`, though it is recorded later.
    #[serde(default)]
    pub at_ms: Option<i64>,
}

impl MemberChange {
    pub fn now(kind: MemberEventKind, user_id: Uuid, role: Role, previous_role: Option<Role>) -> Self {
        let at_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        Self { kind, user_id, role, previous_role, at_ms: Some(at_ms) }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MemberEventKind {
    Added,
    RoleChanged,
    Removed,
}

/// Enqueues the recording of a membership change in the control-plane transaction that makes
/// it (the job runs in the organization's lane, which the row policy ties to that transaction).
pub(crate) async fn member_changed(conn: &mut PgConnection, tenant_id: Uuid, change: MemberChange) -> Result<()> {
    crate::jobs::enqueue(conn, Lane::Organization(tenant_id), &RecordEvent::Member(change)).await?;
    Ok(())
}

/// A change of billing state as the `billing.changed` event describes it, made when it is
/// announced (so its times are the announcement's view).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BillingChange {
    /// The event's `data`: the state now and `previous`.
    pub data: serde_json::Value,
    /// When it changed (Unix milliseconds).
    pub at_ms: i64,
}

impl BillingChange {
    /// From the state announced before (`previous`, a [`BillingState::label`]) to `now`.
    ///
    /// [`BillingState::label`]: tessera_domain::billing::BillingState::label
    pub fn now(previous: &str, now: &tessera_domain::billing::BillingState, free_plan: &str) -> Self {
        use tessera_domain::billing::{Access, BillingState};
        let time = |t: Option<i64>| t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()).map(crate::members::rfc3339);
        let (mut trial_ends_at, mut renews_at, mut cancels_at, mut restricts_at, mut ended_at, mut interval) = (None, None, None, None, None, None);
        let state = match now {
            BillingState::Free => "free",
            BillingState::Trialing { ends_at, .. } => {
                trial_ends_at = time(*ends_at);
                "trialing"
            }
            BillingState::Active { interval: every, renews_at: renews, cancels_at: cancels, .. } => {
                (renews_at, cancels_at, interval) = (time(*renews), time(*cancels), Some(every.as_str()));
                "active"
            }
            BillingState::PastDue { restricts_at: at, .. } => {
                restricts_at = time(Some(*at));
                "past_due"
            }
            BillingState::Restricted { .. } => "restricted",
            BillingState::Ended { ended_at: at, .. } => {
                ended_at = time(Some(*at));
                "ended"
            }
        };
        // A label is `state:plan:…`; the free state has no plan in it.
        let mut before = previous.split(':');
        let previous_state = before.next().unwrap_or_default();
        let previous_plan = before.next().filter(|_| previous_state != "ended").unwrap_or(free_plan);
        let data = json!({
            "billing": {
                "state": state, "plan": now.plan_key(free_plan), "interval": interval, "read_only": now.access() == Access::ReadOnly,
                "trial_ends_at": trial_ends_at, "renews_at": renews_at, "cancels_at": cancels_at, "restricts_at": restricts_at, "ended_at": ended_at,
            },
            "previous": { "state": previous_state, "plan": previous_plan },
        });
        Self { data, at_ms: (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64 }
    }
}

/// Enqueues the recording of a billing change in the control-plane transaction that announces
/// it.
pub(crate) async fn billing_changed(conn: &mut PgConnection, tenant_id: Uuid, change: BillingChange) -> Result<()> {
    crate::jobs::enqueue(conn, Lane::Organization(tenant_id), &RecordEvent::Billing(change)).await?;
    Ok(())
}

/// Records a control-plane change as an event in the organization's data. (Serialized as
/// `{"member": …}` or `{"billing": …}`.)
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordEvent {
    Member(MemberChange),
    Billing(BillingChange),
}

impl Job for RecordEvent {
    const KIND: &'static str = "webhooks.record_event";

    async fn run(self, job: &RunningJob) -> Result<()> {
        let Lane::Organization(tenant_id) = job.lane else {
            return Err(crate::Error::Internal("a webhook event job outside an organization's lane".into()));
        };
        let tenancy = &job.backend.tenancy;
        let change = match self {
            RecordEvent::Member(change) => change,
            RecordEvent::Billing(BillingChange { data, at_ms }) => {
                let occurred_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).ok();
                let Some(mut tx) = tenancy.data_job("webhooks.record_event", tenant_id).await? else { return Ok(()) };
                let event = Event { id: Some(job.id), occurred_at, ..Event::new(EventType::BillingChanged, tenant_id, data) };
                emit(&mut tx, event).await?;
                return tx.commit().await;
            }
        };
        let person: Option<(String, Option<String>)> = {
            let mut tx = tenancy.maintenance_in("jobs", tenant_id).await?;
            let row = sqlx::query_as("SELECT email, display_name FROM users WHERE id = $1").bind(change.user_id).fetch_optional(tx.conn()).await?;
            tx.commit(0).await?;
            row
        };
        let (email, name) = person.unwrap_or_default();
        let MemberChange { kind, user_id, role, previous_role, at_ms } = change;
        let occurred_at = at_ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok());
        let member = json!({ "user_id": user_id, "email": email, "name": name, "role": role.as_str() });
        let (kind, data) = match kind {
            MemberEventKind::Added => (EventType::MemberAdded, json!({ "member": member })),
            MemberEventKind::RoleChanged => {
                (EventType::MemberRoleChanged, json!({ "member": member, "previous": { "role": previous_role.map(Role::as_str) } }))
            }
            MemberEventKind::Removed => (EventType::MemberRemoved, json!({ "member": member })),
        };
        let Some(mut tx) = tenancy.data_job("webhooks.record_event", tenant_id).await? else { return Ok(()) };
        // The job's id, stable across its attempts, is the event's: a second run records nothing.
        let event = Event { id: Some(job.id), occurred_at, ..Event::new(kind, user_id, data) };
        emit(&mut tx, event).await?;
        tx.commit().await
    }
}

crate::register_job!(RecordEvent);

/// A project as events describe it.
pub fn project(
    id: Uuid,
    name: &str,
    description: &str,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
) -> serde_json::Value {
    json!({
        "id": id,
        "name": name,
        "description": description,
        "created_by": created_by,
        "created_at": crate::members::rfc3339(created_at),
        "updated_at": crate::members::rfc3339(updated_at),
    })
}
