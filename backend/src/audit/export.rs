//! Exporting the filtered timeline as CSV or JSON Lines, streamed: it is read a page at a time
//! (each its own short transaction through the door) and each page is written out before the
//! next is read, so a million-record export keeps the server's memory flat and holds no
//! connection for its whole length.

use super::timeline;
use crate::audit::AuditEntry;
use crate::error::{Error, Result};
use crate::tenancy::Org;
use futures_util::Stream;
use tessera_domain::audit::{AuditCursor, AuditEvent, AuditFilter};
use tessera_domain::billing::Feature;
use tessera_domain::Permission;

/// Events read per page while exporting.
const BATCH: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    /// By file extension: `csv` or `jsonl`.
    pub fn from_extension(extension: &str) -> Option<ExportFormat> {
        match extension {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" => Some(ExportFormat::JsonLines),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::JsonLines => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/jsonl; charset=utf-8",
        }
    }
}

const CSV_COLUMNS: [&str; 17] = [
    "id",
    "occurred_at",
    "action",
    "actor_type",
    "actor_id",
    "actor_name",
    "api_key_id",
    "api_key_name",
    "target_type",
    "target_id",
    "target_name",
    "ip",
    "user_agent",
    "request_id",
    "log",
    "seq",
    "changes",
];

/// Starts an export: everything that can be refused (permission, plan, filters, reaching the
/// data) is refused here, before the first byte, so the answer is a clear 4xx rather than a
/// download that breaks off. The export itself is recorded in the audit log, with its filters.
pub async fn start(org: Org, filter: AuditFilter, format: ExportFormat) -> Result<impl Stream<Item = Result<Vec<u8>>> + Send + 'static> {
    org.require(Permission::ViewAudit)?;
    org.require_feature(Feature::AuditExport)?;
    let first = timeline::page_of(&org, &filter, BATCH).await?;
    let described = serde_json::json!({
        "format": { "new": format.extension() },
        "filters": { "new": filters_of(&filter) },
    });
    org.record_read(Permission::ViewAudit, AuditEntry::new("audit_log.exported", "audit_log", org.tenant.id, described)).await?;

    let mut head = Vec::new();
    if format == ExportFormat::Csv {
        head = csv_rows(&[], true)?;
    }
    let state = Some(Pending { org, filter, format, page: Some(first), head });
    Ok(futures_util::stream::unfold(state, |state| async move {
        let mut state = state?;
        let page = match state.page.take() {
            Some(page) => page,
            None => match timeline::page_of(&state.org, &state.filter, BATCH).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "audit export stopped");
                    return Some((Err(e), None));
                }
            },
        };
        let mut out = std::mem::take(&mut state.head);
        let (events, next) = page;
        let written = match state.format {
            ExportFormat::Csv => csv_rows(&events, false),
            ExportFormat::JsonLines => json_lines(&events),
        };
        match written {
            Ok(bytes) => out.extend(bytes),
            Err(e) => return Some((Err(e), None)),
        }
        let next = next.map(|cursor| {
            state.filter.cursor = Some(cursor);
            state
        });
        Some((Ok(out), next))
    }))
}

struct Pending {
    org: Org,
    filter: AuditFilter,
    format: ExportFormat,
    /// The first page, read before the answer started.
    page: Option<(Vec<AuditEvent>, Option<AuditCursor>)>,
    /// The CSV header, sent with the first page.
    head: Vec<u8>,
}

/// The filters an export used, for its own audit record.
fn filters_of(filter: &AuditFilter) -> serde_json::Value {
    serde_json::json!({
        "actor": filter.actor,
        "action": filter.action,
        "target_type": filter.target_type,
        "target": filter.target,
        "from": filter.from.as_ref().map(|m| m.to_string()),
        "to": filter.to.as_ref().map(|m| m.to_string()),
        "ip": filter.ip,
    })
}

fn json_lines(events: &[AuditEvent]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * 512);
    for event in events {
        serde_json::to_writer(&mut out, event).map_err(|e| Error::Internal(format!("writing an audit event: {e}")))?;
        out.push(b'\n');
    }
    Ok(out)
}

fn csv_rows(events: &[AuditEvent], header: bool) -> Result<Vec<u8>> {
    let failed = |e: csv::Error| Error::Internal(format!("writing audit CSV: {e}"));
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(events.len() * 400));
    if header {
        writer.write_record(CSV_COLUMNS).map_err(failed)?;
    }
    for event in events {
        let target = event.targets.first();
        let key = event.actor.api_key.as_ref();
        let changes = event.metadata.get("changes").map(|c| c.to_string()).unwrap_or_default();
        let row: [String; 17] = [
            event.id.to_string(),
            event.occurred_at.clone(),
            event.action.clone(),
            event.actor.kind.clone(),
            event.actor.id.clone().unwrap_or_default(),
            event.actor.name.clone(),
            key.map(|k| k.id.to_string()).unwrap_or_default(),
            key.map(|k| k.name.clone()).unwrap_or_default(),
            target.map(|t| t.kind.clone()).unwrap_or_default(),
            target.map(|t| t.id.clone()).unwrap_or_default(),
            target.and_then(|t| t.name.clone()).unwrap_or_default(),
            event.context.ip.clone().unwrap_or_default(),
            event.context.user_agent.clone().unwrap_or_default(),
            event.context.request_id.clone().unwrap_or_default(),
            event.log.as_str().to_string(),
            event.seq.to_string(),
            changes,
        ];
        writer.write_record(row.iter().map(|cell| spreadsheet_safe(cell).into_owned())).map_err(failed)?;
    }
    writer.into_inner().map_err(|e| Error::Internal(format!("writing audit CSV: {e}")))
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or carriage return
/// first) gets a leading apostrophe: names and user agents come from users, and an export is
/// opened in Excel by someone with more rights than whoever typed them.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("Alice"), "Alice");
    }
}
