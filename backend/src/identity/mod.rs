//! Global user identity (control plane): sign-up and password login.
//! Users are not tenant data; a user reaches a tenant only through a membership.
//! Every prepared statement runs in an explicit transaction (see `sessions` for why: PgBouncer).

pub mod events;
pub mod github;
pub mod links;
pub mod mfa;
pub mod oidc;
pub mod throttle;

use crate::ctx::RequestMeta;
use crate::db::Setting;
use crate::email::{templates, Mailer};
use crate::error::Result;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use events::Event;
use links::Purpose;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::OnceLock;
use tessera_domain::dto::{ConfirmationLink, CurrentUser};
use tessera_domain::input::{parse_display_name, Email, FieldError, Password};
use tessera_domain::AppError;
use throttle::{LINKS_PER_EMAIL, LINKS_PER_IP, LOGINS_PER_IP, LOGIN_FAILURES_PER_EMAIL};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone)]
pub struct Identity {
    pool: PgPool,
    secret: crate::secrets::SecretKey,
    mailer: Arc<dyn Mailer>,
    /// The address people reach Tessera at, for links in emails (no trailing slash).
    public_url: String,
}

/// The single message for every failed login, so responses never tell whether an email exists
/// (or whether it was confirmed: the last sentence is for people who just signed up).
pub const LOGIN_FAILED: &str = "That email and password don't match an account. Check both and try again. \
                                Just signed up? Follow the link in our email first.";

/// Whether a password check also requires a confirmed address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confirmation<'a> {
    /// Signing in: an unconfirmed account is refused, and a fresh link bound to `browser` (the
    /// asking browser's session secret) goes to its inbox.
    Required {
        browser: Option<&'a str>,
    },
    NotRequired,
}

type UserRow = (Uuid, String, Option<String>, bool);

/// The event a sign-in reports (its job decides whether the browser is new to the account).
fn new_sign_in(user_id: Uuid, meta: &RequestMeta) -> crate::notifications::Event {
    crate::notifications::Event::NewSignIn { user_id, user_agent: meta.user_agent.clone(), ip: meta.ip }
}

/// What a request to email a link says, whether or not an account exists.
pub const LINK_SENT: &str = "Check your inbox. If that address has an account, a link is on its way; it works for a short time only.";

impl Identity {
    pub fn new(pool: PgPool, secret: crate::secrets::SecretKey, mailer: Arc<dyn Mailer>, public_url: &str) -> Self {
        Self { pool, secret, mailer, public_url: public_url.trim_end_matches('/').to_string() }
    }

    /// The address people reach Tessera at (no trailing slash), for links in emails.
    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Queues `mail` in the transaction `conn` is in: it goes out once that commits, and never
    /// if it rolls back. The response doesn't wait on (or reveal, by its timing) the mail
    /// server; a mail outage delays the mail (retried, then visible as a dead job) and fails
    /// no request. Callers wake the workers after committing (`jobs::wake`).
    pub(crate) async fn queue_mail(&self, conn: &mut sqlx::PgConnection, lane: crate::jobs::Lane, mail: &crate::email::OutgoingEmail) -> Result<()> {
        crate::jobs::enqueue(conn, lane, &crate::email::SendMail::seal(&self.secret, mail)?).await?;
        Ok(())
    }

    /// Sends a queued mail (the `mail.send` job), identified by its job's id.
    pub(crate) async fn deliver(&self, mail: crate::email::SendMail, job: Uuid) -> Result<()> {
        let mut email = mail.open(&self.secret)?;
        email.id = Some(job);
        self.mailer.send(email).await
    }

    /// Creates an account. Unless the address is already proven, the answer is the same
    /// whether or not the address has an account (sign-up must not reveal who is a customer):
    /// a new account waits for its confirmation link; the owner of an existing one is emailed
    /// about the attempt instead. Both cost the same password hashing.
    pub async fn sign_up(&self, email: &str, password: &str, display_name: &str, proof: AddressProof<'_>, meta: &RequestMeta) -> Result<SignedUp> {
        let email = Email::parse(email)?;
        let password = Password::parse_new(password)?;
        let display_name = parse_display_name(display_name)?;
        if let Some(ip) = meta.ip {
            // Counted in its own transaction: a refused or failed sign-up still counts.
            let mut tx = crate::db::open(&self.pool, false).await?;
            throttle::hit(&mut tx, &format!("signup:ip:{ip}"), throttle::SIGN_UPS_PER_IP).await?;
            tx.commit().await?;
        }
        let hash = hash_password(password).await?;
        let id = Uuid::new_v4();
        let mut tx = crate::db::open(&self.pool, false).await?;
        // Each sign-up mails the address, so it counts against the address's mail budget too
        // (the network has its own sign-up budget above).
        // The account already holding the address, and whether it was ever confirmed.
        let existing: Option<(Uuid, bool)> = match proof {
            AddressProof::Pending { .. } => {
                throttle::hit(&mut tx, &format!("link:email:{}", email.as_str()), LINKS_PER_EMAIL).await?;
                sqlx::query_as("SELECT id, email_verified_at IS NOT NULL FROM users WHERE lower(email) = $1 FOR UPDATE")
                    .bind(email.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            AddressProof::Proven => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, email_verified_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(email.as_str())
        .bind(display_name.as_deref())
        .bind(&hash)
        .bind(matches!(proof, AddressProof::Proven).then(OffsetDateTime::now_utc))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let user = CurrentUser { id, email: email.as_str().to_string(), display_name, email_verified: false };
        match (proof, inserted) {
            (AddressProof::Proven, true) => {
                tx.commit().await?;
                Ok(SignedUp::Confirmed(CurrentUser { email_verified: true, ..user }))
            }
            (AddressProof::Proven, false) => Err(AppError::Conflict(FieldError::new(
                "email",
                "An account with this email already exists. Log in instead (or reset its password if you forgot it).",
            ))
            .into()),
            (AddressProof::Pending { browser }, true) => {
                let token = links::issue(&mut tx, Purpose::VerifyEmail, id, email.as_str(), Some(browser)).await?;
                self.queue_mail(
                    &mut tx,
                    crate::jobs::Lane::Deployment,
                    &templates::verify_email(email.as_str(), &format!("{}/auth/verify?token={token}", self.public_url)),
                )
                .await?;
                tx.commit().await?;
                crate::jobs::wake();
                Ok(SignedUp::AwaitingConfirmation(user))
            }
            (AddressProof::Pending { browser }, false) => {
                let user_id = existing.map(|(id, _)| id);
                events::record(&mut tx, Event::SignUpForExistingAccount, user_id, Some(email.as_str()), meta).await?;
                let mail = match existing {
                    // Signed up before and never confirmed: most likely the same person, who
                    // lost the mail or the password. A fresh link (one click in this browser)
                    // confirms the account with the password chosen now; whoever registered
                    // first is out then.
                    Some((user_id, false)) => {
                        let token = links::issue_carrying(&mut tx, Purpose::VerifyEmail, user_id, email.as_str(), Some(browser), Some(&hash)).await?;
                        templates::verify_email(email.as_str(), &format!("{}/auth/verify?token={token}", self.public_url))
                    }
                    _ => templates::account_exists(email.as_str(), &format!("{}/login", self.public_url), &format!("{}/forgot", self.public_url)),
                };
                self.queue_mail(&mut tx, crate::jobs::Lane::Deployment, &mail).await?;
                tx.commit().await?;
                crate::jobs::wake();
                Ok(SignedUp::AlreadyRegistered)
            }
        }
    }

    /// Signs in with a password. Unknown emails cost the same hashing work as wrong passwords.
    /// After repeated failures for one email (existing or not, so the lock reveals nothing)
    /// further attempts are refused for the rest of the window, right password or not.
    ///
    /// An account whose address was never confirmed doesn't sign in, and its right password
    /// gets the same answer as a wrong one: otherwise signing up with someone's address and
    /// then logging in would tell whether they already had an account (the new one opens, the
    /// old one refuses), and a registrant could use an address they don't own. Its owner gets
    /// a fresh confirmation link instead (bound to `browser`, so following it there signs in),
    /// within the address's mail budget; that mail goes to the inbox, which the asker may not
    /// read, so it reveals nothing either.
    pub async fn log_in(&self, email: &str, password: &str, browser: Option<&str>, meta: &RequestMeta) -> Result<CurrentUser> {
        self.check_password(email, password, Confirmation::Required { browser }, meta).await
    }

    /// Checks a password as [`Identity::log_in`] does (same lock, same audit trail), for
    /// `confirmation` as the caller needs: re-authentication of a signed-in user and the
    /// password asked at confirmation itself don't require a confirmed address.
    pub(crate) async fn check_password(
        &self,
        email: &str,
        password: &str,
        confirmation: Confirmation<'_>,
        meta: &RequestMeta,
    ) -> Result<CurrentUser> {
        let email = Email::for_lookup(email);
        let email_bucket = format!("login:email:{}", email.as_ref().map(Email::as_str).unwrap_or("-"));
        let mut tx = crate::db::open(&self.pool, false).await?;
        if let Some(ip) = meta.ip {
            throttle::hit(&mut tx, &format!("login:ip:{ip}"), LOGINS_PER_IP).await?;
        }
        // The attempt is counted before the (slow) password check, in the same statement that
        // reads the count, so a burst of parallel guesses can't all slip under the limit; a
        // successful login gives its count back.
        let count = throttle::record(&mut tx, &email_bucket, LOGIN_FAILURES_PER_EMAIL).await?;
        if count.over(LOGIN_FAILURES_PER_EMAIL) {
            let typed = email.as_ref().map(Email::as_str);
            events::record(&mut tx, Event::LoginLocked, None, typed, meta).await?;
            tx.commit().await?;
            return Err(throttle::too_many(count.seconds_left).into());
        }
        let row: Option<UserRow> = match &email {
            Some(email) => {
                sqlx::query_as("SELECT id, email, display_name, email_verified_at IS NOT NULL FROM users WHERE lower(email) = $1")
                    .bind(email.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        // The hash is readable only for the account being checked; asked for (of nobody) when
        // there is no such account too, so both cost the same statements.
        crate::db::set_local(&mut tx, &[(Setting::AccountId, &row.as_ref().map_or(Uuid::nil(), |r| r.0).to_string())]).await?;
        let stored_hash: Option<String> = sqlx::query_scalar("SELECT account_password_hash()").fetch_one(&mut *tx).await?;
        tx.commit().await?;
        let password = password.to_string();
        // Hashing (including the one-off dummy hash) stays off the async executor.
        let matches = tokio::task::spawn_blocking(move || match &stored_hash {
            Some(hash) => verify_password(&password, hash),
            None => verify_password(&password, dummy_hash()),
        })
        .await
        .map_err(|e| crate::Error::Internal(e.to_string()))?;
        let mut tx = crate::db::open(&self.pool, false).await?;
        match row {
            Some((id, email, display_name, email_verified)) if matches && (email_verified || confirmation == Confirmation::NotRequired) => {
                throttle::give_back(&mut tx, &email_bucket, LOGIN_FAILURES_PER_EMAIL).await?;
                events::record(&mut tx, Event::LoginSucceeded, Some(id), Some(&email), meta).await?;
                crate::notifications::notify(&mut tx, new_sign_in(id, meta)).await?;
                tx.commit().await?;
                crate::jobs::wake();
                Ok(CurrentUser { id, email, display_name, email_verified })
            }
            Some((id, email, ..)) if matches => {
                // Counted as a failure (a lock must not tell the two apart either).
                events::record(&mut tx, Event::LoginUnconfirmed, Some(id), Some(&email), meta).await?;
                let browser = match confirmation {
                    Confirmation::Required { browser } => browser,
                    Confirmation::NotRequired => None,
                };
                let mail = if resend_budget_left(&mut tx, &email).await? {
                    let token = links::issue(&mut tx, Purpose::VerifyEmail, id, &email, browser).await?;
                    Some(templates::verify_email(&email, &format!("{}/auth/verify?token={token}", self.public_url)))
                } else {
                    None
                };
                if let Some(mail) = &mail {
                    self.queue_mail(&mut tx, crate::jobs::Lane::Deployment, mail).await?;
                }
                tx.commit().await?;
                crate::jobs::wake();
                Err(AppError::Invalid(FieldError::new("password", LOGIN_FAILED)).into())
            }
            row => {
                let typed = email.as_ref().map(Email::as_str);
                events::record(&mut tx, Event::LoginFailed, row.map(|r| r.0), typed, meta).await?;
                // The same bucket as the branch above, so both cost the same statements.
                resend_budget_left(&mut tx, typed.unwrap_or("-")).await?;
                tx.commit().await?;
                Err(AppError::Invalid(FieldError::new("password", LOGIN_FAILED)).into())
            }
        }
    }

    /// Emails a sign-in link bound to the requesting browser session (`browser` is a secret
    /// kept in that session). The answer is the same whether or not the address has an account.
    pub async fn request_magic_link(&self, email: &str, browser: &str, meta: &RequestMeta) -> Result<()> {
        let email = Email::parse(email)?;
        let mut tx = crate::db::open(&self.pool, false).await?;
        let user = link_request(&mut tx, email.as_str(), meta).await?;
        let mail = match user {
            Some(user_id) => {
                let token = links::issue(&mut tx, Purpose::MagicLink, user_id, email.as_str(), Some(browser)).await?;
                events::record(&mut tx, Event::MagicLinkRequested, Some(user_id), Some(email.as_str()), meta).await?;
                templates::magic_link(email.as_str(), &format!("{}/auth/magic?token={token}", self.public_url))
            }
            None => templates::no_account(email.as_str(), &format!("{}/signup", self.public_url)),
        };
        self.queue_mail(&mut tx, crate::jobs::Lane::Deployment, &mail).await?;
        tx.commit().await?;
        crate::jobs::wake();
        Ok(())
    }

    /// The address a still-valid link was sent to (the landing page shows it before the click).
    pub async fn link_email(&self, purpose: Purpose, token: &str) -> Result<String> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let link = links::peek(&mut tx, purpose, token, None).await?;
        tx.commit().await?;
        Ok(link.email)
    }

    /// Signs in with a magic link. Following it also proves the address, so it is verified.
    pub async fn redeem_magic_link(&self, token: &str, browser: Option<&str>, meta: &RequestMeta) -> Result<CurrentUser> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let result = async {
            let (user_id, email) = links::redeem(&mut tx, Purpose::MagicLink, token, browser).await?;
            // The inbox's owner is here. If the address was never confirmed, whoever signed up
            // with it may have been someone else: their password and sessions stop working.
            let unconfirmed: bool =
                sqlx::query_scalar("SELECT email_verified_at IS NULL FROM users WHERE id = $1 FOR UPDATE").bind(user_id).fetch_one(&mut *tx).await?;
            if unconfirmed {
                evict_unconfirmed_registrant(&mut tx, user_id).await?;
            }
            events::record(&mut tx, Event::MagicLinkUsed, Some(user_id), Some(&email), meta).await?;
            crate::notifications::notify(&mut tx, new_sign_in(user_id, meta)).await?;
            Ok(user_id)
        }
        .await;
        let user_id = self.finish_link(tx, result, meta).await?;
        self.user(user_id).await?.ok_or_else(|| AppError::not_found().into())
    }

    /// What following a confirmation link here would take: nothing more in the browser that
    /// signed up (or one signed in to the account, for a first sign-up's link), the password
    /// chosen at that sign-up anywhere else.
    pub async fn confirmation_link(&self, token: &str, browser: Option<&str>, signed_in_as: Option<Uuid>) -> Result<ConfirmationLink> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let link = links::peek(&mut tx, Purpose::VerifyEmail, token, browser).await?;
        let unconfirmed = unconfirmed_account(&mut tx, link.user_id, &link.email).await?;
        tx.commit().await?;
        let here = link.followed_by_its_registrant(signed_in_as);
        Ok(ConfirmationLink { email: link.email, needs_password: unconfirmed == Some(true) && !here })
    }

    /// Confirms an address from the link sent at sign-up. `browser`: this browser's session
    /// secret; `signed_in_as`: the account it is signed in to, if any.
    ///
    /// Whoever follows the link owns the inbox, but the account may have been registered by
    /// someone else, waiting for the owner to confirm it (pre-account hijack). So the link
    /// confirms an unconfirmed account only in the browser that signed up, in one signed in to
    /// the account, or with the account's password: each shows the inbox's owner is also its
    /// registrant. Elsewhere the owner can disown the registration instead
    /// ([`Identity::disown_registration`]). Because of the same checks, confirming signs this
    /// browser in without letting anyone sign a victim in to an account of theirs by sending
    /// them its link (login CSRF): the victim would need the account's password.
    pub async fn verify_email(
        &self,
        token: &str,
        browser: Option<&str>,
        signed_in_as: Option<Uuid>,
        password: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(CurrentUser, Verified)> {
        // The password is checked before the link is locked (hashing is slow); the decision is
        // made again under the lock, in case the account changed in between.
        let peeked = self.confirmation_link(token, browser, signed_in_as).await?;
        let password_checked = if peeked.needs_password {
            let Some(password) = password.filter(|p| !p.is_empty()) else {
                return Err(AppError::Invalid(FieldError::new("password", "Enter the password you chose when you created this account.")).into());
            };
            self.check_confirmation_password(token, &peeked.email, password, meta).await?;
            true
        } else {
            false
        };
        let mut tx = crate::db::open(&self.pool, false).await?;
        let result = async {
            let link = links::take(&mut tx, Purpose::VerifyEmail, token, browser).await?;
            let outcome = match unconfirmed_account(&mut tx, link.user_id, &link.email).await? {
                Some(true) => {
                    let here = link.followed_by_its_registrant(signed_in_as);
                    if !here && !password_checked {
                        return Err(
                            AppError::Invalid(FieldError::new("password", "Enter the password you chose when you created this account.")).into()
                        );
                    }
                    match &link.password_hash {
                        // A repeated sign-up's link: the account is the inbox owner's now, with
                        // the password they chose then, and whoever registered first is out.
                        Some(hash) => {
                            evict_unconfirmed_registrant(&mut tx, link.user_id).await?;
                            set_password(&mut tx, link.user_id, hash, token).await?;
                        }
                        None => confirm_email(&mut tx, link.user_id).await?,
                    }
                    Verified::Confirmed
                }
                _ => Verified::AlreadyConfirmed,
            };
            events::record(&mut tx, Event::EmailVerified, Some(link.user_id), Some(&link.email), meta).await?;
            Ok((link.user_id, outcome))
        }
        .await;
        let (user_id, outcome) = self.finish_link(tx, result, meta).await?;
        let user = self.user(user_id).await?.ok_or_else(AppError::not_found)?;
        Ok((user, outcome))
    }

    /// The password asked where a confirmation link isn't followed in the browser that signed
    /// up: the one the link carries (a repeated sign-up's) or else the account's. Counted and
    /// audited like a login attempt.
    async fn check_confirmation_password(&self, token: &str, email: &str, password: &str, meta: &RequestMeta) -> Result<()> {
        let wrong = || -> crate::Error {
            AppError::Invalid(FieldError::new(
                "password",
                "That isn't the password chosen for this account. If you didn't create it, choose \"I didn't create this account\".",
            ))
            .into()
        };
        let mut tx = crate::db::open(&self.pool, false).await?;
        let carried = links::peek(&mut tx, Purpose::VerifyEmail, token, None).await?.password_hash;
        tx.commit().await?;
        let Some(carried) = carried else {
            return self.check_password(email, password, Confirmation::NotRequired, meta).await.map(|_| ()).map_err(|e| match e {
                crate::Error::App(AppError::Invalid(f)) if f.field == "password" => wrong(),
                other => other,
            });
        };
        let bucket = format!("login:email:{}", email.to_lowercase());
        let mut tx = crate::db::open(&self.pool, false).await?;
        let count = throttle::record(&mut tx, &bucket, LOGIN_FAILURES_PER_EMAIL).await?;
        tx.commit().await?;
        if count.over(LOGIN_FAILURES_PER_EMAIL) {
            return Err(throttle::too_many(count.seconds_left).into());
        }
        let password = password.to_string();
        let matches =
            tokio::task::spawn_blocking(move || verify_password(&password, &carried)).await.map_err(|e| crate::Error::Internal(e.to_string()))?;
        let mut tx = crate::db::open(&self.pool, false).await?;
        if matches {
            throttle::give_back(&mut tx, &bucket, LOGIN_FAILURES_PER_EMAIL).await?;
        } else {
            events::record(&mut tx, Event::LoginFailed, None, Some(email), meta).await?;
        }
        tx.commit().await?;
        if matches {
            Ok(())
        } else {
            Err(wrong())
        }
    }

    /// "I didn't create this account": the inbox's owner, following the confirmation link,
    /// says someone else registered their address. The address is confirmed and whoever
    /// registered it is out ([`Verified::RegistrantEvicted`]); nobody is signed in (the link
    /// isn't proof of this browser), the owner signs in with an emailed link or a reset.
    pub async fn disown_registration(&self, token: &str, meta: &RequestMeta) -> Result<Verified> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let result = async {
            let link = links::take(&mut tx, Purpose::VerifyEmail, token, None).await?;
            let outcome = match unconfirmed_account(&mut tx, link.user_id, &link.email).await? {
                Some(true) => {
                    evict_unconfirmed_registrant(&mut tx, link.user_id).await?;
                    events::record(&mut tx, Event::RegistrationDisowned, Some(link.user_id), Some(&link.email), meta).await?;
                    Verified::RegistrantEvicted
                }
                _ => Verified::AlreadyConfirmed,
            };
            Ok(outcome)
        }
        .await;
        self.finish_link(tx, result, meta).await
    }

    /// Sends a fresh confirmation link to a signed-in user who hasn't confirmed yet; it
    /// confirms without more questions in this browser (`browser`: its session secret).
    pub async fn resend_verification(&self, user_id: Uuid, browser: &str, meta: &RequestMeta) -> Result<()> {
        let user = self.user(user_id).await?.ok_or(AppError::Unauthenticated)?;
        if user.email_verified {
            return Ok(());
        }
        let mut tx = crate::db::open(&self.pool, false).await?;
        link_request(&mut tx, &user.email, meta).await?;
        let token = links::issue(&mut tx, Purpose::VerifyEmail, user.id, &user.email, Some(browser)).await?;
        self.queue_mail(
            &mut tx,
            crate::jobs::Lane::Deployment,
            &templates::verify_email(&user.email, &format!("{}/auth/verify?token={token}", self.public_url)),
        )
        .await?;
        tx.commit().await?;
        crate::jobs::wake();
        Ok(())
    }

    /// Emails a password-reset link; same answer whether or not the address has an account.
    pub async fn request_password_reset(&self, email: &str, meta: &RequestMeta) -> Result<()> {
        let email = Email::parse(email)?;
        let mut tx = crate::db::open(&self.pool, false).await?;
        let user = link_request(&mut tx, email.as_str(), meta).await?;
        let mail = match user {
            Some(user_id) => {
                let token = links::issue(&mut tx, Purpose::ResetPassword, user_id, email.as_str(), None).await?;
                events::record(&mut tx, Event::PasswordResetRequested, Some(user_id), Some(email.as_str()), meta).await?;
                Some(templates::password_reset(email.as_str(), &format!("{}/auth/reset?token={token}", self.public_url)))
            }
            None => None,
        };
        if let Some(mail) = &mail {
            self.queue_mail(&mut tx, crate::jobs::Lane::Deployment, mail).await?;
        }
        tx.commit().await?;
        crate::jobs::wake();
        Ok(())
    }

    /// Sets a new password from a reset link and signs the user out everywhere else. The link
    /// is checked before the (deliberately slow) hashing, so junk tokens cost nothing.
    pub async fn reset_password(&self, token: &str, password: &str, meta: &RequestMeta) -> Result<CurrentUser> {
        let password = Password::parse_new(password)?;
        self.link_email(Purpose::ResetPassword, token).await?;
        let hash = hash_password(password).await?;
        let mut tx = crate::db::open(&self.pool, false).await?;
        let result = async {
            let (user_id, email) = links::redeem(&mut tx, Purpose::ResetPassword, token, None).await?;
            set_password(&mut tx, user_id, &hash, token).await?;
            crate::sessions::sign_out_elsewhere(&mut tx, user_id, None, "password_reset").await?;
            // A reset also clears the lock: the person just proved they own the inbox.
            sqlx::query("DELETE FROM auth_throttle WHERE bucket = 'login:email:' || $1").bind(&email).execute(&mut *tx).await?;
            events::record(&mut tx, Event::PasswordReset, Some(user_id), Some(&email), meta).await?;
            Ok(user_id)
        }
        .await;
        let user_id = self.finish_link(tx, result, meta).await?;
        self.user(user_id).await?.ok_or_else(|| AppError::not_found().into())
    }

    /// Finishes a link redemption: commits on success; on a refused link, records the refusal
    /// in a transaction of its own, after the first one has ended (so a refusal never holds one
    /// connection while waiting for another).
    async fn finish_link<T>(&self, tx: sqlx::Transaction<'static, sqlx::Postgres>, result: Result<T>, meta: &RequestMeta) -> Result<T> {
        match result {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                drop(tx);
                if matches!(&e, crate::Error::App(AppError::Invalid(f)) if f.field == "token") {
                    let mut own = crate::db::open(&self.pool, false).await?;
                    events::record(&mut own, Event::LinkRefused, None, None, meta).await?;
                    own.commit().await?;
                }
                Err(e)
            }
        }
    }

    /// The account's latest security events, newest first.
    pub async fn recent_activity(&self, user_id: Uuid) -> Result<Vec<tessera_domain::dto::AccountEvent>> {
        events::recent(&self.pool, user_id, 30).await
    }

    /// Forgets what can no longer be used (maintenance job): rate-limit windows that are over,
    /// emailed links and refresh tokens a day past expiry, and token families left empty.
    /// Rotated refresh tokens stay until they would have expired: until then, presenting one
    /// again must still be recognised as reuse.
    pub async fn prune_expired(&self) -> Result<u64> {
        let mut tx = crate::db::begin(&self.pool, false, &[(crate::db::Setting::Maintenance, "prune")]).await?;
        let mut n = throttle::prune(&mut tx).await?;
        n += sqlx::query("DELETE FROM auth_tokens WHERE expires_at < now() - interval '1 day'").execute(&mut *tx).await?.rows_affected();
        n += sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'").execute(&mut *tx).await?.rows_affected();
        n += sqlx::query(
            // (Pruning sees only expired tokens; the owner's function sees whether any is left.)
            "DELETE FROM token_families f WHERE f.created_at < now() - interval '1 day' AND token_family_is_empty(f.id)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<CurrentUser>> {
        let mut tx = crate::db::open(&self.pool, true).await?;
        let row: Option<(Uuid, String, Option<String>, bool)> =
            sqlx::query_as("SELECT id, email, display_name, email_verified_at IS NOT NULL FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(row.map(|(id, email, display_name, email_verified)| CurrentUser { id, email, display_name, email_verified }))
    }

    /// Looks a user up by email to add them to a team: the id, and whether they have
    /// confirmed the address.
    pub(crate) async fn find_by_email(&self, email: &Email) -> Result<Option<(Uuid, bool)>> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        let found = sqlx::query_as("SELECT id, email_verified_at IS NOT NULL FROM users WHERE lower(email) = $1")
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Marks an address confirmed without a link (the demo seed's own accounts).
    pub(crate) async fn confirm_email_directly(&self, user_id: Uuid) -> Result<()> {
        let mut tx = crate::db::open(&self.pool, false).await?;
        confirm_email(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod password_tests {
    use super::{dummy_hash, hash_to_check, verify_password};

    /// An account without a password costs a full Argon2 check to refuse, as a wrong password
    /// does: otherwise the response time would tell which addresses have passwords.
    #[test]
    fn an_account_without_a_password_is_checked_against_a_real_hash_and_refused() {
        let (checked, real) = hash_to_check("!unusable");
        assert!(!real);
        assert_eq!(checked.map(|h| h.to_string()), Some(dummy_hash().to_string()));
        assert!(!verify_password("anything", "!unusable"));
    }
}

/// How a new account's address is known to belong to the person signing up.
#[derive(Clone, Copy, Debug)]
pub enum AddressProof<'a> {
    /// Not yet: a confirmation link goes to the address, bound to the browser signing up
    /// (`browser`: its session secret).
    Pending { browser: &'a str },
    /// Already: they followed an invitation sent to it (or the operator's demo seed vouches).
    Proven,
}

/// What a sign-up did. With [`AddressProof::Pending`] the person is told the same thing
/// whichever it was.
#[derive(Clone, Debug)]
pub enum SignedUp {
    /// A new account, confirmed already: sign it in.
    Confirmed(CurrentUser),
    /// A new account waiting for its confirmation link.
    AwaitingConfirmation(CurrentUser),
    /// The address has an account. Its owner was emailed about the attempt or, if it was never
    /// confirmed, sent a fresh link that confirms it with the password chosen this time.
    AlreadyRegistered,
}

/// What following a confirmation link did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The address is now confirmed, by its registrant: sign them in.
    Confirmed,
    /// It was confirmed before (another link, a magic link); nobody is signed in by this one.
    AlreadyConfirmed,
    /// The inbox's owner disowned the registration: its registrant's password, sessions,
    /// second factor and tokens are gone. The owner signs in with an emailed link (or resets
    /// the password).
    RegistrantEvicted,
}

/// `Some(true)` when the account still has the address the link was sent to and hasn't
/// confirmed it; `None` when the account moved on to another address (the link means nothing).
async fn unconfirmed_account(conn: &mut sqlx::PgConnection, user_id: Uuid, email: &str) -> Result<Option<bool>> {
    Ok(sqlx::query_scalar("SELECT email_verified_at IS NULL FROM users WHERE id = $1 AND lower(email) = lower($2) FOR UPDATE")
        .bind(user_id)
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The owner of an address has just proved it, and the account was never confirmed: whoever
/// registered it may have been someone else. Everything that person could have set up to get
/// back in goes: password, sessions, second factor, connected accounts, API tokens. The rest
/// of the transaction handles this account (the proof was the caller's).
pub(crate) async fn evict_unconfirmed_registrant(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<()> {
    // `user_evict_unconfirmed` (a definer function: the app role can't write passwords or
    // confirmations itself) leaves a confirmed account alone, and acts only on the account
    // the transaction handles.
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, &user_id.to_string())]).await?;
    sqlx::query("SELECT user_evict_unconfirmed($1)").bind(user_id).execute(&mut *conn).await?;
    Ok(())
}

/// Confirms an account's address (once confirmed, it stays so), which the caller has proved.
/// The rest of the transaction handles this account.
pub(crate) async fn confirm_email(conn: &mut sqlx::PgConnection, user_id: Uuid) -> Result<()> {
    crate::db::set_local(&mut *conn, &[(Setting::AccountId, &user_id.to_string())]).await?;
    sqlx::query("SELECT user_confirm_email($1)").bind(user_id).execute(&mut *conn).await?;
    Ok(())
}

/// Sets an account's password (an Argon2id hash) on the strength of the emailed link `token`
/// for it, being spent in this transaction; also confirms the address.
async fn set_password(conn: &mut sqlx::PgConnection, user_id: Uuid, hash: &str, token: &str) -> Result<()> {
    sqlx::query("SELECT user_set_password($1, $2, $3)").bind(user_id).bind(hash).bind(token.trim()).execute(&mut *conn).await?;
    Ok(())
}

/// Counts a failed password sign-in against the address's budget of fresh confirmation links
/// (a bucket of its own: were it the address's link budget, which other requests report on,
/// sign-up plus log-in could tell an unconfirmed account's right password from a wrong one).
async fn resend_budget_left(conn: &mut sqlx::PgConnection, email: &str) -> Result<bool> {
    Ok(!throttle::record(conn, &format!("confirm:email:{email}"), LINKS_PER_EMAIL).await?.over(LINKS_PER_EMAIL))
}

/// Counts a request to email a link (per address and per IP) and finds the account, if any.
async fn link_request(conn: &mut sqlx::PgConnection, email: &str, meta: &RequestMeta) -> Result<Option<Uuid>> {
    throttle::hit(conn, &format!("link:email:{email}"), LINKS_PER_EMAIL).await?;
    if let Some(ip) = meta.ip {
        throttle::hit(conn, &format!("link:ip:{ip}"), LINKS_PER_IP).await?;
    }
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = $1").bind(email).fetch_optional(conn).await?)
}

pub(crate) async fn hash_password(password: Password) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| crate::Error::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| crate::Error::Internal(e.to_string()))?
}

/// Always spends one Argon2 verification, so an account without a password (a marker such as
/// `!unusable` instead of a hash) answers in the same time as one with a wrong password.
fn verify_password(password: &str, hash: &str) -> bool {
    let (checked, real) = hash_to_check(hash);
    let matches = checked.is_some_and(|checked| Argon2::default().verify_password(password.as_bytes(), &checked).is_ok());
    matches && real
}

/// The hash a password is checked against: the stored one, or the dummy when none is stored
/// (`false`: a match then means nothing).
fn hash_to_check(stored: &str) -> (Option<PasswordHash<'_>>, bool) {
    match PasswordHash::new(stored) {
        Ok(parsed) => (Some(parsed), true),
        Err(_) => (PasswordHash::new(dummy_hash()).ok(), false),
    }
}

/// A real hash of a random secret, verified against when the email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = Uuid::new_v4().to_string();
        Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}
