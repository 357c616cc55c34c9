//! Checking an organization's audit hash chain (written by the trigger of migration
//! `audit_chain`). The hashes are recomputed here, in Rust, from the stored columns, so the
//! check doesn't depend on the database's own functions being intact. The chain has no key:
//! someone with the owner's rights who edits a record *and* recomputes every later hash and the
//! head leaves nothing to find (the README says what would close that).
//!
//! What a break means: `changed` (a record's content no longer matches its hash), `missing`
//! (numbers skipped: records deleted), `out_of_order` (a record doesn't link to the one before
//! it: reordered, or its predecessor replaced), `truncated` (the newest records are gone: the
//! chain's head names later ones), `unlinked` (records after the head: written around the
//! trigger).

use crate::error::Result;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use tessera_domain::audit::{AuditBreak, AuditLogName};
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many breaks are listed per log (the first ones matter; the count says the rest).
const MAX_LISTED: usize = 50;

/// Records read per statement.
const PAGE: i64 = 5000;

/// What checking one log's chain found.
#[derive(Debug, Default)]
pub struct LogCheck {
    pub records: i64,
    pub breaks: Vec<AuditBreak>,
    pub pruned_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Head {
    last_seq: i64,
    last_hash: Vec<u8>,
    anchor_seq: i64,
    anchor_hash: Vec<u8>,
    pruned_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Link {
    seq: i64,
    id: Uuid,
    tenant_id: Uuid,
    occurred_at: OffsetDateTime,
    actor_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: String,
    target_type: String,
    target_id: String,
    /// As PostgreSQL writes jsonb (its text form is canonical: keys sorted, spacing fixed).
    changes: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl Link {
    /// The hash the record should have: the same text the trigger hashes (`audit_chain_text`).
    fn expected_hash(&self) -> Vec<u8> {
        let occurred = super::timeline::rfc3339_micros(self.occurred_at);
        let fields: [Option<String>; 14] = [
            Some(self.tenant_id.to_string()),
            Some(self.seq.to_string()),
            Some(self.id.to_string()),
            Some(occurred),
            self.actor_id.map(|id| id.to_string()),
            self.actor_api_key_id.map(|id| id.to_string()),
            Some(self.action.clone()),
            Some(self.target_type.clone()),
            Some(self.target_id.clone()),
            Some(self.changes.clone()),
            self.ip.clone(),
            self.user_agent.clone(),
            self.request_id.clone(),
            Some(hex(&self.prev_hash)),
        ];
        let text = fields
            .iter()
            .map(|field| match field {
                None => "~".to_string(),
                Some(value) => format!("{}:{value}", value.len()),
            })
            .collect::<Vec<_>>()
            .join("|");
        Sha256::digest(format!("v1|{text}").as_bytes()).to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Walks `tenant_id`'s chain in the `audit_log` that `conn` sees (the control plane's or the
/// organization's data place), oldest first, a page at a time: memory stays flat however long
/// it is. `conn` should be in a snapshot transaction (`TxMode::Snapshot`), or a record committed
/// between the head's read and the rows' would read as a break.
pub async fn check(conn: &mut PgConnection, tenant_id: Uuid, log: AuditLogName) -> Result<LogCheck> {
    let head: Option<Head> = sqlx::query_as("SELECT last_seq, last_hash, anchor_seq, anchor_hash, pruned_at FROM audit_chain WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(&mut *conn)
        .await?;
    let mut report = LogCheck { pruned_at: head.as_ref().and_then(|h| h.pruned_at), ..LogCheck::default() };
    let (mut expected_seq, mut previous) = match &head {
        Some(head) => (head.anchor_seq + 1, head.anchor_hash.clone()),
        None => (1, vec![0; 32]),
    };
    let mut hidden = 0usize;
    let mut note = |report: &mut LogCheck, seq: i64, id: Option<Uuid>, kind: &str, message: String| {
        if report.breaks.len() < MAX_LISTED {
            report.breaks.push(AuditBreak { log, seq, id, kind: kind.to_string(), message });
        } else {
            hidden += 1;
        }
    };
    // In pages of the chain's order, each a short statement (a long chain must not run into the
    // statement timeout); the caller's snapshot makes them one consistent read.
    let mut after = i64::MIN;
    loop {
        let links: Vec<Link> = sqlx::query_as(
            "SELECT seq, id, tenant_id, occurred_at, actor_id, actor_api_key_id, action, target_type, target_id,
                    changes::text AS changes, host(ip) AS ip, user_agent, request_id, prev_hash, hash
               FROM audit_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = links.last() else { break };
        after = last.seq;
        for link in links {
            report.records += 1;
            let what = format!("record #{} ({}, {})", link.seq, link.action, crate::members::rfc3339(link.occurred_at));
            if link.seq < expected_seq {
                note(
                    &mut report,
                    link.seq,
                    Some(link.id),
                    "out_of_order",
                    format!(
                        "The {} log has {what} before where its chain starts (#{expected_seq}): it was renumbered or written around the chain.",
                        log.as_str()
                    ),
                );
                continue;
            }
            if link.seq > expected_seq {
                let gap = if link.seq - 1 == expected_seq {
                    format!("Record #{expected_seq} is")
                } else {
                    format!("Records #{expected_seq}–#{} are", link.seq - 1)
                };
                note(
                    &mut report,
                    expected_seq,
                    None,
                    "missing",
                    format!("{gap} missing from the {} log: deleted after they were written.", log.as_str()),
                );
                // Nothing to compare its link with: check it from here on.
                previous = link.prev_hash.clone();
            }
            if link.prev_hash != previous {
                note(
                    &mut report,
                    link.seq,
                    Some(link.id),
                    "out_of_order",
                    format!(
                        "In the {} log, {what} doesn't follow the record before it: records were reordered, or the one before it was replaced.",
                        log.as_str()
                    ),
                );
            } else if link.expected_hash() != link.hash {
                note(
                    &mut report,
                    link.seq,
                    Some(link.id),
                    "changed",
                    format!("In the {} log, {what} was changed after it was written.", log.as_str()),
                );
            }
            previous = link.hash.clone();
            expected_seq = link.seq + 1;
        }
    }
    let last_seen = expected_seq - 1;
    match &head {
        Some(head) if head.last_seq > last_seen => {
            let message = if head.last_seq == last_seen + 1 {
                format!("The newest record of the {} log (#{}) is missing: deleted after it was written.", log.as_str(), head.last_seq)
            } else {
                format!(
                    "The newest records of the {} log (#{}–#{}) are missing: deleted after they were written.",
                    log.as_str(),
                    last_seen + 1,
                    head.last_seq
                )
            };
            note(&mut report, last_seen + 1, None, "truncated", message);
        }
        Some(head) if head.last_seq < last_seen || (head.last_seq == last_seen && report.records > 0 && head.last_hash != previous) => {
            note(
                &mut report,
                head.last_seq,
                None,
                "unlinked",
                format!(
                    "The {} log's chain ends at #{}, but its last record doesn't match the chain's head: records were written around it.",
                    log.as_str(),
                    head.last_seq
                ),
            );
        }
        None if report.records > 0 => {
            note(&mut report, 1, None, "unlinked", format!("The {} log has records but no chain head: its chain was removed.", log.as_str()));
        }
        _ => {}
    }
    if hidden > 0 {
        let seq = report.breaks.last().map(|b| b.seq).unwrap_or(0);
        report.breaks.push(AuditBreak {
            log,
            seq,
            id: None,
            kind: "more".into(),
            message: format!("…and {hidden} more breaks in the {} log.", log.as_str()),
        });
    }
    Ok(report)
}
