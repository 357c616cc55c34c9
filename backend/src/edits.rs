//! What every editable resource shares: an edit carries the version it was made from (the
//! `updated_at` the client read), and one made from an older version is refused rather than
//! silently undoing someone else's change.

use crate::error::Result;
use tessera_domain::input::FieldError;
use tessera_domain::AppError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The version an edit was made from, as the client sent it back (`None`: it didn't say, and
/// the edit applies whatever changed since).
pub fn seen_version(raw: Option<&str>) -> std::result::Result<Option<OffsetDateTime>, FieldError> {
    raw.map(str::trim)
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|_| FieldError::new("updated_at", "Send back the `updated_at` you read (an RFC 3339 time), or leave it out."))
        })
        .transpose()
}

/// Refuses an edit of `what` made from a version older than `current`.
pub fn ensure_current(seen: Option<OffsetDateTime>, current: OffsetDateTime, what: &str) -> Result<()> {
    if seen.is_some_and(|seen| seen != current) {
        return Err(AppError::Conflict(FieldError::new(
            "updated_at",
            format!("Someone changed this {what} since you opened it. Reload to see their changes, then make yours again."),
        ))
        .into());
    }
    Ok(())
}
