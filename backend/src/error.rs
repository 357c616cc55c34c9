use tessera_domain::{input::FieldError, AppError};

/// A service failure: either something to tell the user ([`AppError`]) or a fault of ours.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
    /// Stripe answered with an error (`status` is its HTTP status; `code` its error code).
    #[error("Stripe {status}: {message}")]
    Stripe { status: u16, code: Option<String>, param: Option<String>, message: String },
    /// An outside service (Stripe) couldn't be reached: worth retrying, not a bug.
    #[error("{0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Our own JSON (a job's payload, a sealed mail) that doesn't round-trip is our fault.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON: {e}"))
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::App(AppError::Invalid(e))
    }
}

/// Lets `?` carry a service failure straight to the wire error (server functions and REST
/// handlers return `AppError`), with internal faults logged on the way.
impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        e.into_app_error()
    }
}

/// A database constraint whose violation is the user's to fix: the field at fault and what to
/// say. Each resource registers its own next to its queries (`inventory::submit!`), so a
/// statement that trips one answers with a field error, found by the constraint's name, and
/// no service has to match on it.
pub struct Constraint {
    /// As named in the migration, and the table it is on (names are unique per table only).
    pub name: &'static str,
    pub table: &'static str,
    pub field: &'static str,
    pub message: &'static str,
}

inventory::collect!(Constraint);

/// The registered answer to a violated constraint. A unique or a reference one is a conflict
/// (409): someone else got there first, or the row referred to went while this request ran
/// (services check that it exists first, so only a race gets here). A check is invalid input
/// (422).
fn known_constraint(db: &dyn sqlx::error::DatabaseError) -> Option<AppError> {
    let (name, table) = (db.constraint()?, db.table()?);
    let known = inventory::iter::<Constraint>.into_iter().find(|c| c.name == name && c.table == table)?;
    let error = FieldError::new(known.field, known.message);
    Some(if db.is_unique_violation() || db.is_foreign_key_violation() { AppError::Conflict(error) } else { AppError::Invalid(error) })
}

impl Error {
    /// What the client may see. Internal faults are logged with a reference the user can quote,
    /// and their details stay in the log.
    pub fn into_app_error(self) -> AppError {
        if let Error::Db(sqlx::Error::Database(db)) = &self {
            if let Some(known) = known_constraint(db.as_ref()) {
                return known;
            }
        }
        match self {
            Error::App(e) => e,
            // statement_timeout fired: a slow database (or a long lock) is an outage, not a bug.
            Error::Db(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014") => {
                tracing::warn!(error = %db, "statement timed out");
                AppError::Unavailable("That took too long, so we stopped it. Please try again in a minute.".into())
            }
            // Two requests raced (the same address registered twice at once, say) and the
            // database kept its rules: nothing was written, so trying again is right. Known
            // constraints get their own messages where they are written; this is the fallback.
            Error::Db(sqlx::Error::Database(db)) if db.is_unique_violation() || matches!(db.code().as_deref(), Some("40001" | "40P01")) => {
                tracing::warn!(error = %db, "a request lost a race");
                AppError::Conflict(FieldError::new(
                    "request",
                    "Someone (or another tab) changed the same thing at the same moment. Nothing was saved; please try again.",
                ))
            }
            // A row-level security check refused a write: what it was about went out of the
            // actor's sight while the request ran (access taken away meanwhile).
            Error::Db(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") && db.message().contains("row-level security") => {
                tracing::warn!(error = %db, "a write was refused by row-level security");
                AppError::NotFound("That isn't there any more, or you no longer have access to it.".into())
            }
            // Text PostgreSQL can't store (a NUL character). The input types refuse control
            // characters at the edge; this keeps a field they don't cover a 400, not a 500.
            Error::Db(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                tracing::warn!(error = %db, "refused text the database can't store");
                AppError::BadRequest("Text can't contain NUL characters. Remove them and try again.".into())
            }
            // The database being unreachable is an outage to wait out, not a bug to report.
            Error::Db(e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)) => {
                tracing::warn!(error = %e, "database unreachable");
                AppError::Unavailable("We can't reach the database right now. Please try again in a minute.".into())
            }
            Error::Unavailable(e) => {
                tracing::warn!(error = %e, "an outside service is unreachable");
                crate::billing::stripe::unreachable()
            }
            // Stripe down or throttling: wait it out. A card Stripe declined: its own words,
            // which are for the customer. A request Stripe refused (the subscription changed
            // meanwhile, say): a conflict to reload and retry.
            Error::Stripe { status, message, .. } if status == 429 || status >= 500 => {
                tracing::warn!(status, message = %message, "Stripe is unavailable");
                crate::billing::stripe::unreachable()
            }
            Error::Stripe { status: 402, message, .. } => AppError::PaymentRequired(message),
            Error::Stripe { status, message, .. } if (400..500).contains(&status) && status != 401 && status != 403 => {
                tracing::warn!(status, message = %message, "Stripe refused a request");
                AppError::Conflict(FieldError::new(
                    "billing",
                    format!("Our payment provider refused this: {message} Reload the page to see the current state and try again."),
                ))
            }
            other => {
                let reference = uuid::Uuid::new_v4().simple().to_string();
                let reference = &reference[..12];
                tracing::error!(error = %other, reference, "internal error");
                AppError::Internal(format!("Something went wrong on our side. Please try again; if it keeps happening, quote reference {reference}."))
            }
        }
    }
}

/// The name of the unique constraint or index a failed statement violated, if that was the cause.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(db.constraint().unwrap_or_default().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Constraint;

    #[test]
    fn each_registered_constraint_is_registered_once_and_exists_in_a_migration() {
        let migrations: String = ["../migrations/control", "../migrations/tenant"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).unwrap())
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        let all: Vec<&Constraint> = inventory::iter::<Constraint>.into_iter().collect();
        assert!(!all.is_empty());
        for c in &all {
            assert_eq!(all.iter().filter(|o| (o.name, o.table) == (c.name, c.table)).count(), 1, "{} on {} twice", c.name, c.table);
            // The line that makes it names the table too (`… projects_name_unique ON projects (…)`).
            let declared = migrations.lines().any(|line| line.contains(c.name) && line.contains(&format!(" {} ", c.table)));
            assert!(declared, "{} on {} is in no migration", c.name, c.table);
        }
    }
}
