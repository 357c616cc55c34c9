//! Sending one event to one endpoint: a job per delivery, retried on the Standard Webhooks
//! schedule, each attempt logged, the endpoint switched off after failing for too long.

use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::jobs::{Job, Lane, RunningJob};
use crate::notifications::Event as Notice;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use std::time::{Duration, Instant};
use tessera_domain::webhooks::RESPONSE_KEPT_BYTES;
use time::OffsetDateTime;
use uuid::Uuid;

/// Waits after failed attempts 1 to 7; the eighth attempt is the last.
const RETRY_AFTER: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How much of a response is read at all (the rest is not waited for).
const RESPONSE_READ_LIMIT: usize = 64 * 1024;

/// Sends delivery `delivery_id` (in the job's lane's organization).
#[derive(Serialize, Deserialize)]
pub struct Deliver {
    pub delivery_id: Uuid,
}

/// Takes the lock that orders one endpoint's deliveries about one resource, for the rest of
/// the transaction: recording a delivery and finishing one take it, so a delivery is either
/// held behind an unfinished one or released when it finishes, never both missed.
pub(crate) async fn lock_resource(conn: &mut PgConnection, endpoint_id: Uuid, resource: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(format!("webhook:{endpoint_id}:{resource}")).execute(conn).await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Outgoing {
    status: String,
    event_id: Uuid,
    event_type: String,
    resource: String,
    payload: String,
    endpoint_id: Uuid,
    url: String,
    enabled: bool,
    secret_sealed: Vec<u8>,
    previous_secret_sealed: Option<Vec<u8>>,
}

/// What one attempt sent and got.
struct Attempt {
    attempted_at: OffsetDateTime,
    duration_ms: i32,
    request_headers: Vec<(String, String)>,
    response_status: Option<i32>,
    response_headers: Vec<(String, String)>,
    response_body: Option<String>,
    response_truncated: bool,
    error: Option<String>,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        self.response_status.is_some_and(|s| (200..300).contains(&s))
    }

    /// What the delivery list says went wrong.
    fn problem(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(error.clone());
        }
        match self.response_status {
            Some(status) if (300..400).contains(&status) => {
                Some(format!("The endpoint answered {status} (a redirect). Redirects aren't followed: register the final URL."))
            }
            Some(status) if !(200..300).contains(&status) => Some(format!("The endpoint answered {status}; only a 2xx status counts as received.")),
            _ => None,
        }
    }
}

impl Job for Deliver {
    const KIND: &'static str = "webhooks.deliver";
    const MAX_ATTEMPTS: i32 = RETRY_AFTER.len() as i32 + 1;
    const TIMEOUT: Duration = Duration::from_secs(60);
    /// An endpoint may take 15 s a request: two at a time per organization leaves the other
    /// workers to everyone else.
    const MAX_RUNNING_PER_LANE: Option<u32> = Some(2);

    fn retry_after(attempt: i32) -> Duration {
        RETRY_AFTER[(attempt.max(1) as usize - 1).min(RETRY_AFTER.len() - 1)]
    }

    async fn run(self, job: &RunningJob) -> Result<()> {
        let Lane::Organization(tenant_id) = job.lane else {
            return Err(Error::Internal("a webhook delivery outside an organization's lane".into()));
        };
        let outcome = self.attempt(job, tenant_id).await;
        // The last attempt failed some other way than at the endpoint (a database error, a move,
        // a suspension): the delivery still ends, so the ones held behind it go.
        if let Err(e) = &outcome {
            if job.attempt >= Self::MAX_ATTEMPTS {
                if let Err(also) = give_up(job, tenant_id, self.delivery_id, &e.to_string()).await {
                    tracing::error!(delivery = %self.delivery_id, error = %also, "a webhook delivery couldn't be marked failed; an admin can resend it");
                }
            }
        }
        outcome
    }
}

impl Deliver {
    async fn attempt(&self, job: &RunningJob, tenant_id: Uuid) -> Result<()> {
        let backend = &job.backend;
        let webhooks = &backend.webhooks;
        let Some(mut tx) = backend.tenancy.data_job("webhooks.deliver", tenant_id).await? else { return Ok(()) };
        let found: Option<Outgoing> = sqlx::query_as(
            "SELECT d.status, d.event_id, e.type AS event_type, d.resource, e.payload, d.endpoint_id, p.url, p.enabled, p.secret_sealed,
                    CASE WHEN p.previous_secret_until > now() THEN p.previous_secret_sealed END AS previous_secret_sealed
               FROM webhook_deliveries d
               JOIN webhook_events e ON e.id = d.event_id
               JOIN webhook_endpoints p ON p.id = d.endpoint_id
              WHERE d.id = $1",
        )
        .bind(self.delivery_id)
        .fetch_optional(tx.conn())
        .await?;
        // Gone with its endpoint or event, or already finished by an earlier run.
        let Some(outgoing) = found.filter(|p| p.status == "pending") else { return Ok(()) };
        // A test event goes to a switched-off endpoint too: that's how to check it before
        // switching it back on.
        if !outgoing.enabled && outgoing.event_type != "webhook.test" {
            let why = "The endpoint is switched off; the event wasn't sent. Replay it once the endpoint is on again.";
            finish(&mut tx, self.delivery_id, &outgoing, Outcome { status: "failed", attempted: false, response_status: None, problem: Some(why) })
                .await?;
            return tx.commit().await;
        }
        let mut secrets = vec![webhooks.open(&outgoing.secret_sealed)?];
        if let Some(previous) = &outgoing.previous_secret_sealed {
            secrets.push(webhooks.open(previous)?);
        }
        // Nothing held open while the endpoint takes its time.
        drop(tx);

        let attempt = send(webhooks, &outgoing, &secrets).await?;

        let Some(mut tx) = backend.tenancy.data_job("webhooks.deliver", tenant_id).await? else { return Ok(()) };
        lock_resource(tx.conn(), outgoing.endpoint_id, &outgoing.resource).await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (id, delivery_id, attempted_at, duration_ms, request_headers, response_status, response_headers,
                                           response_body, response_truncated, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(Uuid::new_v4())
        .bind(self.delivery_id)
        .bind(attempt.attempted_at)
        .bind(attempt.duration_ms)
        .bind(serde_json::to_value(&attempt.request_headers)?)
        .bind(attempt.response_status)
        .bind(serde_json::to_value(&attempt.response_headers)?)
        .bind(attempt.response_body.as_deref())
        .bind(attempt.response_truncated)
        .bind(attempt.error.as_deref())
        .execute(tx.conn())
        .await?;
        let problem = attempt.problem();
        if attempt.succeeded() {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL")
                .bind(outgoing.endpoint_id)
                .execute(tx.conn())
                .await?;
            let outcome = Outcome { status: "delivered", attempted: true, response_status: attempt.response_status, problem: None };
            finish(&mut tx, self.delivery_id, &outgoing, outcome).await?;
            return tx.commit().await;
        }
        sqlx::query(
            "UPDATE webhook_endpoints SET last_failed_at = GREATEST(last_failed_at, $2),
                    failing_since = CASE WHEN failing_since IS NULL OR last_failed_at < $2 - interval '24 hours' THEN $2 ELSE failing_since END
              WHERE id = $1",
        )
        .bind(outgoing.endpoint_id)
        .bind(attempt.attempted_at)
        .execute(tx.conn())
        .await?;
        switch_off_if_failing_too_long(&mut tx, webhooks.disable_after, outgoing.endpoint_id).await?;
        let last = job.attempt >= <Self as Job>::MAX_ATTEMPTS;
        if last {
            let outcome = Outcome { status: "failed", attempted: true, response_status: attempt.response_status, problem: problem.as_deref() };
            finish(&mut tx, self.delivery_id, &outgoing, outcome).await?;
            return tx.commit().await;
        }
        let wait = <Self as Job>::retry_after(job.attempt);
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, last_error = left($3, 4096),
                    next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
        )
        .bind(self.delivery_id)
        .bind(attempt.response_status)
        .bind(problem.as_deref())
        .bind(wait.as_secs_f64())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        // Failing is how the queue knows to try again on the schedule.
        Err(Error::Internal(format!("webhook delivery failed: {}", problem.unwrap_or_default())))
    }
}

crate::register_job!(Deliver);

/// Marks a delivery whose last attempt failed short of the endpoint as failed (the reason goes
/// to the server's log; the organization's admins see that it stopped, not our internals).
async fn give_up(job: &RunningJob, tenant_id: Uuid, delivery_id: Uuid, error: &str) -> Result<()> {
    tracing::warn!(delivery = %delivery_id, error, "a webhook delivery's last attempt failed short of the endpoint");
    let Some(mut tx) = job.backend.tenancy.data_job("webhooks.deliver", tenant_id).await? else { return Ok(()) };
    let target: Option<(Uuid, String)> =
        sqlx::query_as("SELECT endpoint_id, resource FROM webhook_deliveries WHERE id = $1").bind(delivery_id).fetch_optional(tx.conn()).await?;
    let Some((endpoint_id, resource)) = target else { return Ok(()) };
    lock_resource(tx.conn(), endpoint_id, &resource).await?;
    let problem =
        format!("Stopped after {} attempts: the last one couldn't be made on our side. Resend it to try again.", <Deliver as Job>::MAX_ATTEMPTS);
    // Only if nothing finished it meanwhile (checked under the resource's lock).
    let ended = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $2, next_attempt_at = NULL, finished_at = now()
          WHERE id = $1 AND status = 'pending'",
    )
    .bind(delivery_id)
    .bind(problem)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if ended == 1 {
        release_next(&mut tx, endpoint_id, &resource).await?;
    }
    tx.commit().await
}

/// How a delivery ended.
struct Outcome<'a> {
    /// `delivered` or `failed`.
    status: &'static str,
    /// Whether this run made an attempt (not so for an endpoint switched off meanwhile).
    attempted: bool,
    response_status: Option<i32>,
    problem: Option<&'a str>,
}

/// Marks the delivery finished and lets the next delivery about the same resource go.
async fn finish(tx: &mut crate::tenancy::DataJob, delivery_id: Uuid, outgoing: &Outgoing, outcome: Outcome<'_>) -> Result<()> {
    lock_resource(tx.conn(), outgoing.endpoint_id, &outgoing.resource).await?;
    let Outcome { status, attempted, response_status, problem } = outcome;
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, attempts = attempts + $3, last_status = COALESCE($4, last_status),
                last_error = left($5, 4096), next_attempt_at = NULL, finished_at = now() WHERE id = $1",
    )
    .bind(delivery_id)
    .bind(status)
    .bind(i32::from(attempted))
    .bind(response_status)
    .bind(problem)
    .execute(tx.conn())
    .await?;
    release_next(tx, outgoing.endpoint_id, &outgoing.resource).await
}

/// The oldest held delivery about `resource` to `endpoint_id` goes, if none is under way.
pub(crate) async fn release_next(tx: &mut crate::tenancy::DataJob, endpoint_id: Uuid, resource: &str) -> Result<()> {
    let next: Option<Uuid> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now()
          WHERE id = (SELECT id FROM webhook_deliveries WHERE endpoint_id = $1 AND resource = $2 AND status = 'held'
                       ORDER BY created_at, id LIMIT 1)
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1 AND resource = $2 AND status = 'pending')
          RETURNING id",
    )
    .bind(endpoint_id)
    .bind(resource)
    .fetch_optional(tx.conn())
    .await?;
    if let Some(delivery_id) = next {
        tx.enqueue(&Deliver { delivery_id }).await?;
    }
    Ok(())
}

/// Switches the endpoint off once its failures have gone on for `after` without a success,
/// with an audit record and a notification to the organization's Owners.
async fn switch_off_if_failing_too_long(tx: &mut crate::tenancy::DataJob, after: Duration, endpoint_id: Uuid) -> Result<()> {
    let reason = format!("Switched off automatically: every delivery failed for {}.", describe(after));
    let url: Option<String> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
          WHERE id = $1 AND enabled AND failing_since <= now() - make_interval(secs => $3) RETURNING url",
    )
    .bind(endpoint_id)
    .bind(&reason)
    .bind(after.as_secs_f64())
    .fetch_optional(tx.conn())
    .await?;
    let Some(url) = url else { return Ok(()) };
    let changes = serde_json::json!({ "enabled": { "old": true, "new": false }, "disabled_reason": { "new": &reason } });
    tx.record(AuditEntry::new("webhook_endpoint.disabled", "webhook_endpoint", endpoint_id, changes)).await?;
    let tenant_id = tx.tenant().id;
    tx.enqueue(&crate::notifications::Notify::of(Notice::WebhookDisabled { tenant_id, endpoint_id, url })).await?;
    tracing::info!(tenant = %tx.tenant().slug, endpoint = %endpoint_id, "switched off a webhook endpoint that kept failing");
    Ok(())
}

/// "5 days", "3 hours", "90 seconds".
fn describe(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86400 && secs.is_multiple_of(86400) {
        (secs / 86400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// One attempt: signs with each current secret and POSTs the event's body. An error only when
/// it can't be signed (nothing is sent unsigned).
async fn send(webhooks: &super::Webhooks, outgoing: &Outgoing, secrets: &[String]) -> Result<Attempt> {
    let attempted_at = OffsetDateTime::now_utc();
    let timestamp = attempted_at.unix_timestamp();
    let id = outgoing.event_id.to_string();
    let signatures = secrets.iter().map(|s| super::sign(s, &id, timestamp, &outgoing.payload)).collect::<Result<Vec<String>>>()?;
    let request_headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("webhook-id".to_string(), id.clone()),
        ("webhook-timestamp".to_string(), timestamp.to_string()),
        ("webhook-signature".to_string(), signatures.join(" ")),
    ];
    // The log shows what was sent but not the signatures: a copy of the log could replay them.
    let mut logged_headers = request_headers.clone();
    logged_headers[3].1 = format!("({} signature{}, not kept)", signatures.len(), if signatures.len() == 1 { "" } else { "s" });
    let started = Instant::now();
    let mut attempt = Attempt {
        attempted_at,
        duration_ms: 0,
        request_headers: logged_headers,
        response_status: None,
        response_headers: Vec::new(),
        response_body: None,
        response_truncated: false,
        error: None,
    };
    if let Err(refused) = check_target(&outgoing.url, webhooks.private_hosts()) {
        attempt.error = Some(refused);
        return Ok(attempt);
    }
    let mut request = webhooks.http.post(&outgoing.url).body(outgoing.payload.clone());
    for (name, value) in &request_headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(mut response) => {
            attempt.response_status = Some(i32::from(response.status().as_u16()));
            attempt.response_headers = response
                .headers()
                .iter()
                .take(50)
                .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).chars().take(500).collect()))
                .collect();
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() > RESPONSE_READ_LIMIT {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // The status is in; a body cut short doesn't change the outcome.
                    Err(_) => break,
                }
            }
            attempt.response_truncated = body.len() > RESPONSE_KEPT_BYTES;
            body.truncate(RESPONSE_KEPT_BYTES);
            attempt.response_body =
                Some(String::from_utf8_lossy(&body).chars().take(RESPONSE_KEPT_BYTES).collect::<String>().replace('\0', "\u{fffd}"));
        }
        Err(e) => attempt.error = Some(describe_error(&e)),
    }
    attempt.duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    Ok(attempt)
}

/// A URL naming an IP address skips the resolver (which checks names), so it is checked here.
fn check_target(url: &str, private_hosts: bool) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("The URL can't be used: {e}."))?;
    if private_hosts {
        return Ok(());
    }
    if parsed.scheme() != "https" {
        return Err("Only https:// URLs are delivered to.".into());
    }
    let host = parsed.host_str().unwrap_or_default();
    let literal: Option<std::net::IpAddr> = host.trim_start_matches('[').trim_end_matches(']').parse().ok();
    if literal.is_some_and(|ip| !crate::sso::outbound::is_public(ip)) {
        return Err(refused_address());
    }
    Ok(())
}

fn refused_address() -> String {
    "Not sent: the endpoint's address is private, loopback, link-local or otherwise not on the public internet. Webhooks only go to public addresses."
        .into()
}

fn describe_error(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<crate::sso::outbound::NotPublic>().is_some() {
            return refused_address();
        }
        source = err.source();
    }
    if e.is_timeout() {
        "No response within 15 seconds.".into()
    } else if e.is_connect() {
        format!("Couldn't connect to the endpoint: {}", root_cause(e))
    } else {
        format!("The request failed: {}", root_cause(e))
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string().chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_standard_webhooks_schedule() {
        let waits: Vec<u64> = (1..=7).map(|a| Deliver::retry_after(a).as_secs()).collect();
        assert_eq!(waits, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(Deliver::MAX_ATTEMPTS, 8);
    }

    #[test]
    fn literal_private_addresses_are_refused_unless_allowed() {
        assert!(check_target("https://10.0.0.1/hook", false).is_err());
        assert!(check_target("https://[::1]/hook", false).is_err());
        assert!(check_target("https://169.254.169.254/latest", false).is_err());
        assert!(check_target("http://example.com/hook", false).is_err());
        assert!(check_target("https://8.8.8.8/hook", false).is_ok());
        assert!(check_target("http://127.0.0.1:9/hook", true).is_ok());
    }

    #[test]
    fn periods_read_naturally() {
        assert_eq!(describe(Duration::from_secs(5 * 86400)), "5 days");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(2)), "2 seconds");
    }
}
