//! An organization's sign-in rules: whether members must use two-factor authentication, and
//! whether a sign-in through the organization's own IdP already counts as two-factor. The rule
//! is enforced by the door itself ([`super::Tenancy::enter`]), so no page can forget it.

use crate::audit::AuditEntry;
use crate::error::Result;
use crate::Org;
use tessera_domain::dto::SignInPolicy;
use tessera_domain::input::FieldError;
use tessera_domain::{AppError, Permission};

pub async fn policy(org: &Org) -> Result<SignInPolicy> {
    let mut tx = org.control_read(Permission::ManageSecurity).await?;
    let (require_mfa, sso_satisfies_mfa): (bool, bool) =
        sqlx::query_as("SELECT require_mfa, sso_satisfies_mfa FROM tenants WHERE id = $1").bind(org.tenant.id).fetch_one(tx.conn()).await?;
    // Second factors are each account's own (row-level security); the owner's function
    // counts them for the organization acted in and tells nothing else.
    let members_without_mfa: i64 = sqlx::query_scalar("SELECT tenant_members_without_second_factor()").fetch_one(tx.conn()).await?;
    Ok(SignInPolicy { require_mfa, sso_satisfies_mfa, members_without_mfa })
}

/// Changes the rules. Requiring two-factor is refused to an admin whose own sign-in has none:
/// they would be shut out of the organization by their own click.
pub async fn set_policy(org: &Org, require_mfa: bool, sso_satisfies_mfa: bool, actor_signed_in_with_mfa: bool) -> Result<()> {
    org.require(Permission::ManageSecurity)?;
    if require_mfa && !actor_signed_in_with_mfa {
        return Err(AppError::Invalid(FieldError::new(
            "require_mfa",
            "Turn on two-factor authentication for your own account first (Account → Security), so this doesn't lock you out.",
        ))
        .into());
    }
    let mut tx = org.control_write(Permission::ManageSecurity).await?;
    let (old_require, old_sso): (bool, bool) = sqlx::query_as("SELECT require_mfa, sso_satisfies_mfa FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(org.tenant.id)
        .fetch_one(tx.conn())
        .await?;
    if (old_require, old_sso) == (require_mfa, sso_satisfies_mfa) {
        return Ok(());
    }
    sqlx::query("SELECT tenant_set_sign_in_rules($1, $2, NULL)").bind(require_mfa).bind(sso_satisfies_mfa).execute(tx.conn()).await?;
    let mut changed = serde_json::Map::new();
    if old_require != require_mfa {
        changed.insert("require_mfa".into(), serde_json::json!({ "old": old_require, "new": require_mfa }));
    }
    if old_sso != sso_satisfies_mfa {
        changed.insert("sso_satisfies_mfa".into(), serde_json::json!({ "old": old_sso, "new": sso_satisfies_mfa }));
    }
    tx.commit(AuditEntry::new("tenant.sign_in_policy_changed", "tenant", org.tenant.id, serde_json::Value::Object(changed))).await
}
