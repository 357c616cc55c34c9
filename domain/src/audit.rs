//! The audit log as tenant admins and their tools read it: the event shape (modelled on the
//! well-known audit-log APIs: an action, when, an actor, targets, the request's context and
//! metadata), and the filters the viewer, the export and the REST API share: all three read
//! them into [`AuditFilterInput`] and check them with its one `parse`, so a filter means the
//! same everywhere.

use crate::input::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One thing that happened in an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: Uuid,
    /// `resource.verb`: `project.created`, `membership.role_changed`, `billing.changed`…
    pub action: String,
    /// RFC 3339, UTC, microseconds.
    pub occurred_at: String,
    pub actor: AuditActor,
    /// What the action was done to (today always one).
    pub targets: Vec<AuditTarget>,
    pub context: AuditContext,
    /// `changes`: each changed field's `{old, new}` (secrets redacted), and anything else the
    /// action recorded.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// Which of the organization's two logs holds it: `organization` (its team, access, SSO,
    /// billing and lifecycle, kept in the control plane) or `data` (changes to its data, kept
    /// where its data lives).
    pub log: AuditLogName,
    /// Its place in that log's hash chain.
    pub seq: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditLogName {
    Organization,
    Data,
}

impl AuditLogName {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditLogName::Organization => "organization",
            AuditLogName::Data => "data",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditActor {
    /// `user` (a person, possibly through an API key they made) or `system` (a job, an operator
    /// command, an identity provider's sign-in before there was an account; which one is in
    /// `context.request_id`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The user's id; none for `system`.
    pub id: Option<String>,
    /// The person's name (or email) as it is now, or a description of the system actor.
    pub name: String,
    /// When the change came through an organization API key: which.
    pub api_key: Option<AuditApiKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditApiKey {
    pub id: Uuid,
    /// The key's name (and whether it has since been revoked).
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditTarget {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// A name the record itself carries (a project's name, a member's email), if any.
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// A page of the timeline, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What a check of the organization's hash chains found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditIntegrity {
    /// Records checked in both logs.
    pub records: i64,
    /// Empty when every record is as it was written and none is missing.
    pub breaks: Vec<AuditBreak>,
    /// RFC 3339: when older records were last removed under the retention period, if ever.
    pub pruned_at: Option<String>,
    /// RFC 3339: when the check ran.
    pub checked_at: String,
}

impl AuditIntegrity {
    pub fn verified(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// One place where a log's chain doesn't hold, and what that means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditBreak {
    pub log: AuditLogName,
    /// The record's place in its log.
    pub seq: i64,
    pub id: Option<Uuid>,
    /// `changed`, `missing`, `out_of_order`, `truncated` or `unlinked` (see
    /// `backend::audit::chain`), or `more` (further breaks, counted in its message).
    pub kind: String,
    pub message: String,
}

/// The most events one page (of the viewer or the API) holds.
pub const AUDIT_PAGE_MAX: u32 = 200;
pub const AUDIT_PAGE_DEFAULT: u32 = 50;

/// How long an organization may keep its audit records, in days (365 unless an Owner chooses;
/// the database refuses less than the minimum, too: migration `audit_chain`).
pub const AUDIT_RETENTION_MIN_DAYS: i32 = 90;
pub const AUDIT_RETENTION_MAX_DAYS: i32 = 3650;

/// The filters as they arrive (query string or form), all optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditFilterInput {
    /// A user's id: only what they did.
    pub actor: Option<String>,
    /// An action (`project.created`), or its first part for all of its kind (`project`).
    pub action: Option<String>,
    /// The target's type (`project`, `membership`…).
    pub target_type: Option<String>,
    /// The target's id.
    pub target: Option<String>,
    /// From this day (`YYYY-MM-DD`, UTC) or instant (RFC 3339), inclusive.
    pub from: Option<String>,
    /// Up to this day (inclusive) or instant (exclusive).
    pub to: Option<String>,
    /// An address (`203.0.113.7`) or a range (`203.0.113.0/24`).
    pub ip: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Events per page (1–200, default 50).
    pub limit: Option<String>,
}

/// A moment a filter names: a whole day, or an exact instant (RFC 3339, kept as given and
/// parsed by the server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditMoment {
    Day { year: i32, month: u8, day: u8 },
    Instant(String),
}

impl std::fmt::Display for AuditMoment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditMoment::Day { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            AuditMoment::Instant(raw) => f.write_str(raw),
        }
    }
}

/// Where the previous page stopped: the last event's time (microseconds since the epoch) and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditCursor {
    pub micros: i64,
    pub id: Uuid,
}

impl AuditCursor {
    pub fn encode(self) -> String {
        format!("{}.{}", self.micros, self.id.simple())
    }

    pub fn parse(raw: &str) -> Option<AuditCursor> {
        let (micros, id) = raw.trim().split_once('.')?;
        Some(AuditCursor { micros: micros.parse().ok()?, id: Uuid::try_parse(id).ok()? })
    }
}

/// Filters checked and normalized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target: Option<String>,
    pub from: Option<AuditMoment>,
    pub to: Option<AuditMoment>,
    /// Normalized: an address, or `address/prefix`.
    pub ip: Option<String>,
    pub cursor: Option<AuditCursor>,
    pub limit: u32,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl AuditFilterInput {
    /// Checks every filter, answering the first that is wrong with what to write instead.
    pub fn parse(&self) -> Result<AuditFilter, FieldError> {
        let actor = given(&self.actor)
            .map(|raw| Uuid::try_parse(raw).map_err(|_| FieldError::new("actor", "Choose a person from the list (an actor is a user's id).")))
            .transpose()?;
        let action = given(&self.action)
            .map(|raw| {
                let name = raw.to_ascii_lowercase();
                let ok = name.len() <= 64
                    && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                    && !name.starts_with('.')
                    && !name.ends_with('.');
                ok.then_some(name).ok_or_else(|| {
                    FieldError::new("action", "Write an action such as project.created, or its first part (project) for all of that kind.")
                })
            })
            .transpose()?;
        let target_type = given(&self.target_type)
            .map(|raw| {
                let ok = raw.len() <= 64 && raw.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                ok.then(|| raw.to_string()).ok_or_else(|| FieldError::new("target_type", "Write a target type such as project or membership."))
            })
            .transpose()?;
        let target = given(&self.target)
            .map(|raw| {
                let ok = raw.chars().count() <= 200 && !raw.chars().any(char::is_control);
                ok.then(|| raw.to_string()).ok_or_else(|| FieldError::new("target", "A target id is at most 200 characters, on one line."))
            })
            .transpose()?;
        let from = given(&self.from).map(|raw| moment(raw, "from")).transpose()?;
        let to = given(&self.to).map(|raw| moment(raw, "to")).transpose()?;
        if let (Some(AuditMoment::Day { year: y1, month: m1, day: d1 }), Some(AuditMoment::Day { year: y2, month: m2, day: d2 })) = (&from, &to) {
            if (y2, m2, d2) < (y1, m1, d1) {
                return Err(FieldError::new("to", "The end date is before the start date."));
            }
        }
        let ip = given(&self.ip).map(ip_filter).transpose()?;
        let cursor = given(&self.cursor)
            .map(|raw| {
                AuditCursor::parse(raw).ok_or_else(|| FieldError::new("cursor", "This page link is damaged. Start again from the first page."))
            })
            .transpose()?;
        let limit = match given(&self.limit) {
            None => AUDIT_PAGE_DEFAULT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=AUDIT_PAGE_MAX).contains(&n) => n,
                _ => return Err(FieldError::new("limit", format!("Ask for 1 to {AUDIT_PAGE_MAX} events per page."))),
            },
        };
        Ok(AuditFilter { actor, action, target_type, target, from, to, ip, cursor, limit })
    }

    /// The filters as a query string (without the cursor and limit): the viewer's links and
    /// the export's, so a filtered view can be shared and exported as it is.
    pub fn query_string(&self) -> String {
        let fields = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target_type", &self.target_type),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
            ("ip", &self.ip),
        ];
        fields.iter().filter_map(|(name, value)| given(value).map(|v| format!("{name}={}", percent_encode(v)))).collect::<Vec<_>>().join("&")
    }
}

fn moment(raw: &str, field: &str) -> Result<AuditMoment, FieldError> {
    let wrong = || FieldError::new(field, "Write a date as YYYY-MM-DD (or an RFC 3339 time such as 2026-12-01T09:30:00Z).");
    if raw.len() == 10 {
        let parts: Vec<&str> = raw.split('-').collect();
        let [y, m, d] = parts.as_slice() else { return Err(wrong()) };
        let (Ok(year), Ok(month), Ok(day)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else { return Err(wrong()) };
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(wrong()),
        };
        if !(1970..=9999).contains(&year) || day == 0 || day > days {
            return Err(wrong());
        }
        return Ok(AuditMoment::Day { year, month, day });
    }
    // An instant: its shape here, its calendar on the server (which has a date library).
    let shaped = raw.len() <= 40
        && raw.get(4..5) == Some("-")
        && raw.get(10..11).is_some_and(|t| t.eq_ignore_ascii_case("t"))
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+'));
    if shaped {
        Ok(AuditMoment::Instant(raw.to_string()))
    } else {
        Err(wrong())
    }
}

fn ip_filter(raw: &str) -> Result<String, FieldError> {
    let wrong = || FieldError::new("ip", "Write an IP address (203.0.113.7) or a range (203.0.113.0/24).");
    let (address, prefix) = match raw.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (raw, None),
    };
    let address: std::net::IpAddr = address.parse().map_err(|_| wrong())?;
    match prefix {
        None => Ok(address.to_string()),
        Some(p) => {
            let bits: u8 = p.parse().map_err(|_| wrong())?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(wrong());
            }
            Ok(format!("{address}/{bits}"))
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Whether a recorded field holds a secret, whose values the viewer, the export and the API
/// never show (they are recorded redacted already; this is the second guard).
pub fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "hash", "private_key", "recovery_code", "otp"].iter().any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(pairs: &[(&str, &str)]) -> AuditFilterInput {
        let mut input = AuditFilterInput::default();
        for (name, value) in pairs {
            let value = Some(value.to_string());
            match *name {
                "actor" => input.actor = value,
                "action" => input.action = value,
                "target_type" => input.target_type = value,
                "target" => input.target = value,
                "from" => input.from = value,
                "to" => input.to = value,
                "ip" => input.ip = value,
                "cursor" => input.cursor = value,
                "limit" => input.limit = value,
                _ => unreachable!(),
            }
        }
        input
    }

    #[test]
    fn no_filters_mean_the_newest_fifty() {
        let filter = AuditFilterInput::default().parse().unwrap();
        assert_eq!(filter, AuditFilter { limit: 50, ..AuditFilter::default() });
    }

    #[test]
    fn each_wrong_filter_is_named_with_what_to_write() {
        for (field, value) in [
            ("actor", "alice"),
            ("action", "project created"),
            ("action", ".project"),
            ("target_type", "Project!"),
            ("from", "2026-02-30"),
            ("from", "yesterday"),
            ("to", "2026-13-01"),
            ("ip", "300.1.1.1"),
            ("ip", "10.0.0.0/33"),
            ("cursor", "nope"),
            ("limit", "0"),
            ("limit", "201"),
        ] {
            let error = input(&[(field, value)]).parse().unwrap_err();
            assert_eq!(error.field, field, "{field}={value}");
            assert!(!error.message.is_empty());
        }
        let backwards = input(&[("from", "2026-12-02"), ("to", "2026-12-01")]).parse().unwrap_err();
        assert_eq!(backwards.field, "to");
    }

    #[test]
    fn filters_are_normalized() {
        let id = Uuid::new_v4();
        let filter = input(&[
            ("actor", &id.to_string()),
            ("action", " Project "),
            ("from", "2024-02-29"),
            ("to", "2026-12-01T09:30:00Z"),
            ("ip", "2001:DB8::1/64"),
            ("limit", "200"),
        ])
        .parse()
        .unwrap();
        assert_eq!(filter.actor, Some(id));
        assert_eq!(filter.action.as_deref(), Some("project"));
        assert_eq!(filter.from, Some(AuditMoment::Day { year: 2024, month: 2, day: 29 }));
        assert_eq!(filter.to, Some(AuditMoment::Instant("2026-12-01T09:30:00Z".into())));
        assert_eq!(filter.ip.as_deref(), Some("2001:db8::1/64"));
        assert_eq!(filter.limit, 200);
    }

    #[test]
    fn a_cursor_survives_the_round_trip_and_the_query_string_keeps_the_filters() {
        let cursor = AuditCursor { micros: 1_764_000_000_123_456, id: Uuid::new_v4() };
        assert_eq!(AuditCursor::parse(&cursor.encode()), Some(cursor));
        let query = input(&[("action", "project"), ("ip", "10.0.0.0/8"), ("cursor", &cursor.encode())]).query_string();
        assert_eq!(query, "action=project&ip=10.0.0.0%2F8");
    }

    #[test]
    fn secret_fields_are_recognized() {
        for secret in ["secret", "webhook_secret", "password_hash", "refresh_token", "PRIVATE_KEY"] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for plain in ["name", "role", "email", "api_keys", "description"] {
            assert!(!is_secret_field(plain), "{plain}");
        }
    }
}
