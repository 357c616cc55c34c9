//! The emails Tessera sends, each as plain text and as HTML built from one layout.

use super::OutgoingEmail;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A short message with one call to action; `lines` are paragraphs before the button.
fn layout(to: &str, subject: &str, lines: &[&str], button: &str, url: &str, footer: &str) -> OutgoingEmail {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\n\n");
    }
    text.push_str(&format!("{button}: {url}\n\n{footer}\n"));
    let paragraphs: String = lines.iter().map(|l| format!("<p style=\"margin:0 0 16px\">{}</p>", escape(l))).collect();
    let html = format!(
        "<!doctype html><html><body style=\"margin:0;padding:24px;background:#f7f7fb;font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1c1b22\">\
         <div style=\"max-width:480px;margin:0 auto;background:#fff;border:1px solid #e2e1ea;border-radius:8px;padding:32px\">\
         <p style=\"margin:0 0 24px;font-weight:700;color:#4f46e5\">Tessera</p>{paragraphs}\
         <p style=\"margin:24px 0\"><a href=\"{url}\" style=\"background:#4f46e5;color:#fff;padding:12px 20px;border-radius:8px;text-decoration:none;font-weight:600\">{button}</a></p>\
         <p style=\"margin:0 0 16px;font-size:14px;color:#5b5a66\">Or paste this link into your browser: {url}</p>\
         <p style=\"margin:0;font-size:14px;color:#5b5a66\">{footer}</p></div></body></html>",
        url = escape(url),
        button = escape(button),
        footer = escape(footer),
    );
    OutgoingEmail { to: to.to_string(), subject: subject.to_string(), text, html, id: None, attachments: Vec::new() }
}

pub fn magic_link(to: &str, url: &str) -> OutgoingEmail {
    layout(
        to,
        "Your Tessera sign-in link",
        &["Use this link to sign in to Tessera. It works once, for 15 minutes, in the browser where you asked for it."],
        "Sign in",
        url,
        "If you didn't ask to sign in, ignore this email: nobody can use the link without your inbox.",
    )
}

/// Sent instead of a sign-in link when the address has no account, so the response to the
/// request itself never reveals whether an account exists.
pub fn no_account(to: &str, signup_url: &str) -> OutgoingEmail {
    layout(
        to,
        "Signing in to Tessera",
        &["Someone (hopefully you) asked for a Tessera sign-in link for this address, but there is no account with it."],
        "Create an account",
        signup_url,
        "If it wasn't you, ignore this email.",
    )
}

pub fn verify_email(to: &str, url: &str) -> OutgoingEmail {
    layout(
        to,
        "Confirm your email for Tessera",
        &["Welcome to Tessera! Confirm that this address is yours so we can keep your account safe."],
        "Confirm email",
        url,
        "The link works for 24 hours. If you didn't sign up, ignore this email.",
    )
}

/// Sent instead of a confirmation link when someone signs up with an address that already has
/// an account, so the sign-up page itself never reveals whether an account exists.
pub fn account_exists(to: &str, login_url: &str, reset_url: &str) -> OutgoingEmail {
    layout(
        to,
        "You already have a Tessera account",
        &[
            "Someone (hopefully you) just tried to create a Tessera account with this address, but there already is one.",
            &format!("Log in with the button below. Forgot your password? Choose a new one at {reset_url}"),
        ],
        "Log in",
        login_url,
        "If it wasn't you, ignore this email: your account hasn't changed.",
    )
}

/// To each Owner when the daily metadata refresh finds new signing certificates for the
/// organization's IdP. `before`/`after`: SHA-256 fingerprints; `until`: the last day the
/// previous ones are trusted.
/// What a metadata refresh changed in an IdP's signing certificates (SHA-256 fingerprints).
pub struct CertificateChange<'a> {
    pub before: &'a [String],
    pub after: &'a [String],
    /// Certificates an earlier change's overlap still trusted, dropped by this change.
    pub no_longer_trusted: &'a [String],
}

pub fn idp_certificates_changed(to: &str, organization: &str, change: &CertificateChange<'_>, until: &str, settings_url: &str) -> OutgoingEmail {
    let list = |fingerprints: &[String]| if fingerprints.is_empty() { "none".to_string() } else { fingerprints.join(", ") };
    let mut paragraphs = vec![
        format!("The metadata your identity provider publishes for {organization} now lists different signing certificates. Tessera trusts the new ones from now on, and keeps trusting the previous ones until {until} so sign-ins keep working while the provider switches over."),
        format!("Previous (SHA-256): {}", list(change.before)),
        format!("Now (SHA-256): {}", list(change.after)),
    ];
    if !change.no_longer_trusted.is_empty() {
        paragraphs.push(format!(
            "This came before the overlap of an earlier change had ended, so the certificates that overlap still trusted are no longer trusted: {}.",
            list(change.no_longer_trusted)
        ));
    }
    paragraphs.push("If your IT team rolled the certificate over, there is nothing to do; once the provider signs with the new certificate, saving the identity provider again in the single sign-on settings ends the overlap at once. If nobody expected this, someone may have changed your provider's metadata: disconnect the identity provider in the single sign-on settings and check with your provider.".to_string());
    let paragraphs: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
    layout(
        to,
        &format!("{organization}: your identity provider's signing certificate changed"),
        &paragraphs,
        "Review single sign-on settings",
        settings_url,
        "You get this because you are an Owner of the organization.",
    )
}

pub fn password_reset(to: &str, url: &str) -> OutgoingEmail {
    layout(
        to,
        "Reset your Tessera password",
        &["Use this link to choose a new password. It works once, for 30 minutes. Other devices will be signed out."],
        "Choose a new password",
        url,
        "If you didn't ask for this, ignore this email: your password stays as it is.",
    )
}

/// An invitation to join an organization. `role` is the role's name ("Admin").
pub fn invitation(to: &str, inviter: &str, organization: &str, role: &str, url: &str, expires_on: &str) -> OutgoingEmail {
    let article = if role.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
    layout(
        to,
        &format!("{inviter} invited you to join {organization} on Tessera"),
        &[
            &format!("{inviter} invited you to join {organization} on Tessera as {article} {role}."),
            "If you don't have a Tessera account yet, you can create one with this address when you open the invitation.",
        ],
        "Open the invitation",
        url,
        &format!("The invitation expires on {expires_on}. If you weren't expecting it, ignore this email: nothing happens unless you accept."),
    )
}

/// A notification, for people who asked to get that kind by email too.
pub fn notification(to: &str, title: &str, body: &str, url: &str) -> OutgoingEmail {
    layout(
        to,
        title,
        &[title, body],
        "Open Tessera",
        url,
        "You get this because of your notification settings; change them on your notifications page.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_email_has_the_link_in_both_bodies_and_escapes_html() {
        let mail = magic_link("ada@example.com", "https://app.test/auth/magic?token=a&b=<c>");
        assert!(mail.text.contains("https://app.test/auth/magic?token=a&b=<c>"));
        assert!(mail.html.contains("token=a&amp;b=&lt;c&gt;"));
        assert!(!mail.html.contains("<c>"));
        assert_eq!(mail.to, "ada@example.com");
    }
}
