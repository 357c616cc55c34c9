//! Reading an organization's audit trail: one timeline, newest first, merged from its two logs
//! (the control plane's, for its team, access, SSO, billing and lifecycle; and the one beside
//! its data), filtered, in pages that continue from a cursor. Both reads go through the door
//! (`Permission::ViewAudit`), so row-level security scopes them to the organization.

use crate::error::Result;
use crate::tenancy::{Org, ReadTx};
use std::collections::HashMap;
use tessera_domain::audit::{
    is_secret_field, AuditActor, AuditApiKey, AuditContext, AuditCursor, AuditEvent, AuditFilter, AuditLogName, AuditMoment, AuditPage, AuditTarget,
};
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    seq: i64,
    occurred_at: OffsetDateTime,
    actor_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: String,
    target_type: String,
    target_id: String,
    changes: serde_json::Value,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

/// The filters in the database's terms.
struct Bounds {
    actor: Option<Uuid>,
    action: Option<String>,
    /// `project.%` for `project`, with LIKE's own characters escaped.
    action_prefix: Option<String>,
    target_type: Option<String>,
    target: Option<String>,
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    ip: Option<String>,
    before: Option<(OffsetDateTime, Uuid)>,
}

impl Bounds {
    fn of(filter: &AuditFilter) -> Result<Bounds> {
        let before = filter
            .cursor
            .map(|c| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(c.micros) * 1000)
                    .ok()
                    .filter(storable)
                    .map(|at| (at, c.id))
                    .ok_or_else(|| AppError::Invalid(FieldError::new("cursor", "This page link is damaged. Start again from the first page.")))
            })
            .transpose()?;
        let action_prefix = filter.action.as_ref().map(|a| format!("{}.%", a.replace('\\', "\\\\").replace('_', "\\_").replace('%', "\\%")));
        Ok(Bounds {
            actor: filter.actor,
            action: filter.action.clone(),
            action_prefix,
            target_type: filter.target_type.clone(),
            target: filter.target.clone(),
            from: filter.from.as_ref().map(|m| instant(m, "from", false)).transpose()?,
            until: filter.to.as_ref().map(|m| instant(m, "to", true)).transpose()?,
            ip: filter.ip.clone(),
            before,
        })
    }
}

/// A filter's moment as an instant: a day starts at midnight UTC; `to` a day means up to the
/// end of it.
fn instant(moment: &AuditMoment, field: &str, end: bool) -> Result<OffsetDateTime> {
    let wrong = || AppError::Invalid(FieldError::new(field, "Write a date as YYYY-MM-DD (or an RFC 3339 time such as 2026-12-01T09:30:00Z)."));
    match moment {
        AuditMoment::Day { year, month, day } => {
            let month = Month::try_from(*month).map_err(|_| wrong())?;
            let date = Date::from_calendar_date(*year, month, *day).map_err(|_| wrong())?;
            let date = if end { date.next_day().ok_or_else(wrong)? } else { date };
            Ok(Some(date.with_time(Time::MIDNIGHT).assume_utc()).filter(storable).ok_or_else(wrong)?)
        }
        AuditMoment::Instant(raw) => {
            // Kept in UTC, as the database compares it; an offset that carries it past year
            // 9999 (or before 1970) is as wrong as a malformed one.
            let at = OffsetDateTime::parse(raw, &Rfc3339).ok().and_then(|at| at.checked_to_offset(time::UtcOffset::UTC));
            Ok(at.filter(storable).ok_or_else(wrong)?)
        }
    }
}

/// Whether a moment is one the audit log could hold: from 1970 to the end of year 9999, in UTC.
fn storable(at: &OffsetDateTime) -> bool {
    at.offset().is_utc() && (1970..=9999).contains(&at.year())
}

/// The page's query, with only the conditions that filter something: a plan can then use the
/// timeline index for the cursor (a catch-all `$n IS NULL OR …` would hide it from a generic
/// plan, and every later page of an export would rescan the earlier ones).
async fn rows(tx: &mut ReadTx, bounds: &Bounds, limit: i64) -> Result<Vec<Row>> {
    let mut query = sqlx::QueryBuilder::new(
        "SELECT id, seq, occurred_at, actor_id, actor_api_key_id, action, target_type, target_id, changes,
                host(ip) AS ip, user_agent, request_id
           FROM audit_log WHERE tenant_id = app_tenant_id()",
    );
    if let Some(actor) = bounds.actor {
        query.push(" AND actor_id = ").push_bind(actor);
    }
    if let (Some(action), Some(prefix)) = (&bounds.action, &bounds.action_prefix) {
        query.push(" AND (action = ").push_bind(action.clone()).push(" OR action LIKE ").push_bind(prefix.clone()).push(")");
    }
    if let Some(kind) = &bounds.target_type {
        query.push(" AND target_type = ").push_bind(kind.clone());
    }
    if let Some(target) = &bounds.target {
        query.push(" AND target_id = ").push_bind(target.clone());
    }
    if let Some(from) = bounds.from {
        query.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(until) = bounds.until {
        query.push(" AND occurred_at < ").push_bind(until);
    }
    if let Some(ip) = &bounds.ip {
        query.push(" AND ip <<= ").push_bind(ip.clone()).push("::inet");
    }
    if let Some((at, id)) = bounds.before {
        query.push(" AND (occurred_at, id) < (").push_bind(at).push(", ").push_bind(id).push(")");
    }
    query.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(tx.conn()).await?)
}

/// One page of the organization's timeline under `filter`, newest first.
pub async fn page(org: &Org, filter: &AuditFilter) -> Result<AuditPage> {
    let (events, next) = page_of(org, filter, filter.limit).await?;
    Ok(AuditPage { events, next_cursor: next.map(AuditCursor::encode) })
}

/// As [`page`], `limit` events (the export reads in larger pages than a person does), and where
/// the next page starts, if there is one.
pub(super) async fn page_of(org: &Org, filter: &AuditFilter, limit: u32) -> Result<(Vec<AuditEvent>, Option<AuditCursor>)> {
    let bounds = Bounds::of(filter)?;
    let want = i64::from(limit) + 1;
    let (mut control, mut data) = tokio::try_join!(org.control_read(Permission::ViewAudit), org.read(Permission::ViewAudit))?;
    let (control_rows, data_rows) = tokio::try_join!(rows(&mut control, &bounds, want), rows(&mut data, &bounds, want))?;
    drop(data);
    let mut merged: Vec<(AuditLogName, Row)> =
        control_rows.into_iter().map(|r| (AuditLogName::Organization, r)).chain(data_rows.into_iter().map(|r| (AuditLogName::Data, r))).collect();
    // The order each query used, across both: time, then id (uuids compare bytewise in both).
    merged.sort_by_key(|(_, row)| std::cmp::Reverse((row.occurred_at, row.id)));
    let more = merged.len() > limit as usize;
    merged.truncate(limit as usize);
    let next = if more { merged.last().map(|(_, r)| cursor_of(r)) } else { None };
    let events = describe(&mut control, merged).await?;
    Ok((events, next))
}

fn cursor_of(row: &Row) -> AuditCursor {
    AuditCursor { micros: (row.occurred_at.unix_timestamp_nanos() / 1000) as i64, id: row.id }
}

/// Rows as events: people's names and API keys' names looked up (both live in the control
/// plane), secrets redacted.
async fn describe(control: &mut ReadTx, rows: Vec<(AuditLogName, Row)>) -> Result<Vec<AuditEvent>> {
    let mut people: Vec<Uuid> = rows.iter().filter_map(|(_, r)| r.actor_id).collect();
    people.sort();
    people.dedup();
    // In the control-plane transaction already held (people are global, as `display_names`
    // reads them): one connection per page, not two.
    let names: HashMap<Uuid, String> = if people.is_empty() {
        HashMap::new()
    } else {
        let found: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, COALESCE(display_name, email) FROM users WHERE id = ANY($1)").bind(&people).fetch_all(control.conn()).await?;
        found.into_iter().collect()
    };
    let mut keys: Vec<Uuid> = rows.iter().filter_map(|(_, r)| r.actor_api_key_id).collect();
    keys.sort();
    keys.dedup();
    let key_names: HashMap<Uuid, String> = if keys.is_empty() {
        HashMap::new()
    } else {
        let found: Vec<(Uuid, String, bool)> =
            sqlx::query_as("SELECT id, name, revoked_at IS NOT NULL FROM api_keys WHERE id = ANY($1)").bind(&keys).fetch_all(control.conn()).await?;
        found.into_iter().map(|(id, name, revoked)| (id, if revoked { format!("{name} (since revoked)") } else { name })).collect()
    };
    Ok(rows.into_iter().map(|(log, row)| event(log, row, &names, &key_names)).collect())
}

fn event(log: AuditLogName, row: Row, names: &HashMap<Uuid, String>, key_names: &HashMap<Uuid, String>) -> AuditEvent {
    let api_key = row.actor_api_key_id.map(|id| AuditApiKey { id, name: key_names.get(&id).cloned().unwrap_or_else(|| "an API key".into()) });
    let actor = match row.actor_id {
        Some(id) => AuditActor {
            kind: "user".into(),
            id: Some(id.to_string()),
            name: names.get(&id).cloned().unwrap_or_else(|| "A former user".into()),
            api_key,
        },
        None => AuditActor { kind: "system".into(), id: None, name: "Tessera (automatic)".into(), api_key },
    };
    let changes = redact(row.changes);
    let target_name = ["name", "title", "email"].iter().find_map(|field| {
        let value = changes.get(field)?;
        value.get("new").or_else(|| value.get("old")).and_then(|v| v.as_str()).map(str::to_string)
    });
    AuditEvent {
        id: row.id,
        action: row.action,
        occurred_at: rfc3339_micros(row.occurred_at),
        actor,
        targets: vec![AuditTarget { kind: row.target_type, id: row.target_id, name: target_name }],
        context: AuditContext { ip: row.ip, user_agent: row.user_agent, request_id: row.request_id },
        metadata: serde_json::json!({ "changes": changes }),
        log,
        seq: row.seq,
    }
}

/// RFC 3339 in UTC with microseconds, as stored.
pub(super) fn rfc3339_micros(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// The recorded fields with any secret's values replaced, however deep.
fn redact(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| {
                let value = if is_secret_field(&key) { hide(value) } else { redact(value) };
                (key, value)
            })
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(redact).collect(),
        other => other,
    }
}

/// A secret field's value: its `old`/`new` shape kept (so the viewer still says it changed),
/// every value hidden.
fn hide(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map.into_iter().map(|(key, _)| (key, serde_json::Value::from("(redacted)"))).collect(),
        serde_json::Value::Null => serde_json::Value::Null,
        _ => serde_json::Value::from("(redacted)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_other_fields_kept() {
        let recorded = json!({
            "secret": { "old": "whsec_a", "new": "whsec_b" },
            "name": { "old": "A", "new": "B" },
            "nested": { "password_hash": "x", "role": "admin" },
        });
        assert_eq!(
            redact(recorded),
            json!({
                "secret": { "old": "(redacted)", "new": "(redacted)" },
                "name": { "old": "A", "new": "B" },
                "nested": { "password_hash": "(redacted)", "role": "admin" },
            })
        );
    }

    #[test]
    fn moments_outside_what_the_log_can_hold_are_refused_not_crashed_on() {
        // Past year 9999 once in UTC: sqlx would panic converting it.
        assert!(instant(&AuditMoment::Instant("9999-12-31T23:59:59-01:00".into()), "to", true).is_err());
        assert!(instant(&AuditMoment::Day { year: 9999, month: 12, day: 31 }, "to", true).is_err());
        let far = AuditFilter { cursor: Some(AuditCursor { micros: -300_000_000_000_000_000, id: Uuid::nil() }), ..AuditFilter::default() };
        assert!(Bounds::of(&far).is_err());
        let ok = AuditFilter { cursor: Some(AuditCursor { micros: 1_764_000_000_000_000, id: Uuid::nil() }), ..AuditFilter::default() };
        assert!(Bounds::of(&ok).is_ok());
    }

    #[test]
    fn a_day_filter_covers_the_whole_day() {
        let day = AuditMoment::Day { year: 2026, month: 12, day: 1 };
        assert_eq!(rfc3339_micros(instant(&day, "from", false).unwrap()), "2026-12-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(instant(&day, "to", true).unwrap()), "2026-12-02T00:00:00.000000Z");
        assert!(instant(&AuditMoment::Instant("2026-12-01Tnope".into()), "to", true).is_err());
    }
}
