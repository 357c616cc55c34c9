//! Parse, don't validate: user input becomes one of these types or a message a person can act
//! on. The same parsers run in the browser (instant feedback) and on the server (the authority).

use serde::{Deserialize, Serialize};

/// A rejected field, with the message shown next to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Control characters (NUL, escape, line breaks…) belong in no single-line field: PostgreSQL
/// refuses NUL outright, and the rest hide text or split headers and logs.
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let err = |m: &str| Err(FieldError::new("email", m));
        if email.is_empty() {
            return err("Enter your email address.");
        }
        if email.len() > 254 {
            return err("That email address is too long (254 characters at most).");
        }
        if has_control(&email) {
            return err("An email address can't contain control characters (such as NUL or a line break).");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return err("Enter an email address like name@example.com.");
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.')
            && email_address::EmailAddress::is_valid_domain(domain);
        // Plain (ASCII) local parts only: SMTP servers without SMTPUTF8 refuse the others, and an
        // address we accept must be one we can send to.
        let local_ok = local.len() <= 64 && local.is_ascii() && email_address::EmailAddress::is_valid_local_part(local) && !local.starts_with('"');
        if !domain_ok || !local_ok {
            return err("Enter an email address like name@example.com.");
        }
        Ok(Email(email))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An address typed to sign in to an existing account, normalised as accounts are stored.
    /// Looser than [`Email::parse`], so accounts made under older, looser rules still sign in;
    /// still never a control character (PostgreSQL refuses NUL).
    pub fn for_lookup(raw: &str) -> Option<Self> {
        let email = raw.trim().to_lowercase();
        (email.len() <= 254 && email.contains('@') && !has_control(&email)).then_some(Email(email))
    }
}

#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 128;

    /// Rules for a new password. Login does not re-check them, so old passwords keep working.
    pub fn parse_new(raw: &str) -> Result<Self, FieldError> {
        let n = char_count(raw);
        if n < Self::MIN_LEN {
            return Err(FieldError::new("password", format!("Use at least {} characters for your password.", Self::MIN_LEN)));
        }
        if n > Self::MAX_LEN {
            return Err(FieldError::new("password", format!("Use at most {} characters for your password.", Self::MAX_LEN)));
        }
        if raw.trim().is_empty() {
            return Err(FieldError::new("password", "A password of only spaces is not allowed."));
        }
        Ok(Password(raw.to_string()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A person's display name: optional, trimmed, bounded.
pub fn parse_display_name(raw: &str) -> Result<Option<String>, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if char_count(name) > 80 {
        return Err(FieldError::new("name", "Keep your name to 80 characters or fewer."));
    }
    if has_control(name) {
        return Err(FieldError::new("name", "Your name can't contain control characters (such as a line break)."));
    }
    Ok(Some(name.to_string()))
}

/// The URL name of an organization: `/t/{slug}/…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Words that would shadow routes or confuse people if used as an organization URL.
    const RESERVED: [&'static str; 12] = ["admin", "api", "app", "login", "logout", "new", "pkg", "settings", "signup", "static", "support", "www"];

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let slug = raw.trim().to_lowercase();
        let err = |m: &str| Err(FieldError::new("slug", m));
        if slug.len() < 3 || slug.len() > 40 {
            return err("The URL name needs 3 to 40 characters.");
        }
        if !slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return err("Use only lowercase letters, digits and hyphens in the URL name.");
        }
        if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
            return err("The URL name can't start or end with a hyphen or contain two in a row.");
        }
        if Self::RESERVED.contains(&slug.as_str()) {
            return err("That URL name is reserved; pick another.");
        }
        Ok(OrgSlug(slug))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A slug suggestion from an organization name ("Acme Inc." → "acme-inc").
    pub fn suggest(name: &str) -> String {
        let mut out = String::new();
        for c in name.trim().to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        out.trim_end_matches('-').chars().take(40).collect::<String>().trim_end_matches('-').to_string()
    }
}

fn parse_title(raw: &str, field: &str, what: &str, max: usize) -> Result<String, FieldError> {
    // Checked before trimming: a control character is refused wherever it is (a trailing
    // vertical tab is no more meant than one in the middle), as the API's schema says.
    if has_control(raw) {
        return Err(FieldError::new(field, format!("The {what} name can't contain control characters.")));
    }
    let value = raw.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, format!("Give the {what} a name.")));
    }
    if char_count(value) > max {
        return Err(FieldError::new(field, format!("Keep the {what} name to {max} characters or fewer.")));
    }
    Ok(value.to_string())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_title(raw, "name", "organization", 80).map(OrgName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_title(raw, "name", "project", 100).map(ProjectName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: one line, up to 100 characters, unique in the organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_title(raw, "name", "group", 100).map(GroupName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a group is for: up to 500 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription(String);

impl GroupDescription {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_text(raw, "description", "the description", 500).map(GroupDescription)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity provider's group a group mirrors, exactly as the IdP sends it (case counts),
/// up to 256 characters; blank: none.
pub fn parse_idp_group(raw: &str) -> Result<Option<String>, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new("idp_group", "The identity provider's group name can't contain control characters."));
    }
    if char_count(value) > 256 {
        return Err(FieldError::new("idp_group", "Keep the identity provider's group name to 256 characters or fewer."));
    }
    Ok(Some(value.to_string()))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectDescription(String);

impl ProjectDescription {
    pub const MAX_LEN: usize = 2000;
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_text(raw, "description", "the description", Self::MAX_LEN).map(ProjectDescription)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text of several lines (a description, a document's body), trimmed, with one kind of line
/// break. Line breaks and tabs are the only control characters, checked before trimming (as
/// the API's schema says); browsers submit a textarea's line breaks as CRLF, old files as CR.
fn parse_text(raw: &str, field: &str, what: &str, max: usize) -> Result<String, FieldError> {
    if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new(field, format!("{} can't contain control characters other than line breaks and tabs.", capitalized(what))));
    }
    let value = raw.trim().replace("\r\n", "\n").replace('\r', "\n");
    if char_count(&value) > max {
        return Err(FieldError::new(field, format!("Keep {what} to {max} characters or fewer.")));
    }
    Ok(value)
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A document's title: one line, up to 200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentTitle(String);

impl DocumentTitle {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if has_control(raw) {
            return Err(FieldError::new("title", "The title can't contain control characters."));
        }
        let value = raw.trim();
        if value.is_empty() {
            return Err(FieldError::new("title", "Give the document a title."));
        }
        if char_count(value) > 200 {
            return Err(FieldError::new("title", "Keep the title to 200 characters or fewer."));
        }
        Ok(DocumentTitle(value.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A document's text: up to 50,000 characters, line breaks kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentBody(String);

impl DocumentBody {
    pub const MAX_LEN: usize = 50_000;
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_text(raw, "body", "the text", Self::MAX_LEN).map(DocumentBody)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` as it may stand in a URL's query (`?next=`): unreserved characters and `/` as they
/// are, everything else percent-encoded. Shared by the pages' links and the server's redirects.
/// An id from a path or form. One that can't be an id names nothing: the same answer as an id
/// nobody has (`not_found`), so a malformed one tells a prober nothing more.
pub fn parse_id(raw: &str, not_found: impl FnOnce() -> crate::AppError) -> Result<uuid::Uuid, crate::AppError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| not_found())
}

pub fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path on this site to send someone to after an action (`?next=`), never another site:
/// a local path of printable ASCII only. Browsers drop tabs and newlines from URLs (so
/// "/\t/evil" would become "//evil") and treat `\` like `/`, and control characters can't go in
/// a Location header. Shared by the server's redirects and the pages' links.
pub fn local_path(next: &str) -> Option<&str> {
    let path = next.trim();
    (path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') && path.bytes().all(|b| (0x21..=0x7e).contains(&b))).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions_refuse_control_characters_wherever_they_are() {
        assert!(ProjectName::parse("Apollo\u{0B}").is_err(), "a trailing vertical tab isn't trimmed into acceptance");
        assert_eq!(ProjectName::parse("  Apollo  ").unwrap().as_str(), "Apollo");
        assert!(ProjectDescription::parse("\u{0B}").is_err());
        assert!(ProjectDescription::parse("a\u{0C}b").is_err());
        assert_eq!(ProjectDescription::parse(" one\r\ntwo\rthree\tfour ").unwrap().as_str(), "one\ntwo\nthree\tfour");
        assert_eq!(
            ProjectDescription::parse("\u{0B}").unwrap_err().message,
            "The description can't contain control characters other than line breaks and tabs."
        );
    }

    #[test]
    fn document_titles_are_one_line_and_bodies_keep_their_lines() {
        assert_eq!(DocumentTitle::parse("  Runbook ").unwrap().as_str(), "Runbook");
        assert_eq!(DocumentTitle::parse(" ").unwrap_err().message, "Give the document a title.");
        assert!(DocumentTitle::parse("Run\nbook").is_err());
        assert!(DocumentTitle::parse(&"x".repeat(201)).is_err());
        assert_eq!(DocumentBody::parse("a\r\nb").unwrap().as_str(), "a\nb");
        assert_eq!(DocumentBody::parse(&"x".repeat(50_001)).unwrap_err().field, "body");
        assert!(DocumentBody::parse("a\u{7}b").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "ada@exa..mple.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn control_characters_and_undeliverable_addresses_are_refused() {
        for bad in [
            "ada\0@example.com",
            "ada@exam\0ple.com",
            "ada@example.com\r\nBcc: x@y.z",
            "<script>@example.com",
            "a\"b@example.com",
            "\"a b\"@example.com",
            "adä@example.com",
            "a..b@example.com",
            ".ada@example.com",
            "ada@-example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["ada.lovelace+tessera@example.com", "o'brien@example.co.uk", "ada@bücher.example"] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
        assert!(parse_display_name("Ada\r\nLovelace").is_err());
        assert!(parse_display_name("Ada\0").is_err());
        assert_eq!(parse_display_name("  Ada Lovelace ").unwrap().as_deref(), Some("Ada Lovelace"));
        assert!(OrgName::parse("Acme\0").is_err() && ProjectName::parse("Apollo\u{1b}[31m").is_err());
        assert!(ProjectDescription::parse("one\0two").is_err());
        assert_eq!(ProjectDescription::parse("one\r\ntwo\tthree").unwrap().as_str(), "one\ntwo\tthree");
        assert!(OrgSlug::parse("ac\0me").is_err());
    }

    #[test]
    fn only_local_paths_are_places_to_go_next() {
        assert_eq!(local_path(" /t/acme?x=1 "), Some("/t/acme?x=1"));
        for bad in ["//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/a b", "/\n/evil", ""] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn short_passwords_are_refused_with_the_rule() {
        let err = Password::parse_new("short").unwrap_err();
        assert_eq!(err.field, "password");
        assert!(err.message.contains("10"));
        assert!(Password::parse_new("correct horse battery").is_ok());
    }

    #[test]
    fn slugs_are_url_safe_and_not_reserved() {
        assert_eq!(OrgSlug::parse("Acme-2").unwrap().as_str(), "acme-2");
        for bad in ["ab", "acme inc", "-acme", "acme-", "ac--me", "api", "ünï"] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(OrgSlug::suggest("Acme, Inc."), "acme-inc");
    }

    #[test]
    fn project_names_are_trimmed_and_bounded() {
        assert_eq!(ProjectName::parse("  Apollo ").unwrap().as_str(), "Apollo");
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse(&"x".repeat(101)).is_err());
        assert!(ProjectDescription::parse(&"x".repeat(2001)).is_err());
    }
}
