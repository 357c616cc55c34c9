//! Two-factor authentication, re-authentication, and an organization's sign-in rules.

use leptos::prelude::*;
use tessera_domain::dto::{MfaEnrolment, MfaStatus, SignInPolicy};
use tessera_domain::AppError;

#[cfg(feature = "ssr")]
use super::ssr::{self, enter};

/// The second step of signing in: a code from the authenticator app, or a recovery code.
#[server(endpoint = "verify_sign_in_code")]
pub async fn verify_sign_in_code(code: String) -> Result<(), AppError> {
    use tessera_backend::identity::mfa::CodePurpose;
    let pending = ssr::pending_sign_in().await?;
    ssr::backend()?.identity.check_second_factor(pending.user_id, &code, CodePurpose::SignIn, &ssr::meta()).await?;
    ssr::start_session(pending.user_id, true, pending.sso_tenant).await?;
    leptos_axum::redirect(&pending.next);
    Ok(())
}

#[server(endpoint = "my_mfa_status")]
pub async fn my_mfa_status() -> Result<MfaStatus, AppError> {
    let user_id = ssr::require_user().await?;
    Ok(ssr::backend()?.identity.mfa_status(user_id).await?)
}

/// Proves again who is at the keyboard, with the password or a second-factor code, before a
/// sensitive action.
#[server(endpoint = "reauthenticate")]
pub async fn reauthenticate(password: Option<String>, code: Option<String>) -> Result<(), AppError> {
    use tessera_backend::identity::mfa::CodePurpose;
    use tessera_domain::input::FieldError;
    let user_id = ssr::require_user().await?;
    let identity = ssr::backend()?.identity;
    let meta = ssr::meta();
    match (password.filter(|p| !p.is_empty()), code.filter(|c| !c.trim().is_empty())) {
        (_, Some(code)) => {
            identity.check_second_factor(user_id, &code, CodePurpose::Reauthenticate, &meta).await?;
            ssr::mark_authenticated(true).await
        }
        (Some(_), None) if identity.mfa_enabled(user_id).await? => Err(AppError::Invalid(FieldError::new(
            "code",
            "Your account uses two-factor authentication: enter a code from your authenticator app (or a recovery code).",
        ))),
        (Some(password), None) => {
            identity.reauthenticate_with_password(user_id, &password, &meta).await?;
            ssr::mark_authenticated(false).await
        }
        (None, None) => Err(AppError::Invalid(FieldError::new("password", "Enter your password, or a code from your authenticator app."))),
    }
}

#[server(endpoint = "begin_mfa_enrolment")]
pub async fn begin_mfa_enrolment() -> Result<MfaEnrolment, AppError> {
    let user_id = ssr::require_recent_auth().await?;
    Ok(ssr::backend()?.identity.begin_mfa_enrolment(user_id).await?)
}

/// Turns two-factor on with the first code from the app; returns the recovery codes (shown
/// once). This browser counts as signed in with two factors from now on.
#[server(endpoint = "confirm_mfa_enrolment")]
pub async fn confirm_mfa_enrolment(code: String) -> Result<Vec<String>, AppError> {
    let user_id = ssr::require_recent_auth().await?;
    let this_session = ssr::session_id()?;
    let codes = ssr::backend()?.identity.confirm_mfa_enrolment(user_id, &code, this_session.as_deref(), &ssr::meta()).await?;
    ssr::mark_authenticated(true).await?;
    Ok(codes)
}

#[server(endpoint = "disable_mfa")]
pub async fn disable_mfa() -> Result<(), AppError> {
    let user_id = ssr::require_recent_auth().await?;
    let this_session = ssr::session_id()?;
    ssr::backend()?.identity.disable_mfa(user_id, this_session.as_deref(), &ssr::meta()).await?;
    ssr::forget_second_factor().await
}

#[server(endpoint = "regenerate_recovery_codes")]
pub async fn regenerate_recovery_codes() -> Result<Vec<String>, AppError> {
    let user_id = ssr::require_recent_auth().await?;
    Ok(ssr::backend()?.identity.regenerate_recovery_codes(user_id, &ssr::meta()).await?)
}

#[server(endpoint = "org_sign_in_policy")]
pub async fn org_sign_in_policy(slug: String) -> Result<SignInPolicy, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::tenancy::security::policy(&org).await?)
    })
    .await
}

/// Checkboxes: present ("on") when ticked, absent otherwise.
#[server(endpoint = "set_org_sign_in_policy")]
pub async fn set_org_sign_in_policy(slug: String, require_mfa: Option<String>, sso_satisfies_mfa: Option<String>) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    let signed_in_with_mfa = ssr::authn().await?.mfa;
    Ok(tessera_backend::tenancy::security::set_policy(&org, require_mfa.is_some(), sso_satisfies_mfa.is_some(), signed_in_with_mfa).await?)
}

#[server(endpoint = "list_api_keys")]
pub async fn list_api_keys(slug: String) -> Result<Vec<tessera_domain::dto::ApiKeySummary>, AppError> {
    ssr::once_per_request(slug.clone(), async move {
        let (_, org) = enter(&slug).await?;
        Ok(tessera_backend::api_keys::list(&org).await?)
    })
    .await
}

/// `scopes`: the ticked checkboxes, each a scope's name (`projects:read`); `expires_in_days`
/// is a number of days or "never".
#[server(endpoint = "create_api_key")]
pub async fn create_api_key(
    slug: String,
    name: String,
    scopes: Option<Vec<String>>,
    expires_in_days: String,
) -> Result<tessera_domain::dto::NewApiKey, AppError> {
    use tessera_domain::input::FieldError;
    use tessera_domain::Scope;
    let (_, org) = enter(&slug).await?;
    ssr::require_recent_auth().await?;
    let scopes = scopes
        .unwrap_or_default()
        .iter()
        .map(|name| {
            Scope::parse(name)
                .ok_or_else(|| AppError::Invalid(FieldError::new("scopes", format!("There is no scope called \"{name}\"; choose from the list."))))
        })
        .collect::<Result<Vec<Scope>, AppError>>()?;
    let expires = match expires_in_days.trim() {
        "never" => None,
        days => Some(days.parse::<u32>().map_err(|_| AppError::Invalid(FieldError::new("expires_in_days", "Choose when the key expires.")))?),
    };
    Ok(tessera_backend::api_keys::create(&org, &name, &scopes, expires).await?)
}

#[server(endpoint = "revoke_api_key")]
pub async fn revoke_api_key(slug: String, id: String) -> Result<(), AppError> {
    let (_, org) = enter(&slug).await?;
    let id = ssr::parse_id(&id, "API key")?;
    Ok(tessera_backend::api_keys::revoke(&org, id).await?)
}

/// The outside identity providers this deployment offers ("Continue with …").
#[server(endpoint = "sign_in_providers")]
pub async fn sign_in_providers() -> Result<Vec<tessera_domain::dto::SignInProvider>, AppError> {
    Ok(ssr::backend()?.oidc.providers().into_iter().map(|(id, name)| tessera_domain::dto::SignInProvider { id, name }).collect())
}

/// The message a redirected sign-in flow left for this page, once.
#[server(endpoint = "take_sign_in_problem")]
pub async fn take_sign_in_problem() -> Result<Option<String>, AppError> {
    ssr::session()?.remove::<String>(ssr::SIGN_IN_PROBLEM_KEY).await.map_err(ssr::internal)
}

#[server(endpoint = "my_identities")]
pub async fn my_identities() -> Result<Vec<tessera_domain::dto::LinkedIdentity>, AppError> {
    let user_id = ssr::require_user().await?;
    let backend = ssr::backend()?;
    Ok(backend.identity.identities_of(user_id, &backend.oidc).await?)
}

/// Starts connecting an outside account to the signed-in user (after confirming it's them);
/// returns where to send the browser to begin.
#[server(endpoint = "connect_identity")]
pub async fn connect_identity(provider: String) -> Result<String, AppError> {
    let user_id = ssr::require_recent_auth().await?;
    let backend = ssr::backend()?;
    if !backend.identity.user(user_id).await?.is_some_and(|u| u.email_verified) {
        return Err(AppError::Forbidden("Confirm your email address first (use the link we sent you), then connect other accounts.".into()));
    }
    if !backend.oidc.providers().iter().any(|(id, _)| *id == provider) {
        return Err(AppError::NotFound("That sign-in provider isn't set up here.".into()));
    }
    ssr::session()?
        .insert(ssr::LINK_INTENT_KEY, tessera_backend::sign_in::LinkIntent { provider: provider.clone(), at: tessera_backend::sign_in::now() })
        .await
        .map_err(ssr::internal)?;
    Ok(format!("/auth/oidc/{provider}/start?next=/account/security"))
}

#[server(endpoint = "disconnect_identity")]
pub async fn disconnect_identity(id: String) -> Result<(), AppError> {
    let user_id = ssr::require_recent_auth().await?;
    let id = ssr::parse_id(&id, "connection")?;
    Ok(ssr::backend()?.identity.unlink_external(user_id, id, &ssr::meta()).await?)
}

/// The signed-in person's recent account activity.
#[server(endpoint = "my_account_activity")]
pub async fn my_account_activity() -> Result<Vec<tessera_domain::dto::AccountEvent>, AppError> {
    let user_id = ssr::require_user().await?;
    Ok(ssr::backend()?.identity.recent_activity(user_id).await?)
}
